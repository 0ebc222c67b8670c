"""What carries published events between server processes.

A :class:`Broker` delivers to a :class:`BrokerEventHandler`, an interface the
hub (:class:`streaming_app.hub.Hub`) implements, as Centrifuge pairs its
``Broker`` with a ``BrokerEventHandler``: dependencies point one way (the hub
uses a broker, a broker knows only the interface), and a broker of another
project plugs in by implementing :class:`Broker` (``STREAMING["BROKER"]``
takes its dotted path).
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass
from typing import Protocol


@dataclass
class Backlog:
    """What a broker's history holds of a topic between two offsets.

    ``events`` are ``(offset, data_json)`` pairs, every offset of the range in
    order, or None when the history no longer reaches back that far (or the
    topic keeps none): a resume is exact or it is refused, never partial.
    """

    epoch: str
    events: list[tuple[int, str]] | None


class BrokerEventHandler(Protocol):
    """What a broker delivers events to: the subscribers of one event loop.

    A broker calls these from that event loop (:attr:`loop`), except where
    it hands the call over itself (``loop.call_soon_threadsafe``).
    """

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop whose subscribers this handler serves."""

    def wants(self, topic: str) -> bool:
        """Whether any subscriber here listens to ``topic`` (a broker may skip the others' events)."""

    def deliver(self, topic: str, eid: str, data_json: str) -> None:
        """One event of ``topic``, in the order the broker numbered the topic's events."""

    async def resync(self) -> None:
        """The broker's connection came back after a loss: events may have been missed meanwhile."""


class Broker(abc.ABC):
    """One per process: numbers each topic's events, keeps their history, delivers them to every process.

    Every event gets ``eid = <epoch>:<offset>``: the offset grows by one per
    event on its topic, and the epoch changes when the broker loses the
    topic's state, so a process can tell a gap or a reset from a duplicate.
    A process receives every event once, whatever its number of subscribers
    (see :class:`streaming_app.hub.Hub`). Topics that
    ``STREAMING["TOPIC_HISTORY"]`` gives history keep their newest events, so
    a subscriber that reconnects gets exactly what it missed.

    A subclass of your own is selected by its dotted path in
    ``STREAMING["BROKER"]`` and made with no arguments.
    """

    #: The Redis URL the broker works in, if any: the admin's monitor keeps
    #: each process's live-call snapshot there too, so every process sees
    #: them all. None keeps snapshots in each process's own memory.
    redis_url: str | None = None

    @abc.abstractmethod
    def publish(self, topic: str, data_json: str) -> str:
        """Publish from synchronous code; return the event id."""

    @abc.abstractmethod
    async def apublish(self, topic: str, data_json: str) -> str:
        """Publish from async code; return the event id."""

    @abc.abstractmethod
    async def position(self, topic: str) -> tuple[str, int]:
        """The topic's epoch and the offset of its newest event (0 if none)."""

    @abc.abstractmethod
    async def history(self, topic: str, after: int, upto: int) -> Backlog:
        """The topic's events with offsets ``after < offset <= upto``, from its history."""

    @abc.abstractmethod
    async def listen(self, handler: BrokerEventHandler) -> None:
        """Deliver every event to ``handler`` from now on; return once that is so.

        Called from ``handler.loop``; listening again with the same handler
        does not deliver twice.
        """

    async def ping(self) -> None:
        """Return when the broker answers; raise when it cannot be reached (``<prefix>/_health``).

        The default suits a broker in this process's memory, which is always there.
        """

    async def close(self) -> None:
        """Release this event loop's connections."""
