"""The Python client and the server's throttling hints (issue 17, "Hardening").

A throttled call fails with ``ResourceExhausted`` whose ``retry_after`` is the
server's ``details.retry_after``; a WebSocket handshake answered 429 or 503
with ``Retry-After`` carries it too; ``RetryThrottled`` (opt-in) waits it out
for unary calls, within its bounds. Against real daphne processes of the
example project (``interop.limited``: 3 calls a minute per key;
``probes.limits_settings``: 20 calls a second per connection) and, for the
handshake, a real HTTP server that answers like a rate-limiting proxy.
"""

from __future__ import annotations

import email.utils
import logging
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Callable, Iterator

import pytest
from conftest import plain_http_server, start_server

from streaming_app.client import (
    ResourceExhausted,
    RetryThrottled,
    StreamClient,
    SyncStreamClient,
    Unavailable,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def exhaust(client: StreamClient, key: str) -> None:
    """Spend the 3 calls a minute ``interop.limited`` allows for ``key``."""
    for _ in range(3):
        assert await client.call("interop.limited", key=key) == {"ok": True}


# -- retry_after on the error -----------------------------------------------------------------------------


async def test_a_throttled_call_raises_resource_exhausted_with_the_servers_retry_after(daphne_server):
    key = uuid.uuid4().hex
    async with StreamClient(daphne_server.ws_url) as client:
        await exhaust(client, key)
        with pytest.raises(ResourceExhausted) as raised:
            await client.call("interop.limited", key=key)
    error = raised.value
    assert isinstance(error.retry_after, float)
    assert 0 < error.retry_after <= 60
    assert error.retry_after == error.details["retry_after"]


async def test_an_error_without_a_hint_has_no_retry_after(daphne_server):
    async with StreamClient(daphne_server.ws_url) as client:
        with pytest.raises(ResourceExhausted) as raised:
            await client.call("interop.fail", code="resource_exhausted")
    assert raised.value.retry_after is None


def test_the_sync_client_raises_the_same_retry_after(daphne_server):
    key = uuid.uuid4().hex
    with SyncStreamClient(daphne_server.ws_url) as client:
        for _ in range(3):
            client.call("interop.limited", key=key)
        with pytest.raises(ResourceExhausted) as raised:
            client.call("interop.limited", key=key)
    assert 0 < raised.value.retry_after <= 60


# -- Retry-After on a refused WebSocket handshake ------------------------------------------------------------


def refusing_server(status: int, retry_after: str | Callable[[], str]) -> type[BaseHTTPRequestHandler]:
    """``retry_after`` is the header's value, or a function making it when a request comes (an HTTP date)."""

    class Refusing(BaseHTTPRequestHandler):
        """What a rate-limiting proxy answers to a WebSocket upgrade: a status and Retry-After, no JSON."""

        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            body = b"Too Many Requests"
            self.send_response(status)
            self.send_header("Retry-After", retry_after() if callable(retry_after) else retry_after)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Refusing


@pytest.fixture
def refusing(request) -> Iterator[str]:
    with plain_http_server(refusing_server(*request.param)) as url:
        yield url


@pytest.mark.parametrize("refusing", [(429, "7")], indirect=True)
async def test_a_handshake_refused_with_429_and_retry_after_seconds_carries_retry_after(refusing):
    with pytest.raises(Unavailable) as raised:
        async with StreamClient(refusing, reconnect=False):
            pass
    error = raised.value
    assert error.details["http_status"] == 429
    assert error.retry_after == 7.0
    assert "retry after 7 s" in error.message


def in_30_seconds() -> str:
    return email.utils.formatdate(time.time() + 30, usegmt=True)


@pytest.mark.parametrize("refusing", [(503, in_30_seconds)], indirect=True)
async def test_a_handshake_refused_with_an_http_date_retry_after_carries_the_seconds_until_then(refusing):
    with pytest.raises(Unavailable) as raised:
        async with StreamClient(refusing, reconnect=False):
            pass
    assert raised.value.details["http_status"] == 503
    assert 20 < raised.value.retry_after <= 31


@pytest.mark.parametrize("refusing", [(503, "5")], indirect=True)
async def test_a_503_handshake_says_connections_are_refused_for_now_not_that_a_route_is_missing(refusing):
    with pytest.raises(Unavailable) as raised:
        async with StreamClient(refusing, reconnect=False):
            pass
    assert "refusing connections for now" in raised.value.message
    assert "route" not in raised.value.message


@pytest.mark.parametrize("refusing", [(429, "soon")], indirect=True)
async def test_a_malformed_retry_after_header_is_no_hint(refusing):
    with pytest.raises(Unavailable) as raised:
        async with StreamClient(refusing, reconnect=False):
            pass
    assert raised.value.details["http_status"] == 429
    assert raised.value.retry_after is None


# -- RetryThrottled: opt-in, bounded ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rate_limited_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """The example project with 20 calls a second per connection: refusals carry retry_after ≤ 1 s.

    Without Redis (``REDIS_URL`` empty), so that its per-IP connection limit counts its own connections only.
    """
    with django_db_blocker.unblock():
        server = start_server(
            tmp_path_factory.mktemp("rate"), env={"DJANGO_SETTINGS_MODULE": "probes.limits_settings", "REDIS_URL": ""}
        )
    yield server
    server.stop()


RETRY_LOG = "throttled; retrying"


async def test_with_retry_throttled_calls_beyond_the_rate_wait_and_all_succeed(rate_limited_server, caplog):
    caplog.set_level(logging.DEBUG, logger="streaming_app.client")
    policy = RetryThrottled(retries=5, max_wait=10)
    async with StreamClient(rate_limited_server.ws_url, retry_throttled=policy) as client:
        results = [await client.call("interop.empty") for _ in range(40)]  # twice the burst of 20
    assert results == [{}] * 40
    assert any(RETRY_LOG in record.getMessage() for record in caplog.records)


async def test_with_no_retries_left_the_throttled_call_raises(rate_limited_server, caplog):
    caplog.set_level(logging.DEBUG, logger="streaming_app.client")
    async with StreamClient(rate_limited_server.ws_url, retry_throttled=RetryThrottled(retries=0)) as client:
        with pytest.raises(ResourceExhausted) as raised:
            for _ in range(60):
                await client.call("interop.empty")
    assert 0 < raised.value.retry_after <= 1
    assert not any(RETRY_LOG in record.getMessage() for record in caplog.records)


async def test_a_hint_longer_than_max_wait_is_raised_at_once(daphne_server):
    key = uuid.uuid4().hex
    async with StreamClient(daphne_server.ws_url, retry_throttled=RetryThrottled(max_wait=5)) as client:
        await exhaust(client, key)
        started = time.monotonic()
        with pytest.raises(ResourceExhausted) as raised:
            await client.call("interop.limited", key=key)
    assert time.monotonic() - started < 2
    assert raised.value.retry_after > 5


async def test_a_hint_past_the_calls_timeout_is_raised_at_once(daphne_server):
    key = uuid.uuid4().hex
    async with StreamClient(daphne_server.ws_url, retry_throttled=RetryThrottled(max_wait=120)) as client:
        await exhaust(client, key)
        started = time.monotonic()
        with pytest.raises(ResourceExhausted):
            await client.call("interop.limited", key=key, timeout=3)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("bounds", [{"retries": -1}, {"max_wait": -0.5}])
def test_retry_throttled_refuses_negative_bounds(bounds):
    with pytest.raises(ValueError):
        RetryThrottled(**bounds)
