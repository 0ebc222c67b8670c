"""ASGI applications wired well and badly, for the wiring checks (tests/unit/test_wiring_checks.py).

Each module-level name is an ``ASGI_APPLICATION`` a project could have written.
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application
from django.urls import path

from streaming_app.asgi import CancelOnDisconnect
from streaming_app.routing import websocket_urlpatterns
from streaming_app.transports.websocket import StreamConsumer

django_app = get_asgi_application()


class ChatConsumer(AsyncWebsocketConsumer):
    """A project's own consumer, not streaming_app's."""


class MyStreamConsumer(StreamConsumer):
    """A project's subclass of StreamConsumer."""


# Django's handler only: no WebSocket at all.
http_only = django_app

# Routes 'websocket', but only to another consumer.
other_consumer_only = ProtocolTypeRouter(
    {"http": django_app, "websocket": URLRouter([path("chat/", ChatConsumer.as_asgi())])}
)

# The usual production stack around a nested router and a subclass: reaches StreamConsumer.
wrapped_and_nested = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter(
                    [
                        path("chat/", ChatConsumer.as_asgi()),
                        path("api/", URLRouter([path("ws/", MyStreamConsumer.as_asgi())])),
                    ]
                )
            )
        ),
    }
)

# The README's routing.
plain = ProtocolTypeRouter({"http": django_app, "websocket": URLRouter(websocket_urlpatterns)})

# What streaming_app.asgi.get_asgi_application() gives on Django 4.2.
disconnect_aware = ProtocolTypeRouter(
    {"http": CancelOnDisconnect(django_app), "websocket": URLRouter(websocket_urlpatterns)}
)


async def opaque(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A hand-written application the checks cannot look into."""
    await django_app(scope, receive, send)
