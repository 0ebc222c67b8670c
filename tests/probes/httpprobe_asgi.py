"""The example project plus probe methods that let tests look inside HTTP calls.

Served by the ``probe_server`` fixture (with ``probes.httpprobe_settings``). State is
kept in this process, which is the only one the tests talk to.
"""

import asyncio
import datetime
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "probes.httpprobe_settings")

from project.asgi import application  # noqa: E402,F401  (sets Django up)
from rest_framework.authentication import TokenAuthentication  # noqa: E402
from rest_framework.permissions import IsAuthenticated  # noqa: E402

from streaming_app import StreamError, StreamView, server_stream, unary  # noqa: E402
from streaming_app.registry import registry  # noqa: E402

FINISHED: dict[str, str] = {}  # tag -> how the handler ended ("returned", "cancelled")


class HttpProbe(StreamView):
    namespace = "httpprobe"

    @unary(safe=True)
    async def sleep(self, ctx, seconds: float, tag: str = "") -> dict:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            FINISHED[tag] = "cancelled"
            raise
        FINISHED[tag] = "returned"
        return {"slept": seconds}

    @unary(safe=True)
    async def finished(self, ctx, tag: str) -> dict:
        return {"finished": FINISHED.get(tag)}

    @unary(safe=True)
    async def context(self, ctx) -> dict:
        return {
            "transport": ctx.transport,
            "resume": ctx.resume,
            "time_remaining": ctx.time_remaining,
            "method": ctx.method,
        }

    @server_stream
    async def resume(self, ctx):
        yield {"resume": ctx.resume}

    @server_stream
    async def late(self, ctx, delay_ms: int):
        await asyncio.sleep(delay_ms / 1000)
        yield {"late": True}

    @unary(safe=True)
    async def raise_cancelled(self, ctx) -> None:
        raise asyncio.CancelledError()

    @server_stream
    async def stream_raise_cancelled(self, ctx):
        yield {"i": 0}
        raise asyncio.CancelledError()

    @server_stream
    async def unencodable(self, ctx):
        yield {"i": 0}
        yield {"bad": object()}

    @unary(safe=True)
    async def unencodable_details(self, ctx) -> None:
        raise StreamError.for_code("failed_precondition", "Stock changed.", {"item": object()})

    @server_stream
    async def stream_unencodable_details(self, ctx):
        yield {"i": 0}
        raise StreamError.for_code("aborted", "Conflict.", {"row": object()})

    @server_stream(permission_classes=[IsAuthenticated])
    async def my_items(self, ctx):
        yield {"username": ctx.user.get_username()}

    @unary(safe=True)
    async def typed(
        self,
        ctx,
        n: int,
        flag: bool,
        day: datetime.date,
        name: str,
        tags: list[str],
        ratio: float | None = None,
    ) -> dict:
        return {
            "n": n, "flag": flag, "day": day.isoformat(), "name": name, "tags": tags, "ratio": ratio,
        }


class TokenProbe(StreamView):
    """DRF's own TokenAuthentication (``Authorization: Token <key>``) on one view."""

    namespace = "tokenprobe"
    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]

    @unary(safe=True)
    async def whoami(self, ctx) -> dict:
        return {"username": ctx.user.get_username()}


registry.register(HttpProbe)
registry.register(TokenProbe)
