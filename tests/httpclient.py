"""Helpers for end-to-end tests of the HTTP transport, written from protocol.md alone.

Nothing here comes from streaming_app: responses are read with ``httpx`` and
``curl`` the way any client would. Every read is bounded in time (``TIMEOUT``)
and every loop in count (``MAX_RECORDS``). The last section speaks to the
ticket endpoint and the login page with the standard library only, as the
WebSocket handshake's tests need (a session cookie, a CSRF token, a ticket).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import selectors
import subprocess
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any, Iterable, Iterator

import httpx

TIMEOUT = 5.0
MAX_RECORDS = 100_000
PREFIX = "/streams/"


def client(server: Any, **kwargs: Any) -> httpx.Client:
    """An httpx client for ``<server>/streams/``; no proxies from the environment."""
    kwargs.setdefault("timeout", TIMEOUT)
    return httpx.Client(base_url=server.http_url + PREFIX, trust_env=False, **kwargs)


@dataclass
class SSEEvent:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SSEStream:
    """What a client read from an SSE response: events, comments and the retry hint, in order."""

    events: list[SSEEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    order: list[str] = field(default_factory=list)  # "event:<name>" or "comment"

    @property
    def items(self) -> list[Any]:
        return [e.json() for e in self.events if e.event == "next"]

    @property
    def last(self) -> SSEEvent:
        return self.events[-1]


def parse_sse(lines: Iterable[str], stop_after_terminal: bool = True) -> SSEStream:
    """Parse SSE lines as the WHATWG algorithm does (enough of it for these tests)."""
    stream = SSEStream()
    fields: dict[str, list[str]] = {}
    for count, line in enumerate(lines):
        if count > MAX_RECORDS * 4:
            raise AssertionError("too many lines")
        if line == "":
            if "data" in fields:
                event = SSEEvent(
                    (fields.get("event") or ["message"])[-1],
                    "\n".join(fields["data"]),
                    (fields.get("id") or [None])[-1],
                )
                stream.events.append(event)
                stream.order.append(f"event:{event.event}")
                if stop_after_terminal and event.event in ("end", "error"):
                    return stream
            fields = {}
            continue
        if line.startswith(":"):
            stream.comments.append(line)
            stream.order.append("comment")
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "retry":
            stream.retry = int(value)
        else:
            fields.setdefault(name, []).append(value)
    return stream


def parse_ndjson(lines: Iterable[str], stop_after_terminal: bool = True) -> list[dict[str, Any]]:
    records = []
    for count, line in enumerate(lines):
        if count > MAX_RECORDS:
            raise AssertionError("too many records")
        if not line:
            continue
        record = json.loads(line)
        records.append(record)
        if stop_after_terminal and record.get("t") in ("end", "error"):
            break
    return records


def bounded(lines: Iterable[str], seconds: float = 2 * TIMEOUT) -> Iterator[str]:
    """``lines``, failing the test if they keep coming for longer than ``seconds`` (keepalives would)."""
    deadline = time.monotonic() + seconds
    for line in lines:
        if time.monotonic() > deadline:
            raise AssertionError(f"the response was still going after {seconds}s")
        yield line


def get_sse(http: httpx.Client, path: str, **kwargs: Any) -> tuple[httpx.Response, SSEStream]:
    headers = {"Accept": "text/event-stream", **kwargs.pop("headers", {})}
    with http.stream("GET", path, headers=headers, **kwargs) as response:
        return response, parse_sse(bounded(response.iter_lines()))


def get_ndjson(http: httpx.Client, path: str, **kwargs: Any) -> tuple[httpx.Response, list[dict[str, Any]]]:
    headers = {"Accept": "application/x-ndjson", **kwargs.pop("headers", {})}
    with http.stream("GET", path, headers=headers, **kwargs) as response:
        return response, parse_ndjson(bounded(response.iter_lines()))


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A JSON error response of this status and code; returns its ``error`` object."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and isinstance(error["details"], dict)
    return error


def wait_for_cleanups(http: httpx.Client, tag: str, expected: int, timeout: float = TIMEOUT) -> tuple[int, float]:
    """Poll ``interop.cleanups`` until it reaches ``expected`` (bounded): (count, seconds waited)."""
    start = time.monotonic()
    count = 0
    for _ in range(500):
        count = http.get("interop.cleanups", params={"tag": tag}).json()["d"]["count"]
        if count >= expected or time.monotonic() - start > timeout:
            break
        time.sleep(0.02)
    return count, time.monotonic() - start


class Curl:
    """``curl -N`` in a subprocess; its output lines with the time each arrived."""

    def __init__(self, url: str, *args: str, max_time: float = 10.0) -> None:
        command = ["curl", "-N", "-s", "-S", "--noproxy", "*", "--max-time", str(max_time), *args, url]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.started = time.monotonic()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.process.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        self._pending = b""

    def lines(self, timeout: float = TIMEOUT) -> Iterator[tuple[float, str]]:
        """(seconds since start, line) as each line arrives, until EOF or ``timeout``."""
        deadline = time.monotonic() + timeout
        for _ in range(MAX_RECORDS):
            while b"\n" in self._pending:
                line, self._pending = self._pending.split(b"\n", 1)
                yield time.monotonic() - self.started, line.decode()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                raise AssertionError("curl produced no line in time")
            chunk = self.process.stdout.read1(65536)  # type: ignore[union-attr]
            if not chunk:
                if self._pending:
                    yield time.monotonic() - self.started, self._pending.decode()
                return
            self._pending += chunk

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)
        self._selector.close()
        self.process.stdout.close()  # type: ignore[union-attr]
        self.process.stderr.close()  # type: ignore[union-attr]

    def __enter__(self) -> Curl:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()


# -- the handshake's HTTP side with the standard library: sessions, CSRF and tickets ---------------
# (stdlib only, no proxies, bounded; used by transport/test_websocket_auth.py and the Python client's tests)

TICKET_PATH = "/streams/_ticket"


class Response:
    def __init__(self, status: int, cookies: dict[str, str], body: bytes) -> None:
        self.status = status
        self.cookies = cookies
        self.body = body

    def json(self):
        return json.loads(self.body)


def http_request(server, method: str, path: str, headers: dict[str, str] | None = None) -> Response:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request(method, path, body=b"" if method == "POST" else None, headers=headers or {})
        response = connection.getresponse()
        cookies = SimpleCookie()
        for value in response.msg.get_all("Set-Cookie") or []:
            cookies.load(value)
        return Response(response.status, {key: morsel.value for key, morsel in cookies.items()}, response.read())
    finally:
        connection.close()


async def fetch(server, method: str, path: str, headers: dict[str, str] | None = None) -> Response:
    return await asyncio.to_thread(http_request, server, method, path, headers)


async def csrf_token(server) -> str:
    """A CSRF cookie value, as a browser gets it from any page with a form."""
    response = await fetch(server, "GET", "/admin/login/")
    assert response.status == 200
    return response.cookies["csrftoken"]


async def post_ticket(server, *, session: str | None = None, csrf: bool = True) -> Response:
    """``POST /streams/_ticket`` the way a page of the same origin does."""
    cookies = {}
    headers = {"Origin": origin_of(server), "Referer": f"{server.http_url}/admin/"}
    if session is not None:
        cookies["sessionid"] = session
    if csrf:
        token = await csrf_token(server)
        cookies["csrftoken"] = token
        headers["X-CSRFToken"] = token
    if cookies:
        headers["Cookie"] = "; ".join(f"{key}={value}" for key, value in cookies.items())
    return await fetch(server, "POST", TICKET_PATH, headers)


def origin_of(server) -> str:
    return f"http://127.0.0.1:{server.port}"
