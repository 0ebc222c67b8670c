"""Idle memory per WebSocket connection: streaming_app's consumer against a plain Channels one.

One daphne process of ``bench.bench_asgi`` (the example project's settings, the
in-memory channel layer) per variant. After a warm-up of 50 connections, the
script opens ``--connections`` idle connections (``/ws/``: with the protocol's
subprotocol, each read up to its ``hello``; ``/raw/``: the bare
``AsyncConsumer`` of ``bench_asgi.py``, which only accepts), waits for the
server to settle, and reports the growth of the server's resident memory
(``VmRSS`` of ``/proc/<pid>/status``) divided by the connections.

    .venv/bin/python bench/idle_memory.py                      # 2,000 connections, 3 variants
    .venv/bin/python bench/idle_memory.py --connections 500 --variants raw,streaming_app

Variants: ``streaming_app`` (metrics on, as the example project),
``streaming_app-no-metrics`` (``DJANGO_STREAMING_METRICS=0``), ``raw`` (plain
Channels consumer).
Only 127.0.0.1 is contacted; servers are stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
APP = "bench.bench_asgi:application"
SUBPROTOCOL = "streaming.v1.json"
VARIANTS = {
    "streaming_app": ("/ws/", {"DJANGO_STREAMING_METRICS": "1"}),
    "streaming_app-no-metrics": ("/ws/", {"DJANGO_STREAMING_METRICS": "0"}),
    "raw": ("/raw/", {}),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start(port: int, extra_env: dict[str, str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({"DJANGO_SETTINGS_MODULE": "project.settings", "PYTHONUNBUFFERED": "1", **extra_env})
    process = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), APP],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("daphne did not start")


async def open_many(url: str, count: int, hello: bool) -> list:
    async def one():
        ws = await connect(url, subprotocols=[SUBPROTOCOL] if hello else None, compression=None,
                           proxy=None, open_timeout=30, ping_interval=None)
        if hello:
            await asyncio.wait_for(ws.recv(), 30)
        return ws

    sockets = []
    for start_at in range(0, count, 100):  # batches: no thundering handshake herd
        sockets += await asyncio.gather(*(one() for _ in range(min(100, count - start_at))))
    return sockets


async def measure(variant: str, count: int, settle: float) -> tuple[int, int, float]:
    path, extra_env = VARIANTS[variant]
    port = free_port()
    process = start(port, extra_env)
    url = f"ws://127.0.0.1:{port}{path}"
    hello = path == "/ws/"
    try:
        warm = await open_many(url, 50, hello)
        for ws in warm:
            await ws.close()
        await asyncio.sleep(settle)
        before = rss_kib(process.pid)
        sockets = await open_many(url, count, hello)
        await asyncio.sleep(settle)
        after = rss_kib(process.pid)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return before, after, (after - before) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait before reading RSS")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections * 2 + 200
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    print(f"{args.connections} idle connections per variant; server RSS growth per connection\n")
    print("| variant | RSS before (MiB) | RSS after (MiB) | KiB per connection |")
    print("|---|---|---|---|")
    for variant in args.variants.split(","):
        before, after, per = asyncio.run(measure(variant.strip(), args.connections, args.settle))
        print(f"| {variant} | {before / 1024:.1f} | {after / 1024:.1f} | {per:.1f} |", flush=True)


if __name__ == "__main__":
    main()
