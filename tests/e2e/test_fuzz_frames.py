"""Fuzzing a real daphne with 10,000+ random frames and byte strings (issue 17).

A seeded generator (``FUZZ_SEED`` picks another run; the seed is in every
failure message) sends, over many connections at once: frames of every type
with fields of the wrong type, lone surrogates, numbers too large for a float,
integers of hundreds of digits, deep nesting, NUL characters, random method
names and arguments, binary frames of random bytes, text that is not JSON,
truncated JSON and now and then a frame over the limit. After every few
frames each connection pings and reads up to its pong.

What must hold: every frame the server sends is a protocol frame (an object
with a known ``t``; errors carry a canonical code, never ``internal``); a
connection the server closes is closed with a 44xx code (4400 after too many
bad frames, 4413 for a frame over the limit, 4429), never 4500; the server
logs no traceback, stays alive and its RSS stays bounded. The server runs
with MAX_BAD_FRAMES raised (tests/probes/fuzz_settings.py), and a frame over
the limit is the last one a connection sends: a client that sends on after
the server closed may lose the close frame to a TCP reset, and see 1006.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import string
import time

import pytest
import websockets
from conftest import start_server
from wsclient import SUBPROTOCOL

pytestmark = pytest.mark.django_db(transaction=True)

SEED = int(os.environ.get("FUZZ_SEED", "20261202"))
FRAMES = 10_400
CONNECTIONS = 16
BATCH = 8  # frames between two pings
MIB = 1024 * 1024
RSS_BOUND = 128 * MIB
MAX_FRAME = 1_000_000

SERVER_TYPES = {"hello", "next", "end", "error", "credit", "ready", "ping", "pong"}
CODES = {
    "cancelled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
    "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
    "unimplemented", "unavailable", "data_loss", "unauthenticated",
}  # all of gRPC's but "internal": nothing a client sends may cause one here
METHODS = [
    "interop.empty", "interop.unary", "interop.whoami", "interop.staff_only", "interop.count",
    "interop.sum", "interop.echo", "interop.fail", "interop.fail_after", "interop.big",
    "interop.publish", "interop.subscribe", "interop.cleanups", "notes.watch", "notes.edit",
    "interop.forever",
]  # interop.crash is left out: its "internal" is by design
FRAME_TYPES = ["call", "next", "end", "credit", "cancel", "ping", "pong"]


class Fuzzer:
    """Random frames from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def text(self) -> str:
        rng = self.rng
        alphabet = string.printable + "\x00\x85\u2028\u00e9\U0001F600\ufffe"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))

    def value(self, depth: int = 0) -> object:
        rng = self.rng
        choice = rng.randint(0, 11 if depth < 4 else 7)
        if choice == 0:
            return None
        if choice == 1:
            return rng.choice([True, False])
        if choice == 2:
            return rng.randint(-(2**70), 2**70)
        if choice == 3:
            return rng.choice([0, 1, -1, 2**31, 2**63, 10**30, 0.5, -1e300, 1e-300])
        if choice in (4, 5, 6, 7):
            return self.text()
        if choice in (8, 9):
            return [self.value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {self.text(): self.value(depth + 1) for _ in range(rng.randint(0, 4))}

    def field(self, valid: object) -> object:
        return valid if self.rng.random() < 0.6 else self.value(2)

    def frame_object(self, next_id: int) -> dict:
        rng = self.rng
        t = rng.choice(FRAME_TYPES) if rng.random() < 0.9 else self.text()
        frame: dict = {"t": t}
        if rng.random() < 0.9:
            frame["id"] = self.field(rng.choice([next_id, rng.randint(1, next_id), rng.randint(-3, 3)]))
        if t == "call":
            frame["m"] = self.field(rng.choice(METHODS))
            frame["a"] = self.field(self.arguments())
            frame["timeout"] = self.field(rng.choice([0.2, 0.5, 1]))
            if rng.random() < 0.5:
                frame["credit"] = self.field(rng.randint(0, 100))
            if rng.random() < 0.2:
                frame["resume"] = self.field(f"{rng.randint(0, 9)}:{rng.randint(0, 99)}")
        elif t in ("next", "ping", "pong"):
            frame["d"] = self.value()
        elif t == "credit":
            frame["n"] = self.field(rng.randint(1, 100))
        for _ in range(rng.randint(0, 2)):
            frame[self.text()] = self.value(3)
        return frame

    def arguments(self) -> dict:
        rng = self.rng
        known = {
            "n": rng.choice([0, 3, 50, 10**6]), "payload": self.text(), "size": rng.choice([0, 10, 10**5, 10**7]),
            # not "internal": interop.fail raising it is by design
            "code": rng.choice(sorted(CODES) + ["bogus"]), "message": self.text(),
            "topic": self.text(), "data": self.value(2), "interval_ms": rng.choice([0, 1, 10**9]),
            "id": rng.randint(-5, 10**6), "text": self.text(), "public": rng.choice([True, False, None]),
        }
        return {key: known[key] for key in rng.sample(sorted(known), rng.randint(0, 3))}

    def raw(self, next_id: int) -> str | bytes:
        """One WebSocket message: mostly frame objects, some of them spoiled, some not JSON at all."""
        rng = self.rng
        kind = rng.random()
        if kind < 0.55:
            return json.dumps(self.frame_object(next_id), ensure_ascii=rng.random() < 0.5)
        text = json.dumps(self.frame_object(next_id))
        if kind < 0.65:  # a lone surrogate, somewhere a string is
            return text.replace('"', '"\\ud8' + rng.choice("0123456789abcdef") + "0", 1)
        if kind < 0.70:  # numbers JSON allows and a float cannot hold, or Python will not parse
            token = rng.choice(["1e999", "-1e400", "9" * rng.randint(300, 5000), "NaN", "Infinity"])
            return '{"t":"ping","d":' + token + "}" if rng.random() < 0.5 else text.replace("0", token, 1)
        if kind < 0.74:  # deep nesting
            depth = rng.choice([100, 1000, 100_000])
            return '{"t":"ping","d":' + "[" * depth + "]" * depth + "}"
        if kind < 0.82:  # truncated or otherwise broken JSON
            return text[: rng.randint(0, max(len(text) - 1, 0))]
        if kind < 0.90:
            return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))  # a binary frame
        if kind < 0.9985:
            return self.text()
        # Over MAX_FRAME_BYTES and under daphne's own 1 MiB, which it enforces itself: 4413.
        return '{"t":"ping","d":"' + "x" * 1_010_000 + '"}'


def rss(server) -> int:
    with open(f"/proc/{server.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Report:
    def __init__(self) -> None:
        self.sent = 0
        self.close_codes: dict[int | None, int] = {}
        self.problems: list[str] = []

    def check(self, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            self.problems.append(f"not JSON: {raw[:200]!r}")
            return
        if type(frame) is not dict or frame.get("t") not in SERVER_TYPES:
            self.problems.append(f"not a server frame: {raw[:200]!r}")
        elif frame["t"] == "error" and frame.get("code") not in CODES:
            self.problems.append(f"error code {frame.get('code')!r}: {raw[:300]!r}")


async def drive(url: str, fuzzer: Fuzzer, report: Report, quota: int) -> None:
    """Send ``quota`` random messages over as many connections (one after another) as it takes."""
    left = quota
    for _ in range(quota + 1):
        if left <= 0:
            return
        ws = await websockets.connect(url, subprotocols=[SUBPROTOCOL], max_size=None, open_timeout=10)
        next_id = 1
        last: str | bytes = ""
        try:
            report.check(await asyncio.wait_for(ws.recv(), 10))  # hello
            while left > 0:
                for _ in range(min(BATCH, left)):
                    last = fuzzer.raw(next_id)
                    await ws.send(last)
                    next_id += 1
                    left -= 1
                    report.sent += 1
                    if len(last) > MAX_FRAME:  # the server closes with 4413: read up to its close
                        async with asyncio.timeout(20):
                            while True:
                                report.check(await ws.recv())
                token = f"sync-{left}"
                await ws.send(json.dumps({"t": "ping", "d": token}))
                deadline = time.monotonic() + 20
                while True:
                    raw = await asyncio.wait_for(ws.recv(), max(deadline - time.monotonic(), 0.01))
                    report.check(raw)
                    if raw == json.dumps({"t": "pong", "d": token}, separators=(",", ":")):
                        break
        except websockets.ConnectionClosed:
            pass
        finally:
            await ws.close()
        code = ws.close_code
        report.close_codes[code] = report.close_codes.get(code, 0) + 1
        if not (code == 1000 or (code is not None and 4400 <= code < 4500)):
            report.problems.append(f"closed with {code} after {last[:200]!r} ({len(last)} long)")


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        started = start_server(
            tmp_path_factory.mktemp("fuzz"), env={"DJANGO_SETTINGS_MODULE": "probes.fuzz_settings"}
        )
    yield started
    started.stop()


async def test_random_frames_are_answered_per_protocol_and_never_close_with_4500(server):
    fuzzers = [Fuzzer(SEED * 1000 + n) for n in range(CONNECTIONS)]
    report = Report()
    before = rss(server)
    started = time.monotonic()
    await asyncio.gather(
        *(drive(server.ws_url, fuzzer, report, FRAMES // CONNECTIONS) for fuzzer in fuzzers)
    )
    elapsed = time.monotonic() - started
    await asyncio.sleep(1)  # calls with short deadlines end
    grown = rss(server) - before
    log = server.log.read_text(errors="replace")
    assert report.sent >= 10_000, f"seed {SEED}"
    assert report.problems == [], f"seed {SEED}: {report.problems[:10]}"
    assert server.process.poll() is None, f"seed {SEED}: the server died"
    assert "Traceback" not in log, f"seed {SEED}: {log[log.index('Traceback') - 500:][:3000]}"
    assert grown < RSS_BOUND, f"seed {SEED}: RSS grew by {grown // MIB} MiB"
    assert elapsed < 120, f"seed {SEED}: {elapsed:.0f}s"
    async with websockets.connect(server.ws_url, subprotocols=[SUBPROTOCOL]) as ws:  # still serving
        await ws.recv()
        await ws.send('{"t":"call","id":1,"m":"interop.empty"}')
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["t"] == "end"
