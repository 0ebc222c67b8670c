"""``StreamClient``: protocol v1 over the ``websockets`` library, asyncio first.

Needs neither Django nor settings: it uses only the I/O-free protocol core,
:mod:`streaming_app.flow` and :mod:`streaming_app.exceptions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from typing import Any, AsyncGenerator, AsyncIterator, Callable, Mapping, TypeVar
from urllib.parse import urlencode

import websockets
from websockets.typing import Subprotocol

from ..exceptions import ResourceExhausted, Unauthenticated, Unavailable
from ..protocol import frames as wire
from ..protocol.codes import SUBPROTOCOL, CloseCode, is_reconnectable
from ..protocol.frames import (
    CreditFrame,
    EndFrame,
    ErrorFrame,
    FrameError,
    HelloFrame,
    NextFrame,
    PingFrame,
    PongFrame,
    ReadyFrame,
)
from .calls import ClientCall, Stream
from .heartbeat import Heartbeat
from .pushback import RetryThrottled, parse_retry_after, reconnect_delay

logger = logging.getLogger("streaming_app.client")

CallT = TypeVar("CallT", bound=ClientCall)


class ConnectionState(str, enum.Enum):
    """Where the client's connection is; ``state_changes()`` reports every move."""

    CONNECTING = "connecting"
    OPEN = "open"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"

    def __str__(self) -> str:
        return self.value


class StreamClient:
    """One multiplexed connection to a streaming_app server.

    ``window`` is the default credit window of streams: the server never has
    more than that many items in flight to this client, and credit is given
    back as the caller consumes items.

    After a close the protocol marks as reconnectable (1006, 1011, 4408, 4429,
    4500, 4503) the client reconnects with exponential backoff and full
    jitter (``reconnect_initial`` doubling up to ``reconnect_max`` seconds):
    calls that were open fail with ``Unavailable``, and new calls wait for
    the new connection. ``state`` tells where it is; ``on_state_change`` and
    ``state_changes()`` report every change. A reconnection handshake refused
    with ``Retry-After`` (a 429 or 503 from a server or proxy) delays the next
    attempt by that hint, capped at ``reconnect_retry_after_max`` seconds
    (default 60, 0 ignores hints), plus the usual backoff; the state stays
    ``reconnecting`` meanwhile.

    ``ticket`` may be a callable (sync or async) returning a fresh ticket:
    tickets are single-use, so a fixed one cannot serve a reconnection.
    ``session`` is a Django session key, sent as the ``session_cookie_name``
    cookie; ``token`` is sent as ``Authorization: Bearer``.

    ``metadata`` is sent with the handshake as HTTP headers (handlers read it
    as ``ctx.headers``): protocol v1 carries no metadata in a ``call`` frame,
    so metadata belongs to the connection, not to one call.

    Heartbeats: the client pings when the server has been quiet for the
    ``heartbeat`` interval the server announced in ``hello`` (or
    ``heartbeat_interval``), and drops a connection the server has been
    silent on for ``heartbeat_timeout`` (default twice the interval), which
    then reconnects like any lost connection.

    Throttled calls fail with ``ResourceExhausted``, whose ``retry_after`` is
    the wait the server asked for. ``retry_throttled`` (a
    :class:`~streaming_app.client.pushback.RetryThrottled`; off by default)
    makes ``call()`` wait that long and try again, within its bounds.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        ticket: str | Callable[[], Any] | None = None,
        session: str | None = None,
        session_cookie_name: str = "sessionid",
        headers: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        window: int | None = 64,
        open_timeout: float = 10.0,
        reconnect: bool = True,
        reconnect_initial: float = 0.1,
        reconnect_max: float = 10.0,
        reconnect_retry_after_max: float = 60.0,
        heartbeat: bool = True,
        heartbeat_interval: float | None = None,
        heartbeat_timeout: float | None = None,
        retry_throttled: RetryThrottled | None = None,
    ) -> None:
        if window is not None and window < 1:
            raise ValueError(f"window must be a positive number of items or None (unbounded), got {window!r}")
        if not reconnect_retry_after_max >= 0:  # NaN too
            raise ValueError(f"reconnect_retry_after_max must be 0 or more seconds, got {reconnect_retry_after_max!r}")
        self.url = url
        self.ticket = ticket
        self.headers = {**dict(metadata or {}), **dict(headers or {})}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        if session:
            self.headers["Cookie"] = f"{session_cookie_name}={session}"
        self.heartbeat = heartbeat
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self._heartbeat: asyncio.Task[None] | None = None
        self.window = window
        self.retry_throttled = retry_throttled
        self.open_timeout = open_timeout
        self.hello: HelloFrame | None = None
        self.client_window = 0
        self.close_code: int | None = None
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._calls: dict[int, ClientCall] = {}
        self._last_id = 0
        self.reconnect = reconnect
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.reconnect_retry_after_max = reconnect_retry_after_max
        self.state = ConnectionState.CLOSED
        self._connected = asyncio.Event()
        self._closing = False
        self._reconnector: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[ConnectionState], Any]] = []
        self._watchers: list[asyncio.Queue[ConnectionState]] = []

    # -- state ---------------------------------------------------------------------------

    def on_state_change(self, callback: Callable[[ConnectionState], Any]) -> None:
        """Call ``callback(state)`` on every change of ``state``."""
        self._listeners.append(callback)

    async def state_changes(self) -> AsyncIterator[ConnectionState]:
        """Every state the connection enters from now on, until it is closed."""
        queue: asyncio.Queue[ConnectionState] = asyncio.Queue()
        self._watchers.append(queue)
        try:
            while True:
                state = await queue.get()
                yield state
                if state is ConnectionState.CLOSED:
                    return
        finally:
            self._watchers.remove(queue)

    def _set_state(self, state: ConnectionState) -> None:
        if state is self.state:
            return
        self.state = state
        for callback in list(self._listeners):
            try:
                callback(state)
            except Exception:
                logger.exception("streaming_app client: state callback failed")
        for queue in self._watchers:
            queue.put_nowait(state)

    async def __aenter__(self) -> StreamClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect(self) -> HelloFrame:
        """Open the socket and read ``hello``; bad credentials raise ``Unauthenticated``."""
        self._closing = False
        self._set_state(ConnectionState.CONNECTING)
        try:
            hello = await self._open()
        except BaseException:
            self._set_state(ConnectionState.CLOSED)
            raise
        self._set_state(ConnectionState.OPEN)
        return hello

    async def _connect_url(self) -> str:
        """The URL of the next connection: a ticket is single-use, so a callable is asked anew."""
        ticket = self.ticket
        if callable(ticket):
            ticket = ticket()
            if asyncio.iscoroutine(ticket):
                ticket = await ticket
        if not ticket:
            return self.url
        return self.url + ("&" if "?" in self.url else "?") + urlencode({"ticket": ticket})

    async def _open(self) -> HelloFrame:
        url = await self._connect_url()
        try:
            self._ws = await websockets.connect(
                url,
                subprotocols=[Subprotocol(SUBPROTOCOL)],
                additional_headers=self.headers,
                open_timeout=self.open_timeout,
                max_size=None,
                ping_interval=None,  # liveness is the protocol's heartbeat (see Heartbeat)
            )
        except websockets.InvalidStatus as exc:
            retry_after = parse_retry_after(exc.response.headers.get("Retry-After"))
            raise handshake_failure(self.url, exc.response.status_code, retry_after) from exc
        except (OSError, websockets.InvalidHandshake, asyncio.TimeoutError) as exc:
            raise Unavailable(f"Cannot connect to {self.url}: {exc}") from exc
        try:
            text = await asyncio.wait_for(self._ws.recv(), self.open_timeout)
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
            self.close_code = code
            if code == CloseCode.INVALID_CREDENTIALS:
                raise Unauthenticated("The server refused the credentials (close code 4401).") from None
            raise Unavailable(f"The server closed the connection before hello (code {code}).") from None
        frame = wire.parse_server_frame(text)
        if not isinstance(frame, HelloFrame):
            raise Unavailable(f"Expected hello, got {text[:200]!r}")
        self.hello = frame
        self.client_window = int(frame.limits.get("client_window", 0))
        monitor = self._heartbeat_for(self._ws, frame)
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read(self._ws, monitor))
        if monitor is not None:
            self._heartbeat = loop.create_task(monitor.run())
        self._connected.set()
        return frame

    def _heartbeat_for(self, ws: Any, hello: HelloFrame) -> Heartbeat | None:
        """The liveness monitor of one connection, or None when heartbeats are off."""
        interval = self.heartbeat_interval or hello.heartbeat
        if not self.heartbeat or not interval or interval <= 0:
            return None
        timeout = self.heartbeat_timeout or 2 * interval

        async def ping() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(wire.encode_ping())

        def dead() -> None:
            logger.warning("streaming_app client: the server was silent for %.1f s; dropping the connection", timeout)
            ws.transport.abort()  # the reader sees 1006 and the client reconnects

        return Heartbeat(interval, timeout, ping, dead)

    @property
    def max_frame(self) -> int | None:
        """The largest frame the server accepts (from ``hello``), in bytes."""
        if self.hello is None:
            return None
        value = self.hello.limits.get("max_frame")
        return int(value) if value else None

    async def close(self) -> None:
        self._closing = True
        if self._reconnector is not None:
            self._reconnector.cancel()
            await asyncio.gather(self._reconnector, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        self._set_state(ConnectionState.CLOSED)
        self._connected.set()  # wake calls waiting for a connection: they fail now

    def _backoff(self, attempt: int) -> float:
        """Full jitter: random, up to ``reconnect_initial`` doubled per failed attempt, at most ``reconnect_max``."""
        return random.uniform(0, min(self.reconnect_max, self.reconnect_initial * 2**attempt))

    async def _reconnect(self) -> None:
        attempt = 0
        delay = self._backoff(attempt)
        while not self._closing:
            await asyncio.sleep(delay)
            try:
                await self._open()
            except Unauthenticated:
                logger.warning("streaming_app client: credentials refused on reconnect; giving up")
                self._set_state(ConnectionState.CLOSED)
                self._connected.set()
                return
            except Unavailable as exc:
                if self.close_code is not None and not is_reconnectable(self.close_code):
                    self._set_state(ConnectionState.CLOSED)
                    self._connected.set()
                    return
                attempt += 1
                # A refused handshake's Retry-After (exc.retry_after) pushes the next attempt back.
                delay = reconnect_delay(self._backoff(attempt), exc.retry_after, self.reconnect_retry_after_max)
                logger.info(
                    "streaming_app client: reconnect attempt %d failed: %s; next attempt in %.2f s", attempt, exc, delay
                )
                continue
            self._set_state(ConnectionState.OPEN)
            return

    # -- calls ------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        args: dict[str, Any] | None = None,
        /,
        *,
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """A unary call: its result, or the ``StreamError`` it failed with.

        Arguments are keyword arguments, or one dict for names that clash
        with the options (``timeout``, ``metadata``, ``window``). With
        ``retry_throttled`` a throttled call is tried again after the
        server's ``retry_after``; ``timeout`` then covers every attempt.
        """
        _no_call_metadata(metadata)
        if self.retry_throttled is not None:
            return await self._call_retrying(self.retry_throttled, method, args, kwargs, timeout)
        call = await self._start(ClientCall, method, args, kwargs, timeout, None)
        return await call.result()

    async def _call_retrying(
        self,
        policy: RetryThrottled,
        method: str,
        args: dict[str, Any] | None,
        kwargs: dict[str, Any],
        timeout: float | None,
    ) -> Any:
        """A unary call sent again after each throttled refusal ``policy`` accepts to wait out."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout

        def time_left() -> float | None:
            return None if deadline is None else deadline - loop.time()

        retried, waited = 0, 0.0
        while True:
            call = await self._start(ClientCall, method, args, kwargs, time_left(), None)
            try:
                return await call.result()
            except ResourceExhausted as error:
                delay = policy.delay(error, retried=retried, waited=waited, time_left=time_left())
                if delay is None:
                    raise
                logger.debug("streaming_app client: %s throttled; retrying in %.3f s", method, delay)
                await asyncio.sleep(delay)
                left = time_left()
                if left is not None and left <= 0:
                    raise  # the wait used up the timeout: the refusal stands
            retried, waited = retried + 1, waited + delay

    def stream(
        self,
        method: str,
        args: dict[str, Any] | None = None,
        /,
        *,
        timeout: float | None = None,
        window: Any = ...,
        metadata: Mapping[str, str] | None = None,
        resume: str | None = None,
        **kwargs: Any,
    ) -> _PendingStream:
        """A server stream: ``async for item in client.stream(...)``; ``.result`` after the loop.

        ``window`` (default: the client's) bounds the items in flight; None is unbounded.
        A resumable stream (the server opens it with ``ready``) resumes by itself
        after a reconnection, from the last item handed to the caller, so the
        loop sees every item once, in order, or raises ``StateLost`` when the
        server's history no longer reaches back. ``resume`` starts after an
        event id kept from earlier (``stream.last_eid``).
        """
        _no_call_metadata(metadata)
        return _PendingStream(self, method, args, kwargs, timeout, self.window if window is ... else window, resume)

    async def open(
        self,
        method: str,
        args: dict[str, Any] | None = None,
        /,
        *,
        timeout: float | None = None,
        window: Any = ...,
        metadata: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> ClientCall:
        """A client-stream or bidirectional call: ``send()``, ``end()``, iterate, ``result()``."""
        _no_call_metadata(metadata)
        return await self._start(ClientCall, method, args, kwargs, timeout, self.window if window is ... else window)

    async def _start(
        self,
        cls: type[CallT],
        method: str,
        args: dict[str, Any] | None,
        kwargs: dict[str, Any],
        timeout: float | None,
        window: int | None,
        resume: str | None = None,
    ) -> CallT:
        if self.state in (ConnectionState.RECONNECTING, ConnectionState.CONNECTING):
            await self._connected.wait()  # set once open again, or given up
        if self.state is not ConnectionState.OPEN or self._reader is None or self._reader.done():
            raise Unavailable("The client is not connected.")
        if args is not None and not isinstance(args, dict):
            raise TypeError(f"the arguments of {method} are keyword arguments or one dict, got {type(args).__name__}")
        arguments = {**(args or {}), **kwargs}
        self._last_id += 1
        channel = _CallChannel(self, self._ws)
        call = cls(channel, self._last_id, method, window, client_window=self.client_window, resume=resume)
        self._calls[call.id] = call
        try:
            frame = wire.encode_call(call.id, method, arguments, credit=window, timeout=timeout, resume=resume)
            await channel.send(frame)
        except BaseException:
            self._forget(call.id)
            raise
        return call

    # -- plumbing ------------------------------------------------------------------------

    async def _send(self, text: str, connection: Any) -> None:
        """Send one frame on ``connection``; Unavailable if it is no longer the live one.

        A call belongs to the connection it started on: after a reconnection
        its ids mean nothing to the new one, so its frames must not go there.
        A frame over the server's ``max_frame`` would close the whole
        connection (4413), so it fails here, alone, with ResourceExhausted.
        """
        if connection is not self._ws or connection is None:
            raise Unavailable("The connection this call started on was lost.")
        max_frame = self.max_frame
        if max_frame is not None and wire.exceeds(text, max_frame):
            raise ResourceExhausted(
                f"The frame is larger than the server accepts ({max_frame} bytes).",
                {"max_frame": max_frame, "size": len(text.encode())},
            )
        try:
            await connection.send(text)
        except websockets.ConnectionClosed as exc:
            raise Unavailable(f"The connection is closed (code {exc.rcvd.code if exc.rcvd else None}).") from None

    def _forget(self, call_id: int) -> None:
        self._calls.pop(call_id, None)

    async def _read(self, ws: Any, monitor: Heartbeat | None) -> None:
        try:
            async for text in ws:
                if monitor is not None:
                    monitor.seen()
                try:
                    frame = wire.parse_server_frame(text)
                except FrameError as exc:
                    logger.warning("streaming_app client: malformed frame from the server: %s", exc)
                    continue
                if isinstance(frame, (NextFrame, EndFrame, ErrorFrame, ReadyFrame)):
                    if frame.id is None:
                        logger.warning("streaming_app client: connection error %s: %s", frame.code, frame.message)
                        continue
                    call = self._calls.get(frame.id)
                    if call is not None:
                        call.deliver(frame)
                elif isinstance(frame, CreditFrame):
                    call = self._calls.get(frame.id)
                    if call is not None:
                        call.grant_outbound(frame.n)
                elif isinstance(frame, PingFrame):
                    await ws.send(wire.encode_pong(frame.data))
                elif isinstance(frame, PongFrame):
                    pass
        except websockets.ConnectionClosed:
            pass
        finally:
            if self._heartbeat is not None:
                self._heartbeat.cancel()
                self._heartbeat = None
            self._connected.clear()
            code = ws.close_code
            self.close_code = code
            error = Unavailable(f"The connection was closed (code {code}).", {"close_code": code})
            for call in list(self._calls.values()):
                call.fail(error)
            self._calls.clear()
            if not self._closing and self.reconnect and is_reconnectable(code):
                self._set_state(ConnectionState.RECONNECTING)
                self._reconnector = asyncio.get_running_loop().create_task(self._reconnect())
            elif not self._closing:
                self._set_state(ConnectionState.CLOSED)
                self._connected.set()


def _no_call_metadata(metadata: Mapping[str, str] | None) -> None:
    """Refuse per-call metadata rather than drop it: protocol v1 has nowhere to put it."""
    if metadata:
        raise ValueError(
            "Protocol v1 has no per-call metadata: a 'call' frame carries none and a server ignores "
            "fields it does not know. Give metadata to the client instead "
            "(StreamClient(url, metadata={...})): it is sent as handshake headers, "
            "which handlers read as ctx.headers."
        )


class _CallChannel:
    """A call's :class:`~streaming_app.client.calls.CallChannel`: the connection it started on, through its client."""

    __slots__ = ("_client", "_connection")

    def __init__(self, client: StreamClient, connection: Any) -> None:
        self._client = client
        self._connection = connection

    async def send(self, text: str) -> None:
        await self._client._send(text, self._connection)

    def release(self, call_id: int) -> None:
        self._client._forget(call_id)


class _PendingStream:
    """What ``client.stream()`` returns: starts the call on first iteration, resumes it after reconnects."""

    def __init__(
        self,
        client: StreamClient,
        method: str,
        args: Any,
        kwargs: Any,
        timeout: float | None,
        window: int | None,
        resume: str | None = None,
    ) -> None:
        self._client = client
        self._start_args = (method, args, kwargs, timeout, window)
        self._resume = resume
        self._stream: Stream | None = None
        self.resumes = 0  # how many times it was resumed after a lost connection

    async def _started(self) -> Stream:
        if self._stream is None:
            method, args, kwargs, timeout, window = self._start_args
            self._stream = await self._client._start(Stream, method, args, kwargs, timeout, window, self._resume)
        return self._stream

    async def __aiter__(self) -> AsyncGenerator[Any, None]:
        while True:
            stream = await self._started()
            try:
                # aclosing: leaving this loop early closes the stream's own iterator,
                # which cancels the call on the server.
                async with contextlib.aclosing(stream.__aiter__()) as items:
                    async for item in items:
                        yield item
                return
            except Unavailable:
                if not self._resumable_after_loss(stream):
                    raise
                logger.info("streaming_app client: resuming %s after %s", stream.method, stream.position)
                self._resume = stream.position
                self._stream = None
                self.resumes += 1

    def _resumable_after_loss(self, stream: Stream) -> bool:
        """The connection (not the server) ended it, the server said it resumes, and the client reconnects."""
        return (
            stream._lost is not None
            and stream.resumable
            and stream.position is not None
            and self._client.reconnect
            and self._client.state is not ConnectionState.CLOSED
        )

    @property
    def result(self) -> Any:
        """The stream's return value, once the loop has finished."""
        if self._stream is None:
            raise RuntimeError("the stream has not been iterated")
        return self._stream.result

    @property
    def last_eid(self) -> str | None:
        """Where the stream resumes: the event id of the last item handed out, else its ``ready`` position."""
        if self._stream is None:
            return self._resume
        return self._stream.last_eid or self._stream.position

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()

    async def __aenter__(self) -> _PendingStream:
        await self._started()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def handshake_failure(url: str, status: int, retry_after: float | None = None) -> Unavailable:
    """The error of a WebSocket handshake the server answered with an HTTP status.

    The usual causes are in the server's wiring, which ``python manage.py check``
    reports (``streaming_app.E056``, ``E057``, ``W055``): the message says where to look,
    and ``details["http_status"]`` carries the status. A ``Retry-After`` header (a
    server or proxy limiting connections, 429 or 503) becomes ``details["retry_after"]``.
    """
    if status == 404:
        hint = (
            "Nothing routes this path to streaming_app's StreamConsumer: check the URL, the "
            "'websocket' route of ASGI_APPLICATION, and that an ASGI server runs it ('daphne' "
            "first in INSTALLED_APPS for runserver). `python manage.py check` names the missing piece."
        )
    elif status in (429, 503):  # before the 5xx catch-all: nginx's limit_req and limit_conn answer 503
        hint = "The server, or a proxy in front of it, is refusing connections for now: too many, or overloaded."
    elif status >= 500:
        hint = (
            "The server failed on the handshake. Usually no websocket route matches this path "
            "(Channels: \"No route found for path\") or ASGI_APPLICATION routes no 'websocket' at "
            "all: the server's log has the traceback, and `python manage.py check` names the missing piece."
        )
    elif status == 403:
        hint = (
            "The server refused the handshake: an Origin it does not allow (ALLOWED_HOSTS, "
            "CSRF_TRUSTED_ORIGINS) or a refused ticket."
        )
    else:
        hint = "The WebSocket handshake did not succeed."
    details: dict[str, Any] = {"http_status": status}
    if retry_after is not None:
        details["retry_after"] = retry_after
        hint += f" It asked to retry after {retry_after:g} s."
    return Unavailable(f"Cannot open a WebSocket to {url} (the server answered HTTP {status}). {hint}", details)
