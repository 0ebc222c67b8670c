"""Running one call of a declared method, whatever the transport.

A transport builds the context, then calls :func:`prepare` (permissions and
argument validation) and :func:`invoke` (the handler, by kind), and writes the
outcome in its own framing. Items go out through an :class:`Outlet` that the
transport provides; its ``wait`` is where credit-based flow control holds a
server stream at its ``yield``.
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Protocol

from channels.db import database_sync_to_async
from django.core import exceptions as django_exceptions
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.request import Request

from . import exceptions
from .arguments import invalid_arguments
from .conf import streaming_settings
from .context import CallContext
from .db import call_sync_policy, run_in_worker
from .handshake import authenticate
from .protocol.session import CallKind
from .registry import StreamMethod
from .switches import ensure_enabled
from .views import StreamView

logger = logging.getLogger("streaming_app")


class Outlet(Protocol):
    async def wait(self) -> None:
        """Return when one more item may be sent (flow control)."""

    async def send(self, item: Any) -> None:
        """Send one item of a server stream."""

    async def ready(self, eid: str, recovered: bool | None) -> None:
        """Announce a resumable stream's position (uses no credit)."""


async def prepare(method: StreamMethod, ctx: CallContext, args: dict[str, Any]) -> tuple[StreamView, dict[str, Any]]:
    """Check the endpoint is on, permissions and arguments; return the view and the handler's kwargs."""
    await ensure_enabled(method)
    view = method.view_class(ctx, method)
    if view.authentication_classes is not None:
        view.request = ctx.request = await _authenticate_for_view(view, ctx)
    await call_sync_policy(view.initial)
    serializer_class = view.get_arguments_serializer_class()
    if serializer_class is not None:
        kwargs = await call_sync_policy(_validate_with_serializer, view, serializer_class, args)
    else:
        kwargs = method.arguments.validate(args)
    return view, kwargs


async def _authenticate_for_view(view: StreamView, ctx: CallContext) -> Request:
    """The request as the view's own authentication classes see it.

    The connection was authenticated once, at the handshake, with the default
    classes; a view that names others re-authenticates that same handshake
    with them, once per connection (the result is cached on it).
    """
    authenticators = view.get_authenticators()
    http_request = ctx.request._request
    cache = http_request.__dict__.setdefault("_streaming_view_requests", {})
    key = tuple(type(a) for a in authenticators)
    request = cache.get(key)
    if request is None:
        request = Request(http_request, authenticators=authenticators)
        try:
            await database_sync_to_async(authenticate)(request)
        except drf_exceptions.AuthenticationFailed as exc:
            raise exceptions.Unauthenticated(str(exc.detail)) from None
        cache[key] = request
    return request


def _validate_with_serializer(view: StreamView, serializer_class: type, args: dict[str, Any]) -> dict[str, Any]:
    serializer = serializer_class(data=args, context=view.get_serializer_context())
    if not serializer.is_valid():
        raise invalid_arguments(_plain(serializer.errors))
    return dict(serializer.validated_data)


def _plain(errors: Any) -> Any:
    """DRF's ErrorDetail strings and ReturnDicts as plain JSON values."""
    if isinstance(errors, dict):
        return {str(key): _plain(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [_plain(value) for value in errors]
    return str(errors)


async def invoke(
    method: StreamMethod,
    view: StreamView,
    ctx: CallContext,
    kwargs: dict[str, Any],
    outlet: Outlet,
    incoming: AsyncIterator[Any] | None = None,
) -> Any:
    """Run the handler to completion; return the call's result (``end``'s ``d``)."""
    ctx._outlet = outlet
    try:
        return await _run_handler(method, view, ctx, kwargs, outlet, incoming)
    finally:
        ctx.release()  # the topics it subscribed to


async def _run_handler(
    method: StreamMethod,
    view: StreamView,
    ctx: CallContext,
    kwargs: dict[str, Any],
    outlet: Outlet,
    incoming: AsyncIterator[Any] | None,
) -> Any:
    func = method.function
    kind = method.kind
    if kind is CallKind.UNARY:
        if method.is_async:
            return await func(view, ctx, **kwargs)
        return await run_in_worker(func, view, ctx, **kwargs)
    if kind is CallKind.CLIENT_STREAM:
        return await func(view, ctx, incoming, **kwargs)
    if kind is CallKind.SERVER_STREAM:
        stream = func(view, ctx, **kwargs)
    else:
        stream = func(view, ctx, incoming, **kwargs)
    try:
        while True:
            # Credit first: with none left the generator stays parked at its yield.
            await outlet.wait()
            try:
                item = await stream.__anext__()
            except StopAsyncIteration:
                break
            await outlet.send(item)
    finally:
        await stream.aclose()
    return ctx.result


def effective_timeout(requested: float | None) -> float | None:
    """A call's timeout in seconds: the requested one or DEFAULT_TIMEOUT, capped by MAX_TIMEOUT."""
    timeout = requested if requested is not None else streaming_settings.DEFAULT_TIMEOUT
    if timeout is not None and streaming_settings.MAX_TIMEOUT is not None:
        timeout = min(timeout, streaming_settings.MAX_TIMEOUT)
    return timeout


def as_stream_error(exc: BaseException, ctx: CallContext | None = None) -> exceptions.StreamError:
    """The error a client is told about for an exception a call raised.

    Django's and DRF's own exceptions map to their obvious codes; anything
    unexpected is logged here, with its traceback, and becomes ``internal``
    with a message that reveals nothing of it.
    """
    if isinstance(exc, exceptions.StreamError):
        return exc
    if isinstance(exc, drf_exceptions.APIException):
        return _from_drf(exc)
    if isinstance(exc, (Http404, django_exceptions.ObjectDoesNotExist)):
        return exceptions.NotFound()
    if isinstance(exc, django_exceptions.PermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, django_exceptions.ValidationError):
        if hasattr(exc, "error_dict"):
            return invalid_arguments({k: [str(m) for m in v] for k, v in exc.message_dict.items()})
        return exceptions.InvalidArgument("; ".join(exc.messages))
    logger.error(
        "Unhandled exception in streaming method %s (call %s)",
        ctx.method if ctx else "?",
        ctx.call_id if ctx else "?",
        exc_info=exc,
    )
    return exceptions.Internal()


_DRF_CODES: list[tuple[type[drf_exceptions.APIException], type[exceptions.StreamError]]] = [
    (drf_exceptions.ValidationError, exceptions.InvalidArgument),
    (drf_exceptions.ParseError, exceptions.InvalidArgument),
    (drf_exceptions.NotAuthenticated, exceptions.Unauthenticated),
    (drf_exceptions.AuthenticationFailed, exceptions.Unauthenticated),
    (drf_exceptions.PermissionDenied, exceptions.PermissionDenied),
    (drf_exceptions.NotFound, exceptions.NotFound),
    (drf_exceptions.Throttled, exceptions.ResourceExhausted),
    (drf_exceptions.MethodNotAllowed, exceptions.Unimplemented),
]


def _from_drf(exc: drf_exceptions.APIException) -> exceptions.StreamError:
    for drf_class, stream_class in _DRF_CODES:
        if isinstance(exc, drf_class):
            if isinstance(exc, drf_exceptions.ValidationError):
                detail = _plain(exc.detail)
                errors = detail if isinstance(detail, dict) else {"non_field_errors": detail}
                return invalid_arguments(errors)
            return stream_class(str(exc.detail))
    return exceptions.Unknown(str(exc.detail)) if exc.status_code < 500 else exceptions.Internal()
