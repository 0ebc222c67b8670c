"""A connection does not outlive its credentials (issue 17, item 1; shared/interop.md, "Limits and revocation").

The attack that worked: after the user's token was deleted and the user set
inactive and non-staff, the open socket still streamed, and new
``staff_only`` and admin-stream calls on it succeeded; after logout, the same.
Now each revocation closes the user's connections with 4401 within 5 s on
every process. Two real daphne processes of the example project share
PostgreSQL and Redis; the changes are made from this process (as an admin
request or a shell on another machine would), whose signals publish through
the same Redis.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from conftest import start_server
from prometheus_client.parser import text_string_to_metric_families
from wsclient import connected

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_worker_connections")]

PASSWORD = "pw-123456"
WITHIN = 5.0  # the contract's bound, in seconds


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def closed_within(conn, seconds: float = WITHIN) -> tuple[int | None, float]:
    """The close code the server sends, and how long it took (a stream keeps the socket busy meanwhile)."""
    started = time.monotonic()
    code = await conn.close_code(timeout=seconds + 1)
    return code, time.monotonic() - started


async def streaming(conn) -> None:
    """Start an endless stream on the connection and see its first item."""
    await conn.call(1, "interop.forever", {"interval_ms": 50, "tag": "revocation"}, credit=1_000_000)
    assert (await conn.recv_for(1))["t"] == "next"


@pytest.fixture
def token_user(make_user):
    from rest_framework.authtoken.models import Token

    user = make_user("tess")
    return user, Token.objects.create(user=user).key


@pytest.fixture
def staff_user(make_user):
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token

    user = make_user("stan", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_livecall"))
    return user, Token.objects.create(user=user).key


async def test_deleting_the_token_closes_its_connections_on_every_process_with_4401(two_servers, token_user):
    from asgiref.sync import sync_to_async
    from rest_framework.authtoken.models import Token

    user, key = token_user
    async with connected(two_servers[0].ws_url, headers=bearer(key)) as a, \
            connected(two_servers[1].ws_url, headers=bearer(key)) as b:
        await streaming(a)
        await streaming(b)
        await sync_to_async(Token.objects.filter(key=key).delete)()
        (code_a, took_a), (code_b, took_b) = await asyncio.gather(closed_within(a), closed_within(b))
    assert (code_a, code_b) == (4401, 4401)
    assert max(took_a, took_b) < WITHIN


async def test_deactivating_the_user_closes_their_connections_with_4401(two_servers, token_user):
    from asgiref.sync import sync_to_async

    user, key = token_user

    def deactivate() -> None:
        user.is_active = False
        user.save()

    async with connected(two_servers[1].ws_url, headers=bearer(key)) as conn:
        await streaming(conn)
        await sync_to_async(deactivate)()
        code, took = await closed_within(conn)
    assert code == 4401 and took < WITHIN


async def test_changing_the_password_closes_the_users_connections_with_4401(two_servers, token_user):
    from asgiref.sync import sync_to_async

    user, key = token_user

    def change_password() -> None:
        user.set_password("a-new-password-42")
        user.save()

    async with connected(two_servers[0].ws_url, headers=bearer(key)) as conn:
        await streaming(conn)
        await sync_to_async(change_password)()
        code, took = await closed_within(conn)
    assert code == 4401 and took < WITHIN


async def test_logging_out_closes_the_sessions_connections_with_4401(two_servers, make_user):
    from asgiref.sync import sync_to_async
    from django.conf import settings
    from django.test import Client

    await sync_to_async(make_user)("lou", password=PASSWORD)
    browser = Client()
    assert await sync_to_async(browser.login)(username="lou", password=PASSWORD)
    session = browser.cookies[settings.SESSION_COOKIE_NAME].value
    server = two_servers[1]
    headers = {"Cookie": f"sessionid={session}"}
    async with connected(server.ws_url, headers=headers, origin=server.http_url) as conn:
        assert (await conn.result(1, "interop.whoami"))["d"]["username"] == "lou"
        await sync_to_async(browser.logout)()
        code, took = await closed_within(conn)
    assert code == 4401 and took < WITHIN


async def recorded(method: str, username: str, timeout: float = 10.0) -> list:
    """The history rows of ``username``'s ``method`` calls, once there are some (servers write every second)."""
    from asgiref.sync import sync_to_async

    from streaming_app.models import FinishedCall

    deadline = time.monotonic() + timeout
    while True:
        rows = await sync_to_async(list)(FinishedCall.objects.filter(method=method, username=username))
        if rows or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.1)


def calls_ended(server, **labels: str) -> float:
    """``streaming_calls_total`` of the server for these labels (loopback: no credentials needed)."""
    text = httpx.get(f"{server.http_url}/metrics", timeout=10, trust_env=False).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "streaming_calls_total" and sample.labels == labels:
                return sample.value
    return 0.0


async def revoked_while_streaming(server, key: str) -> None:
    """Stream on a connection authenticated with ``key``, delete the token, see the 4401."""
    from asgiref.sync import sync_to_async
    from rest_framework.authtoken.models import Token

    async with connected(server.ws_url, headers=bearer(key)) as conn:
        await streaming(conn)
        await sync_to_async(Token.objects.filter(key=key).delete)()
        code, _ = await closed_within(conn)
    assert code == 4401


async def test_the_history_records_the_calls_of_a_revoked_connection_as_revoked(two_servers, token_user):
    _, key = token_user
    await revoked_while_streaming(two_servers[0], key)
    rows = await recorded("interop.forever", "tess")
    assert [(row.end_reason, row.error_code) for row in rows] == [("revoked", "")]


async def test_the_calls_of_a_revoked_connection_are_counted_as_unauthenticated_not_cancelled(two_servers, token_user):
    _, key = token_user
    await revoked_while_streaming(two_servers[1], key)
    labels = {"method": "interop.forever", "transport": "websocket"}
    deadline = time.monotonic() + 5
    while calls_ended(two_servers[1], **labels, outcome="unauthenticated") == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert calls_ended(two_servers[1], **labels, outcome="unauthenticated") == 1
    assert calls_ended(two_servers[1], **labels, outcome="cancelled") == 0


async def test_another_users_connection_stays_open(two_servers, token_user, make_token):
    from asgiref.sync import sync_to_async
    from rest_framework.authtoken.models import Token

    _, key = token_user
    other = await sync_to_async(make_token)("otto")
    async with connected(two_servers[0].ws_url, headers=bearer(key)) as victim, \
            connected(two_servers[0].ws_url, headers=bearer(other)) as bystander:
        await sync_to_async(Token.objects.filter(key=key).delete)()
        assert await victim.close_code(timeout=WITHIN + 1) == 4401
        frame = await bystander.result(1, "interop.whoami")
    assert frame["d"]["username"] == "otto"


async def test_a_user_who_lost_staff_cannot_make_new_staff_calls_on_an_open_connection(two_servers, staff_user):
    from asgiref.sync import sync_to_async

    user, key = staff_user
    async with connected(two_servers[0].ws_url, headers=bearer(key)) as conn:
        assert (await conn.result(1, "interop.staff_only"))["d"] == {"ok": True}

        def demote() -> None:
            user.is_staff = False
            user.save()

        await sync_to_async(demote)()
        deadline = time.monotonic() + WITHIN
        frame: dict = {}
        for call_id in range(2, 200):  # the notice takes a moment to arrive
            frame = await conn.result(call_id, "interop.staff_only")
            if frame["t"] == "error" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert frame.get("code") == "permission_denied", frame
        admin = await conn.result(500, "streaming_admin.live", credit=10)
        assert admin["t"] == "error" and admin["code"] == "permission_denied"
        assert (await conn.result(501, "interop.whoami"))["d"] == {"username": "stan", "is_staff": False}


# -- the safety net and the age limit (probes.revocation_settings: 1 s re-validation, 3 s age) -----------------


@pytest.fixture(scope="module")
def strict_server(django_db_setup, django_db_blocker, tmp_path_factory, redis_url):
    with django_db_blocker.unblock():
        server = start_server(
            tmp_path_factory.mktemp("revocation"),
            env={"DJANGO_SETTINGS_MODULE": "probes.revocation_settings", "REDIS_URL": redis_url},
        )
    yield server
    server.stop()


async def test_a_change_that_sends_no_signal_is_caught_by_the_periodic_revalidation(strict_server, token_user):
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model

    user, key = token_user
    async with connected(strict_server.ws_url, headers=bearer(key)) as conn:
        await streaming(conn)
        await sync_to_async(get_user_model().objects.filter(pk=user.pk).update)(is_active=False)  # no signal
        code, took = await closed_within(conn, 2.0)
    assert code == 4401 and took < 3.0


async def test_a_connection_older_than_max_connection_age_is_closed_with_4503(strict_server):
    started = time.monotonic()
    async with connected(strict_server.ws_url) as conn:
        await streaming(conn)
        code = await conn.close_code(timeout=10)
    assert code == 4503
    assert 2.5 < time.monotonic() - started < 8


async def test_logging_out_closes_the_connections_opened_with_the_sessions_ticket(two_servers, make_user):
    from urllib.parse import quote

    from asgiref.sync import sync_to_async
    from django.conf import settings
    from django.test import Client
    from httpclient import post_ticket

    await sync_to_async(make_user)("tia", password=PASSWORD)
    browser = Client()
    assert await sync_to_async(browser.login)(username="tia", password=PASSWORD)
    session = browser.cookies[settings.SESSION_COOKIE_NAME].value
    server = two_servers[0]
    ticket = (await post_ticket(server, session=session)).json()["ticket"]
    async with connected(f"{server.ws_url}?ticket={quote(ticket, safe='')}", origin=server.http_url) as conn:
        assert (await conn.result(1, "interop.whoami"))["d"]["username"] == "tia"
        await sync_to_async(browser.logout)()
        code, took = await closed_within(conn)
    assert code == 4401 and took < WITHIN
