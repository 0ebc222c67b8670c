"""What a handler knows about the call it serves.

The context knows nothing of transports, views or the registry: whatever
runs the call (:class:`streaming_app.runner.CallRunner`) connects it to them
through three public hooks, so that this module, the views and the registry
import one another in one direction only.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

from django.http import QueryDict

from . import exceptions
from .protocol.session import CallKind

if TYPE_CHECKING:
    from rest_framework.request import Request

    from .hub import Subscription
    from .presence import Member, PresenceEvents


class CallContext:
    """One call: who makes it, over what, until when, and whether it was cancelled.

    ``headers`` and ``query`` are the request metadata: those of the WebSocket
    handshake for a WebSocket call, those of the request for an HTTP call.
    ``deadline`` is a ``time.monotonic()`` value (None: no deadline).
    A server stream sets ``result`` to return a value with its ``end``
    (an async generator cannot ``return`` one).

    Hooks, set by the runner of the call (None: the context is not running,
    e.g. in a unit test, and the feature does nothing):

    ``announce(eid, recovered)``
        writes the ``ready`` frame in the transport's framing;
    ``on_abort(error)``
        stops the call with ``error`` wherever its handler waits;
    ``authorize_topic(topic)``
        awaits the view's ``check_topic_permissions``, raising to refuse.
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
        self.announce: Callable[[str, bool | None], Awaitable[None]] | None = None
        self.on_abort: Callable[[exceptions.StreamError], None] | None = None
        self.authorize_topic: Callable[[str], Awaitable[Any]] | None = None
        self._cancelled = False
        self._subscriptions: list[Subscription] = []
        self._members: list[Member] = []
        self._presence_watches: list[PresenceEvents] = []
        self._ready_sent = False

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

    def subscribe(
        self,
        topic: str,
        *,
        resumable: bool | None = None,
        buffer: int | None = None,
        after: str | None = None,
        on_error: Callable[[exceptions.StreamError], None] | None = None,
    ) -> Subscription:
        """What is published on ``topic`` from now on, if the view allows this user to read it.

        ``async for event in ctx.subscribe(topic): yield event`` relays a topic;
        ``sub = await ctx.subscribe(topic)`` goes live at once (e.g. before
        reading a snapshot). The view's ``check_topic_permissions`` decides who
        may subscribe. A subscriber too slow for its buffer ends the call with
        ``resource_exhausted`` at once, even while it waits for credit. The
        subscription ends with the call.

        The call's first subscription is resumable (``resumable=None``): when
        it goes live the client gets ``ready`` with its position, and a call
        that carried a resume point gets what it missed first. Further
        subscriptions of the call are not (their event ids belong to other
        topics), unless ``resumable=True``.

        A stream that keeps positions of its own (model change streams) passes
        ``resumable=False`` with ``after``, the topic event id to resume after,
        announces its own ``ready``, and may pass ``on_error`` to see a
        subscription's error (and its resume point) before the call ends with it.
        """
        from .topics import subscribe

        if resumable is None:
            resumable = not self._subscriptions and not self._ready_sent and after is None
        if resumable and after is not None:
            raise ValueError("A resumable subscription resumes from the call's resume point; 'after' needs resumable=False.")
        subscription = subscribe(
            topic,
            resume=self.resume if resumable else after,
            buffer=buffer,
            on_error=on_error or self.abort,
            on_ready=self.ready if resumable else None,
        )
        if self.authorize_topic is not None:
            subscription.authorize = functools.partial(self.authorize_topic, topic)
        self._subscriptions.append(subscription)
        return subscription

    async def ready(self, eid: str, recovered: bool | None = None) -> None:
        """Tell the client the stream is live after ``eid``: the ``ready`` frame, once per call.

        Subscriptions announce themselves; a stream method that makes its own
        resumable items (``yield Event(data, eid=...)``, resuming from
        ``ctx.resume``) calls this before its first item, with ``recovered``
        saying whether it could start right after ``ctx.resume`` (None when the
        call did not resume).
        """
        if self._ready_sent or self.announce is None:
            return
        self._ready_sent = True
        await self.announce(eid, recovered if self.resume is not None else None)

    def abort(self, error: exceptions.StreamError) -> None:
        """End the call with ``error`` now, wherever its handler is waiting."""
        if self.on_abort is not None:
            self.on_abort(error)

    # -- presence (streaming_app.presence) ------------------------------------------------

    async def _authorize(self, topic: str) -> None:
        from .topics import validate_topic

        validate_topic(topic)
        if self.authorize_topic is not None:
            await self.authorize_topic(topic)

    async def join(self, topic: str, *, info: Any = None) -> Member:
        """Be in ``topic``'s presence, on every process, until the call ends (or ``member.leave``).

        The member is the caller (the handshake's user; an anonymous caller
        is counted, never named) with ``info``, public JSON the view chooses
        (a display name, a device), at most ``PRESENCE_MAX_INFO_BYTES``.
        Joining needs the topic's subscribe permission. Returns the member;
        its ``client`` id is in its join and leave events.
        """
        from .presence import get_tracker

        await self._authorize(topic)
        member = await get_tracker().join(topic, self.user, info)
        self._members.append(member)
        for watch in self._presence_watches:
            watch.own.add(member.client)
        return member

    def leave(self, member: Member) -> None:
        """Leave a topic's presence before the call ends."""
        from .presence import get_tracker

        get_tracker().leave(member)

    async def presence(self, topic: str) -> list[dict[str, Any]]:
        """The members of ``topic`` now, on every process: ``[{"client", "user", "info"}]``.

        Only for a caller who may subscribe to the topic: otherwise
        ``permission_denied`` (never an empty list).
        """
        from .presence import presence

        await self._authorize(topic)
        return await presence(topic)

    async def presence_stats(self, topic: str) -> dict[str, int]:
        """``{"clients", "users", "anonymous"}`` of ``topic`` now; permission as :meth:`presence`."""
        from .presence import presence_stats

        await self._authorize(topic)
        return await presence_stats(topic)

    def presence_events(self, topic: str, *, per_user: bool = True, buffer: int | None = None) -> PresenceEvents:
        """``topic``'s joins and leaves from now on: ``{"presence": "join" | "leave", "user", "client", "clients"}``.

        Like :meth:`subscribe`: iterate it, or await it to go live at once
        (then join, so the call's own join is its first event). Per user (the
        default), a signed-in user joins with their first client and leaves
        with their last; this call's own members' events always come through.
        Needs the topic's subscribe permission. Not resumable.
        """
        from .presence import watch

        events = watch(topic, per_user=per_user, buffer=buffer)
        events.subscription._on_error = self.abort
        if self.authorize_topic is not None:
            events.subscription.authorize = functools.partial(self._authorize, topic)
        events.own.update(member.client for member in self._members)
        self._presence_watches.append(events)
        return events

    def release(self) -> None:
        """Leave every topic the call subscribed to and every presence it joined (the call is over)."""
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            subscription.close()
        watches, self._presence_watches = self._presence_watches, []
        for watch in watches:
            watch.close()
        members, self._members = self._members, []
        if members:
            from .presence import get_tracker

            tracker = get_tracker()
            for member in members:
                tracker.leave(member)

    def __repr__(self) -> str:
        return f"<CallContext {self.method} id={self.call_id} conn={self.connection_id}>"
