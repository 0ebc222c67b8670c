"""Presence across real daphne processes on Redis (and on the memory broker in one process).

Two servers of the example project (plus the presence probes of
tests/probes/presenceprobe_asgi.py) share Redis and the database; clients speak
raw protocol frames (tests/wsclient.py). Topics are unique per test, so the
servers are shared by the module.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conftest import start_server
from wsclient import Connection, connect

pytestmark = [
    pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_worker_connections")
]

APP = "probes.presenceprobe_asgi:application"
WITHIN = 10.0


@pytest.fixture(scope="module")
def servers(django_db_setup, django_db_blocker, tmp_path_factory, redis_url):
    """Two processes on the same Redis."""
    tmp = tmp_path_factory.mktemp("presence")
    with django_db_blocker.unblock():
        started = [start_server(tmp, app=APP, env={"REDIS_URL": redis_url}) for _ in range(2)]
    yield started
    for server in started:
        server.stop()


def room() -> str:
    return f"p{uuid.uuid4().hex[:12]}"


async def items_of(conn: Connection, call_id: int, count: int, timeout: float = WITHIN) -> list[Any]:
    """The next ``count`` items (``next`` frames' data) of a call; ``ready`` frames skipped."""
    items: list[Any] = []
    deadline = time.monotonic() + timeout
    for _ in range(1000):
        if len(items) == count:
            return items
        frame = await conn.recv_for(call_id, max(deadline - time.monotonic(), 0.001))
        if frame["t"] == "ready":
            continue
        assert frame["t"] == "next", frame
        items.append(frame["d"])
    raise AssertionError("too many frames")


async def presence_items(conn: Connection, call_id: int, count: int, timeout: float = WITHIN) -> list[dict]:
    return [item for item in await items_of(conn, call_id, count, timeout) if "presence" in item]


async def enter(url: str, topic: str, call_id: int = 1, headers: dict[str, str] | None = None, **fields: Any):
    """A connection in ``interop.room``; its own join (the first presence item)."""
    conn = await connect(url, headers=headers)
    await conn.call(call_id, "interop.room", {"topic": topic}, **fields)
    [own] = await items_of(conn, call_id, 1)
    assert own["presence"] == "join", own
    return conn, own


async def room_presence(conn: Connection, topic: str, call_id: int) -> dict:
    frame = await conn.result(call_id, "interop.presence", {"topic": topic})
    assert frame["t"] == "end", frame
    return frame["d"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_join_on_one_process_is_seen_by_a_member_on_the_other(servers):
    a, b = servers
    topic = room()
    conn_a, own_a = await enter(a.ws_url, topic)
    conn_b, own_b = await enter(b.ws_url, topic)
    try:
        assert own_a["user"] is None and set(own_a) == {"presence", "user", "client"}
        [seen] = await items_of(conn_a, 1, 1)
        assert seen == {"presence": "join", "user": None, "client": own_b["client"]}
        assert await room_presence(conn_b, topic, 2) == {"clients": 2, "users": [{"user": None, "clients": 2}]}
    finally:
        await conn_a.close()
        await conn_b.close()


async def test_published_data_reaches_the_room_with_its_presence(servers):
    a, b = servers
    topic = room()
    conn_a, _ = await enter(a.ws_url, topic)
    try:
        conn_b = await connect(b.ws_url)
        assert (await conn_b.result(1, "interop.publish", {"topic": topic, "data": {"hello": 1}}))["t"] == "end"
        assert await items_of(conn_a, 1, 1) == [{"hello": 1}]
        await conn_b.close()
    finally:
        await conn_a.close()


async def _leaves_when(end, servers, **call_fields) -> None:
    """A member on b whose call ``end`` ends is seen to leave by a member on a, and is no longer listed."""
    a, b = servers
    topic = room()
    conn_a, _ = await enter(a.ws_url, topic)
    conn_b, own_b = await enter(b.ws_url, topic, **call_fields)
    try:
        assert (await items_of(conn_a, 1, 1))[0]["client"] == own_b["client"]
        await end(conn_b)
        [left] = await items_of(conn_a, 1, 1)
        assert left == {"presence": "leave", "user": None, "client": own_b["client"]}
        assert (await room_presence(conn_a, topic, 2))["clients"] == 1
    finally:
        await conn_a.close()
        await conn_b.close()


async def test_a_member_leaves_when_its_call_is_cancelled(servers):
    async def cancel(conn):
        await conn.send({"t": "cancel", "id": 1})

    await _leaves_when(cancel, servers)


async def test_a_member_leaves_when_its_connection_closes(servers):
    async def disconnect(conn):
        await conn.close()

    await _leaves_when(disconnect, servers)


async def test_a_member_leaves_when_its_deadline_passes(servers):
    async def deadline(conn):
        frame = await conn.recv_for(1, timeout=WITHIN)
        assert frame["t"] == "error" and frame["code"] == "deadline_exceeded", frame

    await _leaves_when(deadline, servers, timeout=2)


async def test_a_member_leaves_when_an_administrator_terminates_its_call(servers, redis_url, settings):
    from streaming_app import control
    from streaming_app.monitor import live_calls

    settings.STREAMING = {**settings.STREAMING, "BROKER": redis_url}

    async def terminate(conn):
        deadline = time.monotonic() + WITHIN
        call = None
        while call is None and time.monotonic() < deadline:
            calls = (await live_calls())["calls"]
            call = next((c for c in calls if c["conn"] == conn.hello["conn"]), None)
            await asyncio.sleep(0.1)
        assert call is not None, "the call never showed in the live list"
        await sync_to_async(control.terminate)(call["process"], call["conn"], call["call"])
        frame = await conn.recv_for(1, timeout=WITHIN)
        assert frame["t"] == "error" and frame["details"] == {"reason": "terminated"}, frame

    await _leaves_when(terminate, servers)


async def test_a_users_clients_aggregate_first_join_and_last_leave(servers, make_token):
    a, b = servers
    token = await sync_to_async(make_token)("pam")
    topic = room()
    watcher, _ = await enter(a.ws_url, topic)
    first, own_first = await enter(a.ws_url, topic, headers=bearer(token))
    second, own_second = await enter(b.ws_url, topic, headers=bearer(token))
    try:
        assert own_first["user"] == own_second["user"] == "pam"
        assert own_first["client"] != own_second["client"]
        # Only the user's first client is a join; the second is not one.
        assert await presence_items(watcher, 1, 1) == [{"presence": "join", "user": "pam", "client": own_first["client"]}]
        assert await room_presence(watcher, topic, 2) == {
            "clients": 3, "users": [{"user": "pam", "clients": 2}, {"user": None, "clients": 1}]
        }
        await first.close()
        # The two processes see their disconnects independently: wait until the
        # first client is gone, so that the second is the user's last.
        call_id = 3
        for _ in range(100):
            if (await room_presence(watcher, topic, call_id))["clients"] == 2:
                break
            call_id += 1
            await asyncio.sleep(0.1)
        await second.close()
        # Only the last client's leave is the user's leave.
        [left] = await presence_items(watcher, 1, 1)
        assert left == {"presence": "leave", "user": "pam", "client": own_second["client"]}
        assert (await room_presence(watcher, topic, call_id + 1))["clients"] == 1
    finally:
        for conn in (watcher, first, second):
            await conn.close()


async def test_a_killed_processs_members_leave_within_15_seconds(servers, redis_url, tmp_path):
    a, _ = servers
    doomed = start_server(tmp_path, app=APP, env={"REDIS_URL": redis_url})
    topic = room()
    watcher, _ = await enter(a.ws_url, topic)
    try:
        victim, own = await enter(doomed.ws_url, topic)
        assert (await items_of(watcher, 1, 1))[0]["client"] == own["client"]
        doomed.process.kill()
        doomed.process.wait(5)
        killed = time.monotonic()
        [left] = await items_of(watcher, 1, 1, timeout=20)
        assert left == {"presence": "leave", "user": None, "client": own["client"]}
        assert time.monotonic() - killed < 15
        assert (await room_presence(watcher, topic, 2))["clients"] == 1
    finally:
        await watcher.close()
        doomed.stop()


async def test_presence_is_denied_where_subscribing_is_denied(servers, make_token):
    token = await sync_to_async(make_token)("rita")
    conn = await connect(servers[0].ws_url, headers=bearer(token))
    try:
        for call_id, method in enumerate(["presenceprobe.members", "presenceprobe.stats"], start=1):
            frame = await conn.result(call_id, method, {"topic": "secret.room"})
            assert frame["t"] == "error" and frame["code"] == "permission_denied", frame
        frame = await conn.result(3, "presenceprobe.members", {"topic": "open.room"})
        assert frame["t"] == "end"
    finally:
        await conn.close()


async def test_anonymous_presence_where_subscribing_needs_a_user_is_unauthenticated(servers):
    """As for a subscription: DRF's rule, a refused anonymous caller is asked to authenticate."""
    conn = await connect(servers[0].ws_url)
    try:
        frame = await conn.result(1, "presenceprobe.members", {"topic": "secret.room"})
        assert frame["t"] == "error" and frame["code"] == "unauthenticated", frame
    finally:
        await conn.close()


async def test_joining_or_watching_is_denied_where_subscribing_is_denied(servers, make_token):
    token = await sync_to_async(make_token)("sam")
    conn = await connect(servers[0].ws_url, headers=bearer(token))
    try:
        for call_id, method in enumerate(["presenceprobe.join", "presenceprobe.watch"], start=1):
            frame = await conn.result(call_id, method, {"topic": "secret.room"})
            assert frame["t"] == "error" and frame["code"] == "permission_denied", frame
    finally:
        await conn.close()


async def test_anonymous_members_are_counted_and_never_named(servers, make_token):
    a, b = servers
    token = await sync_to_async(make_token)("quinn")
    topic = f"open.{room()}"
    anon = await connect(a.ws_url)
    named = await connect(b.ws_url, headers=bearer(token))
    reader = await connect(a.ws_url)
    try:
        await anon.call(1, "presenceprobe.join", {"topic": topic, "info": {"device": "phone"}})
        await items_of(anon, 1, 1)
        await named.call(1, "presenceprobe.join", {"topic": topic})
        await items_of(named, 1, 1)
        members = (await reader.result(1, "presenceprobe.members", {"topic": topic}))["d"]["members"]
        assert sorted((m["user"] is None, m["info"]) for m in members) == [(False, None), (True, {"device": "phone"})]
        assert "quinn" not in str([m for m in members if m["user"] is None])
        stats = (await reader.result(2, "presenceprobe.stats", {"topic": topic}))["d"]
        assert stats == {"clients": 2, "users": 1, "anonymous": 1}
    finally:
        for conn in (anon, named, reader):
            await conn.close()


async def test_info_over_the_size_limit_is_invalid_argument(servers):
    conn = await connect(servers[0].ws_url)
    try:
        frame = await conn.result(1, "presenceprobe.join", {"topic": "open.big", "info": {"bio": "x" * 3000}})
        assert frame["t"] == "error" and frame["code"] == "invalid_argument", frame
        assert frame["details"]["max_bytes"] == 2048
    finally:
        await conn.close()


async def test_an_invalid_topic_name_gets_the_topics_usual_error(servers):
    conn = await connect(servers[0].ws_url)
    try:
        frame = await conn.result(1, "presenceprobe.members", {"topic": "no spaces!"})
        assert frame["t"] == "error" and frame["code"] == "invalid_argument", frame
        assert "Invalid topic name" in frame["message"]
    finally:
        await conn.close()


async def test_presence_works_on_the_memory_broker_in_one_process(tmp_path):
    server = start_server(tmp_path, app=APP, env={"REDIS_URL": ""})
    topic = room()
    try:
        conn_a, own_a = await enter(server.ws_url, topic)
        conn_b, own_b = await enter(server.ws_url, topic)
        assert (await items_of(conn_a, 1, 1))[0] == {"presence": "join", "user": None, "client": own_b["client"]}
        assert (await room_presence(conn_a, topic, 2))["clients"] == 2
        await conn_b.send({"t": "cancel", "id": 1})
        assert (await items_of(conn_a, 1, 1))[0] == {"presence": "leave", "user": None, "client": own_b["client"]}
        assert (await room_presence(conn_a, topic, 3))["clients"] == 1
        await conn_a.close()
        await conn_b.close()
    finally:
        server.stop()


async def test_the_admin_live_snapshot_lists_a_rooms_subscribers_and_members_across_processes(servers, redis_url, settings):
    from streaming_app.admin_streams import live_snapshot
    from streaming_app.monitor import get_store

    settings.STREAMING = {**settings.STREAMING, "BROKER": redis_url}
    a, b = servers
    topic = room()
    conn_a, _ = await enter(a.ws_url, topic)
    conn_b, _ = await enter(b.ws_url, topic)
    wanted = {"topic": f"interop.{topic}", "subscribers": 2, "watchers": 2,
              "members": {"clients": 2, "users": 0, "anonymous": 2}}
    try:
        row = None
        deadline = time.monotonic() + WITHIN
        while row != wanted and time.monotonic() < deadline:
            snapshot = await live_snapshot()
            row = next((t for t in snapshot["topics"] if t["topic"] == wanted["topic"]), None)
            await asyncio.sleep(0.2)
        assert row == wanted
    finally:
        await conn_a.close()
        await conn_b.close()
        await get_store().close()


async def test_a_member_over_http_sse_leaves_when_its_response_is_closed(servers):
    import httpx

    a, b = servers
    topic = room()
    conn_a, _ = await enter(a.ws_url, topic)
    try:
        async with httpx.AsyncClient(base_url=f"{b.http_url}/streams/", trust_env=False, timeout=WITHIN) as http:
            async with http.stream(
                "GET", "interop.room", params={"topic": topic}, headers={"Accept": "text/event-stream"}
            ) as response:
                assert response.status_code == 200
                lines = response.aiter_lines()
                own = None
                for _ in range(50):
                    line = await asyncio.wait_for(lines.__anext__(), WITHIN)
                    if line.startswith("data: ") and '"presence"' in line:
                        own = json.loads(line[len("data: "):])
                        break
                assert own is not None and own["presence"] == "join"
                [seen] = await items_of(conn_a, 1, 1)
                assert seen["client"] == own["client"]
        [left] = await items_of(conn_a, 1, 1)
        assert left == {"presence": "leave", "user": None, "client": own["client"]}
    finally:
        await conn_a.close()


async def test_a_process_keeps_one_heartbeat_for_a_thousand_members_and_they_can_all_leave_at_once(redis_url, settings):
    """Heartbeats are per process (this one, on the servers' Redis), never per member; a burst of
    leaves (a closing connection, a draining process) waits for Redis connections instead of failing."""
    from streaming_app.presence import get_tracker, presence_stats

    settings.STREAMING = {**settings.STREAMING, "BROKER": redis_url}
    tracker = get_tracker()
    anonymous = type("Anonymous", (), {"is_authenticated": False})()
    topic = f"open.{room()}"
    members = [await tracker.join(topic, anonymous) for _ in range(1000)]
    heartbeats = [t for t in asyncio.all_tasks() if t.get_name() == "streaming_app presence heartbeat"]
    try:
        assert len(heartbeats) == 1
        assert (await presence_stats(topic))["clients"] == 1000
        for member in members:
            tracker.leave(member)
        deadline = time.monotonic() + WITHIN
        while (await presence_stats(topic))["clients"] and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert (await presence_stats(topic))["clients"] == 0
    finally:
        for task in heartbeats:
            task.cancel()
        await tracker.store.close()
