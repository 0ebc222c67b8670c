"""The handshake's Origin rule is Django's CSRF Origin rule: scheme, host and port, never ALLOWED_HOSTS.

Issue 17, item 5: ``http://127.0.0.1:9999`` and ``https://127.0.0.1`` were
accepted with a session cookie by a server on another port over plain HTTP,
and with ``ALLOWED_HOSTS = ["*"]`` any Origin was. End to end on real daphne
processes for what a browser can send; in-process (the consumer through
Channels' communicator) for the settings a test overrides.
"""

from __future__ import annotations

import pytest
from conftest import start_server
from django.test import override_settings
from websockets.exceptions import InvalidStatus
from wsclient import connected, open_ws

from streaming_app.testing import ConnectionClosed, StreamTestClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_worker_connections")]

PASSWORD = "pw-123456"


@pytest.fixture
def session_id(make_user) -> str:
    from django.conf import settings
    from django.test import Client

    make_user("carol", password=PASSWORD)
    client = Client()
    assert client.login(username="carol", password=PASSWORD)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture(scope="module")
def any_host_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """The example project with ``ALLOWED_HOSTS`` extended by ``"*"``."""
    with django_db_blocker.unblock():
        server = start_server(tmp_path_factory.mktemp("anyhost"), env={"DJANGO_ALLOWED_HOSTS": "*"})
    yield server
    server.stop()


async def refused_status(url: str, origin: str, session: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        ws = await open_ws(url, headers={"Cookie": f"sessionid={session}"}, origin=origin)
        await ws.close()
    return refused.value.response.status_code


async def test_an_origin_on_another_port_is_refused(daphne_server, session_id):
    assert await refused_status(daphne_server.ws_url, "http://127.0.0.1:9999", session_id) == 403


async def test_an_origin_without_the_servers_port_is_refused(daphne_server, session_id):
    assert await refused_status(daphne_server.ws_url, "http://127.0.0.1", session_id) == 403


async def test_an_https_origin_for_a_plain_http_server_is_refused(daphne_server, session_id):
    origin = f"https://127.0.0.1:{daphne_server.port}"
    assert await refused_status(daphne_server.ws_url, origin, session_id) == 403


async def test_the_servers_own_origin_is_accepted(daphne_server, session_id):
    origin = f"http://127.0.0.1:{daphne_server.port}"
    async with connected(daphne_server.ws_url, headers={"Cookie": f"sessionid={session_id}"}, origin=origin) as conn:
        frame = await conn.result(1, "interop.whoami")
    assert frame["d"]["username"] == "carol"


async def test_allowed_hosts_star_does_not_admit_a_foreign_origin(any_host_server, session_id):
    assert await refused_status(any_host_server.ws_url, "http://evil.example", session_id) == 403


async def test_allowed_hosts_star_still_admits_the_servers_own_origin(any_host_server):
    origin = f"http://127.0.0.1:{any_host_server.port}"
    async with connected(any_host_server.ws_url, origin=origin) as conn:
        assert conn.hello["t"] == "hello"


# -- CSRF_TRUSTED_ORIGINS, in-process ------------------------------------------------------------------------


async def handshake_accepted(origin: str, host: str = "app.example.com") -> bool:
    client = StreamTestClient(headers=[(b"host", host.encode()), (b"origin", origin.encode())])
    try:
        await client.connect()
    except ConnectionClosed:
        return False
    finally:
        await client.disconnect()
    return True


@override_settings(ALLOWED_HOSTS=["app.example.com"], CSRF_TRUSTED_ORIGINS=["https://cdn.example.org"])
async def test_a_trusted_origin_is_accepted_with_its_scheme():
    assert await handshake_accepted("https://cdn.example.org")


@override_settings(ALLOWED_HOSTS=["app.example.com"], CSRF_TRUSTED_ORIGINS=["https://cdn.example.org"])
async def test_a_trusted_origin_with_another_scheme_is_refused():
    assert not await handshake_accepted("http://cdn.example.org")


@override_settings(ALLOWED_HOSTS=["app.example.com"], CSRF_TRUSTED_ORIGINS=["https://*.example.org"])
async def test_a_wildcard_trusted_origin_admits_its_subdomains_only():
    assert await handshake_accepted("https://a.example.org")
    assert not await handshake_accepted("https://example.org.evil.com")


@override_settings(ALLOWED_HOSTS=["app.example.com"], SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
async def test_behind_a_tls_proxy_the_https_origin_of_the_host_is_accepted():
    client = StreamTestClient(headers=[(b"host", b"app.example.com"), (b"origin", b"https://app.example.com"),
                                       (b"x-forwarded-proto", b"https")])
    async with client:
        assert client.hello["t"] == "hello"


@override_settings(ALLOWED_HOSTS=["app.example.com"])
async def test_an_origin_whose_host_is_not_allowed_is_refused_even_when_it_matches():
    assert not await handshake_accepted("http://other.example.com", host="other.example.com")
