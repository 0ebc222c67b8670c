"""Running one call of a declared method, whatever the transport.

A transport parses what arrives, builds the :class:`~.context.CallContext`
and a :class:`CallWriter` (how items, ``ready`` and the terminal frame are
written in its framing), and hands both to a :class:`CallRunner`. The runner
owns everything a call is, the same on every transport:

1. **prepare**: the endpoint is on, the view's authentication, permissions
   and argument validation (:func:`prepare`);
2. **invoke**: the handler, by kind, with items pulled only when the writer
   has room or credit (:meth:`CallRunner.invoke`);
3. **deadline**: a timer that stops the call with ``deadline_exceeded``;
4. **stop reason**: cancel, disconnect, terminate, revocation or abort
   interrupt the handler (its ``finally`` blocks run) with an :class:`EndReason`;
5. **outcome**: the reason and error code the history records, and the
   monitor's live counters;
6. **terminal frame**: ``end``, or ``error`` with its details, or without
   them when they cannot be encoded, so that every call that is not cancelled
   by its client ends with exactly one terminal frame.

Keeping this in one place is what keeps the transports from drifting apart:
before, each had its own copy, and only one of them had the encoding fallback.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any, AsyncIterator, Callable, Protocol

from channels.db import database_sync_to_async
from django.core import exceptions as django_exceptions
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.request import Request

from . import exceptions
from .arguments import invalid_arguments
from .conf import streaming_settings
from .context import CallContext
from .db import call_sync_policy, reaper, run_in_worker
from .handshake import authenticate
from .metrics import call_ended as count_call_ended
from .metrics import metrics
from .monitor import OpenCall, monitor
from .outcomes import EndReason
from .protocol.codes import ErrorCode
from .protocol.session import CallKind
from .registry import StreamMethod
from .switches import ensure_enabled
from .views import StreamView

logger = logging.getLogger("streaming_app")

# Seconds a stopped call waits for its handler's ``finally`` blocks.
STOP_GRACE = 10.0


class CallWriter(Protocol):
    """What a transport supplies: how one call's output is written in its framing.

    ``encode_end`` and ``encode_error`` may raise (a value JSON cannot encode,
    a frame over a limit); the runner turns that into the call's error, or
    retries an error without its details.
    """

    #: How the admin's live list names the transport (None: the context's).
    transport: str | None

    async def accept(self) -> None:
        """The call passed its checks and its handler starts now."""

    async def wait(self) -> None:
        """Return when one more item may be sent (credit, or room in a buffer)."""

    async def send(self, item: Any) -> int:
        """Write one item of a stream; return its size in characters, for the monitor."""

    async def ready(self, eid: str, recovered: bool | None) -> None:
        """Announce a resumable stream's position (uses no credit)."""

    def encode_end(self, result: Any) -> str:
        """The terminal frame of a call that completed with ``result``."""

    def encode_error(self, code: ErrorCode, message: str, details: dict[str, Any] | None) -> str:
        """The terminal frame of a call that failed."""

    async def finish(self, frame: str) -> None:
        """Write the call's terminal frame (a cancelled call has none).

        ``send`` and ``finish`` raise :class:`PeerGone` when the client can no
        longer be written to: the call then ends as ``disconnected``.
        """

    def waiting(self) -> bool:
        """True while the handler is held by flow control (shown in the admin)."""

    def forget(self) -> None:
        """The call is over, however it ended: drop what the transport keeps of it."""


class PeerGone(Exception):
    """A writer cannot write: the call's socket is closing or closed, and its client will read nothing more.

    Raised by a writer's ``send`` or ``finish`` when the server refuses the
    frame (daphne refuses one between the peer's close frame and the end of
    the TCP connection, before the transport hears of the disconnect). The
    call then ends as the client left, quietly: it is an expected end, not an
    error to log.
    """


def encode_error(encode: Callable[[ErrorCode, str, dict[str, Any] | None], str], error: exceptions.StreamError) -> str:
    """``error`` as a terminal frame, without its details if they cannot be encoded.

    A handler may put anything into ``details``; a value JSON cannot encode
    must not cost the call its terminal frame, so it is logged and dropped.
    """
    try:
        return encode(error.code, error.message, error.details)
    except (TypeError, ValueError):
        logger.exception("streaming_app: the details of a %s error cannot be encoded", error.code)
        return encode(error.code, error.message, None)


def effective_timeout(requested: float | None) -> float | None:
    """A call's timeout in seconds: the requested one or DEFAULT_TIMEOUT, capped by MAX_TIMEOUT."""
    timeout = requested if requested is not None else streaming_settings.DEFAULT_TIMEOUT
    if timeout is not None and streaming_settings.MAX_TIMEOUT is not None:
        timeout = min(timeout, streaming_settings.MAX_TIMEOUT)
    return timeout


def call_deadline(requested: float | None, received: float) -> float | None:
    """The ``time.monotonic()`` deadline of a call received at ``received`` (None: no deadline)."""
    timeout = effective_timeout(requested)
    return None if timeout is None else received + timeout


class CallRunner:
    """Runs one call in a task of its own, from its checks to its terminal frame.

    ``incoming`` is the client's half (client-stream and bidirectional
    calls), read by the transport. ``close_connection`` closes the call's
    whole connection, for the admin's "terminate connection" (WebSocket only).
    """

    #: The calls running in this process, whatever their transport (a drain waits for them).
    running: set[CallRunner] = set()

    def __init__(
        self,
        method: StreamMethod,
        ctx: CallContext,
        args: dict[str, Any],
        writer: CallWriter,
        *,
        incoming: AsyncIterator[Any] | None = None,
        close_connection: Callable[[], None] | None = None,
    ) -> None:
        self.method = method
        self.ctx = ctx
        self.args = args
        self.writer = writer
        self.incoming = incoming
        self.close_connection = close_connection
        self.task: asyncio.Task[None] | None = None
        self.live: OpenCall | None = None
        self.stop_reason: EndReason | None = None
        self.stop_error: exceptions.StreamError | None = None
        self.error: exceptions.StreamError | None = None  # what the call failed with, once it has
        self.reason = EndReason.ERROR  # what the history says, unless the call ends otherwise
        self._timer: asyncio.TimerHandle | None = None
        self._running = False  # the task has begun: a stop before that must not cancel it unstarted
        self.items_sent = 0  # items of the stream written so far (streaming_app.metrics reads it)
        self.started_at = 0.0
        self._metered = False

    # -- control ------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Start the call's task, its deadline timer and its entry in the admin's live list."""
        ctx = self.ctx
        loop = asyncio.get_running_loop()
        self.started_at = time.monotonic()
        CallRunner.running.add(self)
        if streaming_settings.METRICS:
            self._metered = True
            metrics.call_started(self)
        self.live = monitor.opened(
            self.method,
            ctx,
            terminate=functools.partial(self.stop, EndReason.TERMINATED),
            waiting=self.writer.waiting,
            close_connection=self.close_connection,
            transport=self.writer.transport,
        )
        if ctx.deadline is not None:
            delay = max(0.0, ctx.deadline - time.monotonic())
            self._timer = loop.call_later(delay, self.stop, EndReason.DEADLINE, exceptions.DeadlineExceeded())
        ctx.on_abort = functools.partial(self.stop, EndReason.ERROR)
        ctx.announce = self.writer.ready
        self.task = loop.create_task(
            self.run(), name=f"streaming_app {ctx.transport} {self.method.name}#{ctx.call_id}"
        )
        return self.task

    def stop(self, reason: EndReason, error: exceptions.StreamError | None = None) -> None:
        """Interrupt the handler; its ``finally`` blocks run as the task unwinds.

        The call then ends with ``error``, or silently without one (the
        client cancelled or left). Only the first stop counts. A task that
        has not begun is not cancelled (its ``finally`` would never run, and
        the call would never be accounted for): it sees the stop as it begins.
        """
        task = self.task
        if self.stop_reason is not None or task is None or task.done():
            return
        self.stop_reason = reason
        self.stop_error = error
        self.ctx.mark_cancelled()
        if self._running:
            task.cancel()

    async def stop_and_wait(self, reason: EndReason, grace: float = STOP_GRACE) -> None:
        """:meth:`stop`, then wait (at most ``grace`` seconds) for the handler's ``finally`` blocks."""
        task = self.task
        if task is None or task.done():
            return
        self.stop(reason)
        done, _ = await asyncio.wait([task], timeout=grace)
        if not done:
            logger.warning("streaming_app: %s did not stop within %ss", self.method.name, grace)

    def item_received(self, size: int) -> None:
        """Count one item of the client's half, ``size`` characters long, for the live list."""
        live = self.live
        if live is not None:
            live.items_in += 1
            live.bytes_in += size

    # -- the call's task ---------------------------------------------------------------

    async def run(self) -> None:
        ctx, writer = self.ctx, self.writer
        self._running = True
        try:
            error: exceptions.StreamError
            try:
                if self.stop_reason is not None:
                    raise asyncio.CancelledError  # stopped before it began
                view, kwargs = await prepare(self.method, ctx, self.args)
                await writer.accept()
                result = await self.invoke(view, kwargs)
                frame = writer.encode_end(result)
            except asyncio.CancelledError:
                if self.stop_reason is None:
                    if _being_cancelled():  # not by this runner: the loop is going away
                        self.reason = EndReason.DISCONNECTED
                        raise
                    error = exceptions.Cancelled()  # raised by the handler itself
                elif self.stop_error is None:
                    self.reason = self.stop_reason
                    return  # cancelled or disconnected: nothing more is sent
                else:
                    self.reason, error = self.stop_reason, self.stop_error
            except PeerGone:  # an item found the socket closing: the client left
                self.reason = EndReason.DISCONNECTED
                return
            except Exception as exc:
                error = as_stream_error(exc, ctx)
            else:
                self.reason = EndReason.COMPLETED
                await writer.finish(frame)
                if self.live is not None:
                    self.live.bytes_out += len(frame)
                return
            self.error = error
            if self.reason is EndReason.ERROR and error.code is ErrorCode.DEADLINE_EXCEEDED:
                self.reason = EndReason.DEADLINE
            await writer.finish(encode_error(writer.encode_error, error))
        except PeerGone:  # the terminal frame found the socket closing, or closed
            self._not_told()
        except asyncio.CancelledError:  # stopped while the terminal frame waited for the socket
            self._not_told()
            if self.stop_reason is None:
                raise  # not by this runner: the loop is going away
        except Exception:
            logger.exception("streaming_app could not end call %s#%s", self.method.name, ctx.call_id)
        finally:
            if self._timer is not None:
                self._timer.cancel()
            writer.forget()
            CallRunner.running.discard(self)
            if self._metered:
                count_call_ended(self)
            monitor.closed(self.live, self.reason, "" if self.error is None else str(self.error.code))
            reaper.call_finished(streaming_settings.DB_CONNECTION_CHECK_INTERVAL)

    def _not_told(self) -> None:
        """The terminal frame was not sent: a call that completed ended as it was stopped, or as its client left.

        Its client was never told it completed, so the history must not say
        so. A call that failed keeps its error.
        """
        if self.reason is EndReason.COMPLETED:
            self.reason = self.stop_reason or EndReason.DISCONNECTED
            self.error = self.stop_error

    async def invoke(self, view: StreamView, kwargs: dict[str, Any]) -> Any:
        """Run the handler to completion; return the call's result (``end``'s ``d``)."""
        try:
            return await self._run_handler(view, kwargs)
        finally:
            self.ctx.release()  # the topics it subscribed to

    async def _run_handler(self, view: StreamView, kwargs: dict[str, Any]) -> Any:
        method, ctx = self.method, self.ctx
        func = method.function
        kind = method.kind
        if kind is CallKind.UNARY:
            if method.is_async:
                return await func(view, ctx, **kwargs)
            return await run_in_worker(func, view, ctx, **kwargs)
        if kind is CallKind.CLIENT_STREAM:
            return await func(view, ctx, self.incoming, **kwargs)
        if kind is CallKind.SERVER_STREAM:
            stream = func(view, ctx, **kwargs)
        else:
            stream = func(view, ctx, self.incoming, **kwargs)
        writer, live = self.writer, self.live
        try:
            while True:
                # Credit first: with none left the generator stays parked at its yield.
                await writer.wait()
                try:
                    item = await stream.__anext__()
                except StopAsyncIteration:
                    break
                size = await writer.send(item)
                self.items_sent += 1
                if live is not None:
                    live.items_out += 1
                    live.bytes_out += size
        finally:
            await stream.aclose()
        return ctx.result


def _being_cancelled() -> bool:
    """Whether the current task was asked to stop, as opposed to code raising CancelledError."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


# -- prepare: the checks before the handler ---------------------------------------------------


async def prepare(method: StreamMethod, ctx: CallContext, args: dict[str, Any]) -> tuple[StreamView, dict[str, Any]]:
    """Check the endpoint is on, permissions and arguments; return the view and the handler's kwargs."""
    await ensure_enabled(method)
    view = method.view_class(ctx, method)
    view.kwargs = args
    ctx.authorize_topic = functools.partial(call_sync_policy, view.check_topic_permissions)
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
    cache: dict[tuple[type, ...], Request] = http_request.__dict__.setdefault("_streaming_view_requests", {})
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


# -- error mapping ------------------------------------------------------------------------------


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
            wait = getattr(exc, "wait", None)  # Throttled's seconds until a retry (untyped in the stubs)
            if isinstance(exc, drf_exceptions.Throttled) and wait is not None:
                return exceptions.ResourceExhausted(str(exc.detail), {"retry_after": wait})
            return stream_class(str(exc.detail))
    return exceptions.Unknown(str(exc.detail)) if exc.status_code < 500 else exceptions.Internal()
