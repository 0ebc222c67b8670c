"""``/streams/_health`` of a real daphne whose own Redis and PostgreSQL are stopped and started.

The Redis and the PostgreSQL here are this module's own (a ``redis-server`` and an
``initdb`` cluster on free ports): the machine's shared services are never stopped.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from conftest import Server, free_port, start_server, unavailable

pytestmark = pytest.mark.django_db(transaction=True)


class OwnRedis:
    """A ``redis-server`` of this module's own on a loopback port, stopped and started at will."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), "redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        wait_until(lambda: not port_open(self.port), "redis-server did not stop")


class OwnPostgres:
    """A PostgreSQL cluster of this module's own (``initdb`` in a temporary directory)."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.bin = postgres_bin()
        # initdb refuses to run as root: then the cluster belongs to the postgres user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)

    def init(self) -> None:
        if self.as_user:
            shutil.chown(self.directory, "postgres")
        self.run(f"{self.bin}/initdb", "-D", str(self.directory / "data"), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self.run(f"{self.bin}/pg_ctl", "-D", str(self.directory / "data"), "-o", options,
                 "-l", str(self.directory / "log"), "-w", "start")

    def stop(self) -> None:
        self.run(f"{self.bin}/pg_ctl", "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")


def postgres_bin() -> str:
    initdb = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    if initdb is None:
        unavailable("PostgreSQL's initdb is not installed (a cluster of the test's own is needed)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        unavailable("running as root without runuser: initdb cannot run")
    return str(Path(initdb).parent)


def port_open(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(condition, message: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


@pytest.fixture(scope="module")
def own_redis() -> Iterator[OwnRedis]:
    redis = OwnRedis(free_port())
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    # Not under pytest's tmp_path: its parents are private to root, and the
    # cluster may belong to the postgres user.
    directory = Path(tempfile.mkdtemp(prefix="streaming-app-postgres-"))
    postgres = OwnPostgres(directory, free_port())
    try:
        postgres.init()
        postgres.start()
        yield postgres
        try:
            postgres.stop()
        except subprocess.CalledProcessError:
            pass  # a test left it stopped
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory, own_redis, own_postgres) -> Iterator[Server]:
    with django_db_blocker.unblock():
        process = start_server(
            tmp_path_factory.mktemp("health"),
            env={"REDIS_URL": own_redis.url, "DATABASE_URL": own_postgres.url},
        )
    yield process
    process.stop()


def health(server: Server) -> httpx.Response:
    return httpx.get(f"{server.http_url}/streams/_health", timeout=15)


def eventually(server: Server, status: int, timeout: float = 15.0) -> httpx.Response:
    """The health answer, once it has the expected status (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        response = health(server)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_health_is_ok_while_database_and_broker_answer(server):
    response = health(server)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response.headers["Cache-Control"]


def test_health_names_the_broker_while_redis_is_stopped(server, own_redis):
    own_redis.stop()
    try:
        response = eventually(server, 503)
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "failing": ["broker"]}
    finally:
        own_redis.start()
    recovered = eventually(server, 200)
    assert recovered.json() == {"status": "ok"}


def test_health_names_the_database_while_postgresql_is_stopped(server, own_postgres):
    own_postgres.stop()
    try:
        response = eventually(server, 503)
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "failing": ["database"]}
    finally:
        own_postgres.start()
    recovered = eventually(server, 200)
    assert recovered.json() == {"status": "ok"}


def test_health_names_both_parts_when_neither_answers(server, own_redis, own_postgres):
    own_redis.stop()
    own_postgres.stop()
    try:
        response = eventually(server, 503)
        assert response.json() == {"status": "unavailable", "failing": ["database", "broker"]}
    finally:
        own_postgres.start()
        own_redis.start()
    assert eventually(server, 200).json() == {"status": "ok"}
