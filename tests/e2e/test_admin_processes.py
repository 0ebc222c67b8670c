"""Bookkeeping across real daphne processes on Redis and PostgreSQL, without a browser.

The test process reads the live list from Redis and sends control commands
through the broker, as an admin request served by any process would.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from asgiref.sync import sync_to_async

from streaming_app import control
from streaming_app.models import EndpointSwitch, FinishedCall
from streaming_app.monitor import get_store, live_calls
from wsclient import connect

pytestmark = [
    pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_worker_connections")
]

WITHIN = 10.0




@pytest.fixture(autouse=True)
def broker_is_the_servers_redis(redis_url, settings):
    """This process reads the live list and sends commands through the servers' Redis, even when
    REDIS_URL is unset locally (the project's settings then pick the in-memory broker)."""
    settings.STREAMING = {**settings.STREAMING, "BROKER": redis_url}


@pytest.fixture
async def store():
    store = get_store()
    yield store
    await store.close()


async def wait_for(fetch, timeout: float = WITHIN):
    """Poll ``fetch`` (async, returning a value or None) until it returns something."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.1) + 1):
        value = await fetch()
        if value:
            return value
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    raise AssertionError("nothing within the time limit")


def history_rows(**filters):
    return sync_to_async(lambda: list(FinishedCall.objects.filter(**filters).order_by("call_id")))


@pytest.mark.parametrize("transport, accept", [("sse", "text/event-stream"), ("ndjson", "application/x-ndjson")])
async def test_an_http_stream_is_listed_with_its_format_and_terminating_it_ends_it_with_an_in_band_error(
    two_servers, store, transport, accept
):
    tag = uuid.uuid4().hex
    server = two_servers[1]

    async def listed():
        calls = (await live_calls())["calls"]
        return next((c for c in calls if c["method"] == "interop.forever" and c["transport"] == transport), None)

    async with httpx.AsyncClient(base_url=f"{server.http_url}/streams/", trust_env=False, timeout=WITHIN) as http:
        params = {"interval_ms": 50, "tag": tag}
        async with http.stream("GET", "interop.forever", params=params, headers={"Accept": accept}) as response:
            lines = response.aiter_lines()
            call = await wait_for(listed)
            assert call["process"].endswith(f":{server.process.pid}")
            await sync_to_async(control.terminate)(call["process"], call["conn"], call["call"])
            error = await _error_record(lines, transport)
        count = await wait_for(lambda: _count(http, tag))
    assert error == {"code": "cancelled", "message": "Terminated by an administrator.", "details": {"reason": "terminated"}}
    assert count == 1
    [row] = await wait_for(history_rows(method="interop.forever", transport=transport))
    assert (row.end_reason, row.error_code) == ("terminated", "cancelled") and row.items_out >= 1


async def _error_record(lines, transport: str) -> dict:
    """The error record of an SSE or NDJSON stream (without NDJSON's ``t``)."""
    event = None
    async with asyncio.timeout(WITHIN):
        async for line in lines:
            if transport == "ndjson":
                record = json.loads(line)
                if record["t"] == "error":
                    return {k: v for k, v in record.items() if k != "t"}
            elif line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: ") and event == "error":
                return json.loads(line[len("data: "):])
    raise AssertionError("the stream ended without an error record")


async def _listed(connection_id: str) -> bool:
    return any(c["conn"] == connection_id for c in (await live_calls())["calls"])


async def _count(http: httpx.AsyncClient, tag: str) -> int:
    return (await http.get("interop.cleanups", params={"tag": tag})).json()["d"]["count"]


async def test_server_processes_write_history_rows_with_their_end_reasons(two_servers, make_token):
    token = await sync_to_async(make_token)("hilda")
    conn = await connect(two_servers[0].ws_url, headers={"Authorization": f"Bearer {token}"})
    try:
        assert (await conn.result(1, "interop.count", {"n": 3}))["t"] == "end"
        assert (await conn.result(2, "interop.fail", {"code": "not_found"}))["code"] == "not_found"
        await conn.call(3, "interop.forever", {"interval_ms": 20})
        await conn.recv_for(3)
        await conn.send({"t": "cancel", "id": 3})
        await conn.call(4, "interop.forever", {"interval_ms": 20})
        await conn.recv_for(4)
    finally:
        await conn.close()  # call 4 is disconnected
    rows = await wait_for(lambda: _all_four())
    assert [(r.call_id, r.method, r.end_reason, r.error_code) for r in rows] == [
        (1, "interop.count", "completed", ""),
        (2, "interop.fail", "error", "not_found"),
        (3, "interop.forever", "cancelled", ""),
        (4, "interop.forever", "disconnected", ""),
    ]
    assert {r.username for r in rows} == {"hilda"} and rows[0].items_out == 3
    assert rows[0].process.endswith(f":{two_servers[0].process.pid}")


async def _all_four():
    rows = await history_rows(username="hilda")()
    return rows if len(rows) == 4 else None


async def test_a_switch_reaches_an_idle_process_within_the_cache_age(two_servers):
    server = two_servers[0]
    async with httpx.AsyncClient(base_url=f"{server.http_url}/streams/", trust_env=False, timeout=WITHIN) as http:
        assert (await http.get("interop.empty")).status_code == 200  # caches "nothing disabled"
        await sync_to_async(EndpointSwitch.objects.create)(name="interop", disabled=True)

        async def refused():
            response = await http.get("interop.empty")
            return response if response.status_code == 503 else None

        response = await wait_for(refused)
    assert response.json()["error"]["code"] == "unavailable"
    assert response.json()["error"]["details"] == {"reason": "disabled", "method": "interop.empty"}


async def test_disabling_from_the_admin_with_end_open_ends_calls_on_another_process(
    two_servers, make_token, admin_client, store
):
    token = await sync_to_async(make_token)("otto")
    conn = await connect(two_servers[1].ws_url, headers={"Authorization": f"Bearer {token}"})
    try:
        await conn.call(1, "interop.forever", {"interval_ms": 20})
        await conn.recv_for(1)
        # Listed means the server's flusher wrote a snapshot, so its control listener is live.
        await wait_for(lambda: _listed(conn.hello["conn"]))
        body = {"name": "interop.forever", "action": "disable", "end_open": True}
        response = await sync_to_async(admin_client.post)(
            "/admin/streaming_app/livecall/switch/", body, content_type="application/json"
        )
        assert response.status_code == 200, response.content
        frames = await conn.until_terminal(1, timeout=WITHIN)
        fresh = await conn.result(2, "interop.forever", {"interval_ms": 20})
    finally:
        await conn.close()
    assert (frames[-1]["code"], frames[-1]["details"]) == ("unavailable", {"reason": "disabled", "method": "interop.forever"})
    assert (fresh["code"], fresh["details"]["reason"]) == ("unavailable", "disabled")


@pytest.fixture
def probe_on_redis(tmp_path, redis_url):
    """One daphne serving the HTTP probe methods (tests/probes/httpprobe_asgi.py), writing its snapshots to Redis."""
    from conftest import start_server

    server = start_server(
        tmp_path, app="probes.httpprobe_asgi:application",
        env={"REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "probes.httpprobe_settings"},
    )
    yield server
    server.stop()


async def test_an_http_unary_call_is_listed_and_terminating_it_answers_cancelled_and_runs_its_cleanup(probe_on_redis):
    tag = uuid.uuid4().hex

    async def listed():
        calls = (await live_calls())["calls"]
        return next((c for c in calls if c["method"] == "httpprobe.sleep" and c["transport"] == "http"), None)

    async with httpx.AsyncClient(base_url=f"{probe_on_redis.http_url}/streams/", trust_env=False, timeout=WITHIN) as http:
        pending = asyncio.ensure_future(http.get("httpprobe.sleep", params={"seconds": 30, "tag": tag}))
        call = await wait_for(listed)
        assert (call["kind"], call["process"]) == ("unary", call["process"].split(":")[0] + f":{probe_on_redis.process.pid}")
        await sync_to_async(control.terminate)(call["process"], call["conn"], call["call"])
        response = await asyncio.wait_for(pending, WITHIN)
        finished = (await http.get("httpprobe.finished", params={"tag": tag})).json()["d"]["finished"]
    assert response.json()["error"] == {
        "code": "cancelled", "message": "Terminated by an administrator.", "details": {"reason": "terminated"}
    }
    assert finished == "cancelled"
    [row] = await wait_for(history_rows(method="httpprobe.sleep", connection_id=call["conn"]))
    assert (row.transport, row.end_reason, row.error_code) == ("http", "terminated", "cancelled")


async def test_an_http_unary_call_that_returns_is_in_the_history_as_completed(probe_on_redis):
    async with httpx.AsyncClient(base_url=f"{probe_on_redis.http_url}/streams/", trust_env=False, timeout=WITHIN) as http:
        response = await http.get("httpprobe.sleep", params={"seconds": 0, "tag": uuid.uuid4().hex})
    assert response.json() == {"d": {"slept": 0.0}}
    [row] = await wait_for(history_rows(method="httpprobe.sleep", end_reason="completed"))
    assert (row.transport, row.kind, row.error_code, row.bytes_out) == ("http", "unary", "", len('{"d":{"slept":0.0}}'))
