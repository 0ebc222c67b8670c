"""ASGI application for bench/presence.py: the example project plus bench-only presence methods.

* ``benchpresence.member(topic, info)``: joins the topic's presence with
  ``info`` and stays until cancelled (yields nothing);
* ``benchpresence.watch(topic)``: every client's joins and leaves (no
  per-user aggregation: each join is one event to time);
* ``benchpresence.read(topic, times)``: runs ``presence(topic)`` ``times``
  times in the server and returns the members' count and the durations (ms).

Run by bench/presence.py, from the repository root.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from project.asgi import application  # noqa: F401  (sets Django up)
from streaming_app import StreamView, server_stream, unary
from streaming_app.presence import presence
from streaming_app.registry import registry


class BenchPresence(StreamView):
    namespace = "benchpresence"

    @server_stream
    async def member(self, ctx, topic: str, info: Any = None):
        await ctx.join(topic, info=info)
        await asyncio.Event().wait()  # until the call is cancelled
        yield None  # an async generator; never reached

    @server_stream
    async def watch(self, ctx, topic: str):
        async for event in ctx.presence_events(topic, per_user=False):
            yield event

    @unary
    async def read(self, ctx, topic: str, times: int = 50) -> dict:
        durations = []
        members: list[dict] = []
        for _ in range(max(1, min(times, 1000))):
            started = time.perf_counter()
            members = await presence(topic)
            durations.append((time.perf_counter() - started) * 1000)
        return {"members": len(members), "ms": durations}


registry.register(BenchPresence)
