"""End to end: authentication, permissions and CSRF of HTTP calls, on a real daphne.

As on the WebSocket: a session cookie, ``Authorization: Bearer <token>`` or a
single-use ticket, tried by the default authentication classes; presented but
invalid credentials are 401; DRF permission classes decide per method
(401 for an anonymous caller, 403 for an authenticated one). CSRF is enforced
for session-authenticated POSTs only, as DRF does.
"""

from __future__ import annotations

import pytest
from httpclient import assert_error, client, get_sse

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-123456"


@pytest.fixture
def user_token(make_token) -> str:
    return make_token("hana", is_staff=False)


@pytest.fixture
def session_id(make_user) -> str:
    """The session cookie of the logged-in user "sami"."""
    from django.conf import settings
    from django.test import Client

    make_user("sami", password=PASSWORD)
    django_client = Client()
    assert django_client.login(username="sami", password=PASSWORD)
    return django_client.cookies[settings.SESSION_COOKIE_NAME].value


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def csrf_token(server) -> str:
    """A CSRF cookie value, as a browser gets it from any page with a form."""
    with client(server) as c:
        response = c.get(f"{server.http_url}/admin/login/")
    assert response.status_code == 200
    return response.cookies["csrftoken"]


def browser_headers(server, session: str, csrf_cookie: str | None = None, csrf_header: str | None = None) -> dict:
    """What a page of the same origin sends with fetch(): Origin, Referer, cookies, X-CSRFToken."""
    cookies = [f"sessionid={session}"]
    if csrf_cookie is not None:
        cookies.append(f"csrftoken={csrf_cookie}")
    headers = {
        "Origin": f"http://127.0.0.1:{server.port}",
        "Referer": f"http://127.0.0.1:{server.port}/demo/",
        "Cookie": "; ".join(cookies),
    }
    if csrf_header is not None:
        headers["X-CSRFToken"] = csrf_header
    return headers


# -- bearer tokens ----------------------------------------------------------------------------------


def test_bearer_token_authenticates_a_get(http, user_token):
    response = http.get("interop.whoami", headers=bearer(user_token))
    assert response.json() == {"d": {"username": "hana", "is_staff": False}}


def test_bearer_token_authenticates_a_post_without_any_csrf_token(http, user_token):
    response = http.post("interop.whoami", json={}, headers=bearer(user_token))
    assert response.json() == {"d": {"username": "hana", "is_staff": False}}


def test_invalid_bearer_token_is_401_even_for_a_method_anyone_may_call(http):
    response = http.get("interop.empty", headers=bearer("not-a-real-token"))
    error = assert_error(response, 401, "unauthenticated")
    assert error["message"] == "Invalid token."
    assert "Bearer" in response.headers["www-authenticate"]


def test_bearer_token_of_an_inactive_user_is_401(http, inactive_token):
    assert_error(http.get("interop.empty", headers=bearer(inactive_token)), 401, "unauthenticated")


def test_bearer_token_authenticates_a_stream(probe, user_token):
    _, stream = get_sse(probe, "httpprobe.my_items", headers=bearer(user_token))
    assert stream.items == [{"username": "hana"}]


# -- permissions ------------------------------------------------------------------------------------


def test_anonymous_call_to_a_method_that_needs_a_user_is_401(http):
    response = http.get("interop.whoami")
    assert_error(response, 401, "unauthenticated")
    assert "www-authenticate" in response.headers


def test_anonymous_stream_that_needs_a_user_is_401_before_the_stream_starts(probe):
    response = probe.get("httpprobe.my_items", headers={"Accept": "text/event-stream"})
    assert_error(response, 401, "unauthenticated")


def test_authenticated_non_staff_user_is_403_permission_denied(http, user_token):
    assert_error(http.get("interop.staff_only", headers=bearer(user_token)), 403, "permission_denied")


def test_staff_user_is_allowed(http, staff_token):
    assert http.get("interop.staff_only", headers=bearer(staff_token)).json() == {"d": {"ok": True}}


def test_a_views_own_drf_authentication_class_authenticates_its_calls(probe, user_token):
    response = probe.get("tokenprobe.whoami", headers={"Authorization": f"Token {user_token}"})
    assert response.json() == {"d": {"username": "hana"}}


def test_a_views_own_drf_authentication_class_refuses_a_bad_credential_with_401(probe):
    response = probe.get("tokenprobe.whoami", headers={"Authorization": "Token nope"})
    assert_error(response, 401, "unauthenticated")


def test_a_views_own_authentication_classes_replace_the_defaults(probe, user_token):
    assert_error(probe.get("tokenprobe.whoami", headers=bearer(user_token)), 401, "unauthenticated")


# -- session cookie and CSRF -------------------------------------------------------------------------


def test_session_cookie_authenticates_a_get_without_csrf_token(daphne_server, http, session_id):
    response = http.get("interop.whoami", headers={"Cookie": f"sessionid={session_id}"})
    assert response.json() == {"d": {"username": "sami", "is_staff": False}}


def test_session_authenticated_post_without_csrf_token_is_403(daphne_server, http, session_id):
    response = http.post("interop.whoami", json={}, headers=browser_headers(daphne_server, session_id))
    error = assert_error(response, 403, "permission_denied")
    assert "CSRF" in error["message"]


def test_session_authenticated_post_with_a_wrong_csrf_token_is_403(daphne_server, http, session_id):
    token = csrf_token(daphne_server)
    headers = browser_headers(daphne_server, session_id, csrf_cookie=token, csrf_header="x" * 32)
    assert_error(http.post("interop.whoami", json={}, headers=headers), 403, "permission_denied")


def test_session_authenticated_post_with_the_csrf_token_is_accepted(daphne_server, http, session_id):
    token = csrf_token(daphne_server)
    headers = browser_headers(daphne_server, session_id, csrf_cookie=token, csrf_header=token)
    response = http.post("interop.whoami", json={}, headers=headers)
    assert response.json() == {"d": {"username": "sami", "is_staff": False}}


def test_session_authenticated_post_with_the_csrf_token_can_open_a_stream(daphne_server, http, session_id):
    token = csrf_token(daphne_server)
    headers = {**browser_headers(daphne_server, session_id, csrf_cookie=token, csrf_header=token),
               "Accept": "application/x-ndjson"}
    response = http.post("interop.count", json={"n": 1}, headers=headers)
    assert response.status_code == 200
    assert response.text.splitlines()[-1] == '{"t":"end","d":{"total":1}}'


def test_anonymous_post_needs_no_csrf_token(http):
    response = http.post("interop.unary", json={"payload": "x"}, headers={"Origin": "http://evil.example"})
    assert response.json() == {"d": {"payload": "x"}}


def test_unknown_session_cookie_is_anonymous_not_an_error(http):
    headers = {"Cookie": "sessionid=doesnotexist0123456789"}
    assert http.get("interop.empty", headers=headers).json() == {"d": {}}
    assert_error(http.get("interop.whoami", headers=headers), 401, "unauthenticated")


# -- tickets ---------------------------------------------------------------------------------------------


def test_a_ticket_authenticates_one_call_and_only_once(daphne_server, http, session_id):
    token = csrf_token(daphne_server)
    headers = browser_headers(daphne_server, session_id, csrf_cookie=token, csrf_header=token)
    ticket = http.post("_ticket", headers=headers).json()["ticket"]
    first = http.get("interop.whoami", params={"ticket": ticket})
    assert first.json() == {"d": {"username": "sami", "is_staff": False}}
    assert_error(http.get("interop.whoami", params={"ticket": ticket}), 401, "unauthenticated")
