"""Who may call over the WebSocket: view and method permissions, and the handshake's Origin check.

In-process, through StreamTestClient (Channels' communicator, no socket); the test-only
stream views and helpers are in tests/consumer_views.py, registered for each test.
"""

from __future__ import annotations

import threading

import pytest
from django.test import override_settings

from streaming_app.testing import ConnectionClosed, StreamTestClient

from consumer_views import PERMISSION_THREADS, call_error
from consumer_views import views  # noqa: F401  (autouse: registers the test views, clears their state)

pytestmark = pytest.mark.usefixtures("close_worker_connections")


# -- permissions ----------------------------------------------------------------------------------------------


async def test_view_permission_rejects_anonymous_with_unauthenticated():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_perm.whoami")
    assert error.code == "unauthenticated"


# Users are made by sync fixtures, on the thread pytest-django manages the
# connection of; a connection opened in a throwaway thread would stay open.


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def staff_user(make_user):
    return make_user("carol", is_staff=True)


@pytest.fixture
def cleanup_viewer(make_user):
    from django.contrib.auth.models import Permission

    user = make_user("dave")
    user.user_permissions.add(Permission.objects.get(codename="view_cleanup", content_type__app_label="demo"))
    return user


@pytest.mark.django_db(transaction=True)
async def test_view_permission_admits_an_authenticated_user(user):
    async with StreamTestClient(user=user) as client:
        assert await client.call("t_perm.whoami") == "alice"


async def test_method_permission_overrides_the_view_permission():
    async with StreamTestClient() as client:
        assert await client.call("t_perm.public") == "public"


@pytest.mark.django_db(transaction=True)
async def test_method_permission_denies_an_authenticated_user_with_permission_denied(user):
    async with StreamTestClient(user=user) as client:
        error = await call_error(client, "t_perm.staff")
    assert error.code == "permission_denied"


@pytest.mark.django_db(transaction=True)
async def test_method_permission_admits_a_staff_user(staff_user):
    async with StreamTestClient(user=staff_user) as client:
        assert await client.call("t_perm.staff") == "staff"


@pytest.mark.django_db(transaction=True)
async def test_permission_that_queries_the_database_admits_a_user_with_the_permission(cleanup_viewer):
    async with StreamTestClient(user=cleanup_viewer) as client:
        assert await client.call("t_perm.cleanup_viewer") == "allowed"
    # Not declared loop-safe: run once, in a worker thread (never tried on the loop first).
    assert len(PERMISSION_THREADS) == 1
    assert PERMISSION_THREADS[0] != threading.get_ident()


@pytest.mark.django_db(transaction=True)
async def test_permission_that_queries_the_database_denies_a_user_without_it(user):
    async with StreamTestClient(user=user) as client:
        error = await call_error(client, "t_perm.cleanup_viewer")
    assert error.code == "permission_denied"


# -- origin --------------------------------------------------------------------------------------------------


async def test_handshake_from_a_foreign_origin_is_refused():
    client = StreamTestClient(headers=[(b"origin", b"http://evil.example")])
    try:
        with pytest.raises(ConnectionClosed):
            await client.connect()
    finally:
        await client.disconnect()


async def test_handshake_from_the_requests_own_origin_is_accepted():
    # As Django's CSRF check: the Origin is compared with the request's own host (validated by ALLOWED_HOSTS).
    async with StreamTestClient(headers=[(b"host", b"localhost"), (b"origin", b"http://localhost")]) as client:
        assert client.hello["t"] == "hello"


async def test_handshake_without_origin_is_accepted():
    async with StreamTestClient() as client:
        assert client.hello["t"] == "hello"


async def test_handshake_from_an_allowed_origins_entry_is_accepted():
    with override_settings(STREAMING={"ALLOWED_ORIGINS": ["https://app.example.com"]}):
        async with StreamTestClient(headers=[(b"origin", b"https://app.example.com")]) as client:
            assert client.hello["t"] == "hello"
