"""The methods' contract as JSON Schemas (2020-12) and one AsyncAPI 3.0 document.

One generator, read by ``manage.py streaming_schema``, the ``<prefix>/_schema``
endpoint and ``manage.py streaming_codegen``. Nothing is declared twice: a
method's arguments come from its signature (type hints) or its arguments
serializer, as :mod:`streaming_app.arguments` validates them; its items and
result from its annotations (``-> Result``, ``-> AsyncIterator[Item]``, the
incoming items' ``AsyncIterator[ClientItem]``), or the ``item=`` and
``result=`` options of its decorator when the annotation cannot say it (a
server stream's result, a serializer's output). A model stream's ``watch``
items are built from the view's ``serializer_class``.

Types understood: ``TypedDict``, dataclasses, DRF serializers, ``Literal``,
enums, ``list``/``tuple``/``set``, ``dict[str, T]``, ``X | None`` and
unions, ``bool``/``int``/``float``/``str``, ``datetime``/``date``/``time``/
``UUID``/``Decimal`` (strings with a ``format``), ``Any``. A method that says
nothing is typed as any JSON value and listed by the system check
``streaming_app.W040``; an annotation that none of these fits is the check
error ``streaming_app.E040`` naming the method.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime
import decimal
import enum
import inspect
import re
import types
import typing
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Literal, Union

from rest_framework import fields as drf_fields
from rest_framework import relations
from rest_framework import serializers as drf_serializers

from .protocol.session import CallKind

if TYPE_CHECKING:
    from .registry import StreamMethod

Schema = dict[str, Any]
Mode = Literal["input", "output"]

ANY: Schema = {}
NULL: Schema = {"type": "null"}
KIND_NAMES = {
    CallKind.UNARY: "unary",
    CallKind.SERVER_STREAM: "server_stream",
    CallKind.CLIENT_STREAM: "client_stream",
    CallKind.BIDI_STREAM: "bidi_stream",
}
_EMPTY = inspect.Parameter.empty
_ITERATORS = (
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
    collections.abc.Iterator,
    collections.abc.Iterable,
    collections.abc.Generator,
)


class SchemaError(Exception):
    """An annotation that cannot be turned into a JSON Schema."""


class Components:
    """``components.schemas``: one named schema per TypedDict, dataclass, serializer or enum (and mode)."""

    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {}
        self._names: dict[tuple[Any, str], str] = {}

    def ref(self, key: Any, mode: str, base: str, build: typing.Callable[[], Schema]) -> Schema:
        """A ``$ref`` to the schema of ``key`` in ``mode``, built once (recursion-safe)."""
        found = self._names.get((key, mode))
        if found is None:
            # The same class read and written (a serializer's read-only fields) is two schemas:
            # the second is "<Name>Input"; two classes of one name are numbered.
            candidates = [base, f"{base}Input"] if mode == "input" else [base]
            found = next((name for name in candidates if name not in self.schemas), "")
            number = 2
            while not found or found in self.schemas:
                found = f"{base}{number}"
                number += 1
            self._names[(key, mode)] = found
            self.schemas[found] = {}  # a placeholder while building: a type may refer to itself
            self.schemas[found] = build()
        return {"$ref": f"#/components/schemas/{found}"}


def _is_typeddict(hint: Any) -> bool:
    return isinstance(hint, type) and typing.is_typeddict(hint)


def _is_serializer(hint: Any) -> bool:
    base = drf_serializers.BaseSerializer
    return (isinstance(hint, type) and issubclass(hint, base)) or isinstance(hint, base)


def _nullable(schema: Schema) -> Schema:
    if schema == ANY:
        return schema
    return {"anyOf": [schema, NULL]}


def schema_for(hint: Any, components: Components, mode: Mode = "output") -> Schema:
    """The JSON Schema of values of ``hint`` as they travel on the wire (JSON)."""
    if hint is _EMPTY or hint is Any or hint is object:
        return dict(ANY)
    if hint is None or hint is type(None):
        return dict(NULL)
    if _is_serializer(hint):
        return serializer_schema(hint, components, mode)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return schema_for(args[0], components, mode)
    if origin in (Union, types.UnionType):
        members = [schema_for(member, components, mode) for member in args]
        if ANY in members:
            return dict(ANY)
        return {"anyOf": members}
    if origin is Literal:
        return {"enum": list(args)} if len(args) != 1 else {"const": args[0]}
    if origin in (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Set,
                  collections.abc.MutableSequence, collections.abc.Iterable):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            args = args[:1]
        if origin is tuple and len(args) > 1:
            return {"type": "array", "items": {"anyOf": [schema_for(a, components, mode) for a in args]},
                    "minItems": len(args), "maxItems": len(args)}
        schema: Schema = {"type": "array"}
        if args:
            schema["items"] = schema_for(args[0], components, mode)
        if origin in (set, frozenset, collections.abc.Set):
            schema["uniqueItems"] = True
        return schema
    if origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
        schema = {"type": "object"}
        if len(args) == 2:
            if args[0] is not str:
                raise SchemaError(f"object keys must be strings, not {args[0]!r}")
            schema["additionalProperties"] = schema_for(args[1], components, mode)
        return schema
    if origin is not None:
        raise SchemaError(f"no JSON Schema for {hint!r}")
    if _is_typeddict(hint):
        return components.ref(hint, mode, hint.__name__, lambda: _typeddict_schema(hint, components, mode))
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return components.ref(hint, mode, hint.__name__, lambda: _dataclass_schema(hint, components, mode))
        if issubclass(hint, enum.Enum):
            return components.ref(hint, "enum", hint.__name__, lambda: {"enum": [m.value for m in hint]})
        if issubclass(hint, bool):
            return {"type": "boolean"}
        if issubclass(hint, int):
            return {"type": "integer"}
        if issubclass(hint, float):
            return {"type": "number"}
        if issubclass(hint, str):
            return {"type": "string"}
        if issubclass(hint, datetime.datetime):
            return {"type": "string", "format": "date-time"}
        if issubclass(hint, datetime.date):
            return {"type": "string", "format": "date"}
        if issubclass(hint, datetime.time):
            return {"type": "string", "format": "time"}
        if issubclass(hint, uuid.UUID):
            return {"type": "string", "format": "uuid"}
        if issubclass(hint, decimal.Decimal):
            return _decimal(mode)
        if hint in (list, tuple, set, frozenset):
            return {"type": "array"}
        if hint is dict:
            return {"type": "object"}
    raise SchemaError(f"no JSON Schema for {hint!r}")


def _decimal(mode: Mode) -> Schema:
    # Sent as a string (DRF's encoder); accepted as a number or a numeric string.
    if mode == "input":
        return {"anyOf": [{"type": "number"}, {"type": "string", "format": "decimal"}]}
    return {"type": "string", "format": "decimal"}


def _typeddict_schema(hint: Any, components: Components, mode: Mode) -> Schema:
    hints = typing.get_type_hints(hint)
    required = sorted(getattr(hint, "__required_keys__", hints))
    schema: Schema = {
        "type": "object",
        "properties": {name: schema_for(value, components, mode) for name, value in hints.items()},
        "required": [name for name in hints if name in required],
        "additionalProperties": False,
    }
    if hint.__doc__ and not hint.__doc__.startswith(f"{hint.__name__}("):
        schema["description"] = inspect.cleandoc(hint.__doc__)
    return schema


def _dataclass_schema(hint: Any, components: Components, mode: Mode) -> Schema:
    hints = typing.get_type_hints(hint)
    fields = [f for f in dataclasses.fields(hint) if f.init or mode == "output"]
    if mode == "output":  # dataclasses.asdict() writes every field
        required = [f.name for f in fields]
    else:
        required = [f.name for f in fields
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    return {
        "type": "object",
        "properties": {f.name: schema_for(hints.get(f.name, _EMPTY), components, mode) for f in fields},
        "required": required,
        "additionalProperties": False,
    }


# -- DRF serializers ------------------------------------------------------------------


def serializer_schema(serializer: Any, components: Components, mode: Mode) -> Schema:
    """A serializer (class or instance) as a named schema; ``many=True`` is an array of them."""
    if isinstance(serializer, drf_serializers.ListSerializer):
        return {"type": "array", "items": serializer_schema(serializer.child, components, mode)}
    cls = serializer if isinstance(serializer, type) else type(serializer)
    base = re.sub(r"Serializer$", "", cls.__name__) or cls.__name__
    return components.ref(cls, mode, base, lambda: serializer_object(serializer, components, mode))


def serializer_object(serializer: Any, components: Components, mode: Mode) -> Schema:
    """The object a serializer reads (``mode="input"``) or writes (``"output"``), inline."""
    instance = serializer() if isinstance(serializer, type) else serializer
    properties: dict[str, Schema] = {}
    required: list[str] = []
    for name, drf_field in instance.fields.items():
        if mode == "input" and (drf_field.read_only or _is_hidden(drf_field)):
            continue
        if mode == "output" and (drf_field.write_only or _is_hidden(drf_field)):
            continue
        properties[name] = field_schema(drf_field, components, mode)
        if mode == "output" or drf_field.required:
            required.append(name)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _is_hidden(drf_field: Any) -> bool:
    return isinstance(drf_field, drf_fields.HiddenField)


def field_schema(drf_field: Any, components: Components, mode: Mode) -> Schema:
    """One serializer field: its type, bounds and choices; ``allow_null`` (or a None default) adds null."""
    schema = _field_type(drf_field, components, mode)
    label = drf_field.help_text or None
    if label:
        schema = {**schema, "description": str(label)}
    default = getattr(drf_field, "default", drf_fields.empty)
    if drf_field.allow_null or (mode == "output" and default is None):
        schema = _nullable(schema)
    if mode == "input" and not drf_field.required and _json_value(default):
        schema = {**schema, "default": default}
    return schema


def _json_value(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _bounded(schema: Schema, drf_field: Any, low: str, high: str, low_attr: str, high_attr: str) -> Schema:
    for key, attr in ((low, low_attr), (high, high_attr)):
        value = getattr(drf_field, attr, None)
        if value is not None:
            schema[key] = value if not isinstance(value, decimal.Decimal) else float(value)
    return schema


def _field_type(drf_field: Any, components: Components, mode: Mode) -> Schema:
    f = drf_fields
    if isinstance(drf_field, drf_serializers.BaseSerializer):
        return serializer_schema(drf_field, components, mode)
    if isinstance(drf_field, f.MultipleChoiceField):
        return {"type": "array", "items": {"enum": list(drf_field.choices)}, "uniqueItems": True}
    if isinstance(drf_field, f.ChoiceField):
        choices = [c for c in drf_field.choices if not (c == "" and not drf_field.allow_blank)]
        if getattr(drf_field, "allow_blank", False) and "" not in choices:
            choices.append("")
        return {"enum": choices}
    if isinstance(drf_field, f.BooleanField):
        return {"type": "boolean"}
    if isinstance(drf_field, f.IntegerField):
        return _bounded({"type": "integer"}, drf_field, "minimum", "maximum", "min_value", "max_value")
    if isinstance(drf_field, f.FloatField):
        return _bounded({"type": "number"}, drf_field, "minimum", "maximum", "min_value", "max_value")
    if isinstance(drf_field, f.DecimalField):
        if mode == "output" and not getattr(drf_field, "coerce_to_string", True):
            return {"type": "number"}
        return _decimal(mode)
    if isinstance(drf_field, f.DateTimeField):
        return {"type": "string", "format": "date-time"}
    if isinstance(drf_field, f.DateField):
        return {"type": "string", "format": "date"}
    if isinstance(drf_field, f.TimeField):
        return {"type": "string", "format": "time"}
    if isinstance(drf_field, f.DurationField):
        return {"type": "string", "format": "duration"}
    if isinstance(drf_field, f.UUIDField):
        return {"type": "string", "format": "uuid"}
    if isinstance(drf_field, f.CharField):  # also Email, Slug, URL, Regex, IPAddress fields
        schema: Schema = {"type": "string"}
        if isinstance(drf_field, f.EmailField):
            schema["format"] = "email"
        elif isinstance(drf_field, f.URLField):
            schema["format"] = "uri"
        elif isinstance(drf_field, f.SlugField):
            schema["pattern"] = r"^[-a-zA-Z0-9_]+$"
        if drf_field.max_length is not None:
            schema["maxLength"] = drf_field.max_length
        if drf_field.min_length is not None:
            schema["minLength"] = drf_field.min_length
        elif not drf_field.allow_blank and mode == "input":
            schema["minLength"] = 1
        return schema
    if isinstance(drf_field, f.ListField):
        return {"type": "array", "items": _field_type(drf_field.child, components, mode)}
    if isinstance(drf_field, f.DictField):
        return {"type": "object", "additionalProperties": _field_type(drf_field.child, components, mode)}
    if isinstance(drf_field, relations.ManyRelatedField):
        return {"type": "array", "items": _field_type(drf_field.child_relation, components, mode)}
    if isinstance(drf_field, relations.PrimaryKeyRelatedField):
        return {"type": ["integer", "string"]}
    if isinstance(drf_field, (relations.StringRelatedField, relations.SlugRelatedField, relations.HyperlinkedRelatedField)):
        return {"type": "string"}
    if isinstance(drf_field, drf_serializers.SerializerMethodField):
        return _method_field(drf_field, components, mode)
    # JSONField, ReadOnlyField and fields of one's own: any JSON value.
    return dict(ANY)


def _method_field(drf_field: Any, components: Components, mode: Mode) -> Schema:
    """A ``SerializerMethodField`` is what its ``get_<name>`` method's return annotation says (else any value)."""
    method = getattr(type(drf_field.parent), drf_field.method_name or "", None)
    try:
        hint = typing.get_type_hints(method).get("return", _EMPTY) if method is not None else _EMPTY
    except Exception:  # an annotation that cannot be resolved here: say nothing rather than fail
        return dict(ANY)
    return schema_for(hint, components, mode)


# -- methods ------------------------------------------------------------------------------


@dataclass
class MethodSchema:
    """What one method takes and sends, as JSON Schemas, and what it leaves untyped."""

    name: str
    kind: str
    arguments: Schema
    item: Schema | None
    client_item: Schema | None
    result: Schema
    description: str
    untyped: list[str] = field(default_factory=list)  # e.g. ["result", "argument 'x'"]

    def x_streaming(self) -> Schema:
        out: Schema = {"kind": self.kind, "arguments": self.arguments}
        if self.item is not None:
            out["item"] = self.item
        if self.client_item is not None:
            out["client_item"] = self.client_item
        out["result"] = self.result
        return out


def _iterated(hint: Any) -> Any:
    """``T`` of ``AsyncIterator[T]`` (and the like); ``_EMPTY`` when the hint says nothing."""
    if hint is _EMPTY:
        return _EMPTY
    origin = typing.get_origin(hint)
    if origin in _ITERATORS or hint in _ITERATORS:
        args = typing.get_args(hint)
        return args[0] if args else _EMPTY
    raise SchemaError(f"{hint!r} is not an async iterator of items (write AsyncIterator[Item])")


def _arguments_serializer(method: StreamMethod) -> Any:
    """The view's arguments serializer for ``method``, from its own hook, as a call would get it."""
    view = method.view_class.__new__(method.view_class)  # the hook reads only the method, no request
    view.stream_method = method
    try:
        return view.get_arguments_serializer_class()
    except AttributeError:  # a hook that wants a request: the class-level choice
        return method.options.serializer_class or method.view_class.serializer_class


def method_schema(method: StreamMethod, components: Components) -> MethodSchema:
    """The schemas of one registered method; raises :class:`SchemaError` naming the part that fails."""
    from .generics import ModelStreamView

    func = method.function
    kind = method.kind
    untyped: list[str] = []
    try:
        hints = typing.get_type_hints(func)
    except Exception as exc:
        raise SchemaError(f"cannot resolve its type hints: {exc}") from exc
    parameters = list(inspect.signature(func).parameters.values())[2:]
    items_param = parameters.pop(0) if kind.client_streams and parameters else None

    # Arguments.
    serializer = _arguments_serializer(method)
    if serializer is not None:
        arguments = serializer_object(serializer, components, "input")
    else:
        properties: dict[str, Schema] = {}
        required: list[str] = []
        extra = False
        for param in parameters:
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                extra = True
                continue
            hint = hints.get(param.name, param.annotation)
            if hint is _EMPTY:
                untyped.append(f"argument {param.name!r}")
            try:
                schema = schema_for(hint, components, "input")
            except SchemaError as exc:
                raise SchemaError(f"argument {param.name!r}: {exc}") from None
            if param.default is _EMPTY:
                required.append(param.name)
            elif _json_value(param.default) or isinstance(param.default, (list, dict)):
                schema = {**schema, "default": param.default}
            properties[param.name] = schema
        arguments = {"type": "object", "properties": properties, "required": required, "additionalProperties": extra}

    # Items the client sends.
    client_item = None
    if items_param is not None:
        hint = _iterated(hints.get(items_param.name, items_param.annotation))
        if hint is _EMPTY:
            untyped.append("client items")
        try:
            client_item = schema_for(hint, components, "input")
        except SchemaError as exc:
            raise SchemaError(f"client items: {exc}") from None

    # Items and result the server sends.
    returns = hints.get("return", _EMPTY)
    item = None
    if kind.server_streams:
        if method.options.item is not None:
            item_hint = method.options.item
        elif method.attr == "watch" and issubclass(method.view_class, ModelStreamView) \
                and method.view_class.serializer_class is not None and func.__module__ == ModelStreamView.__module__:
            item_hint = _EMPTY
            item = watch_item_schema(method.view_class.serializer_class, components)
        else:
            try:
                item_hint = _iterated(returns)
            except SchemaError as exc:
                raise SchemaError(f"items: {exc}") from None
            if item_hint is _EMPTY:
                untyped.append("items")
        if item is None:
            try:
                item = schema_for(item_hint, components, "output")
            except SchemaError as exc:
                raise SchemaError(f"items: {exc}") from None
        result_hint = method.options.result  # a stream's result is ctx.result: only the decorator says it
        result = NULL if result_hint is None else _output(result_hint, components, "result")
    else:
        result_hint = method.options.result if method.options.result is not None else returns
        if result_hint is _EMPTY or result_hint is dict:
            untyped.append("result")
        result = _output(result_hint, components, "result")
    return MethodSchema(
        name=method.name,
        kind=KIND_NAMES[kind],
        arguments=arguments,
        item=item,
        client_item=client_item,
        result=result,
        description=inspect.cleandoc(func.__doc__ or ""),
        untyped=untyped,
    )


def _output(hint: Any, components: Components, what: str) -> Schema:
    try:
        return schema_for(hint, components, "output")
    except SchemaError as exc:
        raise SchemaError(f"{what}: {exc}") from None


def watch_item_schema(serializer: Any, components: Components) -> Schema:
    """A model stream's items: snapshot chunks, then created/updated/deleted changes of rendered rows."""
    row = serializer_schema(serializer, components, "output")
    instance = serializer() if isinstance(serializer, type) else serializer
    pk_field = instance.fields.get("id")
    pk = field_schema(pk_field, components, "output") if pk_field is not None else {"type": ["integer", "string"]}
    return {
        "oneOf": [
            {"type": "object", "required": ["op", "data", "last"], "additionalProperties": False,
             "properties": {"op": {"const": "snapshot"}, "data": {"type": "array", "items": row},
                            "last": {"type": "boolean"}}},
            {"type": "object", "required": ["op", "pk", "data"], "additionalProperties": False,
             "properties": {"op": {"enum": ["created", "updated"]}, "pk": pk, "data": row}},
            {"type": "object", "required": ["op", "pk"], "additionalProperties": False,
             "properties": {"op": {"const": "deleted"}, "pk": pk}},
        ]
    }


# -- the document -----------------------------------------------------------------------


def method_problems(methods: Iterable[StreamMethod]) -> tuple[list[tuple[StreamMethod, list[str]]], list[tuple[StreamMethod, str]]]:
    """(untyped methods with what each leaves untyped, methods whose annotations fail with why): for the checks."""
    untyped: list[tuple[StreamMethod, list[str]]] = []
    failed: list[tuple[StreamMethod, str]] = []
    for method in methods:
        try:
            found = method_schema(method, Components())
        except Exception as exc:  # SchemaError, or whatever a user's type or serializer raises
            failed.append((method, str(exc)))
            continue
        if found.untyped:
            untyped.append((method, found.untyped))
    return untyped, failed


def build_document(
    methods: Iterable[StreamMethod] | None = None,
    *,
    title: str = "streaming_app API",
    version: str = "1.0.0",
    websocket_path: str = "/ws/",
) -> Schema:
    """The AsyncAPI 3.0 document of ``methods`` (default: every registered method).

    Each method is one operation keyed by its name, with ``x-streaming``
    holding its kind and its JSON Schemas. A method whose annotations fail
    (``streaming_app.E040`` says so) is described as taking and sending any
    JSON value, with ``x-streaming-error``, so the document is still served.
    """
    if methods is None:
        from .registry import registry

        methods = registry.methods()
    components = Components()
    channels: Schema = {}
    operations: Schema = {}
    for method in methods:
        try:
            found = method_schema(method, components)
            error = None
        except Exception as exc:
            error = str(exc)
            found = MethodSchema(method.name, KIND_NAMES[method.kind], {"type": "object"},
                                 ANY if method.kind.server_streams else None,
                                 ANY if method.kind.client_streams else None, ANY, "")
        channel_ref = f"#/channels/{method.name}"
        messages: Schema = {"call": {"name": "call", "title": f"{method.name} call",
                                     "summary": "The call frame's arguments.", "payload": found.arguments}}
        if found.client_item is not None:
            messages["client_item"] = {"name": "client_item", "summary": "An item the client sends.",
                                       "payload": found.client_item}
        if found.item is not None:
            messages["item"] = {"name": "item", "summary": "An item the server sends.", "payload": found.item}
        messages["result"] = {"name": "result", "summary": "The call's result, in its end frame.",
                              "payload": found.result}
        channels[method.name] = {
            "address": websocket_path,
            "title": method.name,
            "messages": messages,
        }
        sent = ["call"] + (["client_item"] if found.client_item is not None else [])
        replies = (["item"] if found.item is not None else []) + ["result"]
        operation: Schema = {
            "action": "send",
            "channel": {"$ref": channel_ref},
            "title": method.name,
            "messages": [{"$ref": f"{channel_ref}/messages/{name}"} for name in sent],
            "reply": {
                "channel": {"$ref": channel_ref},
                "messages": [{"$ref": f"{channel_ref}/messages/{name}"} for name in replies],
            },
            "x-streaming": found.x_streaming(),
        }
        if found.description:
            operation["summary"] = found.description.splitlines()[0]
            operation["description"] = found.description
        if error is not None:
            operation["x-streaming-error"] = error
        operations[method.name] = operation
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Streaming RPC methods: each operation is one method (x-streaming holds its "
            "kind and JSON Schemas (2020-12) of arguments, items and result).",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": components.schemas},
    }


def example_arguments(arguments: Schema) -> dict[str, Any]:
    """Arguments to start from in the explorer's form: each default, or a placeholder of the right type."""
    placeholders = {"integer": 0, "number": 0, "string": "", "boolean": False, "array": [], "object": {}}
    example: dict[str, Any] = {}
    required = set(arguments.get("required", ()))
    for name, schema in arguments.get("properties", {}).items():
        if "default" in schema:
            example[name] = schema["default"]
        elif name in required:
            kind = schema.get("type")
            example[name] = placeholders.get(kind if isinstance(kind, str) else "", None)
    return example


def current_document() -> Schema:
    """The document of every registered method with the project's ``SCHEMA_INFO``: what the command and endpoint serve."""
    from urllib.parse import urlsplit

    from .conf import streaming_settings

    info = streaming_settings.SCHEMA_INFO
    return build_document(
        title=info["title"],
        version=info["version"],
        websocket_path=urlsplit(streaming_settings.ADMIN_WEBSOCKET_URL).path or "/",
    )
