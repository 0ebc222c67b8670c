"""Per-process fan-out: the broker delivers each event once, the hub hands it to every local subscriber.

This is Phoenix's "fastlane" in Django: a publish costs one message per server
process on the broker, not one per subscriber, and the event's JSON is made
once, by the publisher, and shared by every subscriber's frame. Each
subscription has a bounded queue, so a slow subscriber is cut off with
``resource_exhausted`` (and where to resume) instead of growing memory or
silently losing events; a gap in a topic's offsets (events lost between the
broker and this process) fails its subscribers with ``data_loss``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from typing import Any, Awaitable, Callable

from . import exceptions
from .brokers import get_broker
from .brokers.base import Broker
from .events import Event

ErrorHook = Callable[[exceptions.StreamError], None]


class Subscription:
    """A subscriber's view of one topic: an async iterator of :class:`Event`.

    It goes live when awaited (``sub = await subscribe(topic)``), entered
    (``async with``) or first iterated; events published before that are not
    delivered. ``position`` is the event id it went live after; ``last_eid``
    the id of the last event it handed out.
    """

    def __init__(self, topic: str, *, buffer: int, on_error: ErrorHook | None = None) -> None:
        self.topic = topic
        self.buffer = buffer
        self.position: str | None = None
        self.last_eid: str | None = None
        self._on_error = on_error
        # Asked before going live (a view's topic permissions); raises to refuse.
        self.authorize: Callable[[], Awaitable[Any]] | None = None
        self._queue: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: exceptions.StreamError | None = None
        self._hub: Hub | None = None
        self._closed = False

    # -- going live and leaving ------------------------------------------------

    async def start(self) -> Subscription:
        if self._hub is None and not self._closed:
            if self.authorize is not None:
                await self.authorize()
            self._hub = get_hub()
            await self._hub.add(self)
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
        if queued and self._queue:
            return self._queue[-1].eid
        return self.last_eid or self.position

    # -- called by the hub -------------------------------------------------------

    def push(self, event: Event) -> bool:
        """Queue one event; False when the queue is full."""
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

    __slots__ = ("subscribers", "epoch", "offset", "ready", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.subscribers: set[Subscription] = set()
        self.epoch: str | None = None
        self.offset = 0
        self.ready: asyncio.Future[None] = loop.create_future()
        self.pending: list[tuple[str, str]] = []  # events that came before the position


class Hub:
    """The subscribers of one event loop (one server process), by topic."""

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
        topic.subscribers.add(subscription)
        subscription.position = f"{topic.epoch}:{topic.offset}"

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
        pending, topic.pending = topic.pending, []
        for eid, data_json in pending:
            self._advance(name, topic, eid, data_json)
        topic.ready.set_result(None)

    def remove(self, subscription: Subscription) -> None:
        topic = self.topics.get(subscription.topic)
        if topic is None:
            return
        topic.subscribers.discard(subscription)
        if not topic.subscribers and topic.ready.done():
            del self.topics[subscription.topic]

    # -- from the broker -----------------------------------------------------------

    def deliver(self, name: str, eid: str, data_json: str) -> None:
        """One event of a topic, in the order the broker numbered them."""
        topic = self.topics.get(name)
        if topic is None:
            return
        if topic.epoch is None:
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
                self._lost(name, topic, offset - topic.offset - 1)
        elif offset != 1:
            self._lost(name, topic, None)
        topic.epoch, topic.offset = epoch, offset
        if not topic.subscribers:
            return
        event = Event.from_json(data_json, eid=eid, topic=name)
        full = [subscription for subscription in topic.subscribers if not subscription.push(event)]
        for subscription in full:
            subscription.fail(
                exceptions.ResourceExhausted(
                    f"Subscriber too slow: more than {subscription.buffer} events were waiting for it on topic {name!r}.",
                    {"resume": subscription.resume_point(queued=False)},
                ),
                discard=True,
            )

    async def resync(self) -> None:
        """After the broker connection came back: fail the topics that moved on meanwhile."""
        for name, topic in list(self.topics.items()):
            if not topic.ready.done() or topic.ready.exception() is not None:
                continue
            epoch, offset = await self.broker.position(name)
            if epoch != topic.epoch or offset > topic.offset:
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
