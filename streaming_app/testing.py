"""Test helpers: talk to stream views in-process, without a server.

``StreamTestClient`` drives the consumer through Channels'
``WebsocketCommunicator`` and speaks protocol v1, so a test reads like a
client's code::

    async with StreamTestClient(user=alice) as client:
        assert await client.call("orders.get", {"order_id": 1}) == {...}
        items, result = await client.collect("orders.watch_all", {"n": 3})
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from channels.testing import WebsocketCommunicator

from .exceptions import StreamError
from .monitor import monitor
from .protocol import frames as wire
from .protocol.codes import SUBPROTOCOL
from .revocation import guard


class ConnectionClosed(Exception):
    """The server closed the socket; ``code`` is its close code."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"connection closed with code {code}")
        self.code = code


class StreamTestClient:
    """An in-process protocol v1 client for tests."""

    def __init__(
        self,
        application: Any = None,
        path: str = "/ws/",
        *,
        headers: Sequence[tuple[bytes, bytes]] = (),
        subprotocols: Sequence[str] = (SUBPROTOCOL,),
        user: Any = None,
        timeout: float = 5.0,
    ) -> None:
        if application is None:
            from .transports.websocket import StreamConsumer

            application = StreamConsumer.as_asgi()
        self.communicator = WebsocketCommunicator(
            application, path, headers=list(headers), subprotocols=list(subprotocols)
        )
        if user is not None:
            self.communicator.scope["user"] = user
        self.timeout = timeout
        self.hello: dict[str, Any] | None = None
        self._next_id = 0

    async def __aenter__(self) -> StreamTestClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.disconnect()

    async def connect(self) -> dict[str, Any]:
        """Open the socket and return the ``hello`` frame; raise ConnectionClosed if refused."""
        # Calls are tracked by the monitor, but this event loop (the test's)
        # gets no flusher or control listener: they would outlive it. Tests
        # write what was tracked with ``await monitor.flush()``.
        monitor.flush_manually()
        guard.run_manually()  # no revocation listener either: ``await guard.revalidate()`` does its work
        connected, code = await self.communicator.connect(timeout=self.timeout)
        if not connected:
            raise ConnectionClosed(code)
        self.hello = await self.receive()
        return self.hello

    async def disconnect(self) -> None:
        await self.communicator.disconnect(timeout=self.timeout)

    # -- raw frames ----------------------------------------------------------------

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def send(self, frame: dict[str, Any] | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float | None = None) -> dict[str, Any]:
        """The next frame the server sent; raise ConnectionClosed if it closed instead."""
        message = await self.communicator.receive_output(timeout or self.timeout)
        if message["type"] == "websocket.close":
            raise ConnectionClosed(message.get("code"))
        frame: dict[str, Any] = json.loads(message["text"])
        return frame

    async def receive_close(self, timeout: float | None = None) -> int | None:
        """Read frames until the server closes; return its close code."""
        while True:
            try:
                await self.receive(timeout)
            except ConnectionClosed as closed:
                return closed.code

    async def nothing_received(self, timeout: float = 0.1) -> bool:
        nothing: bool = await self.communicator.receive_nothing(timeout)  # channels ships no types
        return nothing

    # -- calls ------------------------------------------------------------------------

    async def start(self, method: str, args: dict[str, Any] | None = None, **options: Any) -> int:
        """Send a ``call`` frame; return its id."""
        call_id = self.new_id()
        await self.send(wire.encode_call(call_id, method, args, **options))
        return call_id

    async def call(self, method: str, args: dict[str, Any] | None = None, **options: Any) -> Any:
        """A unary call: its result, or the StreamError it failed with."""
        _, result = await self.collect(method, args, **options)
        return result

    async def collect(self, method: str, args: dict[str, Any] | None = None, **options: Any) -> tuple[list[Any], Any]:
        """Run a call to its end: (items, result); raise the StreamError it failed with."""
        call_id = await self.start(method, args, **options)
        return await self.collect_call(call_id)

    async def collect_call(self, call_id: int) -> tuple[list[Any], Any]:
        items: list[Any] = []
        while True:
            frame = await self.receive()
            if frame.get("id") != call_id:
                continue
            if frame["t"] == "next":
                items.append(frame["d"])
            elif frame["t"] == "end":
                return items, frame.get("d")
            elif frame["t"] == "error":
                raise StreamError.for_code(frame["code"], frame.get("message"), frame.get("details"))
