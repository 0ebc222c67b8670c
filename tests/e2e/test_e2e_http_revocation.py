"""An HTTP stream does not outlive its credentials either (issue 17, item 1, for SSE/NDJSON).

The attack that worked: a long SSE or NDJSON stream opened with a bearer
token kept streaming after the token was deleted or the user deactivated,
until its client left (WebSocket connections were closed with 4401, HTTP
streams were not). Now the stream ends within 5 s with the in-band
``unauthenticated`` error record of docs/protocol.md's HTTP stream framing,
whatever the cause (token deleted, user deactivated, password changed, the
session of a session-authenticated stream logged out), and the history
records it as ``revoked``.
Two real daphne processes of the example project share PostgreSQL and Redis;
the change is made from this process through Django (so its signals fire),
and the notice travels through Redis to the process serving the stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, AsyncIterator

import httpx
import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_worker_connections")]

WITHIN = 5.0  # the contract's bound, in seconds
PATH = "/streams/interop.forever?interval_ms=100&tag=http-revocation"
PASSWORD = "pw-123456"


@pytest.fixture
def token_user(make_user):
    from rest_framework.authtoken.models import Token

    user = make_user("hetty")
    return user, Token.objects.create(user=user).key


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """(event name, decoded data) of each SSE event, comments and the retry hint skipped."""
    name, data = "message", []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


async def ndjson_records(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    async for line in response.aiter_lines():
        if line:
            record = json.loads(line)
            yield record.get("t"), record


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def ended_after(server, credentials: dict[str, str], revoke, ndjson: bool = False) -> tuple[str, Any, float]:
    """Open the stream with ``credentials`` (headers), see an item, ``revoke``.

    The terminal record, and how long it took after the revocation.
    """
    from asgiref.sync import sync_to_async

    accept = "application/x-ndjson" if ndjson else "text/event-stream"
    headers = {**credentials, "Accept": accept}
    timeout = httpx.Timeout(WITHIN + 5)
    async with httpx.AsyncClient(base_url=server.http_url, trust_env=False, timeout=timeout) as http:
        async with http.stream("GET", PATH, headers=headers) as response:
            assert response.status_code == 200
            records = ndjson_records(response) if ndjson else sse_events(response)
            name, _ = await anext(records)
            assert name == "next"
            await sync_to_async(revoke)()
            started = time.monotonic()
            while time.monotonic() - started < WITHIN + 5:
                name, data = await anext(records)
                if name in ("end", "error"):
                    return name, data, time.monotonic() - started
    raise AssertionError("the stream kept going")


async def test_deleting_the_token_ends_its_sse_stream_with_unauthenticated(two_servers, token_user):
    from rest_framework.authtoken.models import Token

    _, key = token_user
    name, data, took = await ended_after(two_servers[1], bearer(key), Token.objects.filter(key=key).delete)
    assert (name, data["code"]) == ("error", "unauthenticated"), data
    assert took < WITHIN


async def test_deactivating_the_user_ends_their_sse_stream_with_unauthenticated(two_servers, token_user):
    user, key = token_user

    def deactivate() -> None:
        user.is_active = False
        user.save()

    name, data, took = await ended_after(two_servers[0], bearer(key), deactivate)
    assert (name, data["code"]) == ("error", "unauthenticated"), data
    assert took < WITHIN


async def test_deleting_the_token_ends_its_ndjson_stream_with_unauthenticated(two_servers, token_user):
    from rest_framework.authtoken.models import Token

    _, key = token_user
    revoke = Token.objects.filter(key=key).delete
    name, record, took = await ended_after(two_servers[0], bearer(key), revoke, ndjson=True)
    assert (name, record["code"]) == ("error", "unauthenticated"), record
    assert took < WITHIN


async def test_changing_the_password_ends_the_users_sse_stream_with_unauthenticated(two_servers, token_user):
    user, key = token_user

    def change_password() -> None:
        user.set_password("a-new-password-42")
        user.save()

    name, data, took = await ended_after(two_servers[1], bearer(key), change_password)
    assert (name, data["code"]) == ("error", "unauthenticated"), data
    assert took < WITHIN


async def test_logging_out_ends_the_sessions_sse_stream_with_unauthenticated(two_servers, make_user):
    from asgiref.sync import sync_to_async
    from django.conf import settings
    from django.test import Client

    await sync_to_async(make_user)("lola", password=PASSWORD)
    browser = Client()
    assert await sync_to_async(browser.login)(username="lola", password=PASSWORD)
    session = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"}
    name, data, took = await ended_after(two_servers[0], session, browser.logout)
    assert (name, data["code"]) == ("error", "unauthenticated"), data
    assert took < WITHIN


async def test_the_history_records_a_revoked_http_stream_as_revoked_with_its_error(two_servers, token_user):
    from asgiref.sync import sync_to_async
    from rest_framework.authtoken.models import Token

    from streaming_app.models import FinishedCall

    _, key = token_user
    await ended_after(two_servers[0], bearer(key), Token.objects.filter(key=key).delete)
    rows: list = []
    deadline = time.monotonic() + 10  # each server writes its history every second
    while not rows and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        rows = await sync_to_async(list)(FinishedCall.objects.filter(method="interop.forever", username="hetty"))
    assert [(row.transport, row.end_reason, row.error_code) for row in rows] == [("sse", "revoked", "unauthenticated")]


async def test_another_users_http_stream_keeps_running(two_servers, token_user, make_token):
    """A revocation ends only the streams of the credential it names."""
    from asgiref.sync import sync_to_async
    from rest_framework.authtoken.models import Token

    _, key = token_user
    other = await sync_to_async(make_token)("olga")
    headers = {"Authorization": f"Bearer {other}", "Accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=two_servers[0].http_url, trust_env=False, timeout=WITHIN + 5) as http:
        async with http.stream("GET", PATH, headers=headers) as response:
            events = sse_events(response)
            assert (await anext(events))[0] == "next"
            name, data, _ = await ended_after(two_servers[0], bearer(key), Token.objects.filter(key=key).delete)
            assert data["code"] == "unauthenticated"
            seen = [(await anext(events))[0] for _ in range(10)]  # 1 s of items after the revocation
    assert set(seen) == {"next"}
