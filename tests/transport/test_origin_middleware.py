"""The Origin rule as ASGI middleware: ``streaming_app.handshake.OriginValidator``.

End to end against ``probes.originprobe_asgi`` (the example project whose WebSocket
stack is the middleware around a consumer that does not check the Origin
itself), and in-process for the consumer's ``check_origin`` switch. The rule
itself (allowed hosts, trusted origins, ``ALLOWED_ORIGINS``) is tested through
the consumer in test_websocket_permissions_and_origin.py and test_websocket_auth.py;
both paths share ``handshake.origin_allowed``.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from conftest import start_server
from websockets.exceptions import InvalidStatus
from wsclient import connected, open_ws

from streaming_app.handshake import OriginValidator
from streaming_app.testing import ConnectionClosed, StreamTestClient
from streaming_app.transports.websocket import StreamConsumer

pytestmark = pytest.mark.django_db(transaction=True)

FOREIGN = "http://evil.example"


@pytest.fixture(scope="module")
def origin_server(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        server = start_server(tmp_path_factory.mktemp("origin"), app="probes.originprobe_asgi:application")
    yield server
    server.stop()


async def reached(server, tag: str) -> int:
    """How many handshakes tagged ``tag`` got past the middleware into the consumer."""
    async with connected(server.ws_url) as conn:
        return (await conn.result(1, "originprobe.reached", {"tag": tag}))["d"]


async def test_middleware_refuses_a_foreign_origin_with_403_before_the_consumer(origin_server):
    tag = uuid.uuid4().hex
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(origin_server.ws_url, origin=FOREIGN, headers={"X-Probe": tag})
    assert refused.value.response.status_code == 403
    assert await reached(origin_server, tag) == 0


async def test_middleware_lets_the_servers_own_origin_through(origin_server):
    tag = uuid.uuid4().hex
    async with connected(origin_server.ws_url, origin=origin_server.http_url, headers={"X-Probe": tag}) as conn:
        assert conn.hello["t"] == "hello"
    assert await reached(origin_server, tag) == 1


async def test_middleware_lets_a_handshake_without_origin_through(origin_server):
    async with connected(origin_server.ws_url) as conn:
        assert conn.hello["t"] == "hello"


def test_middleware_leaves_http_requests_alone(origin_server):
    # HTTP calls are guarded by CSRF, not by the Origin rule.
    with httpx.Client(base_url=f"{origin_server.http_url}/streams/", trust_env=False, timeout=5) as http:
        response = http.get("interop.empty", headers={"Origin": FOREIGN})
    assert (response.status_code, response.json()) == (200, {"d": {}})


class UncheckedConsumer(StreamConsumer):
    check_origin = False


async def test_consumer_without_its_own_check_accepts_a_foreign_origin():
    async with StreamTestClient(UncheckedConsumer.as_asgi(), headers=[(b"origin", FOREIGN.encode())]) as client:
        assert client.hello["t"] == "hello"


async def test_middleware_in_front_of_that_consumer_refuses_the_foreign_origin():
    client = StreamTestClient(OriginValidator(UncheckedConsumer.as_asgi()), headers=[(b"origin", FOREIGN.encode())])
    try:
        with pytest.raises(ConnectionClosed):
            await client.connect()
    finally:
        await client.disconnect()
