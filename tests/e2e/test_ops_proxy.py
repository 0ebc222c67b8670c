"""The deployment's topology with processes: the shipped nginx config in front of two daphnes.

``deploy/nginx.conf`` (what docker-compose runs) is started as it is, with only
its addresses made loopback ones; a client connected through it survives the
drain of the daphne it is on: it gets 4503, reconnects through nginx to the
other process, and resumes its topic stream with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT, Server, free_port, publish_sequence, start_server, unavailable, wait_for_port
from streaming_app.client import StreamClient

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def nginx_binary() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if path is None:
        unavailable("nginx is not installed (apt-get install nginx); .ci/run installs it")
    return path


def loopback_config(directory: Path, listen: int, upstreams: list[int], changes: dict[str, str]) -> Path:
    """deploy/nginx.conf with loopback addresses, this test's own temporary paths, and ``changes``."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    replacements = {
        **changes,
        "server web1:8000 ": f"server 127.0.0.1:{upstreams[0]} ",
        "server web2:8000 ": f"server 127.0.0.1:{upstreams[1]} ",
        "listen 80;": f"listen 127.0.0.1:{listen};",
        "worker_processes auto;": "worker_processes 1;",
        "alias /srv/static/;": f"alias {directory}/static/;",
        "http {": "http {\n" + "".join(
            f"    {kind}_temp_path {directory}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ) + f"    access_log {directory}/access.log;\n",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"deploy/nginx.conf no longer has {old!r}"
        text = text.replace(old, new)
    path = directory / "nginx.conf"
    path.write_text(text)
    return path


class Nginx:
    def __init__(self, directory: Path, upstreams: list[int], changes: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        binary = nginx_binary()
        directory.mkdir(exist_ok=True)
        (directory / "static").mkdir(exist_ok=True)
        config = loopback_config(directory, self.port, upstreams, changes or {})
        main = f"daemon off; pid {directory}/nginx.pid; error_log {directory}/error.log warn;"
        if os.geteuid() == 0:
            main += " user root;"  # workers must read this test's private directory
        command = [binary, "-p", str(directory), "-c", str(config), "-g", main]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.process)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def topology(tmp_path, redis_url) -> Iterator[tuple[Nginx, list[Server]]]:
    # As docker-compose runs them: the client's address from the proxy's X-Forwarded-For.
    servers = [start_server(tmp_path, env={"REDIS_URL": redis_url}, args=["--proxy-headers"]) for _ in range(2)]
    proxy = None
    try:
        proxy = Nginx(tmp_path / "nginx", [server.port for server in servers])
        yield proxy, servers
    finally:
        if proxy is not None:
            proxy.stop()
        for server in servers:
            server.stop()


def open_subscriptions(server: Server) -> float:
    """``streaming_calls_open{method="interop.subscribe"}`` of one daphne, scraped directly (loopback)."""
    text = httpx.get(f"{server.http_url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "streaming_calls_open" and sample.labels.get("method") == "interop.subscribe":
                return sample.value
    return 0.0


def test_calls_and_health_go_through_the_proxy(topology):
    proxy, _ = topology
    assert httpx.get(f"{proxy.http_url}/streams/_health", timeout=10).json() == {"status": "ok"}
    response = httpx.get(f"{proxy.http_url}/streams/interop.count?n=3", headers={"Accept": "text/event-stream"},
                         timeout=10)
    assert response.status_code == 200 and response.text.count("event: next") == 3


def test_the_proxy_does_not_serve_the_metrics(topology):
    proxy, servers = topology
    assert httpx.get(f"{proxy.http_url}/metrics", timeout=10).status_code == 404
    assert httpx.get(f"{servers[0].http_url}/metrics", timeout=10).status_code == 200  # from this host, directly


def test_a_client_cannot_name_its_own_address_through_the_proxy_to_reset_its_throttle(topology):
    """nginx replaces X-Forwarded-For: appending to it let daphne take the client's own first entry."""
    proxy, _ = topology
    key = uuid.uuid4().hex
    codes = [httpx.post(f"{proxy.http_url}/streams/interop.limited", json={"key": key}, timeout=10,
                        headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code for n in range(1, 5)]
    assert codes == [200, 200, 200, 429]


def test_the_proxy_cuts_off_a_client_that_trickles_its_request_headers(tmp_path, topology):
    """Slowloris: half-sent handshakes held daphne's file descriptors until it refused everyone (issue 17)."""
    _, servers = topology
    # The shipped client_header_timeout (10 s), shortened here to keep the test short.
    proxy = Nginx(tmp_path / "slow", [server.port for server in servers],
                  {"client_header_timeout 10s;": "client_header_timeout 1s;"})
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.sendall(b"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")  # and no more
            started = time.monotonic()
            received = b""
            while chunk := sock.recv(4096):  # until nginx closes the connection
                received += chunk
            elapsed = time.monotonic() - started
    finally:
        proxy.stop()
    assert 0.5 <= elapsed < 8
    assert received == b"" or received.startswith(b"HTTP/1.1 408")


async def test_a_client_behind_the_proxy_survives_the_drain_of_its_server(tmp_path, topology, redis_url):
    proxy, servers = topology
    publisher = start_server(tmp_path, env={"REDIS_URL": redis_url})
    topic = f"p{uuid.uuid4().hex[:12]}"
    total, drain_after = 600, 150
    got: list[int] = []
    publishing: asyncio.Future | None = None
    drained: Server | None = None
    try:
        async with StreamClient(proxy.ws_url, reconnect_initial=0.05, reconnect_max=0.5) as client:
            stream = client.stream("interop.subscribe", topic=topic)
            items = stream.__aiter__()
            started = await asyncio.wait_for(stream._started(), 10)
            for _ in range(200):  # publish once the subscription is live (its ready frame)
                if not started.frames.empty():
                    break
                await asyncio.sleep(0.05)
            publishing = asyncio.ensure_future(publish_sequence(publisher.ws_url, topic, total, pause=0.05))
            deadline = time.monotonic() + 90
            while len(got) < total and time.monotonic() < deadline:
                got.append(await asyncio.wait_for(items.__anext__(), 20))
                if len(got) == drain_after:
                    counts = [await asyncio.to_thread(open_subscriptions, server) for server in servers]
                    assert sorted(counts) == [0.0, 1.0], counts
                    drained = servers[counts.index(1.0)]
                    drained.process.send_signal(signal.SIGTERM)
            await items.aclose()
        await asyncio.wait_for(publishing, 30)
    finally:
        if publishing is not None:
            publishing.cancel()
        publisher.stop()
    assert drained is not None
    assert drained.process.wait(20) == 0  # drained and exited by itself
    assert stream.resumes >= 1
    assert got == list(range(total))
