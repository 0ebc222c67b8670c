"""The Redis broker: one PUBLISH per event, one subscribed connection per server process.

Why not the channel layer's ``group_send``: it cannot number events. A topic's
offsets must follow the order subscribers receive events in, or neither gaps
nor resume points mean anything, and two publishers racing between an INCR and
a ``group_send`` break that. Here one Lua script numbers the event and
publishes it atomically, so every process sees each topic in offset order. It
is also cheaper: one round trip per publish and one Redis message per server
process, where channels_redis's core layer ships every member's channel name
in each message (bench/fanout.py measures both).

The Redis is the channel layer's (``CHANNEL_LAYERS["default"]``) unless
``STREAMING["BROKER"]`` names another.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import threading
from typing import Any

import redis
import redis.asyncio
from redis.connection import parse_url

from ..exceptions import Unavailable
from ..history import history_policy
from ..redis_clients import PerLoop
from .base import Backlog, Broker, BrokerEventHandler

logger = logging.getLogger("streaming_app")

# KEYS[1] topic state hash, KEYS[2] topic history stream; ARGV: channel, topic,
# data, new epoch, state TTL (s), history size (0: none), history TTL (ms, 0: none),
# history bytes. History entries have the id "<offset>-0", so a range of
# offsets is an XRANGE; a new epoch starts with an empty history. The state
# hash counts the bytes of event JSON the history holds ('bytes', reset when
# the history is gone), and the oldest entries are dropped while the history
# is over its count, its bytes or its age.
PUBLISH_SCRIPT = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[4]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  redis.call('DEL', KEYS[2])
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('EXPIRE', KEYS[1], ARGV[5])
local eid = epoch .. ':' .. seq
redis.call('PUBLISH', ARGV[1], ARGV[2] .. '\\n' .. eid .. '\\n' .. ARGV[3])
local size = tonumber(ARGV[6])
if size > 0 then
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('HSET', KEYS[1], 'bytes', 0) end
  redis.call('XADD', KEYS[2], seq .. '-0', 't', ms, 'd', ARGV[3])
  local held = redis.call('HINCRBY', KEYS[1], 'bytes', string.len(ARGV[3]))
  local count = redis.call('XLEN', KEYS[2])
  local ttl = tonumber(ARGV[7])
  local max_bytes = tonumber(ARGV[8])
  while count > 0 do
    local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
    if count <= size and held <= max_bytes and (ttl == 0 or tonumber(oldest[2][2]) >= ms - ttl) then break end
    redis.call('XDEL', KEYS[2], oldest[1])
    held = redis.call('HINCRBY', KEYS[1], 'bytes', -string.len(oldest[2][4]))
    count = count - 1
  end
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[2], ttl)
  else
    redis.call('EXPIRE', KEYS[2], ARGV[5])
  end
else
  redis.call('DEL', KEYS[2])
end
return eid
"""

# KEYS[1] topic state hash; ARGV: new epoch, state TTL. Returns {epoch, seq}.
POSITION_SCRIPT = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  redis.call('DEL', KEYS[2])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return {epoch, redis.call('HGET', KEYS[1], 'seq') or '0'}
"""

# KEYS[1] state hash, KEYS[2] history stream; ARGV: first id, last id.
# Returns {epoch, entries}, read atomically, so the entries belong to the epoch.
HISTORY_SCRIPT = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return {'', {}} end
return {epoch, redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[2])}
"""

PING_INTERVAL = 15.0  # the subscribed connection is checked when this long silent
MAX_BACKOFF = 5.0


class RedisBroker(Broker):
    """Events numbered and fanned out by Redis; see the module docstring."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = self.redis_url = url
        self.prefix = prefix
        # Pub/sub ignores the database number: projects sharing one Redis on
        # different databases would hear each other's events without it.
        self.channel = f"{prefix}:{parse_url(url).get('db', 0)}:events"
        self._sync: Any = None
        self._sync_lock = threading.Lock()
        self._clients: PerLoop[tuple[Any, Any]] = PerLoop(self._connect)
        self._readers: dict[BrokerEventHandler, asyncio.Task[None]] = {}

    def state_key(self, topic: str) -> str:
        return f"{self.prefix}:topic:{topic}"

    def history_key(self, topic: str) -> str:
        return f"{self.prefix}:history:{topic}"

    def _keys(self, topic: str) -> list[str]:
        return [self.state_key(topic), self.history_key(topic)]

    # -- publishing --------------------------------------------------------------

    def publish(self, topic: str, data_json: str) -> str:
        with self._sync_lock:
            if self._sync is None:
                client = redis.Redis.from_url(self.url, socket_timeout=10, socket_connect_timeout=5)
                self._sync = (client, client.register_script(PUBLISH_SCRIPT))
        _, script = self._sync
        try:
            eid: bytes = script(keys=self._keys(topic), args=self._publish_args(topic, data_json))
        except (redis.RedisError, OSError) as exc:
            raise Unavailable(f"The broker (Redis) is unreachable: {exc}") from exc
        return eid.decode()

    async def apublish(self, topic: str, data_json: str) -> str:
        _, script = self._client()
        try:
            eid: bytes = await script(keys=self._keys(topic), args=self._publish_args(topic, data_json))
        except (redis.RedisError, OSError) as exc:
            raise Unavailable(f"The broker (Redis) is unreachable: {exc}") from exc
        return eid.decode()

    def _publish_args(self, topic: str, data_json: str) -> list[Any]:
        policy = history_policy(topic)
        ttl_ms = round(policy.ttl * 1000) if policy.ttl is not None else 0
        return [
            self.channel, topic, data_json, secrets.token_hex(4), policy.state_ttl, policy.size, ttl_ms,
            policy.byte_limit,
        ]

    async def position(self, topic: str) -> tuple[str, int]:
        client, _ = self._client()
        try:
            epoch, seq = await client.eval(
                POSITION_SCRIPT, 2, *self._keys(topic), secrets.token_hex(4), history_policy(topic).state_ttl
            )
        except (redis.RedisError, OSError) as exc:
            raise Unavailable(f"The broker (Redis) is unreachable: {exc}") from exc
        return epoch.decode(), int(seq)

    async def history(self, topic: str, after: int, upto: int) -> Backlog:
        client, _ = self._client()
        try:
            epoch, entries = await client.eval(HISTORY_SCRIPT, 2, *self._keys(topic), f"{after + 1}-0", f"{upto}-0")
        except (redis.RedisError, OSError) as exc:
            raise Unavailable(f"The broker (Redis) is unreachable: {exc}") from exc
        if len(entries) != upto - after:  # ids are unique offsets in range: all of them, or some are gone
            return Backlog(epoch.decode(), None)
        events = [(int(entry_id.split(b"-", 1)[0]), dict(zip(fields[::2], fields[1::2]))[b"d"].decode())
                  for entry_id, fields in entries]
        return Backlog(epoch.decode(), events)

    def _client(self) -> tuple[Any, Any]:
        """This event loop's client and publish script (redis.asyncio connections belong to one loop)."""
        return self._clients.get()

    def _connect(self) -> tuple[Any, Any]:
        # No read timeout: a quiet connection is not a dead one (channels_redis#422).
        client = redis.asyncio.Redis.from_url(
            self.url, socket_timeout=None, socket_connect_timeout=5, health_check_interval=30
        )
        return client, client.register_script(PUBLISH_SCRIPT)

    async def ping(self) -> None:
        client, _ = self._client()
        try:
            await client.ping()
        except (redis.RedisError, OSError) as exc:
            raise Unavailable(f"The broker (Redis) is unreachable: {exc}") from exc

    # -- receiving ----------------------------------------------------------------

    async def listen(self, handler: BrokerEventHandler) -> None:
        live = asyncio.get_running_loop().create_future()
        task = self._readers.get(handler)
        if task is None or task.done():
            self._readers[handler] = asyncio.get_running_loop().create_task(
                self._read(handler, live), name="streaming_app broker reader"
            )
        await live

    async def _read(self, handler: BrokerEventHandler, live: asyncio.Future[None]) -> None:
        """Keep one connection subscribed to the events channel; reconnect with backoff."""
        backoff = 0.1
        reconnecting = False
        while True:
            client = redis.asyncio.Redis.from_url(self.url, socket_timeout=None, socket_connect_timeout=5)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                awaiting_pong = False
                while True:
                    message = await pubsub.get_message(timeout=PING_INTERVAL)
                    if message is None:
                        if awaiting_pong:
                            raise redis.ConnectionError("Redis did not answer a ping")
                        await pubsub.ping()
                        awaiting_pong = True
                        continue
                    awaiting_pong = False
                    kind = message["type"]
                    if kind == "message":
                        self._dispatch(handler, message["data"])
                    elif kind == "subscribe":
                        backoff = 0.1
                        if not live.done():
                            live.set_result(None)
                        if reconnecting:
                            logger.info("streaming_app: broker connection to Redis restored")
                            try:
                                await handler.resync()
                            except Unavailable as exc:
                                # A pooled connection the restart broke fails the
                                # first command: subscribe and resync again rather
                                # than let this reader die with the subscribers
                                # it serves told nothing.
                                raise redis.ConnectionError(f"could not resync the topics: {exc}") from exc
                        reconnecting = True
            except (redis.RedisError, OSError) as exc:
                if not live.done():
                    live.set_exception(Unavailable(f"The broker (Redis) is unreachable: {exc}"))
                    return
                logger.warning("streaming_app: lost the broker connection to Redis (%s); reconnecting", exc)
            finally:
                await pubsub.aclose()
                await client.aclose()
            await asyncio.sleep(random.uniform(0, backoff))
            backoff = min(backoff * 2, MAX_BACKOFF)

    @staticmethod
    def _dispatch(handler: BrokerEventHandler, payload: bytes) -> None:
        topic, eid, data_json = payload.split(b"\n", 2)
        name = topic.decode()
        if handler.wants(name):
            handler.deliver(name, eid.decode(), data_json.decode())

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for handler, task in list(self._readers.items()):
            if handler.loop is loop:
                task.cancel()
                del self._readers[handler]
        entry = self._clients.pop()
        if entry is not None:
            await entry[0].aclose()

