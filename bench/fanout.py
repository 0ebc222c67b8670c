"""Broadcast fan-out: streaming_app topics against plain Channels groups, on Redis.

``--subscribers`` WebSocket subscribers (default 1,000) split evenly across two
daphne processes; a publisher in this process; the subscribers in two receiver
subprocesses (so one Python process is not the limit). Two phases:

1. fixed rate: ``--rate`` publishes/s (default 20) for ``--seconds`` (default 5);
2. flat out: ``--burst`` publishes (default 200) as fast as the publisher goes.

Reported per phase: deliveries/s (deliveries over the time from the first
publish to the last delivery), p50/p99 publish-to-receive latency, loss
(expected deliveries that never came), and CPU time per delivery of the two
servers together and of the two receivers together (Linux only). "cut off,
told" counts, over the run, the subscribers that got an error frame instead of
their events, e.g. ``resource_exhausted`` when a burst outgrows
``SUBSCRIPTION_BUFFER``: loss the server announced, not silent loss.

The receivers are the instrument, so they are kept cheap: by default each
connection is websockets' Sans-I/O ``ClientProtocol`` fed from asyncio protocol
callbacks on uvloop, and a frame is timed when its bytes arrive. With
``--client asyncio`` they use websockets' asyncio client instead (a task and a
queue per connection, asyncio's own loop), as this benchmark did at first:
on 2 cores those receivers took about 34 µs of CPU per delivery, close to the
servers' own cost, and their backlog counted as latency. The publisher stamps
each event just before publishing it and keeps its garbage collector off
during the phases, so its own pauses do not count either.

Variants, one after the other:

* ``streaming_app``: subscribers call ``interop.subscribe``; the publisher
  calls ``RedisBroker.apublish`` (what ``streaming_app.apublish`` does);
* ``streaming_app+history``: the same with the topic keeping history
  (10,000 events, an hour), which resuming needs: the publish script also
  appends to a Redis stream and trims it;
* ``streaming_app+default gc``: the first with ``GC_GEN0_THRESHOLD`` None, so
  the servers keep Python's garbage-collector thresholds (what it costs
  without streaming_app.gc_tuning);
* ``streaming_app+uvicorn``: the first served by uvicorn instead of daphne;
* ``plain core``: a Channels consumer joining a group per connection, and
  ``group_send`` on channels_redis's ``RedisChannelLayer`` (what users write today);
* ``plain pubsub``: the same consumer on ``RedisPubSubChannelLayer``;
* ``plain pubsub+uvicorn``: the best plain set-up we found: the pub/sub layer,
  served by uvicorn, with a consumer that skips Channels' per-message
  ``aclose_old_connections()`` thread hop.

    .venv/bin/python bench/fanout.py
    .venv/bin/python bench/fanout.py --subscribers 200 --variants streaming_app,streaming_app+history

Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0). Only 127.0.0.1 is
contacted; every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from throughput import free_port, python_executable, server_command, wait_for_port  # noqa: E402

TOPIC = "fanout"
SUBPROTOCOL = "streaming.v1.json"


# -- receiver subprocess ---------------------------------------------------------------------


async def receive(urls: list[str], streaming: bool, out: str, client: str) -> None:
    """Hold the connections, record each delivery's latency, stop when told on stdin."""
    latencies = {1: array.array("d"), 2: array.array("d")}
    last_at = {1: 0.0, 2: 0.0}
    live: set[int] = set()
    told: dict[str, int] = {}  # error frames by code: subscribers the server cut off, and told

    def record(index: int, text: str | bytes, now: float) -> None:
        if streaming:
            frame = json.loads(text)
            if frame.get("t") != "next":
                if frame.get("t") == "error":
                    told[frame.get("code")] = told.get(frame.get("code"), 0) + 1
                return
            data = frame["d"]
        else:
            data = json.loads(text)
        phase = data["ph"]
        if phase == 0:
            live.add(index)
            return
        latencies[phase].append(now - data["ts"])
        last_at[phase] = now

    hold = hold_with_protocol if client == "protocol" else hold_with_asyncio
    tasks = []
    for i, url in enumerate(urls):  # in batches: a burst of 500 handshakes overflows daphne's listen backlog
        tasks.append(asyncio.ensure_future(hold(i, url, streaming, record)))
        if i % 50 == 49:
            await asyncio.sleep(0.2)
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    reported = False
    started = time.monotonic()
    while True:
        try:
            line = (await asyncio.wait_for(reader.readline(), 0.2)).decode().strip()
        except asyncio.TimeoutError:
            line = ""
        if not reported and len(live) == len(urls):
            print("live", flush=True)
            reported = True
        if not reported and time.monotonic() - started > 30:
            errors = [repr(t.exception())[:200] for t in tasks if t.done() and t.exception() is not None]
            print(f"receiver: {len(live)} of {len(urls)} live, errors: {errors[:3]}", file=sys.stderr, flush=True)
            started = time.monotonic()
        if line == "stop" or reader.at_eof():
            break
    failed = sum(1 for task in tasks if task.done() and task.exception() is not None)
    Path(out).write_text(json.dumps({
        "latencies": {str(k): list(v) for k, v in latencies.items()},
        "last_at": last_at, "failed_connections": failed, "told": told,
    }))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


Record = Callable[[int, "str | bytes", float], None]
CALL = json.dumps({"t": "call", "id": 1, "m": "interop.subscribe", "a": {"topic": TOPIC}})


class Receiver(asyncio.Protocol):
    """One subscriber on websockets' Sans-I/O protocol, read in the event loop's protocol callbacks.

    No task per connection and no queue per message: a frame is timed when its
    bytes arrive, so the figure is the server's latency and not the receiver's
    own backlog (500 asyncio clients in one process cost about as much CPU per
    frame as the server sending them).
    """

    def __init__(self, index: int, url: str, streaming: bool, record: Record) -> None:
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.index = index
        self.record = record
        self.ws = ClientProtocol(parse_uri(url), subprotocols=[Subprotocol(SUBPROTOCOL)] if streaming else None,
                                 max_size=None)
        self.hello = streaming  # the first text frame of a streaming connection is hello

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if self.ws.handshake_exc is not None:
                    self.opened.set_exception(self.ws.handshake_exc)
                else:
                    self.opened.set_result(None)
            elif event.opcode is Opcode.TEXT:
                if self.hello:
                    self.hello = False
                    self.ws.send_text(CALL.encode())
                else:
                    self.record(self.index, event.data, now)
        self.flush()

    def flush(self) -> None:
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            else:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed before the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)


async def hold_with_protocol(index: int, url: str, streaming: bool, record: Record) -> None:
    """One connection on :class:`Receiver`, held until the server closes it or the task is cancelled."""
    host, port = url.split("/")[2].split(":")
    transport, receiver = await asyncio.get_running_loop().create_connection(
        lambda: Receiver(index, url, streaming, record), host, int(port)
    )
    try:
        await asyncio.wait_for(receiver.opened, 30)
        await receiver.closed
        raise ConnectionError("the server closed the connection")
    finally:
        transport.close()


async def hold_with_asyncio(index: int, url: str, streaming: bool, record: Record) -> None:
    """One connection on websockets' asyncio client: a task per connection, a queue per message."""
    import websockets

    async with websockets.connect(url, subprotocols=[SUBPROTOCOL] if streaming else None, max_queue=None,
                                  ping_interval=None, open_timeout=30) as ws:
        if streaming:
            await ws.recv()  # hello
            await ws.send(CALL)
        async for text in ws:
            record(index, text, time.time())


# -- publisher ---------------------------------------------------------------------------------


def payload(phase: int, seq: int) -> str:
    return json.dumps({"ph": phase, "seq": seq, "ts": time.time()})


async def make_publisher(variant: str, redis_url: str):
    if variant.startswith("streaming_app"):
        from django.conf import settings
        from django.test.utils import override_settings

        from streaming_app.brokers.redis import RedisBroker

        # The publisher keeps the history: its settings must say so, as the servers' do.
        history = {"interop.*": {"size": 10_000, "ttl": 3600}} if variant.endswith("+history") else {}
        override = override_settings(STREAMING={**settings.STREAMING, "TOPIC_HISTORY": history})
        override.enable()
        broker = RedisBroker(redis_url, "streaming_app")

        async def close() -> None:
            await broker.close()
            override.disable()

        return lambda text: broker.apublish(f"interop.{TOPIC}", text), close
    if variant.startswith("plain core"):
        from channels_redis.core import RedisChannelLayer as Layer
    else:
        from channels_redis.pubsub import RedisPubSubChannelLayer as Layer
    layer = Layer(hosts=[redis_url])
    return lambda text: layer.group_send(TOPIC, {"type": "bench.message", "text": text}), getattr(layer, "flush", None)


def cpu_seconds(processes: list[subprocess.Popen]) -> float | None:
    """User + system CPU time the processes used so far (Linux's /proc), or None elsewhere."""
    try:
        ticks = sum(sum(map(int, Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13]))
                    for p in processes)
    except (OSError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def run_variant(variant: str, args: argparse.Namespace, redis_url: str) -> dict:
    env = {**os.environ, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "bench.fanout_settings",
           "BENCH_LAYER": "pubsub" if variant.startswith("plain pubsub") else "core", "PYTHONPATH": str(ROOT),
           "BENCH_HISTORY": "1" if variant.endswith("+history") else "0",
           "BENCH_DEFAULT_GC": "1" if variant.endswith("+default gc") else "0"}
    tmp = Path(tempfile.mkdtemp(prefix="fanout-"))
    ports = [free_port(), free_port()]
    server = "uvicorn" if variant.endswith("+uvicorn") else "daphne"
    servers = [
        subprocess.Popen(server_command(server, port, "bench.fanout_asgi:application"),
                         cwd=ROOT, env=env, stdout=open(tmp / f"server{port}.log", "wb"), stderr=subprocess.STDOUT)
        for port in ports
    ]
    receivers: list[subprocess.Popen] = []
    try:
        for process, port in zip(servers, ports):
            wait_for_port(port, process)
        streaming = variant.startswith("streaming_app")
        path = "ws/" if streaming else "group-direct/" if variant == "plain pubsub+uvicorn" else "group/"
        urls = [f"ws://127.0.0.1:{ports[i % 2]}/{path}" for i in range(args.subscribers)]
        halves = [urls[0::2], urls[1::2]]
        for k, half in enumerate(halves):
            receivers.append(subprocess.Popen(
                [python_executable(), __file__, "--receiver", str(tmp / f"r{k}.json"), "--client", args.client,
                 "--streaming" if streaming else "--plain", *half],
                cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            ))
        publish, close = await make_publisher(variant, redis_url)
        # Probes until every subscriber has one: all are live from then on.
        pending = list(receivers)
        deadline = time.monotonic() + 120
        os.set_blocking(receivers[0].stdout.fileno(), False)
        os.set_blocking(receivers[1].stdout.fileno(), False)
        while pending and time.monotonic() < deadline:
            await publish(payload(0, 0))
            await asyncio.sleep(0.2)
            pending = [r for r in pending if not (r.stdout.readline() or b"").startswith(b"live")]
        if pending:
            raise RuntimeError("subscribers did not go live within 120 s")
        await asyncio.sleep(0.5)

        # The publisher stamps each event before publishing it: a collection of
        # this process's own heap (Django, the previous variant's results) in
        # between would count against the servers. Nothing it allocates in the
        # phases is cyclic garbage.
        gc.collect()
        gc.disable()
        starts = {}
        cpu = {"server": [cpu_seconds(servers)], "receiver": [cpu_seconds(receivers)]}
        starts[1] = time.time()
        count1 = int(args.rate * args.seconds)
        t0 = time.monotonic()
        for seq in range(count1):
            delay = t0 + seq / args.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await publish(payload(1, seq))
        await asyncio.sleep(1.0)
        cpu["server"].append(cpu_seconds(servers))
        cpu["receiver"].append(cpu_seconds(receivers))
        starts[2] = time.time()
        for seq in range(args.burst):
            await publish(payload(2, seq))
        publish_seconds = time.time() - starts[2]
        await asyncio.sleep(args.drain)
        cpu["server"].append(cpu_seconds(servers))
        cpu["receiver"].append(cpu_seconds(receivers))
        gc.enable()
        if close is not None:
            await close()
        for receiver in receivers:
            receiver.stdin.write(b"stop\n")
            receiver.stdin.flush()
        for receiver in receivers:
            receiver.wait(60)
        results = [json.loads((tmp / f"r{k}.json").read_text()) for k in range(2)]
    finally:
        for process in [*receivers, *servers]:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    told: dict[str, int] = {}
    for r in results:
        for code, n in r["told"].items():
            told[code] = told.get(code, 0) + n
    row = {"variant": variant, "failed_connections": sum(r["failed_connections"] for r in results),
           "told": ", ".join(f"{n} {code}" for code, n in sorted(told.items())) or "none",
           "publish_s_burst": publish_seconds}
    for phase, count in ((1, count1), (2, args.burst)):
        lat = [v for r in results for v in r["latencies"][str(phase)]]
        last = max(r["last_at"][str(phase)] for r in results) or starts[phase]
        expected = count * args.subscribers
        row[phase] = {
            "deliveries": len(lat), "expected": expected,
            "per_s": len(lat) / max(last - starts[phase], 1e-9),
            "p50_ms": percentile(lat, 0.5) * 1000, "p99_ms": percentile(lat, 0.99) * 1000,
            "loss": 1 - len(lat) / expected,
        }
        for side, times in cpu.items():
            used = None if None in times[phase - 1 : phase + 1] else times[phase] - times[phase - 1]
            row[phase][f"{side}_us"] = used / len(lat) * 1e6 if used is not None and lat else None
    return row


def micros(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--drain", type=float, default=10.0, help="seconds to wait for deliveries after the burst")
    parser.add_argument("--variants",
                        default="streaming_app,streaming_app+history,streaming_app+default gc,streaming_app+uvicorn,"
                                "plain core,plain pubsub,plain pubsub+uvicorn")
    parser.add_argument("--client", choices=["protocol", "asyncio"], default="protocol",
                        help="receivers: websockets' Sans-I/O protocol in uvloop callbacks (default), "
                             "or its asyncio client, a task per connection on asyncio's loop")
    parser.add_argument("--receiver", help=argparse.SUPPRESS)
    parser.add_argument("--streaming", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.receiver:
        main = receive(rest, args.streaming, args.receiver, args.client)
        if args.client == "protocol":
            import uvloop  # uvicorn[standard], a dev dependency, installs it

            uvloop.run(main)
        else:
            asyncio.run(main)
        return
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.fanout_settings")
    os.environ.setdefault("REDIS_URL", redis_url)
    import django

    django.setup()
    rows = [asyncio.run(run_variant(v.strip(), args, redis_url)) for v in args.variants.split(",")]
    print(f"\n{args.subscribers} subscribers on 2 server processes (daphne, or uvicorn where named), Redis {redis_url}")
    print(f"phase 1: {args.rate:g} publishes/s for {args.seconds:g} s; phase 2: {args.burst} publishes flat out\n")
    print(f"receivers: {args.client}; CPU µs/delivery: the servers' and the receivers' CPU time over the phase\n")
    print("| variant | phase | deliveries/s | p50 ms | p99 ms | loss | failed conns | cut off, told | publishes/s "
          "| server CPU µs/delivery | receiver CPU µs/delivery |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        for phase, name in ((1, f"{args.rate:g}/s"), (2, "flat out")):
            p = row[phase]
            rate = f"{args.burst / row['publish_s_burst']:,.0f}" if phase == 2 else f"{args.rate:g}"
            print(f"| {row['variant']} | {name} | {p['per_s']:,.0f} | {p['p50_ms']:.1f} | {p['p99_ms']:.1f} | "
                  f"{p['loss']:.1%} | {row['failed_connections']} | {row['told']} | {rate} | {micros(p['server_us'])} | "
                  f"{micros(p['receiver_us'])} |")


if __name__ == "__main__":
    main()
