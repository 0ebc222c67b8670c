"""Broker hygiene on real Redis: what a publisher can make the broker keep is bounded (issue 17, row 7).

History used to be capped by count only (10,000 events of 1 MB on one topic),
and every topic's keys lived 7 days (20,000 topics left 40,000 keys). Now the
history is capped by bytes too, events by size, and a topic's keys live as
long as its history does.
"""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from django.test import override_settings

from streaming_app import exceptions
from streaming_app.brokers.memory import MemoryBroker
from streaming_app.brokers.redis import RedisBroker
from streaming_app.topics import apublish
from wsclient import connected

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

EVENT = json.dumps("x" * 998)  # 1,000 bytes of JSON


def new_topic() -> str:
    return f"lim{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def broker(redis_url):
    broker = RedisBroker(redis_url, "streaming_app")
    yield broker
    await broker.close()


@pytest.fixture
def client(redis_url):
    return redis.Redis.from_url(redis_url)


def stored_bytes(client, broker, topic: str) -> int:
    return sum(len(fields[b"d"]) for _, fields in client.xrange(broker.history_key(topic)))


@override_settings(STREAMING={"TOPIC_HISTORY": {"*": {"size": 10_000, "bytes": 10_000}}})
async def test_redis_history_keeps_the_newest_events_up_to_its_bytes(broker, client):
    topic = new_topic()
    for _ in range(100):
        await broker.apublish(topic, EVENT)
    assert stored_bytes(client, broker, topic) == 10_000
    assert int(client.hget(broker.state_key(topic), "bytes")) == 10_000
    assert [offset for offset, _ in (await broker.history(topic, 90, 100)).events] == list(range(91, 101))
    assert (await broker.history(topic, 89, 100)).events is None


@override_settings(STREAMING={"TOPIC_HISTORY": {"*": {"size": 10_000}}, "TOPIC_HISTORY_MAX_BYTES": 5_000})
async def test_redis_history_without_bytes_of_its_own_keeps_topic_history_max_bytes(broker, client):
    topic = new_topic()
    for _ in range(20):
        await broker.apublish(topic, EVENT)
    assert stored_bytes(client, broker, topic) == 5_000


@override_settings(STREAMING={"TOPIC_HISTORY": {"*": {"size": 100, "bytes": 500}}})
async def test_an_event_larger_than_the_history_bytes_is_delivered_but_not_kept(broker, client):
    topic = new_topic()
    await broker.apublish(topic, EVENT)
    assert client.xlen(broker.history_key(topic)) == 0
    assert (await broker.history(topic, 0, 1)).events is None


@override_settings(STREAMING={"TOPIC_HISTORY": {"*": {"size": 100, "ttl": 60}}})
async def test_a_topics_keys_live_as_long_as_its_history(broker, client):
    topic = new_topic()
    await broker.apublish(topic, EVENT)
    assert 0 < client.ttl(broker.state_key(topic)) <= 60
    assert 0 < client.ttl(broker.history_key(topic)) <= 60


@override_settings(STREAMING={"TOPIC_HISTORY": {}, "TOPIC_STATE_TTL": 120})
async def test_a_topic_without_history_keeps_its_position_for_topic_state_ttl(broker, client):
    topic = new_topic()
    await broker.apublish(topic, EVENT)
    await broker.position(new_topic())
    assert 0 < client.ttl(broker.state_key(topic)) <= 120  # it was 7 days


@override_settings(STREAMING={"MAX_EVENT_BYTES": 1000})
async def test_an_event_over_max_event_bytes_is_refused():
    with pytest.raises(exceptions.InvalidArgument) as refused:
        await apublish(new_topic(), "x" * 1000)
    assert refused.value.details["max_bytes"] == 1000


@override_settings(STREAMING={"TOPIC_HISTORY": {"*": {"size": 10_000, "bytes": 10_000}}})
async def test_memory_history_keeps_the_newest_events_up_to_its_bytes():
    broker = MemoryBroker()
    topic = new_topic()
    for _ in range(100):
        broker.publish(topic, EVENT)
    assert [offset for offset, _ in (await broker.history(topic, 90, 100)).events] == list(range(91, 101))
    assert (await broker.history(topic, 89, 100)).events is None


# -- the example project's interop.publish --------------------------------------------------


async def test_interop_publish_cannot_fill_redis(daphne_on_redis, client):
    topic = new_topic()
    big = "x" * 60_000
    async with connected(daphne_on_redis.ws_url) as conn:
        for n in range(1, 41):
            assert (await conn.result(n, "interop.publish", {"topic": topic, "data": big}))["t"] == "end"
        refused = await conn.result(41, "interop.publish", {"topic": topic, "data": "x" * 70_000})
    broker = RedisBroker("redis://unused", "streaming_app")
    held = sum(len(fields[b"d"]) for _, fields in client.xrange(broker.history_key(f"interop.{topic}")))
    assert held <= 1024 * 1024  # 40 events of 60 KB were 2.4 MB
    assert refused["code"] == "invalid_argument"
    assert 0 < client.ttl(broker.state_key(f"interop.{topic}")) <= 3600
