"""An item that carries an event id, so a client can resume after it."""

from __future__ import annotations

import json
from typing import Any

from .protocol import frames as wire


class Event:
    """One item of a stream with an event id (``eid``).

    Topic subscriptions yield these: the item's JSON is made once, when it is
    published, and shared by every subscriber. A stream method may yield its
    own (``Event(data, eid="...")``) to make its items resumable; a plain value
    yielded instead has no event id.
    """

    __slots__ = ("eid", "topic", "_data", "_json")

    def __init__(self, data: Any = None, *, eid: str | None = None, topic: str | None = None) -> None:
        self.eid = eid
        self.topic = topic
        self._data = data
        self._json: str | None = None

    @classmethod
    def from_json(cls, data_json: str, *, eid: str | None, topic: str | None = None) -> Event:
        event = cls(eid=eid, topic=topic)
        event._json = data_json
        event._data = _UNPARSED
        return event

    @property
    def data(self) -> Any:
        """The item itself (decoded on first use when it arrived as JSON)."""
        if self._data is _UNPARSED:
            assert self._json is not None, "from_json() set both"
            self._data = json.loads(self._json)
        return self._data

    def encode(self, default: Any = None) -> str:
        """The item as JSON text, computed at most once."""
        if self._json is None:
            self._json = wire.dumps(self._data, default)
        return self._json

    def __repr__(self) -> str:
        return f"<Event {self.topic or ''} eid={self.eid}>"


_UNPARSED: Any = object()
