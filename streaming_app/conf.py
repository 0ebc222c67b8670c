"""The ``STREAMING`` settings dict, read like DRF's ``api_settings``.

One schema (:data:`SCHEMA`) gives every key its default, what a valid value
is and the system check id that reports a wrong one; this module reads the
defaults and import strings from it, :mod:`streaming_app.checks` the rules.
The project overrides any key in ``settings.STREAMING``. Import strings are
resolved lazily and cached, and the cache is dropped when a test changes the
setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

@dataclass(frozen=True)
class Setting:
    """One ``STREAMING`` key: its default, what a valid value is, and the system check that says otherwise.

    ``valid`` None means the key's own check in :mod:`streaming_app.checks`
    validates it (it needs more than the value: an import, a parse).
    """

    default: Any
    expected: str
    valid: Callable[[Any], bool] | None
    check_id: str
    hint: str = ""
    import_strings: bool = False

    def problem(self, key: str, value: Any) -> str | None:
        """The check message for ``value``, or None when it is valid."""
        if self.valid is None or self.valid(value):
            return None
        return f"STREAMING[{key!r}] must be {self.expected}, got {value!r}."


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_number(value: Any) -> bool:
    return _number(value) and value > 0


def _optional(valid: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or valid(value)


def _dotted_paths(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(item, (str, type)) for item in value)


def _module_name(value: Any) -> bool:
    return isinstance(value, str) and all(part.isidentifier() for part in value.split("."))


def _strings(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)


def _positive(default: Any) -> Setting:
    return Setting(default, "a positive number", _positive_number, "streaming_app.E002")


SCHEMA: dict[str, Setting] = {
    # Policies of stream views (DRF classes work as they are).
    "DEFAULT_AUTHENTICATION_CLASSES": Setting(
        [
            "streaming_app.authentication.TicketAuthentication",
            "streaming_app.authentication.BearerTokenAuthentication",
            "streaming_app.authentication.SessionAuthentication",
        ],
        "a list of dotted paths of DRF authentication classes", _dotted_paths, "streaming_app.E003",
        hint="Check the dotted path.", import_strings=True,
    ),
    "DEFAULT_PERMISSION_CLASSES": Setting(
        ["rest_framework.permissions.AllowAny"],
        "a list of dotted paths of DRF permission classes", _dotted_paths, "streaming_app.E003",
        hint="Check the dotted path.", import_strings=True,
    ),
    # Name of the module looked for in every installed app at start-up.
    "STREAMS_MODULE": Setting(
        "streams", "a module name such as 'streams'", _module_name, "streaming_app.E015",
        hint="The module each installed app declares its stream views in (autodiscovered by ready()).",
    ),
    # Heartbeats: the server pings every HEARTBEAT_INTERVAL seconds and closes
    # with 4408 a connection it has heard nothing from for HEARTBEAT_TIMEOUT.
    "HEARTBEAT_INTERVAL": _positive(25.0),
    "HEARTBEAT_TIMEOUT": _positive(60.0),
    # Limits announced in ``hello``. daphne drops messages over 1 MiB, so the
    # frame limit stays below that.
    "MAX_FRAME_BYTES": _positive(1_000_000),
    "MAX_CALLS_PER_CONNECTION": _positive(100),
    "CLIENT_WINDOW": _positive(64),
    # Malformed frames tolerated on one connection before it is closed with 4400.
    "MAX_BAD_FRAMES": _positive(20),
    # Connections one server process accepts before closing new ones with 4429
    # (None: no limit).
    "MAX_CONNECTIONS_PER_PROCESS": Setting(
        None, "None or a positive integer", _optional(lambda v: _integer(v) and v > 0), "streaming_app.E016",
        hint="None accepts every connection.",
    ),
    # Deadlines, in seconds: applied when a call sets none, and the most a
    # call may ask for (None: no default, no cap).
    "DEFAULT_TIMEOUT": Setting(
        None, "None or a positive number of seconds", _optional(_positive_number), "streaming_app.E017",
        hint="None leaves calls without a deadline unless they ask for one.",
    ),
    "MAX_TIMEOUT": Setting(
        None, "None or a positive number of seconds", _optional(_positive_number), "streaming_app.E017",
        hint="None lets a call ask for any deadline.",
    ),
    # Origins allowed for browser handshakes besides ALLOWED_HOSTS and
    # CSRF_TRUSTED_ORIGINS, e.g. "https://app.example.com".
    "ALLOWED_ORIGINS": Setting(
        [], "a list of origins", _strings, "streaming_app.E018",
        hint="E.g. ['https://app.example.com']: scheme, host and port as the browser sends them in Origin.",
    ),
    # Tickets for browsers that cannot set headers: lifetime in seconds.
    "TICKET_MAX_AGE": _positive(30),
    # How often at most (seconds) a process returns stale database
    # connections after calls end (see streaming_app.db).
    "DB_CONNECTION_CHECK_INTERVAL": Setting(
        1.0, "a number of seconds, 0 or more", lambda v: _number(v) and v >= 0, "streaming_app.E019",
        hint="0 checks after every call.",
    ),
    # Broadcast topics. BROKER is a URL (redis://, rediss://, unix://, or
    # memory:// for one process) or the dotted path of a Broker subclass;
    # None follows CHANNEL_LAYERS["default"]. check_broker validates it.
    "BROKER": Setting(
        None, "None, a broker URL or the dotted path of a Broker subclass",
        _optional(lambda v: isinstance(v, str)), "streaming_app.E007",
    ),
    # Prefix of the broker's Redis keys and channel, for projects sharing a Redis.
    "TOPIC_PREFIX": Setting(
        "streaming_app", "a non-empty string without spaces", lambda v: isinstance(v, str) and v != "" and not any(c.isspace() for c in v),
        "streaming_app.E020", hint="It starts every Redis key and the channel name, e.g. 'myproject'.",
    ),
    # Events a subscription holds for a slow reader before it is cut off with
    # resource_exhausted (and the event id to resume from).
    "SUBSCRIPTION_BUFFER": _positive(1000),
    # Topic history, for resuming after a reconnect: glob patterns of topic
    # names to {"size": events kept, "ttl": seconds kept (None: no age limit)}.
    # The first matching pattern wins; a topic that matches none keeps no
    # history (its subscribers still resume when they missed nothing). E.g.
    # {"chat.*": {"size": 1000, "ttl": 3600}, "*": {"size": 100}}.
    # check_topic_history validates it.
    "TOPIC_HISTORY": Setting({}, "a dict of topic patterns to policies", None, "streaming_app.E013"),
    # The history of model change topics (``models.<app>.<model>``) that no
    # TOPIC_HISTORY pattern matches: what lets a model stream's watcher resume
    # with only the changes it missed instead of a new snapshot (None: none).
    # check_topic_history validates it.
    "MODEL_STREAM_HISTORY": Setting(
        {"size": 1000, "ttl": 3600}, "None or a policy {'size': events, 'ttl': seconds}", None, "streaming_app.E013"
    ),
    # HTTP transport (streaming_app.transports.http): the reconnection delay hint sent to
    # EventSource clients as ``retry:``, in milliseconds (None: no hint), and
    # the seconds without output after which an SSE or NDJSON stream sends a
    # keepalive (an SSE comment, an NDJSON ping). POST bodies are limited by
    # MAX_FRAME_BYTES, like a call frame.
    "SSE_RETRY": Setting(
        3000, "None or a non-negative integer of milliseconds", _optional(lambda v: _integer(v) and v >= 0),
        "streaming_app.E008", hint="EventSource reads only digits in 'retry:'; use e.g. 3000, or None to send no hint.",
    ),
    "HTTP_KEEPALIVE_INTERVAL": _positive(15.0),
    # Call bookkeeping for the admin (streaming_app.monitor). MONITOR_CALLS
    # False turns it off entirely: no counters, no live list, no history.
    # Every MONITOR_INTERVAL seconds each server process writes one snapshot
    # of its open calls (to Redis with a TTL of MONITOR_TTL_INTERVALS
    # intervals when the broker is Redis, to its own memory with the memory
    # broker) and its finished calls to the history table in one batch.
    "MONITOR_CALLS": Setting(True, "True or False", lambda v: isinstance(v, bool), "streaming_app.E009"),
    "MONITOR_INTERVAL": _positive(1.0),
    "MONITOR_TTL_INTERVALS": _positive(3),
    # Finished calls waiting to be written when the database is slow or down;
    # beyond it the oldest are dropped (and counted in the log).
    "HISTORY_BUFFER": _positive(10_000),
    # Days of history kept by ``manage.py streaming_prune_history`` (None: keep all).
    "HISTORY_RETENTION_DAYS": Setting(
        7, "None or a positive number of days", _optional(_positive_number), "streaming_app.E011",
        hint="manage.py streaming_prune_history deletes history older than this; None keeps all of it.",
    ),
    # Seconds a server process trusts its cached endpoint switches without
    # hearing from the control topic (changes normally arrive at once).
    "SWITCHES_MAX_AGE": _positive(5.0),
    # The WebSocket URL the admin's live page connects to (StreamConsumer's route).
    "ADMIN_WEBSOCKET_URL": Setting(
        "/ws/", "a path or a ws:// URL", lambda v: isinstance(v, str) and v.startswith(("/", "ws://", "wss://")),
        "streaming_app.E012", hint="The route of StreamConsumer in your asgi.py, e.g. '/ws/'.",
    ),
    # The schema (docs/schema.md): DRF permission classes of ``GET <prefix>/_schema``
    # (authenticated by DEFAULT_AUTHENTICATION_CLASSES); the AsyncAPI document's info.
    "SCHEMA_PERMISSION_CLASSES": Setting(
        ["rest_framework.permissions.IsAdminUser"],
        "a list of dotted paths of DRF permission classes", _dotted_paths, "streaming_app.E041",
        hint="E.g. ['rest_framework.permissions.IsAdminUser'] (staff only, the default) or "
        "['rest_framework.permissions.AllowAny'] for a public contract.", import_strings=True,
    ),
    "SCHEMA_INFO": Setting(
        {"title": "streaming_app API", "version": "1.0.0"},
        "a dict with string 'title' and 'version'",
        lambda v: isinstance(v, dict) and all(isinstance(v.get(k), str) for k in ("title", "version")),
        "streaming_app.E042", hint="The AsyncAPI document's info: {'title': 'Orders', 'version': '2.1.0'}.",
    ),
    # -- Hardening: credentials, limits (docs/security.md) --------------------------
    # Seconds between re-validations of every authenticated connection's
    # credentials (user active, password unchanged, token and session still
    # there), the safety net behind the signals that close a revoked
    # connection at once (None: signals only).
    "REVALIDATE_INTERVAL": Setting(
        60.0, "None or a positive number of seconds", _optional(_positive_number), "streaming_app.E030",
        hint="E.g. 60: a change that sends no signal (QuerySet.update()) closes the connection within it.",
    ),
    # Seconds a WebSocket connection may stay open; then it is closed with 4503
    # (clients reconnect, authenticating again, and resume). None: no limit.
    "MAX_CONNECTION_AGE": Setting(
        None, "None or a positive number of seconds", _optional(_positive_number), "streaming_app.E030",
        hint="E.g. 86400: no connection outlives a day without authenticating again.",
    ),
    # Open WebSocket connections per authenticated user, and (opt-in) per
    # client IP (scope["client"]: run daphne with --proxy-headers behind a
    # proxy), counted across processes through the broker's Redis; beyond it a
    # connection is accepted and closed with 4429 before hello. None: no limit.
    "MAX_CONNECTIONS_PER_USER": Setting(
        None, "None or a positive integer", _optional(lambda v: _integer(v) and v > 0), "streaming_app.E031",
        hint="E.g. 50: a browser with many tabs stays well below it.",
    ),
    "MAX_CONNECTIONS_PER_IP": Setting(
        None, "None or a positive integer", _optional(lambda v: _integer(v) and v > 0), "streaming_app.E031",
        hint="Opt-in: clients behind one NAT or proxy share an address.",
    ),
    # Calls a connection may start per second (bursts of as many); beyond it a
    # call is refused with resource_exhausted and details.retry_after. None: no limit.
    "MAX_CALLS_PER_SECOND": Setting(
        None, "None or a positive number", _optional(_positive_number), "streaming_app.E032",
        hint="E.g. 200: far above what an honest client needs, far below a flood.",
    ),
    # The garbage collector's young-generation threshold, raised to this once a
    # process serves its first stream (never lowered). Off (None) unless the
    # project asks: it changes the whole process's collector. 10_000 took a
    # 500-subscriber fan-out's p99 from 147 to 57 ms (see streaming_app.gc_tuning).
    "GC_GEN0_THRESHOLD": Setting(
        None, "None or a positive integer", _optional(lambda v: _integer(v) and v > 0), "streaming_app.E014",
        hint="It is gc.set_threshold()'s first argument, e.g. 10000; None leaves the collector alone.",
    ),
    # -- Operations (docs/operations.md) --------------------------------------
    # Prometheus metrics of each server process (streaming_app.metrics): False
    # counts nothing, and the metrics view serves only what other code registers.
    "METRICS": Setting(True, "True or False", lambda v: isinstance(v, bool), "streaming_app.E050"),
    # Who may read the metrics view: DRF permission classes. The default lets
    # loopback clients in (a Prometheus on the same host, or a sidecar) and
    # staff users; a request that came through a proxy (X-Forwarded-For) is
    # never taken for a loopback one.
    "METRICS_PERMISSION_CLASSES": Setting(
        ["streaming_app.metrics.IsLoopbackOrStaff"],
        "a list of dotted paths of DRF permission classes", _dotted_paths, "streaming_app.E051",
        hint="E.g. ['rest_framework.permissions.IsAdminUser'].", import_strings=True,
    ),
    # Drain on SIGTERM (streaming_app.drain, daphne only): new handshakes are
    # refused with 4503, running unary calls finish, and every connection is
    # closed with 4503 within DRAIN_TIMEOUT seconds; then the process exits.
    "DRAIN_ON_SIGTERM": Setting(True, "True or False", lambda v: isinstance(v, bool), "streaming_app.E052"),
    "DRAIN_TIMEOUT": Setting(
        10.0, "a positive number of seconds", _positive_number, "streaming_app.E053",
        hint="Keep it below your orchestrator's grace period (docker's default is 10 s).",
    ),
    # Bounded output per connection (docs/limits.md). daphne's send never
    # waits, so the server reads how many bytes it queued for a peer that has
    # not read them: a stream's items and a call's terminal frame wait while
    # more than SEND_BUFFER_HIGH bytes are queued to their connection (SSE and
    # NDJSON bodies too); a frame that cannot wait (a pong, a credit, the
    # error of a refused call) closes the WebSocket with 4429 when more than
    # SEND_BUFFER_LIMIT bytes are queued. A connection's queue is then at most
    # SEND_BUFFER_LIMIT + MAX_FRAME_BYTES. check_send_buffer relates them.
    "SEND_BUFFER_HIGH": Setting(
        256 * 1024, "a positive integer of bytes", lambda v: _integer(v) and v > 0, "streaming_app.E035",
        hint="Streams wait while more than this is queued to their connection; e.g. 262144.",
    ),
    "SEND_BUFFER_LIMIT": Setting(
        4 * 1024 * 1024, "a positive integer of bytes", lambda v: _integer(v) and v > 0, "streaming_app.E035",
        hint="A connection that lets more than this pile up unread is closed with 4429; e.g. 4194304.",
    ),
    # Broker hygiene (docs/limits.md): the largest event a topic takes, in
    # bytes of JSON (None: what fits a frame, MAX_FRAME_BYTES); the bytes of
    # event JSON one topic's history holds when its TOPIC_HISTORY policy sets
    # no 'bytes'; and the seconds a topic's keys outlive its last event when
    # its history has no 'ttl' (a topic whose history has one keeps its keys
    # that long).
    "MAX_EVENT_BYTES": Setting(
        None, "None or a positive integer of bytes", _optional(lambda v: _integer(v) and v > 0), "streaming_app.E036",
        hint="None allows what fits a frame (MAX_FRAME_BYTES); e.g. 65536.",
    ),
    "TOPIC_HISTORY_MAX_BYTES": Setting(
        8 * 1024 * 1024, "a positive integer of bytes", lambda v: _integer(v) and v > 0, "streaming_app.E036",
        hint="Bytes of events one topic's history keeps at most, e.g. 8388608; a policy's 'bytes' overrides it.",
    ),
    # Admin history under a flood (streaming_app.finished): finished calls one
    # process writes one by one per MONITOR_INTERVAL (authenticated users'
    # first); the rest are written as aggregate rows with a call count.
    "HISTORY_ROWS_PER_INTERVAL": Setting(
        200, "a positive integer", lambda v: _integer(v) and v > 0, "streaming_app.E037",
        hint="Rows one process writes per MONITOR_INTERVAL; beyond it calls are aggregated, e.g. 200.",
    ),
    "TOPIC_STATE_TTL": Setting(
        24 * 3600, "a positive number of seconds", _positive_number, "streaming_app.E036",
        hint="A topic idle this long starts a new epoch (its resume points expire); e.g. 86400.",
    ),
    # Presence (streaming_app.presence). A member's info is at most this many
    # bytes of JSON (more is invalid_argument). Each process refreshes one
    # heartbeat key per interval and sweeps the processes that stopped: a
    # dead process's members leave within four intervals (3 s -> 12 s).
    "PRESENCE_MAX_INFO_BYTES": Setting(
        2048, "a positive integer", lambda v: _integer(v) and v > 0, "streaming_app.E060",
        hint="The largest JSON a view may pass as ctx.join(topic, info=...), in bytes.",
    ),
    "PRESENCE_HEARTBEAT_INTERVAL": Setting(
        3.0, "a number between 0.1 and 3.75 (seconds)", lambda v: _number(v) and 0.1 <= v <= 3.75,
        "streaming_app.E061",
        hint="A dead process's members leave within 4 intervals: at most 3.75 s keeps that within 15 s.",
    ),
}

DEFAULTS: dict[str, Any] = {key: setting.default for key, setting in SCHEMA.items()}

IMPORT_STRINGS = tuple(key for key, setting in SCHEMA.items() if setting.import_strings)


def read_user_settings() -> tuple[dict[str, Any], str | None]:
    """``settings.STREAMING``, and what is wrong with it when it is not a dict (the defaults apply then).

    Not raising here lets ``manage.py check`` run and report it (E001): the
    app is set up, and its ``ready()`` reads settings, before checks run.
    """
    value = getattr(settings, "STREAMING", {})
    if isinstance(value, dict):
        return value, None
    return {}, f"STREAMING must be a dict, got {value!r}."


class StreamingSettings:
    """Attribute access to ``settings.STREAMING`` with defaults."""

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self.defaults = defaults or DEFAULTS
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        if not hasattr(self, "_user_settings"):
            self._user_settings = read_user_settings()[0]
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
