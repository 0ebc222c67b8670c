"""Credit-based flow control on asyncio, over the protocol's call state.

Shared by the server and clients; imports no Django. The counting rules live
in :class:`~streaming_app.protocol.session.Call`; this module only adds the
waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Awaitable, Callable

from .protocol.session import Call, Credit

_END = object()


class CreditGate:
    """Holds the sender of a call while it has no credit."""

    __slots__ = ("call", "_event")

    def __init__(self, call: Credit) -> None:
        self.call = call
        self._event = asyncio.Event()

    async def acquire(self) -> None:
        """Take one unit of credit, waiting for the peer to grant some if there is none."""
        while not self.call.take_credit():
            self._event.clear()
            await self._event.wait()

    def grant(self, n: int) -> None:
        self.call.add_credit(n)
        self._event.set()

    @property
    def waiting(self) -> bool:
        """True while the sender is held for lack of credit."""
        return self.call.credit == 0


class Inbox:
    """Items received on a call, iterated by the handler; credit is granted back as it reads.

    The peer can never have more than its window in flight, so the queue is
    bounded by the window without needing a bound of its own.
    """

    def __init__(
        self,
        call: Call,
        grant: Callable[[int], Awaitable[None]],
        convert: Callable[[Any], Any] | None = None,
    ) -> None:
        self.call = call
        self._grant = grant
        self._convert = convert
        self._items: deque[Any] = deque()
        self._ready = asyncio.Event()
        self._ended = False

    def put(self, item: Any) -> None:
        self._items.append(item)
        self._ready.set()

    def end(self) -> None:
        self._items.append(_END)
        self._ready.set()

    def __aiter__(self) -> Inbox:
        return self

    async def __anext__(self) -> Any:
        if self._ended:
            raise StopAsyncIteration
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if item is _END:
            self._ended = True
            raise StopAsyncIteration
        n = self.call.item_consumed()
        if n:
            await self._grant(n)
        return item if self._convert is None else self._convert(item)
