"""Raw-frame helpers for end-to-end tests: protocol v1 spoken with plain ``websockets``.

Nothing here comes from streaming_app: the tests talk to the server the way a
third-party client written from protocol.md would. Every read is bounded in
time (``TIMEOUT`` seconds by default) and every loop in count.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed

SUBPROTOCOL = "streaming.v1.json"
TIMEOUT = 5.0
MAX_FRAMES = 10_000  # upper bound for any read loop
TERMINAL = ("end", "error")


class Connection:
    """One WebSocket connection: the raw socket, its ``hello`` and unread frames."""

    def __init__(self, ws: Any, hello: dict[str, Any]) -> None:
        self.ws = ws
        self.hello = hello
        self.backlog: deque[dict[str, Any]] = deque()  # frames read while looking for others

    # -- sending ------------------------------------------------------------

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        """Send a frame: a dict is JSON-encoded, a str or bytes goes out as is."""
        await self.ws.send(json.dumps(frame) if isinstance(frame, dict) else frame)

    async def call(self, id: int, method: str, args: dict[str, Any] | None = None, **fields: Any) -> None:
        """Send a ``call`` frame; ``fields`` adds ``credit``, ``timeout``..."""
        frame: dict[str, Any] = {"t": "call", "id": id, "m": method}
        if args is not None:
            frame["a"] = args
        frame.update(fields)
        await self.send(frame)

    # -- reading ------------------------------------------------------------

    async def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for _ in range(MAX_FRAMES):
            raw = await asyncio.wait_for(self.ws.recv(), max(deadline - time.monotonic(), 0.001))
            frame = json.loads(raw)
            if frame == {"t": "ping"}:  # the server's own heartbeat, not part of any test
                continue
            return frame
        raise AssertionError("too many frames")

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame, whatever it is (backlog first)."""
        if self.backlog:
            return self.backlog.popleft()
        return await self._read(timeout)

    async def recv_raw(self, timeout: float = TIMEOUT) -> str | bytes:
        """The next frame as the server sent it, text unparsed."""
        assert not self.backlog, "raw read with parsed frames pending"
        return await asyncio.wait_for(self.ws.recv(), timeout)

    async def recv_for(self, id: int | None, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame whose ``id`` is ``id``; other frames are kept for later."""
        for index, frame in enumerate(self.backlog):
            if frame.get("id") == id and frame.get("t") not in ("pong", "hello"):
                del self.backlog[index]
                return frame
        deadline = time.monotonic() + timeout
        for _ in range(MAX_FRAMES):
            frame = await self._read(max(deadline - time.monotonic(), 0.001))
            if frame.get("id") == id and frame.get("t") not in ("pong", "hello"):
                return frame
            self.backlog.append(frame)
        raise AssertionError(f"no frame for call {id}")

    async def until_terminal(self, id: int, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """Every frame of call ``id`` up to and including its ``end`` or ``error``."""
        deadline = time.monotonic() + timeout
        frames = []
        for _ in range(MAX_FRAMES):
            frame = await self.recv_for(id, max(deadline - time.monotonic(), 0.001))
            frames.append(frame)
            if frame["t"] in TERMINAL:
                return frames
        raise AssertionError(f"call {id} did not end within {MAX_FRAMES} frames")

    async def result(self, id: int, method: str, args: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Start a call and return its terminal frame (items, if any, are dropped)."""
        await self.call(id, method, args, **fields)
        return (await self.until_terminal(id))[-1]

    async def quiet(self, seconds: float = 0.3) -> list[dict[str, Any]]:
        """Every frame that arrives within ``seconds`` (plus any backlog): [] when the server is quiet."""
        frames = list(self.backlog)
        self.backlog.clear()
        deadline = time.monotonic() + seconds
        for _ in range(MAX_FRAMES):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                frames.append(await self._read(remaining))
            except (asyncio.TimeoutError, TimeoutError):
                break
        return frames

    async def sync(self, token: Any = "sync", timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """Ping and read up to the pong: the server has handled every frame sent before.

        Returns the frames that arrived before the pong.
        """
        await self.send({"t": "ping", "d": token})
        before = []
        deadline = time.monotonic() + timeout
        for _ in range(MAX_FRAMES):
            frame = await self.recv(max(deadline - time.monotonic(), 0.001))
            if frame == {"t": "pong", "d": token}:
                return before
            before.append(frame)
        raise AssertionError("no pong")

    async def close_code(self, timeout: float = TIMEOUT) -> int | None:
        """Read (and drop) frames until the server closes; the close code it sent."""
        try:
            async with asyncio.timeout(timeout):
                for _ in range(MAX_FRAMES):
                    await self.ws.recv()
        except ConnectionClosed:
            pass
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()


async def open_ws(url: str, *, headers: dict[str, str] | None = None, origin: str | None = None) -> Any:
    """The raw ``websockets`` connection on the JSON subprotocol (no frame read yet)."""
    return await asyncio.wait_for(
        websockets.connect(
            url,
            subprotocols=[SUBPROTOCOL],
            additional_headers=headers,
            origin=origin,
            max_size=2**21,
            compression=None,  # frames go out as they are, sizes included
            proxy=None,  # straight to 127.0.0.1, whatever the environment says
            open_timeout=TIMEOUT,
            close_timeout=2,
        ),
        TIMEOUT,
    )


async def connect(url: str, *, headers: dict[str, str] | None = None, origin: str | None = None) -> Connection:
    """Open a connection and read its ``hello``."""
    ws = await open_ws(url, headers=headers, origin=origin)
    hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert hello["t"] == "hello", hello
    return Connection(ws, hello)


class connected:
    """``async with connected(url) as conn:`` a :class:`Connection`, closed on exit."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url = url
        self.kwargs = kwargs

    async def __aenter__(self) -> Connection:
        self.conn = await connect(self.url, **self.kwargs)
        return self.conn

    async def __aexit__(self, *exc: Any) -> None:
        await self.conn.close()


async def close_code_before_hello(url: str, **kwargs: Any) -> int | None:
    """Open a connection that the server should close before ``hello``; its close code.

    Fails if any frame arrives first.
    """
    ws = await open_ws(url, **kwargs)
    try:
        frame = await asyncio.wait_for(ws.recv(), TIMEOUT)
    except ConnectionClosed:
        return ws.close_code
    await ws.close()
    raise AssertionError(f"expected a close before any frame, got {frame!r}")


async def wait_for_cleanups(conn: Connection, tag: str, expected: int, first_id: int, timeout: float = TIMEOUT) -> int:
    """Poll ``interop.cleanups`` until it reaches ``expected`` (bounded); the last count seen.

    Uses call ids ``first_id``, ``first_id + 1``...
    """
    deadline = time.monotonic() + timeout
    count = None
    for attempt in range(200):
        frame = await conn.result(first_id + attempt, "interop.cleanups", {"tag": tag})
        assert frame["t"] == "end", frame
        count = frame["d"]["count"]
        if count >= expected or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.05)
    return count
