"""The WebSocket transport: a Channels consumer speaking protocol v1.

The consumer only reads frames and routes them; every call runs in a task of
its own, so a slow handler never holds up the connection's other calls or the
reading of its frames (channels#1119). Frames pay no thread hop: Channels'
``dispatch`` closes stale database connections through one on every message,
which this consumer leaves to :mod:`streaming_app.db`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from typing import Any

from autobahn.exception import Disconnected
from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from django.core.exceptions import SuspiciousOperation
from rest_framework.exceptions import AuthenticationFailed

from .. import exceptions, sendbuffer
from ..arguments import convert_item
from ..conf import streaming_settings
from ..connection_limits import admissions, limited_keys
from ..context import CallContext
from ..drain import is_draining
from ..drain import unavailable as draining_error
from ..encoding import json_default
from ..events import Event
from ..flow import CreditGate, Inbox
from ..gc_tuning import tune_for_serving
from ..handshake import DefaultAuthentication, authenticate, build_request, forget_parsed, origin_allowed
from ..outcomes import EndReason
from ..protocol import frames as wire
from ..protocol.codes import SUBPROTOCOL, CloseCode, ErrorCode
from ..protocol.call_rate import CallRate
from ..protocol.frames import (
    CallFrame,
    CancelFrame,
    CreditFrame,
    EndFrame,
    FrameError,
    NextFrame,
    PingFrame,
    PongFrame,
)
from ..protocol.connection import FrameTooLarge, Limits, ServerConnection
from ..protocol.session import Call, CallKind, ServerSession, WindowExceeded
from ..registry import StreamMethod, registry, unknown_method
from ..revocation import Credential, guard
from ..runner import CallRunner, PeerGone, call_deadline
from ..sendbuffer import SendBuffer

logger = logging.getLogger("streaming_app")

YIELD_EVERY_MASK = 63  # a stream lets the event loop run once every 64 items

# What a server raises for a frame sent on a socket that is already closing:
# the ASGI spec's OSError (uvicorn's ClientDisconnected), and, under daphne,
# autobahn's Disconnected. daphne refuses a send from the moment the peer's
# close frame arrives, but tells the application (websocket.disconnect) only
# once the TCP connection is gone, which waits for its write buffer to drain.
SOCKET_CLOSING: tuple[type[Exception], ...] = (OSError, Disconnected)


def client_ip(scope: dict[str, Any]) -> str | None:
    """The client's address as the server saw it (daphne's --proxy-headers puts the forwarded one here)."""
    client = scope.get("client")
    return str(client[0]) if client else None


class WebSocketCall:
    """One call on a connection, as the WebSocket writes it: the runner's :class:`~streaming_app.runner.CallWriter`.

    It holds the call's credit (``wait`` parks the handler while there is
    none) and its inbox (the client's half, fed by the consumer's frames).
    """

    transport: str | None = None  # the context's: "websocket"

    def __init__(
        self, consumer: StreamConsumer, call: Call, method: StreamMethod, ctx: CallContext, args: dict[str, Any]
    ) -> None:
        self.consumer = consumer
        self.call = call
        self.gate = CreditGate(call)
        self.inbox: Inbox | None = None
        if method.kind.client_streams:
            convert = method.item_converter
            self.inbox = Inbox(
                call,
                self._grant_client_credit,
                functools.partial(convert_item, convert) if convert else None,
            )
        self._sent = 0
        self.runner = CallRunner(method, ctx, args, self, incoming=self.inbox, close_connection=consumer.terminate)

    async def accept(self) -> None:
        pass  # nothing to announce: the call frame opened the call

    async def wait(self) -> None:
        await self.gate.acquire()

    def waiting(self) -> bool:
        return self.gate.waiting

    async def send(self, item: Any) -> int:
        consumer = self.consumer
        if type(item) is Event:
            text = wire.encode_next_json(self.call.id, item.encode(json_default), item.eid)
        else:
            text = wire.encode_next(self.call.id, item, default=json_default)
        await consumer.send_paced(consumer.checked_size(text, "An item"))
        # daphne's send never suspends, so a stream with ample credit would hold
        # the event loop (and every other connection) until it ended; let the
        # loop run now and then, which also gets the first items on the wire.
        self._sent += 1
        if self._sent & YIELD_EVERY_MASK == 1:
            await asyncio.sleep(0)
        return len(text)

    async def ready(self, eid: str, recovered: bool | None) -> None:
        if not self.call.closed:
            await self.consumer.send_text(wire.encode_ready(self.call.id, eid, recovered))

    async def _grant_client_credit(self, n: int) -> None:
        if not self.call.closed:
            await self.consumer.send_text(wire.encode_credit(self.call.id, n))

    def encode_end(self, result: Any) -> str:
        return self.consumer.checked_size(wire.encode_end(self.call.id, result, default=json_default), "The result")

    def encode_error(self, code: ErrorCode, message: str, details: dict[str, Any] | None) -> str:
        return wire.encode_error(self.call.id, code, message, details, json_default)

    async def finish(self, frame: str) -> None:
        """Send the call's one terminal frame, unless it was cancelled; PeerGone if its socket is gone."""
        if self.call.closed:
            return
        self.consumer.accepted().session.close(self.call.id)
        if not await self.consumer.send_paced(frame):
            raise PeerGone  # closed meanwhile: the call is being stopped

    def forget(self) -> None:
        self.consumer.forget(self)


class StreamConsumer(DefaultAuthentication, AsyncConsumer):  # type: ignore[misc]  # channels ships no types
    """Serves the methods of a registry over one multiplexed WebSocket.

    Route it like any consumer: ``path("ws/", StreamConsumer.as_asgi())``.
    Origin validation and authentication happen here, so it needs no
    middleware around it (a user set by ``AuthMiddlewareStack`` is honoured);
    the Origin rule is also :class:`~streaming_app.handshake.OriginValidator`,
    for a stack that composes it as middleware.
    """

    registry = registry
    # Refuse handshakes from origins handshake.origin_allowed refuses. Off only
    # when handshake.OriginValidator (or another check) is in front.
    check_origin = True
    open_connections = 0  # in this process
    instances: set[StreamConsumer] = set()  # the accepted connections of this process (a drain closes them)
    # No per-connection channel: nothing is addressed to one socket through the
    # layer, and with channels_redis joining one makes every disconnect wait
    # out a 5 s blocking pop. (An alias no layer has gives None.)
    channel_layer_alias = "streaming_app:none"
    # Which method handles each frame, by name (a subclass's override is
    # honoured): one table per class, not a dict of bound methods per connection.
    frame_handlers: dict[type, str] = {
        CallFrame: "on_call",
        NextFrame: "on_next",
        EndFrame: "on_end",
        CreditFrame: "on_credit",
        CancelFrame: "on_cancel",
        PingFrame: "on_ping",
        PongFrame: "on_pong",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: dict[int, WebSocketCall] = {}
        self.connection_id = secrets.token_hex(8)
        self.connection: ServerConnection | None = None  # the protocol's rules, once accepted
        self.session: ServerSession | None = None  # its calls
        self.request: Any = None
        self.closed = False
        self._counted = False
        self._stop_reason = EndReason.DISCONNECTED  # why calls stop when the socket closes
        self._heartbeat: asyncio.TimerHandle | None = None  # the next heartbeat check
        # What the connection was authenticated with (None: anonymous), watched
        # by the revocation guard; the user's generation when it was last read.
        self.credential: Credential | None = None
        self._user_generation = 0
        self._age_timer: asyncio.TimerHandle | None = None
        self._admitted = False  # counted against MAX_CONNECTIONS_PER_USER / _PER_IP
        self._call_rate: CallRate | None = None  # MAX_CALLS_PER_SECOND
        self.send_buffer: SendBuffer | None = None  # daphne's write buffer for this socket, once accepted

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Unlike AsyncConsumer.dispatch, no thread hop per message (see streaming_app.db).
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # -- ASGI events ------------------------------------------------------------

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        settings = streaming_settings
        offered = self.scope.get("subprotocols") or []
        if (self.check_origin and not origin_allowed(self.scope)) or (offered and SUBPROTOCOL not in offered):
            await self.base_send({"type": "websocket.close"})  # daphne answers 403
            return
        accept: dict[str, Any] = {"type": "websocket.accept"}
        if offered:
            accept["subprotocol"] = SUBPROTOCOL
        if is_draining():  # before any work: the client reconnects, through the proxy, elsewhere
            await self.base_send(accept)
            await self.close(CloseCode.DRAINING)
            return
        self.request = build_request(self.scope, self.get_authenticators())
        notices = guard.notices
        try:
            await database_sync_to_async(authenticate)(self.request)
        except AuthenticationFailed:
            await self.base_send(accept)
            await self.close(CloseCode.INVALID_CREDENTIALS)
            return
        except SuspiciousOperation as exc:
            # An unreadable request (e.g. more query parameters than
            # DATA_UPLOAD_MAX_NUMBER_FIELDS): the client's fault, and the same
            # URL would fail again, so a close clients do not retry.
            logger.warning("streaming_app: refused a WebSocket handshake: %s", exc)
            await self.base_send(accept)
            await self.close(CloseCode.BAD_FRAMES)
            return
        except Exception:
            logger.exception("streaming_app: authentication of a WebSocket handshake failed")
            await self.base_send(accept)
            await self.close(CloseCode.INTERNAL_ERROR)
            return
        forget_parsed(self.request)  # the connection lives long; what it parsed is cheap to parse again
        await self.base_send(accept)
        self.send_buffer = sendbuffer.for_send(self.base_send)
        if is_draining():  # began while the handshake was authenticated
            await self.close(CloseCode.DRAINING)
            return
        limit = settings.MAX_CONNECTIONS_PER_PROCESS
        if limit is not None and StreamConsumer.open_connections >= limit:
            await self.close(CloseCode.TOO_MANY_CONNECTIONS)
            return
        keys = limited_keys(self.request.user, client_ip(self.scope))
        if keys:
            if not await admissions.admit(self.connection_id, keys):
                await self.close(CloseCode.TOO_MANY_CONNECTIONS)
                return
            self._admitted = True
        StreamConsumer.open_connections += 1
        StreamConsumer.instances.add(self)
        self._counted = True
        if settings.MAX_CALLS_PER_SECOND is not None:
            self._call_rate = CallRate(settings.MAX_CALLS_PER_SECOND, time.monotonic())
        tune_for_serving()
        loop = asyncio.get_running_loop()
        self.watch_credential(notices)
        max_age = settings.MAX_CONNECTION_AGE
        if max_age is not None:
            self._age_timer = loop.call_later(max_age, self.expire)
        self.connection = connection = ServerConnection(self.get_limits(), time.monotonic())
        self.session = connection.session
        await self.send_text(connection.hello(self.connection_id))
        if not self.closed:
            self.schedule_heartbeat(connection, time.monotonic())

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        connection = self.connection
        if self.closed or connection is None:
            return
        text = message.get("text")
        data = text if text is not None else message.get("bytes") or b""
        try:
            frame = connection.receive(data, time.monotonic())
            await getattr(self, self.frame_handlers[type(frame)])(frame)
        except FrameTooLarge as exc:
            await self.close(exc.close_code)
        except FrameError as exc:
            await self.bad_frame(exc)
        except Exception:
            logger.exception("streaming_app: error while handling a frame")
            await self.close(CloseCode.INTERNAL_ERROR)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        await self.shutdown()
        raise StopConsumer()

    # -- frames ---------------------------------------------------------------------

    async def on_call(self, frame: CallFrame) -> None:
        session = self.accepted().session
        session.claim_id(frame.id)
        credential = self.credential
        if credential is not None and guard.generation(credential.user_pk) != self._user_generation:
            if not await self.refresh_credential(credential):
                return
        call_rate = self._call_rate
        if call_rate is not None:
            wait = call_rate.take(time.monotonic())
            if wait:
                await self.send_error(
                    frame.id,
                    exceptions.ResourceExhausted(
                        f"Too many calls on this connection (limit {call_rate.rate:g} per second).",
                        {"retry_after": max(round(wait, 3), 0.001), "max_calls_per_second": call_rate.rate},
                    ),
                )
                return
        if is_draining():
            await self.send_error(frame.id, draining_error())
            return
        method = self.registry.get(frame.method)
        if method is None:
            await self.send_error(frame.id, exceptions.Unimplemented(unknown_method(frame.method)))
            return
        if session.full:
            await self.send_error(
                frame.id,
                exceptions.ResourceExhausted(
                    f"Too many open calls on this connection (limit {session.max_calls}).",
                    {"max_calls": session.max_calls},
                ),
            )
            return
        call = session.open(frame.id, method.name, method.kind, frame.credit)
        ctx = CallContext(
            call_id=frame.id,
            method=method.name,
            kind=method.kind,
            request=self.request,
            scope=self.scope,
            connection_id=self.connection_id,
            deadline=call_deadline(frame.timeout, time.monotonic()),
            resume=frame.resume,
        )
        active = WebSocketCall(self, call, method, ctx, frame.args)
        self.calls[frame.id] = active
        active.runner.start()

    async def on_next(self, frame: NextFrame) -> None:
        connection = self.accepted()
        call = connection.session.lookup(frame.id, "next")
        if call is None:
            return
        active = self.calls[frame.id]
        runner = active.runner
        runner.item_received(connection.last_frame_size)
        try:
            call.receive_item()
        except WindowExceeded as exc:
            runner.stop(EndReason.ERROR, exceptions.ResourceExhausted(str(exc)))
            return
        inbox = active.inbox
        assert inbox is not None, "receive_item() refuses a call without a client half"
        inbox.put(frame.data)

    async def on_end(self, frame: EndFrame) -> None:
        call = self.accepted().session.lookup(frame.id, "end")
        if call is None:
            return
        call.end_client_half()
        inbox = self.calls[frame.id].inbox
        assert inbox is not None, "end_client_half() refuses a call without a client half"
        inbox.end()

    async def on_credit(self, frame: CreditFrame) -> None:
        call = self.accepted().session.lookup(frame.id, "credit")
        if call is not None:
            self.calls[frame.id].gate.grant(frame.n)

    async def on_cancel(self, frame: CancelFrame) -> None:
        session = self.accepted().session
        call = session.lookup(frame.id, "cancel")
        if call is not None:
            self.calls[frame.id].runner.stop(EndReason.CANCELLED)
            session.close(frame.id)

    async def on_ping(self, frame: PingFrame) -> None:
        await self.send_text(wire.encode_pong(frame.data, default=json_default))

    async def on_pong(self, frame: PongFrame) -> None:
        pass  # receiving it is the point: the connection saw the peer alive

    async def bad_frame(self, exc: FrameError) -> None:
        frame, close_code = self.accepted().bad_frame(exc)
        await self.send_text(frame)
        if close_code is not None:
            await self.close(close_code)

    # -- sending ------------------------------------------------------------------------

    def checked_size(self, text: str, what: str) -> str:
        """A call's frame, or ``resource_exhausted`` for the call if it is over the frame limit."""
        connection = self.accepted()
        if not connection.fits(text):
            max_frame = connection.limits.max_frame
            raise exceptions.ResourceExhausted(f"{what} is larger than the frame limit.", {"max_frame": max_frame})
        return text

    async def send_text(self, text: str) -> None:
        """Send a frame that cannot wait (a pong, a credit, a refused call's error).

        With more than ``SEND_BUFFER_LIMIT`` bytes already queued for a peer
        that does not read them, the connection is closed with 4429 instead:
        daphne would queue without end.
        """
        if self.closed:
            return
        buffer = self.send_buffer
        if buffer is not None and buffer.pending() > streaming_settings.SEND_BUFFER_LIMIT:
            logger.warning(
                "streaming_app: closed connection %s with 4429: it left %d bytes unread",
                self.connection_id, buffer.pending(),
            )
            await self.close(CloseCode.TOO_MANY_CONNECTIONS)
            return
        await self.write(text)

    async def send_paced(self, text: str) -> bool:
        """Send a call's frame once at most ``SEND_BUFFER_HIGH`` bytes wait for the peer; False if closed meanwhile.

        The calling task (the call's) waits meanwhile, as it would for credit,
        so a client that reads slowly or not at all holds its streams instead
        of growing the process. Nothing is awaited between the check and the
        send, so the queue stays under SEND_BUFFER_HIGH plus one frame.

        A connection closed meanwhile has stopped its calls: the frame is
        dropped (False), and the call's stop arrives at its next wait. Raises
        :class:`~streaming_app.runner.PeerGone` when the server refuses the
        frame: the peer closed the socket while the call waited or worked, and
        the call ends as ``disconnected``.
        """
        buffer = self.send_buffer
        if buffer is not None and buffer.pending() > streaming_settings.SEND_BUFFER_HIGH:
            await buffer.below(streaming_settings.SEND_BUFFER_HIGH)
        if self.closed:
            return False
        if not await self.write(text):
            raise PeerGone
        return True

    async def write(self, text: str) -> bool:
        """Hand one frame to the server; False when it refuses it because the socket is closing."""
        try:
            await self.base_send({"type": "websocket.send", "text": text})
        except SOCKET_CLOSING:
            self.peer_gone()
            return False
        return True

    def peer_gone(self) -> None:
        """The socket is closing though its disconnect has not arrived: send nothing more, stop the calls.

        The other calls stop now rather than run on, unread, until the
        disconnect arrives; the one whose frame was refused (the current task)
        ends by :class:`~streaming_app.runner.PeerGone` instead. What the
        connection holds is released by :meth:`shutdown`, on the disconnect.
        """
        if self.closed:
            return
        self.closed = True
        current = asyncio.current_task()
        for active in list(self.calls.values()):
            if active.runner.task is not current:
                active.runner.stop(self._stop_reason)

    async def send_error(self, call_id: int | None, error: exceptions.StreamError) -> None:
        await self.send_text(wire.encode_error(call_id, error.code, error.message, error.details, json_default))

    def forget(self, active: WebSocketCall) -> None:
        if self.calls.get(active.call.id) is active:
            del self.calls[active.call.id]
        if self.session is not None:
            self.session.close(active.call.id)

    # -- connection -------------------------------------------------------------------

    def accepted(self) -> ServerConnection:
        """The protocol state of the accepted connection: frames and calls exist only once it is."""
        connection = self.connection
        assert connection is not None, "the connection was not accepted"
        return connection

    def get_limits(self) -> Limits:
        """The connection's limits, from the ``STREAMING`` settings."""
        settings = streaming_settings
        return Limits(
            max_frame=settings.MAX_FRAME_BYTES,
            max_calls=settings.MAX_CALLS_PER_CONNECTION,
            client_window=settings.CLIENT_WINDOW,
            max_bad_frames=settings.MAX_BAD_FRAMES,
            heartbeat_interval=settings.HEARTBEAT_INTERVAL,
            heartbeat_timeout=settings.HEARTBEAT_TIMEOUT,
        )

    def schedule_heartbeat(self, connection: ServerConnection, now: float) -> None:
        """Arm the next heartbeat check: an event-loop timer, not a task per connection.

        An idle connection then costs one timer handle instead of a task, its
        coroutine frame and a sleep's future (about 1 KiB each); a task exists
        only for the moment a ping or a close is sent.
        """
        loop = asyncio.get_running_loop()
        self._heartbeat = loop.call_later(connection.until_next_check(now), self.heartbeat, connection)

    def heartbeat(self, connection: ServerConnection) -> None:
        """Ping a silent peer every heartbeat interval; close with 4408 once it has been silent too long."""
        self._heartbeat = None
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        if connection.ping_due(now):
            loop.create_task(self.send_text(wire.encode_ping()))
        if connection.timed_out(now):
            loop.create_task(self.close(CloseCode.HEARTBEAT_TIMEOUT))
            return
        self.schedule_heartbeat(connection, now)

    # -- credentials (streaming_app.revocation) -------------------------------------------

    def watch_credential(self, notices: int) -> None:
        """Hand an authenticated connection to the revocation guard.

        ``notices`` is the guard's count before authentication: a notice that
        arrived in between may concern this user, so it is checked at once.
        """
        self.credential = credential = Credential.of(self.request)
        if credential is None:
            return
        self._user_generation = guard.generation(credential.user_pk)
        guard.add(self)
        if guard.notices != notices:
            asyncio.get_running_loop().create_task(guard.revalidate([self]))

    async def refresh_credential(self, credential: Credential) -> bool:
        """Re-read the user before a call (a notice said they changed); close with 4401 if revoked."""
        generation = guard.generation(credential.user_pk)
        user = await database_sync_to_async(credential.validate)()
        if user is None:
            await self.revoke()
            return False
        self.credential_refreshed(user)
        self._user_generation = generation
        return True

    def credential_revoked(self) -> None:
        """The credential no longer holds: close with 4401 (its calls' ``finally`` blocks run)."""
        if not self.closed:
            asyncio.get_running_loop().create_task(self.revoke())

    async def revoke(self) -> None:
        """Close with 4401; the calls end as ``revoked`` in the history, not as if the client had left."""
        if not self.closed:
            self._stop_reason = EndReason.REVOKED
            await self.close(CloseCode.INVALID_CREDENTIALS)

    def credential_refreshed(self, user: Any) -> None:
        """Calls from now on see ``user`` as re-read (staff, permissions, groups)."""
        request = self.request
        request.user = user  # DRF sets the wrapped HttpRequest's user too
        request._request.__dict__.pop("_streaming_view_requests", None)  # views' own authentication, redone
        if self.credential is not None:
            self._user_generation = guard.generation(self.credential.user_pk)

    def expire(self) -> None:
        """MAX_CONNECTION_AGE is reached: close with 4503, so the client reconnects (authenticating again)."""
        self._age_timer = None
        if not self.closed:
            asyncio.get_running_loop().create_task(self.close(CloseCode.DRAINING))

    def unary_running(self) -> bool:
        """Whether a unary call is running on this connection (a drain lets it finish first)."""
        return any(active.runner.method.kind is CallKind.UNARY for active in self.calls.values())

    def terminate(self) -> None:
        """Close the connection with 4000 (an administrator's command); its calls' ``finally`` blocks run."""
        self._stop_reason = EndReason.TERMINATED
        asyncio.get_running_loop().create_task(self.close(CloseCode.TERMINATED))

    async def close(self, code: int = CloseCode.NORMAL) -> None:
        if self.closed:
            return
        await self.base_send({"type": "websocket.close", "code": int(code)})
        self.closed = True
        await self.shutdown(wait=False)

    async def shutdown(self, wait: bool = True) -> None:
        """Stop every call; wait (bounded) so their ``finally`` blocks have run."""
        self.closed = True
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
        runners = [active.runner for active in self.calls.values()]
        tasks = [runner.task for runner in runners if runner.task is not None]
        for runner in runners:
            runner.stop(self._stop_reason)
        if self._counted:
            StreamConsumer.open_connections -= 1
            StreamConsumer.instances.discard(self)
            self._counted = False
        guard.discard(self)
        if self._admitted:
            self._admitted = False
            asyncio.get_running_loop().create_task(admissions.release(self.connection_id))
        if self._age_timer is not None:
            self._age_timer.cancel()
            self._age_timer = None
        if wait and tasks:
            await asyncio.wait(tasks, timeout=10)
