"""HTTP endpoints of streaming_app; include them under a prefix of your choice:
``path("streams/", include("streaming_app.urls"))``.

``<prefix>/_ticket`` issues WebSocket tickets; ``<prefix>/_schema`` serves the
AsyncAPI document; ``<prefix>/_health`` says whether the process can serve
(:mod:`streaming_app.health`); ``<prefix>/<namespace>.<method>``
calls a unary or server-stream method over HTTP (see :mod:`streaming_app.transports.http`).
"""

from django.urls import path

from .schema_endpoint import SchemaView
from .health import health_view
from .transports.http import StreamHTTPView
from .tickets import ticket_view

app_name = "streaming_app"

urlpatterns = [
    path("_ticket", ticket_view, name="ticket"),
    path("_schema", SchemaView.as_view(), name="schema"),
    path("_health", health_view, name="health"),
    path("<path:method>", StreamHTTPView.as_view(), name="call"),
    path("", StreamHTTPView.as_view(), {"method": ""}),  # a JSON 404, like any unknown method
]
