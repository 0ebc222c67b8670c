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
from streaming_app.decorators import unary
from streaming_app.exceptions import StreamError
from streaming_app.handshake import build_request
from streaming_app.monitor import monitor
from streaming_app.outcomes import EndReason
from streaming_app.protocol.codes import ErrorCode
from streaming_app.registry import StreamRegistry
from streaming_app.runner import CallRunner
from streaming_app.views import StreamView

pytestmark = pytest.mark.usefixtures("close_worker_connections")

STARTED: list[str] = []


class RunnerViews(StreamView):
    namespace = "t_runner"

    @unary
    async def hello(self, ctx, tag: str = "") -> str:
        STARTED.append(tag)
        return "hello"

    @unary
    async def fail(self, ctx) -> None:
        raise StreamError.for_code("aborted", "Conflict.", {"row": object()})


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


def runner_for(name: str, args: dict[str, Any] | None = None) -> tuple[CallRunner, Recorder]:
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
    writer = Recorder()
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
