"""Shared fixtures: a real daphne server, users and tokens, and service detection."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s")


def database_url_for_tests() -> str:
    """DATABASE_URL of the test database pytest-django created, for server subprocesses."""
    from django.db import connection

    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or "postgres"
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or "5432"
    return f"postgres://{user}@{host}:{port}/{settings['NAME']}"


class Server:
    """A server process of the example project on a loopback port."""

    def __init__(self, port: int, process: subprocess.Popen, log: Path) -> None:
        self.port = port
        self.process = process
        self.log = log

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_server(
    tmp_dir: Path,
    *,
    server: str = "daphne",
    env: dict[str, str] | None = None,
    port: int | None = None,
    app: str = "project.asgi:application",
    args: list[str] | None = None,
) -> Server:
    """Start a server of the example project, or of ``app`` (``probes.<name>:application``; tests/ is on its path).

    ``args`` go to daphne before the application (``["--proxy-headers"]``, as docker-compose runs it).
    """
    port = port or free_port()
    log = tmp_dir / f"{server}-{port}.log"
    if server == "daphne":
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *(args or []), app]
    else:
        command = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                   "--log-level", "warning", app]
    environment = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")])),
        **(env or {}),
    }
    environment.setdefault("PYTHONUNBUFFERED", "1")
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process)
    except RuntimeError:
        process.kill()
        raise RuntimeError(f"server failed to start:\n{log.read_text()}")
    return Server(port, process, log)


@pytest.fixture(scope="session")
def daphne_server(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Server]:
    """One daphne process of the example project, shared by the end-to-end tests."""
    with django_db_blocker.unblock():
        server = start_server(tmp_path_factory.mktemp("servers"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def probe_server(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Server]:
    """daphne serving the example project with probe methods and short HTTP timings (tests/probes/httpprobe_*.py)."""
    with django_db_blocker.unblock():
        server = start_server(
            tmp_path_factory.mktemp("probe"),
            app="probes.httpprobe_asgi:application",
            env={"DJANGO_SETTINGS_MODULE": "probes.httpprobe_settings"},
        )
    yield server
    server.stop()


@pytest.fixture
def http(daphne_server):
    """An httpx client of the shared daphne server (tests/httpclient.py)."""
    from httpclient import client

    with client(daphne_server) as c:
        yield c


@pytest.fixture
def probe(probe_server):
    """An httpx client of the probe server, whose handlers report what they saw."""
    from httpclient import client

    with client(probe_server) as c:
        yield c


@pytest.fixture
def two_servers(tmp_path, redis_url) -> Iterator[list[Server]]:
    """Two daphne processes of the example project sharing the database and Redis; this process
    publishes through the same Redis (the revocation notices its signals send), REDIS_URL set or not."""
    from django.conf import settings
    from django.test import override_settings

    servers = [start_server(tmp_path, env={"REDIS_URL": redis_url}) for _ in range(2)]
    # The project's STREAMING kept (its topics' history, which a publish from here follows), on this Redis.
    with override_settings(STREAMING={**settings.STREAMING, "BROKER": redis_url}):
        yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def daphne_on_redis(tmp_path, redis_url) -> Iterator[Server]:
    """A daphne of the example project on Redis; this process publishes through the same Redis
    (``publish_changes`` after an ORM change, ``publish``), as a task or a command would."""
    from django.test import override_settings

    server = start_server(tmp_path, env={"REDIS_URL": redis_url})
    with override_settings(STREAMING={"BROKER": redis_url}):
        yield server
    server.stop()


@pytest.fixture
async def close_worker_connections():
    """Close the database connections left open in asgiref's worker thread after the test.

    ``sync_to_async`` runs ORM calls in that thread, and nothing there closes
    their connection (Channels' test communicator even patches out
    close_old_connections), so PostgreSQL would refuse to drop the test
    database while one is open. Modules that need it use it autouse."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    from streaming_app.changefeed import close_connections

    await sync_to_async(connections.close_all, thread_sensitive=True)()
    await close_connections()  # model streams' reading thread


@pytest.fixture
def make_user(transactional_db):
    """Create committed users (visible to server subprocesses)."""
    from django.contrib.auth import get_user_model

    def make(username: str = "alice", *, is_staff: bool = False, password: str = "pw-123456") -> object:
        return get_user_model().objects.create_user(username, password=password, is_staff=is_staff)

    return make


@pytest.fixture
def make_token(make_user):
    """A DRF authtoken key for a new user."""
    from rest_framework.authtoken.models import Token

    def make(username: str = "alice", *, is_staff: bool = False) -> str:
        return Token.objects.create(user=make_user(username, is_staff=is_staff)).key

    return make


@pytest.fixture
def staff_token(make_token) -> str:
    """A bearer token of the staff user "dave"."""
    return make_token("dave", is_staff=True)


@pytest.fixture
def inactive_token(make_token) -> str:
    """A bearer token of "gone", a user who has been deactivated."""
    from rest_framework.authtoken.models import Token

    key = make_token("gone")
    user = Token.objects.get(key=key).user
    user.is_active = False
    user.save()
    return key


def redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis for tests; in CI its absence fails the test instead of skipping it."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if not redis_available():
        if IN_CI:
            pytest.fail("Redis is required in CI but is not reachable at 127.0.0.1:6379")
        pytest.skip("Redis is not running at 127.0.0.1:6379")
    return url


@contextmanager
def plain_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A ``ws://`` URL of a plain HTTP server on loopback answering handshakes with ``handler`` (no WebSocket)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.server_address[1]}/ws/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def publish_sequence(ws_url: str, topic: str, total: int, pause: float = 0.02) -> None:
    """Publish 0..total-1 on ``interop.<topic>`` through ``interop.publish`` of one server, pausing every 50.

    The pauses keep a publisher going while a test kills and restarts other servers.
    """
    from wsclient import connected

    async with connected(ws_url) as pub:
        for n in range(total):
            frame = await pub.result(n + 1, "interop.publish", {"topic": topic, "data": n})
            assert frame["t"] == "end", frame
            if n % 50 == 49:
                await asyncio.sleep(pause)


# -- the system's Chromium, driven by Playwright (nothing is downloaded) ------------------------

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
BROWSER_TIMEOUT_MS = 15_000


def unavailable(message: str) -> None:
    """Skip locally, fail in CI: the browser tests must run there."""
    if IN_CI:
        pytest.fail(f"{message} (required in CI)")
    pytest.skip(message)


def chromium_path() -> str:
    """The system's Chromium (``CHROMIUM`` overrides), with Playwright for Python to drive it."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        unavailable("Playwright for Python is not installed (the dev extra)")
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        unavailable("Chromium is not installed (apt-get install chromium chromium-driver)")
    return path


@pytest.fixture
async def browser():
    """A headless Chromium for one test (async Playwright)."""
    from playwright.async_api import async_playwright

    path = chromium_path()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, timeout=60_000)
        yield chromium
        await chromium.close()


@pytest.fixture
async def context(browser):
    """A browser profile of its own: its pages are tabs that share cookies."""
    profile = await browser.new_context()
    profile.set_default_timeout(BROWSER_TIMEOUT_MS)
    yield profile
    await profile.close()


@pytest.fixture(scope="session")
def node_packages() -> Path:
    """``node_modules`` as package.json and its lock pin it (``npm ci`` when a package is missing): the
    AsyncAPI JSON Schemas (@asyncapi/specs) and tsc for the schema and generated-client tests."""
    import json

    wanted = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    if not all((ROOT / "node_modules" / name / "package.json").exists() for name in wanted):
        npm = shutil.which("npm")
        if npm is None:
            unavailable("npm is needed to install the development packages of package.json")
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, capture_output=True, text=True,
                                timeout=600)
        if result.returncode != 0:
            pytest.fail(f"npm ci at the repository's root failed:\n{result.stdout}\n{result.stderr}")
    return ROOT / "node_modules"
