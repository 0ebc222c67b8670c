"""Error codes and close codes of protocol v1.

Codes are data shared by the server, the clients and the HTTP transport, so
they live here, free of Django and of any I/O.
"""

from __future__ import annotations

import enum

PROTOCOL_VERSION = 1
SUBPROTOCOL = "streaming.v1.json"


class ErrorCode(str, enum.Enum):
    """gRPC's canonical status codes, spelled in snake case on the wire."""

    CANCELLED = "cancelled"
    UNKNOWN = "unknown"
    INVALID_ARGUMENT = "invalid_argument"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    PERMISSION_DENIED = "permission_denied"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    FAILED_PRECONDITION = "failed_precondition"
    ABORTED = "aborted"
    OUT_OF_RANGE = "out_of_range"
    UNIMPLEMENTED = "unimplemented"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"
    DATA_LOSS = "data_loss"
    UNAUTHENTICATED = "unauthenticated"

    def __str__(self) -> str:
        return self.value

    @property
    def http_status(self) -> int:
        """The HTTP status the HTTP transport answers with for this code."""
        return HTTP_STATUS.get(self, 500)


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.CANCELLED: 499,
    ErrorCode.UNIMPLEMENTED: 501,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.DEADLINE_EXCEEDED: 504,
}

ERROR_CODES: frozenset[str] = frozenset(code.value for code in ErrorCode)


class CloseCode(enum.IntEnum):
    """WebSocket close codes: daphne lets an application send 1000 and 3000-4999."""

    NORMAL = 1000
    ABNORMAL = 1006  # never sent; seen by clients when the TCP connection drops
    INTERNAL_ERROR_WS = 1011  # never sent by us; a server may use it
    TERMINATED = 4000
    BAD_FRAMES = 4400
    INVALID_CREDENTIALS = 4401
    FORBIDDEN = 4403
    HEARTBEAT_TIMEOUT = 4408
    FRAME_TOO_LARGE = 4413
    TOO_MANY_CONNECTIONS = 4429
    INTERNAL_ERROR = 4500
    DRAINING = 4503

    @property
    def reconnectable(self) -> bool:
        """Whether a client should reconnect (with backoff and jitter) after it."""
        return self.value in RECONNECTABLE_CLOSE_CODES


RECONNECTABLE_CLOSE_CODES: frozenset[int] = frozenset({1006, 1011, 4408, 4429, 4500, 4503})


def is_reconnectable(close_code: int | None) -> bool:
    """Whether a client should reconnect after a close with this code."""
    return close_code in RECONNECTABLE_CLOSE_CODES
