"""Broadcast: publish to a topic from anywhere; subscribe from a stream.

``publish`` works wherever the project's settings are loaded: views, signal
handlers, management commands, Celery tasks, the shell. With Redis configured
it reaches every subscriber on every server process; with the in-memory
default, those of the publishing process only.

Topic names are made of letters, digits and ``_ . : - @ /`` (at most 200), so
``chat.room-42`` or ``orders:user/7`` are fine.
"""

from __future__ import annotations

import re
from typing import Any

from . import exceptions
from .brokers import get_broker
from .conf import streaming_settings
from .encoding import json_default
from .hub import ErrorHook, ReadyHook, Subscription
from .metrics import metrics
from .protocol import frames as wire

__all__ = ["publish", "apublish", "subscribe", "validate_topic", "Subscription"]

TOPIC_RE = re.compile(r"[A-Za-z0-9_.:@/\-]{1,200}")
# What a next frame adds around the event's JSON (call id, event id).
FRAME_OVERHEAD = 100


def validate_topic(topic: Any) -> str:
    """The topic name, or ``invalid_argument`` saying what a name may be."""
    if not isinstance(topic, str) or not TOPIC_RE.fullmatch(topic):
        raise exceptions.InvalidArgument(
            f"Invalid topic name {topic!r}: use 1 to 200 letters, digits and _ . : - @ /.",
            {"topic": str(topic)[:200]},
        )
    return topic


def _encode(topic: str, data: Any) -> str:
    validate_topic(topic)
    data_json = wire.dumps(data, json_default)
    limit = streaming_settings.MAX_FRAME_BYTES - FRAME_OVERHEAD
    if streaming_settings.MAX_EVENT_BYTES is not None:
        limit = min(limit, streaming_settings.MAX_EVENT_BYTES)
    if wire.exceeds(data_json, limit):
        raise exceptions.InvalidArgument(
            f"The event is too large: at most {limit} bytes of JSON.",
            {"topic": topic, "max_bytes": limit},
        )
    return data_json


def publish(topic: str, data: Any) -> str:
    """Publish ``data`` (anything a stream may yield) on ``topic``; return its event id.

    For synchronous code: views, signal handlers, management commands, tasks.
    """
    eid = get_broker().publish(topic, _encode(topic, data))
    if streaming_settings.METRICS:
        metrics.count_published()
    return eid


async def apublish(topic: str, data: Any) -> str:
    """Publish from async code; see :func:`publish`."""
    eid = await get_broker().apublish(topic, _encode(topic, data))
    if streaming_settings.METRICS:
        metrics.count_published()
    return eid


def subscribe(
    topic: str,
    *,
    resume: str | None = None,
    buffer: int | None = None,
    on_error: ErrorHook | None = None,
    on_ready: ReadyHook | None = None,
) -> Subscription:
    """What is published on ``topic`` from now on, as an async iterator of events.

    No permission check: inside a stream method use ``ctx.subscribe(topic)``,
    which asks the view first. With ``resume`` (an event id the reader has),
    the events after it come first, if the topic's history still holds them
    all (``subscription.recovered`` says whether it did). ``buffer`` bounds the
    events waiting for a slow reader (``STREAMING["SUBSCRIPTION_BUFFER"]`` by
    default); past it the subscription fails with ``resource_exhausted``.
    """
    validate_topic(topic)
    return Subscription(
        topic,
        buffer=buffer or streaming_settings.SUBSCRIPTION_BUFFER,
        on_error=on_error,
        resume=resume,
        on_ready=on_ready,
    )
