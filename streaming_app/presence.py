"""Presence: who is in a topic's room now, on every server process, and who comes and goes.

A stream method joins a topic's presence for as long as its call lasts
(``await ctx.join(topic, info=...)``); anyone who may subscribe to the topic
reads its members (``ctx.presence(topic)``), their counts
(``ctx.presence_stats(topic)``) and their joins and leaves
(``ctx.presence_events(topic)``). A member is its call: its ``client`` id is
unique to it, its ``user`` the handshake's user (None for an anonymous one,
who is counted and never named), its ``info`` what the view chose to show.

Why it is shaped this way:

- **Heartbeats per process, never per member.** With Redis, members live in
  one hash per topic, keyed by client id (``<process>.<n>``); each process
  keeps one key alive with a TTL of three heartbeat intervals
  (``STREAMING["PRESENCE_HEARTBEAT_INTERVAL"]``, 3 s). Readers skip the
  members of a process whose key expired, and every live process sweeps the
  dead processes' members once per interval, emitting their leaves, so a
  SIGKILLed process's members are gone within four intervals (12 s).
- **One script per change.** A join or a leave is one Lua script: it changes
  the members, counts the user's clients and numbers and publishes the event,
  atomically, so events are in the order the changes happened on every
  process, and two processes sweeping at once cannot both emit a leave.
- **Events ride the topic machinery.** Joins and leaves are published on the
  topic ``<topic>~presence`` through the broker and fanned out by each
  process's hub like any event; ``~`` is not allowed in topic names, so no
  ``publish()`` can forge them.
- **Per-user aggregation.** Each event carries the user's client count after
  the change; a per-user watcher sees a user's join at their first client and
  their leave at their last. Anonymous members are not aggregated (nothing
  ties two anonymous clients together).

On the memory broker the same API works within the one process.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import secrets
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from . import exceptions
from .brokers import get_broker
from .brokers.base import Broker
from .conf import streaming_settings
from .encoding import json_default
from .events import Event
from .hub import Subscription
from .protocol import frames as wire
from .redis_clients import PerLoop
from .topics import validate_topic

logger = logging.getLogger("streaming_app")

__all__ = [
    "Member",
    "PresenceEvents",
    "events_topic",
    "get_tracker",
    "presence",
    "presence_stats",
    "presence_topics",
    "presence_by_user",
]

# The heartbeat key lives this many intervals: a process is dead once it missed them all.
TTL_INTERVALS = 3
STATE_TTL = 7 * 24 * 3600  # as the broker keeps a topic's numbering
POOL_SIZE = 8  # Redis connections per process for presence scripts
POOL_WAIT = 30.0  # seconds a script waits for one of them before it fails


def events_topic(topic: str) -> str:
    """The topic a topic's joins and leaves are published on (no client can publish there)."""
    return f"{topic}~presence"


_process: tuple[int, str] | None = None
_client_numbers = itertools.count(1)  # a member's number in its process (client id "<process>.<n>")


def process_token() -> str:
    """This process's id in client ids: random, so it tells nothing about the host."""
    global _process
    if _process is None or _process[0] != os.getpid():
        _process = (os.getpid(), secrets.token_hex(5))
    return _process[1]


@dataclass
class Member:
    """One call in a topic's presence."""

    topic: str
    client: str
    user: str | None  # the username; None for an anonymous member
    user_key: str  # what aggregates a user's clients (their pk); "" when anonymous
    info: Any = None
    left: bool = field(default=False, compare=False)
    # The join's write while it is under way: a leave waits for it, so it is never undone by a late join.
    joining: asyncio.Task[None] | None = field(default=None, compare=False, repr=False)

    def public(self) -> dict[str, Any]:
        return {"client": self.client, "user": self.user, "info": self.info}

    def stored(self) -> str:
        """How the member is kept: its public fields and its aggregation key (``k``)."""
        return wire.dumps({**self.public(), "k": self.user_key}, json_default)

    def event(self, kind: str) -> str:
        """The event's JSON without its closing ``"clients": n}``, which the store appends."""
        data = {"presence": kind, "user": self.user, "client": self.client}
        if kind == "join":
            data["info"] = self.info
        return wire.dumps(data, json_default)[:-1] + ',"clients":'


def check_info(info: Any) -> Any:
    """The member's info if it is JSON within ``PRESENCE_MAX_INFO_BYTES``; ``invalid_argument`` otherwise."""
    try:
        text = wire.dumps(info, json_default)
    except (TypeError, ValueError) as exc:
        raise exceptions.InvalidArgument(f"Presence info must be JSON: {exc}", {"field": "info"}) from exc
    limit = streaming_settings.PRESENCE_MAX_INFO_BYTES
    if wire.exceeds(text, limit):
        raise exceptions.InvalidArgument(
            f"Presence info is too large: at most {limit} bytes of JSON.", {"field": "info", "max_bytes": limit}
        )
    return json.loads(text)


def presence_by_user(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Members grouped by user: ``[{"user": name, "clients": k}]``, anonymous ones in one ``None`` entry."""
    counts: dict[str | None, int] = {}
    for member in members:
        counts[member["user"]] = counts.get(member["user"], 0) + 1
    named = sorted((name, k) for name, k in counts.items() if name is not None)
    rows = [{"user": name, "clients": k} for name, k in named]
    if None in counts:
        rows.append({"user": None, "clients": counts[None]})
    return rows


def stats_of(members: list[dict[str, Any]]) -> dict[str, int]:
    """``clients`` (every member), ``users`` (distinct signed-in users), ``anonymous`` (anonymous clients)."""
    named = {member["user"] for member in members if member["user"] is not None}
    anonymous = sum(1 for member in members if member["user"] is None)
    return {"clients": len(members), "users": len(named), "anonymous": anonymous}


# -- stores: where members are kept ---------------------------------------------------


class MemoryStore:
    """Members of this process only (the memory broker's one process)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._members: dict[str, dict[str, str]] = {}
        self._users: dict[str, dict[str, int]] = {}
        # Changing members and publishing their event under one lock keeps events in change order.
        self._lock = threading.Lock()

    async def join(self, member: Member) -> None:
        with self._lock:
            members = self._members.setdefault(member.topic, {})
            if member.client in members:
                return
            members[member.client] = member.stored()
            n = self._count(member, +1)
            self.broker.publish(events_topic(member.topic), f"{member.event('join')}{n}}}")

    async def leave(self, member: Member) -> None:
        with self._lock:
            members = self._members.get(member.topic, {})
            if members.pop(member.client, None) is None:
                return
            if not members:
                del self._members[member.topic]
            n = self._count(member, -1)
            self.broker.publish(events_topic(member.topic), f"{member.event('leave')}{n}}}")

    def _count(self, member: Member, delta: int) -> int:
        if not member.user_key:
            return max(delta, 0)
        users = self._users.setdefault(member.topic, {})
        n = users[member.user_key] = users.get(member.user_key, 0) + delta
        if n <= 0:
            del users[member.user_key]
            if not users:
                del self._users[member.topic]
        return max(n, 0)

    async def members(self, topic: str) -> list[str]:
        with self._lock:
            return list(self._members.get(topic, {}).values())

    async def topics(self) -> list[str]:
        with self._lock:
            return sorted(self._members)


# Emitting an event: the broker's numbering (streaming_app.brokers.redis), without history.
EMIT_LUA = """
local function emit(state, channel, etopic, data, new_epoch, state_ttl)
  local epoch = redis.call('HGET', state, 'epoch')
  if not epoch then
    epoch = new_epoch
    redis.call('HSET', state, 'epoch', epoch)
  end
  local seq = redis.call('HINCRBY', state, 'seq', 1)
  redis.call('EXPIRE', state, state_ttl)
  redis.call('PUBLISH', channel, etopic .. '\\n' .. epoch .. ':' .. seq .. '\\n' .. data)
end
"""

# KEYS: members, users, procs, proc topics, alive, event state.
# ARGV: client, stored member, user key, heartbeat ttl, channel, event topic,
# event prefix, new epoch, state ttl, topic, process.
JOIN_SCRIPT = EMIT_LUA + """
redis.call('SET', KEYS[5], '1', 'EX', ARGV[4])
redis.call('SADD', KEYS[3], ARGV[11])
redis.call('SADD', KEYS[4], ARGV[10])
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return -1 end
local n = 1
if ARGV[3] ~= '' then n = redis.call('HINCRBY', KEYS[2], ARGV[3], 1) end
emit(KEYS[6], ARGV[5], ARGV[6], ARGV[7] .. n .. '}', ARGV[8], ARGV[9])
return n
"""

# KEYS: members, users, proc topics, event state.
# ARGV: client, user key, channel, event topic, event prefix, new epoch, state ttl, topic, last local member (1/0).
LEAVE_SCRIPT = EMIT_LUA + """
if ARGV[9] == '1' then redis.call('SREM', KEYS[3], ARGV[8]) end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return -1 end
local n = 0
if ARGV[2] ~= '' then
  n = redis.call('HINCRBY', KEYS[2], ARGV[2], -1)
  if n <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[2])
    n = 0
  end
end
emit(KEYS[4], ARGV[3], ARGV[4], ARGV[5] .. n .. '}', ARGV[6], ARGV[7])
return n
"""

# KEYS: members. ARGV: alive key prefix. The stored members of live processes.
READ_SCRIPT = """
local alive = {}
local out = {}
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local proc = string.match(entries[i], '^([^.]+)%.')
  if proc then
    if alive[proc] == nil then alive[proc] = redis.call('EXISTS', ARGV[1] .. proc) == 1 end
    if alive[proc] then out[#out + 1] = entries[i + 1] end
  end
end
return out
"""

# KEYS: procs. ARGV: key prefix. The topics of live processes' members, once each.
TOPICS_SCRIPT = """
local seen = {}
local out = {}
for _, proc in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'alive:' .. proc) == 1 then
    for _, topic in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'ptopics:' .. proc)) do
      if not seen[topic] then
        seen[topic] = true
        out[#out + 1] = topic
      end
    end
  end
end
return out
"""

# KEYS: alive, procs. ARGV: ttl, process, key prefix, channel, new epoch, state ttl,
# the broker's topic state key prefix.
# Refreshes this process's heartbeat, then removes the members of every process
# whose heartbeat expired, emitting their leaves. Returns whether this process
# was still registered (0: it was swept as dead, and its members must rejoin).
HEARTBEAT_SCRIPT = EMIT_LUA + """
local prefix = ARGV[3]
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
local registered = redis.call('SISMEMBER', KEYS[2], ARGV[2])
for _, proc in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', prefix .. 'alive:' .. proc) == 0 then
    local ptopics = prefix .. 'ptopics:' .. proc
    for _, topic in ipairs(redis.call('SMEMBERS', ptopics)) do
      local mkey = prefix .. 'members:' .. topic
      local ukey = prefix .. 'users:' .. topic
      local entries = redis.call('HGETALL', mkey)
      for i = 1, #entries, 2 do
        if string.sub(entries[i], 1, #proc + 1) == proc .. '.' then
          redis.call('HDEL', mkey, entries[i])
          local member = cjson.decode(entries[i + 1])
          local n = 0
          if member.k ~= nil and member.k ~= '' then
            n = redis.call('HINCRBY', ukey, member.k, -1)
            if n <= 0 then
              redis.call('HDEL', ukey, member.k)
              n = 0
            end
          end
          local etopic = topic .. '~presence'
          local data = cjson.encode({presence = 'leave', user = member.user, client = entries[i], clients = n})
          emit(ARGV[7] .. etopic, ARGV[4], etopic, data, ARGV[5], ARGV[6])
        end
      end
    end
    redis.call('DEL', ptopics)
    redis.call('SREM', KEYS[2], proc)
  end
end
return registered
"""


class RedisStore:
    """Members of every process, in the broker's Redis; see the module docstring."""

    def __init__(self, broker: Any) -> None:
        import redis.asyncio

        self.broker = broker
        self.prefix = f"{broker.prefix}:presence:"
        self._redis = redis.asyncio
        self._clients: PerLoop[dict[str, Any]] = PerLoop(self._connect)

    def _scripts(self) -> Any:
        return self._clients.get()

    def _connect(self) -> dict[str, Any]:
        # A bounded pool that waits for a free connection: a thousand members leaving at
        # once (a closing connection, a draining process) queue up instead of failing.
        pool = self._redis.BlockingConnectionPool.from_url(
            self.broker.url, max_connections=POOL_SIZE, timeout=POOL_WAIT, socket_timeout=10,
            socket_connect_timeout=5,
        )
        client = self._redis.Redis(connection_pool=pool)
        return {
            "client": client,
            "join": client.register_script(JOIN_SCRIPT),
            "leave": client.register_script(LEAVE_SCRIPT),
            "read": client.register_script(READ_SCRIPT),
            "heartbeat": client.register_script(HEARTBEAT_SCRIPT),
            "topics": client.register_script(TOPICS_SCRIPT),
        }

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    async def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        import redis

        try:
            return await self._scripts()[script](keys=keys, args=args)
        except (redis.RedisError, OSError) as exc:
            raise exceptions.Unavailable(f"The presence store (Redis) is unreachable: {exc}") from exc

    async def join(self, member: Member, ttl: int) -> None:
        proc = process_token()
        etopic = events_topic(member.topic)
        await self._run(
            "join",
            [
                self._key("members", member.topic), self._key("users", member.topic), self.prefix + "procs",
                self._key("ptopics", proc), self._key("alive", proc), self.broker.state_key(etopic),
            ],
            [
                member.client, member.stored(), member.user_key, ttl, self.broker.channel, etopic,
                member.event("join"), secrets.token_hex(4), STATE_TTL, member.topic, proc,
            ],
        )

    async def leave(self, member: Member, last_local: bool) -> None:
        proc = process_token()
        etopic = events_topic(member.topic)
        await self._run(
            "leave",
            [
                self._key("members", member.topic), self._key("users", member.topic),
                self._key("ptopics", proc), self.broker.state_key(etopic),
            ],
            [
                member.client, member.user_key, self.broker.channel, etopic, member.event("leave"),
                secrets.token_hex(4), STATE_TTL, member.topic, "1" if last_local else "0",
            ],
        )

    async def members(self, topic: str) -> list[str]:
        rows = await self._run("read", [self._key("members", topic)], [self.prefix + "alive:"])
        return [row.decode() for row in rows]

    async def topics(self) -> list[str]:
        """The topics live processes have members in."""
        rows = await self._run("topics", [self.prefix + "procs"], [self.prefix])
        return sorted(row.decode() for row in rows)

    async def heartbeat(self, ttl: int) -> bool:
        """Refresh this process's heartbeat and sweep the dead; False if this process had been swept."""
        proc = process_token()
        registered = await self._run(
            "heartbeat",
            [self._key("alive", proc), self.prefix + "procs"],
            [ttl, proc, self.prefix, self.broker.channel, secrets.token_hex(4), STATE_TTL,
             self.broker.state_key("")],
        )
        return bool(registered)

    async def close(self) -> None:
        entry = self._clients.pop()
        if entry is not None:
            await entry["client"].aclose(close_connection_pool=True)  # a pool of its own


# -- the tracker: this event loop's members ---------------------------------------------


class Tracker:
    """The members and presence watchers of one event loop (one server process).

    It keeps the process's heartbeat while it has either (one task, whatever
    the number of members), and leaves a member's presence when its call ends.
    """

    def __init__(self, broker: Broker, loop: asyncio.AbstractEventLoop) -> None:
        self.broker = broker
        self._loop = weakref.ref(loop)
        self.store: MemoryStore | RedisStore
        # The Redis broker's (or a subclass's) Redis; any other broker keeps presence in this process.
        if broker.redis_url is not None and hasattr(broker, "state_key"):
            self.store = RedisStore(broker)
        else:
            self.store = MemoryStore(broker)
        self.local: dict[str, Member] = {}
        self.watchers = 0
        self._heartbeat: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    @staticmethod
    def new_client_id() -> str:
        """Unique in the process, whatever its event loops: one counter for them all."""
        return f"{process_token()}.{next(_client_numbers)}"

    async def join(self, topic: str, user: Any, info: Any = None) -> Member:
        validate_topic(topic)
        info = check_info(info)
        authenticated = user is not None and getattr(user, "is_authenticated", False)
        member = Member(
            topic=topic,
            client=self.new_client_id(),
            user=str(user.get_username()) if authenticated else None,
            user_key=str(user.pk) if authenticated else "",
            info=info,
        )
        self.local[member.client] = member
        self._ensure_heartbeat()
        store = self.store
        write = store.join(member, self.ttl) if isinstance(store, RedisStore) else store.join(member)
        member.joining = self.loop.create_task(write, name=f"streaming_app presence join {topic}")
        try:
            # Shielded: a call cancelled meanwhile leaves after the join is written, not before.
            await asyncio.shield(member.joining)
        except BaseException:
            self.leave(member)
            raise
        return member

    def leave(self, member: Member) -> None:
        """Leave now; the store hears of it in a task of its own (a call's end does not wait on Redis)."""
        if member.left:
            return
        member.left = True
        self.local.pop(member.client, None)
        task = self.loop.create_task(self._leave(member), name=f"streaming_app presence leave {member.topic}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _leave(self, member: Member) -> None:
        if member.joining is not None:
            await asyncio.wait([member.joining])
            if member.joining.cancelled() or member.joining.exception() is not None:
                return  # never joined
        try:
            if isinstance(self.store, RedisStore):
                last = not any(other.topic == member.topic for other in self.local.values())
                await self.store.leave(member, last)
            else:
                await self.store.leave(member)
        except Exception:
            # Its process's heartbeat goes on: the member stays listed until this process dies.
            logger.exception("streaming_app: could not remove presence member %s of %s", member.client, member.topic)

    async def members(self, topic: str) -> list[dict[str, Any]]:
        validate_topic(topic)
        # One parse of them all (a thousand members: one C call, not a thousand).
        rows: list[dict[str, Any]] = json.loads(f"[{','.join(await self.store.members(topic))}]")
        for row in rows:
            del row["k"]  # the aggregation key (a user's pk) is the server's own
        rows.sort(key=lambda row: row["client"])
        return rows

    # -- heartbeat ---------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop()
        if loop is None:
            raise RuntimeError("the tracker's event loop is gone")
        return loop

    @property
    def interval(self) -> float:
        return float(streaming_settings.PRESENCE_HEARTBEAT_INTERVAL)

    @property
    def ttl(self) -> int:
        return max(1, round(self.interval * TTL_INTERVALS))

    def watching(self, delta: int) -> None:
        """A presence watcher came (+1) or went (-1): a process that only watches sweeps too."""
        self.watchers += delta
        if delta > 0:
            self._ensure_heartbeat()

    def _ensure_heartbeat(self) -> None:
        if not isinstance(self.store, RedisStore):
            return
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = self.loop.create_task(self._beat(), name="streaming_app presence heartbeat")

    async def _beat(self) -> None:
        """Once per interval while this process has members or watchers: one script, whatever their number."""
        store = self.store
        assert isinstance(store, RedisStore)
        idle = 0
        while idle < 2:
            try:
                registered = await store.heartbeat(self.ttl)
                if not registered and self.local:
                    # This process was taken for dead (its loop stalled past the TTL): its members rejoin.
                    for member in list(self.local.values()):
                        await store.join(member, self.ttl)
            except exceptions.Unavailable as exc:
                logger.warning("streaming_app: presence heartbeat failed (%s)", exc)
            await asyncio.sleep(self.interval)
            idle = idle + 1 if not self.local and self.watchers <= 0 else 0


_trackers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Tracker] = weakref.WeakKeyDictionary()


def get_tracker() -> Tracker:
    """The presence tracker of the running event loop."""
    loop = asyncio.get_running_loop()
    tracker = _trackers.get(loop)
    if tracker is None or tracker.broker is not get_broker():
        tracker = _trackers[loop] = Tracker(get_broker(), loop)
    return tracker


async def presence(topic: str) -> list[dict[str, Any]]:
    """The topic's members now, on every process: ``[{"client", "user", "info"}]``. No permission check."""
    return await get_tracker().members(topic)


async def presence_topics() -> list[str]:
    """The topics that have members now, on every live process (for the admin's live page)."""
    return await get_tracker().store.topics()


async def presence_stats(topic: str) -> dict[str, int]:
    """The topic's counts now: ``{"clients", "users", "anonymous"}``. No permission check."""
    return stats_of(await presence(topic))


# -- watching joins and leaves ------------------------------------------------------------


class PresenceEvents:
    """A topic's joins and leaves, as an async iterator of :class:`Event` (``{"presence", "user", "client", ...}``).

    The events are those of the topic ``<topic>~presence`` (``event.topic``).

    Per user (the default), a signed-in user joins with their first client
    and leaves with their last; ``per_user=False`` gives every client's. The
    events of ``own`` clients always pass (a member sees its own join).
    Each event's ``clients`` is that user's client count after it.
    """

    def __init__(self, topic: str, subscription: Subscription, *, per_user: bool = True) -> None:
        self.topic = topic
        self.subscription = subscription
        self.per_user = per_user
        self.own: set[str] = set()
        self._counted = False

    async def start(self) -> PresenceEvents:
        if not self._counted:
            self._counted = True
            get_tracker().watching(+1)
        await self.subscription.start()
        return self

    def __await__(self) -> Any:
        return self.start().__await__()

    def __aiter__(self) -> PresenceEvents:
        return self

    async def __anext__(self) -> Event:
        if not self._counted:
            await self.start()
        while True:
            event = await self.subscription.__anext__()
            if self.passes(event.data):
                return event  # as published: its JSON, made once, is shared by every watcher's frame

    def passes(self, data: dict[str, Any]) -> bool:
        if not self.per_user or data.get("user") is None or data.get("client") in self.own:
            return True
        clients = data.get("clients", 0)
        return bool(clients == 1 if data.get("presence") == "join" else clients == 0)

    def close(self) -> None:
        if self._counted:
            self._counted = False
            get_tracker().watching(-1)
        self.subscription.close()


def watch(topic: str, *, per_user: bool = True, buffer: int | None = None) -> PresenceEvents:
    """Joins and leaves of ``topic`` from now on (no permission check; inside a call use ``ctx.presence_events``)."""
    validate_topic(topic)
    subscription = Subscription(
        events_topic(topic), buffer=buffer or streaming_settings.SUBSCRIPTION_BUFFER
    )
    return PresenceEvents(topic, subscription, per_user=per_user)
