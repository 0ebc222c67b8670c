"""Server-stream throughput of streaming_app against a hand-written Channels consumer.

One WebSocket connection, one server stream of ``--items`` items of about
``--size`` bytes of JSON each, counted by a plain ``websockets`` client:

* (a) ``streaming_app``: ``bench.items`` on ``/ws/`` (StreamConsumer) with a
  credit window W; the client grants ``W//2`` more each time it has received
  ``W//2`` items;
* (b) ``raw``: a minimal ``AsyncConsumer`` on ``/raw/`` sending the same
  ``next`` frames and an ``end`` frame in a loop, with no flow control;
* (c) ``python client``: (a) received through ``streaming_app.client``
  (``async for item in client.stream(...)`` with ``window=W``) instead of the
  plain ``websockets`` receiver: the cost of our client beside a bare one.

Both run under the same server process, daphne and then uvicorn, each started
here as a subprocess on a free loopback port and stopped by PID afterwards.
Runs of a and b alternate; the table shows the median of ``--runs`` runs
(and the best), the time to first item (from sending ``call`` to receiving
the first ``next``), CPU time the server process spent per item, and the
client's CPU use (near 100% means the client, not the server, was the limit).

    .venv/bin/python bench/throughput.py                       # defaults
    .venv/bin/python bench/throughput.py --window 64,256,1024 --runs 5
    .venv/bin/python bench/throughput.py --servers daphne --items 10000

Only 127.0.0.1 is contacted. Every run is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import websockets
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
SUBPROTOCOL = "streaming.v1.json"
NEXT_PREFIX = '{"t":"next",'
CLK_TCK = os.sysconf("SC_CLK_TCK")
APP = "bench.bench_asgi:application"  # set from --app
CLIENT_LOOP = "asyncio"  # set from --client-loop
RAW_YIELD_EVERY = 0  # set from --raw-yield-every


# -- servers ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Return once ``process`` listens on 127.0.0.1:``port``; RuntimeError if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"did not listen on {port} within {timeout}s")


def python_executable() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def server_command(server: str, port: int, app: str) -> list[str]:
    if server == "daphne":
        return [python_executable(), "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app]
    if server == "uvicorn":
        return [
            python_executable(), "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", app,
        ]
    raise ValueError(f"unknown server {server!r}")


class Server:
    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="project.settings", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            server_command(name, self.port, APP), cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        try:
            wait_for_port(self.port, self.process, timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"{self.name}: {exc}:\n{self.log_text()}") from None

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (Linux /proc)."""
        try:
            with open(f"/proc/{self.process.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            return float("nan")

    def log_text(self) -> str:
        try:
            return Path(self.log.name).read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


# -- one run ------------------------------------------------------------------


@dataclass
class Run:
    items_per_s: float
    first_ms: float
    server_us_per_item: float
    client_cpu: float  # fraction of wall time


@dataclass
class Case:
    server: str
    variant: str  # "a", "b" or "c"
    window: int | None
    runs: list[Run] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.variant == "b":
            return "b raw consumer" + (f" yield/{RAW_YIELD_EVERY}" if RAW_YIELD_EVERY else "")
        if self.variant == "c":
            return f"c python client W={self.window if self.window else 'none'}"
        return f"a streaming_app W={self.window if self.window else 'none'}"

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)

    def best(self, attr: str) -> float:
        return max(getattr(r, attr) for r in self.runs)


async def receive_stream(
    url: str, variant: str, n: int, size: int, window: int | None, raw_yield_every: int = 0
) -> tuple[float, float, int]:
    """Run one call; return (seconds from call to end, seconds to first item, items received)."""
    if variant == "c":
        return await receive_with_python_client(url, n, size, window)
    streaming = variant == "a"
    async with connect(
        url,
        subprotocols=[SUBPROTOCOL] if streaming else None,
        compression=None,
        ping_interval=None,
        max_size=2**20,
        open_timeout=10,
    ) as ws:
        if streaming:
            hello = json.loads(await ws.recv())
            if hello.get("t") != "hello":
                raise RuntimeError(f"expected hello, got {hello!r}")
        call: dict = {"t": "call", "id": 1, "m": "bench.items", "a": {"n": n, "size": size}}
        if not streaming and raw_yield_every:
            call["a"]["yield_every"] = raw_yield_every
        if streaming and window:
            call["credit"] = window
        half = max(window // 2, 1) if streaming and window else 0
        credit_frame = json.dumps({"t": "credit", "id": 1, "n": half}, separators=(",", ":"))
        recv, send = ws.recv, ws.send
        count = since = 0
        first = None
        t0 = time.perf_counter()
        await send(json.dumps(call, separators=(",", ":")))
        while True:
            message = await recv()
            if message.startswith(NEXT_PREFIX):
                count += 1
                if first is None:
                    first = time.perf_counter()
                    item = json.loads(message)
                    if item.get("id") != 1 or item["d"].get("i") != 0:
                        raise RuntimeError(f"unexpected first item {message[:200]!r}")
                if half:
                    since += 1
                    if since == half:
                        since = 0
                        await send(credit_frame)
                continue
            frame = json.loads(message)
            kind = frame.get("t")
            if kind == "end":
                break
            if kind == "ping":
                await send(json.dumps({"t": "pong", "d": frame.get("d")}))
                continue
            raise RuntimeError(f"unexpected frame {message[:300]!r}")
        t_end = time.perf_counter()
        if first is None:
            first = t_end
        return t_end - t0, first - t0, count


async def receive_with_python_client(url: str, n: int, size: int, window: int | None) -> tuple[float, float, int]:
    from streaming_app.client import StreamClient

    async with StreamClient(url, window=window) as client:
        count = 0
        first = None
        t0 = time.perf_counter()
        async for _ in client.stream("bench.items", n=n, size=size):
            count += 1
            if first is None:
                first = time.perf_counter()
        t_end = time.perf_counter()
    return t_end - t0, (first or t_end) - t0, count


def run_client(coro):
    if CLIENT_LOOP == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def timed_run(server: Server, label: str, n: int, receive: Callable[[], tuple[float, float, int]]) -> Run:
    """Call ``receive`` (returning elapsed seconds, time to first item, items) and measure CPU around it."""
    cpu0, proc0, wall0 = server.cpu_seconds(), time.process_time(), time.perf_counter()
    elapsed, first, count = receive()
    cpu1, proc1, wall1 = server.cpu_seconds(), time.process_time(), time.perf_counter()
    if count != n:
        raise RuntimeError(f"{label}: received {count} items, expected {n}")
    return Run(
        items_per_s=n / elapsed,
        first_ms=first * 1000,
        server_us_per_item=(cpu1 - cpu0) / max(n, 1) * 1e6,
        client_cpu=(proc1 - proc0) / (wall1 - wall0),
    )


def measure(
    server: Server, variant: str, n: int, size: int, window: int | None, timeout: float, raw_yield_every: int = 0
) -> Run:
    path = "/raw/" if variant == "b" else "/ws/"
    url = f"ws://127.0.0.1:{server.port}{path}"
    return timed_run(
        server, f"{server.name} {variant}", n,
        lambda: run_client(asyncio.wait_for(receive_stream(url, variant, n, size, window, raw_yield_every), timeout)),
    )


def parse_windows(text: str) -> list[int | None]:
    windows: list[int | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part in ("0", "none", "unbounded"):
            windows.append(None)
        elif part:
            value = int(part)
            if value < 1:
                raise argparse.ArgumentTypeError("window must be a positive integer (or 0/none)")
            windows.append(value)
    if not windows:
        raise argparse.ArgumentTypeError("no window given")
    return windows


def main(argv: list[str] | None = None) -> int:
    global APP, CLIENT_LOOP, RAW_YIELD_EVERY
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50_000, help="items per stream (default 50000)")
    parser.add_argument("--size", type=int, default=100, help="approximate JSON bytes per item (default 100)")
    parser.add_argument(
        "--window", type=parse_windows, default=parse_windows("256"),
        help="credit window(s) W for (a), comma-separated; 0 or none = no credit (default 256)",
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per case; median and best are reported (default 5)")
    parser.add_argument(
        "--raw-yield-every", type=int, default=0,
        help="make the raw consumer (b) yield to the event loop every K items (default 0: never, the naive loop)",
    )
    parser.add_argument("--servers", default="daphne,uvicorn", help="comma-separated: daphne,uvicorn")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per run (default 120)")
    parser.add_argument("--warmup", type=int, default=2000, help="items of one warm-up run per case (default 2000)")
    parser.add_argument(
        "--client-loop", choices=["asyncio", "uvloop"], default="asyncio",
        help="event loop of the benchmark client (default asyncio)",
    )
    parser.add_argument(
        "--app", default="bench.bench_asgi:application",
        help="ASGI application the servers run (default %(default)s; a variant must serve the same routes)",
    )
    args = parser.parse_args(argv)
    APP = args.app
    RAW_YIELD_EVERY = max(args.raw_yield_every, 0)
    CLIENT_LOOP = args.client_loop
    if not 1 <= args.items <= 10_000_000 or not 1 <= args.runs <= 50 or not 0 <= args.size <= 100_000:
        parser.error("--items must be 1..10^7, --runs 1..50, --size 0..100000")
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(servers) - {"daphne", "uvicorn"}
    if unknown or not servers:
        parser.error(f"--servers takes daphne and/or uvicorn, not {sorted(unknown) or 'nothing'}")

    print(
        f"# {args.items} items of ~{args.size} B, {args.runs} runs per case (median, best), "
        f"one connection, websockets {websockets.__version__} client on {args.client_loop}, Python {sys.version.split()[0]}",
        flush=True,
    )
    cases: list[Case] = []
    for name in servers:
        server = Server(name)
        try:
            server.wait_ready()
            b = Case(name, "b", None)
            a_cases = [Case(name, "a", w) for w in args.window] + [Case(name, "c", w) for w in args.window]
            # warm up both paths (imports, first-call caches) before timing
            for case in [b, *a_cases]:
                if args.warmup:
                    measure(server, case.variant, args.warmup, args.size, case.window, args.timeout, args.raw_yield_every)
            for _ in range(args.runs):
                for case in [b, *a_cases]:
                    case.runs.append(
                        measure(
                            server, case.variant, args.items, args.size, case.window, args.timeout,
                            args.raw_yield_every,
                        )
                    )
                    print(".", end="", flush=True)
            cases.extend([*a_cases, b])
        finally:
            server.stop()
    print()

    header = (
        f"{'server':<8} {'variant':<28} {'items/s (median)':>16} {'best':>9} "
        f"{'first item ms':>13} {'server us/item':>14} {'client cpu':>10}"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        print(
            f"{case.server:<8} {case.label:<28} {case.median('items_per_s'):>16,.0f} {case.best('items_per_s'):>9,.0f} "
            f"{case.median('first_ms'):>13.2f} {case.median('server_us_per_item'):>14.1f} "
            f"{case.median('client_cpu'):>9.0%}"
        )
    print()
    for name in servers:
        b = next(c for c in cases if c.server == name and c.variant == "b")
        for c in (c for c in cases if c.server == name and c.variant == "c"):
            a = next(x for x in cases if x.server == name and x.variant == "a" and x.window == c.window)
            print(
                f"{name:<8} c/a python client vs plain receiver, W={c.window or 'none'}: "
                f"items/s median {c.median('items_per_s') / a.median('items_per_s'):.2f}"
            )
        for a in (c for c in cases if c.server == name and c.variant == "a"):
            ratio = a.median("items_per_s") / b.median("items_per_s")
            best = a.best("items_per_s") / b.best("items_per_s")
            cpu = b.median("server_us_per_item") / a.median("server_us_per_item")
            verdict = "ok" if ratio >= 0.8 else "below goal"
            print(
                f"{name:<8} a/b {a.label[2:]:<22} items/s median {ratio:.2f} ({verdict}, goal >= 0.8), "
                f"best {best:.2f}; server CPU per item b/a {cpu:.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
