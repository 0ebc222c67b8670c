"""Presence on the memory broker, in this process: members, counts, events and per-user aggregation.

The cross-process behaviour (Redis, heartbeats, a killed process) is tested on
real daphne processes in tests/e2e/test_e2e_presence.py.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from django.test import override_settings

from streaming_app import exceptions
from streaming_app.presence import get_tracker, presence, presence_stats, watch

pytestmark = pytest.mark.usefixtures("memory_broker")


@pytest.fixture
def memory_broker():
    with override_settings(STREAMING={"BROKER": "memory://"}):
        yield


def user(name: str, pk: int) -> SimpleNamespace:
    return SimpleNamespace(is_authenticated=True, pk=pk, get_username=lambda: name)


ANONYMOUS = SimpleNamespace(is_authenticated=False)


async def next_event(events, timeout: float = 2.0) -> dict:
    return (await asyncio.wait_for(events.__anext__(), timeout)).data


async def test_members_and_counts_follow_joins_and_leaves():
    tracker = get_tracker()
    one = await tracker.join("room.a", user("ann", 1), {"device": "phone"})
    two = await tracker.join("room.a", user("ann", 1))
    await tracker.join("room.a", ANONYMOUS)
    members = await presence("room.a")
    assert [(m["user"], m["info"]) for m in members if m["client"] == one.client] == [("ann", {"device": "phone"})]
    assert await presence_stats("room.a") == {"clients": 3, "users": 1, "anonymous": 1}
    tracker.leave(two)
    await asyncio.sleep(0.01)
    assert await presence_stats("room.a") == {"clients": 2, "users": 1, "anonymous": 1}


async def test_a_users_first_client_joins_and_last_client_leaves():
    events = await watch("room.b")
    tracker = get_tracker()
    first = await tracker.join("room.b", user("bob", 2))
    second = await tracker.join("room.b", user("bob", 2))
    tracker.leave(first)
    tracker.leave(second)
    assert await next_event(events) == {"presence": "join", "user": "bob", "client": first.client, "info": None, "clients": 1}
    assert await next_event(events) == {"presence": "leave", "user": "bob", "client": second.client, "clients": 0}
    events.close()


async def test_every_client_is_an_event_when_not_aggregated():
    events = await watch("room.c", per_user=False)
    tracker = get_tracker()
    first = await tracker.join("room.c", user("cy", 3))
    second = await tracker.join("room.c", user("cy", 3))
    assert [(await next_event(events))["client"] for _ in range(2)] == [first.client, second.client]
    tracker.leave(first)
    tracker.leave(second)
    events.close()


async def test_info_over_the_limit_is_invalid_argument():
    with override_settings(STREAMING={"BROKER": "memory://", "PRESENCE_MAX_INFO_BYTES": 10}):
        with pytest.raises(exceptions.InvalidArgument) as raised:
            await get_tracker().join("room.d", ANONYMOUS, {"name": "a long name"})
    assert raised.value.details == {"field": "info", "max_bytes": 10}
    assert await presence("room.d") == []


async def test_a_topic_name_that_is_not_allowed_is_invalid_argument():
    with pytest.raises(exceptions.InvalidArgument, match="Invalid topic name"):
        await get_tracker().join("no spaces", ANONYMOUS)
