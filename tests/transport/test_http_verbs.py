"""GET only for safe methods (issue 17, item 2; shared/interop.md, "HTTP verbs").

The attack: a cross-site top-level GET carries the victim's session cookie and
no CSRF token (Django checks CSRF on unsafe verbs only), and every unary method
answered GET, so a link ran ``notes.add``, ``notes.edit``, ``notes.remove`` and
``interop.publish``. End to end on the shared daphne of the example project.
"""

from __future__ import annotations

import pytest
from httpclient import assert_error

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-123456"


@pytest.fixture
def victim(make_user):
    """The session cookie of "vera", logged in, and her private note."""
    from django.conf import settings
    from django.test import Client

    from project.demo.models import Note

    user = make_user("vera", password=PASSWORD)
    client = Client()
    assert client.login(username="vera", password=PASSWORD)
    note = Note.objects.create(text="vera's secret", public=False, owner=user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value, note


def cross_site(session: str) -> dict[str, str]:
    """What a browser sends with a top-level GET from another site: the cookie, no CSRF token."""
    return {"Cookie": f"sessionid={session}", "Referer": "http://evil.example/", "Sec-Fetch-Site": "cross-site"}


def test_a_cross_site_get_cannot_add_a_note(http, victim):
    from project.demo.models import Note

    session, _ = victim
    response = http.get("notes.add", params={"text": "planted", "public": "false"}, headers=cross_site(session))
    assert_error(response, 405, "unimplemented")
    assert response.headers["allow"] == "POST"
    assert not Note.objects.filter(text="planted").exists()


def test_a_cross_site_get_cannot_make_a_private_note_public(http, victim):
    session, note = victim
    response = http.get("notes.edit", params={"id": note.pk, "public": "true"}, headers=cross_site(session))
    assert_error(response, 405, "unimplemented")
    note.refresh_from_db()
    assert note.public is False


def test_a_cross_site_get_cannot_remove_a_note(http, victim):
    from project.demo.models import Note

    session, note = victim
    response = http.get("notes.remove", params={"id": note.pk}, headers=cross_site(session))
    assert_error(response, 405, "unimplemented")
    assert Note.objects.filter(pk=note.pk).exists()


def test_a_get_of_interop_publish_answers_405_allow_post(http):
    response = http.get("interop.publish", params={"topic": "verbs", "data": "1"})
    error = assert_error(response, 405, "unimplemented")
    assert response.headers["allow"] == "POST"
    assert error["details"] == {"allow": ["POST"]}


def test_a_post_of_interop_publish_is_served(http):
    response = http.post("interop.publish", json={"topic": "verbs", "data": 1})
    assert response.status_code == 200 and "eid" in response.json()["d"]


@pytest.mark.parametrize(
    ("method", "params", "status"),
    [
        ("interop.empty", {}, 200),
        ("interop.unary", {"payload": "x"}, 200),
        ("interop.whoami", {}, 401),
        ("interop.fail", {"code": "not_found"}, 404),
        ("interop.big", {"size": 1}, 200),
        ("interop.cleanups", {}, 200),
    ],
)
def test_a_safe_unary_method_answers_get(http, method, params, status):
    assert http.get(method, params=params).status_code == status


def test_a_server_stream_answers_get(http):
    with http.stream("GET", "interop.count", params={"n": 1}, headers={"Accept": "application/x-ndjson"}) as response:
        assert response.status_code == 200


def test_other_verbs_on_a_method_that_is_not_safe_name_post_alone_in_allow(http):
    response = http.put("interop.publish", json={})
    assert_error(response, 405, "unimplemented")
    assert response.headers["allow"] == "POST"
