"""The embedded broker: one process, no server (the in-memory channel layer's twin)."""

from __future__ import annotations

import secrets
import threading
import time
import weakref
from collections import deque
from itertools import islice

from ..history import history_policy
from .base import Backlog, Broker, BrokerEventHandler


class MemoryBroker(Broker):
    """Events reach the subscribers of this process only.

    Publishing is thread-safe: an event is numbered, kept in its topic's
    history and handed to every event loop's handler (its hub) under one lock, so each
    sees every topic in offset order even when threads publish at once.
    """

    def __init__(self) -> None:
        self.epoch = secrets.token_hex(4)
        self._offsets: dict[str, int] = {}
        # Per topic: (offset, monotonic time, data_json), newest last, and their bytes.
        self._history: dict[str, deque[tuple[int, float, str]]] = {}
        self._bytes: dict[str, int] = {}
        self._hubs: weakref.WeakSet[BrokerEventHandler] = weakref.WeakSet()  # their hubs
        self._lock = threading.Lock()

    def publish(self, topic: str, data_json: str) -> str:
        policy = history_policy(topic)
        with self._lock:
            offset = self._offsets[topic] = self._offsets.get(topic, 0) + 1
            eid = f"{self.epoch}:{offset}"
            if policy.enabled:
                kept = self._history.setdefault(topic, deque())
                kept.append((offset, time.monotonic(), data_json))
                self._bytes[topic] = self._bytes.get(topic, 0) + len(data_json)
                self._trim(topic, kept, policy.size, policy.byte_limit, policy.ttl)
            else:
                self._history.pop(topic, None)
                self._bytes.pop(topic, None)
            for handler in list(self._hubs):
                try:
                    handler.loop.call_soon_threadsafe(handler.deliver, topic, eid, data_json)
                except RuntimeError:  # its event loop is closed (or gone)
                    self._hubs.discard(handler)
        return eid

    async def apublish(self, topic: str, data_json: str) -> str:
        return self.publish(topic, data_json)

    async def position(self, topic: str) -> tuple[str, int]:
        with self._lock:
            return self.epoch, self._offsets.get(topic, 0)

    async def history(self, topic: str, after: int, upto: int) -> Backlog:
        with self._lock:
            kept = self._history.get(topic)
            if kept:
                policy = history_policy(topic)
                self._trim(topic, kept, policy.size, policy.byte_limit, policy.ttl)
            if not kept or kept[0][0] > after + 1 or kept[-1][0] < upto:
                return Backlog(self.epoch, None)
            first = kept[0][0]
            events = [(offset, data_json) for offset, _, data_json in islice(kept, after + 1 - first, upto + 1 - first)]
        return Backlog(self.epoch, events)

    def _trim(
        self, topic: str, kept: deque[tuple[int, float, str]], size: int, max_bytes: int, ttl: float | None
    ) -> None:
        """Drop the oldest events while there are more than ``size``, more than ``max_bytes`` of them, or they are older than ``ttl``."""
        cutoff = None if ttl is None else time.monotonic() - ttl
        held = self._bytes.get(topic, 0)
        while kept and (len(kept) > size or held > max_bytes or (cutoff is not None and kept[0][1] < cutoff)):
            held -= len(kept.popleft()[2])
        self._bytes[topic] = held

    async def listen(self, handler: BrokerEventHandler) -> None:
        with self._lock:
            self._hubs.add(handler)
