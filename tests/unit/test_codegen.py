"""The code generators (streaming_app.codegen) on a document with awkward names: the output still compiles strictly.

Schemas named like what the generated modules use themselves (``Record``,
``Any``, ``Api``), a namespace called ``client``, an argument and a field
named with a keyword (``from``), nested objects, enums with null, recursive
types, and method part names that clash with a schema's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI, ROOT

from streaming_app.codegen import python, typescript

TSC = ROOT / "node_modules" / "typescript" / "bin" / "tsc"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def op(kind: str, arguments: dict[str, Any], **parts: Any) -> dict[str, Any]:
    return {"action": "send", "channel": {"$ref": "#/channels/x"},
            "x-streaming": {"kind": kind, "arguments": arguments, **parts}}


OBJECT_FROM = {"type": "object", "properties": {"from": {"type": "string"}, "class": {"type": "integer"}},
               "required": ["from"], "additionalProperties": False}

DOCUMENT: dict[str, Any] = {
    "asyncapi": "3.0.0",
    "info": {"title": "awkward", "version": "0"},
    "operations": {
        "client.get": op("unary", OBJECT_FROM, result=ref("Record")),
        "client._client": op("unary", {"type": "object", "properties": {}, "additionalProperties": False},
                             result={"type": "null"}),
        "tree.walk": op("server_stream", {"type": "object", "properties": {
            "mode": {"enum": ["a", "b", None]}, "depth": {"type": "integer", "default": 3}}},
            item=ref("Node"), result=ref("TreeWalkItem")),
        "tree.feed": op("bidi_stream", {"type": "object", "properties": {}},
                        item={"type": "object", "properties": {"nested": {"type": "object", "properties": {
                            "deep": {"type": "array", "items": {"type": "object", "properties": {
                                "x": {"type": ["integer", "null"]}}, "required": ["x"]}}}}}},
                        client_item=ref("Any"), result=ref("Api")),
    },
    "components": {"schemas": {
        "Record": OBJECT_FROM,
        "Any": {"type": "object", "additionalProperties": {"type": "number"}},
        "Api": {"anyOf": [{"type": "string"}, {"const": 1}]},
        "Node": {"type": "object", "properties": {"name": {"type": "string"},
                                                  "children": {"type": "array", "items": ref("Node")}},
                 "required": ["name", "children"], "additionalProperties": False},
        "TreeWalkItem": {"type": "object", "properties": {"total": {"type": "integer"}}, "required": ["total"]},
    }},
}


def tool_missing(message: str) -> None:
    pytest.fail(message) if IN_CI else pytest.skip(message)


def test_the_python_output_for_awkward_names_passes_mypy_strict(tmp_path):
    module = tmp_path / "awkward_api.py"
    module.write_text(python(DOCUMENT))
    use = tmp_path / "awkward_use.py"
    use.write_text(
        "from awkward_api import Api, AnySchema, ApiSchema, Record, TreeWalkItem\nfrom streaming_app.client import StreamClient\n\n\n"
        "async def use(client: StreamClient) -> int:\n"
        "    api = Api(client)\n"
        "    record: Record = await api.client_.get(from_='x', class_=1)\n"
        "    await api.client_._client_()\n"
        "    total: int = 0\n"
        "    stream = api.tree.walk(mode=None)\n"
        "    async for node in stream:\n"
        "        total += len(node['children'][0]['name'])\n"
        "    summary: TreeWalkItem = stream.result\n"
        "    call = await api.tree.feed()\n"
        "    await call.send({'k': 1.5})\n"
        "    async for item in call:\n"
        "        total += item['nested']['deep'][0]['x'] or 0 if 'nested' in item else 0\n"
        "    sent: AnySchema = {'k': 2.0}\n"
        "    await call.send(sent)\n"
        "    tagged: ApiSchema = 1\n"
        "    return total + summary['total'] + len(record['from']) + int(tagged == 1)\n")
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", str(module), str(use)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_typescript_output_for_awkward_names_passes_tsc_strict(tmp_path, node_packages):
    node = shutil.which("node")
    if node is None:
        tool_missing("node is needed for tsc")
    for name in ("client.d.ts", "client.js"):
        shutil.copyfile(ROOT / "streaming_app" / "static" / "streaming_app" / name, tmp_path / name)
    (tmp_path / "api.ts").write_text(typescript(DOCUMENT))
    (tmp_path / "use.ts").write_text(
        'import type { StreamClient } from "./client.js";\n'
        'import { createApi, type RecordSchema } from "./api.js";\n'
        "export async function use(client: StreamClient): Promise<number> {\n"
        "  const api = createApi(client);\n"
        '  const record: RecordSchema = await api.client.get({ from: "x" });\n'
        "  let total = record.from.length;\n"
        '  for await (const node of api.tree.walk({ mode: null })) total += node.children.length;\n'
        "  const call = await api.tree.feed();\n"
        "  await call.send({ k: 1 });\n"
        "  return total;\n"
        "}\n")
    (tmp_path / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {"strict": True, "noEmit": True, "target": "ES2022", "module": "NodeNext",
                            "moduleResolution": "NodeNext", "lib": ["ES2022", "DOM", "DOM.Iterable"], "types": []},
        "files": ["api.ts", "use.ts"]}))
    result = subprocess.run([node, str(TSC), "-p", "tsconfig.json", "--pretty", "false"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_operation_without_x_streaming_is_refused():
    with pytest.raises(ValueError, match="no valid x-streaming"):
        python({"asyncapi": "3.0.0", "operations": {"a.b": {"action": "send"}}})
