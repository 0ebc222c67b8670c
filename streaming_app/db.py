"""Database access from the event loop, without a thread hop per frame.

Channels' ``AsyncConsumer.dispatch`` closes stale connections through a
thread hop on every message; at tens of thousands of frames a second that hop
dominates. streaming_app instead:

* runs sync handlers in a worker thread through ``database_sync_to_async``,
  which closes stale connections before and after, as Channels does;
* runs cheap sync policy code (permission checks, serializer validation) on
  the event loop, and only when it reaches the database (Django raises
  ``SynchronousOnlyOperation``) runs it again in a worker thread;
* returns stale connections of async handlers (the async ORM's thread) at
  most once per ``DB_CONNECTION_CHECK_INTERVAL`` per process, after calls end.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, TypeVar

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.db import close_old_connections

T = TypeVar("T")


async def call_sync_policy(func: Callable[..., T], *args: Any) -> T:
    """Run sync policy code on the loop; rerun it in a thread if it touches the database."""
    try:
        return func(*args)
    except SynchronousOnlyOperation:
        return await database_sync_to_async(func)(*args)


async def run_in_worker(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a sync handler in the thread pool, so a blocking one stalls nothing else.

    Not thread-sensitive: two slow sync handlers run side by side, and each
    thread's connection is checked before and after the handler.
    """
    return await database_sync_to_async(func, thread_sensitive=False)(*args, **kwargs)


class StaleConnectionReaper:
    """Closes obsolete connections of the async ORM's thread, at most once an interval."""

    def __init__(self) -> None:
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None

    def call_finished(self, interval: float) -> None:
        now = time.monotonic()
        if now - self._last < interval or (self._task is not None and not self._task.done()):
            return
        self._last = now
        self._task = asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        await sync_to_async(close_old_connections, thread_sensitive=True)()


reaper = StaleConnectionReaper()
