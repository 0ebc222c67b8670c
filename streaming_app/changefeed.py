"""Changed rows read once per process, shared by every watcher of a model.

A change event names rows (``{"op": "updated", "pks": [7]}``). Each watcher
must learn what those rows are now, whether it may see them and how they
render. Reading them once per watcher made the database work of one change
grow with the watchers (three transactions each, on the process's one
database thread, where handshakes queued behind them). Here the first watcher
to reach an event starts one read and every other watcher of the same
queryset awaits that same read: one query per change, event and process,
whatever the number of watchers. Reads run on a thread of their own, so the
process's other database calls never wait behind them, and each rendering of
a row is serialized and encoded once, then shared.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Hashable, TypeVar

from django.db import InterfaceError, OperationalError, connections

from .encoding import json_default
from .protocol import frames as wire

T = TypeVar("T")

# Reads kept for watchers that reach an event later than the first one: a
# watcher behind by more events than this reads again (same result, more work).
KEPT_READS = 256

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _reader() -> ThreadPoolExecutor:
    """The process's change-reading thread (one connection, started on first use)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="streaming_app.changes")
        return _executor


def _with_connection(func: Callable[[], Any]) -> Any:
    """Run ``func`` on the reading thread's connection, kept from one read to the next.

    One thread holds one connection for the process's lifetime, as a worker
    process would: reconnecting for every change would cost a connection and
    a ``SET TIME ZONE`` transaction per change. A connection that fails is
    closed and the read tried once more on a new one (the database restarted).
    """
    for attempt in (1, 2):
        try:
            return func()
        except (InterfaceError, OperationalError):
            connections.close_all()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _close() -> None:
    connections.close_all()


async def close_connections() -> None:
    """Close the reading thread's connection (tests, before the test database is dropped)."""
    if _executor is not None:
        await asyncio.get_running_loop().run_in_executor(_executor, _close)


async def run_read(func: Callable[[], T]) -> T:
    """Run a read on the change-reading thread."""
    result: T = await asyncio.get_running_loop().run_in_executor(_reader(), _with_connection, func)
    return result


class ChangedRows:
    """The rows one change event names, as one queryset reads them now.

    ``rows`` maps wire primary keys to model instances (rows that are gone, or
    outside the queryset, are absent); ``pks`` are the keys the event named. Renderings (serialized rows) and the
    JSON of the items made from them are computed once per rendering key.
    """

    __slots__ = ("rows", "pks", "op", "carried", "_rendered", "_items")

    def __init__(
        self,
        rows: dict[Any, Any],
        *,
        pks: list[Any],
        op: str,
        carried: bool = False,
        rendered: dict[Hashable, dict[Any, Any]] | None = None,
    ) -> None:
        self.rows = rows
        self.pks = list(dict.fromkeys(pks))  # the rows the event names, once each, in order
        self.op = op  # the event's hint: created, updated or deleted
        self.carried = carried  # made from what the event carried: nothing was read
        self._rendered: dict[Hashable, asyncio.Future[dict[Any, Any]]] = {}
        self._items: dict[tuple[Hashable, Any, str], str] = {}
        for key, data in (rendered or {}).items():
            future = self._rendered[key] = asyncio.get_running_loop().create_future()
            future.set_result(data)

    def rendered_now(self, key: Hashable) -> dict[Any, Any] | None:
        """The rendering for ``key`` if it is done (the common case), else None."""
        future = self._rendered.get(key)
        if future is not None and future.done() and not future.cancelled() and future.exception() is None:
            return future.result()
        return None

    async def rendered(self, key: Hashable, render: Callable[[list[Any]], list[Any]]) -> dict[Any, Any]:
        """The serialized rows for rendering ``key`` (``render`` runs once per key, on the reading thread)."""
        future = self._rendered.get(key)
        if future is None:
            future = self._rendered[key] = asyncio.ensure_future(self._render(render))
        elif future.done():
            return future.result()  # the common case: no shield, no suspension
        return await asyncio.shield(future)

    async def _render(self, render: Callable[[list[Any]], list[Any]]) -> dict[Any, Any]:
        pks = list(self.rows)
        if not pks:
            return {}
        data = await run_read(lambda: render([self.rows[pk] for pk in pks]))
        return dict(zip(pks, data))

    def item_json(self, key: Hashable, pk: Any, op: str, data: Any) -> str:
        """The JSON of ``{"op", "pk", "data"}`` for one rendering, encoded once and shared."""
        cache_key = (key, pk, op)
        text = self._items.get(cache_key)
        if text is None:
            text = self._items[cache_key] = wire.dumps({"op": op, "pk": pk, "data": data}, json_default)
        return text


class ChangeFeed:
    """One process's reads of change events, keyed by (event, queryset)."""

    def __init__(self, kept: int = KEPT_READS) -> None:
        self.kept = kept
        self._reads: OrderedDict[Hashable, asyncio.Future[ChangedRows]] = OrderedDict()
        self._must_read: set[type] = set()
        self.reads_started = 0  # how many reads this feed ran (the benchmark and tests report it)

    def ready(self, key: Hashable) -> ChangedRows | None:
        """The rows for ``key`` if they are made already (the common case), else None."""
        future = self._reads.get(key)
        if future is not None and future.done() and not future.cancelled() and future.exception() is None:
            return future.result()
        return None

    def must_read(self, kind: type) -> bool:
        """Whether rows of ``kind`` (a view class) are read even when their event carries them."""
        return kind in self._must_read

    def read_from_now_on(self, kind: type) -> None:
        self._must_read.add(kind)

    async def rows(
        self,
        key: Hashable,
        read: Callable[[], ChangedRows],
        carried: Callable[[], ChangedRows | None] | None = None,
    ) -> ChangedRows:
        """The rows for ``key``: made from the event (``carried``) or read once, then shared.

        ``carried`` builds them from what the event carries, on the loop; when
        it is absent or gives None, ``read`` runs on the reading thread. The
        read is a task of its own: a watcher cancelled while it waits cancels
        nothing for the others. A failed read is forgotten, so the next
        watcher tries again.
        """
        future = self._reads.get(key)
        if future is None:
            built = carried() if carried is not None else None
            if built is not None:
                future = asyncio.get_running_loop().create_future()
                future.set_result(built)
                self._store(key, future)
                return built
            self.reads_started += 1
            future = asyncio.ensure_future(self._read(read))
            self._store(key, future)
            future.add_done_callback(lambda done: self._forget_failed(key, done))
        elif future.done():
            return future.result()  # the common case: no shield, no suspension
        return await asyncio.shield(future)

    def _store(self, key: Hashable, future: asyncio.Future[ChangedRows]) -> None:
        self._reads[key] = future
        while len(self._reads) > self.kept:
            self._reads.popitem(last=False)

    @staticmethod
    async def _read(read: Callable[[], ChangedRows]) -> ChangedRows:
        return await run_read(read)

    def _forget_failed(self, key: Hashable, future: asyncio.Future[ChangedRows]) -> None:
        if future.cancelled() or future.exception() is not None:
            if self._reads.get(key) is future:
                del self._reads[key]


_feeds: dict[asyncio.AbstractEventLoop, ChangeFeed] = {}


def get_feed() -> ChangeFeed:
    """The change feed of the running event loop (a server process has one)."""
    loop = asyncio.get_running_loop()
    feed = _feeds.get(loop)
    if feed is None:
        for old in [old for old in _feeds if old.is_closed()]:
            del _feeds[old]
        feed = _feeds[loop] = ChangeFeed()
    return feed
