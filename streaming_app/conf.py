"""The ``STREAMING`` settings dict, read like DRF's ``api_settings``.

Every key has a default here; the project overrides any of them in
``settings.STREAMING``. Import strings are resolved lazily and cached, and the
cache is dropped when a test changes the setting.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    # Policies of stream views (DRF classes work as they are).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "streaming_app.authentication.TicketAuthentication",
        "streaming_app.authentication.BearerTokenAuthentication",
        "streaming_app.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    # Name of the module looked for in every installed app at start-up.
    "STREAMS_MODULE": "streams",
    # Heartbeats: the server pings every HEARTBEAT_INTERVAL seconds and closes
    # with 4408 a connection it has heard nothing from for HEARTBEAT_TIMEOUT.
    "HEARTBEAT_INTERVAL": 25.0,
    "HEARTBEAT_TIMEOUT": 60.0,
    # Limits announced in ``hello``. daphne drops messages over 1 MiB, so the
    # frame limit stays below that.
    "MAX_FRAME_BYTES": 1_000_000,
    "MAX_CALLS_PER_CONNECTION": 100,
    "CLIENT_WINDOW": 64,
    # Malformed frames tolerated on one connection before it is closed with 4400.
    "MAX_BAD_FRAMES": 20,
    # Connections one server process accepts before closing new ones with 4429
    # (None: no limit).
    "MAX_CONNECTIONS_PER_PROCESS": None,
    # Deadlines, in seconds: applied when a call sets none, and the most a
    # call may ask for (None: no default, no cap).
    "DEFAULT_TIMEOUT": None,
    "MAX_TIMEOUT": None,
    # Origins allowed for browser handshakes besides ALLOWED_HOSTS and
    # CSRF_TRUSTED_ORIGINS, e.g. "https://app.example.com".
    "ALLOWED_ORIGINS": [],
    # Tickets for browsers that cannot set headers: lifetime in seconds.
    "TICKET_MAX_AGE": 30,
    # How often at most (seconds) a process returns stale database
    # connections after calls end (see streaming_app.db).
    "DB_CONNECTION_CHECK_INTERVAL": 1.0,
    # Broadcast topics. BROKER is a URL (redis://, rediss://, unix://, or
    # memory:// for one process); None follows CHANNEL_LAYERS["default"].
    "BROKER": None,
    # Prefix of the broker's Redis keys and channel, for projects sharing a Redis.
    "TOPIC_PREFIX": "streaming_app",
    # Events a subscription holds for a slow reader before it is cut off with
    # resource_exhausted (and the event id to resume from).
    "SUBSCRIPTION_BUFFER": 1000,
    # Topic history, for resuming after a reconnect: glob patterns of topic
    # names to {"size": events kept, "ttl": seconds kept (None: no age limit)}.
    # The first matching pattern wins; a topic that matches none keeps no
    # history (its subscribers still resume when they missed nothing). E.g.
    # {"chat.*": {"size": 1000, "ttl": 3600}, "*": {"size": 100}}.
    "TOPIC_HISTORY": {},
    # HTTP transport (streaming_app.http): the reconnection delay hint sent to
    # EventSource clients as ``retry:``, in milliseconds (None: no hint), and
    # the seconds without output after which an SSE or NDJSON stream sends a
    # keepalive (an SSE comment, an NDJSON ping). POST bodies are limited by
    # MAX_FRAME_BYTES, like a call frame.
    "SSE_RETRY": 3000,
    "HTTP_KEEPALIVE_INTERVAL": 15.0,
    # Call bookkeeping for the admin (streaming_app.monitor). MONITOR_CALLS
    # False turns it off entirely: no counters, no live list, no history.
    # Every MONITOR_INTERVAL seconds each server process writes one snapshot
    # of its open calls (to Redis with a TTL of MONITOR_TTL_INTERVALS
    # intervals when the broker is Redis, to its own memory with the memory
    # broker) and its finished calls to the history table in one batch.
    "MONITOR_CALLS": True,
    "MONITOR_INTERVAL": 1.0,
    "MONITOR_TTL_INTERVALS": 3,
    # Finished calls waiting to be written when the database is slow or down;
    # beyond it the oldest are dropped (and counted in the log).
    "HISTORY_BUFFER": 10_000,
    # Days of history kept by ``manage.py streaming_prune_history`` (None: keep all).
    "HISTORY_RETENTION_DAYS": 7,
    # Seconds a server process trusts its cached endpoint switches without
    # hearing from the control topic (changes normally arrive at once).
    "SWITCHES_MAX_AGE": 5.0,
    # The WebSocket URL the admin's live page connects to (StreamConsumer's route).
    "ADMIN_WEBSOCKET_URL": "/ws/",
    # The garbage collector's young-generation threshold, raised to this once a
    # process serves its first stream (never lowered). Off (None) unless the
    # project asks: it changes the whole process's collector. 10_000 took a
    # 500-subscriber fan-out's p99 from 147 to 57 ms (see streaming_app.gc_tuning).
    "GC_GEN0_THRESHOLD": None,
}

IMPORT_STRINGS = ("DEFAULT_AUTHENTICATION_CLASSES", "DEFAULT_PERMISSION_CLASSES")

POSITIVE_NUMBERS = (
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_TIMEOUT",
    "MAX_FRAME_BYTES",
    "MAX_CALLS_PER_CONNECTION",
    "CLIENT_WINDOW",
    "MAX_BAD_FRAMES",
    "TICKET_MAX_AGE",
    "SUBSCRIPTION_BUFFER",
    "HTTP_KEEPALIVE_INTERVAL",
    "MONITOR_INTERVAL",
    "MONITOR_TTL_INTERVALS",
    "HISTORY_BUFFER",
    "SWITCHES_MAX_AGE",
)


class StreamingSettings:
    """Attribute access to ``settings.STREAMING`` with defaults."""

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self.defaults = defaults or DEFAULTS
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        if not hasattr(self, "_user_settings"):
            self._user_settings = getattr(settings, "STREAMING", {}) or {}
        return self._user_settings

    def __getattr__(self, name: str) -> Any:
        if name not in self.defaults:
            raise AttributeError(f"Invalid STREAMING setting: {name!r}")
        value = self.user_settings.get(name, self.defaults[name])
        if name in IMPORT_STRINGS:
            value = [_import(item, name) for item in value]
        self._cached.add(name)
        setattr(self, name, value)
        return value

    def reload(self) -> None:
        for name in self._cached:
            delattr(self, name)
        self._cached.clear()
        if hasattr(self, "_user_settings"):
            delattr(self, "_user_settings")


def _import(value: Any, setting_name: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return import_string(value)
    except ImportError as exc:
        raise ImportError(
            f"Could not import {value!r} for STREAMING setting {setting_name!r}: {exc}"
        ) from exc


streaming_settings = StreamingSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "STREAMING":
        streaming_settings.reload()


setting_changed.connect(_reload)
