"""Throughput cost of the admin's call bookkeeping: the same server stream with it on and off.

Two daphne processes of ``bench.bench_asgi`` (the ``bench.items`` stream of
bench/throughput.py), one with ``STREAMING["MONITOR_CALLS"] = True`` and one
with it False, both on a throw-away SQLite database (migrated here) and the
in-memory broker, or Redis with ``--redis URL``. Runs alternate between the
two, so drift in the machine's load hits both alike; the table shows the
median (and best) of ``--runs`` runs, and server CPU per item.

    .venv/bin/python bench/admin_overhead.py
    .venv/bin/python bench/admin_overhead.py --items 200000 --runs 7 --window 256

Only 127.0.0.1 is contacted; every run is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import throughput  # noqa: E402
from bench.throughput import ROOT, Run, free_port, python_executable, receive_stream, run_client, timed_run  # noqa: E402


class Server(throughput.Server):
    """A bench server with bookkeeping on or off."""

    def __init__(self, name: str, monitor: bool, database_url: str, redis_url: str | None) -> None:
        self.name = name
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-admin-{name}-", suffix=".log", delete=False)
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="bench.admin_settings",
            BENCH_MONITOR="1" if monitor else "0",
            DATABASE_URL=database_url,
            PYTHONUNBUFFERED="1",
        )
        env.pop("REDIS_URL", None)
        if redis_url:
            env["REDIS_URL"] = redis_url
        self.process = subprocess.Popen(
            throughput.server_command("daphne", self.port, "bench.bench_asgi:application"),
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
        )


def measure(server: Server, n: int, size: int, window: int | None, timeout: float) -> Run:
    url = f"ws://127.0.0.1:{server.port}/ws/"
    return timed_run(
        server, server.name, n,
        lambda: run_client(asyncio.wait_for(receive_stream(url, "a", n, size, window, 0), timeout)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=100, help="bytes of JSON per item (about)")
    parser.add_argument("--window", type=int, default=256, help="credit window (0: unbounded)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--redis", help="Redis URL for the broker and snapshots (default: memory broker)")
    args = parser.parse_args()
    window = args.window or None

    with tempfile.TemporaryDirectory(prefix="bench-admin-") as tmp:
        database_url = f"sqlite:///{tmp}/bench.sqlite3"
        subprocess.run(
            [python_executable(), "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True,
            env=dict(os.environ, DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="project.settings"),
        )
        servers = [Server("bookkeeping on", True, database_url, args.redis),
                   Server("bookkeeping off", False, database_url, args.redis)]
        try:
            for server in servers:
                server.wait_ready()
            for server in servers:  # warm-up: imports, first connection
                measure(server, min(args.items, 5_000), args.size, window, args.timeout)
            runs: dict[str, list[Run]] = {server.name: [] for server in servers}
            for round_ in range(args.runs):
                # Alternate which goes first, so a drift in the machine's load favours neither.
                for server in servers if round_ % 2 == 0 else servers[::-1]:
                    runs[server.name].append(measure(server, args.items, args.size, window, args.timeout))
        finally:
            for server in servers:
                server.stop()

    print(f"server stream over one WebSocket, {args.items} items of ~{args.size} B, window {window}, "
          f"{args.runs} runs each, daphne, broker {'redis' if args.redis else 'memory'}")
    print(f"{'':18} {'items/s median':>15} {'best':>10} {'server µs/item median':>22} {'min':>6}")
    medians, bests = {}, {}
    for name, results in runs.items():
        rates = [r.items_per_s for r in results]
        medians[name], bests[name] = statistics.median(rates), max(rates)
        cpus = [r.server_us_per_item for r in results]
        print(f"{name:18} {medians[name]:>15,.0f} {bests[name]:>10,.0f} {statistics.median(cpus):>22.2f} {min(cpus):>6.2f}")
    on, off = "bookkeeping on", "bookkeeping off"
    print(f"throughput with bookkeeping, relative to without: median {(medians[on] / medians[off] - 1) * 100:+.1f}%, "
          f"best {(bests[on] / bests[off] - 1) * 100:+.1f}%")
    print(f"hot path alone (the counters a stream bumps per item, timed in this process): {hot_path_ns():.0f} ns/item")


def hot_path_ns(n: int = 1_000_000) -> float:
    """What bookkeeping adds per item sent: the transport's two increments on its OpenCall."""
    import timeit

    class Live:
        __slots__ = ("items_out", "bytes_out")

        def __init__(self) -> None:
            self.items_out = self.bytes_out = 0

    class Holder:
        live = Live()
        off = None

    text = '{"t":"next","id":1,"d":{"i":0}}'
    bump = (
        "live = h.live\n"
        "if live is not None:\n"
        "    live.items_out += 1\n"
        "    live.bytes_out += len(text)"
    )
    skip = "live = h.off\nif live is not None:\n    pass"
    env = {"h": Holder(), "text": text}
    on = min(timeit.repeat(bump, globals=env, number=n, repeat=5))
    off = min(timeit.repeat(skip, globals=env, number=n, repeat=5))
    return (on - off) / n * 1e9


if __name__ == "__main__":
    main()
