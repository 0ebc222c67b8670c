"""What the server has queued for one peer and not yet written to its socket.

daphne's ``send`` never waits: each message goes at once into the Twisted
transport's write buffer, whether the peer reads or not. A client that stops
reading while a stream produces, or while it sends pings whose pongs it never
reads, would grow that buffer, and the process, without bound. This module
finds the transport behind the ``send`` callable daphne gives an application
(``functools.partial(Server.handle_reply, protocol)``) and reads how many
bytes wait in it, so the transports can hold a stream (wait for the peer to
read) or close a connection that will not read.

Under another server (uvicorn, whose WebSocket ``send`` waits for the socket
to drain) nothing is found and nothing is measured: its own backpressure
applies.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

# Seconds between two looks at a buffer someone waits on: only while a peer
# is behind, and one poller per connection however many calls wait.
POLL_INTERVAL = 0.02


class SendBuffer:
    """The write buffer of one connection's transport (Twisted's ``FileDescriptor``)."""

    __slots__ = ("_transport", "_poller")

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._poller: asyncio.Task[None] | None = None

    def pending(self) -> int:
        """Bytes written to the transport that the socket has not taken yet."""
        transport = self._transport
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen  # type: ignore[no-any-return]

    @property
    def open(self) -> bool:
        transport = self._transport
        return bool(transport.connected) and not transport.disconnected

    async def below(self, limit: int) -> None:
        """Return once at most ``limit`` bytes are pending (or the connection is gone)."""
        while self.pending() > limit and self.open:
            poller = self._poller
            if poller is None or poller.done():
                poller = self._poller = asyncio.get_running_loop().create_task(self._poll(limit))
            # Shielded: a waiter that is cancelled (its call ended) must not
            # stop the poller the connection's other waiters share.
            await asyncio.shield(poller)

    async def _poll(self, limit: int) -> None:
        while self.pending() > limit and self.open:
            await asyncio.sleep(POLL_INTERVAL)


def _transport_of(send: Any) -> Any:
    if isinstance(send, functools.partial) and send.args:
        return getattr(send.args[0], "transport", None)
    return None


def _measurable(transport: Any) -> bool:
    return all(hasattr(transport, name) for name in ("dataBuffer", "offset", "_tempDataLen", "connected"))


def for_send(send: Any) -> SendBuffer | None:
    """The buffer behind an ASGI ``send`` callable, when daphne made it (else None)."""
    transport = _transport_of(send)
    return SendBuffer(transport) if _measurable(transport) else None


def for_current_response() -> SendBuffer | None:
    """The buffer of the HTTP response the current task is sending (else None).

    A streaming response's body is iterated by Django's ASGI handler in the
    task that runs ``process_request(request, send)``; that coroutine's
    ``send`` is daphne's. Anything else (another handler, another server)
    finds nothing.
    """
    task = asyncio.current_task()
    coro = task.get_coro() if task is not None else None
    frame = getattr(coro, "cr_frame", None)
    if frame is None:
        return None
    return for_send(frame.f_locals.get("send"))
