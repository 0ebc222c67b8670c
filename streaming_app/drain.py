"""Draining a server process: how it leaves without losing a call.

On SIGTERM (a deploy, a scale-down, ``docker stop``) a process that simply
exits cuts every stream and every unary call in the middle. Draining instead:

1. marks the process draining: ``<prefix>/_health`` answers 503
   ``{"status": "draining"}`` (a load balancer stops sending new clients),
   and new WebSocket handshakes are accepted and closed at once with 4503;
2. lets the unary calls that are running finish (on both transports); a
   WebSocket connection is closed with 4503 as soon as it has none left, and
   a new call on it is refused with ``unavailable``;
3. ends HTTP streams (SSE, NDJSON) with ``unavailable``: an ``EventSource``
   reconnects by itself and resumes with ``Last-Event-ID``;
4. at ``DRAIN_TIMEOUT`` closes whatever is still open with 4503, and stops
   the server.

4503 tells clients to reconnect (elsewhere: the proxy sends them to another
process) and resume their resumable streams, so a drained stream loses nothing.

On daphne, :func:`install` takes SIGTERM over from Twisted once the reactor
runs (a second SIGTERM stops at once, as Twisted's own handler would). On
uvicorn, :func:`lifespan` (routed as the ``lifespan`` protocol) takes it over
from uvicorn at start-up, and hands the signal back to uvicorn's own handler
once drained. Other servers can call :func:`drain` themselves.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from types import FrameType
from typing import Any, Callable

from . import exceptions
from .conf import streaming_settings
from .outcomes import EndReason
from .protocol.codes import CloseCode
from .protocol.session import CallKind

logger = logging.getLogger("streaming_app")

# How often the drain looks for connections whose last unary call has ended.
POLL_INTERVAL = 0.05
# Part of DRAIN_TIMEOUT kept for the final closes and the handlers' finally blocks.
CLOSE_MARGIN = 0.2

UNAVAILABLE_MESSAGE = "The server is draining; reconnect to continue."


class DrainState:
    """Whether this process is draining; one per process (:data:`state`)."""

    def __init__(self) -> None:
        self.draining = False
        self.task: asyncio.Task[None] | None = None

    def reset(self) -> None:
        """Back to serving (tests)."""
        self.draining = False
        self.task = None


state = DrainState()


def is_draining() -> bool:
    """True once the process has begun to drain: it refuses new connections and calls."""
    return state.draining


def unavailable() -> exceptions.StreamError:
    """The error a call refused or ended by the drain gets (clients retry it elsewhere)."""
    return exceptions.Unavailable(UNAVAILABLE_MESSAGE)


async def drain(timeout: float | None = None) -> None:
    """Drain this process (see the module docstring); return when every connection is closed.

    It does not stop the server: :func:`install`'s handler does that afterwards.
    """
    from .runner import CallRunner
    from .transports.websocket import StreamConsumer

    loop = asyncio.get_running_loop()
    timeout = streaming_settings.DRAIN_TIMEOUT if timeout is None else timeout
    deadline = loop.time() + max(0.0, timeout - CLOSE_MARGIN)
    state.draining = True
    logger.info(
        "streaming_app: draining %d connection(s) and %d call(s) within %ss",
        len(StreamConsumer.instances), len(CallRunner.running), timeout,
    )
    for runner in list(CallRunner.running):
        if runner.ctx.transport != "websocket" and runner.method.kind is not CallKind.UNARY:
            runner.stop(EndReason.ERROR, unavailable())
    while loop.time() < deadline:
        for consumer in list(StreamConsumer.instances):
            if not consumer.unary_running():
                await consumer.close(CloseCode.DRAINING)
        if not StreamConsumer.instances and not _unary_calls(CallRunner.running):
            break
        await asyncio.sleep(POLL_INTERVAL)
    for consumer in list(StreamConsumer.instances):
        await consumer.close(CloseCode.DRAINING)
    # The streams' finally blocks (cleanups, presence leaves) run as their tasks unwind.
    tasks = [runner.task for runner in CallRunner.running if runner.task is not None]
    if tasks:
        await asyncio.wait(tasks, timeout=max(CLOSE_MARGIN, deadline + CLOSE_MARGIN - loop.time()))
    logger.info("streaming_app: drained")


def _unary_calls(runners: set[Any]) -> bool:
    return any(runner.method.kind is CallKind.UNARY for runner in runners)


# -- SIGTERM on daphne (Twisted's asyncio reactor) --------------------------------------------


def install() -> None:
    """Drain on SIGTERM when serving under daphne (``ready()`` calls it; DRAIN_ON_SIGTERM turns it off).

    Twisted installs its own SIGTERM handler (an immediate stop) when the
    reactor starts; this replaces it just after, so it must be registered
    before the reactor runs, which app loading is.
    """
    if not streaming_settings.DRAIN_ON_SIGTERM:
        return
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not hasattr(reactor, "_asyncioEventloop"):
        return  # not daphne's asyncio reactor: nothing of ours runs the loop
    reactor.callWhenRunning(_take_over_sigterm, reactor)


def _take_over_sigterm(reactor: Any) -> None:
    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        reactor.callFromThread(_begin, reactor)

    signal.signal(signal.SIGTERM, on_sigterm)


def _begin(reactor: Any) -> None:
    """On the reactor's loop: the first SIGTERM drains then stops, a second one stops now."""
    if state.task is not None:
        logger.warning("streaming_app: second SIGTERM, stopping without waiting for the drain")
        _stop(reactor)
        return
    loop: asyncio.AbstractEventLoop = reactor._asyncioEventloop
    state.task = task = loop.create_task(drain(), name="streaming_app drain")
    task.add_done_callback(_stopper(reactor))


def _stopper(reactor: Any) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("streaming_app: the drain failed", exc_info=task.exception())
        _stop(reactor)

    return done


def _stop(reactor: Any) -> None:
    if reactor.running:
        reactor.stop()


# -- SIGTERM on uvicorn (the ASGI lifespan protocol) --------------------------------------------


async def lifespan(scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[dict[str, Any]], Any]) -> None:
    """An ASGI app for the ``lifespan`` scope: drain on SIGTERM under uvicorn.

    Route it beside the others: ``ProtocolTypeRouter({..., "lifespan": drain.lifespan})``.
    uvicorn installs its SIGTERM handler before it starts the lifespan, and
    its own shutdown closes WebSockets with 1012 at once; this handler drains
    first, then calls uvicorn's, which stops the server as it would have.
    """
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if streaming_settings.DRAIN_ON_SIGTERM:
                _take_over_from(signal.getsignal(signal.SIGTERM), asyncio.get_running_loop())
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _take_over_from(previous: Any, loop: asyncio.AbstractEventLoop) -> None:
    if not callable(previous):
        return  # no server handler to hand the signal back to: leave SIGTERM as it is

    def hand_back() -> None:
        previous(signal.SIGTERM, None)

    def begin() -> None:
        if state.task is not None:
            hand_back()  # a second SIGTERM: stop now
            return
        state.task = task = loop.create_task(drain(), name="streaming_app drain")
        task.add_done_callback(lambda _: hand_back())

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(begin)

    signal.signal(signal.SIGTERM, on_sigterm)
