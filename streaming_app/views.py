"""Stream views: a namespace of streaming methods with DRF-style policies.

Policies are class attributes with ``get_*()`` hooks, defaulting to the
``STREAMING`` settings, and they are DRF's own classes: any DRF permission or
authentication class works here as it does on an ``APIView``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence, cast

from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings

from .conf import streaming_settings
from .exceptions import PermissionDenied, ResourceExhausted, Unauthenticated

if TYPE_CHECKING:
    from rest_framework.authentication import BaseAuthentication
    from rest_framework.throttling import BaseThrottle
    from rest_framework.request import Request

    from .context import CallContext
    from .registry import StreamMethod


class StreamView:
    """Base class of stream views; a new instance serves each call.

    ``namespace`` names the methods on the wire (``<namespace>.<method>``).
    """

    namespace: str | None = None
    authentication_classes: Sequence[type[BaseAuthentication]] | None = None
    permission_classes: Sequence[type[BasePermission]] | None = None
    # DRF throttle classes (None: REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]),
    # checked per call on both transports, after the permissions, as DRF does.
    throttle_classes: Sequence[type[BaseThrottle]] | None = None
    serializer_class: type | None = None

    def __init__(self, ctx: CallContext, method: StreamMethod) -> None:
        self.ctx = ctx
        self.request: Request = ctx.request
        self.stream_method = method
        self.action = method.attr  # as DRF viewsets name it, for permission classes
        # The call's arguments as sent (before validation), as DRF's view.kwargs
        # holds the URL's: what a throttle's get_cache_key() may key on.
        self.kwargs: dict[str, Any] = {}

    # -- policies ------------------------------------------------------------

    def get_authenticators(self) -> list[BaseAuthentication]:
        classes = self.authentication_classes
        if classes is None:
            classes = streaming_settings.DEFAULT_AUTHENTICATION_CLASSES
        return [cls() for cls in classes]

    def get_permissions(self) -> list[BasePermission]:
        classes = self.stream_method.options.permission_classes
        if classes is None:
            classes = self.permission_classes
        if classes is None:
            classes = streaming_settings.DEFAULT_PERMISSION_CLASSES
        return [cls() for cls in classes]

    def get_throttles(self) -> list[BaseThrottle]:
        classes = self.stream_method.options.throttle_classes
        if classes is None:
            classes = self.throttle_classes
        if classes is None:
            # The stubs type it as dotted paths; DRF's api_settings has imported them.
            classes = cast("Sequence[type[BaseThrottle]]", api_settings.DEFAULT_THROTTLE_CLASSES)
        return [cls() for cls in classes]

    def get_serializer_class(self) -> type | None:
        return self.stream_method.options.serializer_class or self.serializer_class

    def get_arguments_serializer_class(self) -> type | None:
        """The serializer that validates a call's arguments (None: type hints do)."""
        return self.get_serializer_class()

    def get_serializer_context(self) -> dict[str, Any]:
        return {"request": self.request, "view": self, "ctx": self.ctx}

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        serializer_class = self.get_serializer_class()
        if serializer_class is None:
            raise AssertionError(f"{type(self).__name__} has no serializer_class")
        kwargs.setdefault("context", self.get_serializer_context())
        return serializer_class(*args, **kwargs)

    # -- checks ----------------------------------------------------------------

    def check_permissions(self) -> None:
        """Raise ``unauthenticated`` or ``permission_denied`` as DRF's APIView decides."""
        for permission in self.get_permissions():
            # The ignore: djangorestframework-stubs type ``view`` as APIView; DRF
            # only passes it through, and a StreamView is a view in the same sense.
            if not permission.has_permission(self.request, self):  # type: ignore[arg-type]
                self.permission_denied(
                    message=getattr(permission, "message", None),
                    code=getattr(permission, "code", None),
                )

    def check_topic_permissions(self, topic: str) -> None:
        """May this request subscribe to ``topic``? Raise to refuse.

        Asks each permission class that has ``has_topic_permission(request,
        view, topic)``; override for rules of the view's own.
        """
        for permission in self.get_permissions():
            check = getattr(permission, "has_topic_permission", None)
            if check is not None and not check(self.request, self, topic):
                self.permission_denied(
                    message=getattr(permission, "message", None),
                    code=getattr(permission, "code", None),
                )

    def check_throttles(self) -> None:
        """Raise ``resource_exhausted`` with ``details.retry_after`` when a throttle refuses, as DRF's APIView."""
        waits = []
        for throttle in self.get_throttles():
            # The ignore: the stubs type ``view`` as APIView; DRF only passes it through.
            if not throttle.allow_request(self.request, self):  # type: ignore[arg-type]
                waits.append(throttle.wait())
        if waits:
            known = [wait for wait in waits if wait is not None]
            self.throttled(max(known) if known else None)

    def throttled(self, wait: float | None) -> None:
        """Refuse the call: too many calls (``wait``: seconds until one is allowed, if known)."""
        if wait is None:
            raise ResourceExhausted("Too many calls: throttled.")
        raise ResourceExhausted(f"Too many calls: throttled; try again in {wait:.0f} s.", {"retry_after": wait})

    def permission_denied(self, message: Any = None, code: str | None = None) -> None:
        if self.request.authenticators and not self.request.successful_authenticator:
            raise Unauthenticated()
        details = {"code": code} if code else None
        raise PermissionDenied(None if message is None else str(message), details)

    def initial(self) -> None:
        """Runs before the handler, after authentication; override to add checks."""
        self.check_permissions()
        self.check_throttles()

    @classmethod
    def on_registered(cls) -> None:
        """Called once when a registry registers the view (at start-up, from ``ready()``)."""
