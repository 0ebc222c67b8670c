"""The ``interop`` service of shared/interop.md, which every client is checked against, and the demo's streams."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Literal, TypedDict

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from streaming_app import ModelStreamView, StreamView, apublish, bidi_stream, client_stream, server_stream, unary
from streaming_app.exceptions import ERROR_CLASSES, InvalidArgument, NotFound, PermissionDenied, StreamError
from streaming_app.merge import merge
from streaming_app.presence import presence_by_user

from streaming_app.registry import registry

from .chat import ChatStreams
from .models import Cleanup, Note

MAX_BIG = 16 * 1024 * 1024

logger = logging.getLogger(__name__)


@dataclass
class SumItem:
    v: int


# What the interop methods send (shared/interop.md); the schema and generated clients read them.
class Empty(TypedDict):
    pass


class Payload(TypedDict):
    payload: str


class WhoAmI(TypedDict):
    username: str
    is_staff: bool


class Ok(TypedDict):
    ok: bool


class CountItem(TypedDict):
    i: int


class CountResult(TypedDict):
    total: int


class SumResult(TypedDict):
    sum: int
    count: int


class CleanupCount(TypedDict):
    count: int


class BigResult(TypedDict):
    data: str


class Published(TypedDict):
    eid: str


class RoomPresence(TypedDict):
    """A member of an ``interop.room`` who came or went (``user`` None: anonymous)."""

    presence: Literal["join", "leave"]
    user: str | None
    client: str


class RoomUser(TypedDict):
    user: str | None
    clients: int


class RoomMembers(TypedDict):
    clients: int
    users: list[RoomUser]


class RemovedNote(TypedDict):
    id: int


def error_for(code: str, message: str) -> StreamError:
    if code not in ERROR_CLASSES:
        return InvalidArgument(f"Unknown error code {code!r}.", {"code": code})
    return ERROR_CLASSES[code](message)


@sync_to_async
def record_cleanup(tag: str) -> None:
    with transaction.atomic():
        Cleanup.objects.get_or_create(tag=tag)
        Cleanup.objects.filter(tag=tag).update(count=F("count") + 1)


class LimitedThrottle(SimpleRateThrottle):
    """``interop.limited``: REST_FRAMEWORK's "interop.limited" rate per (user or client IP, ``key``).

    Counted in Django's cache, so across processes when they share it (Redis).
    """

    scope = "interop.limited"

    def get_cache_key(self, request, view) -> str:
        who = f"user:{request.user.pk}" if request.user.is_authenticated else f"ip:{self.get_ident(request)}"
        key = hashlib.sha256(str(view.kwargs.get("key", "")).encode()).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": f"{who}:{key}"}


class PublishBudget(BaseThrottle):
    """``interop.publish``: at most ``INTEROP_PUBLISH_BYTES_PER_HOUR`` per (user or client IP) an hour.

    Anyone may publish, and the per-topic caps (64 KiB events, 1 MiB of history,
    keys expiring with it after an hour) bound one topic, not how many topics a
    client fills: without this, one socket at its 1,000 calls a second could
    spread 64 MB a second over fresh topics. A budget in bytes, not a call rate,
    because what it protects is Redis's memory, and a rate low enough to protect
    it would refuse the interop tests' thousands of small publishes. Each publish
    costs its encoded data and topic plus ``OVERHEAD`` (what Redis keeps beside
    an entry: its id, field names, the topic's keys), so a flood of tiny events
    over many topics is counted too. Counted in Django's cache, so across
    processes when they share it (Redis); a fixed hourly window.
    """

    OVERHEAD = 256
    WINDOW = 3600
    scope = "interop.publish"

    def allow_request(self, request, view) -> bool:
        budget = getattr(settings, "INTEROP_PUBLISH_BYTES_PER_HOUR", 64 * 1024 * 1024)
        data, topic = view.kwargs.get("data"), view.kwargs.get("topic", "")
        cost = len(json.dumps(data)) + len(str(topic)) + self.OVERHEAD  # ASCII JSON: never fails, never under
        key = self.cache_key(self.ident(request))
        try:
            try:
                used = cache.incr(key, cost)
            except ValueError:  # the window's first publish
                # add() is atomic: if another process made the key meanwhile, count on it.
                used = cost if cache.add(key, cost, timeout=self.WINDOW + 60) else cache.incr(key, cost)
        except Exception:  # the cache (Redis) is down: the publish then reports the broker as unavailable
            logger.warning("interop.publish: the throttle's cache is unreachable; not counting", exc_info=True)
            return True
        return used <= budget

    def wait(self) -> float:
        return float(self.WINDOW - int(time.time()) % self.WINDOW)

    def ident(self, request) -> str:
        return f"user:{request.user.pk}" if request.user.is_authenticated else f"ip:{self.get_ident(request)}"

    def cache_key(self, ident: str) -> str:
        """The counter of ``ident`` in this hour's window (tests clear it to start from zero)."""
        return f"throttle_{self.scope}_{ident}_{int(time.time()) // self.WINDOW}"


class InteropStreams(StreamView):
    namespace = "interop"

    # Every interop method but publish is safe: a GET may call it (shared/interop.md, "HTTP verbs").
    @unary(safe=True)
    async def empty(self, ctx) -> Empty:
        return {}

    @unary(name="unary", safe=True)  # the attribute cannot be "unary": that would hide the decorator
    async def unary_payload(self, ctx, payload: str) -> Payload:
        return {"payload": payload}

    @unary(permission_classes=[IsAuthenticated], safe=True)
    async def whoami(self, ctx) -> WhoAmI:
        return {"username": ctx.user.get_username(), "is_staff": ctx.user.is_staff}

    @unary(permission_classes=[IsAdminUser], safe=True)
    async def staff_only(self, ctx) -> Ok:
        return {"ok": True}

    @server_stream(result=CountResult)
    async def count(self, ctx, n: int, interval_ms: int = 0, start: int = 0) -> AsyncIterator[CountItem]:
        if n < 0:
            raise InvalidArgument("n must not be negative.", {"errors": {"n": ["Must be >= 0."]}})
        for k in range(start, start + n):
            if interval_ms and k != start:
                await asyncio.sleep(interval_ms / 1000)
            yield {"i": k}
        ctx.result = {"total": n}

    @client_stream
    async def sum(self, ctx, items: AsyncIterator[SumItem]) -> SumResult:
        total = count = 0
        async for item in items:
            total += item.v
            count += 1
        return {"sum": total, "count": count}

    @bidi_stream
    async def echo(self, ctx, items: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for item in items:
            yield item

    @unary(safe=True)
    async def fail(self, ctx, code: str, message: str = "") -> None:
        raise error_for(code, message)

    @server_stream
    async def fail_after(self, ctx, n: int, code: str) -> AsyncIterator[CountItem]:
        for k in range(n):
            yield {"i": k}
        raise error_for(code, f"failed after {n} items")

    @server_stream
    async def forever(self, ctx, interval_ms: int = 10, tag: str = "") -> AsyncIterator[CountItem]:
        k = 0
        try:
            while True:
                yield {"i": k}
                k += 1
                await asyncio.sleep(max(interval_ms, 0) / 1000)
        finally:
            await record_cleanup(tag)

    @unary(safe=True)
    def cleanups(self, ctx, tag: str = "") -> CleanupCount:
        row = Cleanup.objects.filter(tag=tag).first()
        return {"count": row.count if row else 0}

    @unary(safe=True)
    async def crash(self, ctx) -> None:
        raise RuntimeError("interop crash: secret-7f3a")

    @unary(safe=True)
    async def big(self, ctx, size: int) -> BigResult:
        if not 0 <= size <= MAX_BIG:
            raise InvalidArgument(f"size must be between 0 and {MAX_BIG}.", {"errors": {"size": ["Out of range."]}})
        return {"data": "x" * size}

    @unary(throttle_classes=[PublishBudget])  # not safe: it publishes, so a GET answers 405
    async def publish(self, ctx, topic: str, data: Any) -> Published:
        return {"eid": await apublish(f"interop.{topic}", data)}

    @unary(safe=True, throttle_classes=[LimitedThrottle])
    async def limited(self, ctx, key: str = "") -> Ok:
        return {"ok": True}

    @server_stream
    async def subscribe(self, ctx, topic: str) -> AsyncIterator[Any]:
        async for event in ctx.subscribe(f"interop.{topic}"):
            yield event

    @server_stream
    async def room(self, ctx, topic: str) -> AsyncIterator[RoomPresence | Any]:
        """Be in the room while the call lasts; hear who comes and goes (own join first) and what is published."""
        name = f"interop.{topic}"
        comings = await ctx.presence_events(name)  # live before joining: the own join is its first event
        published = await ctx.subscribe(name)
        await ctx.join(name)

        async def arrivals():
            async for event in comings:
                yield {key: event.data[key] for key in ("presence", "user", "client")}

        async for item in merge(arrivals(), published):
            yield item

    @unary(safe=True)
    async def presence(self, ctx, topic: str) -> RoomMembers:
        members = await ctx.presence(f"interop.{topic}")
        return {"clients": len(members), "users": presence_by_user(members)}


class NoteSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", default=None, allow_null=True, read_only=True)

    class Meta:
        model = Note
        fields = ["id", "text", "public", "owner", "updated"]


class NoteStreams(ModelStreamView):
    """The demo's live list: ``notes.watch(id=None, public=None)`` sends a snapshot, then changes, per viewer.

    ``is_visible`` is ``get_queryset()``'s rule for one row, so every watcher
    of a process shares one read of each change.
    """

    namespace = "notes"
    queryset = Note.objects.select_related("owner")
    serializer_class = NoteSerializer
    filter_fields = ["id", "public"]

    def get_queryset(self):
        queryset = super().get_queryset()
        user = self.request.user
        if user.is_authenticated:
            return queryset.filter(Q(public=True) | Q(owner=user))
        return queryset.filter(public=True)

    def is_visible(self, note: Note) -> bool:
        user = self.request.user
        return note.public or (user.is_authenticated and note.owner_id == user.pk)

    @unary(result=NoteSerializer)
    def add(self, ctx, text: str, public: bool = True) -> dict:
        owner = ctx.user if ctx.user.is_authenticated else None
        if not public and owner is None:
            raise InvalidArgument("Sign in to add a private note.", {"errors": {"public": ["Anonymous notes are public."]}})
        return NoteSerializer(Note.objects.create(text=text[:500], public=public, owner=owner)).data

    @unary(result=NoteSerializer)
    def edit(self, ctx, id: int, text: str | None = None, public: bool | None = None) -> dict:
        note = self._own(ctx, id)
        if text is not None:
            note.text = text[:500]
        if public is not None:
            note.public = public
        note.save()
        return NoteSerializer(note).data

    @unary
    def remove(self, ctx, id: int) -> RemovedNote:
        self._own(ctx, id).delete()
        return {"id": id}

    def _own(self, ctx, id: int) -> Note:
        note = Note.objects.filter(pk=id).first()
        if note is None:
            raise NotFound(f"No note {id}.")
        if note.owner_id is not None and note.owner_id != ctx.user.pk:
            raise PermissionDenied("Only its owner may change this note.")
        return note


# Autodiscovery registers the views defined here; the chat room lives in its own module.
registry.register(ChatStreams)
