"""Protocol v1 without I/O: frames, codes, call state and connection rules.

Imports neither Django nor Channels, so the Python client and any transport
can share it.
"""

from .codes import (
    ERROR_CODES,
    HTTP_STATUS,
    PROTOCOL_VERSION,
    RECONNECTABLE_CLOSE_CODES,
    SUBPROTOCOL,
    CloseCode,
    ErrorCode,
    is_reconnectable,
)
from .connection import FrameTooLarge, Limits, ServerConnection
from .frames import (
    CallFrame,
    CancelFrame,
    ClientFrame,
    CreditFrame,
    EndFrame,
    ErrorFrame,
    FrameError,
    HelloFrame,
    NextFrame,
    PingFrame,
    PongFrame,
    ReadyFrame,
    ServerFrame,
    parse_client_frame,
    parse_server_frame,
)
from .session import Call, CallKind, CallState, Credit, ServerSession, WindowExceeded

__all__ = [
    "ERROR_CODES",
    "HTTP_STATUS",
    "PROTOCOL_VERSION",
    "RECONNECTABLE_CLOSE_CODES",
    "SUBPROTOCOL",
    "Call",
    "CallFrame",
    "CallKind",
    "CallState",
    "CancelFrame",
    "ClientFrame",
    "CloseCode",
    "Credit",
    "CreditFrame",
    "EndFrame",
    "ErrorCode",
    "ErrorFrame",
    "FrameError",
    "FrameTooLarge",
    "HelloFrame",
    "Limits",
    "NextFrame",
    "PingFrame",
    "PongFrame",
    "ReadyFrame",
    "ServerConnection",
    "ServerFrame",
    "ServerSession",
    "WindowExceeded",
    "is_reconnectable",
    "parse_client_frame",
    "parse_server_frame",
]
