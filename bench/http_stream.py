"""Server-stream throughput over HTTP (SSE and NDJSON) beside the WebSocket.

One server stream of ``--items`` items (``bench.items``, about ``--size``
bytes of JSON each, from bench/bench_asgi.py) received three ways from the
same server process:

* ``sse``: ``GET /streams/bench.items?n=N&size=S`` with ``Accept:
  text/event-stream``, read by an httpx client that splits the body into
  events and counts the ``next`` ones;
* ``ndjson``: the same with ``Accept: application/x-ndjson``, counting lines;
* ``websocket``: the call of bench/throughput.py's variant (a) on ``/ws/``,
  credit window ``--window`` (0: no credit), received by a plain
  ``websockets`` client.

The server is started and stopped as bench/throughput.py does (its ``Server``
class is reused). Each case runs ``--runs`` times (default 1) after one small
warm-up; the table shows items/s (median), the time to the first item, the
server's CPU time per item and the client's CPU use.

    .venv/bin/python bench/http_stream.py
    .venv/bin/python bench/http_stream.py --servers daphne,uvicorn --runs 3

Only 127.0.0.1 is contacted. Every run is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import throughput  # noqa: E402
from bench.throughput import Run, Server  # noqa: E402

SSE_NEXT = b"event: next\n"
NDJSON_NEXT = b'{"t":"next"'
TERMINAL = {"sse": (b"event: end\n", b"event: error\n"), "ndjson": (b'{"t":"end"', b'{"t":"error"')}
ACCEPT = {"sse": "text/event-stream", "ndjson": "application/x-ndjson"}


async def receive_http(base: str, fmt: str, n: int, size: int) -> tuple[float, float, int]:
    """One HTTP stream: (seconds from request to end record, seconds to first item, items)."""
    separator = b"\n\n" if fmt == "sse" else b"\n"
    next_prefix = SSE_NEXT if fmt == "sse" else NDJSON_NEXT
    end_prefix, error_prefix = TERMINAL[fmt]
    count = 0
    first = None
    pending = b""
    ended = False
    async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=30) as client:
        t0 = time.perf_counter()
        async with client.stream(
            "GET", "/streams/bench.items", params={"n": n, "size": size}, headers={"Accept": ACCEPT[fmt]}
        ) as response:
            if response.status_code != 200:
                raise RuntimeError(f"{fmt}: HTTP {response.status_code}: {(await response.aread())[:300]!r}")
            async for chunk in response.aiter_raw():
                records = (pending + chunk).split(separator)
                pending = records.pop()
                for record in records:
                    if record.startswith(next_prefix):
                        count += 1
                        if first is None:
                            first = time.perf_counter()
                    elif record.startswith(end_prefix):
                        ended = True
                    elif record.startswith(error_prefix):
                        raise RuntimeError(f"{fmt}: the stream failed: {record[:300]!r}")
            t_end = time.perf_counter()
    if not ended:
        raise RuntimeError(f"{fmt}: the stream was cut before its end record")
    return t_end - t0, (first or t_end) - t0, count


def measure(server: Server, case: str, n: int, size: int, window: int | None, timeout: float) -> Run:
    if case == "websocket":
        url = f"ws://127.0.0.1:{server.port}/ws/"
        coro = throughput.receive_stream(url, "a", n, size, window)
    else:
        coro = receive_http(f"http://127.0.0.1:{server.port}", case, n, size)
    return throughput.timed_run(server, f"{server.name} {case}", n, lambda: asyncio.run(asyncio.wait_for(coro, timeout)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50_000, help="items per stream (default 50000)")
    parser.add_argument("--size", type=int, default=100, help="approximate JSON bytes per item (default 100)")
    parser.add_argument("--window", type=int, default=256, help="WebSocket credit window, 0 = none (default 256)")
    parser.add_argument("--runs", type=int, default=1, help="runs per case; the median is shown (default 1)")
    parser.add_argument("--servers", default="daphne", help="comma-separated: daphne,uvicorn (default daphne)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per run (default 120)")
    parser.add_argument("--warmup", type=int, default=2000, help="items of one warm-up run per case (default 2000)")
    args = parser.parse_args(argv)
    if not 1 <= args.items <= 10_000_000 or not 1 <= args.runs <= 50 or not 0 <= args.size <= 100_000:
        parser.error("--items must be 1..10^7, --runs 1..50, --size 0..100000")
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not servers or set(servers) - {"daphne", "uvicorn"}:
        parser.error("--servers takes daphne and/or uvicorn")
    window = args.window or None
    cases = ["sse", "ndjson", "websocket"]

    print(
        f"# {args.items} items of ~{args.size} B, {args.runs} run(s) per case, one connection; "
        f"httpx {httpx.__version__} / websockets client, Python {sys.version.split()[0]}",
        flush=True,
    )
    results: list[tuple[str, str, list[Run]]] = []
    for name in servers:
        server = Server(name)
        try:
            server.wait_ready()
            runs: dict[str, list[Run]] = {case: [] for case in cases}
            if args.warmup:
                for case in cases:
                    measure(server, case, args.warmup, args.size, window, args.timeout)
            for _ in range(args.runs):
                for case in cases:
                    runs[case].append(measure(server, case, args.items, args.size, window, args.timeout))
                    print(".", end="", flush=True)
            results.extend((name, case, runs[case]) for case in cases)
        finally:
            server.stop()
    print()

    header = (
        f"{'server':<8} {'transport':<22} {'items/s':>10} {'vs websocket':>12} "
        f"{'first item ms':>13} {'server us/item':>14} {'client cpu':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, case, runs in results:
        ws = next(r for n, c, r in results if n == name and c == "websocket")
        rate = statistics.median(r.items_per_s for r in runs)
        ws_rate = statistics.median(r.items_per_s for r in ws)
        label = {"sse": "HTTP SSE", "ndjson": "HTTP NDJSON"}.get(case, f"WebSocket W={window or 'none'}")
        print(
            f"{name:<8} {label:<22} {rate:>10,.0f} {rate / ws_rate:>12.2f} "
            f"{statistics.median(r.first_ms for r in runs):>13.2f} "
            f"{statistics.median(r.server_us_per_item for r in runs):>14.1f} "
            f"{statistics.median(r.client_cpu for r in runs):>9.0%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
