"""Which topics keep history, and how much: ``STREAMING["TOPIC_HISTORY"]``.

History is what lets a reconnecting subscriber get exactly the events it
missed. It costs broker memory per topic, so it is opt-in per topic pattern,
bounded by count (``size``) and by age (``ttl``, seconds).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from .conf import streaming_settings


@dataclass(frozen=True)
class HistoryPolicy:
    """How many events of a topic are kept (0: none), and for how long (None: no age limit)."""

    size: int = 0
    ttl: float | None = None

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
        if not isinstance(options, dict) or set(options) - {"size", "ttl"}:
            raise ImproperlyConfigured(f"{where} must be a dict with the keys 'size' and optionally 'ttl'.")
        size = options.get("size", 0)
        ttl = options.get("ttl")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ImproperlyConfigured(f"{where}['size'] must be a whole number of events (0: no history), got {size!r}.")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0):
            raise ImproperlyConfigured(f"{where}['ttl'] must be a positive number of seconds or None, got {ttl!r}.")
        policies.append((pattern, HistoryPolicy(size, float(ttl) if ttl is not None else None)))
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
