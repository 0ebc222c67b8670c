"""Per-process fan-out: the broker delivers each event once, the hub hands it to every local subscriber.

This is Phoenix's "fastlane" in Django: a publish costs one message per server
process on the broker, not one per subscriber, and the event's JSON is made
once, by the publisher, and shared by every subscriber's frame. Each
subscription has a bounded queue, so a slow subscriber is cut off with
``resource_exhausted`` (and where to resume) instead of growing memory or
silently losing events. A gap in a topic's offsets (events lost between the
broker and this process) is filled from the topic's history when it keeps one,
and otherwise fails its subscribers with ``data_loss``.

A subscription may resume after an event id: it goes live first, then reads
what it missed from the history, so nothing published in between is lost or
doubled; if the history does not reach back, it says so (``recovered`` is
False) and replays nothing.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from typing import Any, Awaitable, Callable

from django.core.signals import setting_changed

from . import exceptions
from .brokers import get_broker
from .brokers.base import Broker
from .events import Event
from .history import history_policy
from .metrics import metrics

ErrorHook = Callable[[exceptions.StreamError], None]
ReadyHook = Callable[[str, "bool | None"], Awaitable[None]]


def parse_eid(eid: str) -> tuple[str, int]:
    """An event id's epoch and offset; ``invalid_argument`` for anything else."""
    epoch, sep, offset = eid.rpartition(":") if isinstance(eid, str) else ("", "", "")
    if not sep or not epoch or not offset.isdigit() or len(offset) > 18:
        raise exceptions.InvalidArgument(
            f"Invalid resume point {str(eid)[:100]!r}: an event id is '<epoch>:<offset>'.", {"resume": str(eid)[:100]}
        )
    return epoch, int(offset)


class Subscription:
    """A subscriber's view of one topic: an async iterator of :class:`Event`.

    It goes live when awaited (``sub = await subscribe(topic)``), entered
    (``async with``) or first iterated; events published before that are not
    delivered, unless it resumes after an event id (``resume``) and the
    topic's history reaches back to it. ``position`` is the event id it
    delivers after (the resume point when ``recovered``); ``last_eid`` the id
    of the last event it handed out.
    """

    def __init__(
        self,
        topic: str,
        *,
        buffer: int,
        on_error: ErrorHook | None = None,
        resume: str | None = None,
        on_ready: ReadyHook | None = None,
    ) -> None:
        self.topic = topic
        self.buffer = buffer
        self.resume = resume
        self.recovered: bool | None = None  # set once live, when resuming
        self.position: str | None = None
        self.last_eid: str | None = None
        self._on_error = on_error
        self._on_ready = on_ready
        # Asked before going live (a view's topic permissions); raises to refuse.
        self.authorize: Callable[[], Awaitable[Any]] | None = None
        self._queue: deque[Event] = deque()
        self._backlog: deque[Event] = deque()  # missed events from the history, read first
        self._skip_through = 0  # offsets the reader had before this process delivered them
        self._waiter: asyncio.Future[None] | None = None
        self._error: exceptions.StreamError | None = None
        self._hub: Hub | None = None
        self._closed = False

    # -- going live and leaving ------------------------------------------------

    async def start(self) -> Subscription:
        if self._hub is None and not self._closed:
            if self.resume is not None:
                parse_eid(self.resume)
            if self.authorize is not None:
                await self.authorize()
            self._hub = get_hub()
            await self._hub.add(self)
            if self._on_ready is not None and self.position is not None:
                await self._on_ready(self.position, self.recovered)
        return self

    def __await__(self) -> Any:
        return self.start().__await__()

    async def __aenter__(self) -> Subscription:
        return await self.start()

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Leave the topic; iteration ends once the queued events are read."""
        if self._closed:
            return
        self._closed = True
        if self._hub is not None:
            self._hub.remove(self)
        self._wake()

    # -- reading ---------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self._hub is None:
            await self.start()
        while True:
            if self._backlog:
                event = self._backlog.popleft()
                self.last_eid = event.eid
                return event
            if self._queue:
                event = self._queue.popleft()
                self.last_eid = event.eid
                return event
            if self._error is not None:
                raise self._error
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def resume_point(self, *, queued: bool) -> str | None:
        """Where its reader resumes: after the last event it got (or will get, if ``queued``)."""
        if queued and (self._queue or self._backlog):
            return (self._queue or self._backlog)[-1].eid
        return self.last_eid or self.position

    # -- called by the hub -------------------------------------------------------

    def push(self, event: Event, offset: int) -> bool:
        """Queue one event; False when the queue is full."""
        if offset <= self._skip_through:
            return True
        if len(self._queue) >= self.buffer:
            return False
        self._queue.append(event)
        self._wake()
        return True

    def fail(self, error: exceptions.StreamError, *, discard: bool) -> None:
        """End the subscription with ``error`` (after its queued events unless ``discard``)."""
        if self._error is not None or self._closed:
            return
        if self._hub is not None:
            self._hub.remove(self)
        self._error = error
        if discard:
            self._queue.clear()
            self._backlog.clear()
        self._wake()
        if self._on_error is not None:
            self._on_error(error)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __repr__(self) -> str:
        return f"<Subscription {self.topic} after={self.last_eid or self.position}>"


class _Topic:
    """A topic this process has subscribers for, and how far it has read it."""

    __slots__ = ("subscribers", "epoch", "offset", "ready", "holding", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.subscribers: set[Subscription] = set()
        self.epoch: str | None = None
        self.offset = 0
        self.ready: asyncio.Future[None] = loop.create_future()
        # While its position is read, or a gap is filled from the history,
        # new events wait in ``pending``, in order.
        self.holding = True
        self.pending: list[tuple[str, str]] = []


class Hub:
    """The subscribers of one event loop (one server process), by topic.

    It is the :class:`~streaming_app.brokers.base.BrokerEventHandler` its
    broker delivers to: the broker calls :meth:`wants`, :meth:`deliver` and
    :meth:`resync`, and never imports this module.
    """

    def __init__(self, broker: Broker, loop: asyncio.AbstractEventLoop) -> None:
        self.broker = broker
        self._loop = weakref.ref(loop)
        self.topics: dict[str, _Topic] = {}
        self._listening: asyncio.Future[None] | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop()
        if loop is None:
            raise RuntimeError("the hub's event loop is gone")
        return loop

    async def listen(self) -> None:
        """Have the broker deliver to this hub (once; concurrent callers share it)."""
        if self._listening is None:
            self._listening = self.loop.create_task(self.broker.listen(self))
        try:
            await asyncio.shield(self._listening)
        except Exception:
            self._listening = None
            raise

    async def add(self, subscription: Subscription) -> None:
        await self.listen()
        name = subscription.topic
        topic = self.topics.get(name)
        if topic is None:
            topic = self.topics[name] = _Topic(self.loop)
            self.loop.create_task(self._locate(name, topic))
        await asyncio.shield(topic.ready)
        # No await from here on: the position is exactly where delivery starts.
        epoch, here = topic.epoch, topic.offset
        assert epoch is not None, "a ready topic knows its position"
        topic.subscribers.add(subscription)
        subscription.position = f"{epoch}:{here}"
        if subscription.resume is not None:
            # Live first, history second: what is published meanwhile is queued.
            await self._recover(subscription, epoch, here)

    async def _recover(self, subscription: Subscription, epoch: str, here: int) -> None:
        """Queue what a resuming subscriber missed, if the history still has all of it."""
        resume = subscription.resume
        assert resume is not None
        resume_epoch, after = parse_eid(resume)
        recovered = False
        if resume_epoch == epoch:
            if after == here:
                recovered = True
            elif after < here:
                backlog = await self.broker.history(subscription.topic, after, here)
                if backlog.epoch == epoch and backlog.events is not None:
                    subscription._backlog.extend(
                        Event.from_json(data_json, eid=f"{epoch}:{offset}", topic=subscription.topic)
                        for offset, data_json in backlog.events
                    )
                    recovered = True
            else:
                # The reader got further on another process than this one has read yet.
                now_epoch, newest = await self.broker.position(subscription.topic)
                if now_epoch == epoch and after <= newest:
                    subscription._skip_through = after
                    subscription._queue = deque(
                        event for event in subscription._queue if parse_eid(event.eid or "")[1] > after
                    )
                    recovered = True
        subscription.recovered = recovered
        if recovered:
            subscription.position = resume

    async def _locate(self, name: str, topic: _Topic) -> None:
        """Learn the topic's position, then deliver what came in meanwhile past it."""
        try:
            topic.epoch, topic.offset = await self.broker.position(name)
        except Exception as exc:
            if self.topics.get(name) is topic:
                del self.topics[name]
            topic.ready.set_exception(exc)
            topic.ready.exception()  # retrieved: the subscribers waiting re-raise it
            return
        self._release(name, topic)
        topic.ready.set_result(None)

    def _release(self, name: str, topic: _Topic) -> None:
        """Deliver the events that waited, until they are done or a new gap holds them again."""
        topic.holding = False
        pending, topic.pending = topic.pending, []
        for index, (eid, data_json) in enumerate(pending):
            self._advance(name, topic, eid, data_json)
            if topic.holding:  # a new gap: the rest waits behind its fill
                topic.pending.extend(pending[index + 1 :])
                return

    def remove(self, subscription: Subscription) -> None:
        topic = self.topics.get(subscription.topic)
        if topic is None:
            return
        topic.subscribers.discard(subscription)
        if not topic.subscribers and topic.ready.done():
            del self.topics[subscription.topic]

    # -- from the broker (BrokerEventHandler) ------------------------------------------

    def wants(self, topic: str) -> bool:
        return topic in self.topics

    def deliver(self, name: str, eid: str, data_json: str) -> None:
        """One event of a topic, in the order the broker numbered them."""
        topic = self.topics.get(name)
        if topic is None:
            return
        if topic.holding:
            topic.pending.append((eid, data_json))
            return
        self._advance(name, topic, eid, data_json)

    def _advance(self, name: str, topic: _Topic, eid: str, data_json: str) -> None:
        epoch, _, offset_text = eid.rpartition(":")
        offset = int(offset_text)
        if epoch == topic.epoch:
            if offset <= topic.offset:
                return  # before this process's position: not for its subscribers
            if offset != topic.offset + 1:
                if history_policy(name).enabled:
                    self._hold(name, topic, offset - 1)
                    topic.pending.append((eid, data_json))
                    return
                self._lost(name, topic, offset - topic.offset - 1)
        elif offset != 1:
            self._lost(name, topic, None)
        topic.epoch, topic.offset = epoch, offset
        self._push(name, topic, eid, offset, data_json)

    def _hold(self, name: str, topic: _Topic, upto: int) -> None:
        """Hold the topic's delivery while its events up to ``upto`` are read from the history."""
        topic.holding = True
        self.loop.create_task(self._fill(name, topic, upto), name=f"streaming_app fill {name}")

    async def _fill(self, name: str, topic: _Topic, upto: int) -> None:
        """Deliver the events this process missed from the history, or say they are lost."""
        try:
            backlog = await self.broker.history(name, topic.offset, upto)
        except Exception:
            backlog = None
        if backlog is not None and backlog.epoch == topic.epoch and backlog.events is not None:
            for offset, data_json in backlog.events:
                topic.offset = offset
                self._push(name, topic, f"{topic.epoch}:{offset}", offset, data_json)
        else:
            self._lost(name, topic, upto - topic.offset)
            topic.offset = upto
        self._release(name, topic)

    def _push(self, name: str, topic: _Topic, eid: str, offset: int, data_json: str) -> None:
        if not topic.subscribers:
            return
        event = Event.from_json(data_json, eid=eid, topic=name)
        full = [subscription for subscription in topic.subscribers if not subscription.push(event, offset)]
        metrics.deliveries += len(topic.subscribers) - len(full)  # one addition per event, not per subscriber
        for subscription in full:
            subscription.fail(
                exceptions.ResourceExhausted(
                    f"Subscriber too slow: more than {subscription.buffer} events were waiting for it on topic {name!r}.",
                    {"resume": subscription.resume_point(queued=False)},
                ),
                discard=True,
            )

    async def resync(self) -> None:
        """After the broker connection came back: catch up the topics that moved on meanwhile, or fail them."""
        for name, topic in list(self.topics.items()):
            if not topic.ready.done() or topic.ready.exception() is not None or topic.holding:
                continue
            epoch, offset = await self.broker.position(name)
            if topic.holding:
                continue  # a gap found meanwhile is being filled
            if epoch == topic.epoch and offset > topic.offset and history_policy(name).enabled:
                self._hold(name, topic, offset)
            elif epoch != topic.epoch or offset > topic.offset:
                self._lost(name, topic, offset - topic.offset if epoch == topic.epoch else None)
                topic.epoch, topic.offset = epoch, offset

    def _lost(self, name: str, topic: _Topic, count: int | None) -> None:
        """Events of the topic never reached this process: its subscribers must not think otherwise."""
        what = f"{count} events" if count is not None else "Events"
        for subscription in list(topic.subscribers):
            subscription.fail(
                exceptions.DataLoss(
                    f"{what} on topic {name!r} were lost between the broker and this server.",
                    {"resume": subscription.resume_point(queued=True)},
                ),
                discard=False,
            )


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def get_hub() -> Hub:
    """The hub of the running event loop (a server process has one)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub(get_broker(), loop)
    return hub


def reset_hubs() -> None:
    """Forget every hub (the broker changed, e.g. in a test with other settings)."""
    _hubs.clear()


def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in ("STREAMING", "CHANNEL_LAYERS"):  # as streaming_app.brokers drops its broker
        reset_hubs()


setting_changed.connect(_reset)
