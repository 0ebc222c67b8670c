"""In-process tests of the WebSocket consumer through StreamTestClient.

Test-only stream views are registered by the ``views`` fixture and removed
after each test. Every wait is bounded: the client's receive has a timeout and
polling loops give up after a few seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import enum
import threading
import time
import uuid
from collections import defaultdict
from typing import Any, AsyncIterator, Callable, Literal, Optional

import pytest
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
from django.test import override_settings
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission, IsAdminUser, IsAuthenticated

from streaming_app import checks
from streaming_app.decorators import bidi_stream, client_stream, server_stream, unary
from streaming_app.exceptions import StreamError
from streaming_app.registry import StreamRegistry, registry
from streaming_app.testing import ConnectionClosed, StreamTestClient
from streaming_app.transports.websocket import StreamConsumer
from streaming_app.views import StreamView

pytestmark = pytest.mark.usefixtures("close_worker_connections")

# -- shared state of the test views ----------------------------------------------------------

STATE: dict[str, dict[str, Any]] = defaultdict(lambda: {"produced": 0, "finally": False, "started": False})


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


# -- test views ---------------------------------------------------------------------------------


class FlowViews(StreamView):
    namespace = "t_flow"

    @server_stream
    async def numbers(self, ctx, tag: str, n: int = 1000):
        state = STATE[tag]
        try:
            for i in range(n):
                state["produced"] += 1
                yield i
        finally:
            state["finally"] = True

    @server_stream
    async def park(self, ctx, tag: str):
        """Yields once, then waits forever inside the generator."""
        state = STATE[tag]
        try:
            yield "first"
            state["started"] = True
            await asyncio.Event().wait()
        finally:
            state["finally"] = True

    @unary
    async def slow(self, ctx, seconds: float, tag: str = "") -> str:
        state = STATE[tag]
        state["started"] = True
        try:
            await asyncio.sleep(seconds)
        finally:
            state["finally"] = True
        return "slow"

    @unary
    async def fast(self, ctx) -> str:
        return "fast"

    @unary
    def blocking(self, ctx, seconds: float) -> str:
        time.sleep(seconds)
        return "blocking"

    @unary
    def quick(self, ctx) -> str:
        return "quick"

    @client_stream
    async def hold(self, ctx, items: AsyncIterator[int]) -> None:
        """Never reads its items, so the client's window fills up."""
        await asyncio.Event().wait()


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def described(value: Any) -> list[Any]:
    return [type(value).__name__, value]


class ArgViews(StreamView):
    namespace = "t_args"

    @unary
    async def types(
        self,
        ctx,
        i: int = 0,
        s: str = "",
        b: bool = False,
        f: float = 0.0,
        o: Optional[int] = 5,
        li: list[int] = None,  # type: ignore[assignment]
        lit: Literal["a", "b"] = "a",
        point: Point = None,  # type: ignore[assignment]
        color: Color = Color.RED,
        when: datetime.datetime = None,  # type: ignore[assignment]
    ) -> dict:
        values = {"i": i, "s": s, "b": b, "f": f, "o": o, "li": li, "lit": lit, "point": point, "color": color, "when": when}
        return {name: described(value) for name, value in values.items()}

    @unary
    async def required(self, ctx, a: int, b: str = "x") -> dict:
        return {"a": a, "b": b}


class OrderSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=1)
    note = serializers.CharField(default="")


class SerializerViews(StreamView):
    namespace = "t_ser"

    @unary(serializer_class=OrderSerializer)
    async def place(self, ctx, quantity: int, note: str) -> dict:
        return {"quantity": described(quantity), "note": note}


class EncodingViews(StreamView):
    namespace = "t_enc"

    @server_stream
    async def values(self, ctx):
        yield Point(1, 2)
        yield decimal.Decimal("1.25")
        yield datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        yield datetime.date(2024, 1, 2)
        yield uuid.UUID("12345678-1234-5678-1234-567812345678")
        yield OrderSerializer({"quantity": 3, "note": "n"}).data
        yield OrderSerializer({"quantity": 4, "note": "m"})
        yield Color.BLUE

    @server_stream
    async def unserializable(self, ctx):
        yield 1
        yield object()

    @unary
    async def nan(self, ctx) -> float:
        return float("nan")

    @unary
    async def unserializable_result(self, ctx) -> Any:
        return {"x": object()}


ERRORS: dict[str, Callable[[], BaseException]] = {
    "drf_validation_dict": lambda: drf_exceptions.ValidationError({"name": ["Too short."]}),
    "drf_validation_list": lambda: drf_exceptions.ValidationError("Bad input."),
    "drf_not_found": lambda: drf_exceptions.NotFound("No such order."),
    "drf_permission_denied": lambda: drf_exceptions.PermissionDenied("Not yours."),
    "drf_not_authenticated": lambda: drf_exceptions.NotAuthenticated(),
    "drf_throttled": lambda: drf_exceptions.Throttled(),
    "object_does_not_exist": lambda: ObjectDoesNotExist("missing"),
    "runtime": lambda: RuntimeError("secret-detail-42"),
}


class ErrorViews(StreamView):
    namespace = "t_err"

    @unary
    async def raise_(self, ctx, kind: str) -> None:
        raise ERRORS[kind]()

    @unary
    async def missing_user(self, ctx) -> None:
        from django.contrib.auth import get_user_model

        raise get_user_model().DoesNotExist("no user")

    @unary
    async def unencodable_details(self, ctx) -> None:
        raise StreamError.for_code("failed_precondition", "Stock changed.", {"item": object()})

    @unary
    async def raise_cancelled(self, ctx) -> None:
        raise asyncio.CancelledError()

    @server_stream
    async def stream_unencodable_details(self, ctx):
        yield 1
        raise StreamError.for_code("aborted", "Conflict.", {"row": object()})


PERMISSION_THREADS: list[int] = []


class CanViewCleanup(BasePermission):
    """Queries the database: user.has_perm reads the permission tables."""

    def has_permission(self, request, view) -> bool:
        PERMISSION_THREADS.append(threading.get_ident())
        return request.user.has_perm("demo.view_cleanup")


class PermissionViews(StreamView):
    namespace = "t_perm"
    permission_classes = [IsAuthenticated]

    @unary
    async def whoami(self, ctx) -> str:
        return ctx.user.get_username()

    @unary(permission_classes=[AllowAny])
    async def public(self, ctx) -> str:
        return "public"

    @unary(permission_classes=[IsAdminUser])
    async def staff(self, ctx) -> str:
        return "staff"

    @unary(permission_classes=[CanViewCleanup])
    async def cleanup_viewer(self, ctx) -> str:
        return "allowed"


TEST_VIEWS = [FlowViews, ArgViews, SerializerViews, EncodingViews, ErrorViews, PermissionViews]




@pytest.fixture(autouse=True)
def views():
    for view in TEST_VIEWS:
        registry.register(view)
    STATE.clear()
    PERMISSION_THREADS.clear()
    yield
    for view in TEST_VIEWS:
        registry.unregister(view.namespace)


async def call_error(client: StreamTestClient, method: str, args: dict | None = None, **options) -> StreamError:
    with pytest.raises(StreamError) as info:
        await client.call(method, args, **options)
    return info.value


async def frames_for(client: StreamTestClient, call_id: int, count: int) -> list[dict]:
    """The next ``count`` frames of one call, skipping others (bounded by the client timeout)."""
    out = []
    while len(out) < count:
        frame = await client.receive()
        if frame.get("id") == call_id:
            out.append(frame)
    return out


# -- flow control ------------------------------------------------------------------------------


async def test_generator_is_not_advanced_past_the_credit():
    # invoke() takes credit before each __anext__, so with credit 2 the
    # generator has run up to its second yield and no further: exactly 2.
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.numbers", {"tag": "c2"}, credit=2)
        frames = await frames_for(client, call_id, 2)
        assert [f["d"] for f in frames] == [0, 1]
        assert await client.nothing_received(0.3)
        assert STATE["c2"]["produced"] == 2


async def test_generator_stays_suspended_while_credit_is_zero():
    async with StreamTestClient() as client:
        await client.start("t_flow.numbers", {"tag": "c0"}, credit=0)
        assert await client.nothing_received(0.3)
        assert STATE["c0"]["produced"] == 0


async def test_granted_credit_advances_the_generator_by_that_many_items():
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.numbers", {"tag": "grant"}, credit=1)
        await frames_for(client, call_id, 1)
        await client.send({"t": "credit", "id": call_id, "n": 3})
        frames = await frames_for(client, call_id, 3)
        assert [f["d"] for f in frames] == [1, 2, 3]
        assert await client.nothing_received(0.2)
        assert STATE["grant"]["produced"] == 4


async def test_stream_with_exactly_its_credit_in_items_ends_after_more_credit():
    # The handler only finds out it is exhausted when it is advanced again,
    # which needs credit; `end` itself needs none.
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.numbers", {"tag": "exact", "n": 2}, credit=2)
        assert [f["t"] for f in await frames_for(client, call_id, 2)] == ["next", "next"]
        assert await client.nothing_received(0.2)
        await client.send({"t": "credit", "id": call_id, "n": 1})
        assert await frames_for(client, call_id, 1) == [{"t": "end", "id": call_id}]


async def test_stream_without_credit_field_is_unbounded():
    async with StreamTestClient() as client:
        items, result = await client.collect("t_flow.numbers", {"tag": "unbounded", "n": 50})
        assert items == list(range(50))
        assert result is None


# -- cancellation ------------------------------------------------------------------------------------


async def test_cancel_runs_the_finally_of_a_generator_waiting_for_credit():
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.numbers", {"tag": "cancel-credit"}, credit=1)
        await frames_for(client, call_id, 1)
        await client.send({"t": "cancel", "id": call_id})
        assert await eventually(lambda: STATE["cancel-credit"]["finally"])


async def test_cancel_runs_the_finally_of_a_generator_suspended_in_an_await():
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.park", {"tag": "cancel-await"})
        await frames_for(client, call_id, 1)
        assert await eventually(lambda: STATE["cancel-await"]["started"])
        await client.send({"t": "cancel", "id": call_id})
        assert await eventually(lambda: STATE["cancel-await"]["finally"])


async def test_cancel_runs_the_finally_of_a_unary_handler():
    async with StreamTestClient() as client:
        await client.start("t_flow.slow", {"seconds": 30, "tag": "cancel-unary"})
        assert await eventually(lambda: STATE["cancel-unary"]["started"])
        await client.send({"t": "cancel", "id": 1})
        assert await eventually(lambda: STATE["cancel-unary"]["finally"])


async def test_cancelled_call_ends_silently():
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.park", {"tag": "silent"})
        await frames_for(client, call_id, 1)
        await client.send({"t": "cancel", "id": call_id})
        assert await eventually(lambda: STATE["silent"]["finally"])
        assert await client.nothing_received(0.2)


async def test_frames_for_a_cancelled_call_are_ignored():
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.park", {"tag": "late"})
        await frames_for(client, call_id, 1)
        await client.send({"t": "cancel", "id": call_id})
        await client.send({"t": "credit", "id": call_id, "n": 1})
        await client.send({"t": "cancel", "id": call_id})
        assert await client.nothing_received(0.2)


async def test_disconnect_runs_the_finally_of_running_handlers():
    client = StreamTestClient()
    await client.connect()
    call_id = await client.start("t_flow.park", {"tag": "disconnect"})
    await frames_for(client, call_id, 1)
    await client.disconnect()
    assert STATE["disconnect"]["finally"]


# -- concurrency on one connection ----------------------------------------------------------------


async def test_slow_async_handler_does_not_stall_another_call():
    async with StreamTestClient() as client:
        slow_id = await client.start("t_flow.slow", {"seconds": 30, "tag": "slow"})
        started = time.monotonic()
        assert await client.call("t_flow.fast") == "fast"
        assert time.monotonic() - started < 1.0
        await client.send({"t": "cancel", "id": slow_id})


async def test_blocking_sync_handler_does_not_stall_another_sync_call():
    async with StreamTestClient() as client:
        blocking_id = await client.start("t_flow.blocking", {"seconds": 1.5})
        started = time.monotonic()
        assert await client.call("t_flow.quick") == "quick"
        assert time.monotonic() - started < 1.0
        assert await client.collect_call(blocking_id) == ([], "blocking")


async def test_blocking_sync_handler_does_not_stall_frames():
    async with StreamTestClient() as client:
        blocking_id = await client.start("t_flow.blocking", {"seconds": 1.5})
        started = time.monotonic()
        await client.send({"t": "ping", "d": "still-there"})
        assert await client.receive() == {"t": "pong", "d": "still-there"}
        assert time.monotonic() - started < 1.0
        await client.collect_call(blocking_id)


# -- deadlines ------------------------------------------------------------------------------------------


async def test_call_past_its_timeout_fails_with_deadline_exceeded():
    async with StreamTestClient() as client:
        started = time.monotonic()
        error = await call_error(client, "t_flow.slow", {"seconds": 30, "tag": "deadline"}, timeout=0.2)
        assert error.code == "deadline_exceeded"
        assert time.monotonic() - started < 2.0


async def test_deadline_runs_the_handler_finally():
    async with StreamTestClient() as client:
        await call_error(client, "t_flow.slow", {"seconds": 30, "tag": "deadline-finally"}, timeout=0.2)
        assert STATE["deadline-finally"]["finally"]


async def test_stream_past_its_timeout_fails_with_deadline_exceeded_after_its_items():
    async with StreamTestClient() as client:
        call_id = await client.start("t_flow.park", {"tag": "deadline-stream"}, timeout=0.2)
        frames = await frames_for(client, call_id, 2)
        assert frames[0]["t"] == "next"
        assert frames[1]["t"] == "error" and frames[1]["code"] == "deadline_exceeded"


async def test_max_timeout_caps_a_longer_requested_timeout():
    with override_settings(STREAMING={"MAX_TIMEOUT": 0.2}):
        async with StreamTestClient() as client:
            error = await call_error(client, "t_flow.slow", {"seconds": 30}, timeout=60)
    assert error.code == "deadline_exceeded"


async def test_default_timeout_applies_to_a_call_without_one():
    with override_settings(STREAMING={"DEFAULT_TIMEOUT": 0.2}):
        async with StreamTestClient() as client:
            error = await call_error(client, "t_flow.slow", {"seconds": 30})
    assert error.code == "deadline_exceeded"


# -- heartbeats ------------------------------------------------------------------------------------------

FAST_HEARTBEAT = {"HEARTBEAT_INTERVAL": 0.1, "HEARTBEAT_TIMEOUT": 0.3}


async def test_hello_announces_the_heartbeat_interval():
    with override_settings(STREAMING=FAST_HEARTBEAT):
        async with StreamTestClient() as client:
            assert client.hello["heartbeat"] == 0.1


async def test_server_pings_a_silent_client():
    with override_settings(STREAMING=FAST_HEARTBEAT):
        async with StreamTestClient() as client:
            assert await client.receive(timeout=1.0) == {"t": "ping"}


async def test_silent_client_is_closed_with_4408():
    with override_settings(STREAMING=FAST_HEARTBEAT):
        async with StreamTestClient() as client:
            started = time.monotonic()
            assert await client.receive_close(timeout=2.0) == 4408
            assert time.monotonic() - started < 1.5


async def test_client_answering_pings_is_not_closed():
    with override_settings(STREAMING=FAST_HEARTBEAT):
        async with StreamTestClient() as client:
            pings = 0
            until = time.monotonic() + 1.0  # more than three heartbeat timeouts
            while time.monotonic() < until:
                frame = await client.receive(timeout=1.0)
                assert frame == {"t": "ping"}
                pings += 1
                await client.send({"t": "pong"})
            assert pings >= 3
            assert await client.call("t_flow.fast") == "fast"


async def test_ping_is_answered_with_pong_carrying_its_data():
    async with StreamTestClient() as client:
        await client.send({"t": "ping", "d": {"n": [1, 2]}})
        assert await client.receive() == {"t": "pong", "d": {"n": [1, 2]}}


# -- limits --------------------------------------------------------------------------------------------------


async def test_connection_over_the_process_limit_is_closed_with_4429():
    limit = StreamConsumer.open_connections + 1  # room for exactly one more
    with override_settings(STREAMING={"MAX_CONNECTIONS_PER_PROCESS": limit}):
        async with StreamTestClient():
            refused = StreamTestClient()
            try:
                with pytest.raises(ConnectionClosed) as info:
                    await refused.connect()
            finally:
                await refused.disconnect()
    assert info.value.code == 4429


async def test_closed_connection_frees_its_place_under_the_process_limit():
    before = StreamConsumer.open_connections
    with override_settings(STREAMING={"MAX_CONNECTIONS_PER_PROCESS": before + 1}):
        async with StreamTestClient():
            assert StreamConsumer.open_connections == before + 1
        async with StreamTestClient() as client:
            assert client.hello["t"] == "hello"
    assert StreamConsumer.open_connections == before


async def test_hello_announces_the_limits():
    settings = {"MAX_FRAME_BYTES": 5000, "MAX_CALLS_PER_CONNECTION": 7, "CLIENT_WINDOW": 9}
    with override_settings(STREAMING=settings):
        async with StreamTestClient() as client:
            hello = client.hello
    assert hello["t"] == "hello" and hello["v"] == 1 and isinstance(hello["conn"], str)
    assert hello["limits"] == {"max_frame": 5000, "max_calls": 7, "client_window": 9}


async def test_call_over_the_per_connection_limit_is_resource_exhausted():
    with override_settings(STREAMING={"MAX_CALLS_PER_CONNECTION": 2}):
        async with StreamTestClient() as client:
            await client.start("t_flow.numbers", {"tag": "a"}, credit=0)
            await client.start("t_flow.numbers", {"tag": "b"}, credit=0)
            error = await call_error(client, "t_flow.fast")
    assert error.code == "resource_exhausted"
    assert error.details == {"max_calls": 2}


async def test_ended_call_frees_its_place_under_the_per_connection_limit():
    with override_settings(STREAMING={"MAX_CALLS_PER_CONNECTION": 1}):
        async with StreamTestClient() as client:
            first = await client.start("t_flow.numbers", {"tag": "a"}, credit=0)
            await client.send({"t": "cancel", "id": first})
            assert await client.call("t_flow.fast") == "fast"
            assert await client.call("t_flow.fast") == "fast"


async def test_repeated_bad_frames_close_the_connection_with_4400():
    with override_settings(STREAMING={"MAX_BAD_FRAMES": 3}):
        async with StreamTestClient() as client:
            for _ in range(3):
                await client.send("not json")
            errors = [await client.receive() for _ in range(3)]
            assert all(e["t"] == "error" and e["id"] is None for e in errors)
            assert await client.receive_close() == 4400


async def test_bad_frames_below_the_limit_keep_the_connection_open():
    with override_settings(STREAMING={"MAX_BAD_FRAMES": 3}):
        async with StreamTestClient() as client:
            for _ in range(2):
                await client.send("not json")
                assert (await client.receive())["code"] == "invalid_argument"
            assert await client.call("t_flow.fast") == "fast"


async def test_frame_over_the_size_limit_closes_with_4413():
    with override_settings(STREAMING={"MAX_FRAME_BYTES": 200}):
        async with StreamTestClient() as client:
            await client.send({"t": "ping", "d": "x" * 300})
            assert await client.receive_close() == 4413


# -- bad input ---------------------------------------------------------------------------------------------


async def test_malformed_frame_gets_an_error_with_null_id_and_the_offending_id():
    async with StreamTestClient() as client:
        await client.send({"t": "credit", "id": 3, "n": 0})
        error = await client.receive()
    assert error["t"] == "error" and error["id"] is None
    assert error["code"] == "invalid_argument"
    assert error["details"] == {"id": 3}


async def test_binary_frame_is_a_malformed_frame():
    async with StreamTestClient() as client:
        await client.communicator.send_to(bytes_data=b'{"t":"ping"}')
        error = await client.receive()
    assert (error["id"], error["code"]) == (None, "invalid_argument")


async def test_call_id_not_above_the_last_is_refused_with_that_id():
    async with StreamTestClient() as client:
        await client.send({"t": "call", "id": 5, "m": "t_flow.fast"})
        await frames_for(client, 5, 1)
        await client.send({"t": "call", "id": 5, "m": "t_flow.fast"})
        error = await client.receive()
    assert (error["t"], error["id"], error["details"]) == ("error", None, {"id": 5})


async def test_frame_for_a_never_opened_call_is_refused_with_that_id():
    async with StreamTestClient() as client:
        await client.send({"t": "credit", "id": 9, "n": 1})
        error = await client.receive()
    assert (error["id"], error["code"], error["details"]) == (None, "invalid_argument", {"id": 9})


async def test_frame_for_an_ended_call_is_ignored():
    async with StreamTestClient() as client:
        assert await client.call("t_flow.fast") == "fast"
        await client.send({"t": "credit", "id": 1, "n": 1})
        await client.send({"t": "cancel", "id": 1})
        assert await client.nothing_received(0.2)


async def test_rejected_call_frame_still_uses_its_id():
    async with StreamTestClient() as client:
        await client.send({"t": "call", "id": 5, "m": ""})
        assert (await client.receive())["details"] == {"id": 5}
        await client.send({"t": "credit", "id": 5, "n": 1})  # an ended call: ignored
        assert await client.nothing_received(0.1)
        await client.send({"t": "call", "id": 5, "m": "t_flow.fast"})
        error = await client.receive()
    assert (error["id"], error["code"], error["details"]) == (None, "invalid_argument", {"id": 5})


async def test_frame_for_an_id_the_client_skipped_is_refused():
    async with StreamTestClient() as client:
        await client.send({"t": "call", "id": 3, "m": "t_flow.fast"})
        await frames_for(client, 3, 1)
        await client.send({"t": "cancel", "id": 2})
        error = await client.receive()
    assert (error["id"], error["details"]) == (None, {"id": 2})


async def test_item_beyond_the_client_window_fails_the_call_with_resource_exhausted():
    with override_settings(STREAMING={"CLIENT_WINDOW": 2}):
        async with StreamTestClient() as client:
            assert client.hello["limits"]["client_window"] == 2
            call_id = await client.start("t_flow.hold")
            for i in range(3):
                await client.send({"t": "next", "id": call_id, "d": i})
            error = await client.receive()
            assert (error["t"], error["id"], error["code"]) == ("error", call_id, "resource_exhausted")
            # The call is over: frames that crossed its error are ignored.
            await client.send({"t": "next", "id": call_id, "d": 9})
            await client.send({"t": "end", "id": call_id})
            assert await client.nothing_received(0.2)


async def test_unknown_method_is_unimplemented():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_flow.nope")
    assert error.code == "unimplemented"


# -- argument validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("i", 3, ["int", 3]),
        ("i", 3.0, ["int", 3]),
        ("s", "hé", ["str", "hé"]),
        ("b", True, ["bool", True]),
        ("f", 2, ["float", 2.0]),
        ("f", 2.5, ["float", 2.5]),
        ("o", None, ["NoneType", None]),
        ("o", 4, ["int", 4]),
        ("li", [1, 2.0], ["list", [1, 2]]),
        ("lit", "b", ["str", "b"]),
        ("point", {"x": 1}, ["Point", {"x": 1, "y": 0}]),
        ("color", "blue", ["Color", "blue"]),
        ("when", "2024-01-02T03:04:05+00:00", ["datetime", "2024-01-02T03:04:05Z"]),
    ],
)
async def test_argument_is_converted_to_its_type_hint(name, value, expected):
    async with StreamTestClient() as client:
        result = await client.call("t_args.types", {name: value})
    assert result[name] == expected


@pytest.mark.parametrize(
    "name, value, key, message",
    [
        ("i", "3", "i", "Must be an integer."),
        ("i", True, "i", "Must be an integer."),
        ("i", 3.5, "i", "Must be an integer."),
        ("s", 5, "s", "Must be a string."),
        ("b", 1, "b", "Must be a boolean."),
        ("b", "true", "b", "Must be a boolean."),
        ("f", "1.5", "f", "Must be a number."),
        ("f", True, "f", "Must be a number."),
        ("o", "x", "o", "Must be an integer. Or: Must be null."),
        ("li", 3, "li", "Must be a list."),
        ("li", [1, "x"], "li.1", "Must be an integer."),
        ("lit", "c", "lit", "Must be one of ['a', 'b']."),
        ("point", {"y": 1}, "point.x", "This field is required."),
        ("point", {"x": "1"}, "point.x", "Must be an integer."),
        ("point", {"x": 1, "z": 2}, "point", "Unknown field 'z'."),
        ("point", [1, 2], "point", "Must be an object."),
        ("color", "purple", "color", "Must be one of ['red', 'blue']."),
        ("when", "yesterday", "when", "Must be an ISO 8601 date and time."),
        ("when", 1700000000, "when", "Must be an ISO 8601 date and time."),
    ],
)
async def test_argument_of_the_wrong_type_is_invalid_argument(name, value, key, message):
    async with StreamTestClient() as client:
        error = await call_error(client, "t_args.types", {name: value})
    assert error.code == "invalid_argument"
    assert error.details == {"errors": {key: [message]}}


async def test_missing_required_argument_is_invalid_argument():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_args.required", {"b": "y"})
    assert error.code == "invalid_argument"
    assert error.details == {"errors": {"a": ["This argument is required."]}}


async def test_unknown_argument_is_invalid_argument():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_args.required", {"a": 1, "zzz": 2})
    assert error.details == {"errors": {"zzz": ["Unknown argument."]}}


async def test_every_argument_error_is_reported_at_once():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_args.required", {"b": 3, "zzz": 2})
    assert error.details == {
        "errors": {
            "a": ["This argument is required."],
            "b": ["Must be a string."],
            "zzz": ["Unknown argument."],
        }
    }
    assert error.message == "Invalid arguments: a, b, zzz."


async def test_valid_arguments_with_defaults_reach_the_handler():
    async with StreamTestClient() as client:
        assert await client.call("t_args.required", {"a": 1}) == {"a": 1, "b": "x"}


async def test_incoming_item_of_the_wrong_type_is_invalid_argument():
    async with StreamTestClient() as client:
        call_id = await client.start("interop.sum")
        await client.send({"t": "next", "id": call_id, "d": {"v": "x"}})
        await client.send({"t": "end", "id": call_id})
        with pytest.raises(StreamError) as info:
            await client.collect_call(call_id)
    assert info.value.code == "invalid_argument"
    assert info.value.details == {"errors": {"item.v": ["Must be an integer."]}}


# -- DRF serializers ---------------------------------------------------------------------------------------


async def test_serializer_validated_data_is_passed_as_keyword_arguments():
    async with StreamTestClient() as client:
        result = await client.call("t_ser.place", {"quantity": "3"})
    assert result == {"quantity": ["int", 3], "note": ""}


async def test_serializer_errors_are_invalid_argument_with_field_details():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_ser.place", {"quantity": 0})
    assert error.code == "invalid_argument"
    assert error.details == {"errors": {"quantity": ["Ensure this value is greater than or equal to 1."]}}


async def test_serializer_reports_missing_fields():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_ser.place", {})
    assert error.details == {"errors": {"quantity": ["This field is required."]}}


# -- encoding of outgoing values ---------------------------------------------------------------------------


async def test_outgoing_values_are_encoded_as_json():
    async with StreamTestClient() as client:
        items, _ = await client.collect("t_enc.values")
    assert items == [
        {"x": 1, "y": 2},
        1.25,  # DRF's JSONEncoder turns a Decimal into a float
        "2024-01-02T03:04:05Z",
        "2024-01-02",
        "12345678-1234-5678-1234-567812345678",
        {"quantity": 3, "note": "n"},
        {"quantity": 4, "note": "m"},
        "blue",
    ]


async def test_unserializable_item_fails_the_call_with_internal():
    async with StreamTestClient() as client:
        call_id = await client.start("t_enc.unserializable")
        frames = await frames_for(client, call_id, 2)
    assert frames[0] == {"t": "next", "id": call_id, "d": 1}
    assert frames[1]["t"] == "error" and frames[1]["code"] == "internal"
    assert "object" not in frames[1]["message"]


async def test_unserializable_result_fails_the_call_with_internal():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_enc.unserializable_result")
    assert error.code == "internal"


async def test_nan_result_fails_the_call_with_internal():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_enc.nan")
    assert error.code == "internal"


# -- exceptions raised by handlers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, code",
    [
        ("drf_not_found", "not_found"),
        ("drf_permission_denied", "permission_denied"),
        ("drf_not_authenticated", "unauthenticated"),
        ("drf_throttled", "resource_exhausted"),
        ("object_does_not_exist", "not_found"),
    ],
)
async def test_framework_exception_maps_to_its_code(kind, code):
    async with StreamTestClient() as client:
        error = await call_error(client, "t_err.raise_", {"kind": kind})
    assert error.code == code


async def test_drf_exception_message_is_kept():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_err.raise_", {"kind": "drf_not_found"})
    assert error.message == "No such order."


async def test_drf_validation_error_with_fields_is_invalid_argument_with_errors():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_err.raise_", {"kind": "drf_validation_dict"})
    assert error.code == "invalid_argument"
    assert error.details == {"errors": {"name": ["Too short."]}}


async def test_drf_validation_error_without_fields_is_under_non_field_errors():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_err.raise_", {"kind": "drf_validation_list"})
    assert error.details == {"errors": {"non_field_errors": ["Bad input."]}}


async def test_model_does_not_exist_is_not_found():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_err.missing_user")
    assert error.code == "not_found"


async def test_error_whose_details_cannot_be_encoded_still_ends_the_call_without_them():
    # Over HTTP such an error was always sent without its details; over the
    # WebSocket the call used to get no terminal frame at all.
    async with StreamTestClient(timeout=2) as client:
        error = await call_error(client, "t_err.unencodable_details")
        call_id = await client.start("t_err.stream_unencodable_details")
        frames = await frames_for(client, call_id, 2)
        assert await client.call("t_flow.fast") == "fast"  # the connection serves on
    assert (error.code, error.message, error.details) == ("failed_precondition", "Stock changed.", {})
    assert frames == [
        {"t": "next", "id": call_id, "d": 1},
        {"t": "error", "id": call_id, "code": "aborted", "message": "Conflict.", "details": {}},
    ]


async def test_handler_that_raises_cancelled_error_itself_ends_with_cancelled():
    # As over HTTP; the WebSocket used to leave such a call without a terminal frame.
    async with StreamTestClient(timeout=2) as client:
        error = await call_error(client, "t_err.raise_cancelled")
    assert (error.code, error.message) == ("cancelled", "The call was cancelled.")


async def test_unexpected_exception_is_internal_without_its_text():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_err.raise_", {"kind": "runtime"})
    assert error.code == "internal"
    assert "secret-detail-42" not in error.message
    assert "secret-detail-42" not in str(error.details)


# -- permissions ----------------------------------------------------------------------------------------------


async def test_view_permission_rejects_anonymous_with_unauthenticated():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_perm.whoami")
    assert error.code == "unauthenticated"


# Users are made by sync fixtures, on the thread pytest-django manages the
# connection of; a connection opened in a throwaway thread would stay open.


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def staff_user(make_user):
    return make_user("carol", is_staff=True)


@pytest.fixture
def cleanup_viewer(make_user):
    from django.contrib.auth.models import Permission

    user = make_user("dave")
    user.user_permissions.add(Permission.objects.get(codename="view_cleanup", content_type__app_label="demo"))
    return user


@pytest.mark.django_db(transaction=True)
async def test_view_permission_admits_an_authenticated_user(user):
    async with StreamTestClient(user=user) as client:
        assert await client.call("t_perm.whoami") == "alice"


async def test_method_permission_overrides_the_view_permission():
    async with StreamTestClient() as client:
        assert await client.call("t_perm.public") == "public"


@pytest.mark.django_db(transaction=True)
async def test_method_permission_denies_an_authenticated_user_with_permission_denied(user):
    async with StreamTestClient(user=user) as client:
        error = await call_error(client, "t_perm.staff")
    assert error.code == "permission_denied"


@pytest.mark.django_db(transaction=True)
async def test_method_permission_admits_a_staff_user(staff_user):
    async with StreamTestClient(user=staff_user) as client:
        assert await client.call("t_perm.staff") == "staff"


@pytest.mark.django_db(transaction=True)
async def test_permission_that_queries_the_database_admits_a_user_with_the_permission(cleanup_viewer):
    async with StreamTestClient(user=cleanup_viewer) as client:
        assert await client.call("t_perm.cleanup_viewer") == "allowed"
    # Not declared loop-safe: run once, in a worker thread (never tried on the loop first).
    assert len(PERMISSION_THREADS) == 1
    assert PERMISSION_THREADS[0] != threading.get_ident()


@pytest.mark.django_db(transaction=True)
async def test_permission_that_queries_the_database_denies_a_user_without_it(user):
    async with StreamTestClient(user=user) as client:
        error = await call_error(client, "t_perm.cleanup_viewer")
    assert error.code == "permission_denied"


# -- origin --------------------------------------------------------------------------------------------------


async def test_handshake_from_a_foreign_origin_is_refused():
    client = StreamTestClient(headers=[(b"origin", b"http://evil.example")])
    try:
        with pytest.raises(ConnectionClosed):
            await client.connect()
    finally:
        await client.disconnect()


async def test_handshake_from_an_allowed_host_origin_is_accepted():
    async with StreamTestClient(headers=[(b"origin", b"http://localhost")]) as client:
        assert client.hello["t"] == "hello"


async def test_handshake_without_origin_is_accepted():
    async with StreamTestClient() as client:
        assert client.hello["t"] == "hello"


async def test_handshake_from_an_allowed_origins_entry_is_accepted():
    with override_settings(STREAMING={"ALLOWED_ORIGINS": ["https://app.example.com"]}):
        async with StreamTestClient(headers=[(b"origin", b"https://app.example.com")]) as client:
            assert client.hello["t"] == "hello"


# -- registry ----------------------------------------------------------------------------------------------


def test_server_stream_that_is_not_an_async_generator_is_improperly_configured():
    class NotAGenerator(StreamView):
        namespace = "bad"

        @server_stream
        async def items(self, ctx):
            return [1, 2]

    with pytest.raises(ImproperlyConfigured, match="async generator"):
        StreamRegistry().register(NotAGenerator)


def test_sync_generator_server_stream_is_improperly_configured():
    class SyncGenerator(StreamView):
        namespace = "bad"

        @server_stream
        def items(self, ctx):
            yield 1

    with pytest.raises(ImproperlyConfigured, match="async generator"):
        StreamRegistry().register(SyncGenerator)


def test_unary_that_yields_is_improperly_configured():
    class YieldingUnary(StreamView):
        namespace = "bad"

        @unary
        async def get(self, ctx):
            yield 1

    with pytest.raises(ImproperlyConfigured, match="must not yield"):
        StreamRegistry().register(YieldingUnary)


def test_sync_client_stream_is_improperly_configured():
    class SyncClientStream(StreamView):
        namespace = "bad"

        @client_stream
        def total(self, ctx, items):
            return 0

    with pytest.raises(ImproperlyConfigured, match="must be async"):
        StreamRegistry().register(SyncClientStream)


def test_argument_of_an_unsupported_type_is_improperly_configured():
    class UnsupportedType(StreamView):
        namespace = "bad"

        @unary
        async def get(self, ctx, z: complex) -> None:
            return None

    with pytest.raises(ImproperlyConfigured, match="complex"):
        StreamRegistry().register(UnsupportedType)


def test_duplicate_namespace_is_improperly_configured():
    class First(StreamView):
        namespace = "dup"

        @unary
        async def get(self, ctx) -> None:
            return None

    class Second(StreamView):
        namespace = "dup"

        @unary
        async def get(self, ctx) -> None:
            return None

    reg = StreamRegistry()
    reg.register(First)
    with pytest.raises(ImproperlyConfigured, match="already registered"):
        reg.register(Second)


def test_registering_the_same_view_twice_is_harmless():
    reg = StreamRegistry()
    assert reg.register(FlowViews) is FlowViews
    assert reg.register(FlowViews) is FlowViews
    assert "t_flow.numbers" in reg


def test_view_without_namespace_is_improperly_configured():
    class Nameless(StreamView):
        @unary
        async def get(self, ctx) -> None:
            return None

    with pytest.raises(ImproperlyConfigured, match="namespace"):
        StreamRegistry().register(Nameless)


def test_namespace_that_is_not_an_identifier_is_improperly_configured():
    class Dashed(StreamView):
        namespace = "not-valid"

        @unary
        async def get(self, ctx) -> None:
            return None

    with pytest.raises(ImproperlyConfigured, match="namespace"):
        StreamRegistry().register(Dashed)


def test_view_without_methods_is_improperly_configured():
    class Empty(StreamView):
        namespace = "empty"

        async def helper(self, ctx) -> None:
            return None

    with pytest.raises(ImproperlyConfigured, match="no streaming methods"):
        StreamRegistry().register(Empty)


def test_unregister_removes_the_namespace_methods():
    reg = StreamRegistry()
    reg.register(FlowViews)
    reg.unregister("t_flow")
    assert reg.get("t_flow.numbers") is None
    assert "t_flow" not in reg.views()


def test_register_sets_each_method_kind():
    class Kinds(StreamView):
        namespace = "kinds"

        @unary
        async def u(self, ctx) -> None: ...

        @server_stream
        async def s(self, ctx):
            yield 1

        @client_stream
        async def c(self, ctx, items: AsyncIterator[int]) -> None: ...

        @bidi_stream
        async def b(self, ctx, items: AsyncIterator[int]):
            yield 1

    reg = StreamRegistry()
    reg.register(Kinds)
    assert {m.name: str(m.kind) for m in reg.methods()} == {
        "kinds.b": "bidi_stream",
        "kinds.c": "client_stream",
        "kinds.s": "server_stream",
        "kinds.u": "unary",
    }


def test_autodiscovery_registers_the_demo_interop_views():
    from project.demo.streams import InteropStreams

    assert registry.views()["interop"] is InteropStreams
    assert registry.get("interop.unary").view_class is InteropStreams
    assert str(registry.get("interop.count").kind) == "server_stream"
    assert str(registry.get("interop.sum").kind) == "client_stream"
    assert str(registry.get("interop.echo").kind) == "bidi_stream"


# -- system checks ---------------------------------------------------------------------------------------------


def check_ids(streaming: dict) -> list[str]:
    with override_settings(STREAMING=streaming):
        return [message.id for message in checks.check_settings()]


def test_default_settings_pass_the_checks():
    assert check_ids({}) == []


def test_check_reports_a_setting_that_is_not_a_positive_number():
    assert check_ids({"CLIENT_WINDOW": 0}) == ["streaming_app.E002"]


def test_check_reports_a_heartbeat_timeout_not_longer_than_the_interval():
    assert check_ids({"HEARTBEAT_INTERVAL": 10, "HEARTBEAT_TIMEOUT": 10}) == ["streaming_app.E004"]


def test_check_reports_an_unknown_setting():
    assert check_ids({"HEARTBEAT": 5}) == ["streaming_app.W001"]


def test_check_warns_of_a_frame_limit_daphne_would_drop():
    assert check_ids({"MAX_FRAME_BYTES": 1024 * 1024}) == ["streaming_app.W002"]


def test_check_reports_an_unimportable_class():
    assert check_ids({"DEFAULT_PERMISSION_CLASSES": ["nowhere.Nothing"]}) == ["streaming_app.E003"]
