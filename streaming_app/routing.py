"""WebSocket routes, for ``URLRouter`` in a project's ``asgi.py``."""

from django.urls import path

from .transports.websocket import StreamConsumer

websocket_urlpatterns = [
    path("ws/", StreamConsumer.as_asgi()),
]
