"""Model change streams under a crowd: ``notes.watch`` against today's per-watcher re-read and DCRF.

``--watchers`` WebSocket watchers (default 1,000) split evenly over two daphne
processes of one variant, on Redis (``REDIS_URL``) and PostgreSQL
(``DATABASE_URL``); a writer process adds ``--rate`` notes/s (default 20) for
``--seconds`` (default 10) through the ORM; every watcher should receive every
note as a ``created`` item. Variants (``--variants``, comma-separated; a
``+users`` suffix signs each watcher in as its own user, with a DRF token in
``Authorization: Bearer``):

* ``notes``: the example project as it is (``project.asgi:application``,
  ``project.settings``), watchers call ``notes.watch``;
* ``legacy``: ``legacy_notes.watch`` (bench/legacy_notes.py), today's
  (7c8ee82) per-watcher re-read kept for comparison, served by the same
  application with ``bench.model_fanout_settings``;
* ``dcrf``: djangochannelsrestframework 1.3's ``@model_observer`` in the peer
  project bench/dcrf_peer (``bench.dcrf_peer.asgi:application``), watchers
  send ``subscribe_to_notes``.

Default: ``notes,notes+users,legacy,dcrf,dcrf+users``. ``--quick`` is a smoke run (50
watchers, 3 s). Printed per variant: deliveries/s, p50/p99 latency from the
write (stamped in the note's text just before ``Note.objects.create``) to the
frame's arrival at the watcher, loss (expected minus received deliveries) with
error frames and closes told apart, PostgreSQL transactions and rows read per
change (``pg_stat_database`` of the bench database, settled and minus an idle
baseline, minus the writer's own INSERT), and the servers' CPU per delivery.
See bench/README.md for how to read it.

    .venv/bin/python bench/model_fanout.py                      # 1,000 watchers, 20/s for 10 s, 5 variants
    .venv/bin/python bench/model_fanout.py --quick              # smoke run
    .venv/bin/python bench/model_fanout.py --watchers 200 --variants notes,dcrf+users

Needs Redis and PostgreSQL, migrated with ``project.settings``; for ``dcrf``,
``pip install -e ".[bench]"``. Only 127.0.0.1 is contacted; every phase is
bounded in time, processes are stopped by PID, and the bench's notes and users
(text ``{"mfb": ...``, usernames ``mfb-<n>``) are deleted before and after.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import gc
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from websockets.frames import Close, Opcode
from websockets.http11 import Response

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fanout import Receiver, cpu_seconds, percentile  # noqa: E402
from throughput import free_port, python_executable, server_command, wait_for_port  # noqa: E402

MARK = "mfb"  # notes' text starts with {"mfb": ...; users are mfb-<n>
DEFAULT_VARIANTS = "notes,notes+users,legacy,dcrf,dcrf+users"
KINDS = {
    "notes": {"settings": "project.settings", "app": "project.asgi:application", "method": "notes.watch",
              "protocol": "streaming"},
    "legacy": {"settings": "bench.model_fanout_settings", "app": "project.asgi:application",
               "method": "legacy_notes.watch", "protocol": "streaming"},
    "dcrf": {"settings": "bench.dcrf_peer.settings", "app": "bench.dcrf_peer.asgi:application",
             "protocol": "dcrf", "writer_import": "bench.dcrf_peer.consumers"},
}
DCRF_SUBSCRIBE = json.dumps({"action": "subscribe_to_notes", "request_id": 1}).encode()


# -- receivers (subprocesses) ---------------------------------------------------------------


class Hub:
    """What one receiver process saw, over all its watchers."""

    def __init__(self, spec: dict) -> None:
        self.tag = spec["tag"]
        self.changes = spec["changes"]
        self.protocol = spec["protocol"]
        self.call = json.dumps({"t": "call", "id": 1, "m": spec.get("method"), "a": {}}).encode()
        self.watchers = len(spec["watchers"])
        self.latencies = array.array("d")
        self.last_at = 0.0
        self.unique = 0
        self.duplicates = 0
        self.live = 0
        self.ready = 0
        self.with_eid = 0
        self.other_ops: dict[str, int] = {}
        self.told: dict[str, int] = {}  # error frames by code
        self.closes: dict[str, int] = {}  # close frames by code
        self.ended = 0

    def count(self, table: dict[str, int], key: Any) -> None:
        table[str(key)] = table.get(str(key), 0) + 1

    def frame(self, w: "Watcher", text: bytes, now: float) -> None:
        frame = json.loads(text)
        if self.protocol == "dcrf":
            act = frame.get("action")
            if frame.get("errors"):
                self.count(self.told, f"dcrf {frame.get('response_status')}")
            elif act == "create":
                self.delivery(w, frame.get("data"), now)
            elif act == "subscribe_to_notes":
                self.went_live(w)
            else:
                self.count(self.other_ops, act)
            return
        t = frame.get("t")
        if t == "next":
            item = frame.get("d") or {}
            op = item.get("op") if isinstance(item, dict) else None
            if op == "created":
                if "eid" in frame:
                    self.with_eid += 1
                self.delivery(w, item.get("data"), now)
            elif op == "snapshot":
                if item.get("last"):
                    self.went_live(w)
            else:
                self.count(self.other_ops, op)
        elif t == "hello":
            w.ws.send_text(self.call)
        elif t == "ping":
            w.ws.send_text(json.dumps({"t": "pong", **({"d": frame["d"]} if "d" in frame else {})}).encode())
        elif t == "ready":  # the new notes.watch opens with it; today's has none
            self.ready += 1
        elif t == "error":
            self.count(self.told, frame.get("code"))
        elif t == "end":
            self.ended += 1

    def went_live(self, w: "Watcher") -> None:
        if not w.live:
            w.live = True
            self.live += 1

    def delivery(self, w: "Watcher", data: Any, now: float) -> None:
        text = data.get("text", "") if isinstance(data, dict) else ""
        if not text.startswith('{"mfb"'):
            return
        note = json.loads(text)
        seq = note.get("seq", -1)
        if note.get("mfb") != self.tag or not 0 <= seq < self.changes:
            return
        if w.seen[seq]:
            self.duplicates += 1
            return
        w.seen[seq] = 1
        self.unique += 1
        self.latencies.append(now - note["ts"])
        self.last_at = now


class Watcher(Receiver):
    """One watcher: fanout.py's Sans-I/O receiver with a bearer token, pongs, and the variant's frames."""

    def __init__(self, index: int, url: str, token: str | None, hub: Hub) -> None:
        super().__init__(index, url, hub.protocol == "streaming", record=None)
        self.token = token
        self.hub = hub
        self.live = False
        self.seen = bytearray(hub.changes)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        request = self.ws.connect()
        if self.token:
            request.headers["Authorization"] = f"Bearer {self.token}"
        self.ws.send_request(request)
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
                    if self.hub.protocol == "dcrf":
                        self.ws.send_text(DCRF_SUBSCRIBE)
            elif event.opcode is Opcode.TEXT:
                self.hub.frame(self, event.data, now)
            elif event.opcode is Opcode.CLOSE:
                code = Close.parse(event.data).code if event.data else 1005
                self.hub.count(self.hub.closes, code)
        self.flush()


async def hold(index: int, url: str, token: str | None, hub: Hub) -> None:
    host, port = url.split("/")[2].split(":")
    transport, watcher = await asyncio.get_running_loop().create_connection(
        lambda: Watcher(index, url, token, hub), host, int(port)
    )
    try:
        await asyncio.wait_for(watcher.opened, 60)
        await watcher.closed
        raise ConnectionError("the server closed the connection")
    finally:
        transport.close()


async def receive(spec_path: str) -> None:
    """Hold the spec's watchers; print ``live`` and ``complete``; on ``dump`` write the results; exit on ``exit``."""
    spec = json.loads(Path(spec_path).read_text())
    hub = Hub(spec)
    tasks = []
    for i, (url, token) in enumerate(spec["watchers"]):
        tasks.append(asyncio.ensure_future(hold(i, url, token, hub)))
        if i % 50 == 49:  # in batches: a burst of handshakes overflows daphne's listen backlog
            await asyncio.sleep(0.2)
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    said_live = said_complete = False
    started = time.monotonic()
    expected = hub.changes * hub.watchers
    while True:
        try:
            line = (await asyncio.wait_for(reader.readline(), 0.1)).decode().strip()
        except asyncio.TimeoutError:
            line = ""
        if not said_live and hub.live == hub.watchers:
            print("live", flush=True)
            said_live = True
        if not said_live and time.monotonic() - started > 30:
            errors = [repr(t.exception())[:200] for t in tasks if t.done() and t.exception() is not None]
            print(f"receiver: {hub.live} of {hub.watchers} live, errors: {errors[:3]}", file=sys.stderr, flush=True)
            started = time.monotonic()
        if not said_complete and hub.unique >= expected:
            print("complete", flush=True)
            said_complete = True
        if line == "dump":
            failed = [t for t in tasks if t.done() and t.exception() is not None]
            Path(spec["out"]).write_text(json.dumps({
                "latencies": list(hub.latencies), "last_at": hub.last_at, "unique": hub.unique,
                "duplicates": hub.duplicates, "live": hub.live, "ready": hub.ready, "with_eid": hub.with_eid,
                "other_ops": hub.other_ops, "told": hub.told, "closes": hub.closes, "ended": hub.ended,
                "failed": len(failed), "failures": sorted({repr(t.exception())[:120] for t in failed})[:3],
            }))
            print("dumped", flush=True)
        if line == "exit" or reader.at_eof():
            break
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# -- writer (subprocess) --------------------------------------------------------------------


def write(spec_path: str) -> None:
    """Set Django up with the variant's settings, say ``ready``, and on ``go`` add the notes at the rate."""
    spec = json.loads(Path(spec_path).read_text())
    import django

    django.setup()  # project.settings: autodiscovery registers the streams, which track Note
    if spec.get("writer_import"):
        __import__(spec["writer_import"])  # dcrf: defining the consumer connects its observer's signals
    from django.db import connection

    from project.demo.models import Note

    connection.ensure_connection()
    Note.objects.filter(pk=-1).exists()  # the connection's first-query work, before the baseline
    statements = transactions = 0
    block = None  # the outermost atomic block of the last statement, if any

    def counting(execute, sql, params, many, context):
        # Autocommit: a statement outside atomic() is a transaction of its own; one atomic() block is one.
        nonlocal statements, transactions, block
        statements += 1
        conn = context["connection"]
        current = id(conn.atomic_blocks[0]) if conn.in_atomic_block and conn.atomic_blocks else None
        if current is None or current != block:
            transactions += 1
        block = current
        return execute(sql, params, many, context)

    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    rate, count, tag = spec["rate"], spec["changes"], spec["tag"]
    gc.collect()
    gc.disable()  # a collection between the stamp and the write would count against the servers
    started = time.monotonic()
    with connection.execute_wrapper(counting):
        for seq in range(count):
            delay = started + seq / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            Note.objects.create(text=json.dumps({MARK: tag, "seq": seq, "ts": time.time()}), public=True)
    elapsed = time.monotonic() - started
    gc.enable()
    print("done " + json.dumps({"statements": statements, "transactions": transactions, "seconds": elapsed}),
          flush=True)


# -- PostgreSQL statistics ------------------------------------------------------------------


class PgStats:
    """``pg_stat_database`` of the bench database, read from a connection to the ``postgres`` database.

    The monitoring connection is on another database so its own queries never
    count, and in autocommit so every read sees fresh statistics (PostgreSQL
    caches them for the rest of a transaction).
    """

    FIELDS = ("xact", "tup_returned", "tup_fetched")

    def __init__(self, database_url: str) -> None:
        import psycopg

        parts = urlsplit(database_url)
        self.dbname = unquote(parts.path.lstrip("/"))
        self.conn = psycopg.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                                    user=unquote(parts.username or "") or None,
                                    password=unquote(parts.password or "") or None,
                                    dbname="postgres", autocommit=True)

    def read(self) -> dict[str, float]:
        row = self.conn.execute(
            "SELECT xact_commit + xact_rollback, tup_returned, tup_fetched FROM pg_stat_database WHERE datname = %s",
            (self.dbname,),
        ).fetchone()
        return {**dict(zip(self.FIELDS, map(int, row))), "at": time.time()}

    def busy_backends(self) -> int:
        """Client backends of the bench database that may hold statistics not flushed yet.

        Since PostgreSQL 15 a backend flushes its statistics when it goes idle,
        but at most once a second; otherwise 10 s later (PGSTAT_IDLE_INTERVAL),
        or when it exits. ``pg_stat_force_next_flush()`` only reaches the
        calling backend. So a backend idle for 10.5 s, or gone, has flushed.
        """
        return self.conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend' "
            "AND (state IS DISTINCT FROM 'idle' OR state_change > now() - interval '10.5 seconds')",
            (self.dbname,),
        ).fetchone()[0]

    def settle(self, timeout: float = 25.0) -> tuple[dict[str, float], bool]:
        """The counters once every backend has flushed and they stopped moving (or the timeout)."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            now = self.read()
            same = last is not None and all(now[k] == last[k] for k in self.FIELDS)
            if same and self.busy_backends() == 0:
                return now, True
            if time.monotonic() > deadline:
                return now, False
            last = now
            time.sleep(0.5)

    def close(self) -> None:
        self.conn.close()


# -- bench database rows --------------------------------------------------------------------


def delete_bench_rows(users: bool = True) -> None:
    """The bench's notes (raw SQL: no change events) and users (with their tokens, through the ORM's cascade).

    Run in this process with ``project.settings``, only while no server of the bench runs.
    """
    from django.contrib.auth.models import User
    from django.db import connection

    from project.demo.models import Note

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Note._meta.db_table} WHERE text LIKE %s", ['{"' + MARK + '"%'])
    if users:
        User.objects.filter(username__startswith=f"{MARK}-").delete()
    connection.close()


def create_users(n: int) -> list[str]:
    """``n`` users ``mfb-<i>``, each with a DRF token; returns the token keys."""
    from django.contrib.auth.models import User
    from django.db import connection
    from rest_framework.authtoken.models import Token

    users = User.objects.bulk_create(
        [User(username=f"{MARK}-{i}", password="!", is_active=True) for i in range(n)], batch_size=500
    )
    tokens = [Token(key=secrets.token_hex(20), user=user) for user in users]
    Token.objects.bulk_create(tokens, batch_size=500)
    connection.close()
    return [t.key for t in tokens]


# -- one variant ----------------------------------------------------------------------------


def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    if process.poll() is None:
        os.kill(process.pid, sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5)


def read_line(process: subprocess.Popen, timeout: float) -> str:
    """The next stdout line of ``process`` (non-blocking pipe), or "" after ``timeout`` or at its exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            return line.decode().strip()
        if process.poll() is not None:
            return ""
        time.sleep(0.05)
    return ""


def wait_words(processes: list[subprocess.Popen], word: str, timeout: float) -> bool:
    """True once every process printed a line starting with ``word`` (other lines are skipped)."""
    deadline = time.monotonic() + timeout
    pending = list(processes)
    while pending and time.monotonic() < deadline:
        for p in list(pending):
            line = read_line(p, 0.05)
            if line.startswith(word):
                pending.remove(p)
            elif p.poll() is not None:
                raise RuntimeError(f"a helper process exited with {p.returncode} while waiting for {word!r}")
    return not pending


def log(logs: list[Any], path: Path) -> Any:
    f = open(path, "wb")
    logs.append(f)
    return f


def run_variant(variant: str, args: argparse.Namespace, env_base: dict, tokens: list[str], pg: PgStats) -> dict:
    kind_name, _, extra = variant.partition("+")
    kind = KINDS[kind_name]
    users = extra == "users"
    changes = int(args.rate * args.seconds)
    tag = f"{variant}-{secrets.token_hex(4)}"
    tmp = Path(tempfile.mkdtemp(prefix="model-fanout-"))
    env = {**env_base, "DJANGO_SETTINGS_MODULE": kind["settings"]}
    processes: list[subprocess.Popen] = []
    servers: list[subprocess.Popen] = []
    receivers: list[subprocess.Popen] = []
    logs: list[Any] = []
    try:
        (tmp / "writer.json").write_text(json.dumps({
            "rate": args.rate, "changes": changes, "tag": tag, "writer_import": kind.get("writer_import"),
        }))
        writer = subprocess.Popen([python_executable(), __file__, "--writer", str(tmp / "writer.json")],
                                  cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=log(logs, tmp / "writer.log"))
        processes.append(writer)
        ports = [free_port(), free_port()]
        for port in ports:
            servers.append(subprocess.Popen(server_command("daphne", port, kind["app"]), cwd=ROOT, env=env,
                                            stdin=subprocess.DEVNULL, stdout=log(logs, tmp / f"server{port}.log"),
                                            stderr=subprocess.STDOUT))
            processes.append(servers[-1])
        for process, port in zip(servers, ports):
            wait_for_port(port, process, 60)
        watchers = [[f"ws://127.0.0.1:{ports[i % 2]}/ws/", tokens[i] if users else None]
                    for i in range(args.watchers)]
        for k in range(2):  # receiver k holds the watchers of server k
            (tmp / f"r{k}.json").write_text(json.dumps({
                "tag": tag, "changes": changes, "protocol": kind["protocol"], "method": kind.get("method"),
                "watchers": watchers[k::2], "out": str(tmp / f"r{k}.out.json"),
            }))
            receivers.append(subprocess.Popen([python_executable(), __file__, "--receiver", str(tmp / f"r{k}.json")],
                                              cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
            processes.append(receivers[-1])
        for p in [writer, *receivers]:
            os.set_blocking(p.stdout.fileno(), False)
        if not wait_words([writer], "ready", 60):
            raise RuntimeError(f"the writer did not start:\n{(tmp / 'writer.log').read_text()[-2000:]}")
        if not wait_words(receivers, "live", args.connect_timeout):
            raise RuntimeError(f"the watchers did not all get their snapshot within {args.connect_timeout:g} s; "
                               f"server log:\n{(tmp / f'server{ports[0]}.log').read_text()[-2000:]}")

        # Idle baseline: settled counters, --idle seconds with the watchers connected and nothing written, settled again.
        s0, ok0 = pg.settle()
        time.sleep(args.idle)
        s1, ok1 = pg.settle()
        cpu0, rcpu0 = cpu_seconds(servers), cpu_seconds(receivers)
        go = time.time()
        writer.stdin.write(b"go\n")
        writer.stdin.flush()
        done = read_line(writer, args.seconds + 60)
        if not done.startswith("done "):
            raise RuntimeError(f"the writer failed:\n{(tmp / 'writer.log').read_text()[-2000:]}")
        wrote = json.loads(done[5:])
        complete = wait_words(receivers, "complete", args.drain)
        cpu1, rcpu1 = cpu_seconds(servers), cpu_seconds(receivers)
        for r in receivers:
            r.stdin.write(b"dump\n")
            r.stdin.flush()
        if not wait_words(receivers, "dumped", 30):
            raise RuntimeError("the receivers did not report")
        # The servers die with their database connections, which flushes those backends' statistics at once.
        for s in servers:
            kill(s)
        ended = time.time()
        writer.wait(30)
        s2, ok2 = pg.settle()
        results = [json.loads((tmp / f"r{k}.out.json").read_text()) for k in range(2)]
        for r in receivers:
            r.stdin.write(b"exit\n")
            r.stdin.flush()
        for r in receivers:
            try:
                r.wait(30)
            except subprocess.TimeoutExpired:
                pass
    except Exception as exc:
        raise RuntimeError(f"logs in {tmp}: {exc}") from exc
    finally:
        for p in processes:
            kill(p)
        for f in logs:
            f.close()
    shutil.rmtree(tmp, ignore_errors=True)  # its spec files hold the bench users' tokens

    lat = [v for r in results for v in r["latencies"]]
    unique = sum(r["unique"] for r in results)
    expected = changes * args.watchers
    idle_s = max(s1["at"] - s0["at"], 1e-9)
    window_s = ended - s1["at"]
    db = {}
    for key in PgStats.FIELDS:
        baseline = (s1[key] - s0[key]) / idle_s * window_s
        db[key] = s2[key] - s1[key] - baseline
    merged: dict[str, dict[str, int]] = {"told": {}, "closes": {}, "other_ops": {}}
    for r in results:
        for table in merged:
            for k, v in r[table].items():
                merged[table][k] = merged[table].get(k, 0) + v
    last_at = max(r["last_at"] for r in results) or go
    used = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    rused = None if rcpu0 is None or rcpu1 is None else rcpu1 - rcpu0
    return {
        "variant": variant, "watchers": args.watchers, "changes": changes, "expected": expected,
        "unique": unique, "per_s": unique / max(last_at - go, 1e-9),
        "p50_ms": percentile(lat, 0.5) * 1000, "p99_ms": percentile(lat, 0.99) * 1000,
        "max_ms": max(lat) * 1000 if lat else float("nan"),
        "loss": expected - unique, "complete": complete,
        "duplicates": sum(r["duplicates"] for r in results), "failed": sum(r["failed"] for r in results),
        "failures": sorted({f for r in results for f in r["failures"]})[:3],
        "told": merged["told"], "closes": merged["closes"], "other_ops": merged["other_ops"],
        "ready": sum(r["ready"] for r in results), "with_eid": sum(r["with_eid"] for r in results),
        "xact_per_change": db["xact"] / changes, "returned_per_change": db["tup_returned"] / changes,
        "fetched_per_change": db["tup_fetched"] / changes,
        "writer_xact_per_change": wrote["transactions"] / changes,
        "servers_xact_per_change_process": (db["xact"] - wrote["transactions"]) / changes / 2,
        "writer_sql_per_change": wrote["statements"] / changes, "write_rate": changes / wrote["seconds"],
        "baseline_xact_per_s": (s1["xact"] - s0["xact"]) / idle_s, "settled": ok0 and ok1 and ok2,
        "server_us": used / unique * 1e6 if used is not None and unique else None,
        "receiver_us": rused / unique * 1e6 if rused is not None and unique else None,
    }


# -- report ---------------------------------------------------------------------------------


def fmt_counts(table: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(table.items())) or "none"


def report(rows: list[dict], args: argparse.Namespace) -> None:
    changes = int(args.rate * args.seconds)
    print(f"\n{args.watchers} watchers over 2 daphne processes; writer: {changes} notes through the ORM at "
          f"{args.rate:g}/s for {args.seconds:g} s; drain up to {args.drain:g} s\n")
    print("| variant | watchers | changes | deliveries/s | p50 ms | p99 ms | loss | error frames | closes "
          "| DB xact/change | of which writer | servers' per process | rows returned/change | rows fetched/change "
          "| server CPU µs/delivery | receiver CPU µs/delivery |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['variant']} | {args.watchers} | {changes} | failed: {r['error']} |" + " |" * 12)
            continue
        server_us = "n/a" if r["server_us"] is None else f"{r['server_us']:.0f}"
        receiver_us = "n/a" if r["receiver_us"] is None else f"{r['receiver_us']:.0f}"
        print(f"| {r['variant']} | {r['watchers']} | {r['changes']} | {r['per_s']:,.0f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['loss']:,} ({r['loss'] / r['expected']:.1%}) | {fmt_counts(r['told'])} | "
              f"{fmt_counts(r['closes'])} | {r['xact_per_change']:.2f} | {r['writer_xact_per_change']:.2f} | "
              f"{r['servers_xact_per_change_process']:.2f} | "
              f"{r['returned_per_change']:,.0f} | {r['fetched_per_change']:,.0f} | {server_us} | {receiver_us} |")
    print("\nChecks per variant (a watcher's items besides its `created` deliveries, the writer, the statistics):")
    for r in rows:
        if "error" in r:
            continue
        print(f"- {r['variant']}: {r['unique']:,} of {r['expected']:,} deliveries"
              f"{'' if r['complete'] else ' (drain ended first)'}, max {r['max_ms']:.0f} ms; "
              f"failed connections {r['failed']}{' ' + '; '.join(r['failures']) if r['failures'] else ''}; "
              f"duplicates {r['duplicates']}; other items {fmt_counts(r['other_ops'])}; "
              f"`ready` frames {r['ready']}; created items with eid {r['with_eid']:,}; "
              f"writer {r['write_rate']:.1f} notes/s, {r['writer_sql_per_change']:.2f} SQL statements/change; "
              f"idle baseline {r['baseline_xact_per_s']:.2f} xact/s; statistics "
              f"{'settled' if r['settled'] else 'NOT settled (figures may be low)'}")
    by_name = {r["variant"]: r for r in rows if "error" not in r}
    goal_size = args.watchers >= 1000 and args.rate >= 20 and args.seconds >= 10
    print(f"\nIssue 15's goals{'' if goal_size else ' (they are set for 1,000 watchers at 20/s for 10 s: this run is smaller)'}:")
    for name, r in by_name.items():
        if not name.startswith("notes"):
            continue
        checks = [
            ("zero loss", r["loss"] == 0 and not r["told"]),
            ("p99 < 250 ms", r["p99_ms"] < 250),
            ("<= 2 DB xact/change/process", r["servers_xact_per_change_process"] <= 2
             and r["writer_xact_per_change"] - 1 <= 2),
        ]
        peer = by_name.get("dcrf+users" if name.endswith("+users") and "dcrf+users" in by_name else "dcrf")
        if peer is not None:
            checks.append((f"p99 below {peer['variant']}'s {peer['p99_ms']:.0f} ms", r["p99_ms"] < peer["p99_ms"]))
            checks.append((f"DB xact/change below {peer['variant']}'s {peer['xact_per_change']:.2f}",
                           r["xact_per_change"] < peer["xact_per_change"]))
        print(f"- {name}: " + "; ".join(f"{label} {'yes' if ok else 'NO'}" for label, ok in checks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watchers", type=int, help="watchers in all (default 1000; --quick 50)")
    parser.add_argument("--rate", type=float, default=20.0, help="notes written per second (default 20)")
    parser.add_argument("--seconds", type=float, help="seconds of writing (default 10; --quick 3)")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help=f"comma-separated, of notes, legacy, dcrf, each optionally +users (default {DEFAULT_VARIANTS})")
    parser.add_argument("--quick", action="store_true", help="smoke run: 50 watchers, 3 s")
    parser.add_argument("--drain", type=float, default=10.0,
                        help="seconds after the last write to wait for the deliveries (default 10)")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds of the idle baseline (default 2)")
    parser.add_argument("--connect-timeout", type=float, default=180.0,
                        help="seconds for all watchers to connect and get their snapshot (default 180)")
    parser.add_argument("--receiver", help=argparse.SUPPRESS)
    parser.add_argument("--writer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        import uvloop

        uvloop.run(receive(args.receiver))
        return
    if args.writer:
        write(args.writer)
        return
    args.watchers = args.watchers or (50 if args.quick else 1000)
    args.seconds = args.seconds or (3.0 if args.quick else 10.0)
    if args.watchers < 2 or args.watchers > 20_000 or not 0 < args.rate <= 1000 or not 0 < args.seconds <= 600:
        parser.error("--watchers 2..20000, --rate (0, 1000], --seconds (0, 600]")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        kind, _, extra = v.partition("+")
        if kind not in KINDS or extra not in ("", "users"):
            parser.error(f"unknown variant {v!r}")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # the servers and receivers inherit it
    want = min(hard, max(soft, 4 * args.watchers + 1024)) if hard != resource.RLIM_INFINITY else max(soft, 4 * args.watchers + 1024)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < args.watchers + 256:
        sys.exit(f"RLIMIT_NOFILE {want} is too low for {args.watchers} watchers")

    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must name a PostgreSQL database (migrated with project.settings)")
    redis_url = os.environ.get("REDIS_URL") or sys.exit("REDIS_URL must name a Redis database")
    env_base = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "DJANGO_DEBUG": "0",
                # DEBUG off refuses the public demo key: one random key, shared by every process.
                "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
                # Persistent connections: a bearer handshake otherwise opens one per watcher.
                "DJANGO_CONN_MAX_AGE": "60",
                "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"  # this process only sets up and deletes rows
    import django

    django.setup()
    pg = PgStats(database_url)
    rows = []
    try:
        delete_bench_rows()
        tokens = create_users(args.watchers) if any(v.endswith("+users") for v in variants) else []
        for v in variants:
            print(f"{v}: running", file=sys.stderr, flush=True)
            delete_bench_rows(users=False)
            try:
                rows.append(run_variant(v, args, env_base, tokens, pg))
            except Exception as exc:  # one variant failing does not lose the others' figures
                rows.append({"variant": v, "error": str(exc).splitlines()[0][:200] if str(exc) else repr(exc)})
                print(f"{v}: {exc}", file=sys.stderr, flush=True)
    finally:
        delete_bench_rows()
        pg.close()
    report(rows, args)



if __name__ == "__main__":
    main()
