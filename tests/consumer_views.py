"""Test-only stream views of the WebSocket consumer tests (tests/transport/test_websocket_*.py), and their helpers.

Not a test module. Each test module that uses these views imports the autouse
``views`` fixture, which registers them on the project's registry for the test
and removes them after it; ``STATE`` and ``PERMISSION_THREADS`` record what the
handlers did. Every wait is bounded: the client's receive has a timeout and
polling loops (``eventually``) give up after a few seconds.
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
from django.core.exceptions import ObjectDoesNotExist
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission, IsAdminUser, IsAuthenticated

from streaming_app.decorators import client_stream, server_stream, unary
from streaming_app.exceptions import StreamError
from streaming_app.registry import registry
from streaming_app.testing import StreamTestClient
from streaming_app.views import StreamView


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
