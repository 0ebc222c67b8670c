"""The Python client's reconnection waits out a refused handshake's ``Retry-After``.

When a reconnection handshake is answered 429/503 with ``Retry-After``, the
next attempt comes no sooner than that hint (capped at
``reconnect_retry_after_max``), plus the usual jittered backoff; the state
stays ``reconnecting`` meanwhile. Against the real daphne of the example
project behind a real TCP proxy on 127.0.0.1 that the test controls: it passes
connections through, refuses the next handshakes it is told to as a
rate-limiting proxy would, drops the connections it carries, and records when
each handshake arrived. The gaps are measured there, on the proxy's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import threading
import time
from collections import deque
from typing import Any, Callable, Iterator

import pytest

from streaming_app.client import ConnectionState, StreamClient, Unavailable

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED = 503
PASSED = 101
MAX_HEAD = 64 * 1024


def _pipe(source: socket.socket, target: socket.socket) -> None:
    """Copy bytes one way until either side ends, then end the other's writing half."""
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


class ThrottlingProxy:
    """A TCP proxy in front of a server, refusing handshakes and dropping connections when the test says so."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # so that the accepting thread notices close()
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._refusals: deque[str] = deque()
        self._carried: set[socket.socket] = set()
        self._stopped = threading.Event()
        self.handshakes: list[tuple[float, int]] = []  # (time.monotonic() on arrival, REFUSED or PASSED)
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    def refuse_next(self, *retry_after: str) -> None:
        """Answer the next handshakes, one per value, with 503 and that ``Retry-After``."""
        with self._lock:
            self._refusals.extend(retry_after)

    def drop_all(self) -> None:
        """End every carried connection without a close frame: the client sees 1006."""
        with self._lock:
            carried = list(self._carried)
        for conn in carried:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def statuses(self) -> list[int]:
        with self._lock:
            return [status for _, status in self.handshakes]

    def gaps(self) -> list[float]:
        """Seconds between one handshake's arrival and the next's."""
        with self._lock:
            times = [arrived for arrived, _ in self.handshakes]
        return [later - earlier for earlier, later in zip(times, times[1:])]

    def close(self) -> None:
        self._stopped.set()
        self._accepting.join(5)
        self._listener.close()
        self.drop_all()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk or len(head) > MAX_HEAD:
                    return
                head += chunk
            with self._lock:
                retry_after = self._refusals.popleft() if self._refusals else None
                self.handshakes.append((time.monotonic(), PASSED if retry_after is None else REFUSED))
            if retry_after is not None:
                body = b"Service Unavailable"
                conn.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: " + retry_after.encode()
                    + b"\r\nContent-Type: text/plain\r\nContent-Length: " + str(len(body)).encode()
                    + b"\r\nConnection: close\r\n\r\n" + body
                )
                return
            conn.settimeout(None)
            with socket.create_connection(self._upstream, timeout=10) as upstream:
                upstream.settimeout(None)
                upstream.sendall(head)
                with self._lock:
                    self._carried.add(conn)
                back = threading.Thread(target=_pipe, args=(upstream, conn), daemon=True)
                back.start()
                _pipe(conn, upstream)
                back.join(10)
                with self._lock:
                    self._carried.discard(conn)


@pytest.fixture
def proxy(daphne_server) -> Iterator[ThrottlingProxy]:
    proxy = ThrottlingProxy(daphne_server.port)
    try:
        yield proxy
    finally:
        proxy.close()


# Backoff of at most 0.1 s: without the hint, a refused attempt is retried within that.
BACKOFF = {"reconnect_initial": 0.05, "reconnect_max": 0.1}
SLACK = 1.0  # a handshake's own time, on a busy machine


def recorded(client: StreamClient) -> list[ConnectionState]:
    states: list[ConnectionState] = []
    client.on_state_change(states.append)
    return states


async def until(predicate: Callable[[], Any], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def drop_and_refuse(client: StreamClient, proxy: ThrottlingProxy, *retry_after: str) -> None:
    """Lose the client's connection, then refuse its next handshakes with these hints; return once all were refused."""
    proxy.refuse_next(*retry_after)
    proxy.drop_all()
    await until(lambda: proxy.statuses().count(REFUSED) == len(retry_after))


OPENED = [ConnectionState.CONNECTING, ConnectionState.OPEN]


async def test_a_reconnect_refused_with_retry_after_waits_at_least_the_hint_each_time(proxy):
    client = StreamClient(proxy.ws_url, **BACKOFF)
    states = recorded(client)
    async with client:
        first = client.hello.conn
        await drop_and_refuse(client, proxy, "1", "1")
        await until(lambda: client.state is ConnectionState.OPEN and client.hello.conn != first)
        assert await client.call("interop.unary", payload="back") == {"payload": "back"}
    assert proxy.statuses() == [PASSED, REFUSED, REFUSED, PASSED]
    after_first_refusal, after_second_refusal = proxy.gaps()[1:]
    assert 1.0 <= after_first_refusal < 1.0 + 0.1 + SLACK
    assert 1.0 <= after_second_refusal < 1.0 + 0.1 + SLACK
    assert states == [*OPENED, ConnectionState.RECONNECTING, ConnectionState.OPEN, ConnectionState.CLOSED]


async def test_a_hint_beyond_reconnect_retry_after_max_is_waited_only_up_to_it(proxy):
    client = StreamClient(proxy.ws_url, reconnect_retry_after_max=1.0, **BACKOFF)
    async with client:
        first = client.hello.conn
        await drop_and_refuse(client, proxy, "86400")  # a day
        await until(lambda: client.state is ConnectionState.OPEN and client.hello.conn != first)
    assert proxy.statuses() == [PASSED, REFUSED, PASSED]
    assert 1.0 <= proxy.gaps()[-1] < 1.0 + 0.1 + SLACK


async def test_while_waiting_out_a_hint_the_state_stays_reconnecting_and_new_calls_wait(proxy):
    client = StreamClient(proxy.ws_url, **BACKOFF)
    states = recorded(client)
    async with client:
        await drop_and_refuse(client, proxy, "2")
        pending = asyncio.ensure_future(client.call("interop.unary", payload="held"))
        await asyncio.sleep(1.0)
        assert client.state is ConnectionState.RECONNECTING
        assert not pending.done()  # held, not failed, while the client waits out the hint
        assert await asyncio.wait_for(pending, 10) == {"payload": "held"}
    assert proxy.statuses() == [PASSED, REFUSED, PASSED]
    assert proxy.gaps()[-1] >= 2.0
    assert states == [*OPENED, ConnectionState.RECONNECTING, ConnectionState.OPEN, ConnectionState.CLOSED]


async def test_closing_the_client_ends_a_hint_wait_at_once(proxy):
    client = StreamClient(proxy.ws_url, **BACKOFF)
    states = recorded(client)
    await client.connect()
    try:
        await drop_and_refuse(client, proxy, "30")
        await asyncio.sleep(0.5)
        assert client.state is ConnectionState.RECONNECTING
    finally:
        started = time.monotonic()
        await asyncio.wait_for(client.close(), 10)
    assert time.monotonic() - started < 2
    assert states == [*OPENED, ConnectionState.RECONNECTING, ConnectionState.CLOSED]
    with pytest.raises(Unavailable):
        await client.call("interop.empty")
    assert proxy.statuses() == [PASSED, REFUSED]  # no attempt after the close


async def test_reconnect_retry_after_max_0_ignores_hints(proxy):
    client = StreamClient(proxy.ws_url, reconnect_retry_after_max=0, **BACKOFF)
    async with client:
        first = client.hello.conn
        await drop_and_refuse(client, proxy, "30")
        await until(lambda: client.state is ConnectionState.OPEN and client.hello.conn != first)
    assert proxy.gaps()[-1] < 0.1 + SLACK


@pytest.mark.parametrize("bound", [-1.0, math.nan])
def test_reconnect_retry_after_max_refuses_a_negative_bound(bound):
    with pytest.raises(ValueError):
        StreamClient("ws://127.0.0.1:1/ws/", reconnect_retry_after_max=bound)
