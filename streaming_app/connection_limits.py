"""Open WebSocket connections per user and per client IP, counted across processes.

``MAX_CONNECTIONS_PER_USER`` and ``MAX_CONNECTIONS_PER_IP`` bound what one
user or one address may hold open on the whole deployment, so a stolen token
or a script cannot take every socket. With a Redis broker each key
(``<prefix>:conns:user:<pk>``, ``<prefix>:conns:ip:<address>``) is a sorted
set of the connections holding it, scored by when each entry expires: a
process refreshes its own entries every :data:`REFRESH` seconds and removes
them when a connection closes, so the entries of a process that was killed
expire within :data:`TTL` seconds instead of counting forever. With the
memory broker (one process) the counts are this process's.

A connection over a limit is accepted and closed with 4429 before ``hello``
(the transport does that); counting it costs one Redis round trip per limit
at the handshake, and nothing per call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from .brokers import get_broker
from .conf import streaming_settings
from .redis_clients import LoopClients

logger = logging.getLogger("streaming_app")

TTL = 30.0  # seconds an entry lives without a refresh
REFRESH = TTL / 3


class LocalCounts:
    """The counts of this process alone (the memory broker)."""

    def __init__(self) -> None:
        self._members: dict[str, set[str]] = {}

    async def admit(self, key: str, member: str, limit: int) -> bool:
        members = self._members.setdefault(key, set())
        if len(members) >= limit:
            return False
        members.add(member)
        return True

    async def release(self, key: str, member: str) -> None:
        members = self._members.get(key)
        if members is not None:
            members.discard(member)
            if not members:
                del self._members[key]

    async def refresh(self, entries: list[tuple[str, str]]) -> None:
        pass  # nothing expires in one process's memory


class RedisCounts:
    """Sorted sets in Redis, shared by every process on the same broker."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = f"{prefix}:conns:"
        self._clients = LoopClients(url)

    def _client(self) -> Any:
        return self._clients.get()

    async def admit(self, key: str, member: str, limit: int) -> bool:
        name = self.prefix + key
        now = time.time()
        async with self._client().pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(name, "-inf", now)
            pipe.zadd(name, {member: now + TTL})
            pipe.zcard(name)
            pipe.pexpire(name, int(TTL * 1000))
            _, _, count, _ = await pipe.execute()
        if count <= limit:
            return True
        await self._client().zrem(name, member)
        return False

    async def release(self, key: str, member: str) -> None:
        await self._client().zrem(self.prefix + key, member)

    async def refresh(self, entries: list[tuple[str, str]]) -> None:
        if not entries:
            return
        expires = time.time() + TTL
        async with self._client().pipeline(transaction=False) as pipe:
            for key, member in entries:
                pipe.zadd(self.prefix + key, {member: expires}, xx=True)
                pipe.pexpire(self.prefix + key, int(TTL * 1000))
            await pipe.execute()


_counts: dict[str, LocalCounts | RedisCounts] = {}


def get_counts() -> LocalCounts | RedisCounts:
    """The counts that go with the broker: Redis when it is Redis, this process's memory otherwise."""
    url = get_broker().redis_url
    counts = _counts.get(url or "")
    if counts is None:
        counts = RedisCounts(url, streaming_settings.TOPIC_PREFIX) if url else LocalCounts()
        _counts[url or ""] = counts
    return counts


def limited_keys(user: Any, client: str | None) -> list[tuple[str, int]]:
    """The (key, limit) pairs a new connection counts against, from the settings."""
    keys: list[tuple[str, int]] = []
    per_user = streaming_settings.MAX_CONNECTIONS_PER_USER
    if per_user is not None and getattr(user, "is_authenticated", False):
        keys.append((f"user:{user.pk}", per_user))
    per_ip = streaming_settings.MAX_CONNECTIONS_PER_IP
    if per_ip is not None and client:
        keys.append((f"ip:{client}", per_ip))
    return keys


class Admissions:
    """The entries this process holds, refreshed while it holds any."""

    def __init__(self) -> None:
        self._held: dict[str, list[str]] = {}  # member -> keys
        self._task: asyncio.Task[None] | None = None

    async def admit(self, member: str, keys: list[tuple[str, int]]) -> bool:
        """Count ``member`` against each key; False (and nothing held) if one is over its limit.

        A broker that cannot be reached admits the connection: the limit is a
        defence against floods, not a reason to refuse everyone while Redis
        restarts.
        """
        if not keys:
            return True
        counts = get_counts()
        taken: list[str] = []
        try:
            for key, limit in keys:
                if not await counts.admit(key, member, limit):
                    for held in taken:
                        await counts.release(held, member)
                    return False
                taken.append(key)
        except Exception as exc:
            logger.warning("streaming_app: could not count connections (%s); admitting", exc)
            return True
        self._held[member] = taken
        self._ensure_refresher()
        return True

    async def release(self, member: str) -> None:
        keys = self._held.pop(member, None)
        if not keys:
            return
        counts = get_counts()
        try:
            for key in keys:
                await counts.release(key, member)
        except Exception as exc:
            logger.warning("streaming_app: could not release a connection count (%s); it expires in %ss", exc, TTL)

    def _ensure_refresher(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._refresh(), name="streaming_app connection counts")

    async def _refresh(self) -> None:
        while self._held:
            await asyncio.sleep(REFRESH)
            entries = [(key, member) for member, keys in list(self._held.items()) for key in keys]
            try:
                await get_counts().refresh(entries)
            except Exception as exc:
                logger.warning("streaming_app: could not refresh connection counts (%s)", exc)
        self._task = None


admissions = Admissions()
