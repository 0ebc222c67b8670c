"""Typed clients from the schema document: a TypeScript module over ``client.js`` and a Python one over ``StreamClient``.

Both read only the AsyncAPI document of :mod:`streaming_app.schema` (each
operation's ``x-streaming``), so what they type is exactly what the server
publishes. They are thin: each method is one function that calls the
client's ``call``/``stream``/``open`` with its wire name; only the types are
new, so a call costs one more function call and nothing per item. Errors
are the clients' own typed classes (``InvalidArgument``, ``NotFound``...).
"""

from __future__ import annotations

import json
import keyword
import re
from typing import Any

Schema = Any

KINDS = ("unary", "server_stream", "client_stream", "bidi_stream")
_REF = "#/components/schemas/"


def _pascal(*parts: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", " ".join(parts))
    return "".join(word[:1].upper() + word[1:] for word in words if word)


# Names the generated modules use themselves: a schema named so gets a "Schema" suffix.
TS_RESERVED = frozenset({"Api", "Array", "Call", "CallOptions", "OpenOptions", "Promise", "Record", "Stream",
                         "StreamClient", "StreamOptions", "createApi"})
PY_RESERVED = frozenset({"Any", "Api", "AsyncIterator", "ClientCall", "Generic", "ItemT", "Literal", "Never",
                         "NotRequired", "ResultT", "SentT", "StreamClient", "TypeAlias", "TypeVar", "TypedCall",
                         "TypedDict", "TypedStream", "cast"})


def _type_name(component: str, reserved: frozenset[str]) -> str:
    name = _pascal(component) or "Schema"
    return f"{name}Schema" if name in reserved else name


def _ref_name(schema: dict[str, Any]) -> str:
    ref = schema["$ref"]
    if not isinstance(ref, str) or not ref.startswith(_REF):
        raise ValueError(f"cannot follow $ref {ref!r}")
    return str(ref[len(_REF):])


def _operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(wire name, x-streaming, description) of each operation, by name."""
    found = []
    for name, operation in sorted(document.get("operations", {}).items()):
        contract = operation.get("x-streaming")
        if not isinstance(contract, dict) or contract.get("kind") not in KINDS or "." not in name:
            raise ValueError(f"operation {name!r} has no valid x-streaming object")
        found.append((name, contract, str(operation.get("description", ""))))
    return found


def _namespaces(document: dict[str, Any]) -> dict[str, list[tuple[str, dict[str, Any], str]]]:
    grouped: dict[str, list[tuple[str, dict[str, Any], str]]] = {}
    for name, contract, description in _operations(document):
        grouped.setdefault(name.partition(".")[0], []).append((name, contract, description))
    return grouped


# -- TypeScript ---------------------------------------------------------------------------------


def ts_type(schema: Schema) -> str:
    """The TypeScript type of values valid under ``schema``."""
    if schema is True or schema == {}:
        return "unknown"
    if schema is False or (isinstance(schema, dict) and schema.get("not") == {}):
        return "never"
    if "$ref" in schema:
        return _type_name(_ref_name(schema), TS_RESERVED)
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(value) for value in schema["enum"]) or "never"
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return " | ".join(f"({ts_type(member)})" for member in schema[union]) or "never"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(ts_type({**schema, "type": one}) for one in kind) or "never"
    if kind == "null":
        return "null"
    if kind == "boolean":
        return "boolean"
    if kind in ("integer", "number"):
        return "number"
    if kind == "string":
        return "string"
    if kind == "array":
        return f"Array<{ts_type(schema.get('items', {}))}>"
    if kind == "object" or "properties" in schema:
        return _ts_object(schema)
    return "unknown"


def _ts_object(schema: dict[str, Any]) -> str:
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    extra = schema.get("additionalProperties", True)
    if not properties:
        if extra is False:
            return "Record<string, never>"
        return f"{{ [key: string]: {ts_type({} if extra is True else extra)} }}"
    fields = [f"{json.dumps(name)}{'' if name in required else '?'}: {ts_type(value)}"
              for name, value in properties.items()]
    return "{ " + "; ".join(fields) + " }"


def _ts_doc(text: str, indent: str) -> str:
    if not text:
        return ""
    body = text.replace("*/", "*\\/").splitlines()
    return f"{indent}/**\n" + "".join(f"{indent} * {line}".rstrip() + "\n" for line in body) + f"{indent} */\n"


def typescript(document: dict[str, Any]) -> str:
    """``api.ts``: the named types, one per method part, and ``createApi(client)``."""
    lines = [
        "// Generated by `manage.py streaming_codegen typescript` from the AsyncAPI document; do not edit.",
        f"// {document.get('info', {}).get('title', '')} {document.get('info', {}).get('version', '')}".rstrip(),
        'import type { Call, CallOptions, OpenOptions, Stream, StreamClient, StreamOptions } from "./client.js";',
        "",
    ]
    taken = set(TS_RESERVED)
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        taken.add(_type_name(name, TS_RESERVED))
        lines.append(f"export type {_type_name(name, TS_RESERVED)} = {ts_type(schema)};")
    body: list[str] = []
    for namespace, methods in _namespaces(document).items():
        body.append(f"    {json.dumps(namespace)}: {{")
        for wire, contract, description in methods:
            short = wire.partition(".")[2]
            base = _pascal(wire)
            types = {}
            for part in ("arguments", "item", "client_item", "result"):
                types[part] = f"{base}{_pascal(part)}"
                while types[part] in taken:
                    types[part] += "_"
                taken.add(types[part])
            for part, type_name in types.items():
                if part in contract:
                    lines.append(f"export type {type_name} = {ts_type(contract[part])};")
            args_type = types["arguments"]
            optional = not contract["arguments"].get("required")
            args = f"args: {args_type}{' = {}' if optional else ''}"
            kind = contract["kind"]
            item = types["item"] if "item" in contract else "never"
            result = types["result"]
            if description:
                body.append(_ts_doc(description, "      ").rstrip("\n"))
            if kind == "unary":
                body.append(f"      {json.dumps(short)}({args}, options?: CallOptions): Promise<{result}> {{")
                body.append(f"        return client.call<{result}>({json.dumps(wire)}, args, options);")
            elif kind == "server_stream":
                body.append(f"      {json.dumps(short)}({args}, options?: StreamOptions): Stream<{item}, {result}> {{")
                body.append(f"        return client.stream<{item}, {result}>({json.dumps(wire)}, args, options);")
            else:
                sent = types["client_item"]
                call = f"Call<{item}, {result}, {sent}>"
                body.append(f"      {json.dumps(short)}({args}, options?: OpenOptions): Promise<{call}> {{")
                body.append(f"        return client.open<{item}, {result}, {sent}>({json.dumps(wire)}, args, options);")
            body.append("      },")
        body.append("    },")
    lines += [
        "",
        "/** One property per namespace, one function per method; errors are client.js's typed classes. */",
        "export function createApi(client: StreamClient) {",
        "  return {",
        *body,
        "  };",
        "}",
        "",
        "export type Api = ReturnType<typeof createApi>;",
        "",
    ]
    return "\n".join(lines)


# -- Python --------------------------------------------------------------------------------------


def _identifier(name: str) -> str:
    name = re.sub(r"\W", "_", name)
    if not name or name[0].isdigit():
        name = f"_{name}"
    return f"{name}_" if keyword.iskeyword(name) or name in ("self", "Any") else name


class _PythonTypes:
    """Python type expressions of schemas; objects with properties become named TypedDicts."""

    def __init__(self) -> None:
        self.definitions: list[str] = []
        self.taken: set[str] = set()

    def name(self, wanted: str) -> str:
        name = wanted
        number = 2
        while name in self.taken:
            name = f"{wanted}{number}"
            number += 1
        self.taken.add(name)
        return name

    def define(self, name: str, schema: Schema) -> None:
        """``name`` for ``schema``: a TypedDict for an object with properties, else a type alias."""
        if isinstance(schema, dict) and schema.get("properties") and "$ref" not in schema:
            self.definitions.append(self._typeddict(name, schema))
        else:
            self.definitions.append(f"{name}: TypeAlias = {self.expr(schema, name)!r}")

    def _typeddict(self, name: str, schema: dict[str, Any]) -> str:
        required = set(schema.get("required", ()))
        fields = []
        for key, value in schema["properties"].items():
            expr = self.expr(value, f"{name}{_pascal(key)}")
            if key not in required:
                expr = f"NotRequired[{expr}]"
            fields.append(f"    {key!r}: {expr!r},")
        return f"{name} = TypedDict({name!r}, {{\n" + "\n".join(fields) + "\n})"

    def expr(self, schema: Schema, context: str) -> str:
        if schema is True or schema == {}:
            return "Any"
        if schema is False or (isinstance(schema, dict) and schema.get("not") == {}):
            return "Never"
        if "$ref" in schema:
            return _type_name(_ref_name(schema), PY_RESERVED)
        if "const" in schema or "enum" in schema:
            values = [schema["const"]] if "const" in schema else list(schema["enum"])
            literal = [v for v in values if v is not None and not isinstance(v, (list, dict))]
            parts = [f"Literal[{', '.join(repr(v) for v in literal)}]"] if literal else []
            if any(v is None for v in values):
                parts.append("None")
            if any(isinstance(v, (list, dict)) for v in values):
                parts.append("Any")
            return " | ".join(parts) or "Never"
        for union in ("anyOf", "oneOf"):
            if union in schema:
                members = [self.expr(m, f"{context}{i}") for i, m in enumerate(schema[union], 1)]
                return " | ".join(dict.fromkeys(members)) or "Never"
        kind = schema.get("type")
        if isinstance(kind, list):
            return " | ".join(self.expr({**schema, "type": one}, context) for one in kind) or "Never"
        simple = {"null": "None", "boolean": "bool", "integer": "int", "number": "float", "string": "str"}
        if kind in simple:
            return simple[kind]
        if kind == "array":
            return f"list[{self.expr(schema.get('items', {}), context + 'Item')}]"
        if kind == "object" or "properties" in schema:
            if schema.get("properties"):
                name = self.name(context)
                self.definitions.append(self._typeddict(name, schema))
                return name
            extra = schema.get("additionalProperties", True)
            if extra is False:
                return "dict[str, Never]"
            return f"dict[str, {self.expr({} if extra is True else extra, context + 'Value')}]"
        return "Any"


_PY_RUNTIME = '''

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
SentT = TypeVar("SentT")


class TypedStream(Generic[ItemT, ResultT]):
    """A server stream with typed items and result: ``async for item in stream``, then ``stream.result``.

    The client's own stream underneath: iterating it is the client's iterator.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def __aiter__(self) -> AsyncIterator[ItemT]:
        return cast(AsyncIterator[ItemT], self.stream.__aiter__())

    @property
    def result(self) -> ResultT:
        return cast(ResultT, self.stream.result)

    @property
    def last_eid(self) -> str | None:
        return cast("str | None", self.stream.last_eid)

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def __aenter__(self) -> TypedStream[ItemT, ResultT]:
        await self.stream.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.__aexit__(*exc)


class TypedCall(Generic[SentT, ItemT, ResultT]):
    """A client-stream or bidirectional call: typed ``send()``, items and ``result()``."""

    def __init__(self, call: ClientCall) -> None:
        self.call = call

    async def send(self, item: SentT) -> None:
        await self.call.send(item)

    async def end(self) -> None:
        await self.call.end()

    async def result(self) -> ResultT:
        return cast(ResultT, await self.call.result())

    async def cancel(self) -> None:
        await self.call.cancel()

    def __aiter__(self) -> AsyncIterator[ItemT]:
        return cast(AsyncIterator[ItemT], self.call.__aiter__())


def _present(args: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in args.items() if value is not _OMITTED}


class _Omitted:
    def __repr__(self) -> str:
        return "OMITTED"


_OMITTED: Any = _Omitted()
'''


def python(document: dict[str, Any]) -> str:
    """A module with TypedDicts of every schema and ``Api(client)`` over the async ``StreamClient``."""
    types = _PythonTypes()
    components = document.get("components", {}).get("schemas", {})
    types.taken.update(PY_RESERVED)
    for name in components:
        types.taken.add(_type_name(name, PY_RESERVED))
    for name, schema in components.items():
        types.define(_type_name(name, PY_RESERVED), schema)
    classes: list[str] = []
    api_fields: list[str] = []
    for namespace, methods in _namespaces(document).items():
        class_name = types.name(f"{_pascal(namespace)}Methods")
        body = [f"class {class_name}:", f'    """The {namespace}.* methods."""', "",
                "    def __init__(self, client: StreamClient) -> None:", "        self._client = client"]
        for wire, contract, description in methods:
            body.append("")
            body.extend(_py_method(types, wire, contract, description))
        classes.append("\n".join(body))
        attribute = _identifier(namespace)
        api_fields.append(f"        self.{attribute + '_' if attribute == 'client' else attribute} = {class_name}(client)")
    header = [
        f'"""Typed client of {document.get("info", {}).get("title", "the API")} '
        f'{document.get("info", {}).get("version", "")}: generated by `manage.py streaming_codegen python`; do not edit."""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Any, AsyncIterator, Generic, Literal, Never, NotRequired, TypeAlias, TypedDict, TypeVar, cast",
        "",
        "from streaming_app.client import ClientCall, StreamClient",
    ]
    api = [
        "class Api:",
        '    """``Api(client)``: one attribute per namespace, one method per streaming method."""',
        "",
        "    def __init__(self, client: StreamClient) -> None:",
        "        self.client = client",
        *api_fields,
    ]
    return "\n".join(header) + _PY_RUNTIME + "\n\n" + "\n\n".join(types.definitions) + "\n\n\n" \
        + "\n\n\n".join(classes) + "\n\n\n" + "\n".join(api) + "\n"


def _py_method(types: _PythonTypes, wire: str, contract: dict[str, Any], description: str) -> list[str]:
    base = _pascal(wire)
    named: dict[str, str] = {}
    for part in ("item", "client_item", "result"):
        if part in contract:
            schema = contract[part]
            if isinstance(schema, dict) and "$ref" in schema:
                named[part] = _type_name(_ref_name(schema), PY_RESERVED)
            else:
                named[part] = types.name(f"{base}{_pascal(part)}")
                types.define(named[part], schema)
    arguments = contract["arguments"]
    required = set(arguments.get("required", ()))
    params: list[str] = []
    passed: list[str] = []
    for arg, schema in arguments.get("properties", {}).items():
        py_name = _identifier(arg)
        expr = types.expr(schema, f"{base}{_pascal(arg)}")
        if arg in required:
            params.append(f"{py_name}: {expr}")
        else:
            params.append(f"{py_name}: {expr} = _OMITTED")
        passed.append(f"{arg!r}: {py_name}")
    signature = ", ".join(["self", *(["*", *params] if params else [])])
    args = f"_present({{{', '.join(passed)}}})" if passed else "{}"
    name = _identifier(wire.partition(".")[2])
    name = f"{name}_" if name == "_client" else name
    doc = [f'        """{description.splitlines()[0]}"""'] if description else []
    kind = contract["kind"]
    result = named["result"]
    if kind == "unary":
        return [f"    async def {name}({signature}) -> {result}:", *doc,
                f"        return cast({result!r}, await self._client.call({wire!r}, {args}))"]
    if kind == "server_stream":
        stream = f"TypedStream[{named['item']}, {result}]"
        return [f"    def {name}({signature}) -> {stream}:", *doc,
                f"        return TypedStream(self._client.stream({wire!r}, {args}))"]
    call = f"TypedCall[{named['client_item']}, {named.get('item', 'Never')}, {result}]"
    return [f"    async def {name}({signature}) -> {call}:", *doc,
            f"        return TypedCall(await self._client.open({wire!r}, {args}))"]
