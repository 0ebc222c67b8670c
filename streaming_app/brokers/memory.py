"""The embedded broker: one process, no server (the in-memory channel layer's twin)."""

from __future__ import annotations

import secrets
import threading
import weakref
from typing import TYPE_CHECKING

from .base import Broker

if TYPE_CHECKING:
    from ..hub import Hub


class MemoryBroker(Broker):
    """Events reach the subscribers of this process only.

    Publishing is thread-safe: an event is numbered and handed to every event
    loop's hub under one lock, so each hub sees every topic in offset order
    even when threads publish at once.
    """

    def __init__(self) -> None:
        self.epoch = secrets.token_hex(4)
        self._offsets: dict[str, int] = {}
        self._hubs: weakref.WeakSet[Hub] = weakref.WeakSet()
        self._lock = threading.Lock()

    def publish(self, topic: str, data_json: str) -> str:
        with self._lock:
            offset = self._offsets[topic] = self._offsets.get(topic, 0) + 1
            eid = f"{self.epoch}:{offset}"
            for hub in list(self._hubs):
                try:
                    hub.loop.call_soon_threadsafe(hub.deliver, topic, eid, data_json)
                except RuntimeError:  # its event loop is closed
                    self._hubs.discard(hub)
        return eid

    async def apublish(self, topic: str, data_json: str) -> str:
        return self.publish(topic, data_json)

    async def position(self, topic: str) -> tuple[str, int]:
        with self._lock:
            return self.epoch, self._offsets.get(topic, 0)

    async def listen(self, hub: Hub) -> None:
        with self._lock:
            self._hubs.add(hub)
