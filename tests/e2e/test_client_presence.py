"""The Python client's presence helpers (streaming_app.client.presence) against a real daphne."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from streaming_app.client import Roster, StreamClient, is_presence_event


async def next_presence(items) -> dict:
    for _ in range(100):
        item = await asyncio.wait_for(items.__anext__(), 10)
        if is_presence_event(item):
            return item
    raise AssertionError("no presence event within 100 items")


@pytest.mark.django_db(transaction=True)
async def test_a_roster_follows_the_rooms_joins_and_leaves(daphne_server):
    topic = uuid.uuid4().hex[:12]
    async with StreamClient(daphne_server.ws_url) as first, StreamClient(daphne_server.ws_url) as second:
        mine = first.stream("interop.room", topic=topic).__aiter__()
        own = await next_presence(mine)
        roster = Roster([{"client": own["client"], "user": own["user"], "info": None}])
        theirs = second.stream("interop.room", topic=topic).__aiter__()
        their_own = asyncio.ensure_future(next_presence(theirs))  # a stream starts when first read
        joined = await next_presence(mine)
        assert (await their_own)["client"] == joined["client"]
        assert roster.apply(joined) is True and roster.apply(joined) is False
        assert roster.stats() == {"clients": 2, "users": 0, "anonymous": 2}
        await theirs.aclose()
        left = await next_presence(mine)
        assert left["presence"] == "leave" and left["client"] == joined["client"]
        assert roster.apply(left) is True
        assert roster.by_user() == {None: 1}
        assert (await first.call("interop.presence", topic=topic))["clients"] == 1


def test_is_presence_event_tells_presence_events_from_data_items():
    assert is_presence_event({"presence": "leave", "client": "a.1", "user": None})
    assert not is_presence_event({"presence": "stay", "client": "a.1"})
    assert not is_presence_event({"hello": 1})
