"""One ``redis.asyncio`` client per event loop, for the broker and the small Redis stores beside it.

A client's connections belong to the loop that opened them, and a process may
run more than one loop (tests, management commands, the sync publish thread),
so the broker, presence, the monitor's store and the connection limits each
keep one client (with its scripts, or its own pool) per loop, made on first
use and forgotten with the loop.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One value per running event loop, made by ``factory`` the first time that loop asks."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        value = self._values.get(loop)
        if value is None:
            value = self._values[loop] = self._factory()
        return value

    def pop(self) -> T | None:
        """Forget this loop's value, returning it (or None) for its owner to close."""
        return self._values.pop(asyncio.get_running_loop(), None)


class LoopClients(PerLoop[Any]):
    """A plain client per loop, with short timeouts: for stores whose calls are quick."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(self._connect)

    def _connect(self) -> Any:
        import redis.asyncio  # needed only with a Redis broker

        return redis.asyncio.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
