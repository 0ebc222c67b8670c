"""Resuming topic subscriptions on real Redis and real daphne processes.

The subscriber here is a raw WebSocket client (tests/wsclient.py) that keeps
the last event id it processed and sends it as ``resume`` when it connects
again, the way any client written from protocol.md would.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid

import pytest
import redis
from django.test import override_settings

from conftest import publish_sequence, start_server
from streaming_app.brokers.redis import RedisBroker
from test_e2e_topics import private_redis  # noqa: F401  (fixture)
from wsclient import connected

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def new_topic() -> str:
    return f"r{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def broker(redis_url):
    broker = RedisBroker(redis_url, "streaming_app")
    yield broker
    await broker.close()


async def subscribe(url: str, topic: str, resume: str | None = None) -> tuple:
    """Connect, subscribe (resuming after ``resume``) and return (connection context, conn, ready frame)."""
    context = connected(url)
    conn = await context.__aenter__()
    fields = {"resume": resume} if resume else {}
    await conn.call(1, "interop.subscribe", {"topic": topic}, **fields)
    ready = await conn.recv_for(1, timeout=10)
    assert ready["t"] == "ready", ready
    return context, conn, ready


# -- the history in Redis ------------------------------------------------------------------


@override_settings(STREAMING={"TOPIC_HISTORY": {"*": {"size": 3}}})
async def test_redis_history_keeps_the_newest_events_up_to_its_size(broker):
    topic = new_topic()
    eids = [await broker.apublish(topic, json.dumps(n)) for n in range(1, 11)]
    epoch = eids[0].split(":")[0]
    kept = await broker.history(topic, 7, 10)
    trimmed = await broker.history(topic, 6, 10)
    assert kept.epoch == epoch and await broker.position(topic) == (epoch, 10)
    assert kept.events == [(8, "8"), (9, "9"), (10, "10")]
    assert trimmed.events is None  # event 7 is gone: all or nothing


@override_settings(STREAMING={"TOPIC_HISTORY": {"*": {"size": 100, "ttl": 0.3}}})
async def test_redis_history_forgets_events_older_than_its_ttl(broker):
    topic = new_topic()
    await broker.apublish(topic, "1")
    await asyncio.sleep(0.5)
    await broker.apublish(topic, "2")  # trims what expired
    assert (await broker.history(topic, 0, 2)).events is None
    assert (await broker.history(topic, 1, 2)).events == [(2, "2")]


@override_settings(STREAMING={"TOPIC_HISTORY": {}})
async def test_topic_without_history_keeps_nothing_in_redis(broker, redis_url):
    topic = new_topic()
    await broker.apublish(topic, "1")
    assert not redis.Redis.from_url(redis_url).exists(broker.history_key(topic))
    assert (await broker.history(topic, 0, 1)).events is None


# -- resuming through the servers --------------------------------------------------------------


async def test_resume_on_another_process_gets_exactly_what_was_missed(two_servers, broker):
    a, b = two_servers
    topic = new_topic()
    context, conn, ready = await subscribe(a.ws_url, topic)
    first = broker.publish(f"interop.{topic}", json.dumps(0))
    assert (await conn.recv_for(1))["eid"] == first
    await context.__aexit__(None, None, None)
    missed = [broker.publish(f"interop.{topic}", json.dumps(n)) for n in range(1, 51)]
    context, conn, ready = await subscribe(b.ws_url, topic, resume=first)
    try:
        replayed = [await conn.recv_for(1) for _ in range(50)]
        live = broker.publish(f"interop.{topic}", json.dumps(51))
        after = await conn.recv_for(1)
    finally:
        await context.__aexit__(None, None, None)
    assert ready["recovered"] is True and ready["eid"] == first
    assert [frame["eid"] for frame in replayed] == missed
    assert [frame["d"] for frame in replayed] == list(range(1, 51))
    assert after["eid"] == live


async def test_every_subscription_starts_with_ready_at_the_topic_position(two_servers, broker):
    topic = new_topic()
    newest = broker.publish(f"interop.{topic}", json.dumps("before"))
    context, conn, ready = await subscribe(two_servers[0].ws_url, topic)
    await context.__aexit__(None, None, None)
    assert ready["eid"] == newest and "recovered" not in ready


@override_settings(STREAMING={"TOPIC_HISTORY": {"interop.*": {"size": 5}}})
async def test_resume_past_the_history_is_not_recovered_and_replays_nothing(two_servers, broker):
    topic = new_topic()
    seen = broker.publish(f"interop.{topic}", json.dumps(0))
    for n in range(1, 11):  # this publisher keeps only 5
        newest = broker.publish(f"interop.{topic}", json.dumps(n))
    context, conn, ready = await subscribe(two_servers[1].ws_url, topic, resume=seen)
    try:
        assert await conn.quiet(0.3) == []
    finally:
        await context.__aexit__(None, None, None)
    assert ready["recovered"] is False and ready["eid"] == newest


async def test_flushed_redis_starts_a_new_epoch_and_old_event_ids_do_not_match(tmp_path, private_redis):  # noqa: F811
    server = start_server(tmp_path, env={"REDIS_URL": private_redis})
    broker = RedisBroker(private_redis, "streaming_app")
    topic = new_topic()
    try:
        old = [broker.publish(f"interop.{topic}", json.dumps(n)) for n in range(3)]
        redis.Redis.from_url(private_redis).flushall()
        new = broker.publish(f"interop.{topic}", json.dumps("after the flush"))
        context, conn, ready = await subscribe(server.ws_url, topic, resume=old[0])
        await context.__aexit__(None, None, None)
    finally:
        server.stop()
    assert new.split(":")[0] != old[0].split(":")[0]
    assert ready["recovered"] is False and ready["eid"] == new


async def test_subscriber_moving_between_processes_killed_mid_stream_sees_no_gap_and_no_duplicate(
    tmp_path, two_servers, redis_url
):
    """A is killed (SIGKILL) three times while B publishes; the subscriber resumes wherever it can."""
    a, b = two_servers
    topic = new_topic()
    total = 3000
    got: list[int] = []
    last: str | None = None

    async def read(url: str, count: int) -> None:
        """Subscribe (resuming) on ``url`` and read ``count`` items or until the connection drops."""
        nonlocal last
        context, conn, ready = await subscribe(url, topic, resume=last)
        if last is not None:
            assert ready["recovered"] is True, ready
        try:
            for _ in range(count):
                frame = await conn.recv_for(1, timeout=10)
                assert frame["t"] == "next", frame
                got.append(frame["d"])
                last = frame["eid"]
        except Exception:  # the server went away under it
            pass
        finally:
            try:
                await context.__aexit__(None, None, None)
            except Exception:
                pass

    context, conn, _ = await subscribe(a.ws_url, topic)  # the topic has a position before publishing starts
    await context.__aexit__(None, None, None)
    publisher = asyncio.ensure_future(publish_sequence(b.ws_url, topic, total))
    kills_while_publishing = 0
    try:
        for _ in range(3):
            reader = asyncio.ensure_future(read(a.ws_url, total))
            deadline = time.monotonic() + 30
            start = len(got)
            while len(got) < start + 300 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            kills_while_publishing += not publisher.done()
            a.process.send_signal(signal.SIGKILL)  # mid-stream, no goodbye
            a.process.wait(10)
            await asyncio.wait_for(reader, 15)
            await read(b.ws_url, 200)  # carry on at B while A is down
            a = start_server(tmp_path, env={"REDIS_URL": redis_url}, port=a.port)
            two_servers[0] = a
        await asyncio.wait_for(publisher, 60)
        for _ in range(5):
            if len(got) >= total:
                break
            await read(a.ws_url, total - len(got))
    finally:
        publisher.cancel()
    assert kills_while_publishing >= 2
    assert got == list(range(total))
