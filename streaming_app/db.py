"""Database access from the event loop, without a thread hop per frame.

Channels' ``AsyncConsumer.dispatch`` closes stale connections through a
thread hop on every message; at tens of thousands of frames a second that hop
dominates. streaming_app instead:

* runs sync handlers in a worker thread through ``database_sync_to_async``,
  which closes stale connections before and after, as Channels does;
* runs sync policy code (permission checks, argument serializers) in a worker
  thread too, once, unless it is declared loop-safe (:func:`call_sync_policy`);
* returns stale connections of async handlers (the async ORM's thread) at
  most once per ``DB_CONNECTION_CHECK_INTERVAL`` per process, after calls end.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import deque
from contextlib import contextmanager
from typing import Any, Awaitable, Callable, Iterator, TypeVar, cast

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections
from rest_framework import permissions

from .views import StreamView

T = TypeVar("T")

# DRF's permission classes that only read the already authenticated request:
# no I/O of their own and no side effects, so they run on the event loop.
LOOP_SAFE_PERMISSIONS: frozenset[type] = frozenset(
    {permissions.AllowAny, permissions.IsAuthenticated, permissions.IsAdminUser, permissions.IsAuthenticatedOrReadOnly}
)

# The view methods the policy of a call goes through; a view that overrides
# any of them runs its policy in a thread unless it sets ``loop_safe = True``.
VIEW_POLICY_METHODS = ("initial", "check_permissions", "check_topic_permissions", "get_permissions", "permission_denied")


def is_loop_safe(permission: Any) -> bool:
    """Whether a permission (class or instance) may run on the event loop.

    It is when it says so with a ``loop_safe = True`` class attribute, when it
    is one of DRF's in :data:`LOOP_SAFE_PERMISSIONS`, or when it combines
    (``&``, ``|``, ``~``) permissions that all are.
    """
    # The ignores: DRF sets op1/op2 in AND/OR/NOT.__init__, which
    # djangorestframework-stubs 3.16 do not declare.
    if isinstance(permission, (permissions.AND, permissions.OR)):
        return is_loop_safe(permission.op1) and is_loop_safe(permission.op2)  # type: ignore[union-attr]
    if isinstance(permission, permissions.NOT):
        return is_loop_safe(permission.op1)  # type: ignore[attr-defined]
    if isinstance(permission, permissions.OperandHolder):
        return is_loop_safe(permission.op1_class) and is_loop_safe(permission.op2_class)
    if isinstance(permission, permissions.SingleOperandHolder):
        return is_loop_safe(permission.op1_class)
    cls = permission if isinstance(permission, type) else type(permission)
    return cls in LOOP_SAFE_PERMISSIONS or getattr(cls, "loop_safe", False) is True


def view_policy_is_loop_safe(view: StreamView) -> bool:
    """Whether a view's ``initial()`` and ``check_topic_permissions()`` may run on the event loop.

    They may when every permission of the call is loop-safe, it has no
    throttle that is not (throttles keep counts, usually in a cache), and the view
    either overrides none of :data:`VIEW_POLICY_METHODS` or vouches for its
    overrides with ``loop_safe = True``.
    """
    cls = type(view)
    if getattr(cls, "loop_safe", False) is not True:
        if any(getattr(cls, name) is not getattr(StreamView, name) for name in VIEW_POLICY_METHODS):
            return False
    if not all(getattr(throttle, "loop_safe", False) is True for throttle in view.get_throttles()):
        return False
    return all(is_loop_safe(permission) for permission in view.get_permissions())


def runs_on_loop(func: Callable[..., Any]) -> bool:
    """Whether :func:`call_sync_policy` may run ``func`` on the event loop (see there)."""
    owner = getattr(func, "__self__", None)
    if isinstance(owner, StreamView):
        return view_policy_is_loop_safe(owner)
    return getattr(func, "loop_safe", False) is True


async def call_sync_policy(func: Callable[..., T], *args: Any) -> T:
    """Run policy code (permissions, argument validation) once, where it is safe to run.

    In a worker thread, unless it is async (awaited here) or declared
    loop-safe (:func:`runs_on_loop`: a view whose permissions are all
    loop-safe, or a function with ``loop_safe = True``). Loop-safe means: it
    does not block and has no side effects, so it runs on the event loop
    without a thread hop; if it reaches the database anyway (Django raises
    ``SynchronousOnlyOperation``) it is run again in a worker thread, which
    only code without side effects tolerates. Undeclared code is never run
    twice.
    """
    if inspect.iscoroutinefunction(func):
        return await cast(Callable[..., Awaitable[T]], func)(*args)
    if runs_on_loop(func):
        try:
            return func(*args)
        except SynchronousOnlyOperation:
            pass
    result: T = await database_sync_to_async(func)(*args)  # channels ships no types
    return result


async def run_in_worker(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a sync handler in the thread pool, so a blocking one stalls nothing else.

    Not thread-sensitive: two slow sync handlers run side by side, and each
    thread's connection is checked before and after the handler.
    """
    result: T = await database_sync_to_async(func, thread_sensitive=False)(*args, **kwargs)  # channels ships no types
    return result


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


@contextmanager
def unlogged_queries(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Keep the queries run inside out of ``DEBUG``'s query log (this thread's connection only).

    With ``DEBUG = True`` Django keeps every query's SQL in
    ``connection.queries_log`` (up to 9,000) until a request starts; in a
    serving process nothing starts one for WebSocket calls, so the worker
    thread's log only fills. The app's own background writes (the admin
    history's bulk inserts: tens of kilobytes of SQL each) would make it
    hundreds of MiB per process, which bench/soak.py saw as RSS growing ~3
    MiB a minute. The developer's own queries are logged as before.
    """
    connection = connections[using]
    kept = connection.queries_log
    connection.queries_log = deque(maxlen=0)  # appended to, and forgotten at once
    try:
        yield
    finally:
        connection.queries_log = kept

