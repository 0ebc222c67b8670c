"""Soak: mixed load on two daphne processes, with workers killed and Redis restarted.

For ``--minutes`` (default 10) this runs, against two daphne processes of the
example project sharing a private Redis (started here, on a free port, so
restarting it disturbs nobody) and the database of ``DATABASE_URL``:

* resumable subscribers of ``interop.soak-<run>`` that reconnect (to either
  process) and resume from the last event id they processed;
* a publisher calling ``interop.publish`` with a sequence number, counting
  only the events whose call ended (acknowledged);
* unary calls (``interop.empty``), short streams (``interop.count`` with
  credit) and model changes (``notes.add``);
* slow clients (an uncredited ``interop.count`` they never read) and
  misbehaving ones (lone surrogates, binary frames, broken JSON);
* every minute one process is SIGKILLed and started again on its port; once,
  half-way, Redis is restarted (its history is lost: a resume across that is
  told ``recovered: false``, which is counted apart, as announced loss).

Printed: RSS of each process every 10 s, then calls/s, errors by code, close
codes, and for the subscribers: events lost (acknowledged, never received,
with no ``recovered: false`` to announce it) and duplicated. Goals: 0 lost,
0 duplicated, no 4500, RSS growth under 10% after the first minute.

    .venv/bin/python bench/soak.py --minutes 2

Needs redis-server on PATH and a migrated database (DATABASE_URL). Only
127.0.0.1 is contacted; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent
EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception|Exit|Closed|Full)\b")  # what a traceback ends with
SUBPROTOCOL = "streaming.v1.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


class Processes:
    """The private Redis and the two daphne processes, restartable on their ports."""

    def __init__(self, workdir: Path, app: str = "project.asgi:application", debug: bool = False) -> None:
        self.workdir = workdir
        self.app = app
        # As deployed: DEBUG off (with a key of the run's own, as the settings demand then).
        self.debug_env = {} if debug else {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": f"soak-{uuid.uuid4().hex}"}
        self.redis_port = free_port()
        self.ports = [free_port(), free_port()]
        self.redis: subprocess.Popen | None = None
        self.servers: list[subprocess.Popen | None] = [None, None]

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.redis_port)

    def restart_redis(self) -> None:
        assert self.redis is not None
        self.redis.terminate()
        self.redis.wait(10)
        self.start_redis()

    def start_server(self, index: int) -> None:
        env = {**os.environ, "REDIS_URL": self.redis_url, "PYTHONUNBUFFERED": "1", "TRACE_DIR": str(self.workdir),
               **self.debug_env}
        log = open(self.workdir / f"daphne-{index}.log", "ab")
        self.servers[index] = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.ports[index]), self.app],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        wait_for_port(self.ports[index], 20.0 if self.app.startswith("project.") else 120.0)  # a probe with tracemalloc is slow

    def kill_server(self, index: int) -> None:
        process = self.servers[index]
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    def rss_mib(self, index: int) -> float | None:
        process = self.servers[index]
        try:
            with open(f"/proc/{process.pid}/status") as status:  # type: ignore[union-attr]
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except (OSError, AttributeError):
            return None
        return None

    def stop(self) -> None:
        for process in [*self.servers, self.redis]:
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


class Stats:
    def __init__(self) -> None:
        self.calls = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.closes: collections.Counter[int | None] = collections.Counter()
        self.acked: set[int] = set()
        self.received: dict[int, collections.Counter[int]] = {}
        self.announced: dict[int, int] = collections.Counter()  # recovered: false per subscriber


async def connect(url: str):
    ws = await websockets.connect(url, subprotocols=[SUBPROTOCOL], max_size=None, open_timeout=5)
    json.loads(await asyncio.wait_for(ws.recv(), 5))  # hello
    return ws


async def until_terminal(ws, call_id: int, stats: Stats, timeout: float = 10) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("id") == call_id and frame.get("t") in ("end", "error"):
                stats.calls += 1
                if frame["t"] == "error":
                    stats.errors[frame["code"]] += 1
                return frame


def urls(processes: Processes) -> list[str]:
    return [f"ws://127.0.0.1:{port}/ws/" for port in processes.ports]


async def caller(processes: Processes, stats: Stats, stop: asyncio.Event, index: int, work) -> None:
    """Reconnect (to alternating processes) and run ``work(ws)`` until stopped; count closes."""
    turn = index
    while not stop.is_set():
        url = urls(processes)[turn % 2]
        turn += 1
        try:
            ws = await connect(url)
        except (OSError, websockets.WebSocketException, TimeoutError):
            await asyncio.sleep(0.5)
            continue
        try:
            await work(ws)
        except websockets.ConnectionClosed:
            pass
        except TimeoutError:
            stats.errors["client timeout"] += 1
        finally:
            await ws.close()
            stats.closes[ws.close_code] += 1
        await asyncio.sleep(0.2)


def unary_work(stats: Stats, stop: asyncio.Event):
    async def work(ws) -> None:
        call_id = 0
        while not stop.is_set():
            call_id += 1
            await ws.send(json.dumps({"t": "call", "id": call_id, "m": "interop.empty"}))
            await until_terminal(ws, call_id, stats)
            call_id += 1
            await ws.send(json.dumps({"t": "call", "id": call_id, "m": "interop.count", "a": {"n": 20}, "credit": 8}))
            async with asyncio.timeout(10):
                while True:
                    frame = json.loads(await ws.recv())
                    if frame.get("id") == call_id and frame["t"] == "next" and frame["d"]["i"] % 8 == 7:
                        await ws.send(json.dumps({"t": "credit", "id": call_id, "n": 8}))
                    if frame.get("id") == call_id and frame["t"] in ("end", "error"):
                        stats.calls += 1
                        if frame["t"] == "error":
                            stats.errors[frame["code"]] += 1
                        break
            await asyncio.sleep(0.01)
    return work


def notes_work(stats: Stats, stop: asyncio.Event):
    async def work(ws) -> None:
        call_id = 0
        while not stop.is_set():
            call_id += 1
            await ws.send(json.dumps({"t": "call", "id": call_id, "m": "notes.add", "a": {"text": f"soak {call_id}"}}))
            await until_terminal(ws, call_id, stats)
            await asyncio.sleep(0.2)
    return work


def publisher_work(stats: Stats, stop: asyncio.Event, topic: str, counter: list[int]):
    async def work(ws) -> None:
        call_id = 0
        while not stop.is_set():
            call_id += 1
            counter[0] += 1
            n = counter[0]
            await ws.send(json.dumps({"t": "call", "id": call_id, "m": "interop.publish",
                                      "a": {"topic": topic, "data": {"n": n}}}))
            if (await until_terminal(ws, call_id, stats))["t"] == "end":
                stats.acked.add(n)
            await asyncio.sleep(0.02)
    return work


def subscriber_work(stats: Stats, stop: asyncio.Event, topic: str, index: int, last: dict[int, str | None]):
    received = stats.received.setdefault(index, collections.Counter())

    async def work(ws) -> None:
        frame = {"t": "call", "id": 1, "m": "interop.subscribe", "a": {"topic": topic}}
        if last.get(index):
            frame["resume"] = last[index]
        await ws.send(json.dumps(frame))
        while not stop.is_set():
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 1))
            except TimeoutError:
                continue
            if message.get("id") != 1:
                continue
            if message["t"] == "ready":
                if message.get("recovered") is False:
                    stats.announced[index] += 1
                last[index] = message["eid"]
            elif message["t"] == "next":
                received[message["d"]["n"]] += 1
                last[index] = message["eid"]
            elif message["t"] in ("end", "error"):
                stats.errors[f"subscriber {message.get('code')}"] += 1
                return
    return work


def slow_work(stop: asyncio.Event):
    async def work(ws) -> None:
        await ws.send(json.dumps({"t": "call", "id": 1, "m": "interop.count", "a": {"n": 10**8}}))
        ws.transport.pause_reading()
        for _ in range(100):
            if stop.is_set():
                return
            await asyncio.sleep(0.1)
    return work


def misbehaving_work(stop: asyncio.Event):
    bad = ['{"t":"ping","d":"\\ud800"}', b"\x00\xff", "{", '{"t":"call","id":-1}', '{"t":"ping","d":1e999}']

    async def work(ws) -> None:
        for n in range(15):
            await ws.send(bad[n % len(bad)])
            await asyncio.sleep(0.05)
        for _ in range(20):
            if stop.is_set():
                return
            await asyncio.sleep(0.1)
    return work


async def chaos(processes: Processes, stop: asyncio.Event, minutes: float, log: list[str], kill_every: float) -> None:
    started = time.monotonic()
    kills = 0
    redis_restarted = False
    while not stop.is_set():
        await asyncio.sleep(1)
        elapsed = time.monotonic() - started
        if not redis_restarted and elapsed >= minutes * 30:
            await asyncio.to_thread(processes.restart_redis)
            redis_restarted = True
            log.append(f"{elapsed:6.0f}s redis restarted")
        if kill_every and elapsed >= (kills + 1) * kill_every:
            index = kills % 2
            await asyncio.to_thread(processes.kill_server, index)
            await asyncio.to_thread(processes.start_server, index)
            kills += 1
            log.append(f"{elapsed:6.0f}s process {index} SIGKILLed and started again")


async def sample_rss(processes: Processes, stop: asyncio.Event, samples: list[tuple[float, list]]) -> None:
    started = time.monotonic()
    while not stop.is_set():
        samples.append((time.monotonic() - started, [processes.rss_mib(i) for i in range(2)]))
        try:
            await asyncio.wait_for(stop.wait(), 10)
        except TimeoutError:
            pass


async def run(minutes: float, kill_every: float = 60.0, probe: bool = False, debug: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        app = "bench.memprobe_asgi:application" if probe else "project.asgi:application"
        processes = Processes(Path(tmp), app, debug)
        try:
            processes.start_redis()
            for index in range(2):
                processes.start_server(index)
        except BaseException:
            processes.stop()  # nothing is left running, whatever failed
            raise
        stats, stop = Stats(), asyncio.Event()
        topic = f"soak-{uuid.uuid4().hex[:8]}"
        counter, last, log, samples = [0], {}, [], []
        tasks = [
            *(caller(processes, stats, stop, i, unary_work(stats, stop)) for i in range(4)),
            caller(processes, stats, stop, 0, notes_work(stats, stop)),
            caller(processes, stats, stop, 1, publisher_work(stats, stop, topic, counter)),
            *(caller(processes, stats, stop, i, subscriber_work(stats, stop, topic, i, last)) for i in range(4)),
            caller(processes, stats, stop, 0, slow_work(stop)),
            caller(processes, stats, stop, 1, misbehaving_work(stop)),
            chaos(processes, stop, minutes, log, kill_every),
            sample_rss(processes, stop, samples),
        ]
        running = [asyncio.ensure_future(task) for task in tasks]
        started = time.monotonic()
        try:
            await asyncio.sleep(minutes * 60)
            if probe:  # collect and trim, under load, before the clients stop (bench/memprobe_asgi.py)
                for process in processes.servers:
                    if process is not None and process.poll() is None:
                        process.send_signal(signal.SIGUSR1)
                await asyncio.sleep(3)
            stop.set()
            await asyncio.sleep(3)  # the last events reach the subscribers
            await asyncio.wait(running, timeout=20)
        finally:
            for task in running:
                task.cancel()
            processes.stop()
        elapsed = time.monotonic() - started
        server_lines = [
            line for index in range(2)
            for line in (Path(tmp) / f"daphne-{index}.log").read_text(errors="replace").splitlines()
            if "streaming_app" in line or "Traceback" in line or EXCEPTION_LINE.match(line)
        ]
        traces = {path.name: path.read_text() for path in sorted(Path(tmp).glob("trace-*.txt"))}
    print(f"soak: {minutes} min, 2 daphne processes, private Redis, DEBUG {'on' if debug else 'off'}, "
          f"{'a worker SIGKILLed every %gs' % kill_every if kill_every else 'no worker killed'}; "
          "the machine was shared with other work")
    for line in log:
        print("  " + line)
    print("RSS (MiB) per process over time (a killed process starts again from scratch):")
    for at, rss in samples:
        print(f"  {at:6.0f}s  " + "  ".join("-" if r is None else f"{r:7.1f}" for r in rss))
    print(f"calls: {stats.calls} ({stats.calls / elapsed:.0f}/s)")
    print(f"errors by code: {dict(stats.errors)}")
    print(f"close codes: {dict(stats.closes)}")
    print(f"server log lines from streaming_app or with a traceback: {len(server_lines)}")
    for line in server_lines[:15]:
        print("  " + line[:200])
    raised = collections.Counter(line[:160] for line in server_lines if EXCEPTION_LINE.match(line))
    if raised:
        print("exceptions in the server logs, by message:")
        for line, count in raised.most_common(10):
            print(f"  {count:6d}  {line}")
    for name, text in traces.items():
        print(f"memory probe, {name}:")
        print(text)
    failed = 0
    for index, received in sorted(stats.received.items()):
        lost = sorted(stats.acked - set(received))
        duplicated = sum(count - 1 for count in received.values() if count > 1)
        print(f"subscriber {index}: received {len(received)} of {len(stats.acked)} acknowledged events, "
              f"lost {len(lost)}, duplicated {duplicated}, told recovered=false {stats.announced[index]} times")
        failed += duplicated + (len(lost) if not stats.announced[index] else 0)
    if stats.closes.get(4500):
        failed += 1
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--kill-every", type=float, default=60.0,
                        help="seconds between SIGKILLs of a worker (0: never, to watch one process age)")
    parser.add_argument("--probe", action="store_true",
                        help="serve bench.memprobe_asgi: print each process's memory probe (RSS, registries, and "
                             "what a full collection and malloc_trim give back at the end; TRACE_FRAMES=1 for tracemalloc)")
    parser.add_argument("--debug", action="store_true",
                        help="run the workers with the example project's DEBUG on (off by default, as deployed)")
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.minutes, args.kill_every, args.probe, args.debug)))


if __name__ == "__main__":
    main()
