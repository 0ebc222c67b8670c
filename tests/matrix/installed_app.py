"""The app as a user installs it: built wheels in a fresh virtualenv, one Django release.

``.ci/matrix`` builds both distributions, makes a virtualenv per Django release (the
oldest and the newest supported) with ``pip install django-streaming-app`` from those
wheels (dependencies resolved by pip, no ``--no-deps``), and a client-only virtualenv;
then runs this module with the repository's own environment as the harness:

    MATRIX_PYTHON=/tmp/m/django-4.2/bin/python MATRIX_DJANGO=4.2 \\
        .venv/bin/python -m pytest tests/matrix/installed_app.py

The servers and the Python client calls run in the matrix virtualenv; this process only
starts them, reads what they answer over HTTP, and drives Chromium for the admin pages.
The example project (``project/``) is copied to a temporary folder, so nothing is
imported from this checkout there. The module's name does not start with ``test_``:
the main suite does not collect it (it needs the virtualenvs); ``.ci/matrix`` names it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from conftest import ROOT, free_port, wait_for_port

MATRIX_PYTHON = os.environ.get("MATRIX_PYTHON", "")
MATRIX_DJANGO = os.environ.get("MATRIX_DJANGO", "")
CLIENT_PYTHON = os.environ.get("MATRIX_CLIENT_PYTHON", "")
TIMEOUT = 60

if not MATRIX_PYTHON:
    pytest.fail("MATRIX_PYTHON is not set: run this module through .ci/matrix", pytrace=False)


class Site:
    """The example project copied out of the checkout, run by the matrix interpreter."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {
            key: value for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "REDIS_URL", "PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV"}
        }
        self.env["DATABASE_URL"] = f"sqlite:///{folder / 'db.sqlite3'}"
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"

    def run(self, *args: str, python: str = MATRIX_PYTHON, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [python, *args], cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=TIMEOUT
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("manage.py", *args, check=check)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    folder = tmp_path_factory.mktemp("site")
    shutil.copytree(ROOT / "project", folder / "project", ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    shutil.copy(ROOT / "manage.py", folder / "manage.py")
    made = Site(folder)
    made.manage("migrate", "--verbosity", "0")
    made.env["DJANGO_SUPERUSER_PASSWORD"] = "pw-123456"
    made.manage("createsuperuser", "--noinput", "--username", "root", "--email", "root@example.com")
    return made


@pytest.fixture(scope="module")
def token(site: Site) -> str:
    out = site.manage("drf_create_token", "root").stdout
    found = re.search(r"\b([0-9a-f]{40})\b", out)
    assert found, out
    return found.group(1)


@contextlib.contextmanager
def daphne(site: Site, application: str) -> Iterator[str]:
    """A daphne of the matrix virtualenv serving ``application`` from the site's folder."""
    port = free_port()
    executable = str(Path(MATRIX_PYTHON).with_name("daphne"))
    log = open(site.folder / "daphne.log", "w")
    process = subprocess.Popen(
        [executable, "-b", "127.0.0.1", "-p", str(port), application],
        cwd=site.folder, env=site.env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process, timeout=30)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


@pytest.fixture(scope="module")
def server(site: Site) -> Iterator[str]:
    """A daphne of the matrix virtualenv serving the copied example project."""
    with daphne(site, "project.asgi:application") as address:
        yield address


CALLS = textwrap.dedent(
    """
    import asyncio, json, sys
    from streaming_app.client import StreamClient, StreamError

    async def main(url, token):
        out = {}
        async with StreamClient(url, token=token) as client:
            out["unary"] = await client.call("interop.unary", payload="hi")
            out["whoami"] = await client.call("interop.whoami")
            stream = client.stream("interop.count", n=3)
            out["items"] = [item async for item in stream]
            out["total"] = stream.result
            summing = await client.open("interop.sum")
            for v in (1, 2, 3):
                await summing.send({"v": v})
            await summing.end()
            out["sum"] = await summing.result()
            try:
                await client.call("interop.fail", code="not_found", message="gone")
            except StreamError as exc:
                out["error"] = [exc.code, exc.message]
        print(json.dumps(out))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)

EXPECTED_CALLS = {
    "unary": {"payload": "hi"},
    "whoami": {"username": "root", "is_staff": True},
    "items": [{"i": 0}, {"i": 1}, {"i": 2}],
    "total": {"total": 3},
    "sum": {"sum": 6, "count": 3},
    "error": ["not_found", "gone"],
}


def test_the_site_runs_the_installed_wheel_of_the_expected_django(site: Site) -> None:
    done = site.run("-c", "import django, streaming_app; print(django.get_version()); print(streaming_app.__file__)")
    version, location = done.stdout.split()
    assert version == MATRIX_DJANGO or version.startswith(MATRIX_DJANGO + ".")
    assert "site-packages" in location and not location.startswith(str(ROOT))


def test_system_checks_find_nothing(site: Site) -> None:
    done = site.manage("check", "--fail-level", "WARNING")
    assert "no issues" in done.stdout


def test_models_need_no_new_migration(site: Site) -> None:
    site.manage("makemigrations", "--check", "--dry-run", "streaming_app")


def test_websocket_calls_with_the_installed_client(site: Site, server: str, token: str) -> None:
    done = site.run("-c", CALLS, f"ws://{server}/ws/", token)
    assert json.loads(done.stdout) == EXPECTED_CALLS


def test_http_unary_and_server_stream(server: str) -> None:
    with httpx.Client(base_url=f"http://{server}/streams/", timeout=10, trust_env=False) as http:
        unary = http.post("interop.unary", json={"payload": "hi"})
        assert unary.status_code == 200 and unary.json() == {"d": {"payload": "hi"}}
        stream = http.get("interop.count", params={"n": 3}, headers={"Accept": "application/x-ndjson"})
        assert stream.status_code == 200
        records = [json.loads(line) for line in stream.text.splitlines() if line.strip()]
        assert [r["d"] for r in records if r["t"] == "next"] == [{"i": 0}, {"i": 1}, {"i": 2}]
        assert records[-1] == {"t": "end", "d": {"total": 3}}


def test_an_http_stream_stops_when_its_client_leaves(server: str) -> None:
    """Django 5.0+ cancels the request; on 4.2 streaming_app.asgi.get_asgi_application() does."""
    tag = f"matrix-{uuid.uuid4().hex}"
    with httpx.Client(base_url=f"http://{server}/streams/", timeout=10, trust_env=False) as reader:
        with reader.stream(
            "GET", "interop.forever", params={"interval_ms": 50, "tag": tag}, headers={"Accept": "application/x-ndjson"}
        ) as stream:
            first = next(line for line in stream.iter_lines() if line.strip())
            assert json.loads(first) == {"t": "next", "d": {"i": 0}}
    count = None
    with httpx.Client(base_url=f"http://{server}/streams/", timeout=10, trust_env=False) as http:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            count = http.get("interop.cleanups", params={"tag": tag}).json()["d"]["count"]
            if count:
                break
            time.sleep(0.2)
    assert count == 1, "the handler's finally did not run after its client left"


def admin_session(server: str) -> httpx.Client:
    http = httpx.Client(base_url=f"http://{server}", timeout=10, trust_env=False, follow_redirects=False)
    login = http.get("/admin/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
    assert csrf, login.text[:500]
    done = http.post(
        "/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": csrf.group(1), "username": "root", "password": "pw-123456", "next": "/admin/"},
        headers={"Referer": f"http://{server}/admin/login/"},
    )
    if done.status_code != 302:
        http.close()
        raise AssertionError(done.text[:500])
    return http


@pytest.mark.parametrize(
    ("path", "marker"),
    [
        ("/admin/", "streaming_app"),
        ("/admin/streaming_app/livecall/", 'id="live-calls"'),
        ("/admin/streaming_app/finishedcall/", 'id="changelist"'),  # rows may not be flushed yet
        ("/admin/streaming_app/endpointswitch/", "Endpoint switch"),
    ],
)
def test_admin_page_renders(server: str, site: Site, path: str, marker: str) -> None:
    http = admin_session(server)
    try:
        page = http.get(path)
    finally:
        http.close()
    assert page.status_code == 200, page.text[:500]
    assert marker.lower() in page.text.lower()


async def test_admin_live_page_fits_1280_px_with_styled_breadcrumbs(context, server: str, site: Site) -> None:  # type: ignore[no-untyped-def]
    page = await context.new_page()
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.goto(f"http://{server}/admin/login/?next=/admin/streaming_app/livecall/")
    await page.fill("input[name=username]", "root")
    await page.fill("input[name=password]", "pw-123456")
    await page.click("input[type=submit]")
    await page.wait_for_url(f"http://{server}/admin/streaming_app/livecall/")
    await page.wait_for_selector("#live-state[data-state=live]")
    await page.wait_for_selector("#live-calls tbody tr")  # the page's own live call
    out = Path(ROOT / "test-output" / "matrix")
    out.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(out / f"admin-live-django-{MATRIX_DJANGO}.png"), full_page=True)
    widths = await page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"
    background = await page.evaluate(
        "getComputedStyle(document.querySelector('.breadcrumbs')).backgroundColor"
    )
    assert background not in ("rgba(0, 0, 0, 0)", "transparent"), "breadcrumbs are unstyled"


# -- The README's example, pasted into a new project -------------------------------------


def readme_blocks() -> list[tuple[str, str]]:
    """The README's code blocks, as (language, text)."""
    return re.findall(r"```(\w+)\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def readme_files() -> dict[str, str]:
    """The files the README shows, by the path on their first line (``# orders/streams.py``).

    A block headed ``# <path>, continued`` is appended to that file.
    """
    files: dict[str, str] = {}
    for language, text in readme_blocks():
        head = re.match(r"# ([\w/]+\.py)(, continued)?\b", text)
        if language != "python" or head is None:
            continue
        path = head.group(1)
        files[path] = files.get(path, "") + "\n" + text if head.group(2) else text
    return files


def readme_block(*needles: str) -> str:
    found = [text for _, text in readme_blocks() if all(n in text for n in needles)]
    assert len(found) == 1, f"expected one README block with {needles}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def readme_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """``startproject yourproject`` and ``startapp orders``, then the README's files over them."""
    folder = tmp_path_factory.mktemp("readme")
    made = Site(folder)
    made.run("-m", "django", "startproject", "yourproject", ".")
    made.manage("startapp", "orders")
    files = readme_files()
    settings_block = files.pop("settings.py")
    for path, text in files.items():
        (folder / path).write_text(text)
    # The settings block lists the apps to add and the settings to set; the rest of
    # settings.py is startproject's.
    added = [a for a in re.findall(r'"([\w.]+)"', settings_block.split("]")[0]) if a != "daphne"]
    assignments = [line for line in settings_block.splitlines() if re.match(r"(ASGI_APPLICATION|CHANNEL_LAYERS) =", line)]
    assert len(assignments) == 2, settings_block
    with open(folder / "yourproject" / "settings.py", "a") as settings:
        settings.write(
            f"\nINSTALLED_APPS = ['daphne', *INSTALLED_APPS, *{added!r}, 'orders']\n" + "\n".join(assignments) + "\n"
        )
    (folder / "pyproject.toml").write_text(readme_block("asyncio_mode"))
    made.manage("makemigrations", "orders", "--verbosity", "0")
    made.manage("migrate", "--verbosity", "0")
    return made


def test_readme_example_passes_system_checks(readme_site: Site) -> None:
    done = readme_site.manage("check", "--fail-level", "WARNING")
    assert "no issues" in done.stdout


def test_readme_example_tests_pass_with_the_readme_pytest_configuration(readme_site: Site) -> None:
    done = readme_site.run("-m", "pytest", "-q", "-p", "no:cacheprovider", "orders/tests.py", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_readme_example_client_calls_the_readme_methods(readme_site: Site) -> None:
    readme_site.env["DJANGO_SUPERUSER_PASSWORD"] = "pw-123456"
    readme_site.manage("createsuperuser", "--noinput", "--username", "ann", "--email", "ann@example.com")
    readme_site.manage("shell", "-c", "from orders.models import Order; from django.contrib.auth.models import User; "
                       "Order.objects.create(pk=1, owner=User.objects.get(username='ann'))")
    out = readme_site.manage("drf_create_token", "ann").stdout
    token = re.search(r"\b([0-9a-f]{40})\b", out)
    assert token, out
    script = readme_block("StreamClient(", "orders.get")
    with daphne(readme_site, "yourproject.asgi:application") as address:
        script = script.replace("ws://127.0.0.1:8000/ws/", f"ws://{address}/ws/").replace("<DRF token>", token.group(1))
        done = readme_site.run("-c", script)
    lines = done.stdout.splitlines()
    assert lines == [
        "{'id': 1, 'total': '0.00'}", "{'left': 3}", "{'left': 2}", "{'left': 1}", "{'done': True}", "{'sum': 5}",
    ], done.stdout + done.stderr


CLIENT_ONLY = pytest.mark.skipif(not CLIENT_PYTHON, reason="MATRIX_CLIENT_PYTHON names the client-only virtualenv")


@CLIENT_ONLY
def test_client_only_venv_has_no_django(site: Site) -> None:
    done = site.run("-m", "pip", "list", "--format", "json", python=CLIENT_PYTHON)
    names = {p["name"].lower().replace("_", "-") for p in json.loads(done.stdout)}
    assert names - {"pip", "setuptools", "wheel"} == {"streaming-app-client", "websockets"}
    missing = site.run("-c", "import django", python=CLIENT_PYTHON, check=False)
    assert "ModuleNotFoundError" in missing.stderr


@CLIENT_ONLY
def test_client_only_venv_makes_calls(site: Site, server: str, token: str) -> None:
    done = site.run("-c", CALLS, f"ws://{server}/ws/", token, python=CLIENT_PYTHON)
    assert json.loads(done.stdout) == EXPECTED_CALLS


@CLIENT_ONLY
def test_client_only_venv_sync_client_and_command_line(site: Site, server: str) -> None:
    sync = site.run(
        "-c",
        "from streaming_app.client import SyncStreamClient\n"
        f"with SyncStreamClient('ws://{server}/ws/') as c: print(c.call('interop.unary', payload='s'))",
        python=CLIENT_PYTHON,
    )
    assert sync.stdout.strip() == "{'payload': 's'}"
    cli = site.run("-m", "streaming_app.client", f"ws://{server}/ws/", "interop.count", "n=2", python=CLIENT_PYTHON)
    assert [json.loads(line) for line in cli.stdout.splitlines()] == [{"i": 0}, {"i": 1}, {"end": {"total": 2}}]


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run through pytest: see the module docstring")
