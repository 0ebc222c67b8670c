"""A client that closes its WebSocket while its calls wait to send ends them quietly, as ``disconnected``.

Seen once in a server log under load: ``streaming_app could not end call
interop.count#1``, with a traceback through ``send_paced``. daphne refuses
a frame (autobahn raises ``Disconnected``) from the moment the peer's close
frame arrives, but tells the application (``websocket.disconnect``) only
once the TCP connection is gone, and a server closes it only after its write
buffer has drained. A call whose frame waited for that buffer to fall below
``SEND_BUFFER_HIGH`` then sent it into the closing socket: a result's
failure was logged with that traceback and the call recorded ``completed``;
an item's became an ``internal`` error, logged as an unhandled exception and
recorded as one. Now such a call ends quietly and the history says
``disconnected``.

The client speaks raw RFC 6455 on a socket with a small receive buffer, so
the test decides when it reads: nothing until its close frame is out, then
slowly, so that the server's buffer falls below SEND_BUFFER_HIGH while the
socket is still closing (the window that is rare under load is then certain).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from collections import Counter

import pytest
from conftest import start_server
from wsclient import SUBPROTOCOL

from streaming_app.models import FinishedCall

pytestmark = pytest.mark.django_db(transaction=True)

RESULTS = 8  # interop.big results of RESULT_SIZE: far more than the kernel's buffers hold for the client
RESULT_SIZE = 900_000  # under MAX_FRAME_BYTES
READ_RATE = 2 * 1024 * 1024  # bytes/s once the close is out: SEND_BUFFER_HIGH takes ~0.1 s to drain
TRACEBACKS = ("could not end call", "Unhandled exception in streaming method", "Traceback")


@pytest.fixture
def server(transactional_db, tmp_path):
    started = start_server(tmp_path)
    yield started
    started.stop()


class RawClient:
    """A WebSocket client on a plain socket: it reads only when told to."""

    def __init__(self, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: no window scaling up
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        self.sock = sock
        self.unread = b""
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
            .encode()
        )
        while b"\r\n\r\n" not in self.unread:
            self._receive()
        head, _, self.unread = self.unread.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        opcode, payload = self.read_frame()
        assert opcode == 1 and json.loads(payload)["t"] == "hello"

    def _receive(self) -> bool:
        data = self.sock.recv(65536)
        self.unread += data
        return bool(data)

    def _frame(self) -> tuple[int, bytes] | None:
        """The first complete frame of what was read, or None (server frames are not masked)."""
        data = self.unread
        if len(data) < 2:
            return None
        length, offset = data[1] & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                return None
            (length,), offset = struct.unpack("!H", data[2:4]), 4
        elif length == 127:
            if len(data) < 10:
                return None
            (length,), offset = struct.unpack("!Q", data[2:10]), 10
        if len(data) < offset + length:
            return None
        self.unread = data[offset + length:]
        return data[0] & 0x0F, data[offset:offset + length]

    def read_frame(self) -> tuple[int, bytes]:
        while (frame := self._frame()) is None:
            assert self._receive(), "the server closed the connection"
        return frame

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_json(self, frame: dict) -> None:
        self._send(0x1, json.dumps(frame).encode())

    def send_close(self) -> None:
        self._send(0x8, struct.pack("!H", 1000))

    def read_slowly_to_the_end(self, timeout: float = 30.0) -> list[tuple[int, bytes]]:
        """Every frame until the server closes the TCP connection, read at READ_RATE."""
        frames = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = len(self.unread)
            if not self._receive():
                break
            time.sleep((len(self.unread) - before) / READ_RATE)
            while (frame := self._frame()) is not None:
                frames.append(frame)
        else:
            raise AssertionError("the server did not close the connection")
        self.sock.close()
        return frames


def recorded(method: str, calls: int, timeout: float = 10.0) -> list[FinishedCall]:
    """The history rows of ``method`` once there are ``calls`` of them (the server writes them every second)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = list(FinishedCall.objects.filter(method=method).order_by("call_id"))
        if len(rows) >= calls or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_results_waiting_for_the_socket_when_the_client_closes_end_quietly_as_disconnected(server):
    client = RawClient(server.port)
    for call_id in range(1, RESULTS + 1):
        client.send_json({"t": "call", "id": call_id, "m": "interop.big", "a": {"size": RESULT_SIZE}})
    time.sleep(1.0)  # every call has run; the results the socket could not take yet wait for it
    client.send_close()
    frames = client.read_slowly_to_the_end()

    delivered = sum(1 for opcode, payload in frames if opcode == 1 and json.loads(payload)["t"] == "end")
    rows = recorded("interop.big", RESULTS)
    log = server.log.read_text()
    assert [line for line in log.splitlines() if any(t in line for t in TRACEBACKS)] == []
    reasons = Counter(row.end_reason for row in rows)
    assert len(rows) == RESULTS and reasons["disconnected"] >= 1, reasons  # some waited, all are accounted for
    assert reasons == {"completed": delivered, "disconnected": RESULTS - delivered}
    assert frames[-1][0] == 0x8  # the close handshake still ends the connection


def test_a_stream_waiting_for_the_socket_when_the_client_closes_ends_quietly_as_disconnected(server):
    client = RawClient(server.port)
    client.send_json({"t": "call", "id": 1, "m": "interop.count", "a": {"n": 10**8}})  # no credit: unbounded
    time.sleep(1.0)  # the socket is full; the stream waits for it
    client.send_close()
    frames = client.read_slowly_to_the_end()

    items = sum(1 for opcode, payload in frames if opcode == 1 and json.loads(payload)["t"] == "next")
    [row] = recorded("interop.count", 1)
    log = server.log.read_text()
    assert [line for line in log.splitlines() if any(t in line for t in TRACEBACKS)] == []
    assert (row.end_reason, row.error_code) == ("disconnected", "")
    assert row.items_out == items > 0  # what was sent was delivered; nothing more was counted
