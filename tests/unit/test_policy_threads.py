"""Where sync policy code runs: once, in a worker thread, unless it is async or declared loop-safe.

It used to run on the event loop first and again in a thread when it reached
the database, so whatever it did before that point happened twice. Permission
classes and views record the thread they ran in (the event loop's is the
test's own thread) and how often.
"""

from __future__ import annotations

import threading

import pytest
from django.test import override_settings
from rest_framework.permissions import AllowAny, BasePermission, IsAdminUser, IsAuthenticated, IsAuthenticatedOrReadOnly

from streaming_app.db import is_loop_safe
from streaming_app.decorators import server_stream, unary
from streaming_app.registry import registry
from streaming_app.testing import StreamTestClient
from streaming_app.views import StreamView

pytestmark = pytest.mark.usefixtures("close_worker_connections")

RAN: list[tuple[str, int]] = []  # (what, thread id)
AUDIT: list[str] = []  # a side effect, before the database is read


class AuditedDatabasePermission(BasePermission):
    """Writes an audit line, then reads the permission tables."""

    def has_permission(self, request, view) -> bool:
        RAN.append(("audited", threading.get_ident()))
        AUDIT.append(request.user.get_username())
        return request.user.has_perm("demo.view_cleanup")


class PlainPermission(BasePermission):
    """Touches no database, but says nothing about being loop-safe."""

    def has_permission(self, request, view) -> bool:
        RAN.append(("plain", threading.get_ident()))
        return True

    def has_topic_permission(self, request, view, topic: str) -> bool:
        RAN.append(("topic", threading.get_ident()))
        return True


class LoopSafePermission(BasePermission):
    loop_safe = True

    def has_permission(self, request, view) -> bool:
        RAN.append(("loop_safe", threading.get_ident()))
        return True

    def has_topic_permission(self, request, view, topic: str) -> bool:
        RAN.append(("loop_safe_topic", threading.get_ident()))
        return True


class PolicyViews(StreamView):
    namespace = "t_policy"

    @unary(permission_classes=[AuditedDatabasePermission])
    async def audited(self, ctx) -> str:
        return "allowed"

    @unary(permission_classes=[PlainPermission])
    async def plain(self, ctx) -> str:
        return "plain"

    @unary(permission_classes=[LoopSafePermission])
    async def loop_safe(self, ctx) -> str:
        return "loop"

    @unary(permission_classes=[LoopSafePermission, AllowAny])
    async def mixed_safe(self, ctx) -> str:
        return "mixed"

    @server_stream(permission_classes=[PlainPermission])
    async def topic(self, ctx):
        async with ctx.subscribe("policy.plain"):
            yield "subscribed"

    @server_stream(permission_classes=[LoopSafePermission])
    async def safe_topic(self, ctx):
        async with ctx.subscribe("policy.safe"):
            yield "subscribed"


class OverridingView(StreamView):
    """Overrides initial() without vouching for it: its policy runs in a thread."""

    namespace = "t_policy_override"
    permission_classes = [AllowAny]

    def initial(self) -> None:
        RAN.append(("override", threading.get_ident()))
        super().initial()

    @unary
    async def go(self, ctx) -> str:
        return "ok"


class VouchingView(OverridingView):
    namespace = "t_policy_vouch"
    loop_safe = True


VIEWS = [PolicyViews, OverridingView, VouchingView]


@pytest.fixture(autouse=True)
def views():
    for view in VIEWS:
        registry.register(view)
    RAN.clear()
    AUDIT.clear()
    with override_settings(STREAMING={"BROKER": "memory://"}):  # the topic tests subscribe in-process
        yield
    for view in VIEWS:
        registry.unregister(view.namespace)


@pytest.fixture
def viewer(make_user):
    from django.contrib.auth.models import Permission

    user = make_user("vera")
    user.user_permissions.add(Permission.objects.get(codename="view_cleanup", content_type__app_label="demo"))
    return user


def threads(what: str) -> list[str]:
    """Where each run of ``what`` was: "loop" (this thread) or "worker"."""
    loop = threading.get_ident()
    return ["loop" if ident == loop else "worker" for name, ident in RAN if name == what]


@pytest.mark.django_db(transaction=True)
async def test_a_permission_that_reaches_the_database_has_its_side_effects_once(viewer):
    async with StreamTestClient(user=viewer) as client:
        assert await client.call("t_policy.audited") == "allowed"
    assert AUDIT == ["vera"]  # was ["vera", "vera"]: run on the loop, then again in a thread
    assert threads("audited") == ["worker"]


async def test_an_undeclared_permission_runs_in_a_worker_thread():
    async with StreamTestClient() as client:
        assert await client.call("t_policy.plain") == "plain"
    assert threads("plain") == ["worker"]


async def test_a_permission_declared_loop_safe_runs_on_the_event_loop():
    async with StreamTestClient() as client:
        assert await client.call("t_policy.loop_safe") == "loop"
        assert await client.call("t_policy.mixed_safe") == "mixed"
    assert threads("loop_safe") == ["loop", "loop"]


async def test_topic_permissions_follow_the_same_rule():
    async with StreamTestClient() as client:
        assert (await client.collect("t_policy.topic"))[0] == ["subscribed"]
        assert (await client.collect("t_policy.safe_topic"))[0] == ["subscribed"]
    assert threads("topic") == ["worker"]
    assert threads("loop_safe_topic") == ["loop"]


async def test_a_view_overriding_its_policy_runs_it_in_a_thread_unless_it_vouches_for_it():
    async with StreamTestClient() as client:
        assert await client.call("t_policy_override.go") == "ok"
        assert await client.call("t_policy_vouch.go") == "ok"
    assert threads("override") == ["worker", "loop"]


@pytest.mark.parametrize("permission", [AllowAny, IsAuthenticated, IsAdminUser, IsAuthenticatedOrReadOnly, LoopSafePermission])
def test_drfs_plain_permissions_and_declared_ones_are_loop_safe(permission):
    assert is_loop_safe(permission) and is_loop_safe(permission())


def test_a_combination_is_loop_safe_when_every_part_is():
    assert is_loop_safe(IsAuthenticated & IsAdminUser)
    assert is_loop_safe((IsAuthenticated | LoopSafePermission)())
    assert is_loop_safe(~IsAdminUser)
    assert not is_loop_safe(IsAuthenticated & PlainPermission)
    assert not is_loop_safe((AllowAny | PlainPermission)())
    assert not is_loop_safe(PlainPermission)
