"""One ``redis.asyncio`` client per event loop, for the small Redis stores beside the broker.

A client's connections belong to the loop that opened them, and a process may
run more than one loop (tests, management commands); the monitor's store and
the connection limits both keep one client per loop, made on first use.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any


class LoopClients:
    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def get(self) -> Any:
        """This loop's client (redis is imported here: it is needed only with a Redis broker)."""
        import redis.asyncio

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = redis.asyncio.Redis.from_url(
                self.url, socket_timeout=5, socket_connect_timeout=5
            )
        return client

    def pop(self) -> Any:
        """Forget this loop's client, returning it (or None) for its owner to close."""
        return self._clients.pop(asyncio.get_running_loop(), None)
