"""End to end: authentication of WebSocket handshakes and the ticket endpoint, on a real daphne.

Bearer tokens (non-browser clients), the Django session cookie with an Origin
check (browsers) and single-use tickets from ``POST /streams/_ticket``
(browsers that cannot send the cookie), as shared/protocol.md describes them.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from websockets.exceptions import InvalidStatus
from httpclient import TICKET_PATH, fetch, origin_of, post_ticket
from wsclient import close_code_before_hello, connected, open_ws

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-123456"


# -- URLs and calls of the handshake -------------------------------------------------------------------


def ticket_url(server, ticket: str) -> str:
    return f"{server.ws_url}?ticket={quote(ticket, safe='')}"


async def whoami(url: str, **kwargs) -> dict:
    async with connected(url, **kwargs) as conn:
        return await conn.result(1, "interop.whoami")


# -- fixtures (sync, so the database is touched outside the event loop) --------------------------


@pytest.fixture
def session_id(make_user) -> str:
    """The session cookie of the logged-in user "carol" (a session row the server can read)."""
    from django.conf import settings
    from django.test import Client

    make_user("carol", password=PASSWORD)
    client = Client()
    assert client.login(username="carol", password=PASSWORD)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


# -- bearer tokens ----------------------------------------------------------------------------------


async def test_valid_bearer_token_authenticates_the_connection(daphne_server, staff_token):
    frame = await whoami(daphne_server.ws_url, headers={"Authorization": f"Bearer {staff_token}"})
    assert frame == {"t": "end", "id": 1, "d": {"username": "dave", "is_staff": True}}


async def test_invalid_bearer_token_is_accepted_then_closed_with_4401_before_hello(daphne_server):
    headers = {"Authorization": "Bearer not-a-real-token"}
    assert await close_code_before_hello(daphne_server.ws_url, headers=headers) == 4401


async def test_bearer_token_of_an_inactive_user_is_closed_with_4401(daphne_server, inactive_token):
    headers = {"Authorization": f"Bearer {inactive_token}"}
    assert await close_code_before_hello(daphne_server.ws_url, headers=headers) == 4401


async def test_no_credentials_make_an_anonymous_connection(daphne_server):
    frame = await whoami(daphne_server.ws_url)
    assert frame["t"] == "error" and frame["code"] == "unauthenticated"


# -- session cookie and Origin -----------------------------------------------------------------------


async def test_session_cookie_from_the_same_origin_authenticates_the_connection(daphne_server, session_id):
    frame = await whoami(daphne_server.ws_url, headers={"Cookie": f"sessionid={session_id}"}, origin=origin_of(daphne_server))
    assert frame == {"t": "end", "id": 1, "d": {"username": "carol", "is_staff": False}}


async def test_handshake_from_a_disallowed_origin_is_refused_with_403(daphne_server, session_id):
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(daphne_server.ws_url, headers={"Cookie": f"sessionid={session_id}"}, origin="http://evil.example")
    assert refused.value.response.status_code == 403


async def test_handshake_from_a_disallowed_origin_is_refused_even_without_credentials(daphne_server):
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(daphne_server.ws_url, origin="http://evil.example")
    assert refused.value.response.status_code == 403


async def test_handshake_without_origin_is_allowed(daphne_server, session_id):
    # A non-browser client sends no Origin; the session cookie is honoured as is.
    frame = await whoami(daphne_server.ws_url, headers={"Cookie": f"sessionid={session_id}"})
    assert frame == {"t": "end", "id": 1, "d": {"username": "carol", "is_staff": False}}


# -- tickets -------------------------------------------------------------------------------------------


async def test_ticket_endpoint_issues_a_ticket_to_a_logged_in_user(daphne_server, session_id):
    response = await post_ticket(daphne_server, session=session_id)
    assert response.status == 200
    body = response.json()
    assert set(body) == {"ticket", "expires_in"}
    assert isinstance(body["ticket"], str) and body["ticket"]
    assert isinstance(body["expires_in"], (int, float)) and body["expires_in"] > 0


async def test_ticket_authenticates_the_connection_as_its_user(daphne_server, session_id):
    ticket = (await post_ticket(daphne_server, session=session_id)).json()["ticket"]
    frame = await whoami(ticket_url(daphne_server, ticket))
    assert frame == {"t": "end", "id": 1, "d": {"username": "carol", "is_staff": False}}


async def test_reused_ticket_is_closed_with_4401(daphne_server, session_id):
    ticket = (await post_ticket(daphne_server, session=session_id)).json()["ticket"]
    assert (await whoami(ticket_url(daphne_server, ticket)))["t"] == "end"
    assert await close_code_before_hello(ticket_url(daphne_server, ticket)) == 4401


async def test_garbage_ticket_is_closed_with_4401(daphne_server):
    assert await close_code_before_hello(ticket_url(daphne_server, "garbage:not-signed")) == 4401


async def test_a_handshake_with_more_query_parameters_than_django_reads_is_closed_with_4400(daphne_server):
    query = "&".join(f"k{i}=v" for i in range(1500))  # DATA_UPLOAD_MAX_NUMBER_FIELDS is 1000
    assert await close_code_before_hello(f"{daphne_server.ws_url}?{query}") == 4400
    assert "refused a WebSocket handshake: The number of GET/POST parameters exceeded" in daphne_server.log.read_text()


async def test_ticket_endpoint_refuses_an_anonymous_user_with_401(daphne_server):
    response = await post_ticket(daphne_server, session=None)
    assert response.status == 401
    assert response.json()["error"]["code"] == "unauthenticated"


async def test_ticket_endpoint_without_csrf_token_is_403(daphne_server, session_id):
    response = await post_ticket(daphne_server, session=session_id, csrf=False)
    assert response.status == 403


async def test_ticket_endpoint_only_accepts_post(daphne_server, session_id):
    response = await fetch(daphne_server, "GET", TICKET_PATH, {"Cookie": f"sessionid={session_id}"})
    assert response.status == 405


# -- the Python client's authentication options -------------------------------------------------


async def test_python_client_authenticates_with_the_session_cookie(daphne_server, session_id):
    from streaming_app.client import StreamClient

    origin = {"Origin": daphne_server.http_url}
    async with StreamClient(daphne_server.ws_url, session=session_id, headers=origin) as client:
        assert (await client.call("interop.whoami"))["username"] == "carol"


async def test_python_client_asks_a_ticket_factory_for_each_connection(daphne_server, session_id):
    from streaming_app.client import StreamClient

    issued = []

    async def fresh_ticket() -> str:
        issued.append((await post_ticket(daphne_server, session=session_id)).json()["ticket"])
        return issued[-1]

    for _ in range(2):  # a second connection needs a second ticket: they are single-use
        async with StreamClient(daphne_server.ws_url, ticket=fresh_ticket) as client:
            assert (await client.call("interop.whoami"))["username"] == "carol"
    assert len(set(issued)) == 2
