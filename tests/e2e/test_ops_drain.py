"""A daphne drains on SIGTERM: unary calls finish, connections close with 4503, the process exits.

Each test starts its own server (``probes.httpprobe_asgi``: the example project
plus ``httpprobe.sleep``, a unary call that runs as long as asked) and ends it
with SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from conftest import Server, start_server
from wsclient import close_code_before_hello, connected

pytestmark = pytest.mark.django_db(transaction=True)

# Generous: the machine runs other work; the server's own limit is DRAIN_TIMEOUT.
EXIT_MARGIN = 10.0


# uvicorn ends by re-raising the SIGTERM it caught, once it has shut down (its own behaviour).
EXITED = {"daphne": (0,), "uvicorn": (0, -signal.SIGTERM)}


def draining_server(tmp_path: Path, redis_url: str, drain_timeout: float = 10.0, server: str = "daphne") -> Server:
    return start_server(
        tmp_path,
        server=server,
        app="probes.httpprobe_asgi:application",
        env={
            "DJANGO_SETTINGS_MODULE": "probes.opsprobe_settings",
            "OPS_PROBE_DRAIN_TIMEOUT": str(drain_timeout),
            "REDIS_URL": redis_url,
        },
    )


async def exit_code(server: Server, timeout: float) -> int | None:
    """The process's exit status once it has exited (None if it is still running after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while server.process.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return server.process.poll()


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_sigterm_lets_a_running_unary_call_finish_and_closes_streams_with_4503(tmp_path, redis_url, kind):
    server = draining_server(tmp_path, redis_url, server=kind)
    try:
        async with connected(server.ws_url) as streams, connected(server.ws_url) as unary:
            await streams.call(1, "interop.forever", {"interval_ms": 20}, credit=10_000)
            await streams.call(2, "interop.count", {"n": 10_000, "interval_ms": 20}, credit=10_000)
            assert (await streams.recv_for(1))["t"] == "next"
            await unary.call(1, "httpprobe.sleep", {"seconds": 2.0})
            await asyncio.sleep(0.3)  # the unary call is running
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)

            assert await streams.close_code(timeout=5) == 4503
            assert time.monotonic() - signalled < 5  # at once, not at the drain timeout
            result = await unary.recv_for(1, timeout=10)
            assert result == {"t": "end", "id": 1, "d": {"slept": 2.0}}
            assert await unary.close_code(timeout=5) == 4503
        assert await exit_code(server, 10 + EXIT_MARGIN) in EXITED[kind]
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_a_draining_process_refuses_handshakes_and_calls_and_says_so_on_health(tmp_path, redis_url, kind):
    server = draining_server(tmp_path, redis_url, server=kind)
    try:
        async with connected(server.ws_url) as unary:
            await unary.call(1, "httpprobe.sleep", {"seconds": 3.0})  # keeps the process draining
            await asyncio.sleep(0.3)
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)

            assert await close_code_before_hello(server.ws_url) == 4503
            health = await asyncio.to_thread(httpx.get, f"{server.http_url}/streams/_health", timeout=10)
            assert (health.status_code, health.json()) == (503, {"status": "draining"})
            refused = await unary.result(2, "interop.unary", {"payload": "late"})
            assert refused["t"] == "error" and refused["code"] == "unavailable"
            assert (await unary.recv_for(1, timeout=10))["t"] == "end"
        assert await exit_code(server, 10 + EXIT_MARGIN) in EXITED[kind]
    finally:
        server.stop()


async def test_calls_still_running_at_the_drain_timeout_are_closed_with_4503(tmp_path, redis_url):
    server = draining_server(tmp_path, redis_url, drain_timeout=2.0)
    try:
        async with connected(server.ws_url) as unary:
            await unary.call(1, "httpprobe.sleep", {"seconds": 25.0})
            await asyncio.sleep(0.3)
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            assert await unary.close_code(timeout=2 + EXIT_MARGIN) == 4503
            assert 1.5 <= time.monotonic() - signalled < 2 + EXIT_MARGIN
        assert await exit_code(server, 2 + EXIT_MARGIN) == 0
    finally:
        server.stop()


async def test_http_streams_end_with_unavailable_on_sigterm(tmp_path, redis_url):
    server = draining_server(tmp_path, redis_url)
    try:
        records = []
        async with httpx.AsyncClient(timeout=15) as http:
            async with http.stream("GET", f"{server.http_url}/streams/interop.forever?interval_ms=20",
                                   headers={"Accept": "application/x-ndjson"}) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if not line:
                        continue
                    records.append(json.loads(line))
                    if len(records) == 3:
                        server.process.send_signal(signal.SIGTERM)
                    if records[-1]["t"] in ("end", "error") or len(records) > 5000:
                        break
        assert records[-1]["t"] == "error" and records[-1]["code"] == "unavailable"
        assert await exit_code(server, 10 + EXIT_MARGIN) == 0
    finally:
        server.stop()
