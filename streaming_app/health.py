"""``<prefix>/_health``: whether this process can serve, for a load balancer or an orchestrator.

200 ``{"status": "ok"}`` while the process reaches its database and its
broker; 503 ``{"status": "unavailable", "failing": [...]}`` naming the parts
it cannot reach (``database``, ``broker``); 503 ``{"status": "draining"}``
once it has begun to drain (:mod:`streaming_app.drain`), so that the balancer
sends new clients elsewhere while the process finishes its calls.

Each part is checked afresh on every request, both at once, each within
:data:`CHECK_TIMEOUT` seconds; why a part failed is logged, never answered
(an error text can hold a host name or a URL with its password).
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils.cache import add_never_cache_headers

from .brokers import get_broker
from .drain import is_draining

logger = logging.getLogger("streaming_app")

#: Seconds each part has to answer before it counts as failing.
CHECK_TIMEOUT = 3.0


def _query_database() -> None:
    # In a thread of its own (not the one sync views share), whose connection
    # is closed again: a hung database must not hold up other requests.
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()


async def database_reachable() -> bool:
    """Whether ``SELECT 1`` on the default database answers within :data:`CHECK_TIMEOUT`."""
    try:
        await asyncio.wait_for(sync_to_async(_query_database, thread_sensitive=False)(), CHECK_TIMEOUT)
    except Exception as exc:
        logger.warning("streaming_app: health check: the database is unreachable: %r", exc)
        return False
    return True


async def broker_reachable() -> bool:
    """Whether the broker (Redis, or this process's memory) answers within :data:`CHECK_TIMEOUT`."""
    try:
        await asyncio.wait_for(get_broker().ping(), CHECK_TIMEOUT)
    except Exception as exc:
        logger.warning("streaming_app: health check: the broker is unreachable: %r", exc)
        return False
    return True


async def health_view(request: HttpRequest) -> JsonResponse:
    """200 when the process can serve, 503 naming why not (see the module docstring); never cached."""
    response = await _health()
    add_never_cache_headers(response)  # not @never_cache: Django 4.2's wraps async views as sync ones
    return response


async def _health() -> JsonResponse:
    if is_draining():
        return JsonResponse({"status": "draining"}, status=503)
    database, broker = await asyncio.gather(database_reachable(), broker_reachable())
    if is_draining():  # began while checking
        return JsonResponse({"status": "draining"}, status=503)
    failing = [part for part, ok in (("database", database), ("broker", broker)) if not ok]
    if failing:
        return JsonResponse({"status": "unavailable", "failing": failing}, status=503)
    return JsonResponse({"status": "ok"})
