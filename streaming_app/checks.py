"""System checks: misconfigurations reported by ``manage.py check`` with a hint."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .brokers import broker_class, broker_url, is_import_path
from .conf import DEFAULTS, IMPORT_STRINGS, POSITIVE_NUMBERS, _import, streaming_settings
from .history import parse_policies

DAPHNE_MAX_MESSAGE = 1024 * 1024


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    user = getattr(settings, "STREAMING", {})
    if not isinstance(user, dict):
        return [Error("STREAMING must be a dict.", hint="Set STREAMING = {...} in your settings.", id="streaming_app.E001")]
    messages: list[Any] = []
    for key in sorted(set(user) - set(DEFAULTS)):
        messages.append(
            Warning(
                f"Unknown STREAMING setting {key!r}.",
                hint=f"Known settings: {', '.join(sorted(DEFAULTS))}.",
                id="streaming_app.W001",
            )
        )
    for key in POSITIVE_NUMBERS:
        value = user.get(key, DEFAULTS[key])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            messages.append(Error(f"STREAMING[{key!r}] must be a positive number, got {value!r}.", id="streaming_app.E002"))
    for key in IMPORT_STRINGS:
        for item in user.get(key, DEFAULTS[key]):
            try:
                _import(item, key)
            except ImportError as exc:
                messages.append(Error(str(exc), hint="Check the dotted path.", id="streaming_app.E003"))
    interval = user.get("HEARTBEAT_INTERVAL", DEFAULTS["HEARTBEAT_INTERVAL"])
    timeout = user.get("HEARTBEAT_TIMEOUT", DEFAULTS["HEARTBEAT_TIMEOUT"])
    if isinstance(interval, (int, float)) and isinstance(timeout, (int, float)) and timeout <= interval:
        messages.append(
            Error(
                "STREAMING['HEARTBEAT_TIMEOUT'] must be longer than HEARTBEAT_INTERVAL.",
                hint="A peer needs at least one ping interval to answer; use about twice the interval.",
                id="streaming_app.E004",
            )
        )
    max_frame = user.get("MAX_FRAME_BYTES", DEFAULTS["MAX_FRAME_BYTES"])
    if isinstance(max_frame, int) and max_frame >= DAPHNE_MAX_MESSAGE:
        messages.append(
            Warning(
                f"STREAMING['MAX_FRAME_BYTES'] is {max_frame}, but daphne drops messages of 1 MiB or more.",
                hint="Keep it below 1048576, or raise daphne's --websocket_max_message_size too.",
                id="streaming_app.W002",
            )
        )
    retry = user.get("SSE_RETRY", DEFAULTS["SSE_RETRY"])
    if retry is not None and (isinstance(retry, bool) or not isinstance(retry, int) or retry < 0):
        messages.append(
            Error(
                f"STREAMING['SSE_RETRY'] must be None or a non-negative integer of milliseconds, got {retry!r}.",
                hint="EventSource reads only digits in 'retry:'; use e.g. 3000, or None to send no hint.",
                id="streaming_app.E008",
            )
        )
    threshold = user.get("GC_GEN0_THRESHOLD", DEFAULTS["GC_GEN0_THRESHOLD"])
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int) or threshold <= 0):
        messages.append(
            Error(
                f"STREAMING['GC_GEN0_THRESHOLD'] must be None or a positive integer, got {threshold!r}.",
                hint="It is gc.set_threshold()'s first argument, e.g. 10000; None leaves the collector alone.",
                id="streaming_app.E014",
            )
        )
    messages.extend(_monitor_messages(user))
    return messages


def _monitor_messages(user: dict[str, Any]) -> list[Any]:
    """The admin's bookkeeping settings (streaming_app.monitor)."""
    messages: list[Any] = []
    if not isinstance(user.get("MONITOR_CALLS", DEFAULTS["MONITOR_CALLS"]), bool):
        messages.append(Error("STREAMING['MONITOR_CALLS'] must be True or False.", id="streaming_app.E009"))
    ttl = user.get("MONITOR_TTL_INTERVALS", DEFAULTS["MONITOR_TTL_INTERVALS"])
    if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and 0 < ttl < 2:
        messages.append(
            Error(
                f"STREAMING['MONITOR_TTL_INTERVALS'] is {ttl}: a process's snapshot would expire before its next write.",
                hint="Use 2 or more (3 is the default): live calls then flicker only when a process is really gone.",
                id="streaming_app.E010",
            )
        )
    retention = user.get("HISTORY_RETENTION_DAYS", DEFAULTS["HISTORY_RETENTION_DAYS"])
    if retention is not None and (isinstance(retention, bool) or not isinstance(retention, (int, float)) or retention <= 0):
        messages.append(
            Error(
                f"STREAMING['HISTORY_RETENTION_DAYS'] must be None or a positive number of days, got {retention!r}.",
                hint="manage.py streaming_prune_history deletes history older than this; None keeps all of it.",
                id="streaming_app.E011",
            )
        )
    url = user.get("ADMIN_WEBSOCKET_URL", DEFAULTS["ADMIN_WEBSOCKET_URL"])
    if not isinstance(url, str) or not url.startswith(("/", "ws://", "wss://")):
        messages.append(
            Error(
                f"STREAMING['ADMIN_WEBSOCKET_URL'] must be a path or a ws:// URL, got {url!r}.",
                hint="The route of StreamConsumer in your asgi.py, e.g. '/ws/'.",
                id="streaming_app.E012",
            )
        )
    return messages


@register(Tags.compatibility)
def check_installed(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    messages: list[Any] = []
    if not apps.is_installed("channels"):
        messages.append(Error("streaming_app needs 'channels' in INSTALLED_APPS.", id="streaming_app.E005"))
    if not apps.is_installed("rest_framework"):
        messages.append(Error("streaming_app needs 'rest_framework' in INSTALLED_APPS.", id="streaming_app.E006"))
    if not getattr(settings, "ASGI_APPLICATION", None):
        messages.append(
            Warning(
                "ASGI_APPLICATION is not set; streams are served only by an ASGI server.",
                hint="Set ASGI_APPLICATION = 'yourproject.asgi.application' and route StreamConsumer in it.",
                id="streaming_app.W003",
            )
        )
    auth_classes = getattr(settings, "STREAMING", {}).get(
        "DEFAULT_AUTHENTICATION_CLASSES", DEFAULTS["DEFAULT_AUTHENTICATION_CLASSES"]
    )
    if any("BearerTokenAuthentication" in str(c) for c in auth_classes) and not apps.is_installed("rest_framework.authtoken"):
        messages.append(
            Warning(
                "BearerTokenAuthentication is enabled but 'rest_framework.authtoken' is not installed.",
                hint="Add 'rest_framework.authtoken' to INSTALLED_APPS, or remove the class from "
                "STREAMING['DEFAULT_AUTHENTICATION_CLASSES'].",
                id="streaming_app.W004",
            )
        )
    return messages


@register(Tags.compatibility)
def check_broker(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    try:
        value = broker_url()
        broker_class(value)
    except ImproperlyConfigured as exc:
        return [
            Error(
                str(exc),
                hint="Use redis://host:6379/0 (or rediss://, unix://), memory:// for one process, "
                "or the dotted path of a streaming_app.brokers.base.Broker subclass.",
                id="streaming_app.E007",
            )
        ]
    if not is_import_path(value) and value.partition("://")[0] == "memory" and not settings.DEBUG:
        return [
            Warning(
                "Topics use the in-memory broker with DEBUG off: a publish reaches only the "
                "subscribers of the process that made it, so with more than one server process "
                "(or a publish from a management command or a task) subscribers miss events.",
                hint="Use channels_redis in CHANNEL_LAYERS or set STREAMING['BROKER'] = 'redis://…'; "
                "silence streaming_app.W005 if the deployment is truly one process.",
                id="streaming_app.W005",
            )
        ]
    return []


@register(Tags.compatibility)
def check_topic_history(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    if not isinstance(getattr(settings, "STREAMING", {}), dict):
        return []  # E001 says so
    try:
        parse_policies(streaming_settings.TOPIC_HISTORY)
    except ImproperlyConfigured as exc:
        return [
            Error(
                str(exc),
                hint="E.g. STREAMING['TOPIC_HISTORY'] = {'chat.*': {'size': 1000, 'ttl': 3600}}.",
                id="streaming_app.E013",
            )
        ]
    return []
