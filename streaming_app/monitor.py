"""Live bookkeeping of open calls, per server process, for the admin.

Why it is shaped this way: a stream may send tens of thousands of items a
second, so the hot path is two integer increments on an object the transport
already holds (:class:`OpenCall`); nothing is locked, logged, written or
published per item. Once per ``MONITOR_INTERVAL`` a per-process flusher task
(started by the first call, gone after a few idle intervals) does all the
I/O: one snapshot write of every open call with its rates, and one batched
insert of the calls that ended into :class:`~streaming_app.models.FinishedCall`.

Where snapshots go (:func:`get_store`): with a Redis broker (one whose
``redis_url`` is set), to one Redis key
per process with a TTL of ``MONITOR_TTL_INTERVALS`` intervals, so a process
that dies (SIGKILL, OOM, a lost host) drops out of the live list within
seconds without anyone cleaning up, and the database sees no heartbeat
traffic. With the memory broker there is by definition one process, and its
snapshot stays in its own memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import weakref
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from channels.db import database_sync_to_async
from django.db import router

from . import control
from .brokers import get_broker
from .conf import streaming_settings
from .db import unlogged_queries
from .finished import FinishedCalls
from .redis_clients import LoopClients
from .hub import _hubs

if TYPE_CHECKING:
    from .context import CallContext
    from .exceptions import StreamError
    from .registry import StreamMethod

logger = logging.getLogger("streaming_app")

# Idle intervals (no open call, nothing to write) after which a process's flusher stops.
IDLE_INTERVALS = 5

_process_id: str | None = None


def process_id() -> str:
    """``host:pid`` of this server process, as the live list shows it."""
    global _process_id
    if _process_id is None or not _process_id.endswith(f":{os.getpid()}"):
        _process_id = f"{socket.gethostname()}:{os.getpid()}"
    return _process_id


def client_address(scope: Any) -> str:
    client = scope.get("client") if scope else None
    if not client:
        return ""
    host, port = client[0], client[1] if len(client) > 1 else None
    return f"{host}:{port}" if port is not None else str(host)


def username_of(ctx: CallContext) -> str:
    try:
        user = ctx.user
    except Exception:  # a request whose authentication failed has no user
        return ""
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    return str(user.get_username())


class OpenCall:
    """One open call as the monitor sees it; the transport bumps its counters.

    ``terminate(error)`` ends the call with ``error`` on the client's side and
    runs the handler's ``finally``; ``close_connection()`` (WebSocket only)
    closes the whole socket with 4000.
    """

    __slots__ = (
        "method", "namespace", "kind", "transport", "user", "client", "connection_id", "call_id",
        "started", "started_mono", "items_in", "items_out", "bytes_in", "bytes_out",
        "waiting", "terminate", "close_connection", "last_activity", "_seen", "_seen_at",
    )

    def __init__(
        self,
        method: StreamMethod,
        ctx: CallContext,
        *,
        terminate: Callable[[StreamError], None],
        waiting: Callable[[], bool],
        close_connection: Callable[[], None] | None = None,
        transport: str | None = None,
    ) -> None:
        self.method = method.name
        self.namespace = method.namespace
        self.kind = str(method.kind)
        self.transport = transport or ctx.transport
        self.user = username_of(ctx)
        self.client = client_address(ctx.scope)
        self.connection_id = ctx.connection_id
        self.call_id = ctx.call_id
        self.started = time.time()
        self.started_mono = time.monotonic()
        self.items_in = 0
        self.items_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.waiting = waiting
        self.terminate = terminate
        self.close_connection = close_connection
        self.last_activity = self.started
        self._seen = 0
        self._seen_at = self.started_mono

    def snapshot(self, now: float, now_mono: float, process: str) -> dict[str, Any]:
        """The call as one row of the live list; the rate is over the time since the last snapshot."""
        items = self.items_in + self.items_out
        elapsed = now_mono - self._seen_at
        rate = (items - self._seen) / elapsed if elapsed > 0 else 0.0
        if items != self._seen:
            self.last_activity = now
        self._seen, self._seen_at = items, now_mono
        try:
            waiting = bool(self.waiting())
        except Exception:
            waiting = False
        return {
            "key": f"{process}/{self.connection_id}/{self.call_id}",
            "process": process,
            "conn": self.connection_id,
            "call": self.call_id,
            "method": self.method,
            "namespace": self.namespace,
            "kind": self.kind,
            "transport": self.transport,
            "user": self.user,
            "client": self.client,
            "started": self.started,
            "items_in": self.items_in,
            "items_out": self.items_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "rate": round(rate, 1),
            "waiting": waiting,
            "last": self.last_activity,
        }


# -- where snapshots live ---------------------------------------------------------


class LocalStore:
    """Snapshots in this process's memory: the memory broker serves one process."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, str]] = {}

    async def write(self, process: str, payload: str, ttl: float) -> None:
        self._entries[process] = (time.monotonic() + ttl, payload)

    async def delete(self, process: str) -> None:
        self._entries.pop(process, None)

    async def close(self) -> None:
        pass

    async def read_all(self) -> list[str]:
        now = time.monotonic()
        for process, (expires, _) in list(self._entries.items()):
            if expires <= now:
                del self._entries[process]
        return [payload for _, payload in self._entries.values()]


class RedisStore:
    """One key per process, ``<prefix>:monitor:<process>``, that expires unless rewritten."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.pattern = f"{prefix}:monitor:*"
        self.prefix = f"{prefix}:monitor:"
        self._clients = LoopClients(url)

    def _client(self) -> Any:
        return self._clients.get()

    async def close(self) -> None:
        """Close this event loop's connection (a reader that is not a server, e.g. a test)."""
        client = self._clients.pop()
        if client is not None:
            await client.aclose()

    async def write(self, process: str, payload: str, ttl: float) -> None:
        await self._client().set(self.prefix + process, payload, px=max(int(ttl * 1000), 1))

    async def delete(self, process: str) -> None:
        await self._client().delete(self.prefix + process)

    async def read_all(self) -> list[str]:
        client = self._client()
        keys = [key async for key in client.scan_iter(match=self.pattern, count=500)]
        if not keys:
            return []
        return [value.decode() for value in await client.mget(keys) if value is not None]


_stores: dict[str, LocalStore | RedisStore] = {}


def get_store() -> LocalStore | RedisStore:
    """The snapshot store that goes with the broker (see the module docstring)."""
    url = get_broker().redis_url
    store = _stores.get(url or "")
    if store is None:
        store = RedisStore(url, streaming_settings.TOPIC_PREFIX) if url else LocalStore()
        _stores[url or ""] = store
    return store


# -- the per-process monitor ----------------------------------------------------


class Outage:
    """The log lines of one write that keeps failing: the first failure, one a minute, the recovery.

    The monitor writes every interval; without this a Redis or database outage
    would log a warning per second per process.
    """

    REPEAT = 60.0

    def __init__(self, what: str) -> None:
        self.what = what
        self.failures = 0
        self._logged_at: float | None = None

    def failed(self, exc: BaseException, note: str = "") -> None:
        self.failures += 1
        now = time.monotonic()
        if self._logged_at is not None and now - self._logged_at < self.REPEAT:
            return
        self._logged_at = now
        if self.failures == 1:
            logger.warning("streaming_app: could not %s: %s%s", self.what, exc, note)
        else:
            logger.warning(
                "streaming_app: still cannot %s (%s failures so far): %s%s", self.what, self.failures, exc, note
            )

    def succeeded(self, note: str = "") -> None:
        if self.failures:
            logger.warning("streaming_app: could %s again after %s failures%s", self.what, self.failures, note)
        self.failures = 0
        self._logged_at = None


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


class Monitor:
    """Every open call of this process, and the finished ones not yet written."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, int], OpenCall] = {}
        self.finished = FinishedCalls()
        self._task: asyncio.Task[None] | None = None
        self.snapshot_outage = Outage("write the live call snapshot")
        self.history_outage = Outage("write finished calls to the history table")
        self._aggregates_logged_at: float | None = None
        # Event loops whose owner flushes (flush_manually): no flusher starts on them.
        self._owner_flushed: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()

    @property
    def enabled(self) -> bool:
        return bool(streaming_settings.MONITOR_CALLS)

    # -- called by the transports (no I/O) --------------------------------------

    def opened(self, method: StreamMethod, ctx: CallContext, **hooks: Any) -> OpenCall | None:
        """Start tracking a call (``hooks`` as :class:`OpenCall` takes them); None when bookkeeping is off."""
        if not streaming_settings.MONITOR_CALLS:
            return None
        call = OpenCall(method, ctx, **hooks)
        self.calls[(call.connection_id, call.call_id)] = call
        self._ensure_flusher()
        return call

    def closed(self, call: OpenCall | None, reason: str, error_code: str = "") -> None:
        """The call ended: drop it from the live list, queue its history row."""
        if call is None:
            return
        key = (call.connection_id, call.call_id)
        if self.calls.get(key) is call:
            del self.calls[key]
        now = time.time()
        self.finished.add(
            {
                "method": call.method,
                "namespace": call.namespace,
                "kind": call.kind,
                "transport": call.transport,
                "username": call.user[:150],
                "client": call.client[:100],
                "process": process_id(),
                "connection_id": call.connection_id,
                "call_id": call.call_id,
                "started_at": _when(call.started),
                "ended_at": _when(now),
                "duration": round(time.monotonic() - call.started_mono, 6),
                "items_in": call.items_in,
                "items_out": call.items_out,
                "bytes_in": call.bytes_in,
                "bytes_out": call.bytes_out,
                "end_reason": reason,
                "error_code": error_code,
                "calls": 1,
            },
            streaming_settings.HISTORY_BUFFER,
        )

    # -- commands (from streaming_app.control) ------------------------------------

    def terminate(self, connection_id: str, call_id: int | None, error: StreamError) -> int:
        """End one call (``call_id``) or close a whole connection (None); how many calls it hit."""
        if call_id is not None:
            call = self.calls.get((connection_id, call_id))
            if call is None:
                return 0
            call.terminate(error)
            return 1
        calls = [c for (conn, _), c in self.calls.items() if conn == connection_id]
        for call in calls:
            if call.close_connection is not None:
                call.close_connection()  # one close ends every call of the socket
                return len(calls)
        for call in calls:
            call.terminate(error)
        return len(calls)

    # -- the flusher ----------------------------------------------------------------

    def flush_manually(self) -> None:
        """Start no flusher (nor control listener) on the running event loop: its owner calls :meth:`flush`.

        A server process's loop lives as long as the process, and the first
        call starts the flusher there. A loop that runs calls in-process and
        ends before the process does (``streaming_app.testing.StreamTestClient``
        runs a test's calls on the test's loop) would be outlived by a flusher
        and the broker connections of its listener; its owner says so here,
        and writes what was tracked with ``await monitor.flush()``.
        """
        self._owner_flushed.add(asyncio.get_running_loop())

    def _ensure_flusher(self) -> None:
        task = self._task
        loop = asyncio.get_running_loop()
        if loop in self._owner_flushed:
            return
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._run(), name="streaming_app monitor")

    async def _run(self) -> None:
        me = asyncio.current_task()
        listener = asyncio.get_running_loop().create_task(control.listen(self), name="streaming_app control")
        idle = 0
        try:
            while self._task is me:
                await asyncio.sleep(streaming_settings.MONITOR_INTERVAL)
                busy = bool(self.calls or self.finished)
                await self.flush()
                idle = 0 if busy else idle + 1
                if idle >= IDLE_INTERVALS:
                    if self._task is me:
                        self._task = None  # a call opening from now on starts a new flusher
                    break
        finally:
            listener.cancel()
            if self._task is None or self._task is me:
                try:
                    await get_store().delete(process_id())
                except Exception:
                    pass

    async def flush(self) -> None:
        """Write this process's snapshot and its finished calls; called once per interval."""
        await self.write_snapshot()
        await self.write_history()

    async def write_snapshot(self) -> None:
        interval = float(streaming_settings.MONITOR_INTERVAL)
        process = process_id()
        now, now_mono = time.time(), time.monotonic()
        payload = json.dumps(
            {
                "process": process,
                "at": now,
                "interval": interval,
                "calls": [call.snapshot(now, now_mono, process) for call in list(self.calls.values())],
                "topics": local_topics(),
            }
        )
        try:
            await get_store().write(process, payload, interval * streaming_settings.MONITOR_TTL_INTERVALS)
        except Exception as exc:
            self.snapshot_outage.failed(exc)
        else:
            self.snapshot_outage.succeeded()

    async def write_history(self) -> None:
        if not self.finished:
            return
        finished = self.finished
        rows = finished.take(streaming_settings.HISTORY_ROWS_PER_INTERVAL)
        try:
            await database_sync_to_async(_insert_history)(rows)
        except Exception as exc:
            # Kept for the next interval, up to HISTORY_BUFFER one by one; beyond
            # it the oldest (anonymous first) are folded into aggregates.
            for row in rows:
                finished.add(row, streaming_settings.HISTORY_BUFFER)
            self.history_outage.failed(exc, self._aggregated_note())
        else:
            if self.history_outage.failures:  # the recovery's log line tells the count
                self.history_outage.succeeded(self._aggregated_note())
                finished.aggregated = 0
            elif finished.aggregated:  # a flood, not an outage: logged once a minute at most
                now = time.monotonic()
                if self._aggregates_logged_at is None or now - self._aggregates_logged_at >= Outage.REPEAT:
                    self._aggregates_logged_at = now
                    logger.warning(
                        "streaming_app: %s finished calls were written as aggregates (HISTORY_BUFFER, "
                        "HISTORY_ROWS_PER_INTERVAL)", finished.aggregated,
                    )
                    finished.aggregated = 0

    def _aggregated_note(self) -> str:
        count = self.finished.aggregated
        return f"; {count} aggregated beyond HISTORY_BUFFER" if count else ""


def _insert_history(rows: list[dict[str, Any]]) -> None:
    from .models import FinishedCall

    with unlogged_queries(router.db_for_write(FinishedCall)):  # kilobytes of SQL per insert: DEBUG's query log would keep them
        FinishedCall.objects.bulk_create([FinishedCall(**row) for row in rows], batch_size=500)


monitor = Monitor()


@control.command("terminate")
def _terminate_command(monitor: Monitor, command: dict[str, Any]) -> None:
    """End a call or close a connection, if this process owns it."""
    if command.get("process") == process_id():
        monitor.terminate(str(command["conn"]), command.get("call"), control.terminated_error())


def local_topics() -> dict[str, int]:
    """This process's topics with subscribers, and how many (presence watchers under the topic's ``~presence``)."""
    try:
        hub = _hubs.get(asyncio.get_running_loop())
    except RuntimeError:
        return {}
    if hub is None:
        return {}
    return {name: len(topic.subscribers) for name, topic in list(hub.topics.items()) if topic.subscribers}


# -- reading the live list (any process) ------------------------------------------


async def live_calls() -> dict[str, Any]:
    """Every process's latest snapshot; a process whose snapshot is late is marked lost.

    A snapshot older than two intervals means the process missed a write (it
    is dying or stalled); its calls are shown as lost until the key expires.
    """
    now = time.time()
    processes = []
    calls = []
    topics: dict[str, int] = {}
    for payload in await get_store().read_all():
        try:
            snapshot = json.loads(payload)
        except ValueError:
            continue
        lost = now - snapshot.get("at", 0) > 2 * snapshot.get("interval", 1.0)
        processes.append({"process": snapshot["process"], "at": snapshot["at"], "lost": lost, "calls": len(snapshot["calls"])})
        for call in snapshot["calls"]:
            call["lost"] = lost
            calls.append(call)
        if not lost:
            for name, count in snapshot.get("topics", {}).items():
                topics[name] = topics.get(name, 0) + count
    processes.sort(key=lambda p: p["process"])
    calls.sort(key=lambda c: (c["started"], c["key"]))
    return {"at": now, "processes": processes, "calls": calls, "topics": topics}
