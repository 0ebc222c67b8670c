"""Heartbeats of the WebSocket consumer: announced in hello, pings to a silent client, 4408 when it stays silent.

In-process, through StreamTestClient (Channels' communicator, no socket); the test-only
stream views and helpers are in tests/consumer_views.py, registered for each test.
"""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from streaming_app.testing import StreamTestClient

from consumer_views import views  # noqa: F401  (autouse: registers the test views, clears their state)

pytestmark = pytest.mark.usefixtures("close_worker_connections")


FAST_HEARTBEAT = {"HEARTBEAT_INTERVAL": 0.1, "HEARTBEAT_TIMEOUT": 0.3}


async def test_hello_announces_the_heartbeat_interval():
    with override_settings(STREAMING=FAST_HEARTBEAT):
        async with StreamTestClient() as client:
            assert client.hello["heartbeat"] == 0.1


async def test_server_pings_a_silent_client():
    with override_settings(STREAMING=FAST_HEARTBEAT):
        async with StreamTestClient() as client:
            assert await client.receive(timeout=1.0) == {"t": "ping"}


async def test_silent_client_is_closed_with_4408():
    with override_settings(STREAMING=FAST_HEARTBEAT):
        async with StreamTestClient() as client:
            started = time.monotonic()
            assert await client.receive_close(timeout=2.0) == 4408
            assert time.monotonic() - started < 1.5


async def test_client_answering_pings_is_not_closed():
    with override_settings(STREAMING=FAST_HEARTBEAT):
        async with StreamTestClient() as client:
            pings = 0
            until = time.monotonic() + 1.0  # more than three heartbeat timeouts
            while time.monotonic() < until:
                frame = await client.receive(timeout=1.0)
                assert frame == {"t": "ping"}
                pings += 1
                await client.send({"t": "pong"})
            assert pings >= 3
            assert await client.call("t_flow.fast") == "fast"


async def test_ping_is_answered_with_pong_carrying_its_data():
    async with StreamTestClient() as client:
        await client.send({"t": "ping", "d": {"n": [1, 2]}})
        assert await client.receive() == {"t": "pong", "d": {"n": [1, 2]}}
