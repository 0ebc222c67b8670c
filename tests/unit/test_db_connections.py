"""Frames pay no thread hop, yet database connections used by handlers do not go stale."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import override_settings

from streaming_app import StreamView, unary
from streaming_app.registry import registry
from streaming_app.testing import StreamTestClient

pytestmark = pytest.mark.django_db(transaction=True)


class CountingStreams(StreamView):
    namespace = "dbcheck"

    @unary
    async def users(self, ctx) -> dict:
        return {"count": await get_user_model().objects.acount()}


@pytest.fixture
def counting_view():
    registry.register(CountingStreams)
    yield
    registry.unregister("dbcheck")


def async_orm_connection_open() -> bool:
    return connection.connection is not None


async def test_async_orm_connection_is_closed_after_the_call_ends(counting_view):
    with override_settings(STREAMING={"DB_CONNECTION_CHECK_INTERVAL": 0.01}):
        async with StreamTestClient() as client:
            await asyncio.sleep(0.02)
            assert await client.call("dbcheck.users") == {"count": 0}
            for _ in range(50):
                await asyncio.sleep(0.02)
                if not await sync_to_async(async_orm_connection_open)():
                    break
            assert not await sync_to_async(async_orm_connection_open)()


async def test_frames_do_not_touch_the_database_thread(counting_view, monkeypatch):
    """Ping frames and a pure-async call never go through close_old_connections."""
    import channels.consumer

    calls = []
    monkeypatch.setattr(channels.consumer, "aclose_old_connections", lambda: calls.append(1))
    async with StreamTestClient() as client:
        for n in range(20):
            await client.send({"t": "ping", "d": n})
            assert (await client.receive())["d"] == n
        assert await client.call("interop.empty") == {}
    assert calls == []
