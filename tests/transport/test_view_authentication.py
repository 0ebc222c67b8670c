"""A view's own authentication_classes re-authenticate the handshake for its calls."""

import pytest
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import IsAuthenticated

from streaming_app import StreamView, unary
from streaming_app.registry import registry
from streaming_app.testing import StreamTestClient

pytestmark = pytest.mark.django_db(transaction=True)


class HeaderAuthentication(BaseAuthentication):
    """Authenticates `X-Robot: <username>`; `X-Robot: bad` is invalid credentials."""

    def authenticate(self, request):
        name = request.META.get("HTTP_X_ROBOT")
        if not name:
            return None
        if name == "bad":
            raise AuthenticationFailed("Robot not recognised.")
        from django.contrib.auth import get_user_model

        return (get_user_model().objects.get(username=name), None)


class RobotStreams(StreamView):
    namespace = "robots"
    authentication_classes = [HeaderAuthentication]
    permission_classes = [IsAuthenticated]

    @unary
    async def name(self, ctx) -> dict:
        return {"username": ctx.user.get_username()}


@pytest.fixture
def robot_view():
    registry.register(RobotStreams)
    yield
    registry.unregister("robots")


async def test_view_authentication_classes_authenticate_its_calls(robot_view, django_user_model):
    await django_user_model.objects.acreate(username="r2d2")
    async with StreamTestClient(headers=[(b"x-robot", b"r2d2")]) as client:
        assert await client.call("robots.name") == {"username": "r2d2"}


async def test_view_authentication_failure_is_a_call_error_not_a_close(robot_view):
    from streaming_app.exceptions import Unauthenticated

    async with StreamTestClient(headers=[(b"x-robot", b"bad")]) as client:
        with pytest.raises(Unauthenticated, match="Robot not recognised"):
            await client.call("robots.name")
        assert await client.call("interop.empty") == {}


async def test_view_without_credentials_of_its_kind_is_unauthenticated(robot_view):
    from streaming_app.exceptions import Unauthenticated

    async with StreamTestClient() as client:
        with pytest.raises(Unauthenticated):
            await client.call("robots.name")
