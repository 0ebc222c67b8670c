"""Breaking changes between two schema documents, like ``buf breaking``: what ``streaming_schema --check`` reports.

A change breaks a client written against the saved document when a method it
calls is gone or changed kind, when a call it makes is refused (a required
argument added, an argument removed or narrowed, a client item narrowed),
or when what it receives no longer fits what it expects (an item or result
changed; a field added to them is no break). Both documents are compared through their JSON
Schemas: ``accepts(a, b)`` holds when every value valid under ``b`` is valid
under ``a``. Bounds (lengths, minimum/maximum, patterns) are not compared.
"""

from __future__ import annotations

from typing import Any

Schema = Any  # a JSON Schema: a dict, or True/False


class NotASchemaDocument(ValueError):
    """The saved file is not an AsyncAPI document written by ``streaming_schema``."""


def streaming_operations(document: Any) -> dict[str, dict[str, Any]]:
    """Each operation's ``x-streaming`` object, or :class:`NotASchemaDocument` saying what is missing."""
    if not isinstance(document, dict) or not isinstance(document.get("asyncapi"), str):
        raise NotASchemaDocument("it is not an AsyncAPI document (no 'asyncapi' version field)")
    if not document["asyncapi"].startswith("3."):
        raise NotASchemaDocument(f"it is AsyncAPI {document['asyncapi']}, not 3.x")
    operations = document.get("operations")
    if not isinstance(operations, dict):
        raise NotASchemaDocument("it has no 'operations' object")
    found = {}
    for name, operation in operations.items():
        contract = operation.get("x-streaming") if isinstance(operation, dict) else None
        if not isinstance(contract, dict) or not isinstance(contract.get("kind"), str):
            raise NotASchemaDocument(f"operation {name!r} has no 'x-streaming' object (not written by streaming_schema)")
        found[name] = contract
    return found


class _Side:
    """One document's schemas, to resolve ``$ref`` against."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.schemas = (document.get("components") or {}).get("schemas") or {}

    def resolve(self, schema: Schema) -> Schema:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 50:
            ref = schema["$ref"]
            prefix = "#/components/schemas/"
            if not isinstance(ref, str) or not ref.startswith(prefix):
                return {}  # a reference we cannot follow: treat as any value
            schema = self.schemas.get(ref[len(prefix):], {})
            seen += 1
        return schema


_JSON_TYPES = {"null", "boolean", "object", "array", "number", "string", "integer"}


def _types(schema: dict[str, Any]) -> set[str] | None:
    value = schema.get("type")
    if value is None:
        return None
    types = {value} if isinstance(value, str) else set(value)
    if "number" in types:
        types.add("integer")
    return types


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class Comparison:
    """``accepts(wide, narrow)`` between a schema of one document and one of the other."""

    def __init__(self, wide_doc: dict[str, Any], narrow_doc: dict[str, Any], *, new_fields_ok: bool = False) -> None:
        # new_fields_ok: fields the narrow side adds are no break (a client reading items and
        # results ignores fields it does not know, as protobuf and JSON clients do).
        self.new_fields_ok = new_fields_ok
        self.wide_side = _Side(wide_doc)
        self.narrow_side = _Side(narrow_doc)
        self._assumed: set[tuple[int, int]] = set()

    def accepts(self, wide: Schema, narrow: Schema) -> bool:
        wide = self.wide_side.resolve(wide)
        narrow = self.narrow_side.resolve(narrow)
        if wide is True or wide == {}:
            return True
        if narrow is False or (isinstance(narrow, dict) and narrow.get("not") == {}):
            return True
        if narrow is True or narrow == {}:
            return False
        if not isinstance(wide, dict) or not isinstance(narrow, dict):
            return bool(wide == narrow)
        key = (id(wide), id(narrow))
        if key in self._assumed:  # recursive types: assume equal on the way back in
            return True
        self._assumed.add(key)
        try:
            return self._accepts(wide, narrow)
        finally:
            self._assumed.discard(key)

    def _accepts(self, wide: dict[str, Any], narrow: dict[str, Any]) -> bool:
        for union in ("anyOf", "oneOf"):
            if union in narrow:
                return all(self.accepts(wide, {**_without(narrow, union), **_as_dict(member)}) for member in narrow[union])
        values = _values(narrow)
        if values is not None:
            return all(self._accepts_value(wide, value) for value in values)
        for union in ("anyOf", "oneOf"):
            if union in wide:
                return any(self.accepts({**_without(wide, union), **_as_dict(member)}, narrow) for member in wide[union])
        if _values(wide) is not None:
            return False  # a fixed set of values cannot take every value of a type
        wide_types, narrow_types = _types(wide), _types(narrow)
        if wide_types is not None:
            if narrow_types is None or not narrow_types <= wide_types:
                return False
        kinds = narrow_types or _JSON_TYPES
        if "object" in kinds and not self._objects(wide, narrow):
            return False
        if "array" in kinds and not self.accepts(wide.get("items", {}), narrow.get("items", {})):
            return False
        return True

    def _accepts_value(self, wide: Schema, value: Any) -> bool:
        wide = self.wide_side.resolve(wide)
        if wide is True or wide == {}:
            return True
        if not isinstance(wide, dict):
            return False
        for union in ("anyOf", "oneOf"):
            if union in wide:
                return any(self._accepts_value({**_without(wide, union), **_as_dict(m)}, value) for m in wide[union])
        allowed = _values(wide)
        if allowed is not None:
            return any(value == a and _type_of(value) == _type_of(a) for a in allowed)
        types = _types(wide)
        return types is None or _type_of(value) in types

    def _objects(self, wide: dict[str, Any], narrow: dict[str, Any]) -> bool:
        wide_props = wide.get("properties", {})
        narrow_props = narrow.get("properties", {})
        if not set(wide.get("required", ())) <= set(narrow.get("required", ())):
            return False
        wide_extra = wide.get("additionalProperties", True)
        narrow_extra = narrow.get("additionalProperties", True)
        for name, schema in narrow_props.items():
            if name in wide_props:
                if not self.accepts(wide_props[name], schema):
                    return False
            elif not self.new_fields_ok and not self.accepts(wide_extra, schema):
                return False
        if narrow_extra is not False:
            for schema in wide_props.values():
                if not self.accepts(schema, narrow_extra):
                    return False
            if not self.new_fields_ok and not self.accepts(wide_extra, narrow_extra):
                return False
        return True


def _values(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    if "enum" in schema:
        return list(schema["enum"])
    return None


def _without(schema: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def _as_dict(schema: Schema) -> dict[str, Any]:
    if schema is True:
        return {}
    if schema is False:
        return {"not": {}}
    return dict(schema)


def breaking_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Each breaking change from ``saved`` to ``current``, one sentence each (empty: compatible)."""
    old_ops = streaming_operations(saved)
    new_ops = streaming_operations(current)
    # Calls the client makes: the new document must accept what the old one allowed.
    inbound = Comparison(current, saved)
    # What the client receives: the old document must accept what the new one sends.
    outbound = Comparison(saved, current, new_fields_ok=True)
    changes: list[str] = []
    for name, old in sorted(old_ops.items()):
        new = new_ops.get(name)
        if new is None:
            changes.append(f"{name}: method removed")
            continue
        if new["kind"] != old["kind"]:
            changes.append(f"{name}: kind changed from {old['kind']} to {new['kind']}")
            continue
        changes.extend(f"{name}: {change}" for change in _argument_changes(inbound, old, new))
        if "client_item" in old and not inbound.accepts(new.get("client_item", {}), old["client_item"]):
            changes.append(f"{name}: client item type changed incompatibly")
        if "item" in old and not outbound.accepts(old["item"], new.get("item", {})):
            changes.append(f"{name}: item type changed incompatibly")
        if not outbound.accepts(old.get("result", {}), new.get("result", {})):
            changes.append(f"{name}: result type changed incompatibly")
    return changes


def _argument_changes(inbound: Comparison, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    old_args = inbound.narrow_side.resolve(old.get("arguments", {}))
    new_args = inbound.wide_side.resolve(new.get("arguments", {}))
    if not isinstance(old_args, dict) or not isinstance(new_args, dict) \
            or "properties" not in old_args or "properties" not in new_args:
        return [] if inbound.accepts(new_args, old_args) else ["arguments changed incompatibly"]
    changes = []
    old_props, new_props = old_args["properties"], new_args["properties"]
    old_required = set(old_args.get("required", ()))
    for name in new_args.get("required", ()):
        if name not in old_required:
            changes.append(f"required argument {name!r} added" if name not in old_props
                           else f"argument {name!r} became required")
    new_extra = new_args.get("additionalProperties", True)
    for name, schema in old_props.items():
        if name not in new_props:
            if not inbound.accepts(new_extra, schema):
                changes.append(f"argument {name!r} removed")
        elif not inbound.accepts(new_props[name], schema):
            changes.append(f"argument {name!r} type changed incompatibly")
    return changes
