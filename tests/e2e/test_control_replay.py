"""A captured control command published again does nothing (issue 17, row 10), on a real daphne and Redis.

Commands travel on a broker topic that any code holding the broker can
publish to. They are signed, and were valid for 60 s: a ``switches`` command
that ended the open calls of a disabled method, captured and published again
within that minute, ended the new calls of that method too, after an
administrator had enabled it again. Now each command carries a nonce and a
process carries it out once.
"""

from __future__ import annotations

import pytest
from wsclient import connected

from streaming_app import control
from streaming_app.brokers import get_broker

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
async def broker(daphne_on_redis):
    """The broker this test publishes commands through (Redis), closed on this loop afterwards."""
    yield get_broker()
    await get_broker().close()


async def test_a_replayed_switches_command_does_not_end_new_calls(daphne_on_redis, broker):
    command = control.switches_command(["interop.forever"])
    async with connected(daphne_on_redis.ws_url) as conn:
        await conn.call(1, "interop.forever", {"interval_ms": 50})
        assert (await conn.recv_for(1, timeout=10))["t"] == "next"
        await control.asend(command)  # the administrator's genuine command
        ended = (await conn.until_terminal(1, timeout=10))[-1]
        assert ended["t"] == "error"

        await conn.call(2, "interop.forever", {"interval_ms": 50})
        assert (await conn.recv_for(2, timeout=10))["t"] == "next"
        await control.asend(command)  # the same command, captured and published again
        frames = [f for f in await conn.quiet(1.5) if f.get("id") == 2]
    assert frames and all(f["t"] == "next" for f in frames)
