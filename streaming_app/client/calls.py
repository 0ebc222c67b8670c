"""Client-side calls: what ``StreamClient.call``, ``stream`` and ``open`` return.

Each call owns a queue of the server frames addressed to it, filled by the
client's reader task, and does its own credit bookkeeping: it grants the
server credit as the caller consumes items, and holds the caller's ``send``
while the server has granted none.

A call belongs to the connection it started on. When that connection is
lost the call fails with ``Unavailable`` and sends nothing more: its id
means nothing on a new connection. It remembers the ``eid`` of the last item
handed to the caller (``last_eid``), the resume point for resumable streams.

A call reaches its connection only through a :class:`CallChannel` the client
gives it (send a frame on the connection the call started on; leave the
client's table of calls), so this module does not know the client.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncGenerator, Protocol

from ..exceptions import DataLoss, StreamError, Unavailable
from ..flow import CreditGate
from ..protocol import frames as wire
from ..protocol.frames import EndFrame, ErrorFrame, NextFrame, ReadyFrame
from ..protocol.session import Credit


class CallChannel(Protocol):
    """What a call needs of the client: its own connection, and a way out of the client's table."""

    async def send(self, text: str) -> None:
        """Send one frame on the connection the call started on.

        Raises ``Unavailable`` once that connection is no longer the client's
        live one, and ``ResourceExhausted`` for a frame over the server's limit.
        """

    def release(self, call_id: int) -> None:
        """The call is over: the client stops routing the server's frames to it."""

class StateLost(DataLoss):
    """A resumable stream could not be resumed: reload your state, then open it again.

    The server's history no longer reaches back to the last event the caller
    got (``ready`` with ``recovered: false``), so nothing was replayed rather
    than something partial. ``details["resume"]`` is the event id asked for,
    ``details["eid"]`` the server's current position.
    """

    default_message = "The stream's history no longer reaches the resume point; reload the state."


class ClientCall:
    """One call in flight; iterate it for items, await ``result()`` for its outcome."""

    def __init__(
        self,
        channel: CallChannel,
        call_id: int,
        method: str,
        window: int | None,
        *,
        client_window: int = 0,
        resume: str | None = None,
    ) -> None:
        self.channel = channel
        self.id = call_id
        self.method = method
        self.window = window
        self.resume = resume
        self.last_eid: str | None = None  # of the last item handed to the caller: where a resume starts
        self._lost: StreamError | None = None
        self.frames: asyncio.Queue[Any] = asyncio.Queue()
        self.done = False
        self.ready: ReadyFrame | None = None
        self._result: Any = None
        self._error: StreamError | None = None
        self._consumed = 0
        self._outbound = CreditGate(Credit(client_window))  # the server's credit for our items
        self._half_closed = False

    # -- fed by the client's reader ----------------------------------------------

    def deliver(self, frame: Any) -> None:
        self.frames.put_nowait(frame)

    def grant_outbound(self, n: int) -> None:
        self._outbound.grant(n)

    def fail(self, error: StreamError) -> None:
        """End the call from the client side: its connection was lost.

        Items already received are still handed out, then ``error`` is raised;
        a ``send()`` waiting for credit fails at once.
        """
        self._lost = error
        self.frames.put_nowait(ErrorFrame(self.id, str(error.code), error.message, error.details))
        self._outbound.grant(1)  # wake a sender held for credit: it sees _lost and raises

    async def _send_control(self, text: str) -> None:
        """Send a credit or cancel frame; nothing to do once the connection is lost."""
        if self._lost is None:
            with contextlib.suppress(Unavailable):
                await self.channel.send(text)

    # -- items ----------------------------------------------------------------------

    def __aiter__(self) -> AsyncGenerator[Any, None]:
        return self._items()

    async def _items(self) -> AsyncGenerator[Any, None]:
        # A generator, so that leaving an ``async for`` early (``break``, an
        # exception) finalizes it and the call is cancelled on the server.
        try:
            while True:
                try:
                    item = await self._next()
                except StopAsyncIteration:
                    return
                yield item
        finally:
            if not self.done:
                await self.cancel()

    @property
    def position(self) -> str | None:
        """Where this stream would resume: the last item handed out, else its ``ready`` position."""
        if self.last_eid is not None:
            return self.last_eid
        if self.ready is not None:
            return self.ready.eid
        return self.resume

    async def _next(self) -> Any:
        while not self.done:
            frame = await self.frames.get()
            if isinstance(frame, NextFrame):
                if self.resume is not None and self.ready is None:
                    # A server that resumes says so with ``ready`` first; without it
                    # events after the resume point may be missing.
                    await self._state_lost(None, "The server did not confirm the resume (no ready frame).")
                await self._consumed_one()
                if frame.eid is not None:
                    self.last_eid = frame.eid
                return frame.data
            if isinstance(frame, ReadyFrame):
                self.ready = frame
                if self.resume is not None and frame.recovered is not True:
                    await self._state_lost(frame.eid)
                continue
            self._finish(frame)
        if self._error is not None:
            raise self._error
        raise StopAsyncIteration

    async def _consumed_one(self) -> None:
        if self.window is None:
            return
        self._consumed += 1
        if self._consumed * 2 >= self.window:
            n, self._consumed = self._consumed, 0
            await self._send_control(wire.encode_credit(self.id, n))

    async def _state_lost(self, eid: str | None, message: str | None = None) -> None:
        """End the call with StateLost; the server's stream goes on from a new position, so cancel it."""
        await self.cancel()
        self._error = StateLost(message, {"resume": self.resume, "eid": eid})
        raise self._error

    def _finish(self, frame: Any) -> None:
        self.done = True
        self.channel.release(self.id)
        if isinstance(frame, EndFrame):
            self._result = frame.data
        elif isinstance(frame, ErrorFrame):
            self._error = StreamError.for_code(frame.code, frame.message, frame.details)

    async def result(self) -> Any:
        """Wait for the end of the call; items not yet read are discarded."""
        while True:
            try:
                await self._next()
            except StopAsyncIteration:
                return self._result

    # -- client half (client stream and bidirectional) ---------------------------------

    async def send(self, item: Any) -> None:
        """Send one item, waiting while the server has granted no credit."""
        if self._half_closed:
            raise RuntimeError(f"call {self.id} ({self.method}): end() was called; no more items can be sent")
        if self.done:
            if self._error is not None:
                raise self._error
            raise RuntimeError(f"call {self.id} ({self.method}) has ended")
        if self._lost is not None:
            raise self._lost
        await self._outbound.acquire()
        if self._lost is not None:
            raise self._lost
        await self.channel.send(wire.encode_next(self.id, item))

    async def end(self) -> None:
        """Half-close: no more items from this side."""
        if self._lost is not None:
            raise self._lost
        if not self._half_closed and not self.done:
            self._half_closed = True
            await self.channel.send(wire.encode_client_end(self.id))

    # -- cancellation -------------------------------------------------------------------

    async def cancel(self) -> None:
        """Stop the call on the server (its handler's ``finally`` runs); no frame follows."""
        if not self.done:
            self.done = True
            self.channel.release(self.id)
            await self._send_control(wire.encode_cancel(self.id))

    async def aclose(self) -> None:
        """Cancel the call if it is still running (what leaving ``async with`` does)."""
        await self.cancel()


class Stream(ClientCall):
    """A server stream: ``async for item in stream``; ``stream.result`` after the loop.

    Leaving the loop early (``break``) and then closing the stream, or using it
    as ``async with``, cancels the call on the server.
    """

    @property
    def resumable(self) -> bool:
        """Whether the server said this stream can be resumed (it sent ``ready``)."""
        return self.ready is not None

    @property
    def result(self) -> Any:
        if not self.done:
            raise RuntimeError("the stream's result is known once iteration has finished")
        return self._result

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
