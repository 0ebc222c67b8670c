"""The HTTP transport: unary calls as JSON, server streams as SSE or NDJSON.

``GET <prefix>/<namespace>.<method>?arg=value`` or ``POST`` with a JSON
object body calls a declared method, for clients that cannot or will not open
a WebSocket (``curl``, a browser ``EventSource``, proxies and gateways). The
view checks what it can before the response starts, and answers those
problems with an HTTP status and ``{"error": {"code", "message", "details"}}``:

1. the method exists (404), takes no items from the client (405: client-stream
   and bidirectional methods need the WebSocket), is called with a verb it
   allows (405 ``Allow: POST`` for a GET of a unary method not declared
   ``safe``: see docs/security.md) and has a media type the ``Accept`` header
   allows (406);
2. the query string can be read and names no parameter twice (400);
3. authentication with the default classes, as for a WebSocket handshake
   (presented but invalid credentials: 401; CSRF, for a session-authenticated
   POST: 403);
4. the reserved query parameters and the arguments (400);
5. the view's permissions and argument validation (:func:`streaming_app.runner.prepare`).

The call itself is run by a :class:`~streaming_app.runner.CallRunner` in a
task of its own, exactly as on the WebSocket; this module only writes its
output. A unary call answers ``{"d": <result>}`` or its error with the HTTP
status of the error's code (:class:`HttpUnary`). A server stream whose checks
(step 5) fail answers the same way; once they pass it answers 200 and its
handler hands encoded records to the response body through a small buffer
(:class:`HttpStream`); whatever happens from then on, including the handler's
errors and the deadline, is told in-band, and every stream ends with an
``end`` or ``error`` record. A client that disconnects cancels the request;
the view or the body's ``finally`` stops the call and waits (bounded) for its
handler's ``finally`` blocks.

The framing of each format lives in :mod:`streaming_app.protocol.http`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import secrets
import time
from typing import Any, AsyncIterator

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.cache import patch_vary_headers
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework.parsers import BaseParser
from rest_framework.request import Request

from .. import exceptions, sendbuffer
from ..arguments import invalid_arguments
from ..conf import streaming_settings
from ..context import CallContext
from ..drain import is_draining
from ..drain import unavailable as draining_error
from ..encoding import json_default
from ..events import Event
from ..gc_tuning import tune_for_serving
from ..handshake import DefaultAuthentication, authenticate
from ..outcomes import EndReason
from ..protocol import frames as wire
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
from ..registry import StreamMethod, registry, shown_name, unknown_method
from ..revocation import Credential, guard
from ..runner import CallRunner, as_stream_error, call_deadline, encode_error

logger = logging.getLogger("streaming_app")

# Query parameters that are never method arguments.
RESERVED_PARAMS = frozenset({"timeout", "last_event_id", "ticket"})

# A stream's handler runs ahead of the response body by at most this much
# before it is held at its ``yield`` (records, and characters of them), and the
# body writes at most this much as one chunk.
BUFFER_RECORDS = 256
BUFFER_BYTES = 64 * 1024


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
    error: exceptions.StreamError,
    status: int | None = None,
    headers: dict[str, str] | None = None,
    body: str | bytes | None = None,
) -> HttpResponse:
    """``{"error": {...}}`` (or ``body``, the runner's encoding of it) with the HTTP status of its code (or ``status``)."""
    if body is None:
        body = encode_error(_encode_error_body, error)
    response = HttpResponse(body, status=status or error.code.http_status, content_type=JSON)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _encode_error_body(code: ErrorCode, message: str, details: dict[str, Any] | None) -> str:
    return error_body(code, message, details, json_default)


class HttpUnary:
    """A unary call's output: the body of its one response (the runner's :class:`~streaming_app.runner.CallWriter`).

    ``response`` resolves with the body once the call has ended; its status
    comes from the error the runner recorded, if any.
    """

    transport: str | None = None  # the context's: "http"

    def __init__(self) -> None:
        # The body as bytes: encoded once, when the call ends, so a large result
        # is not held twice (as text and as bytes) while the client reads it.
        self.response: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()

    async def accept(self) -> None:
        pass

    async def wait(self) -> None:
        pass  # a unary call has no items

    def waiting(self) -> bool:
        return False

    async def send(self, item: Any) -> int:
        raise AssertionError("a unary call sends no items")

    async def ready(self, eid: str, recovered: bool | None) -> None:
        pass  # a JSON response has nowhere to say it

    def encode_end(self, result: Any) -> str:
        return result_body(result, json_default)

    def encode_error(self, code: ErrorCode, message: str, details: dict[str, Any] | None) -> str:
        return _encode_error_body(code, message, details)

    async def finish(self, frame: str) -> None:
        if not self.response.done():
            self.response.set_result(frame.encode())

    def forget(self) -> None:
        if not self.response.done():
            self.response.set_result(None)  # ended with nothing to say: the client left


class HttpStream(HttpUnary):
    """A server stream's output: records in a small buffer that the response body drains.

    Until the call passes its checks, it is a unary call that has not
    started: an error then is a JSON response with the error's status.
    After ``accept``, ``response`` resolves (with None) so that the view
    answers 200 with :meth:`body`, and everything is told in-band: ``send``
    encodes an item into the buffer, ``wait`` holds the handler at its
    ``yield`` while the buffer is full, the terminal record ends the body. The
    body sends a keepalive when nothing was sent for ``keepalive`` seconds.
    """

    def __init__(self, records: SSERecords | NDJSONRecords, keepalive: float) -> None:
        super().__init__()
        self.records = records
        self.transport = "sse" if isinstance(records, SSERecords) else "ndjson"
        self.keepalive = keepalive
        self.accepted = False
        self._buffer: list[str] = []
        self._buffered_bytes = 0
        self._finished = False
        self._data = asyncio.Event()
        self._room = asyncio.Event()

    async def accept(self) -> None:
        self.accepted = True
        self.response.set_result(None)

    async def wait(self) -> None:
        while self.full:
            self._room.clear()
            await self._room.wait()

    def waiting(self) -> bool:
        return self.full

    @property
    def full(self) -> bool:
        """True while the handler is held because the client reads slower than it produces."""
        return len(self._buffer) >= BUFFER_RECORDS or self._buffered_bytes >= BUFFER_BYTES

    async def send(self, item: Any) -> int:
        if type(item) is Event:
            record = self.records.next_json(item.encode(json_default), item.eid)
        else:
            record = self.records.next(item)
        self._append(record)
        return len(record)

    async def ready(self, eid: str, recovered: bool | None) -> None:
        self._append(self.records.ready(eid, recovered))

    def _append(self, record: str) -> None:
        self._buffer.append(record)
        self._buffered_bytes += len(record)
        self._data.set()

    def encode_end(self, result: Any) -> str:
        return self.records.end(result)

    def encode_error(self, code: ErrorCode, message: str, details: dict[str, Any] | None) -> str:
        if not self.accepted:
            return super().encode_error(code, message, details)
        return self.records.error(code, message, details)

    async def finish(self, frame: str) -> None:
        if not self.accepted:
            await super().finish(frame)
            return
        self._buffer.append(frame)
        self._finished = True
        self._data.set()

    async def body(self, runner: CallRunner) -> AsyncIterator[bytes]:
        """The response body: the buffer, one chunk at a time, until the terminal record."""
        loop = asyncio.get_running_loop()
        try:
            # The SSE retry hint, or b"" for NDJSON: daphne writes the headers only with
            # the first body message, so this one sends them now, not with the first item.
            yield self.records.opening().encode()
            tune_for_serving()
            # daphne writes each chunk at once, read or not: wait for the
            # client to take what is queued before handing over more.
            socket = sendbuffer.for_current_response()
            high = streaming_settings.SEND_BUFFER_HIGH
            last_sent = loop.time()
            while True:
                if socket is not None and socket.pending() > high:
                    await socket.below(high)
                    if not socket.open:
                        return  # the client left (the finally stops the call)
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
            await runner.stop_and_wait(EndReason.DISCONNECTED)  # the client left, if it has not ended


# Bytes of a large unary body handed to daphne at a time.
PACED_CHUNK = 64 * 1024


class PacedResponse(StreamingHttpResponse):
    """A unary call's large JSON body, handed to daphne as the client reads it.

    daphne writes a response body into the socket's buffer at once, read or
    not: twenty clients asking for a 16 MB result and reading nothing held
    three copies each. This body goes out in chunks, each once at most
    ``SEND_BUFFER_HIGH`` bytes wait for the client, and stops if it leaves.
    """

    def __init__(self, body: bytes) -> None:
        super().__init__(_paced(body), content_type=JSON)
        self["Content-Length"] = str(len(body))


async def _paced(body: bytes) -> AsyncIterator[bytes]:
    socket = sendbuffer.for_current_response()
    high = streaming_settings.SEND_BUFFER_HIGH
    view = memoryview(body)
    for start in range(0, len(body), PACED_CHUNK):
        if socket is not None and socket.pending() > high:
            await socket.below(high)
            if not socket.open:
                return  # the client left
        yield bytes(view[start:start + PACED_CHUNK])


class StreamingCallResponse(StreamingHttpResponse):
    """The 200 of a server stream; closing it stops the call, even if its body never started.

    Django closes a response (from a worker thread) after sending it, also
    when the client left before the first chunk, when the body's own
    ``finally`` never runs.
    """

    def __init__(self, stream: HttpStream, runner: CallRunner) -> None:
        super().__init__(stream.body(runner), content_type=stream.records.content_type)
        self._stop_call = functools.partial(
            asyncio.get_running_loop().call_soon_threadsafe, runner.stop, EndReason.DISCONNECTED
        )
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"  # nginx: pass each chunk on at once

    def close(self) -> None:
        super().close()
        try:
            self._stop_call()
        except RuntimeError:  # the loop is closed: so is the call
            pass


class GuardedStream:
    """A server stream over HTTP as the revocation guard watches it (:class:`~streaming_app.revocation.Guarded`).

    An HTTP request is authenticated once, when it arrives; a stream may then
    run for hours. Like a WebSocket, it must not outlive its credential: when
    the guard finds it revoked (a deleted token, a deactivated user, a changed
    password, an ended session), the call ends with the in-band
    ``unauthenticated`` error record, its handler's ``finally`` blocks run and
    the response ends. The stream is watched from its start to its end.
    """

    def __init__(self, credential: Credential, request: Request, runner: CallRunner) -> None:
        self.credential: Credential | None = credential
        self.request = request
        self.runner = runner

    def credential_revoked(self) -> None:
        self.runner.stop(EndReason.REVOKED, exceptions.Unauthenticated("The credentials of this stream were revoked."))

    def credential_refreshed(self, user: Any) -> None:
        self.request.user = user  # what the handler reads from its context from now on

    @classmethod
    def watch(cls, request: Request, runner: CallRunner, notices: int) -> None:
        """Hand a started stream to the guard until its task ends (anonymous: nothing to watch).

        ``notices`` is the guard's count before authentication: a notice that
        arrived in between may concern this user, so the credential is checked at once.
        """
        credential = Credential.of(request)
        task = runner.task
        if credential is None or task is None or task.done():
            return
        watched = cls(credential, request, runner)
        guard.add(watched)
        task.add_done_callback(lambda _: guard.discard(watched))
        if guard.notices != notices:
            asyncio.get_running_loop().create_task(guard.revalidate([watched]))


class StreamHTTPView(DefaultAuthentication, View):
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

    async def get(self, request: HttpRequest, method: str) -> HttpResponseBase:
        return await self.call(request, method)

    async def post(self, request: HttpRequest, method: str) -> HttpResponseBase:
        return await self.call(request, method)

    # The ignore: django-stubs declare View's handler as sync only, while Django
    # awaits the handlers of a view whose handlers are async (as its own does then).
    async def http_method_not_allowed(  # type: ignore[override]
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        allowed = [name.upper() for name in self.http_method_names]
        method = self.registry.get(str(kwargs.get("method", "")))
        if method is not None and method.http_methods:
            allowed = list(method.http_methods)  # POST alone for a unary method that is not safe
        error = exceptions.Unimplemented(
            f"Method {request.method} is not allowed; call with {' or '.join(allowed)}.", {"allow": allowed}
        )
        return self.finalize(error_response(error, 405, {"Allow": ", ".join(allowed)}))

    # -- policies --------------------------------------------------------------------

    def get_writer(self, method: StreamMethod, media_type: str) -> HttpUnary:
        """How the call's output is written: one JSON body, or a stream of records."""
        if method.kind is CallKind.UNARY:
            return HttpUnary()
        return HttpStream(self.get_records(media_type), streaming_settings.HTTP_KEEPALIVE_INTERVAL)

    def get_records(self, media_type: str) -> SSERecords | NDJSONRecords:
        if media_type == SSE:
            return SSERecords(streaming_settings.SSE_RETRY, json_default)
        return NDJSONRecords(json_default)

    # -- the call ----------------------------------------------------------------------

    async def call(self, request: HttpRequest, name: str) -> HttpResponseBase:
        received = time.monotonic()
        try:
            method = self.get_method(name)
            self.check_verb(request, method)
            if method.kind is not CallKind.UNARY and is_draining():
                raise draining_error()  # 503: it would be cut within DRAIN_TIMEOUT anyway
            media_type = self.choose_media_type(request, method)
            query = self.single_values(request)  # before authentication reads ?ticket=
            notices = guard.notices
            drf_request = await self.authenticate(request)
            deadline = call_deadline(self.requested_timeout(query), received)
            args = self.get_arguments(request, method, query)
            ctx = CallContext(
                call_id=1,
                method=method.name,
                kind=method.kind,
                request=drf_request,
                scope=getattr(request, "scope", {}),
                connection_id=secrets.token_hex(8),
                transport="http",
                deadline=deadline,
                resume=request.headers.get("Last-Event-ID") or query.get("last_event_id"),
            )
            writer = self.get_writer(method, media_type)
            runner = CallRunner(method, ctx, args, writer)
            runner.start()  # in a task of its own, listed in the admin, which can terminate it
            if method.kind is not CallKind.UNARY:
                GuardedStream.watch(drf_request, runner, notices)  # ended when its credential is revoked
            response = await self.respond(request, runner, writer)
        except CallRefused as refusal:
            response = error_response(refusal.error, refusal.status, refusal.headers)
        except Exception as exc:
            response = self.error_response(as_stream_error(exc), request)
        return self.finalize(response)

    async def respond(self, request: HttpRequest, runner: CallRunner, writer: HttpUnary) -> HttpResponseBase:
        """The response, once the call has ended or (a server stream) passed its checks."""
        try:
            body = await asyncio.shield(writer.response)
        except asyncio.CancelledError:  # the client left: Django cancels the request
            await runner.stop_and_wait(EndReason.DISCONNECTED)
            raise
        if isinstance(writer, HttpStream) and writer.accepted:
            return StreamingCallResponse(writer, runner)
        if body is None:  # stopped without a word, though not by its client
            return self.error_response(exceptions.Cancelled(), request)
        if runner.error is None:
            if len(body) > streaming_settings.SEND_BUFFER_HIGH:
                return PacedResponse(body)
            return HttpResponse(body, content_type=JSON)
        return self.error_response(runner.error, request, body)

    def finalize(self, response: HttpResponseBase) -> HttpResponseBase:
        patch_vary_headers(response, ["Accept"])
        return response

    def error_response(
        self, error: exceptions.StreamError, request: HttpRequest, body: str | bytes | None = None
    ) -> HttpResponse:
        headers = {}
        retry_after = (error.details or {}).get("retry_after") if error.code is ErrorCode.RESOURCE_EXHAUSTED else None
        if isinstance(retry_after, (int, float)) and not isinstance(retry_after, bool):
            headers["Retry-After"] = str(max(0, math.ceil(retry_after)))  # whole seconds, as DRF sends it
        if error.code.http_status == 401:
            # DRF hands authenticators its Request, never the HttpRequest it wraps.
            drf_request = Request(request)
            offered = [a.authenticate_header(drf_request) for a in self.get_authenticators()]
            challenges = [c for c in offered if c]
            if challenges:
                headers["WWW-Authenticate"] = ", ".join(challenges)
        return error_response(error, headers=headers, body=body)

    def get_method(self, name: str) -> StreamMethod:
        method = self.registry.get(name)
        if method is None:
            raise exceptions.NotFound(unknown_method(name), {"method": shown_name(name)})
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

    def check_verb(self, request: HttpRequest, method: StreamMethod) -> None:
        """405 for a GET of a unary method not declared ``safe``: a cross-site link must not change data.

        A GET carries the session cookie from any site and no CSRF token (the
        CSRF check applies to unsafe verbs only), so only methods without side
        effects may be reached by one; the others take POST, which the CSRF
        check covers.
        """
        allowed = method.http_methods
        if request.method not in allowed:
            raise CallRefused(
                exceptions.Unimplemented(
                    f"{method.name} has side effects and is called with {' or '.join(allowed)}, not {request.method}.",
                    {"allow": list(allowed)},
                ),
                405,
                {"Allow": ", ".join(allowed)},
            )

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
            args = wire.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise exceptions.InvalidArgument("The body is not UTF-8.") from None
        except (ValueError, RecursionError):
            raise exceptions.InvalidArgument("The body is not valid JSON.") from None
        if type(args) is not dict:
            raise exceptions.InvalidArgument("The body must be a JSON object of arguments.")
        return args
