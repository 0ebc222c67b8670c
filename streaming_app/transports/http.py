"""The HTTP transport: unary calls as JSON, server streams as SSE or NDJSON.

``GET <prefix>/<namespace>.<method>?arg=value`` or ``POST`` with a JSON
object body calls a declared method, for clients that cannot or will not open
a WebSocket (``curl``, a browser ``EventSource``, proxies and gateways). The
view checks what it can before the response starts, and answers those
problems with an HTTP status and ``{"error": {"code", "message", "details"}}``:

1. the method exists (404), takes no items from the client (405: client-stream
   and bidirectional methods need the WebSocket) and has a media type the
   ``Accept`` header allows (406);
2. the query string can be read and names no parameter twice (400);
3. authentication with the default classes, as for a WebSocket handshake
   (presented but invalid credentials: 401; CSRF, for a session-authenticated
   POST: 403);
4. the reserved query parameters and the arguments (400);
5. the view's permissions and argument validation (:func:`.invocation.prepare`).

A unary call then runs in the request and answers ``{"d": <result>}`` or its
error with the HTTP status of the error's code. A server stream answers 200
and runs its handler in a task of its own that hands encoded records to the
response body through a small buffer; whatever happens from then on,
including the handler's errors and the deadline, is told in-band, and every
stream ends with an ``end`` or ``error`` record. A client that disconnects
cancels the request; the body's ``finally`` cancels the handler and waits
(bounded) for its ``finally`` blocks.

The framing of each format lives in :mod:`.protocol.http`; the call itself
is run by :mod:`.invocation`, exactly as the WebSocket consumer runs it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Any, AsyncIterator, Awaitable, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.cache import patch_vary_headers
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework.parsers import BaseParser
from rest_framework.request import Request

from .. import exceptions
from ..arguments import invalid_arguments
from ..conf import streaming_settings
from ..context import CallContext
from ..db import reaper
from ..encoding import json_default
from ..events import Event
from ..gc_tuning import tune_for_serving
from ..handshake import authenticate
from ..invocation import as_stream_error, effective_timeout, invoke, prepare
from ..monitor import OpenCall, monitor
from ..protocol.codes import ErrorCode
from ..protocol.http import (
    JSON,
    NDJSON,
    SSE,
    NDJSONRecords,
    SSERecords,
    error_body,
    negotiate,
    parse_timeout,
    result_body,
)
from ..protocol.session import CallKind
from ..registry import StreamMethod, registry
from ..views import StreamView

logger = logging.getLogger("streaming_app")

T = TypeVar("T")

# Query parameters that are never method arguments.
RESERVED_PARAMS = frozenset({"timeout", "last_event_id", "ticket"})

# A stream's handler runs ahead of the response body by at most this much
# before it is held at its ``yield`` (records, and characters of them), and the
# body writes at most this much as one chunk.
BUFFER_RECORDS = 256
BUFFER_BYTES = 64 * 1024

# Seconds a stopped stream waits for its handler's ``finally`` blocks.
STOP_GRACE = 10.0


class _NoFormData(BaseParser):
    """Lets DRF's CSRF check read ``request.POST`` of a JSON call: there is no form data.

    The check looks for a ``csrfmiddlewaretoken`` form field before the
    ``X-CSRFToken`` header; a DRF request without parsers would refuse the
    body's media type instead. The body itself is read by the view.
    """

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> dict[str, Any]:
        return {}


class CallRefused(Exception):
    """A call refused before it began, with an HTTP status its error code does not give."""

    def __init__(self, error: exceptions.StreamError, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.status = status
        self.headers = headers or {}


def error_response(
    error: exceptions.StreamError, status: int | None = None, headers: dict[str, str] | None = None
) -> HttpResponse:
    """``{"error": {...}}`` with the HTTP status of its code (or ``status``)."""
    try:
        body = error_body(error.code, error.message, error.details, json_default)
    except (TypeError, ValueError):
        logger.exception("streaming_app: the details of a %s error cannot be encoded", error.code)
        body = error_body(error.code, error.message)
    response = HttpResponse(body, status=status or error.code.http_status, content_type=JSON)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


async def within_deadline(ctx: CallContext, when: float | None, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``, interrupted at loop time ``when`` with ``deadline_exceeded``."""
    if when is None:
        return await awaitable
    try:
        async with asyncio.timeout_at(when) as scope:
            return await awaitable
    except TimeoutError:
        if not scope.expired():
            raise  # the handler's own TimeoutError: an internal error like any other
        ctx.mark_cancelled()
        raise exceptions.DeadlineExceeded() from None


class HttpStream:
    """One server stream: the handler's task, its buffer, and the response body.

    It is the :class:`~streaming_app.invocation.Outlet` of the call: ``send``
    encodes an item into the buffer, ``wait`` holds the handler at its
    ``yield`` while the buffer is full. The body generator drains the buffer
    one chunk at a time and sends a keepalive when nothing was sent for
    ``keepalive`` seconds.
    """

    def __init__(
        self,
        method: StreamMethod,
        view: StreamView,
        ctx: CallContext,
        kwargs: dict[str, Any],
        records: SSERecords | NDJSONRecords,
        deadline: float | None,
        keepalive: float,
    ) -> None:
        self.method = method
        self.view = view
        self.ctx = ctx
        self.kwargs = kwargs
        self.records = records
        self.deadline = deadline
        self.keepalive = keepalive
        self.task: asyncio.Task[None] | None = None
        self._buffer: list[str] = []
        self._buffered_bytes = 0
        self._finished = False
        self._data = asyncio.Event()
        self._room = asyncio.Event()
        self.live: OpenCall | None = None
        self.stop_error: exceptions.StreamError | None = None  # set by terminate()
        self.outcome = ("disconnected", "")  # how the history records it, unless the handler ends first

    # -- Outlet ---------------------------------------------------------------

    async def wait(self) -> None:
        while self.full:
            self._room.clear()
            await self._room.wait()

    @property
    def full(self) -> bool:
        """True while the handler is held because the client reads slower than it produces."""
        return len(self._buffer) >= BUFFER_RECORDS or self._buffered_bytes >= BUFFER_BYTES

    async def send(self, item: Any) -> None:
        if type(item) is Event:
            record = self.records.next_json(item.encode(json_default), item.eid)
        else:
            record = self.records.next(item)
        self._buffer.append(record)
        self._buffered_bytes += len(record)
        self._data.set()
        live = self.live
        if live is not None:
            live.items_out += 1
            live.bytes_out += len(record)

    async def ready(self, eid: str, recovered: bool | None) -> None:
        record = self.records.ready(eid, recovered)
        self._buffer.append(record)
        self._buffered_bytes += len(record)
        self._data.set()

    # -- the handler's task -------------------------------------------------------

    async def produce(self) -> None:
        ctx = self.ctx
        try:
            result = await within_deadline(ctx, self.deadline, invoke(self.method, self.view, ctx, self.kwargs, self))
            record = self.records.end(result)
            self.outcome = ("completed", "")
        except asyncio.CancelledError:
            if self.stop_error is not None:  # terminate(): told to the client in-band
                record = self._error_record(self.stop_error)
                self.outcome = ("terminated", str(self.stop_error.code))
            elif _being_cancelled():
                raise  # stop(): the client left, nothing more is sent
            else:
                record = self._error_record(exceptions.Cancelled())  # raised by the handler itself
                self.outcome = ("error", "cancelled")
        except Exception as exc:
            error = as_stream_error(exc, ctx)
            record = self._error_record(error)
            self.outcome = failure_outcome(error)
        finally:
            reaper.call_finished(streaming_settings.DB_CONNECTION_CHECK_INTERVAL)
        self._buffer.append(record)
        self._finished = True
        self._data.set()

    def terminate(self, error: exceptions.StreamError) -> None:
        """End the stream with ``error`` (an administrator's command); its handler's ``finally`` runs."""
        task = self.task
        if task is None or task.done() or self.stop_error is not None:
            return
        self.stop_error = error
        self.ctx.mark_cancelled()
        task.cancel()

    def _error_record(self, error: exceptions.StreamError) -> str:
        try:
            return self.records.error(error.code, error.message, error.details)
        except (TypeError, ValueError):
            logger.exception("streaming_app: the details of a %s error cannot be encoded", error.code)
            return self.records.error(error.code, error.message)

    async def stop(self) -> None:
        """Cancel the handler if it still runs; wait (bounded) for its ``finally`` blocks."""
        task = self.task
        if task is None or task.done():
            return
        self.ctx.mark_cancelled()
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=STOP_GRACE)
        if not done:
            logger.warning("streaming_app: %s did not stop within %ss of its client leaving", self.method.name, STOP_GRACE)

    # -- the response body ------------------------------------------------------------

    async def body(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            # The SSE retry hint, or b"" for NDJSON: daphne writes the headers only with
            # the first body message, so this one sends them now, not with the first item.
            yield self.records.opening().encode()
            tune_for_serving()
            self.task = loop.create_task(self.produce(), name=f"streaming_app http {self.method.name}")
            self.live = monitor.opened(
                self.method,
                self.ctx,
                terminate=self.terminate,
                waiting=lambda: self.full,
                transport="sse" if isinstance(self.records, SSERecords) else "ndjson",
            )
            last_sent = loop.time()
            while True:
                if self._buffer:
                    chunk = "".join(self._buffer)
                    self._buffer.clear()
                    self._buffered_bytes = 0
                    self._room.set()
                    yield chunk.encode()
                    last_sent = loop.time()
                    continue
                if self._finished:
                    return
                idle = last_sent + self.keepalive - loop.time()
                if idle <= 0:
                    yield self.records.keepalive().encode()
                    last_sent = loop.time()
                    continue
                self._data.clear()
                try:
                    async with asyncio.timeout(idle):
                        await self._data.wait()
                except TimeoutError:
                    pass
        finally:
            await self.stop()
            monitor.closed(self.live, *self.outcome)


class StreamHTTPView(View):
    """Serves the unary and server-stream methods of a registry over HTTP.

    Included by ``streaming_app.urls`` as ``<prefix>/<namespace>.<method>``.
    Policies follow DRF's pattern: class attributes with ``get_*()`` hooks.
    """

    registry = registry
    http_method_names = ["get", "post"]
    unary_media_types = [JSON]
    stream_media_types = [SSE, NDJSON]  # the first is the default for "*/*"

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # CSRF is enforced by SessionAuthentication, for session-authenticated
        # requests only, as DRF does: anonymous and bearer calls need no token.
        return csrf_exempt(super().as_view(**initkwargs))

    async def get(self, request: HttpRequest, method: str) -> HttpResponse:
        return await self.call(request, method)

    async def post(self, request: HttpRequest, method: str) -> HttpResponse:
        return await self.call(request, method)

    async def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        allowed = [name.upper() for name in self.http_method_names]
        error = exceptions.Unimplemented(
            f"Method {request.method} is not allowed; call with {' or '.join(allowed)}.", {"allow": allowed}
        )
        return self.finalize(error_response(error, 405, {"Allow": ", ".join(allowed)}))

    # -- policies --------------------------------------------------------------------

    def get_authenticators(self) -> list[Any]:
        return [cls() for cls in streaming_settings.DEFAULT_AUTHENTICATION_CLASSES]

    def get_records(self, media_type: str) -> SSERecords | NDJSONRecords:
        if media_type == SSE:
            return SSERecords(streaming_settings.SSE_RETRY, json_default)
        return NDJSONRecords(json_default)

    # -- the call ----------------------------------------------------------------------

    async def call(self, request: HttpRequest, name: str) -> HttpResponse:
        received, loop_received = time.monotonic(), asyncio.get_running_loop().time()
        ctx: CallContext | None = None
        try:
            method = self.get_method(name)
            media_type = self.choose_media_type(request, method)
            query = self.single_values(request)  # before authentication reads ?ticket=
            drf_request = await self.authenticate(request)
            timeout = effective_timeout(self.requested_timeout(query))
            args = self.get_arguments(request, method, query)
            ctx = CallContext(
                call_id=1,
                method=method.name,
                kind=method.kind,
                request=drf_request,
                scope=getattr(request, "scope", {}),
                connection_id=secrets.token_hex(8),
                transport="http",
                deadline=None if timeout is None else received + timeout,
                resume=request.headers.get("Last-Event-ID") or query.get("last_event_id"),
            )
            loop_deadline = None if timeout is None else loop_received + timeout
            if method.kind is CallKind.UNARY:
                response = await self.unary(method, ctx, args, loop_deadline)
            else:
                response = await self.stream(method, ctx, args, media_type, loop_deadline)
        except asyncio.CancelledError:
            if _being_cancelled():  # the client left: Django cancels the request
                if ctx is not None:
                    ctx.mark_cancelled()
                raise
            response = error_response(exceptions.Cancelled())  # raised by the handler itself
        except CallRefused as refusal:
            response = error_response(refusal.error, refusal.status, refusal.headers)
        except Exception as exc:
            response = self.error_response(as_stream_error(exc, ctx), request)
        return self.finalize(response)

    def finalize(self, response: HttpResponse) -> HttpResponse:
        patch_vary_headers(response, ["Accept"])
        return response

    def error_response(self, error: exceptions.StreamError, request: HttpRequest) -> HttpResponse:
        headers = {}
        if error.code.http_status == 401:
            challenges = [a.authenticate_header(request) for a in self.get_authenticators()]
            challenges = [c for c in challenges if c]
            if challenges:
                headers["WWW-Authenticate"] = ", ".join(challenges)
        return error_response(error, headers=headers)

    def get_method(self, name: str) -> StreamMethod:
        method = self.registry.get(name)
        if method is None:
            raise exceptions.NotFound(f"Unknown method {name!r}.", {"method": name})
        if method.kind.client_streams:
            raise CallRefused(
                exceptions.Unimplemented(
                    f"{method.name} is a {method.kind} method: the client sends items, which only the "
                    "WebSocket transport carries.",
                    {"kind": str(method.kind), "transport": "websocket"},
                ),
                405,
                {"Allow": ""},
            )
        return method

    def choose_media_type(self, request: HttpRequest, method: StreamMethod) -> str:
        offers = self.unary_media_types if method.kind is CallKind.UNARY else self.stream_media_types
        accept = request.headers.get("Accept")
        media_type = negotiate(accept, offers)
        if media_type is None:
            raise CallRefused(
                exceptions.InvalidArgument(
                    f"{method.name} ({method.kind}) answers with {', '.join(offers)}, which Accept does not allow.",
                    {"accept": accept, "available": list(offers)},
                ),
                406,
            )
        return media_type

    async def authenticate(self, request: HttpRequest) -> Request:
        """A DRF request, authenticated now with the default classes, as a WebSocket handshake is."""
        drf_request = Request(request, parsers=[_NoFormData()], authenticators=self.get_authenticators())
        try:
            await database_sync_to_async(authenticate)(drf_request)
        except drf_exceptions.AuthenticationFailed as exc:
            raise exceptions.Unauthenticated(str(exc.detail)) from None
        return drf_request

    def single_values(self, request: HttpRequest) -> dict[str, str]:
        """The query parameters, each given once (a repeated one is an error)."""
        try:
            lists = list(request.GET.lists())
        except SuspiciousOperation as exc:  # e.g. more than DATA_UPLOAD_MAX_NUMBER_FIELDS
            raise exceptions.InvalidArgument(f"Unreadable query string: {exc}") from None
        repeated = {name: ["Given more than once."] for name, values in lists if len(values) > 1}
        if repeated:
            raise invalid_arguments(repeated)
        return {name: values[0] for name, values in lists}

    def requested_timeout(self, query: dict[str, str]) -> float | None:
        text = query.get("timeout")
        if text is None:
            return None
        try:
            return parse_timeout(text)
        except ValueError:
            raise invalid_arguments({"timeout": ["Must be a positive number of seconds."]}) from None

    def get_arguments(self, request: HttpRequest, method: StreamMethod, query: dict[str, str]) -> dict[str, Any]:
        params = {name: value for name, value in query.items() if name not in RESERVED_PARAMS}
        if request.method == "GET":
            return method.arguments.decode_query(params)
        if params:
            raise invalid_arguments({name: ["A POST takes its arguments in the JSON body."] for name in params})
        return self.body_arguments(request)

    def body_arguments(self, request: HttpRequest) -> dict[str, Any]:
        limit = streaming_settings.MAX_FRAME_BYTES
        if settings.DATA_UPLOAD_MAX_MEMORY_SIZE is not None:  # Django refuses to read more
            limit = min(limit, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        too_large = exceptions.InvalidArgument(f"The body is larger than {limit} bytes.", {"max_bytes": limit})
        try:
            declared = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            raise too_large
        try:
            body = request.body
        except RequestDataTooBig:
            raise too_large from None
        if len(body) > limit:
            raise too_large
        if not body.strip():
            return {}
        try:
            args = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        except UnicodeDecodeError:
            raise exceptions.InvalidArgument("The body is not UTF-8.") from None
        except (ValueError, RecursionError):
            raise exceptions.InvalidArgument("The body is not valid JSON.") from None
        if type(args) is not dict:
            raise exceptions.InvalidArgument("The body must be a JSON object of arguments.")
        return args

    async def unary(self, method: StreamMethod, ctx: CallContext, args: dict[str, Any], deadline: float | None) -> HttpResponse:
        """Run the handler in a task of its own, listed in the admin, which can terminate it."""
        task = asyncio.ensure_future(within_deadline(ctx, deadline, self._run_unary(method, ctx, args)))
        terminated: list[exceptions.StreamError] = []

        def terminate(error: exceptions.StreamError) -> None:
            if not task.done() and not terminated:
                terminated.append(error)
                ctx.mark_cancelled()
                task.cancel()

        live = monitor.opened(method, ctx, terminate=terminate, waiting=lambda: False)
        outcome = ("disconnected", "")  # the client left, unless the handler ends first
        try:
            try:
                body = result_body(await task, json_default)
            except asyncio.CancelledError:
                if terminated and not _being_cancelled():
                    outcome = ("terminated", str(terminated[0].code))
                    raise terminated[0] from None
                if not _being_cancelled():
                    outcome = ("error", "cancelled")  # raised by the handler itself
                raise
            except Exception as exc:
                error = as_stream_error(exc, ctx)
                outcome = failure_outcome(error)
                raise error
            outcome = ("completed", "")
            if live is not None:
                live.bytes_out += len(body)
            return HttpResponse(body, content_type=JSON)
        finally:
            monitor.closed(live, *outcome)
            reaper.call_finished(streaming_settings.DB_CONNECTION_CHECK_INTERVAL)

    async def _run_unary(self, method: StreamMethod, ctx: CallContext, args: dict[str, Any]) -> Any:
        view, kwargs = await prepare(method, ctx, args)
        return await invoke(method, view, ctx, kwargs, None)  # type: ignore[arg-type]  # no items to send

    async def stream(
        self, method: StreamMethod, ctx: CallContext, args: dict[str, Any], media_type: str, deadline: float | None
    ) -> HttpResponse:
        view, kwargs = await within_deadline(ctx, deadline, prepare(method, ctx, args))
        records = self.get_records(media_type)
        stream = HttpStream(
            method, view, ctx, kwargs, records, deadline, streaming_settings.HTTP_KEEPALIVE_INTERVAL
        )
        response = StreamingHttpResponse(stream.body(), content_type=records.content_type)
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each chunk on at once
        return response


def failure_outcome(error: exceptions.StreamError) -> tuple[str, str]:
    """How the admin's history records an HTTP call that failed with ``error``: end reason, error code."""
    return ("deadline" if error.code is ErrorCode.DEADLINE_EXCEEDED else "error", str(error.code))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _being_cancelled() -> bool:
    """Whether the current task was asked to stop, as opposed to code raising CancelledError."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
