"""A user's module, type-checked (never run) by tests/unit/test_typing.py.

It uses the public API the way the README does. Every ``assert_type`` fails
under mypy when the name it checks reaches a user as ``Any`` (a lazy export
without its ``TYPE_CHECKING`` import, a decorator typed as returning ``Any``),
and subclassing an ``Any`` fails under ``--strict``.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, assert_type

from django.contrib.auth.models import User
from django.db import models

from streaming_app import (
    CallContext,
    Event,
    ModelStreamView,
    StreamError,
    StreamView,
    apublish,
    client_stream,
    publish,
    publish_changes,
    register,
    server_stream,
    subscribe,
    unary,
)
from streaming_app.client import ClientCall, NotFound, ResourceExhausted, RetryThrottled, StreamClient, SyncStreamClient
from streaming_app.hub import Subscription


@register
class Orders(StreamView):
    namespace = "orders"

    @unary
    async def total(self, ctx: CallContext, customer: int) -> int:
        return customer

    @server_stream(name="countdown")
    async def countdown(self, ctx: CallContext, start: int) -> AsyncIterator[dict[str, int]]:
        for left in range(start, 0, -1):
            yield {"left": left}

    @client_stream
    async def upload(self, ctx: CallContext, items: AsyncIterator[str]) -> int:
        return len([item async for item in items])


@register(namespace="users")
class Users(ModelStreamView):
    queryset = User.objects.all()


async def server_side(view: Orders, users: Users, ctx: CallContext) -> None:
    assert_type(Orders, type[Orders])  # @register gives the class back
    assert_type(await view.total(ctx, 1), int)  # the decorators keep the method's type
    assert_type(view.countdown(ctx, 3), AsyncIterator[dict[str, int]])
    assert_type(users.get_queryset(), models.QuerySet[Any])
    assert_type(publish("orders", {"id": 1}), str)
    assert_type(await apublish("orders", {"id": 1}), str)
    assert_type(subscribe("orders"), Subscription)
    async for event in subscribe("orders"):
        assert_type(event, Event)
    assert_type(publish_changes(User.objects.filter(is_active=True)), None)
    error = StreamError("no")
    assert_type(error.details, dict[str, Any])


async def client_side() -> None:
    async with StreamClient("ws://127.0.0.1:8000/ws/", token="t") as client:
        assert_type(client, StreamClient)
        assert_type(await client.open("orders.upload"), ClientCall)
        stream = client.stream("orders.countdown", start=3)
        assert_type(stream.last_eid, str | None)
        try:
            await client.call("orders.total", customer=1)
        except NotFound as exc:
            assert_type(exc, NotFound)  # the per-code classes are classes, not type[StreamError]
            assert_type(exc.message, str)
    async with StreamClient("ws://127.0.0.1:8000/ws/", retry_throttled=RetryThrottled(retries=2, max_wait=5.0)) as patient:
        try:
            await patient.call("orders.total", customer=1)
        except ResourceExhausted as throttled:
            assert_type(throttled.retry_after, float | None)
    with SyncStreamClient("ws://127.0.0.1:8000/ws/") as sync_client:
        assert_type(sync_client, SyncStreamClient)
