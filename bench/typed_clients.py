"""Server-stream throughput through the generated typed clients against the plain clients, in the same run.

One daphne process of the example project (on a throw-away SQLite database,
migrated here); ``interop.count`` with ``--items`` items over one WebSocket
connection, received by:

* ``python plain``: ``async for item in client.stream("interop.count", {"n": N})``;
* ``python typed``: ``async for item in Api(client).interop.count(n=N)``, the
  module ``manage.py streaming_codegen python`` writes;
* ``node plain``: ``client.stream("interop.count", {n: N})`` of client.js in Node;
* ``node typed``: ``createApi(client).interop.count({n: N})`` of the ``api.ts``
  that ``streaming_codegen typescript`` writes, compiled by ``tsc``.

Plain and typed runs alternate on the same connection; the table shows the
median items/s of ``--runs`` runs and typed/plain (the goal: at least 0.95).
Needs Node 20+ and ``node_modules`` (``npm ci``) for the Node rows.

    .venv/bin/python bench/typed_clients.py                    # 20,000 items, 5 runs
    .venv/bin/python bench/typed_clients.py --items 5000 --runs 3

Only 127.0.0.1 is contacted; the server is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NODE_BENCH = """
import { StreamClient } from "./client.js";
import { createApi } from "./api.js";

declare const process: { argv: string[] };

async function main(url: string, items: number, runs: number): Promise<void> {
  const client = new StreamClient(url, { window: 1024 });
  const api = createApi(client);
  const results: { plain: number[]; typed: number[] } = { plain: [], typed: [] };
  for (let run = 0; run < runs; run++) {
    let started = performance.now();
    let count = 0;
    for await (const item of client.stream<{ i: number }>("interop.count", { n: items })) count += item.i >= 0 ? 1 : 0;
    results.plain.push(count / ((performance.now() - started) / 1000));
    started = performance.now();
    count = 0;
    for await (const item of api.interop.count({ n: items })) count += item.i >= 0 ? 1 : 0;
    results.typed.push(count / ((performance.now() - started) / 1000));
  }
  console.log(JSON.stringify(results));
  await client.close();
}

void main(process.argv[2], Number(process.argv[3]), Number(process.argv[4]));
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(tmp: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"],
        cwd=ROOT, env=env, stdout=open(tmp / "daphne.log", "wb"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited:\n{(tmp / 'daphne.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                process.port = port  # type: ignore[attr-defined]
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("daphne did not listen within 30 s")


async def python_rates(url: str, module: Path, items: int, runs: int) -> dict[str, list[float]]:
    from streaming_app.client import StreamClient

    spec = importlib.util.spec_from_file_location("bench_typed_api", module)
    assert spec is not None and spec.loader is not None
    generated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generated)
    rates: dict[str, list[float]] = {"plain": [], "typed": []}
    async with StreamClient(url, window=1024) as client:
        api = generated.Api(client)
        for _ in range(runs):
            started = time.perf_counter()
            count = 0
            async for item in client.stream("interop.count", {"n": items}):
                count += item["i"] >= 0
            rates["plain"].append(count / (time.perf_counter() - started))
            started = time.perf_counter()
            count = 0
            async for item in api.interop.count(n=items):
                count += item["i"] >= 0
            rates["typed"].append(count / (time.perf_counter() - started))
    return rates


def node_rates(url: str, folder: Path, items: int, runs: int) -> dict[str, list[float]] | None:
    node = shutil.which("node")
    tsc = ROOT / "node_modules" / "typescript" / "bin" / "tsc"
    if node is None or not tsc.exists():
        print("node or node_modules/typescript missing (npm ci): no Node rows", file=sys.stderr)
        return None
    (folder / "bench.ts").write_text(NODE_BENCH)
    (folder / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {"strict": True, "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
                            "lib": ["ES2022", "DOM", "DOM.Iterable"], "types": []},
        "files": ["api.ts", "bench.ts"],
    }))
    subprocess.run([node, str(tsc), "-p", "tsconfig.json"], cwd=folder, check=True, timeout=300)
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    flags = ["--experimental-websocket"] if int(version.lstrip("v").split(".")[0]) < 22 else []
    out = subprocess.run([node, *flags, "bench.js", url, str(items), str(runs)], cwd=folder, capture_output=True,
                         text=True, timeout=600, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "DJANGO_SETTINGS_MODULE": "project.settings"}
        env.pop("REDIS_URL", None)
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=300)
        subprocess.run([*manage, "streaming_codegen", "python", "-o", str(tmp / "typed_api.py")], cwd=ROOT, env=env,
                       check=True, timeout=300, stdout=subprocess.DEVNULL)
        subprocess.run([*manage, "streaming_codegen", "typescript", "-o", str(tmp / "ts")], cwd=ROOT, env=env,
                       check=True, timeout=300, stdout=subprocess.DEVNULL)
        server = start_server(tmp, env)
        url = f"ws://127.0.0.1:{server.port}/ws/"  # type: ignore[attr-defined]
        try:
            rows: dict[str, dict[str, list[float]] | None] = {
                "python": asyncio.run(python_rates(url, tmp / "typed_api.py", options.items, options.runs)),
                "node": node_rates(url, tmp / "ts", options.items, options.runs),
            }
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    print(f"interop.count, {options.items} items, median of {options.runs} runs (items/s)")
    print(f"{'client':<8} {'plain':>10} {'typed':>10} {'typed/plain':>12}")
    for client, rates in rows.items():
        if rates is None:
            continue
        plain, typed = statistics.median(rates["plain"]), statistics.median(rates["typed"])
        print(f"{client:<8} {plain:>10.0f} {typed:>10.0f} {typed / plain:>12.2f}")


if __name__ == "__main__":
    main()
