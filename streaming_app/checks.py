"""System checks: misconfigurations reported by ``manage.py check`` with a hint.

Each ``STREAMING`` key is checked against :data:`streaming_app.conf.SCHEMA`
(its type and range, and the check id that reports it); the functions here
add what the schema cannot say alone: rules between keys, imports, the
broker and the topic history policies.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from rest_framework.permissions import AllowAny

from .brokers import broker_class, broker_url, is_import_path
from .conf import SCHEMA, Setting, _import, read_user_settings, streaming_settings
from .history import parse_policies

DAPHNE_MAX_MESSAGE = 1024 * 1024


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Every key against the schema (conf.SCHEMA), then the rules that relate keys."""
    user, problem = read_user_settings()
    if problem is not None:
        return [Error(problem, hint="Set STREAMING = {...} in your settings, or leave it out for the defaults.",
                      id="streaming_app.E001")]
    messages: list[Any] = []
    for key in sorted(set(user) - set(SCHEMA)):
        messages.append(
            Warning(
                f"Unknown STREAMING setting {key!r}.",
                hint=f"Known settings: {', '.join(sorted(SCHEMA))}.",
                id="streaming_app.W001",
            )
        )
    valid: dict[str, Any] = {}  # the keys that passed, for the rules that relate keys
    for key, setting in SCHEMA.items():
        if key not in user:
            valid[key] = setting.default
            continue
        value = user[key]
        problem = setting.problem(key, value)
        if problem is not None:
            messages.append(Error(problem, hint=setting.hint or None, id=setting.check_id))
            continue
        if setting.import_strings:
            failed = _import_errors(key, value, setting)
            messages.extend(failed)
            if failed:
                continue
        valid[key] = value
    messages.extend(_related_messages(valid))
    return messages


def _import_errors(key: str, value: Any, setting: Setting) -> list[Any]:
    messages = []
    for item in value:
        try:
            _import(item, key)
        except ImportError as exc:
            messages.append(Error(str(exc), hint=setting.hint or None, id=setting.check_id))
    return messages


def _related_messages(values: dict[str, Any]) -> list[Any]:
    """Rules between valid keys, or about a valid value's consequences."""
    messages: list[Any] = []
    interval, timeout = values.get("HEARTBEAT_INTERVAL"), values.get("HEARTBEAT_TIMEOUT")
    if interval is not None and timeout is not None and timeout <= interval:
        messages.append(
            Error(
                "STREAMING['HEARTBEAT_TIMEOUT'] must be longer than HEARTBEAT_INTERVAL.",
                hint="A peer needs at least one ping interval to answer; use about twice the interval.",
                id="streaming_app.E004",
            )
        )
    max_frame = values.get("MAX_FRAME_BYTES")
    if max_frame is not None and max_frame >= DAPHNE_MAX_MESSAGE:
        messages.append(
            Warning(
                f"STREAMING['MAX_FRAME_BYTES'] is {max_frame}, but daphne drops messages of 1 MiB or more.",
                hint="Keep it below 1048576, or raise daphne's --websocket_max_message_size too.",
                id="streaming_app.W002",
            )
        )
    ttl = values.get("MONITOR_TTL_INTERVALS")
    if ttl is not None and ttl < 2:
        messages.append(
            Error(
                f"STREAMING['MONITOR_TTL_INTERVALS'] is {ttl}: a process's snapshot would expire before its next write.",
                hint="Use 2 or more (3 is the default): live calls then flicker only when a process is really gone.",
                id="streaming_app.E010",
            )
        )
    messages.extend(_send_buffer_messages(values))
    return messages


def _send_buffer_messages(values: dict[str, Any]) -> list[Any]:
    """The hard limit must leave room for a paced stream's last frame (see docs/limits.md)."""
    high, limit, max_frame = (values.get(k) for k in ("SEND_BUFFER_HIGH", "SEND_BUFFER_LIMIT", "MAX_FRAME_BYTES"))
    if high is None or limit is None or max_frame is None or limit >= high + max_frame:
        return []
    return [
        Warning(
            f"STREAMING['SEND_BUFFER_LIMIT'] is {limit}, less than SEND_BUFFER_HIGH + MAX_FRAME_BYTES "
            f"({high + max_frame}).",
            hint="A stream that waited below SEND_BUFFER_HIGH may then queue one whole frame; with less room "
            "a client that reads, only slowly, can be closed with 4429.",
            id="streaming_app.W035",
        )
    ]


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
    auth_classes = read_user_settings()[0].get(
        "DEFAULT_AUTHENTICATION_CLASSES", SCHEMA["DEFAULT_AUTHENTICATION_CLASSES"].default
    )
    bearer = isinstance(auth_classes, (list, tuple)) and any("BearerTokenAuthentication" in str(c) for c in auth_classes)
    if bearer and not apps.is_installed("rest_framework.authtoken"):
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
    if SCHEMA["BROKER"].problem("BROKER", read_user_settings()[0].get("BROKER")) is not None:
        return []  # check_settings says so
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
    try:
        parse_policies(streaming_settings.TOPIC_HISTORY)
        if streaming_settings.MODEL_STREAM_HISTORY is not None:
            parse_policies({"models.*": streaming_settings.MODEL_STREAM_HISTORY})
    except ImproperlyConfigured as exc:
        return [
            Error(
                str(exc),
                hint="E.g. STREAMING['TOPIC_HISTORY'] = {'chat.*': {'size': 1000, 'ttl': 3600}}.",
                id="streaming_app.E013",
            )
        ]
    return []


@register(Tags.models)
def check_model_streams(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Model stream views whose model or serializer cannot be streamed: errors at start-up, not per call."""
    from .generics import ModelStreamView, filter_field, filter_type
    from .registry import registry

    messages: list[Any] = []
    for view_class in registry.views().values():
        if not issubclass(view_class, ModelStreamView):
            continue
        where = f"{view_class.__module__}.{view_class.__qualname__}"
        if view_class.queryset is None:
            messages.append(
                Error(f"{where} has no 'queryset'.", hint="Set queryset = Model.objects.all() on the view.",
                      obj=view_class, id="streaming_app.E021")
            )
            continue
        model = view_class.queryset.model
        pk = model._meta.pk
        composite = getattr(models, "CompositePrimaryKey", None)
        if pk is None or (composite is not None and isinstance(pk, composite)):
            messages.append(
                Error(
                    f"{where} streams {model._meta.label}, which has no single-column primary key.",
                    hint="Change streams key rows by one primary key column; stream a model that has one.",
                    obj=view_class, id="streaming_app.E022",
                )
            )
            continue
        serializer_class = view_class.serializer_class
        if serializer_class is not None:
            try:
                fields = serializer_class().fields
            except Exception as exc:  # a serializer that cannot even be built
                fields, problem = {}, f"cannot be built ({exc})"
            else:
                problem = f"has no {pk.name!r} field"
            if pk.name not in fields and "id" not in fields:
                messages.append(
                    Error(
                        f"{where}: its serializer {serializer_class.__qualname__} {problem}.",
                        hint=f"Clients match changes to rows by primary key: include {pk.name!r} in the serializer's fields.",
                        obj=view_class, id="streaming_app.E023",
                    )
                )
        for name in view_class.filter_fields:
            try:
                filter_type(filter_field(model, name))
            except (LookupError, FieldDoesNotExist) as exc:
                messages.append(
                    Error(
                        f"{where}.filter_fields: {name!r} cannot filter a watch ({exc}).",
                        hint="Name concrete fields of the model (or foreign keys) of a simple type: "
                        "integers, strings, booleans, dates, UUIDs, decimals.",
                        obj=view_class, id="streaming_app.E024",
                    )
                )
    return messages


@register(Tags.compatibility)
def check_method_schemas(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Methods whose types the schema and generated clients cannot know: untyped (W040) or unreadable (E040)."""
    from .registry import registry
    from .schema import method_problems

    untyped, failed = method_problems(registry.methods())
    messages: list[Any] = []
    for method, problem in failed:
        messages.append(
            Error(
                f"Method {method.name!r} ({method.view_class.__module__}.{method.view_class.__qualname__}."
                f"{method.attr}) has an annotation with no JSON Schema: {problem}.",
                hint="Use TypedDicts, dataclasses, DRF serializers, Literal, enums, list/dict, X | None "
                "and plain JSON types, or pass item=/result= to the method's decorator.",
                obj=method.view_class, id="streaming_app.E040",
            )
        )
    if untyped:
        listed = "; ".join(f"{method.name} ({', '.join(parts)})" for method, parts in untyped)
        messages.append(
            Warning(
                f"{len(untyped)} streaming method(s) are untyped, so their schema says 'any JSON value': {listed}.",
                hint="Annotate arguments, return (-> TypedDict, -> AsyncIterator[Item]) and client items, "
                "or pass item=/result= to the decorator (docs/schema.md).",
                id="streaming_app.W040",
            )
        )
    return messages
@register(Tags.security)
def check_metrics_access(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Metrics open to anyone, with DEBUG off: call rates per method and user counts are not for everyone."""
    user, _ = read_user_settings()
    classes = user.get("METRICS_PERMISSION_CLASSES", SCHEMA["METRICS_PERMISSION_CLASSES"].default)
    if settings.DEBUG or not user.get("METRICS", True) or not isinstance(classes, (list, tuple)):
        return []
    if "rest_framework.permissions.AllowAny" in classes or AllowAny in classes:
        return [
            Warning(
                "STREAMING['METRICS_PERMISSION_CLASSES'] lets anyone read the metrics with DEBUG off.",
                hint="Keep the default (loopback clients and staff), or a permission class that admits "
                "your Prometheus' addresses (docs/operations.md).",
                id="streaming_app.W050",
            )
        ]
    return []
