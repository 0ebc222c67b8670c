"""The schema against a real daphne: the ``_schema`` endpoint, live values against their schemas, and the generated clients.

Every interop method is called over the WebSocket and what it sends is
validated against the JSON Schemas of ``x-streaming`` (and a wrong shape is
not). The TypeScript and Python clients that ``streaming_codegen`` writes are
type-checked strictly (``tsc --strict``, ``mypy --strict``), with misuses that
must not compile, and run against the server: the TypeScript one in Node,
compiled by ``tsc``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import IN_CI, ROOT
from django.core.management import call_command

from streaming_app.client import InvalidArgument, NotFound, StreamClient
from streaming_app.schema import current_document

TSC = ROOT / "node_modules" / "typescript" / "bin" / "tsc"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(json.dumps(current_document()))


def validator(document: dict[str, Any], method: str, part: str) -> jsonschema.protocols.Validator:
    """A 2020-12 validator of one part of a method, resolving ``$ref`` into the document's components."""
    schema = {**document["operations"][method]["x-streaming"][part], "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


def valid(document: dict[str, Any], method: str, part: str, value: Any) -> bool:
    return validator(document, method, part).is_valid(value)


# -- GET <prefix>/_schema ----------------------------------------------------------------------------


def test_staff_get_the_schema_document(http, staff_token, document):
    response = http.get("_schema", headers={"Authorization": f"Bearer {staff_token}"})
    assert response.status_code == 200
    assert response.json() == document


def test_anonymous_clients_get_401(http):
    assert http.get("_schema").status_code == 401


def test_a_bad_token_gets_401(http):
    assert http.get("_schema", headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_users_who_are_not_staff_get_403(http, make_token):
    token = make_token("erin")
    assert http.get("_schema", headers={"Authorization": f"Bearer {token}"}).status_code == 403


# -- live values against their schemas ------------------------------------------------------------------


async def live_values(ws_url: str, token: str) -> dict[tuple[str, str], list[Any]]:
    """What each interop method sends, by (method, part)."""
    seen: dict[tuple[str, str], list[Any]] = {}

    def record(method: str, part: str, value: Any) -> None:
        seen.setdefault((f"interop.{method}", part), []).append(value)

    async with StreamClient(ws_url, token=token) as client:
        for method, args in [("empty", {}), ("unary", {"payload": "x"}), ("whoami", {}), ("staff_only", {}),
                             ("cleanups", {"tag": "schema"}), ("big", {"size": 3}),
                             ("publish", {"topic": "schema", "data": {"k": [1]}})]:
            record(method, "result", await client.call(f"interop.{method}", args))
        for method, args in [("count", {"n": 3, "start": 5})]:
            stream = client.stream(f"interop.{method}", args)
            async for item in stream:
                record(method, "item", item)
            record(method, "result", stream.result)
        with pytest.raises(NotFound):
            async for item in client.stream("interop.fail_after", {"n": 2, "code": "not_found"}):
                record("fail_after", "item", item)
        forever = client.stream("interop.forever", {"interval_ms": 1, "tag": "schema"})
        async for item in forever:
            record("forever", "item", item)
            if len(seen[("interop.forever", "item")]) == 3:
                break
        await forever.aclose()
        call = await client.open("interop.sum")
        for v in (1, 2, 3):
            await call.send({"v": v})
        await call.end()
        record("sum", "result", await call.result())
        echo = await client.open("interop.echo")
        await echo.send({"any": ["json"]})
        await echo.end()
        async for item in echo:
            record("echo", "item", item)
        record("echo", "result", await echo.result())
        subscription = client.stream("interop.subscribe", {"topic": "schema-live"})
        async with subscription:
            started = asyncio.ensure_future(subscription.__aiter__().__anext__())
            for _ in range(50):  # publish until the subscriber is live and receives it
                await client.call("interop.publish", {"topic": "schema-live", "data": {"n": 1}})
                done, _ = await asyncio.wait({started}, timeout=0.1)
                if done:
                    break
            record("subscribe", "item", started.result())
    return seen


async def test_every_interop_methods_live_values_validate_against_their_schemas(daphne_server, staff_token, document):
    seen = await live_values(daphne_server.ws_url, staff_token)
    assert {method for method, _ in seen} == {
        f"interop.{m}" for m in ("empty", "unary", "whoami", "staff_only", "cleanups", "big", "publish", "count",
                                 "fail_after", "forever", "sum", "echo", "subscribe")}
    failures = [(method, part, value) for (method, part), values in seen.items() for value in values
                if not valid(document, method, part, value)]
    assert failures == []


async def test_live_notes_validate_against_the_note_schemas(daphne_server, staff_token, document):
    async with StreamClient(daphne_server.ws_url, token=staff_token) as client:
        note = await client.call("notes.add", {"text": "schema", "public": False})
        edited = await client.call("notes.edit", {"id": note["id"], "text": "schema 2"})
        items = []
        async for item in client.stream("notes.watch", {"id": note["id"]}):
            items.append(item)
            break
        removed = await client.call("notes.remove", {"id": note["id"]})
    assert valid(document, "notes.add", "result", note)
    assert valid(document, "notes.edit", "result", edited)
    assert valid(document, "notes.remove", "result", removed)
    assert items and items[0]["op"] == "snapshot" and valid(document, "notes.watch", "item", items[0])


@pytest.mark.parametrize("method, part, value", [
    ("interop.count", "item", {"i": "1"}),
    ("interop.count", "item", {"j": 1}),
    ("interop.count", "result", {}),
    ("interop.unary", "result", {"payload": 1}),
    ("interop.whoami", "result", {"username": "x"}),
    ("interop.sum", "client_item", {"v": 1.5}),
    ("interop.count", "arguments", {"n": 1, "strat": 2}),
    ("notes.watch", "item", {"op": "deleted", "pk": 1, "data": {}}),
    ("notes.add", "result", {"id": 1, "text": "x", "public": True, "owner": None}),
])
def test_a_wrong_shape_does_not_validate(document, method, part, value):
    assert not valid(document, method, part, value)


# -- the generated Python client --------------------------------------------------------------------


@pytest.fixture(scope="module")
def python_client(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pyclient") / "gen_api.py"
    call_command("streaming_codegen", "python", "-o", str(path))
    return path


def load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


async def test_the_generated_python_client_runs_against_daphne(daphne_server, python_client):
    gen = load(python_client)
    async with StreamClient(daphne_server.ws_url) as client:
        api = gen.Api(client)
        assert await api.interop.unary(payload="hi") == {"payload": "hi"}
        stream = api.interop.count(n=3, start=1)
        assert [item["i"] async for item in stream] == [1, 2, 3]
        assert stream.result == {"total": 3}
        call = await api.interop.sum()
        await call.send({"v": 4})
        await call.send({"v": 5})
        await call.end()
        assert await call.result() == {"sum": 9, "count": 2}
        assert set(await api.interop.cleanups()) == {"count"}  # its optional argument omitted


async def test_the_generated_python_client_keeps_typed_errors(daphne_server, python_client):
    gen = load(python_client)
    async with StreamClient(daphne_server.ws_url) as client:
        api = gen.Api(client)
        with pytest.raises(NotFound, match="gone"):
            await api.interop.fail(code="not_found", message="gone")
        with pytest.raises(InvalidArgument):
            await api.interop.big(size=-1)


PY_GOOD = '''
from gen_api import Api, CountItem, Note
from streaming_app.client import StreamClient


async def use(client: StreamClient) -> int:
    api = Api(client)
    payload: str = (await api.interop.unary(payload="x"))["payload"]
    total = 0
    stream = api.interop.count(n=3, interval_ms=1)
    async for item in stream:
        total += item["i"]
    total += stream.result["total"]
    call = await api.interop.sum()
    await call.send({"v": 1})
    await call.end()
    total += (await call.result())["sum"]
    async for change in api.notes.watch(public=True):
        if change["op"] == "deleted":
            total += change["pk"]
    note: Note = await api.notes.add(text=payload)
    return total + note["id"]
'''

PY_MISUSES = {
    "misspelled_method": 'await api.interop.countdwn(n=2)',
    "wrong_argument_type": 'await api.interop.unary(payload=2)',
    "missing_required_argument": 'await api.interop.unary()',
    "wrong_item_field": 'async for item in api.interop.count(n=2):\n        print(item["j"])',
}


@pytest.fixture(scope="module")
def mypy_errors(python_client) -> dict[str, str]:
    """mypy --strict over the generated module, a correct use and each misuse (one run): errors by file stem."""
    folder = python_client.parent
    (folder / "use_good.py").write_text(PY_GOOD)
    for name, line in PY_MISUSES.items():
        (folder / f"use_{name}.py").write_text(
            "from gen_api import Api\nfrom streaming_app.client import StreamClient\n\n\n"
            f"async def use(client: StreamClient) -> None:\n    api = Api(client)\n    {line}\n")
    files = [str(python_client), *(str(p) for p in sorted(folder.glob("use_*.py")))]
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *files],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    errors: dict[str, str] = {}
    for line in result.stdout.splitlines():
        stem = Path(line.split(":", 1)[0]).stem
        errors[stem] = errors.get(stem, "") + line + "\n"
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return errors


def test_the_generated_python_client_passes_mypy_strict(mypy_errors):
    assert mypy_errors.get("gen_api", "") == ""
    assert mypy_errors.get("use_good", "") == ""


@pytest.mark.parametrize("misuse", sorted(PY_MISUSES))
def test_a_misuse_of_the_generated_python_client_fails_mypy(mypy_errors, misuse):
    assert f"use_{misuse}" in mypy_errors


# -- the generated TypeScript client ---------------------------------------------------------------


def node_command() -> list[str]:
    path = shutil.which("node")
    if path is None:
        message = "node is needed for the TypeScript client's tests"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    return [path, "--experimental-websocket"] if int(version.lstrip("v").split(".")[0]) < 22 else [path]


TS_GOOD = '''
import { NotFound, StreamClient } from "./client.js";
import { createApi, type Note } from "./api.js";

declare const process: { argv: string[]; exitCode: number };

async function main(url: string): Promise<void> {
  const client = new StreamClient(url);
  const api = createApi(client);
  const out: unknown[] = [];
  const unary = await api.interop.unary({ payload: "hi" });
  out.push(unary.payload);
  const stream = api.interop.count({ n: 3, start: 1 });
  for await (const item of stream) out.push(item.i);
  out.push(stream.result?.total ?? null);
  const call = await api.interop.sum();
  await call.send({ v: 4 });
  await call.send({ v: 5 });
  await call.end();
  const sum = await call.result();
  out.push(sum.sum);
  try {
    await api.interop.fail({ code: "not_found", message: "gone" });
  } catch (error) {
    out.push(error instanceof NotFound ? "NotFound" : String(error));
  }
  const note: Note = await api.notes.add({ text: "ts" });
  for await (const change of api.notes.watch({ id: note.id })) {
    if (change.op === "snapshot") out.push(change.data.map((row) => row.text));
    break;
  }
  console.log(JSON.stringify(out));
  await client.close();
}

main(process.argv[2]).catch((error) => { console.error(error); process.exitCode = 1; });
'''

TS_MISUSES = {
    "misspelled_method": 'void api.interop.countdwn({ n: 2 });',
    "wrong_argument_type": 'void api.interop.count({ n: "2" });',
    "missing_required_argument": 'void api.interop.count({ interval_ms: 2 });',
    "wrong_item_field": 'for await (const item of api.interop.count({ n: 2 })) console.log(item.j);',
    "misspelled_argument": 'void api.interop.count({ n: 2, strat: 2 });',
}

TSCONFIG = {
    "compilerOptions": {
        "strict": True, "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
        "lib": ["ES2022", "DOM", "DOM.Iterable"], "types": [], "skipLibCheck": False,
    },
}


@pytest.fixture(scope="module")
def ts_client(tmp_path_factory, node_packages) -> tuple[Path, list[str]]:
    """The generated TypeScript client, compiled with a correct use (emitting JavaScript to run)."""
    node = node_command()
    folder = tmp_path_factory.mktemp("tsclient")
    call_command("streaming_codegen", "typescript", "-o", str(folder))
    (folder / "main.ts").write_text(TS_GOOD)
    config = {**TSCONFIG, "files": ["api.ts", "main.ts"]}
    (folder / "tsconfig.json").write_text(json.dumps(config))
    result = subprocess.run([*node[:1], str(TSC), "-p", "tsconfig.json", "--pretty", "false"],
                            cwd=folder, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"tsc --strict failed:\n{result.stdout}{result.stderr}"
    return folder, node


@pytest.fixture(scope="module")
def tsc_errors(ts_client) -> dict[str, str]:
    """tsc --strict over each misuse (one run, nothing emitted): errors by file stem."""
    folder, node = ts_client
    header = 'import { StreamClient } from "./client.js";\nimport { createApi } from "./api.js";\n' \
             'const api = createApi(new StreamClient("ws://127.0.0.1:1/ws/"));\n'
    for name, line in TS_MISUSES.items():
        (folder / f"misuse_{name}.ts").write_text(f"{header}export async function use(): Promise<void> {{\n  {line}\n}}\n")
    config = {"compilerOptions": {**TSCONFIG["compilerOptions"], "noEmit": True},
              "files": ["api.ts", *(f"misuse_{name}.ts" for name in TS_MISUSES)]}
    (folder / "tsconfig.misuse.json").write_text(json.dumps(config))
    result = subprocess.run([*node[:1], str(TSC), "-p", "tsconfig.misuse.json", "--pretty", "false"],
                            cwd=folder, capture_output=True, text=True, timeout=300)
    errors: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if "error TS" in line:
            stem = Path(line.split("(", 1)[0]).stem
            errors[stem] = errors.get(stem, "") + line + "\n"
    return errors


def test_the_generated_typescript_client_passes_tsc_strict(ts_client):
    folder, _ = ts_client
    assert (folder / "api.js").exists() and (folder / "client.js").exists() and (folder / "client.d.ts").exists()


@pytest.mark.parametrize("misuse", sorted(TS_MISUSES))
def test_a_misuse_of_the_generated_typescript_client_fails_tsc(tsc_errors, misuse):
    assert f"misuse_{misuse}" in tsc_errors
    assert "api" not in tsc_errors  # the generated module itself stays clean


def test_the_generated_typescript_client_runs_against_daphne_in_node(ts_client, daphne_server):
    folder, node = ts_client
    result = subprocess.run([*node, "main.js", daphne_server.ws_url], cwd=folder, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["hi", 1, 2, 3, 3, 9, "NotFound", ["ts"]]
