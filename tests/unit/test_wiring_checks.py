"""System checks of the wiring (streaming_app/wiring.py): daphne, and the ASGI application's websocket route."""

from __future__ import annotations

import pytest
from django.core import checks
from django.test import override_settings

from streaming_app import wiring

APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "streaming_app",
    "project.demo",
]


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return [m.id or "" for m in messages]


def asgi_messages(application: str) -> list[checks.CheckMessage]:
    with override_settings(ASGI_APPLICATION=f"probes.wiring_asgi.{application}"):
        return wiring.check_asgi_routes_websocket()


def test_the_example_project_is_wired():
    assert wiring.check_daphne_installed() == []
    assert wiring.check_asgi_routes_websocket() == []


def test_the_wiring_checks_run_with_manage_py_check():
    registered = {c.__name__ for c in checks.registry.registry.get_checks()}
    assert {"check_daphne_installed", "check_asgi_routes_websocket"} <= registered


def test_daphne_missing_from_installed_apps_is_w055():
    with override_settings(INSTALLED_APPS=[a for a in APPS if a != "daphne"]):
        messages = wiring.check_daphne_installed()
    assert ids(messages) == ["streaming_app.W055"]
    assert "runserver" in messages[0].msg and "404" in messages[0].msg
    assert "Put 'daphne' first in INSTALLED_APPS" in messages[0].hint


def test_daphne_after_staticfiles_is_w056():
    reordered = [a for a in APPS if a != "daphne"]
    reordered.insert(reordered.index("django.contrib.staticfiles") + 1, "daphne")
    with override_settings(INSTALLED_APPS=reordered):
        assert ids(wiring.check_daphne_installed()) == ["streaming_app.W056"]


def test_an_asgi_application_that_cannot_be_imported_is_e055():
    messages = asgi_messages("no_such_name")
    assert ids(messages) == ["streaming_app.E055"]
    assert "probes.wiring_asgi.no_such_name" in messages[0].msg


def test_an_asgi_application_without_websocket_is_e056():
    messages = asgi_messages("http_only")
    assert ids(messages) == ["streaming_app.E056"]
    assert "websocket_urlpatterns" in messages[0].hint


def test_a_websocket_route_that_never_reaches_stream_consumer_is_e057():
    messages = asgi_messages("other_consumer_only")
    assert ids(messages) == ["streaming_app.E057"]
    assert "StreamConsumer" in messages[0].msg


@pytest.mark.parametrize("application", ["plain", "wrapped_and_nested", "disconnect_aware"])
def test_routes_that_reach_stream_consumer_pass(application):
    assert asgi_messages(application) == []


def test_an_application_the_walk_cannot_see_into_is_not_reported():
    assert asgi_messages("opaque") == []


def test_django_4_2_with_django_s_own_http_handler_is_w059():
    with override_settings(ASGI_APPLICATION="probes.wiring_asgi.plain"):
        messages = wiring.http_disconnect_messages((4, 2, 30, "final", 0))
    assert ids(messages) == ["streaming_app.W059"]
    assert "streaming_app.asgi.get_asgi_application()" in messages[0].hint


def test_django_4_2_with_the_app_s_http_handler_passes():
    with override_settings(ASGI_APPLICATION="probes.wiring_asgi.disconnect_aware"):
        assert wiring.http_disconnect_messages((4, 2, 30, "final", 0)) == []


def test_django_5_needs_no_http_handler_of_the_app():
    with override_settings(ASGI_APPLICATION="probes.wiring_asgi.plain"):
        assert wiring.http_disconnect_messages((5, 0, 0, "final", 0)) == []
