"""streaming_app.merge: several async iterators as one, as items come."""

from __future__ import annotations

import asyncio

import pytest

from streaming_app.merge import merge


async def paced(items, delay):
    for item in items:
        await asyncio.sleep(delay)
        yield item


async def test_merge_yields_items_as_they_arrive_from_each_source():
    out = [item async for item in merge(paced(["slow"], 0.2), paced(["fast1", "fast2"], 0.01))]
    assert out == ["fast1", "fast2", "slow"]


async def test_merge_ends_when_every_source_has_ended():
    out = [item async for item in merge(paced([1, 2], 0), paced([], 0), paced([3], 0))]
    assert sorted(out) == [1, 2, 3]


async def test_a_failing_source_ends_the_merge_with_its_error_and_stops_the_others():
    stopped = asyncio.Event()

    async def forever():
        try:
            while True:
                await asyncio.sleep(0.01)
                yield "tick"
        finally:
            stopped.set()

    async def failing():
        await asyncio.sleep(0.05)
        raise ValueError("boom")
        yield  # an async generator

    with pytest.raises(ValueError, match="boom"):
        async for _ in merge(forever(), failing()):
            pass
    await asyncio.wait_for(stopped.wait(), 1)
