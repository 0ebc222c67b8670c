"""What a handler knows about the call it serves."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from django.http import QueryDict

from . import exceptions
from .protocol.session import CallKind

if TYPE_CHECKING:
    from rest_framework.request import Request

    from .hub import Subscription
    from .views import StreamView


class CallContext:
    """One call: who makes it, over what, until when, and whether it was cancelled.

    ``headers`` and ``query`` are the request metadata: those of the WebSocket
    handshake for a WebSocket call, those of the request for an HTTP call.
    ``deadline`` is a ``time.monotonic()`` value (None: no deadline).
    A server stream sets ``result`` to return a value with its ``end``
    (an async generator cannot ``return`` one).
    """

    def __init__(
        self,
        *,
        call_id: int,
        method: str,
        kind: CallKind,
        request: Request,
        scope: Mapping[str, Any],
        connection_id: str,
        transport: str = "websocket",
        deadline: float | None = None,
        resume: str | None = None,
    ) -> None:
        self.call_id = call_id
        self.method = method
        self.kind = kind
        self.request = request
        self.scope = scope
        self.connection_id = connection_id
        self.transport = transport
        self.deadline = deadline
        self.resume = resume
        self.result: Any = None
        self.view: StreamView | None = None  # set by the view serving the call
        self._cancelled = False
        self._abort_hook: Callable[[exceptions.StreamError], None] | None = None
        self._subscriptions: list[Subscription] = []

    @property
    def user(self) -> Any:
        return self.request.user

    @property
    def auth(self) -> Any:
        return self.request.auth

    @property
    def headers(self) -> dict[str, str]:
        if not hasattr(self, "_headers"):
            self._headers = {
                name.decode("latin1").lower(): value.decode("latin1")
                for name, value in self.scope.get("headers", ())
            }
        return self._headers

    @property
    def query(self) -> QueryDict:
        if not hasattr(self, "_query"):
            raw = self.scope.get("query_string", b"")
            self._query = QueryDict(raw.decode("latin1") if isinstance(raw, bytes) else raw)
        return self._query

    @property
    def time_remaining(self) -> float | None:
        """Seconds until the deadline (never negative), or None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    @property
    def cancelled(self) -> bool:
        """True once the call was cancelled, ran out of time or lost its connection.

        Async handlers are interrupted at their next ``await`` anyway; sync
        handlers, which run in a thread, should poll this in long loops.
        """
        return self._cancelled

    def mark_cancelled(self) -> None:
        self._cancelled = True

    # -- topics --------------------------------------------------------------------

    def subscribe(self, topic: str, *, buffer: int | None = None) -> Subscription:
        """What is published on ``topic`` from now on, if the view allows this user to read it.

        ``async for event in ctx.subscribe(topic): yield event`` relays a topic;
        ``sub = await ctx.subscribe(topic)`` goes live at once (e.g. before
        reading a snapshot). The view's ``check_topic_permissions`` decides who
        may subscribe. A subscriber too slow for its buffer ends the call with
        ``resource_exhausted`` at once, even while it waits for credit. The
        subscription ends with the call.
        """
        from .db import call_sync_policy
        from .topics import subscribe

        subscription = subscribe(topic, buffer=buffer, on_error=self.abort)
        view = self.view
        if view is not None:
            subscription.authorize = lambda: call_sync_policy(view.check_topic_permissions, topic)
        self._subscriptions.append(subscription)
        return subscription

    def abort(self, error: exceptions.StreamError) -> None:
        """End the call with ``error`` now, wherever its handler is waiting."""
        if self._abort_hook is not None:
            self._abort_hook(error)

    def release(self) -> None:
        """Leave every topic the call subscribed to (the call is over)."""
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            subscription.close()

    def __repr__(self) -> str:
        return f"<CallContext {self.method} id={self.call_id} conn={self.connection_id}>"
