"""Calls on one WebSocket connection run side by side: a slow or blocking handler stalls no other call nor frame.

In-process, through StreamTestClient (Channels' communicator, no socket); the test-only
stream views and helpers are in tests/consumer_views.py, registered for each test.
"""

from __future__ import annotations

import time

import pytest

from streaming_app.testing import StreamTestClient

from consumer_views import views  # noqa: F401  (autouse: registers the test views, clears their state)

pytestmark = pytest.mark.usefixtures("close_worker_connections")


async def test_slow_async_handler_does_not_stall_another_call():
    async with StreamTestClient() as client:
        slow_id = await client.start("t_flow.slow", {"seconds": 30, "tag": "slow"})
        started = time.monotonic()
        assert await client.call("t_flow.fast") == "fast"
        assert time.monotonic() - started < 1.0
        await client.send({"t": "cancel", "id": slow_id})


async def test_blocking_sync_handler_does_not_stall_another_sync_call():
    async with StreamTestClient() as client:
        blocking_id = await client.start("t_flow.blocking", {"seconds": 1.5})
        started = time.monotonic()
        assert await client.call("t_flow.quick") == "quick"
        assert time.monotonic() - started < 1.0
        assert await client.collect_call(blocking_id) == ([], "blocking")


async def test_blocking_sync_handler_does_not_stall_frames():
    async with StreamTestClient() as client:
        blocking_id = await client.start("t_flow.blocking", {"seconds": 1.5})
        started = time.monotonic()
        await client.send({"t": "ping", "d": "still-there"})
        assert await client.receive() == {"t": "pong", "d": "still-there"}
        assert time.monotonic() - started < 1.0
        await client.collect_call(blocking_id)
