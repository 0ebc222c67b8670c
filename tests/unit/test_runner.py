"""The call runner on its own, without a transport: what every transport gets from it.

A ``Recorder`` is a complete CallWriter that keeps what it is told to write,
so these tests see the runner's decisions directly; the transports' own tests
(transport/test_websocket_*.py, transport/test_http_calls.py) show the same decisions on the wire.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import pytest

from streaming_app.context import CallContext
from streaming_app.decorators import server_stream, unary
from streaming_app.exceptions import StreamError
from streaming_app.handshake import build_request
from streaming_app.monitor import monitor
from streaming_app.outcomes import EndReason
from streaming_app.protocol.codes import ErrorCode
from streaming_app.registry import StreamRegistry
from streaming_app.runner import CallRunner, PeerGone
from streaming_app.views import StreamView

pytestmark = pytest.mark.usefixtures("close_worker_connections")

STARTED: list[str] = []
CLEANED: list[str] = []


class RunnerViews(StreamView):
    namespace = "t_runner"

    @unary
    async def hello(self, ctx, tag: str = "") -> str:
        STARTED.append(tag)
        return "hello"

    @unary
    async def fail(self, ctx) -> None:
        raise StreamError.for_code("aborted", "Conflict.", {"row": object()})

    @server_stream
    async def numbers(self, ctx, tag: str = ""):
        try:
            for i in range(10):
                yield i
        finally:
            CLEANED.append(tag)


METHODS = StreamRegistry()
METHODS.register(RunnerViews)


class Recorder:
    """A CallWriter that writes JSON objects into a list."""

    transport = "test"

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []
        self.forgotten = False

    async def accept(self) -> None:
        self.written.append({"t": "accepted"})

    async def wait(self) -> None:
        pass

    def waiting(self) -> bool:
        return False

    async def send(self, item: Any) -> int:
        text = json.dumps({"t": "next", "d": item})
        self.written.append(json.loads(text))
        return len(text)

    async def ready(self, eid: str, recovered: bool | None) -> None:
        self.written.append({"t": "ready", "eid": eid})

    def encode_end(self, result: Any) -> str:
        return json.dumps({"t": "end", "d": result})

    def encode_error(self, code: ErrorCode, message: str, details: dict[str, Any] | None) -> str:
        return json.dumps({"t": "error", "code": str(code), "message": message, "details": details or {}})

    async def finish(self, frame: str) -> None:
        self.written.append(json.loads(frame))

    def forget(self) -> None:
        self.forgotten = True


def runner_for(
    name: str, args: dict[str, Any] | None = None, writer: Recorder | None = None
) -> tuple[CallRunner, Recorder]:
    method = METHODS.get(name)
    assert method is not None
    monitor.flush_manually()  # the test's loop ends before the process: no flusher on it
    scope = {"type": "websocket", "path": "/ws/", "headers": [], "query_string": b""}
    ctx = CallContext(
        call_id=1,
        method=method.name,
        kind=method.kind,
        request=build_request(scope, []),
        scope=scope,
        connection_id=secrets.token_hex(8),
        transport="test",
    )
    writer = writer or Recorder()
    return CallRunner(method, ctx, args or {}, writer), writer


async def test_a_call_runs_to_its_end_frame_and_is_forgotten():
    runner, writer = runner_for("t_runner.hello")
    await asyncio.wait_for(runner.start(), 5)
    assert writer.written == [{"t": "accepted"}, {"t": "end", "d": "hello"}]
    assert writer.forgotten and runner.reason is EndReason.COMPLETED


async def test_an_error_whose_details_cannot_be_encoded_is_written_without_them():
    runner, writer = runner_for("t_runner.fail")
    await asyncio.wait_for(runner.start(), 5)
    assert writer.written[-1] == {"t": "error", "code": "aborted", "message": "Conflict.", "details": {}}
    assert (runner.reason, runner.error.code) == (EndReason.ERROR, ErrorCode.ABORTED)


async def test_a_call_stopped_before_its_task_began_ends_silently_and_is_accounted_for():
    # Cancelling a task that has not begun skips its finally; the runner must not.
    runner, writer = runner_for("t_runner.hello", {"tag": "never"})
    task = runner.start()
    runner.stop(EndReason.DISCONNECTED)
    await asyncio.wait_for(task, 5)
    assert STARTED.count("never") == 0 and writer.written == []
    assert writer.forgotten and runner.reason is EndReason.DISCONNECTED
    assert (runner.ctx.connection_id, 1) not in monitor.calls


async def test_a_call_stopped_with_an_error_before_it_began_gets_that_error():
    runner, writer = runner_for("t_runner.hello", {"tag": "never"})
    task = runner.start()
    runner.stop(EndReason.TERMINATED, StreamError.for_code("cancelled", "Terminated by an administrator."))
    await asyncio.wait_for(task, 5)
    assert writer.written == [
        {"t": "error", "code": "cancelled", "message": "Terminated by an administrator.", "details": {}}
    ]
    assert runner.reason is EndReason.TERMINATED and STARTED.count("never") == 0


# -- a writer that cannot write: the peer closed its socket (PeerGone), or something else failed ------------------


class GoneOnFinish(Recorder):
    """The terminal frame finds the socket closing (daphne refuses a send after the peer's close frame)."""

    async def finish(self, frame: str) -> None:
        raise PeerGone


class GoneOnItem(Recorder):
    async def send(self, item: Any) -> int:
        if item == 2:
            raise PeerGone
        return await super().send(item)


class BrokenFinish(Recorder):
    async def finish(self, frame: str) -> None:
        raise RuntimeError("a writer's own bug")


class StuckFinish(Recorder):
    """The terminal frame waits for a socket that never drains."""

    async def finish(self, frame: str) -> None:
        await asyncio.Event().wait()


def logged_errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "streaming_app" and r.levelname == "ERROR"]


def runner_with(writer: Recorder, name: str, args: dict[str, Any] | None = None) -> CallRunner:
    return runner_for(name, args, writer)[0]


async def test_a_result_the_socket_refuses_ends_the_call_quietly_as_disconnected(caplog):
    writer = GoneOnFinish()
    runner = runner_with(writer, "t_runner.hello")
    await asyncio.wait_for(runner.start(), 5)
    assert (runner.reason, runner.error) == (EndReason.DISCONNECTED, None)
    assert writer.forgotten and logged_errors(caplog) == []


async def test_an_item_the_socket_refuses_ends_the_stream_quietly_as_disconnected_after_its_finally(caplog):
    writer = GoneOnItem()
    runner = runner_with(writer, "t_runner.numbers", {"tag": "gone"})
    await asyncio.wait_for(runner.start(), 5)
    assert [f["d"] for f in writer.written if f["t"] == "next"] == [0, 1]
    assert (runner.reason, runner.error) == (EndReason.DISCONNECTED, None)
    assert CLEANED.count("gone") == 1 and runner.items_sent == 2
    assert logged_errors(caplog) == []


async def test_a_terminal_frame_that_fails_otherwise_is_logged_with_its_traceback(caplog):
    runner = runner_with(BrokenFinish(), "t_runner.hello")
    await asyncio.wait_for(runner.start(), 5)
    assert logged_errors(caplog) == ["streaming_app could not end call t_runner.hello#1"]
    assert caplog.records[-1].exc_info is not None


async def test_a_call_stopped_while_its_result_waits_for_the_socket_is_recorded_as_stopped_not_completed():
    runner = runner_with(StuckFinish(), "t_runner.hello")
    task = runner.start()
    await asyncio.sleep(0.05)  # the handler returned; its end frame waits
    runner.stop(EndReason.DISCONNECTED)
    await asyncio.wait_for(task, 5)
    assert (runner.reason, runner.error) == (EndReason.DISCONNECTED, None)
