"""ASGI application for bench/throughput.py.

* ``/ws/``  -- streaming_app's StreamConsumer, with the bench-only stream view
  ``bench.items(n, size=100)`` registered below;
* ``/raw/`` -- a minimal hand-written Channels consumer: on a ``call`` frame it
  sends the same item frames (``{"t":"next","id":<id>,"d":<item>}`` ... then
  ``{"t":"end","id":<id>}``) in a plain loop, with no flow control.

Both build their items with :func:`make_item`, so the two variants put the
same bytes on the wire (apart from the ``hello`` frame of streaming_app).
Nothing here touches the database.

Run it the way throughput.py does, from the repository root::

    DJANGO_SETTINGS_MODULE=project.settings python -m daphne -b 127.0.0.1 -p 8123 bench.bench_asgi:application
"""

from __future__ import annotations

import asyncio
import json
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()  # sets Django up before consumers are imported

from channels.consumer import AsyncConsumer  # noqa: E402
from channels.exceptions import StopConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from streaming_app import StreamView, server_stream  # noqa: E402
from streaming_app.transports.websocket import StreamConsumer  # noqa: E402
from streaming_app.registry import registry  # noqa: E402

MAX_ITEMS = 10_000_000
MAX_SIZE = 100_000

_padding_cache: dict[int, str] = {}


def _padding(size: int) -> str:
    """Filler that makes ``{"i":<k>,"s":"<filler>"}`` about ``size`` bytes of JSON."""
    pad = _padding_cache.get(size)
    if pad is None:
        # len('{"i":12345,"s":""}') == 18 for a five-digit index
        pad = _padding_cache[size] = "x" * max(size - 18, 0)
    return pad


def make_item(k: int, size: int) -> dict:
    return {"i": k, "s": _padding(size)}


def _check(n: int, size: int) -> None:
    if not (0 <= n <= MAX_ITEMS and 0 <= size <= MAX_SIZE):
        raise ValueError(f"n must be in 0..{MAX_ITEMS} and size in 0..{MAX_SIZE}")


class BenchStreams(StreamView):
    namespace = "bench"

    @server_stream
    async def items(self, ctx, n: int, size: int = 100):
        _check(n, size)
        for k in range(n):
            yield make_item(k, size)


registry.register(BenchStreams)


class RawStreamConsumer(AsyncConsumer):
    """The baseline: what a hand-written consumer serving the same stream would do.

    It understands only ``{"t":"call","id":<id>,"a":{"n":..,"size":..}}`` and
    answers with n ``next`` frames and one ``end`` frame, dumped with
    ``json.dumps`` and sent through ``base_send`` in a loop. Credit and every
    other frame are ignored.

    A bench-only argument ``yield_every`` (default 0: never) makes it yield to
    the event loop every that many items. Under daphne a send never yields, so
    without it nothing reaches the socket before the whole stream is produced.
    """

    async def websocket_connect(self, message: dict) -> None:
        await self.base_send({"type": "websocket.accept"})

    async def websocket_receive(self, message: dict) -> None:
        text = message.get("text")
        if text is None:
            return
        frame = json.loads(text)
        if frame.get("t") != "call":
            return
        call_id = frame["id"]
        args = frame.get("a") or {}
        n, size = int(args.get("n", 0)), int(args.get("size", 100))
        yield_every = int(args.get("yield_every", 0))
        _check(n, size)
        send = self.base_send
        dumps = json.dumps
        for k in range(n):
            item = make_item(k, size)
            await send(
                {
                    "type": "websocket.send",
                    "text": dumps({"t": "next", "id": call_id, "d": item}, separators=(",", ":")),
                }
            )
            if yield_every and k % yield_every == yield_every - 1:
                await asyncio.sleep(0)
        await send({"type": "websocket.send", "text": dumps({"t": "end", "id": call_id}, separators=(",", ":"))})

    async def websocket_disconnect(self, message: dict) -> None:
        raise StopConsumer()


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                path("ws/", StreamConsumer.as_asgi()),
                path("raw/", RawStreamConsumer.as_asgi()),
            ]
        ),
    }
)
