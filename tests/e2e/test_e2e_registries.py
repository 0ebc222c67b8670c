"""Per-process registries return to their size when connections and calls end (bench/soak.py's RSS question).

The soak showed a process's RSS growing ~3 MiB a minute. A leak would be
per-connection or per-call state kept after it ended, in one of the maps a
process holds (the revocation guard, connection admissions, the monitor's
open calls, metrics, hub topics, presence members) or in objects nothing
frees. A real daphne of the example project on PostgreSQL and Redis
(``probes.registryprobe_asgi`` answers ``GET /registryprobe`` with those
sizes and the live objects of each connection/call class after a full
collection) serves rounds of every kind of connection and call, each left
in every way a client leaves; then every size must be what it was after the
first round (the first round warms up what is made once per process).
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from conftest import start_server
from wsclient import connected

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_worker_connections")]

ROUNDS = 8


@pytest.fixture
def probed_server(tmp_path, redis_url):
    server = start_server(tmp_path, app="probes.registryprobe_asgi:application", env={"REDIS_URL": redis_url})
    yield server
    server.stop()


async def sizes(server) -> dict[str, int]:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        return (await http.get(f"{server.http_url}/registryprobe")).json()


async def settled(server, expected: dict[str, int], seconds: float = 10.0) -> dict[str, int]:
    """The sizes once they equal ``expected``, or as they are after ``seconds`` (cleanups run after a close)."""
    deadline = time.monotonic() + seconds
    found = await sizes(server)
    while found != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        found = await sizes(server)
    return found


async def one_round(server, key: str, n: int) -> None:
    """Each kind of connection and call, left in each way a client leaves."""
    bearer = {"Authorization": f"Bearer {key}"}
    # Anonymous WebSocket: a unary call, a finished stream, a stream left open, a subscription, a room.
    async with connected(server.ws_url) as conn:
        assert (await conn.result(1, "interop.empty"))["t"] == "end"
        await conn.call(2, "interop.count", {"n": 5}, credit=10)
        assert (await conn.until_terminal(2))[-1]["t"] == "end"
        await conn.call(3, "interop.forever", {"interval_ms": 20, "tag": "registries"}, credit=1000)
        await conn.call(4, "interop.subscribe", {"topic": f"registries-{n}"})
        await conn.call(5, "interop.room", {"topic": f"registries-room-{n}"})
        await conn.recv_for(5)
    # Authenticated WebSocket (the guard, the admissions): a cancelled stream, then a close mid-stream.
    async with connected(server.ws_url, headers=bearer) as conn:
        await conn.call(1, "interop.forever", {"interval_ms": 20, "tag": "registries"}, credit=1000)
        await conn.recv_for(1)
        await conn.send({"t": "cancel", "id": 1})
        await conn.call(2, "interop.forever", {"interval_ms": 20, "tag": "registries"}, credit=1000)
        await conn.recv_for(2)
    # Misbehaving: broken frames on a connection (closed by the server or left).
    async with connected(server.ws_url) as conn:
        for frame in ['{"t":"ping","d":"\\ud800"}', "{", '{"t":"call","id":-1}']:
            await conn.send(frame)
        await conn.quiet(0.2)
    # HTTP: a unary call, a stream read to its end, an authenticated SSE stream left open.
    async with httpx.AsyncClient(base_url=server.http_url, trust_env=False, timeout=10) as http:
        assert (await http.get("/streams/interop.empty")).status_code == 200
        response = await http.get("/streams/interop.count?n=5", headers={"Accept": "application/x-ndjson"})
        assert json.loads(response.text.splitlines()[-1])["t"] == "end"
        headers = {**bearer, "Accept": "text/event-stream"}
        async with http.stream("GET", "/streams/interop.forever?interval_ms=20&tag=registries", headers=headers) as sse:
            async for line in sse.aiter_lines():
                if line.startswith("event: next"):
                    break


async def test_connections_and_calls_of_every_kind_leave_no_state_behind(probed_server, make_token):
    from asgiref.sync import sync_to_async

    key = await sync_to_async(make_token)("rory")
    await one_round(probed_server, key, 0)
    baseline = await settled(probed_server, {})  # whatever the first round made once, after it has ended
    for n in range(1, ROUNDS + 1):
        await one_round(probed_server, key, n)
    after = await settled(probed_server, baseline)
    grown = {name: (baseline.get(name), size) for name, size in after.items() if size != baseline.get(name)}
    assert not grown, grown
