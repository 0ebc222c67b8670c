"""What an idle connection keeps (issue 19's idle memory): no task of its own, no parsed copies of its handshake.

In-process, through StreamTestClient; bench/idle_memory.py measures the bytes.
"""

from __future__ import annotations

import asyncio

import pytest
from django.test import override_settings

from streaming_app import StreamView, unary
from streaming_app.registry import registry
from streaming_app.testing import StreamTestClient

pytestmark = pytest.mark.usefixtures("close_worker_connections")


class HandshakeEcho(StreamView):
    namespace = "t_handshake"

    @unary
    async def echo(self, ctx) -> dict:
        http_request = ctx.request._request
        kept = sorted(name for name in ("headers", "GET", "COOKIES") if name in http_request.__dict__)
        return {
            "kept": kept,  # before anything below parses them again
            "header": ctx.request.headers.get("X-Probe"),
            "query": ctx.request.query_params.get("q"),
            "cookie": http_request.COOKIES.get("c"),
        }


@pytest.fixture
def echo_view():
    registry.register(HandshakeEcho)
    yield
    registry.unregister(HandshakeEcho.namespace)


async def test_an_idle_connection_runs_no_task_besides_its_consumer():
    with override_settings(STREAMING={"HEARTBEAT_INTERVAL": 30, "HEARTBEAT_TIMEOUT": 60}):
        before = len(asyncio.all_tasks())
        async with StreamTestClient(), StreamTestClient(), StreamTestClient():
            await asyncio.sleep(0.05)  # anything started by the handshakes is running
            # Channels' own two per consumer (the application, its pending receive); a heartbeat task would make it 9.
            assert len(asyncio.all_tasks()) - before == 2 * 3


@pytest.mark.django_db(transaction=True)
async def test_calls_read_the_handshake_headers_query_and_cookies_the_connection_did_not_keep(echo_view):
    headers = [(b"x-probe", b"seen"), (b"cookie", b"c=crumb")]
    async with StreamTestClient(path="/ws/?q=asked", headers=headers) as client:
        assert await client.call("t_handshake.echo") == {
            "kept": [], "header": "seen", "query": "asked", "cookie": "crumb",
        }
