"""Broadcast over Redis across real daphne processes.

Publishers here are the other server process (``interop.publish``), a
management command and a plain Python process; subscribers are raw WebSocket
clients (tests/wsclient.py). Each test uses topics of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from conftest import ROOT, free_port, start_server, wait_for_port
from streaming_app.brokers.redis import RedisBroker
from wsclient import Connection, connected

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]



def new_topic() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


async def until_live(subscribers: list[tuple[Connection, int]], publish, topic: str) -> None:
    """Publish probes until every subscriber has received one: they are live from then on."""
    waiting = list(subscribers)
    for attempt in range(100):
        publish(topic, {"probe": attempt})
        still = []
        for conn, call_id in waiting:
            try:
                frame = await conn.recv_for(call_id, timeout=0.1)
                if frame["t"] == "ready":
                    frame = await conn.recv_for(call_id, timeout=0.1)
            except asyncio.TimeoutError:
                still.append((conn, call_id))
                continue
            assert frame["t"] == "next", frame
        waiting = still
        if not waiting:
            return
    raise AssertionError("subscribers never went live")


async def events(conn: Connection, call_id: int, count: int, timeout: float = 10.0) -> list[dict]:
    """The next ``count`` non-probe frames of a subscription (or its terminal frame)."""
    frames: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(frames) < count:
        frame = await conn.recv_for(call_id, timeout=max(deadline - time.monotonic(), 0.001))
        if frame["t"] == "ready" or frame["t"] == "next" and isinstance(frame["d"], dict) and "probe" in frame["d"]:
            continue
        frames.append(frame)
        if frame["t"] != "next":
            break
    return frames


def offsets(frames: list[dict]) -> list[int]:
    return [int(frame["eid"].split(":")[1]) for frame in frames]


@pytest.fixture
def broker(redis_url):
    """A publisher in this test process, talking to Redis directly."""
    return RedisBroker(redis_url, "streaming_app")


def publisher(broker: RedisBroker):
    return lambda topic, data: broker.publish(f"interop.{topic}", json.dumps(data))


async def test_publish_on_one_process_reaches_subscribers_on_both_in_order(two_servers, broker):
    a, b = two_servers
    topic = new_topic()
    async with connected(a.ws_url) as on_a, connected(b.ws_url) as on_b, connected(a.ws_url) as pub:
        await on_a.call(1, "interop.subscribe", {"topic": topic})
        await on_b.call(1, "interop.subscribe", {"topic": topic})
        await until_live([(on_a, 1), (on_b, 1)], publisher(broker), topic)
        results = [  # one after the other, so their order is the publisher's
            await pub.result(n + 1, "interop.publish", {"topic": topic, "data": {"n": n}}) for n in range(200)
        ]
        got_a = await events(on_a, 1, 200)
        got_b = await events(on_b, 1, 200)
    eids = [frame["d"]["eid"] for frame in results]
    for got in (got_a, got_b):
        assert [frame["d"] for frame in got] == [{"n": n} for n in range(200)]
        assert [frame["eid"] for frame in got] == eids
        assert offsets(got) == list(range(offsets(got)[0], offsets(got)[0] + 200))


async def test_management_command_reaches_a_server_process(two_servers, redis_url):
    a, _ = two_servers
    topic = new_topic()
    env = {**os.environ, "REDIS_URL": redis_url}
    command = [sys.executable, "manage.py", "streaming_publish", f"interop.{topic}"]
    async with connected(a.ws_url) as sub:
        await sub.call(1, "interop.subscribe", {"topic": topic})
        await until_live([(sub, 1)], lambda t, d: subprocess.run([*command, json.dumps(d)], cwd=ROOT, env=env, check=True, capture_output=True), topic)
        done = subprocess.run([*command, '{"from": "manage.py"}'], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        frame = (await events(sub, 1, 1))[0]
    assert done.returncode == 0, done.stderr
    assert frame["d"] == {"from": "manage.py"}
    assert frame["eid"] == done.stdout.strip()


async def test_plain_python_process_publishes_with_the_project_settings(two_servers, redis_url):
    a, _ = two_servers
    topic = new_topic()
    script = (
        "import django, json, sys; django.setup()\n"
        "from streaming_app import publish\n"
        "print(publish(sys.argv[1], json.loads(sys.argv[2])))\n"
    )
    env = {**os.environ, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "project.settings"}

    def run(topic_name: str, data: dict) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", script, f"interop.{topic_name}", json.dumps(data)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )

    async with connected(a.ws_url) as sub:
        await sub.call(1, "interop.subscribe", {"topic": topic})
        await until_live([(sub, 1)], run, topic)
        done = run(topic, {"from": "script"})
        frame = (await events(sub, 1, 1))[0]
    assert done.returncode == 0, done.stderr
    assert frame["d"] == {"from": "script"} and frame["eid"] == done.stdout.strip()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_subscriber_that_does_not_read_is_cut_off_and_memory_stays_bounded(two_servers, broker):
    a, _ = two_servers
    topic = new_topic()
    publish = publisher(broker)
    payload = "x" * 1000
    async with connected(a.ws_url) as sub:
        await sub.call(1, "interop.subscribe", {"topic": topic}, credit=1)
        await until_live([(sub, 1)], publish, topic)  # the probe used its one credit
        before = rss_kib(a.process.pid)
        last = None
        for n in range(20_000):  # 20 MB of events for a subscriber that reads none
            last = broker.publish(f"interop.{topic}", json.dumps({"n": n, "pad": payload}))
        frame = await sub.recv_for(1, timeout=10)
        growth = rss_kib(a.process.pid) - before
    assert frame["t"] == "error" and frame["code"] == "resource_exhausted", frame
    resume = frame["details"]["resume"]
    assert resume.split(":")[0] == last.split(":")[0]
    assert int(resume.split(":")[1]) < int(last.split(":")[1])
    assert growth < 12_000, f"server grew by {growth} KiB"


async def test_concurrent_publishes_arrive_in_event_id_order(two_servers, broker):
    a, b = two_servers
    topic = new_topic()
    async with connected(b.ws_url) as sub, connected(a.ws_url) as pub:
        await sub.call(1, "interop.subscribe", {"topic": topic})
        await until_live([(sub, 1)], publisher(broker), topic)
        results = []
        for batch in range(0, 200, 50):  # pipelined: 50 publish calls at once on process A (of 100 allowed)
            for n in range(batch, batch + 50):
                await pub.call(n + 1, "interop.publish", {"topic": topic, "data": {"n": n}})
            results += [await pub.recv_for(n + 1) for n in range(batch, batch + 50)]
        got = await events(sub, 1, 200)
    assert sorted(frame["d"]["n"] for frame in got) == list(range(200))
    assert offsets(got) == sorted(offsets(got))
    assert {frame["eid"] for frame in got} == {frame["d"]["eid"] for frame in results}


async def test_publish_with_an_invalid_topic_is_invalid_argument(two_servers):
    a, _ = two_servers
    async with connected(a.ws_url) as conn:
        frame = await conn.result(1, "interop.publish", {"topic": "no spaces allowed", "data": 1})
    assert frame["t"] == "error" and frame["code"] == "invalid_argument"


# -- the broker connection breaking ---------------------------------------------------


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of this test's own, so its connections can be killed without disturbing others."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


async def publish_through_a_broken_connection(server, private_redis: str, topic: str, count: int) -> list[dict]:
    """Subscribe, kill the server's pub/sub connection, publish ``count`` events; the frames that arrive."""
    publish = publisher(RedisBroker(private_redis, "streaming_app"))
    admin = redis.Redis.from_url(private_redis)
    async with connected(server.ws_url) as sub:
        await sub.call(1, "interop.subscribe", {"topic": topic})
        await until_live([(sub, 1)], publish, topic)
        admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        for n in range(count):  # some of these are published while the server reconnects
            publish(topic, {"n": n})
        frames = await events(sub, 1, count, timeout=15)
        # The server's broker connection came back: a new subscriber gets new events.
        async with connected(server.ws_url) as again:
            await again.call(1, "interop.subscribe", {"topic": topic})
            await until_live([(again, 1)], publish, topic)
    return frames


async def test_lost_broker_connection_is_caught_up_from_the_topic_history(tmp_path, private_redis):
    server = start_server(tmp_path, env={"REDIS_URL": private_redis})
    try:
        frames = await publish_through_a_broken_connection(server, private_redis, new_topic(), 500)
    finally:
        server.stop()
    assert [frame["t"] for frame in frames] == ["next"] * 500
    assert [frame["d"]["n"] for frame in frames] == list(range(500))
    assert offsets(frames) == list(range(offsets(frames)[0], offsets(frames)[0] + 500))


async def test_lost_broker_connection_without_history_never_gaps_a_stream_silently(tmp_path, private_redis):
    server = start_server(tmp_path, env={"REDIS_URL": private_redis, "DJANGO_SETTINGS_MODULE": "probes.nohistory_settings"})
    try:
        frames = await publish_through_a_broken_connection(server, private_redis, new_topic(), 500)
    finally:
        server.stop()
    if frames[-1]["t"] == "error":
        assert frames[-1]["code"] == "data_loss", frames[-1]
        assert "resume" in frames[-1]["details"]
        frames = frames[:-1]
    else:
        assert len(frames) == 500
    numbers = [frame["d"]["n"] for frame in frames]
    assert numbers == list(range(len(numbers)))  # whatever arrived has no hole


async def test_sse_subscriber_gets_event_ids_as_sse_ids(two_servers, broker):
    import httpx

    a, b = two_servers
    topic = new_topic()
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("GET", f"{b.http_url}/streams/interop.subscribe", params={"topic": topic},
                               headers={"Accept": "text/event-stream"}) as response:
            assert response.status_code == 200
            lines: asyncio.Queue[str] = asyncio.Queue()

            async def read() -> None:  # one reader: cancelling a pending anext() would break the stream
                async for line in response.aiter_lines():
                    await lines.put(line)

            reader = asyncio.ensure_future(read())
            try:
                eids = []
                for attempt in range(100):  # publish until the subscription is live
                    eids.append(broker.publish(f"interop.{topic}", json.dumps({"n": attempt})))
                    await asyncio.sleep(0.1)
                    if "event: next" in list(lines._queue):
                        break
                received = []
                while not lines.empty():
                    received.append(lines.get_nowait())
            finally:
                reader.cancel()
    ready = received.index("event: ready")
    assert received[ready - 1].startswith("id: ") and received[ready + 1].startswith("data: {")
    first = received.index("event: next")
    assert received[first - 1].startswith("id: ") and received[first - 1][4:] in eids


async def test_a_project_on_another_redis_database_is_not_heard(two_servers, broker, redis_url):
    """Redis pub/sub ignores database numbers, so the broker puts the number in its channel name."""
    base, _, db = redis_url.rpartition("/")
    other_database = RedisBroker(f"{base}/{(int(db or 0) + 1) % 16}", "streaming_app")
    topic = new_topic()
    async with connected(two_servers[0].ws_url) as conn:
        await conn.call(1, "interop.subscribe", {"topic": topic})
        await until_live([(conn, 1)], publisher(broker), topic)
        publisher(other_database)(topic, {"from": "the other database"})
        publisher(broker)(topic, {"from": "ours"})
        got = await events(conn, 1, 1)
    assert got[0]["t"] == "next" and got[0]["d"] == {"from": "ours"}, got
