"""Finished calls waiting to be written to the history table, bounded under a flood.

Anyone who may open a connection can end calls as fast as the server serves
them (200,000 anonymous calls in 21 s once made 130,000 rows). So what a
process holds and writes is bounded, and what it cannot keep one by one it
counts instead of forgetting:

* at most ``HISTORY_BUFFER`` records wait in memory; past that the oldest
  anonymous record goes first (an authenticated user's calls are kept longer),
  into an aggregate;
* at most ``HISTORY_ROWS_PER_INTERVAL`` records are written one by one per
  flush, authenticated users' first; the rest go into aggregates;
* an aggregate is one row per (method, transport, user, end reason, error
  code) whose ``calls`` says how many calls it stands for, with their items
  and bytes summed, the first start, the last end and their mean duration.

Adding a record is O(1) and does no I/O, so calls are never slowed down.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Iterator

# Aggregates held at once; beyond it, new ones are kept without their user
# (whose number is the client's to choose), which bounds them by methods.
MAX_AGGREGATES = 1000

_KEY_FIELDS = ("method", "namespace", "kind", "transport", "username", "end_reason", "error_code")


class FinishedCalls:
    """The records of calls that ended and are not written yet (see the module docstring)."""

    def __init__(self) -> None:
        self.named: deque[dict[str, Any]] = deque()
        self.anonymous: deque[dict[str, Any]] = deque()
        self.aggregates: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.aggregated = 0  # calls folded into aggregates since the last successful write

    def __len__(self) -> int:
        return len(self.named) + len(self.anonymous) + len(self.aggregates)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from self.named
        yield from self.anonymous
        yield from self.aggregates.values()

    def clear(self) -> None:
        self.named.clear()
        self.anonymous.clear()
        self.aggregates.clear()
        self.aggregated = 0

    def add(self, record: dict[str, Any], limit: int) -> None:
        """Queue one record (or an aggregate put back); keep at most ``limit`` records one by one."""
        if record.get("calls", 1) > 1:
            self._fold(record)
            return
        (self.named if record["username"] else self.anonymous).append(record)
        while len(self.named) + len(self.anonymous) > limit:
            victim = self.anonymous.popleft() if self.anonymous else self.named.popleft()
            self._fold(victim)
            self.aggregated += 1

    def take(self, max_rows: int) -> list[dict[str, Any]]:
        """Everything queued, as rows: up to ``max_rows`` single calls (users' first), then aggregates."""
        rows: list[dict[str, Any]] = []
        for queue in (self.named, self.anonymous):
            while queue and len(rows) < max_rows:
                rows.append(queue.popleft())
            while queue:
                self._fold(queue.popleft())
                self.aggregated += 1
        rows.extend(self.aggregates.values())
        self.aggregates.clear()
        return rows

    def _fold(self, record: dict[str, Any]) -> None:
        key = tuple(record[field] for field in _KEY_FIELDS)
        if key not in self.aggregates and len(self.aggregates) >= MAX_AGGREGATES:
            record = {**record, "username": ""}
            key = tuple(record[field] for field in _KEY_FIELDS)
        total = self.aggregates.get(key)
        calls = record.get("calls", 1)
        if total is None:
            self.aggregates[key] = {**record, "connection_id": "", "call_id": 0, "client": "", "calls": calls}
            return
        merged = total["calls"] + calls
        total["duration"] = round((total["duration"] * total["calls"] + record["duration"] * calls) / merged, 6)
        total["calls"] = merged
        for field in ("items_in", "items_out", "bytes_in", "bytes_out"):
            total[field] += record[field]
        total["started_at"] = min(total["started_at"], record["started_at"])
        total["ended_at"] = max(total["ended_at"], record["ended_at"])
