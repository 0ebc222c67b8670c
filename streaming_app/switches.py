"""Endpoint switches: methods or namespaces an administrator turned off.

Every new call asks :func:`ensure_enabled`, so the answer must cost a set
lookup, not a query: each process caches the disabled names and reloads them
when the cache is dropped (a ``switches`` command on the control topic, see
:mod:`streaming_app.control`) or older than ``SWITCHES_MAX_AGE`` seconds (a
process that was not listening when the switch changed catches up that late
at most).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels.db import database_sync_to_async

from . import control, exceptions
from .conf import streaming_settings
from .registry import StreamMethod

logger = logging.getLogger("streaming_app")

_disabled: frozenset[str] = frozenset()
_loaded_at: float | None = None
_loading: asyncio.Task[None] | None = None
_generation = 0  # bumped by every invalidation


def disabled_error(name: str) -> exceptions.StreamError:
    """What a call of a switched-off method or namespace fails with."""
    return exceptions.Unavailable(f"{name} is disabled by an administrator.", {"reason": "disabled", "method": name})


@control.on_listening  # changes made while no listener was subscribed
def invalidate() -> None:
    """Forget the cached switches; the next call reloads them."""
    global _loaded_at, _generation
    _loaded_at = None
    _generation += 1


@control.command("switches")
def _switches_changed(monitor: Any, command: dict[str, Any]) -> None:
    """The switches changed: drop the cache; end the open calls of the names in ``end``."""
    invalidate()
    names = set(command.get("end") or [])
    if names:
        for call in [c for c in monitor.calls.values() if c.method in names or c.namespace in names]:
            call.terminate(disabled_error(call.method))  # each call's own method in the message


def _load() -> frozenset[str]:
    from .models import EndpointSwitch

    return frozenset(EndpointSwitch.objects.filter(disabled=True).values_list("name", flat=True))


async def _reload() -> None:
    global _disabled, _loaded_at
    started, generation = time.monotonic(), _generation
    try:
        _disabled = await database_sync_to_async(_load)()
    except Exception as exc:
        # Fail open: a database outage must not take down streams that never
        # touch it. The old switches stay in force until the next attempt.
        logger.warning("streaming_app: could not load the endpoint switches (%s); keeping the previous ones", exc)
    if generation == _generation:
        _loaded_at = started  # an invalidation during the query leaves the cache stale


async def disabled_names() -> frozenset[str]:
    """The disabled method and namespace names, from the cache when it is fresh.

    Concurrent callers share one reload, run as a task of its own so that a
    caller being cancelled does not cancel it for the others.
    """
    global _loading
    if _loaded_at is not None and time.monotonic() - _loaded_at < streaming_settings.SWITCHES_MAX_AGE:
        return _disabled
    loop = asyncio.get_running_loop()
    if _loading is None or _loading.done() or _loading.get_loop() is not loop:
        _loading = loop.create_task(_reload(), name="streaming_app switches")
    await asyncio.shield(_loading)
    return _disabled


async def ensure_enabled(method: StreamMethod) -> None:
    """Raise ``unavailable`` when the method or its namespace is switched off."""
    disabled = await disabled_names()
    if disabled and (method.name in disabled or method.namespace in disabled):
        raise disabled_error(method.name)
