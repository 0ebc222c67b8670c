"""Validating call arguments (and incoming items) against a method's signature.

A method declares its arguments as keyword parameters with type hints, the way
a FastAPI or Ninja endpoint does; values are checked and converted here, and
every problem is reported at once, in the shape of DRF's ``serializer.errors``
(``{"field": ["message", ...]}``), inside an ``invalid_argument`` error.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime
import decimal
import enum
import inspect
import types
import typing
import uuid
from typing import Any, Callable, Literal, Union

from .exceptions import InvalidArgument
from .protocol import frames as wire

_EMPTY = inspect.Parameter.empty


class Invalid(Exception):
    """One value that does not fit its type; ``path`` locates it inside the arguments."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


Converter = Callable[[Any], Any]


def converter_for(hint: Any) -> Converter | None:
    """A function that checks and converts a JSON value to ``hint``; None accepts anything."""
    if hint is _EMPTY or hint is Any or hint is object:
        return None
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return converter_for(typing.get_args(hint)[0])
    if origin in (Union, types.UnionType):
        return _union(typing.get_args(hint))
    if origin is Literal:
        return _literal(typing.get_args(hint))
    if origin in (list, collections.abc.Sequence, collections.abc.Iterable, tuple, set, frozenset):
        args = typing.get_args(hint)
        return _list(converter_for(args[0]) if args else None, origin)
    if origin in (dict, collections.abc.Mapping):
        args = typing.get_args(hint)
        return _dict(converter_for(args[1]) if len(args) == 2 else None)
    if hint is type(None) or hint is None:
        return _none
    if isinstance(hint, type) and typing.is_typeddict(hint):
        return _typeddict(hint)
    if isinstance(hint, type):
        if issubclass(hint, bool):
            return _exact(bool, "a boolean")
        if issubclass(hint, enum.Enum):
            return _enum(hint)
        if issubclass(hint, int):
            return _int
        if issubclass(hint, float):
            return _float
        if issubclass(hint, str):
            return _str
        if dataclasses.is_dataclass(hint):
            return _dataclass(hint)
        if issubclass(hint, datetime.datetime):
            return _parsed(datetime.datetime.fromisoformat, "an ISO 8601 date and time")
        if issubclass(hint, datetime.date):
            return _parsed(datetime.date.fromisoformat, "an ISO 8601 date")
        if issubclass(hint, uuid.UUID):
            return _parsed(uuid.UUID, "a UUID")
        if issubclass(hint, decimal.Decimal):
            return _decimal
        if hint in (list, tuple, set, frozenset):
            return _list(None, hint)
        if hint is dict:
            return _dict(None)
    raise TypeError(f"streaming_app cannot validate arguments of type {hint!r}")


def _exact(kind: type, name: str) -> Converter:
    def convert(value: Any) -> Any:
        if type(value) is not kind:
            raise Invalid(f"Must be {name}.")
        return value

    return convert


def _str(value: Any) -> str:
    # As DRF's CharField: a NUL is refused here, before a database refuses it
    # with an error the client would see as ``internal`` (PostgreSQL's text
    # types cannot hold one).
    if type(value) is not str:
        raise Invalid("Must be a string.")
    if "\x00" in value:
        raise Invalid("Null characters are not allowed.")
    return value


def _int(value: Any) -> int:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise Invalid("Must be an integer.")


def _float(value: Any) -> float:
    if type(value) in (int, float):
        return float(value)
    raise Invalid("Must be a number.")


def _decimal(value: Any) -> decimal.Decimal:
    if type(value) in (int, float, str):
        try:
            result = decimal.Decimal(str(value))
        except decimal.InvalidOperation:
            pass
        else:
            if result.is_finite():
                return result
    raise Invalid("Must be a decimal number.")


def _none(value: Any) -> None:
    if value is not None:
        raise Invalid("Must be null.")
    return None


def _parsed(parse: Callable[[str], Any], name: str) -> Converter:
    def convert(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse(value)
            except ValueError:
                pass
        raise Invalid(f"Must be {name}.")

    return convert


def _enum(enum_type: type[enum.Enum]) -> Converter:
    choices = [member.value for member in enum_type]

    def convert(value: Any) -> Any:
        try:
            return enum_type(value)
        except ValueError:
            raise Invalid(f"Must be one of {choices!r}.") from None

    return convert


def _literal(choices: tuple[Any, ...]) -> Converter:
    def convert(value: Any) -> Any:
        for choice in choices:
            if value == choice and type(value) is type(choice):
                return value
        raise Invalid(f"Must be one of {list(choices)!r}.")

    return convert


def _union(members: tuple[Any, ...]) -> Converter | None:
    found = [converter_for(member) for member in members]
    converters = [c for c in found if c is not None]
    if len(converters) < len(found):
        return None

    def convert(value: Any) -> Any:
        messages = []
        for member_convert in converters:
            try:
                return member_convert(value)
            except Invalid as exc:
                messages.append(exc.message)
        raise Invalid(" Or: ".join(dict.fromkeys(messages)))

    return convert


def _list(item: Converter | None, container: Any) -> Converter:
    build = tuple if container is tuple else frozenset if container is frozenset else set if container is set else list

    def convert(value: Any) -> Any:
        if type(value) is not list:
            raise Invalid("Must be a list.")
        if item is None:
            return build(value)
        out = []
        for index, element in enumerate(value):
            try:
                out.append(item(element))
            except Invalid as exc:
                raise Invalid(exc.message, (index, *exc.path)) from None
        return build(out)

    return convert


def _dict(value_convert: Converter | None) -> Converter:
    def convert(value: Any) -> Any:
        if type(value) is not dict:
            raise Invalid("Must be an object.")
        if value_convert is None:
            return value
        out = {}
        for key, element in value.items():
            try:
                out[key] = value_convert(element)
            except Invalid as exc:
                raise Invalid(exc.message, (key, *exc.path)) from None
        return out

    return convert


def _dataclass(cls: type) -> Converter:
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    converters = {f.name: converter_for(hints.get(f.name, _EMPTY)) for f in fields}
    required = {
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    fields_of = _object_fields(converters, required)
    return lambda value: cls(**fields_of(value))


def _typeddict(cls: type) -> Converter:
    """A ``TypedDict``: an object with its required keys and no others (as its schema says); a plain dict out."""
    hints = typing.get_type_hints(cls)
    converters = {name: converter_for(hint) for name, hint in hints.items()}
    return _object_fields(converters, set(getattr(cls, "__required_keys__", hints)))


def _object_fields(converters: dict[str, Converter | None], required: set[str]) -> Converter:
    """An object with the required keys, no unknown ones, each value converted: the fields as a dict.

    Dataclasses and TypedDicts read the same JSON object; only what is built
    from the fields differs.
    """

    def convert(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise Invalid("Must be an object.")
        unknown = sorted(set(value) - set(converters))
        if unknown:
            raise Invalid(f"Unknown field {unknown[0]!r}.", ())
        out = {}
        for name, field_convert in converters.items():
            if name not in value:
                if name in required:
                    raise Invalid("This field is required.", (name,))
                continue
            try:
                out[name] = value[name] if field_convert is None else field_convert(value[name])
            except Invalid as exc:
                raise Invalid(exc.message, (name, *exc.path)) from None
        return out

    return convert


def _error_key(name: str, path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in (name, *path))


class ArgumentSpec:
    """The keyword arguments a method takes, read once from its signature."""

    def __init__(self, parameters: list[inspect.Parameter], hints: dict[str, Any]) -> None:
        self.converters: dict[str, Converter | None] = {}
        self.required: set[str] = set()
        self.accepts_extra = False
        for param in parameters:
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                self.accepts_extra = True
                continue
            if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
                raise TypeError(f"argument {param.name!r} must be passable by keyword")
            self.converters[param.name] = converter_for(hints.get(param.name, param.annotation))
            if param.default is _EMPTY:
                self.required.add(param.name)

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        values: dict[str, Any] = {}
        for name, value in args.items():
            if name not in self.converters:
                if self.accepts_extra:
                    values[name] = value
                else:
                    errors[name] = ["Unknown argument."]
                continue
            convert = self.converters[name]
            try:
                values[name] = value if convert is None else convert(value)
            except Invalid as exc:
                errors.setdefault(_error_key(name, exc.path), []).append(exc.message)
        for name in self.required - args.keys():
            errors[name] = ["This argument is required."]
        if errors:
            raise invalid_arguments(errors)
        return values

    def decode_query(self, params: dict[str, str]) -> dict[str, Any]:
        """Arguments from URL query parameters (strings), for :meth:`validate`.

        A value stays a string where its parameter accepts that string (``str``,
        dates, UUIDs, decimals, untyped parameters, unknown names); otherwise
        it is read as JSON, so ``?n=5`` is the integer 5, ``?flag=true`` a
        boolean and ``?ids=[1,2]`` a list. A value that is not JSON stays a
        string, and :meth:`validate` reports it in the usual shape.
        """
        args: dict[str, Any] = {}
        for name, text in params.items():
            convert = self.converters.get(name)
            args[name] = text if convert is None else _from_query(convert, text)
        return args


def _from_query(convert: Converter, text: str) -> Any:
    try:
        convert(text)
    except Exception:  # Invalid, or anything a converter raises for a string
        pass
    else:
        return text
    try:
        return wire.loads(text)
    except (ValueError, RecursionError):
        return text


def invalid_arguments(errors: dict[str, Any]) -> InvalidArgument:
    fields = ", ".join(sorted(errors))
    return InvalidArgument(f"Invalid arguments: {fields}.", {"errors": errors})


def item_converter(hint: Any) -> Converter | None:
    """The converter for items of ``AsyncIterator[T]`` (or similar); None for untyped items."""
    args = typing.get_args(hint)
    return converter_for(args[0]) if args else None


def convert_item(convert: Converter, value: Any) -> Any:
    """Check one incoming item; a bad one is an ``invalid_argument`` for the call."""
    try:
        return convert(value)
    except Invalid as exc:
        key = _error_key("item", exc.path)
        raise InvalidArgument(f"Invalid item: {exc.message}", {"errors": {key: [exc.message]}}) from None
