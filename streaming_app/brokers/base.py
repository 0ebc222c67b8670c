"""What carries published events between server processes."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..hub import Hub


@dataclass
class Backlog:
    """What a broker's history holds of a topic between two offsets.

    ``events`` are ``(offset, data_json)`` pairs, every offset of the range in
    order, or None when the history no longer reaches back that far (or the
    topic keeps none): a resume is exact or it is refused, never partial.
    """

    epoch: str
    events: list[tuple[int, str]] | None


class Broker(abc.ABC):
    """One per process: numbers each topic's events, keeps their history, delivers them to every process.

    Every event gets ``eid = <epoch>:<offset>``: the offset grows by one per
    event on its topic, and the epoch changes when the broker loses the
    topic's state, so a process can tell a gap or a reset from a duplicate.
    A process receives every event once, whatever its number of subscribers
    (see :class:`streaming_app.hub.Hub`). Topics that
    ``STREAMING["TOPIC_HISTORY"]`` gives history keep their newest events, so
    a subscriber that reconnects gets exactly what it missed.
    """

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
    async def listen(self, hub: Hub) -> None:
        """Deliver every event to ``hub`` from now on; return once that is so."""

    async def close(self) -> None:
        """Release this event loop's connections."""
