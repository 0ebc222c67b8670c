"""Stream views: a namespace of streaming methods with DRF-style policies.

Policies are class attributes with ``get_*()`` hooks, defaulting to the
``STREAMING`` settings, and they are DRF's own classes: any DRF permission or
authentication class works here as it does on an ``APIView``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from rest_framework.permissions import BasePermission

from .conf import streaming_settings
from .exceptions import PermissionDenied, Unauthenticated

if TYPE_CHECKING:
    from rest_framework.authentication import BaseAuthentication
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
    serializer_class: type | None = None

    def __init__(self, ctx: CallContext, method: StreamMethod) -> None:
        self.ctx = ctx
        self.request: Request = ctx.request
        self.stream_method = method
        self.action = method.attr  # as DRF viewsets name it, for permission classes

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

    def permission_denied(self, message: Any = None, code: str | None = None) -> None:
        if self.request.authenticators and not self.request.successful_authenticator:
            raise Unauthenticated()
        details = {"code": code} if code else None
        raise PermissionDenied(None if message is None else str(message), details)

    def initial(self) -> None:
        """Runs before the handler, after authentication; override to add checks."""
        self.check_permissions()

    @classmethod
    def on_registered(cls) -> None:
        """Called once when a registry registers the view (at start-up, from ``ready()``)."""
