"""How a call over the WebSocket stops early: cancel, disconnect and deadlines, each running the handler's finally.

In-process, through StreamTestClient (Channels' communicator, no socket); the test-only
stream views and helpers are in tests/consumer_views.py, registered for each test.
"""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from streaming_app.decorators import unary
from streaming_app.testing import StreamTestClient

from consumer_views import STATE, eventually, call_error, frames_for
from consumer_views import views  # noqa: F401  (autouse: registers the test views, clears their state)

pytestmark = pytest.mark.usefixtures("close_worker_connections")


# -- cancellation ------------------------------------------------------------------------------------


async def test_cancel_runs_the_finally_of_a_generator_waiting_for_credit():
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.numbers", {"tag": "cancel-credit"}, credit=1)
        await frames_for(client, call_id, 1)
        await client.send({"t": "cancel", "id": call_id})
        assert await eventually(lambda: STATE["cancel-credit"]["finally"])


async def test_cancel_runs_the_finally_of_a_generator_suspended_in_an_await():
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.park", {"tag": "cancel-await"})
        await frames_for(client, call_id, 1)
        assert await eventually(lambda: STATE["cancel-await"]["started"])
        await client.send({"t": "cancel", "id": call_id})
        assert await eventually(lambda: STATE["cancel-await"]["finally"])


async def test_cancel_runs_the_finally_of_a_unary_handler():
    async with StreamTestClient() as client:
        await client.start("t_flow.slow", {"seconds": 30, "tag": "cancel-unary"})
        assert await eventually(lambda: STATE["cancel-unary"]["started"])
        await client.send({"t": "cancel", "id": 1})
        assert await eventually(lambda: STATE["cancel-unary"]["finally"])


async def test_cancelled_call_ends_silently():
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.park", {"tag": "silent"})
        await frames_for(client, call_id, 1)
        await client.send({"t": "cancel", "id": call_id})
        assert await eventually(lambda: STATE["silent"]["finally"])
        assert await client.nothing_received(0.2)


async def test_frames_for_a_cancelled_call_are_ignored():
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.park", {"tag": "late"})
        await frames_for(client, call_id, 1)
        await client.send({"t": "cancel", "id": call_id})
        await client.send({"t": "credit", "id": call_id, "n": 1})
        await client.send({"t": "cancel", "id": call_id})
        assert await client.nothing_received(0.2)


async def test_disconnect_runs_the_finally_of_running_handlers():
    client = StreamTestClient()
    await client.connect()
    call_id = await client.start("t_flow.park", {"tag": "disconnect"})
    await frames_for(client, call_id, 1)
    await client.disconnect()
    assert STATE["disconnect"]["finally"]


# -- deadlines ------------------------------------------------------------------------------------------


async def test_call_past_its_timeout_fails_with_deadline_exceeded():
    async with StreamTestClient() as client:
        started = time.monotonic()
        error = await call_error(client, "t_flow.slow", {"seconds": 30, "tag": "deadline"}, timeout=0.2)
        assert error.code == "deadline_exceeded"
        assert time.monotonic() - started < 2.0


async def test_deadline_runs_the_handler_finally():
    async with StreamTestClient() as client:
        await call_error(client, "t_flow.slow", {"seconds": 30, "tag": "deadline-finally"}, timeout=0.2)
        assert STATE["deadline-finally"]["finally"]


async def test_stream_past_its_timeout_fails_with_deadline_exceeded_after_its_items():
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.park", {"tag": "deadline-stream"}, timeout=0.2)
        frames = await frames_for(client, call_id, 2)
        assert frames[0]["t"] == "next"
        assert frames[1]["t"] == "error" and frames[1]["code"] == "deadline_exceeded"


async def test_max_timeout_caps_a_longer_requested_timeout():
    with override_settings(STREAMING={"MAX_TIMEOUT": 0.2}):
        async with StreamTestClient() as client:
            error = await call_error(client, "t_flow.slow", {"seconds": 30}, timeout=60)
    assert error.code == "deadline_exceeded"


async def test_default_timeout_applies_to_a_call_without_one():
    with override_settings(STREAMING={"DEFAULT_TIMEOUT": 0.2}):
        async with StreamTestClient() as client:
            error = await call_error(client, "t_flow.slow", {"seconds": 30})
    assert error.code == "deadline_exceeded"
