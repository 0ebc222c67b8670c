"""The WebSocket consumer's flow control: a server stream advances only as far as the client's credit.

In-process, through StreamTestClient (Channels' communicator, no socket); the test-only
stream views and helpers are in tests/consumer_views.py, registered for each test.
"""

from __future__ import annotations

import pytest

from streaming_app.testing import StreamTestClient

from consumer_views import STATE, frames_for
from consumer_views import views  # noqa: F401  (autouse: registers the test views, clears their state)

pytestmark = pytest.mark.usefixtures("close_worker_connections")


async def test_generator_is_not_advanced_past_the_credit():
    # invoke() takes credit before each __anext__, so with credit 2 the
    # generator has run up to its second yield and no further: exactly 2.
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.numbers", {"tag": "c2"}, credit=2)
        frames = await frames_for(client, call_id, 2)
        assert [f["d"] for f in frames] == [0, 1]
        assert await client.nothing_received(0.3)
        assert STATE["c2"]["produced"] == 2


async def test_generator_stays_suspended_while_credit_is_zero():
    async with StreamTestClient() as client:
        await client.start("t_flow.numbers", {"tag": "c0"}, credit=0)
        assert await client.nothing_received(0.3)
        assert STATE["c0"]["produced"] == 0


async def test_granted_credit_advances_the_generator_by_that_many_items():
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.numbers", {"tag": "grant"}, credit=1)
        await frames_for(client, call_id, 1)
        await client.send({"t": "credit", "id": call_id, "n": 3})
        frames = await frames_for(client, call_id, 3)
        assert [f["d"] for f in frames] == [1, 2, 3]
        assert await client.nothing_received(0.2)
        assert STATE["grant"]["produced"] == 4


async def test_stream_with_exactly_its_credit_in_items_ends_after_more_credit():
    # The handler only finds out it is exhausted when it is advanced again,
    # which needs credit; `end` itself needs none.
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.numbers", {"tag": "exact", "n": 2}, credit=2)
        assert [f["t"] for f in await frames_for(client, call_id, 2)] == ["next", "next"]
        assert await client.nothing_received(0.2)
        await client.send({"t": "credit", "id": call_id, "n": 1})
        assert await frames_for(client, call_id, 1) == [{"t": "end", "id": call_id}]


async def test_stream_without_credit_field_is_unbounded():
    async with StreamTestClient() as client:
        items, result = await client.collect("t_flow.numbers", {"tag": "unbounded", "n": 50})
        assert items == list(range(50))
        assert result is None
