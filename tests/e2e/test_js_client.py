"""The JavaScript client's checks: its types, its codes, and its tests against a real daphne.

``tsc`` type-checks the client's modules from their JSDoc (``--checkJs
--strict``) and ``tests/js/types/usage.ts`` against ``client.d.ts``, as
``tsconfig.json`` at the repository's root says. The error codes, default
messages, HTTP statuses and close codes of ``codes.js`` and ``errors.js`` are
compared with ``streaming_app/protocol/codes.py`` and
``streaming_app/exceptions.py``, so the two clients cannot drift apart.

For the Node tests (``tests/js/*.test.mjs``, Node's test runner) pytest
starts the server of the example project (with the ``flowprobe``
namespace of ``tests/probes/flowprobe_asgi.py``), creates users, a token and a
session in the test database, and runs ``node --test`` over the files with
the server's URL and the credentials in the environment; node's output is
shown when it fails. ``tests/js/reconnect.test.mjs`` starts, kills and
restarts daphne processes of its own on the same database.

Locally the tests skip when Node (20+) is missing; with ``CI=true`` they fail.
``npm ci`` installs the development packages (``ws``, ``typescript``) of the
repository's ``package.json`` from its committed lock file when
``node_modules`` lacks them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import IN_CI, ROOT, database_url_for_tests, redis_available, start_server

JS_TESTS = ROOT / "tests" / "js"
JS_CLIENT = ROOT / "streaming_app" / "static" / "streaming_app"
PASSWORD = "pw-123456"


def required_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is required in CI (the JavaScript client's tests) but is not on PATH")
        pytest.skip(f"{name} is not installed: the JavaScript client's tests need Node 20+")
    return path


def node_major(node: str) -> int:
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    return int(version.lstrip("v").split(".")[0])


@pytest.fixture(scope="session")
def node() -> list[str]:
    """The node command: Node 20 needs a flag for its global WebSocket, Node 22 has it by default."""
    path = required_tool("node")
    major = node_major(path)
    if major < 20:
        message = f"Node {major} is too old for the JavaScript client's tests (20+)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    return [path, "--experimental-websocket"] if major < 22 else [path]


@pytest.fixture(scope="session")
def js_packages(node) -> None:
    """``node_modules`` at the repository's root as the committed ``package-lock.json`` pins it."""
    wanted = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    if all((ROOT / "node_modules" / name / "package.json").exists() for name in wanted):
        return
    npm = required_tool("npm")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        pytest.fail(f"npm ci at the repository's root failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture
def probe_server(tmp_path):
    server = start_server(tmp_path, app="probes.flowprobe_asgi:application")
    yield server
    server.stop()


@pytest.fixture
def credentials(make_token) -> dict[str, str]:
    """A token and a logged-in session of "carol", and a token of the staff user "boss"."""
    from django.conf import settings
    from django.test import Client

    token = make_token("carol")
    staff_token = make_token("boss", is_staff=True)
    client = Client()
    assert client.login(username="carol", password=PASSWORD)
    return {
        "STREAMING_TOKEN": token,
        "STREAMING_STAFF_TOKEN": staff_token,
        "STREAMING_SESSION": client.cookies[settings.SESSION_COOKIE_NAME].value,
    }


@pytest.mark.django_db(transaction=True)
def test_node_tests_of_the_js_client_pass_against_a_real_server(node, js_packages, probe_server, credentials):
    files = sorted(str(path.relative_to(ROOT)) for path in JS_TESTS.glob("*.test.mjs"))
    assert files, "no tests/js/*.test.mjs files"
    environment = {
        **os.environ,
        **credentials,
        "STREAMING_WS_URL": probe_server.ws_url,
        "STREAMING_HTTP_URL": probe_server.http_url,
        "STREAMING_PYTHON": sys.executable,
        "STREAMING_ROOT": str(ROOT),
        "DATABASE_URL": database_url_for_tests(),  # for the daphne processes reconnect.test.mjs starts
        # resume.test.mjs resumes across daphne kills on Redis (it skips without one, except in CI).
        "STREAMING_REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0") if redis_available() else "",
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [*node, "--test", "--test-reporter=spec", *files],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"node --test exited with {result.returncode}:\n{output}", pytrace=False)
    passed = re.search(r"^\S+ pass (\d+)$", output, re.MULTILINE)
    assert passed and int(passed.group(1)) > 0, output
    # Shown with `pytest -rP`: the counts, and why anything was skipped.
    print("\n".join(line for line in output.splitlines() if re.match(r"^\S+ (tests|pass|fail|skipped) \d+$|^\s*\ufe63 ", line)))


def test_the_js_client_type_checks_with_tsc_strict(node, js_packages):
    """``tsc -p tsconfig.json``: the modules' JSDoc (checkJs, strict) and usage.ts against client.d.ts."""
    tsc = ROOT / "node_modules" / "typescript" / "bin" / "tsc"
    result = subprocess.run(
        [node[0], str(tsc), "-p", str(ROOT / "tsconfig.json"), "--pretty", "false"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"tsc found type errors:\n{result.stdout}{result.stderr}"


# What codes.js and errors.js hold, as JSON, read by Node from the modules themselves.
DUMP_JS_CODES = """
import * as codes from "./codes.js";
import * as errors from "./errors.js";
const described = (cls) => ({ name: cls.name, code: cls.code, message: cls.defaultMessage });
console.log(JSON.stringify({
  version: codes.PROTOCOL_VERSION,
  subprotocol: codes.SUBPROTOCOL,
  http_status: codes.HTTP_STATUS,
  close_codes: codes.CloseCode,
  reconnect: [...codes.RECONNECT_CLOSE_CODES].sort(),
  base: described(errors.StreamError),
  errors: Object.fromEntries(Object.entries(errors.ERROR_CLASSES).map(([code, cls]) => [code, described(cls)])),
  state_lost: described(errors.StateLost),
}));
"""


def python_codes() -> dict:
    """The same, from the Python modules the server and the Python client use."""
    from streaming_app import exceptions
    from streaming_app.client import StateLost
    from streaming_app.protocol import codes

    def described(cls: type[exceptions.StreamError]) -> dict:
        return {"name": cls.__name__, "code": str(cls.code), "message": cls.default_message}

    return {
        "version": codes.PROTOCOL_VERSION,
        "subprotocol": codes.SUBPROTOCOL,
        "http_status": {str(code): status for code, status in codes.HTTP_STATUS.items()},
        "close_codes": {code.name: code.value for code in codes.CloseCode},
        "reconnect": sorted(codes.RECONNECTABLE_CLOSE_CODES),
        "base": described(exceptions.StreamError),
        "errors": {code: described(cls) for code, cls in exceptions.ERROR_CLASSES.items()},
        "state_lost": described(StateLost),
    }


def test_the_js_client_has_the_codes_and_messages_of_the_python_modules(node):
    result = subprocess.run(
        [node[0], "--input-type=module", "-e", DUMP_JS_CODES],
        cwd=JS_CLIENT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    javascript, python = json.loads(result.stdout), python_codes()
    assert javascript.keys() == python.keys()
    for part in python:
        assert javascript[part] == python[part], f"{part} of the JS client differs from Python's"
