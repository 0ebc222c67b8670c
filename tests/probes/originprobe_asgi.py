"""The example project with the Origin rule as ASGI middleware instead of in the consumer.

The WebSocket stack is ``OriginValidator(URLRouter([...]))`` around a
consumer whose own check is off (``check_origin = False``), so whatever this
server refuses was refused by the middleware. Every handshake that reaches the
consumer is counted under its ``X-Probe`` header; ``originprobe.reached``
reports the count, so a test can see that a refused handshake never got in.
"""

from collections import Counter

from project.asgi import django_asgi_app  # noqa: F401  (sets Django up)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from streaming_app import StreamView, unary  # noqa: E402
from streaming_app.handshake import OriginValidator, header  # noqa: E402
from streaming_app.registry import registry  # noqa: E402
from streaming_app.transports.websocket import StreamConsumer  # noqa: E402

REACHED: Counter[str] = Counter()


class UncheckedConsumer(StreamConsumer):
    check_origin = False  # the middleware in front checks

    async def websocket_connect(self, message):
        REACHED[header(self.scope, b"x-probe") or ""] += 1
        await super().websocket_connect(message)


class OriginProbe(StreamView):
    namespace = "originprobe"

    @unary(safe=True)
    async def reached(self, ctx, tag: str) -> int:
        return REACHED[tag]


registry.register(OriginProbe)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(URLRouter([path("ws/", UncheckedConsumer.as_asgi())])),
    }
)
