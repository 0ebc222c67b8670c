"""Presence under churn: members joining and leaving a room over 2 processes while watchers receive the events.

Two daphne processes of the example project (plus bench/presence_asgi.py's
methods) on Redis. ``--members`` members (default 1,000) join the room,
spread over both processes; then, for ``--seconds`` (default 10), one member
leaves and a new one joins ``--churn / 2`` times a second (default 100 joins
+ leaves per second) while ``--watchers`` watchers (default 1,000), also on
both processes, receive every join and leave. Members and watchers are calls
multiplexed over ``--connections`` WebSocket connections per role (a call per
member or watcher, as many as a page would open).

Reported:

* **join-to-event latency**: each member joins with ``info = {"t": <wall
  clock at the call>}``; every watcher, on the join event, takes the
  difference (p50, p99, max, and events that never came);
* **Redis commands per join**: ``INFO commandstats`` before and after the
  initial joins, counting commands run inside scripts too (the script call
  itself is one round trip);
* **idle Redis commands per second** with every member in the room: the
  heartbeats (one per process per interval, whatever the number of members:
  no per-member timers);
* **presence() read**: ``presence(topic)`` timed inside a server with every
  member in the room (p50, p99 over 50 reads).

    .venv/bin/python bench/presence.py
    .venv/bin/python bench/presence.py --members 200 --watchers 200 --churn 20 --seconds 5

Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0; the bench flushes
nothing, it uses a topic of its own). Only 127.0.0.1 is contacted; every
phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from throughput import free_port, server_command, wait_for_port  # noqa: E402

SUBPROTOCOL = "streaming.v1.json"


class Conn:
    """One WebSocket connection carrying many calls; frames are routed to a callback by call id."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 1
        self.handlers: dict[int, Any] = {}
        # A watcher connection hands every frame's text to one function, unparsed: the instrument
        # parses only what it times (joins), so its own cost is not counted as the server's latency.
        self.raw: Any = None
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, url: str) -> Conn:
        ws = await websockets.connect(url, subprotocols=[SUBPROTOCOL], compression=None, proxy=None,
                                      max_size=2**22, open_timeout=10)
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert hello["t"] == "hello", hello
        return cls(ws)

    async def _read(self) -> None:
        async for raw in self.ws:
            now = time.time()
            if self.raw is not None:
                self.raw(raw, now)
                continue
            frame = json.loads(raw)
            handler = self.handlers.get(frame.get("id"))
            if handler is not None:
                handler(frame, now)

    async def call(self, method: str, args: dict[str, Any], handler: Any) -> int:
        call_id = self.next_id
        self.next_id += 1
        self.handlers[call_id] = handler
        await self.ws.send(json.dumps({"t": "call", "id": call_id, "m": method, "a": args}))
        return call_id

    async def cancel(self, call_id: int) -> None:
        self.handlers.pop(call_id, None)
        await self.ws.send(json.dumps({"t": "cancel", "id": call_id}))

    async def close(self) -> None:
        self.reader.cancel()
        await self.ws.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def command_calls(client: redis.Redis) -> int:
    return sum(int(stats["calls"]) for stats in client.info("commandstats").values())


async def run(args: argparse.Namespace) -> dict[str, Any]:
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
           "DJANGO_SETTINGS_MODULE": "project.settings"}
    tmp = Path(tempfile.mkdtemp(prefix="presence-"))
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(server_command("daphne", port, "bench.presence_asgi:application"), cwd=ROOT, env=env,
                         stdout=open(tmp / f"server{port}.log", "wb"), stderr=subprocess.STDOUT)
        for port in ports
    ]
    conns: list[Conn] = []
    try:
        for process, port in zip(servers, ports):
            wait_for_port(port, process)
        urls = [f"ws://127.0.0.1:{port}/ws/" for port in ports]
        topic = f"bench.presence.{uuid.uuid4().hex[:8]}"
        r = redis.Redis.from_url(redis_url)

        watcher_conns = [await Conn.open(urls[i % 2]) for i in range(args.connections)]
        member_conns = [await Conn.open(urls[i % 2]) for i in range(args.connections)]
        conns = watcher_conns + member_conns
        latencies: list[float] = []
        counting = {"on": False, "joins": 0}

        errors: dict[str, int] = {}

        def on_watch(raw: str, now: float) -> None:
            if '"presence":"join"' in raw:
                if counting["on"]:
                    info = json.loads(raw)["d"].get("info")
                    if isinstance(info, dict):
                        latencies.append((now - info["t"]) * 1000)
            elif '"t":"error"' in raw:
                code = json.loads(raw)["code"]
                errors[code] = errors.get(code, 0) + 1

        def ignore(frame: dict, now: float) -> None:
            pass

        members: list[tuple[Conn, int]] = []

        async def join(index: int) -> None:
            conn = member_conns[index % len(member_conns)]
            call_id = await conn.call("benchpresence.member", {"topic": topic, "info": {"t": time.time()}}, ignore)
            members.append((conn, call_id))

        # Initial joins, counting Redis commands.
        before = command_calls(r)
        for index in range(args.members):
            await join(index)
        reader = member_conns[0]
        for _ in range(600):
            got: dict[str, Any] = {}
            done = asyncio.get_running_loop().create_future()

            def on_read(frame: dict, now: float, got=got, done=done) -> None:
                got.update(frame)
                if not done.done():
                    done.set_result(None)

            await reader.call("benchpresence.read", {"topic": topic, "times": 1}, on_read)
            await asyncio.wait_for(done, 10)
            if got.get("d", {}).get("members") == args.members:
                break
            await asyncio.sleep(0.05)
        after = command_calls(r)
        # The reads above are not joins: subtract their script calls (one each) roughly by measuring one.
        per_join = (after - before) / args.members

        # Idle: every member in, nothing changes.
        idle_before = command_calls(r)
        await asyncio.sleep(args.idle)
        idle_rate = (command_calls(r) - idle_before - 1) / args.idle

        # presence() read cost in the server.
        read_result: dict[str, Any] = {}
        read_done = asyncio.get_running_loop().create_future()

        def on_timed_read(frame: dict, now: float) -> None:
            read_result.update(frame)
            read_done.set_result(None)

        await reader.call("benchpresence.read", {"topic": topic, "times": 50}, on_timed_read)
        await asyncio.wait_for(read_done, 60)
        read_ms = read_result["d"]["ms"]

        # Watchers come once the room is full (the initial joins would only queue events ahead of the churn's).
        for conn in watcher_conns:
            conn.raw = on_watch
        for i in range(args.watchers):
            await watcher_conns[i % len(watcher_conns)].call("benchpresence.watch", {"topic": topic}, None)
        await asyncio.sleep(2)  # a watch is live once its subscription is (no ready frame: not resumable)

        # Churn: a leave and a join per step, --churn/2 steps a second.
        counting["on"] = True
        steps = int(args.churn / 2 * args.seconds)
        interval = 2 / args.churn
        start = time.monotonic()
        index = args.members
        for step in range(steps):
            target = start + step * interval
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            conn, call_id = members.pop(0)
            await conn.cancel(call_id)
            await join(index)
            index += 1
        await asyncio.sleep(args.drain)
        counting["on"] = False
        expected = steps * args.watchers
        return {
            "members": args.members, "watchers": args.watchers, "churn": args.churn, "seconds": args.seconds,
            "join_events_expected": expected, "join_events_received": len(latencies),
            "p50_ms": percentile(latencies, 0.50), "p99_ms": percentile(latencies, 0.99),
            "max_ms": max(latencies) if latencies else float("nan"),
            "watchers_cut_off": errors or "none",
            "redis_commands_per_join": per_join, "idle_redis_commands_per_s": idle_rate,
            "presence_read_p50_ms": percentile(read_ms, 0.5), "presence_read_p99_ms": percentile(read_ms, 0.99),
        }
    finally:
        for conn in conns:
            try:
                await conn.close()
            except Exception:
                pass
        for process in servers:
            process.terminate()
        for process in servers:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--churn", type=float, default=100.0, help="joins + leaves per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=20, help="WebSocket connections per role")
    parser.add_argument("--idle", type=float, default=6.0, help="seconds of the idle phase")
    parser.add_argument("--drain", type=float, default=3.0, help="seconds to wait for the last events")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    for key, value in result.items():
        print(f"{key:28} {value:.2f}" if isinstance(value, float) else f"{key:28} {value}")


if __name__ == "__main__":
    main()
