"""The admin's own stream: ``streaming_admin.live``, what the live calls page shows.

The page is updated through the protocol it monitors (a server stream over
the WebSocket, read with the app's JS client), not by reloading: the same
credit, heartbeat and reconnection rules apply, and the page is one more call
in the list. Only active staff with the ``view_livecall`` permission may call it.

Registered by ``StreamingAppConfig.ready()`` whatever ``STREAMS_MODULE`` is, so the
live page works in projects that name their stream modules otherwise.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, AsyncIterator

from channels.db import database_sync_to_async
from django.db.models import Count
from django.utils import timezone
from rest_framework.permissions import BasePermission

from .conf import streaming_settings
from .context import CallContext
from .decorators import server_stream
from .exceptions import StreamError
from .monitor import live_calls
from .presence import presence_stats, presence_topics
from .registry import registry
from .switches import disabled_names
from .views import StreamView

NAMESPACE = "streaming_admin"
LIVE_METHOD = f"{NAMESPACE}.live"
MAX_ROWS = 500  # calls sent per snapshot; the page says how many more there are
SUMMARY_WINDOW = timedelta(hours=1)


class CanViewLiveCalls(BasePermission):
    """Active staff with ``streaming_app.view_livecall``: whoever may open the live page."""

    message = "Only staff allowed to view live calls may watch them."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and user.is_active
            and user.is_staff
            and user.has_perm("streaming_app.view_livecall")
        )


def history_summary(since: Any) -> dict[str, dict[str, Any]]:
    """Per method, the calls that ended since ``since``: how many, and how they ended."""
    from .models import FinishedCall

    rows = (
        FinishedCall.objects.filter(ended_at__gte=since)
        .values_list("method", "end_reason", "error_code")
        .annotate(n=Count("id"))
        .order_by()
    )
    summary: dict[str, dict[str, Any]] = {}
    for method, reason, code, n in rows:
        entry = summary.setdefault(method, {"calls": 0, "ended": {}, "errors": {}})
        entry["calls"] += n
        entry["ended"][reason] = entry["ended"].get(reason, 0) + n
        if code:
            entry["errors"][code] = entry["errors"].get(code, 0) + n
    return summary


async def live_snapshot() -> dict[str, Any]:
    """One frame of the live page: processes, calls, and the per-method summary."""
    live = await live_calls()
    history = await database_sync_to_async(history_summary)(timezone.now() - SUMMARY_WINDOW)
    disabled = await disabled_names()
    methods: dict[str, dict[str, Any]] = {}
    for method in registry.methods():
        methods[method.name] = {
            "method": method.name,
            "namespace": method.namespace,
            "kind": str(method.kind),
            "disabled": method.name in disabled,
            "namespace_disabled": method.namespace in disabled,
            "open": 0,
            "rate": 0.0,
            "calls": 0,
            "ended": {},
            "errors": {},
        }
    for call in live["calls"]:
        entry = methods.get(call["method"])
        if entry is not None and not call["lost"]:
            entry["open"] += 1
            entry["rate"] = round(entry["rate"] + call["rate"], 1)
    for name, entry in history.items():
        if name in methods:
            methods[name].update(entry)
    calls = live["calls"]
    topics = await topics_snapshot(live.get("topics", {}))
    return {
        "at": live["at"],
        "processes": live["processes"],
        "calls": calls[:MAX_ROWS],
        "total_calls": len(calls),
        "summary": list(methods.values()),
        "window": int(SUMMARY_WINDOW.total_seconds()),
        "topics": topics[:MAX_ROWS],
        "total_topics": len(topics),
    }


async def topics_snapshot(subscribers: dict[str, int]) -> list[dict[str, Any]]:
    """Per topic, across processes: its subscribers, presence watchers and members (clients, users, anonymous).

    A presence store that cannot be read leaves the member columns empty
    rather than the page blank.
    """
    rows: dict[str, dict[str, Any]] = {}

    def row(name: str) -> dict[str, Any]:
        return rows.setdefault(name, {"topic": name, "subscribers": 0, "watchers": 0, "members": None})

    for name, count in subscribers.items():
        base, presence_events, _ = name.partition("~presence")
        if presence_events:
            row(base)["watchers"] += count
        else:
            row(name)["subscribers"] += count
    try:
        member_topics = await presence_topics()
    except StreamError:
        member_topics = []
    for name in member_topics[:MAX_ROWS]:
        row(name)
    for name, entry in rows.items():
        if name in member_topics or entry["watchers"]:
            try:
                entry["members"] = await presence_stats(name)
            except StreamError:
                pass
    return sorted(rows.values(), key=lambda entry: entry["topic"])


class StreamingAdminStreams(StreamView):
    namespace = NAMESPACE
    permission_classes = [CanViewLiveCalls]

    @server_stream
    async def live(self, ctx: CallContext, interval: float | None = None) -> AsyncIterator[dict[str, Any]]:
        """A snapshot now, then one every ``interval`` seconds (default: the flush interval)."""
        period = float(interval or streaming_settings.MONITOR_INTERVAL)
        period = min(max(period, 0.2), 60.0)
        while True:
            yield await live_snapshot()
            await asyncio.sleep(period)
