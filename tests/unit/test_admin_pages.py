"""The admin's streaming pages and actions through Django's test client, and who may use them."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from streaming_app.models import EndpointSwitch, FinishedCall
from streaming_app.testing import StreamTestClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_worker_connections")]

LIVE = "/admin/streaming_app/livecall/"
MEMORY = {"BROKER": "memory://"}




@pytest.fixture(autouse=True)
def memory_broker():
    with override_settings(STREAMING=MEMORY):
        yield


def user(django_user_model, name: str, *, staff: bool, perms: tuple[str, ...] = (), superuser: bool = False):
    u = django_user_model.objects.create_user(name, password="pw-123456", is_staff=staff, is_superuser=superuser)
    for codename in perms:
        u.user_permissions.add(Permission.objects.get(content_type__app_label="streaming_app", codename=codename))
    return u


@pytest.fixture
def root(client, django_user_model):
    client.force_login(user(django_user_model, "root", staff=True, superuser=True))
    return client


def finished(method: str, reason: str, code: str = "", days_ago: float = 0, username: str = "") -> FinishedCall:
    ended = timezone.now() - timedelta(days=days_ago)
    return FinishedCall.objects.create(
        method=method, namespace=method.split(".")[0], kind="server_stream", transport="websocket",
        username=username, client="127.0.0.1:1", process="h:1", connection_id="c", call_id=1,
        started_at=ended - timedelta(seconds=2), ended_at=ended, duration=2.0, end_reason=reason, error_code=code,
    )


def test_the_admin_index_links_to_the_live_calls_page(root):
    html = root.get("/admin/").content.decode()
    assert f'href="{LIVE}"' in html and "Live calls" in html


def test_the_live_page_gives_its_script_the_stream_and_action_urls(root):
    response = root.get(LIVE)
    assert response.status_code == 200
    assert response.templates[0].name == "streaming_app/admin/live.html"
    config = response.context["config"]
    assert config["method"] == "streaming_admin.live" and config["websocket"] == "/ws/"
    assert config["can"] == {"terminate": True, "publish": True, "switch": True}
    assert 'import { StreamClient } from "/static/streaming_app/client.js";' in response.content.decode()


def test_anonymous_and_non_staff_users_are_sent_to_the_login_page(client, django_user_model):
    assert client.get(LIVE).status_code == 302
    client.force_login(user(django_user_model, "bob", staff=False))
    for url in (LIVE, LIVE + "terminate/", "/admin/streaming_app/finishedcall/"):
        response = client.post(url) if url.endswith("terminate/") else client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


def test_staff_without_the_view_permission_is_refused_the_live_page(client, django_user_model):
    client.force_login(user(django_user_model, "sam", staff=True))
    assert client.get(LIVE).status_code == 403


def test_staff_who_may_only_view_cannot_terminate_or_switch(client, django_user_model):
    client.force_login(user(django_user_model, "val", staff=True, perms=("view_livecall",)))
    assert client.get(LIVE).context["config"]["can"] == {"terminate": False, "publish": False, "switch": False}
    body = {"process": "h:1", "conn": "c", "call": 1}
    assert client.post(LIVE + "terminate/", body, content_type="application/json").status_code == 403
    assert client.post(LIVE + "switch/", {"name": "interop.unary", "action": "disable"}, content_type="application/json").status_code == 403
    assert client.post(LIVE + "publish/", {"topic": "x", "data": "1"}, content_type="application/json").status_code == 403
    assert not EndpointSwitch.objects.exists()


def test_action_views_take_only_posts(root):
    assert root.get(LIVE + "terminate/").status_code == 405


def test_switch_view_disables_and_enables_a_method(root):
    response = root.post(LIVE + "switch/", {"name": "interop.unary", "action": "disable"}, content_type="application/json")
    assert response.json() == {"ok": True, "name": "interop.unary", "disabled": True, "end_open": False}
    switch = EndpointSwitch.objects.get(name="interop.unary")
    assert switch.disabled and switch.changed_by == "root"
    root.post(LIVE + "switch/", {"name": "interop.unary", "action": "enable"}, content_type="application/json")
    assert not EndpointSwitch.objects.get(name="interop.unary").disabled


def test_switch_view_refuses_unknown_names_and_the_admins_own_stream(root):
    for name in ("nope.method", "streaming_admin", "streaming_admin.live"):
        response = root.post(LIVE + "switch/", {"name": name, "action": "disable"}, content_type="application/json")
        assert response.status_code == 400, name
    assert not EndpointSwitch.objects.exists()


def test_publish_view_publishes_json_and_refuses_streaming_apps_own_topics(root):
    response = root.post(LIVE + "publish/", {"topic": "chat.lobby", "data": '{"text": "hi"}'}, content_type="application/json")
    assert response.status_code == 200 and response.json()["eid"].endswith(":1")
    refused = root.post(LIVE + "publish/", {"topic": "streaming_app.control", "data": "x"}, content_type="application/json")
    assert refused.status_code == 400


def test_terminate_view_needs_a_process_and_a_connection(root):
    response = root.post(LIVE + "terminate/", {"call": 1}, content_type="application/json")
    assert response.status_code == 400


def test_history_changelist_searches_and_filters_by_end_reason(root):
    finished("interop.count", "completed", username="ann")
    finished("interop.fail_after", "error", "not_found", username="bob")
    finished("interop.forever", "terminated", "cancelled", username="bob")
    url = "/admin/streaming_app/finishedcall/"
    assert [c.method for c in root.get(url, {"q": "ann"}).context["cl"].result_list] == ["interop.count"]
    filtered = root.get(url, {"end_reason__exact": "terminated"}).context["cl"].result_list
    assert [c.method for c in filtered] == ["interop.forever"]
    by_code = root.get(url, {"error_code__exact": "not_found"}).context["cl"].result_list
    assert [c.method for c in by_code] == ["interop.fail_after"]


def test_history_changelist_shows_and_filters_calls_ended_by_revoked_credentials(root):
    finished("interop.forever", "revoked", username="rex")
    finished("interop.forever", "disconnected", username="dan")
    url = "/admin/streaming_app/finishedcall/"
    filtered = root.get(url, {"end_reason__exact": "revoked"})
    assert [c.username for c in filtered.context["cl"].result_list] == ["rex"]
    page = filtered.content.decode()
    assert "credentials revoked" in page and "client disconnected" in page  # the row and the filter's choices


def test_history_rows_cannot_be_added_or_edited(root):
    row = finished("interop.count", "completed")
    assert root.get("/admin/streaming_app/finishedcall/add/").status_code == 403
    response = root.post(f"/admin/streaming_app/finishedcall/{row.pk}/change/", {"method": "x"})
    assert response.status_code == 403
    assert FinishedCall.objects.get(pk=row.pk).method == "interop.count"


def test_prune_command_deletes_history_older_than_the_retention_only(settings):
    old, recent = finished("a.b", "completed", days_ago=10), finished("a.b", "completed", days_ago=1)
    out = StringIO()
    with override_settings(STREAMING={**MEMORY, "HISTORY_RETENTION_DAYS": 7}):
        call_command("streaming_prune_history", stdout=out)
    assert "Deleted 1 finished calls" in out.getvalue()
    # The rows this test made only: the end-to-end tests' daphne servers write
    # their own history into the same database.
    assert list(FinishedCall.objects.filter(process="h:1").values_list("pk", flat=True)) == [recent.pk]


def test_prune_command_keeps_everything_when_retention_is_none():
    finished("a.b", "completed", days_ago=400)
    with override_settings(STREAMING={**MEMORY, "HISTORY_RETENTION_DAYS": None}):
        call_command("streaming_prune_history", stdout=StringIO())
    assert FinishedCall.objects.filter(process="h:1").count() == 1


# -- the live stream method itself ----------------------------------------------


async def live_error(u) -> dict:
    async with StreamTestClient(user=u) as client:
        await client.start("streaming_admin.live")
        return await client.receive()


async def test_the_live_stream_refuses_anonymous_callers():
    from django.contrib.auth.models import AnonymousUser

    frame = await live_error(AnonymousUser())
    assert (frame["t"], frame["code"]) == ("error", "unauthenticated")


async def test_the_live_stream_refuses_non_staff_even_with_the_permission(django_user_model):
    from asgiref.sync import sync_to_async

    u = await sync_to_async(user)(django_user_model, "nina", staff=False, perms=("view_livecall",))
    frame = await live_error(u)
    assert (frame["t"], frame["code"]) == ("error", "permission_denied")


async def test_the_live_stream_refuses_staff_without_the_view_permission(django_user_model):
    from asgiref.sync import sync_to_async

    u = await sync_to_async(user)(django_user_model, "stan", staff=True)
    frame = await live_error(u)
    assert (frame["t"], frame["code"]) == ("error", "permission_denied")


async def test_the_live_stream_sends_snapshots_to_staff_with_the_permission(django_user_model):
    from asgiref.sync import sync_to_async

    u = await sync_to_async(user)(django_user_model, "vera", staff=True, perms=("view_livecall",))
    async with StreamTestClient(user=u) as client:
        call_id = await client.start("streaming_admin.live", {"interval": 0.2})
        first, second = await client.receive(), await client.receive()
        await client.send({"t": "cancel", "id": call_id})
    assert first["t"] == second["t"] == "next"
    snapshot = first["d"]
    assert set(snapshot) == {"at", "processes", "calls", "total_calls", "summary", "window", "topics", "total_topics"}
    assert "interop.forever" in {m["method"] for m in snapshot["summary"]}
    assert json.dumps(snapshot)  # plain JSON all the way down


def test_switch_admin_actions_disable_and_enable_the_selected_endpoints(root):
    a = EndpointSwitch.objects.create(name="interop.unary", disabled=False)
    b = EndpointSwitch.objects.create(name="notes", disabled=False)
    url = "/admin/streaming_app/endpointswitch/"
    root.post(url, {"action": "disable_endpoints", "_selected_action": [a.pk, b.pk]})
    assert set(EndpointSwitch.objects.values_list("name", "disabled")) == {("interop.unary", True), ("notes", True)}
    root.post(url, {"action": "enable_endpoints", "_selected_action": [b.pk]})
    assert EndpointSwitch.objects.get(pk=b.pk).disabled is False


def test_switch_admin_form_accepts_only_registered_methods_and_namespaces(root):
    url = "/admin/streaming_app/endpointswitch/add/"
    refused = root.post(url, {"name": "interop.nope", "disabled": "on", "note": ""})
    assert refused.status_code == 200 and "Not a registered method or namespace" in refused.content.decode()
    accepted = root.post(url, {"name": "interop.count", "disabled": "on", "note": "load test"})
    assert accepted.status_code == 302
    assert EndpointSwitch.objects.get(name="interop.count").changed_by == "root"
