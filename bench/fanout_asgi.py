"""ASGI application for bench/fanout.py.

* ``/ws/``    -- streaming_app (subscribers call ``interop.subscribe``);
* ``/group/`` -- what users write today: a plain Channels consumer that joins a
  channel-layer group on connect and forwards each group message's text;
* ``/group-direct/`` -- the same without Channels' per-message thread hop
  (``dispatch`` awaits ``aclose_old_connections()``, a ``sync_to_async`` call,
  before every handler): the best plain set-up we found.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.fanout_settings")
django_asgi_app = get_asgi_application()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.consumer import get_handler_name  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from streaming_app.transports.websocket import StreamConsumer  # noqa: E402

GROUP = "fanout"


class GroupConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def bench_message(self, event: dict) -> None:
        await self.send(text_data=event["text"])


class DirectGroupConsumer(GroupConsumer):
    async def dispatch(self, message: dict) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([path("ws/", StreamConsumer.as_asgi()), path("group/", GroupConsumer.as_asgi()),
                                   path("group-direct/", DirectGroupConsumer.as_asgi())]),
    }
)
