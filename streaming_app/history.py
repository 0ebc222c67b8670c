"""Which topics keep history, and how much: ``STREAMING["TOPIC_HISTORY"]``.

History is what lets a reconnecting subscriber get exactly the events it
missed. It costs broker memory per topic, so it is opt-in per topic pattern,
bounded by count (``size``), by bytes of event JSON (``bytes``, default
``STREAMING["TOPIC_HISTORY_MAX_BYTES"]``) and by age (``ttl``, seconds). A
topic's keys live as long as its history (``ttl``), or
``STREAMING["TOPIC_STATE_TTL"]`` when it has no age limit.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from .conf import streaming_settings


@dataclass(frozen=True)
class HistoryPolicy:
    """How many events of a topic are kept (0: none), how many bytes of them (None: the default), and for how long (None: no age limit)."""

    size: int = 0
    ttl: float | None = None
    max_bytes: int | None = None

    @property
    def byte_limit(self) -> int:
        """Bytes of event JSON the history holds at most: its own ``bytes``, or TOPIC_HISTORY_MAX_BYTES."""
        return self.max_bytes if self.max_bytes is not None else int(streaming_settings.TOPIC_HISTORY_MAX_BYTES)

    @property
    def state_ttl(self) -> int:
        """Seconds a topic's keys outlive its last event: its history's age limit, else TOPIC_STATE_TTL.

        Never shorter than the history: the topic's position (epoch and
        offset) must outlive the events it numbers.
        """
        if self.ttl is not None:
            return max(1, math.ceil(self.ttl))
        return int(streaming_settings.TOPIC_STATE_TTL)

    @property
    def enabled(self) -> bool:
        return self.size > 0


NO_HISTORY = HistoryPolicy()


def parse_policies(setting: Any) -> list[tuple[str, HistoryPolicy]]:
    """The setting as (pattern, policy) pairs in order; ImproperlyConfigured says what is wrong."""
    if not isinstance(setting, dict):
        raise ImproperlyConfigured("STREAMING['TOPIC_HISTORY'] must be a dict of topic patterns to {'size': .., 'ttl': ..}.")
    policies = []
    for pattern, options in setting.items():
        where = f"STREAMING['TOPIC_HISTORY'][{pattern!r}]"
        if not isinstance(pattern, str) or not pattern:
            raise ImproperlyConfigured(f"{where}: a pattern must be a non-empty string such as 'chat.*'.")
        if not isinstance(options, dict) or set(options) - {"size", "ttl", "bytes"}:
            raise ImproperlyConfigured(f"{where} must be a dict with the keys 'size' and optionally 'ttl' and 'bytes'.")
        max_bytes = options.get("bytes")
        if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0):
            raise ImproperlyConfigured(f"{where}['bytes'] must be a positive number of bytes or None, got {max_bytes!r}.")
        size = options.get("size", 0)
        ttl = options.get("ttl")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ImproperlyConfigured(f"{where}['size'] must be a whole number of events (0: no history), got {size!r}.")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0):
            raise ImproperlyConfigured(f"{where}['ttl'] must be a positive number of seconds or None, got {ttl!r}.")
        policies.append((pattern, HistoryPolicy(size, float(ttl) if ttl is not None else None, max_bytes)))
    return policies


MODEL_TOPICS = "models.*"


@lru_cache(maxsize=4096)
def history_policy(topic: str) -> HistoryPolicy:
    """The history policy of ``topic``: the first pattern it matches, or none.

    Model change topics that no pattern matches keep ``MODEL_STREAM_HISTORY``,
    so model streams are resumable without configuration.
    """
    for pattern, policy in parse_policies(streaming_settings.TOPIC_HISTORY):
        if fnmatch.fnmatchcase(topic, pattern):
            return policy
    if fnmatch.fnmatchcase(topic, MODEL_TOPICS):
        setting = streaming_settings.MODEL_STREAM_HISTORY
        if setting is None:
            return NO_HISTORY
        [(_, policy)] = parse_policies({MODEL_TOPICS: setting})
        return policy
    return NO_HISTORY


def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "STREAMING":
        history_policy.cache_clear()


setting_changed.connect(_reset)
