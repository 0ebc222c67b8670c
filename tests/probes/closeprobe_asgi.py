"""The example project whose connections a test can close with any close code, and count.

The consumer is the real one with two additions for the client's tests:
a ``call`` of ``closeprobe.close`` with ``{"code": N}`` makes the server close
that connection with code N (what an administrator, a draining server, an
overloaded one... would send), and every handshake and ``ping`` is counted
under the handshake's ``X-Probe`` header, which ``closeprobe.counts`` reports,
so a test can see from the server side whether a client reconnected or pinged.
"""

from collections import Counter

from project.asgi import django_asgi_app  # noqa: F401  (sets Django up)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from streaming_app import StreamView, unary  # noqa: E402
from streaming_app.registry import registry  # noqa: E402
from streaming_app.transports.websocket import StreamConsumer  # noqa: E402

CONNECTS: Counter[str] = Counter()
PINGS: Counter[str] = Counter()


def probe_tag(scope) -> str:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"x-probe":
            return value.decode("latin1")
    return ""


class CloseProbeConsumer(StreamConsumer):
    async def websocket_connect(self, message):
        CONNECTS[probe_tag(self.scope)] += 1
        await super().websocket_connect(message)

    async def on_call(self, frame):
        if frame.method == "closeprobe.close":
            await self.close(int(frame.args["code"]))
            return
        await super().on_call(frame)

    async def on_ping(self, frame):
        PINGS[probe_tag(self.scope)] += 1
        await super().on_ping(frame)


class CloseProbe(StreamView):
    namespace = "closeprobe"

    @unary(safe=True)
    async def counts(self, ctx, tag: str) -> dict:
        return {"connects": CONNECTS[tag], "pings": PINGS[tag]}

    @unary(safe=True)
    async def headers(self, ctx) -> dict:
        """The handshake headers a handler sees: where connection metadata arrives."""
        return dict(ctx.headers)


registry.register(CloseProbe)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([path("ws/", CloseProbeConsumer.as_asgi())]),
    }
)
