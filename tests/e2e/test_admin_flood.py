"""The admin's history under a flood of calls, on a real daphne and PostgreSQL (issue 17, row 8).

200,000 anonymous calls in 21 s used to add 130,000 ``FinishedCall`` rows
and drop 67,921 records. Now a process writes at most
HISTORY_ROWS_PER_INTERVAL rows one by one per interval (20 per 0.5 s here,
tests/probes/flood_settings.py), authenticated users' calls first, and folds
the rest into aggregate rows that count them: every call is accounted for.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from asgiref.sync import sync_to_async
from conftest import start_server
from wsclient import connected

pytestmark = pytest.mark.django_db(transaction=True)

ANONYMOUS_CALLS = 1500
USER_CALLS = 15  # fewer than the 20 rows of an interval: written one by one, before anonymous ones
WINDOW = 90  # calls in flight per connection (MAX_CALLS_PER_CONNECTION is 100)


@pytest.fixture
def server(tmp_path, transactional_db):
    started = start_server(tmp_path, env={"DJANGO_SETTINGS_MODULE": "probes.flood_settings"})
    yield started
    started.stop()


async def flood(url: str, calls: int, headers: dict[str, str] | None = None) -> None:
    """``calls`` unary calls, WINDOW at a time, each to its terminal frame."""
    async with connected(url, headers=headers) as conn:
        next_id = 1
        while next_id <= calls:
            ids = list(range(next_id, min(next_id + WINDOW, calls + 1)))
            for id in ids:
                await conn.call(id, "interop.empty")
            for id in ids:
                assert (await conn.until_terminal(id, timeout=30))[-1]["t"] == "end"
            next_id = ids[-1] + 1


async def rows_of(process: str) -> list:
    from streaming_app.models import FinishedCall

    return [row async for row in FinishedCall.objects.filter(process=process)]


async def test_a_flood_of_anonymous_calls_is_aggregated_and_a_users_calls_are_kept_one_by_one(
    server, make_token, close_worker_connections
):
    token = await sync_to_async(make_token)("alice")
    process = f"{socket.gethostname()}:{server.process.pid}"
    started = time.monotonic()
    await asyncio.gather(
        *(flood(server.ws_url, ANONYMOUS_CALLS // 3) for _ in range(3)),
        flood(server.ws_url, USER_CALLS, headers={"Authorization": f"Bearer {token}"}),
    )
    intervals = (time.monotonic() - started) / 0.5 + 2
    rows = []
    for _ in range(100):  # until the last interval is written (bounded)
        await asyncio.sleep(0.2)
        rows = await rows_of(process)
        if sum(r.calls for r in rows) >= ANONYMOUS_CALLS + USER_CALLS:
            break
    singles = [r for r in rows if r.calls == 1]
    assert sum(r.calls for r in rows) == ANONYMOUS_CALLS + USER_CALLS  # every call accounted for
    assert sorted(r.call_id for r in singles if r.username == "alice") == list(range(1, USER_CALLS + 1))
    assert len(singles) <= 20 * intervals
    assert len(rows) < ANONYMOUS_CALLS / 2
    assert all(r.username == "" and r.call_id == 0 for r in rows if r.calls > 1)
