"""Frames of protocol v1: parsing and encoding, with no I/O.

Each WebSocket text frame is one JSON object whose ``t`` field names its type.
Parsing checks the shape of a frame (types of fields, required fields) and
raises :class:`FrameError` for anything malformed; whether a frame fits the
state of the connection (ids, open calls) is for :mod:`.session` to decide.
Encoding is on the hot path, so server frames are built as plain dicts and
dumped once, without intermediate objects.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, TypeGuard, Union

from .codes import ErrorCode

_MISSING: Any = object()

JSONDefault = Callable[[Any], Any]


class FrameError(ValueError):
    """A frame that breaks the protocol; answered with an ``error`` frame whose id is null."""

    # The id of a malformed ``call`` frame whose id itself is valid: it is used all the same.
    call_id: int | None = None

    def __init__(self, message: str, id: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.id = id

    def details(self) -> dict[str, Any]:
        return {} if self.id is None else {"id": self.id}


# -- client -> server frames -------------------------------------------------


@dataclass(slots=True)
class CallFrame:
    id: int
    method: str
    args: dict[str, Any] = field(default_factory=dict)
    credit: int | None = None
    timeout: float | None = None
    resume: str | None = None


@dataclass(slots=True)
class NextFrame:
    id: int
    data: Any
    eid: str | None = None


@dataclass(slots=True)
class EndFrame:
    id: int
    data: Any = None


@dataclass(slots=True)
class CreditFrame:
    id: int
    n: int


@dataclass(slots=True)
class CancelFrame:
    id: int


@dataclass(slots=True)
class PingFrame:
    data: Any = None


@dataclass(slots=True)
class PongFrame:
    data: Any = None


# -- server -> client frames (parsed by clients) ------------------------------


@dataclass(slots=True)
class HelloFrame:
    version: int
    conn: str
    heartbeat: float
    limits: dict[str, int]


@dataclass(slots=True)
class ErrorFrame:
    id: int | None
    code: str
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ReadyFrame:
    id: int
    eid: str
    recovered: bool | None = None


ClientFrame = Union[CallFrame, NextFrame, EndFrame, CreditFrame, CancelFrame, PingFrame, PongFrame]
ServerFrame = Union[
    HelloFrame, NextFrame, EndFrame, ErrorFrame, CreditFrame, ReadyFrame, PingFrame, PongFrame
]


# -- field checks -------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[int]:
    return type(value) is int  # bool is a subclass of int and is not an id


def _is_number(value: object) -> TypeGuard[float]:
    return type(value) in (int, float)  # not bool


# The largest id a frame may carry: JavaScript's largest exact integer, which
# also fits the 64-bit columns the admin's history stores ids in.
MAX_ID = 2**53 - 1


def _frame_id(obj: dict[str, Any], t: str) -> int:
    value = obj.get("id", _MISSING)
    if value is _MISSING:
        raise FrameError(f"'{t}' frame needs an 'id'")
    if not _is_int(value) or not 0 < value <= MAX_ID:
        raise FrameError(f"'{t}' frame 'id' must be a positive integer up to 2**53 - 1")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (_INFINITY, -_INFINITY):
        raise ValueError(f"{text[:20]} is too large for a number")
    return value


_INFINITY = float("inf")
# An escape that may be half of a surrogate pair (\ud800-\udfff); only text
# that has one is walked for a lone half, so ordinary frames pay one search.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


class LoneSurrogate(ValueError):
    """A string escapes half of a UTF-16 surrogate pair: no UTF-8 can carry it back."""


def _check_surrogates(value: Any) -> None:
    stack = [value]
    while stack:  # iterative: the nesting depth is the parser's to limit
        item = stack.pop()
        if type(item) is str:
            try:
                item.encode()
            except UnicodeEncodeError:
                raise LoneSurrogate("a string holds a lone surrogate (an unpaired \\ud800-\\udfff escape)") from None
        elif type(item) is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)


def loads(text: str | bytes) -> Any:
    """JSON as the protocol reads it anywhere (frames, HTTP bodies, query values).

    ``NaN`` and ``Infinity``, which Python's json accepts and JSON does not,
    raise ``ValueError`` like any other invalid JSON, and so does a number too
    large for a float (``1e999``). A lone surrogate escape (``"\\ud800"``)
    raises :class:`LoneSurrogate`, a ``ValueError``: Python would read it into
    a string that no UTF-8 socket can send back, so echoing it (a ``pong``, an
    item) would fail later, far from the cause. Deep nesting raises
    ``RecursionError``.
    """
    value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    if _SURROGATE_ESCAPE.search(text if isinstance(text, str) else text.decode("utf-8", "replace")):
        _check_surrogates(value)
    return value


def _load_object(text: str | bytes) -> dict[str, Any]:
    if not isinstance(text, str):
        raise FrameError("binary frames are not accepted on the JSON subprotocol")
    try:
        obj = loads(text)
    except LoneSurrogate as exc:
        raise FrameError(str(exc)) from None
    except ValueError:
        raise FrameError("frame is not valid JSON") from None
    except RecursionError:
        raise FrameError("frame is nested too deeply") from None
    if type(obj) is not dict:
        raise FrameError("frame must be a JSON object")
    t = obj.get("t")
    if not isinstance(t, str):
        raise FrameError("frame needs a string 't' field naming its type")
    return obj


# -- parsing client frames (server side) --------------------------------------


def _call_error(id: int, message: str) -> FrameError:
    """A malformed call frame whose id is valid: the rejected call uses that id all the same."""
    exc = FrameError(message, id)
    exc.call_id = id
    return exc


def _parse_call(obj: dict[str, Any]) -> CallFrame:
    id = _frame_id(obj, "call")
    method = obj.get("m")
    if not isinstance(method, str) or not method:
        raise _call_error(id, "'call' frame needs a method name string 'm'")
    args = obj.get("a")
    if args is None:
        args = {}
    elif type(args) is not dict:
        raise _call_error(id, "'call' frame 'a' must be an object")
    credit = obj.get("credit")
    if credit is not None and (not _is_int(credit) or credit < 0):
        raise _call_error(id, "'call' frame 'credit' must be a non-negative integer")
    timeout = obj.get("timeout")
    if timeout is not None:
        if type(timeout) not in (int, float) or not timeout > 0 or timeout == float("inf"):
            raise _call_error(id, "'call' frame 'timeout' must be a positive number of seconds")
        try:
            timeout = float(timeout)
        except OverflowError:  # an integer of hundreds of digits
            raise _call_error(id, "'call' frame 'timeout' is too large") from None
    resume = obj.get("resume")
    if resume is not None and not isinstance(resume, str):
        raise _call_error(id, "'call' frame 'resume' must be an event id string")
    return CallFrame(id, method, args, credit, timeout, resume)


def _parse_next(obj: dict[str, Any]) -> NextFrame:
    id = _frame_id(obj, "next")
    if "d" not in obj:
        raise FrameError("'next' frame needs a 'd' value", id)
    return NextFrame(id, obj["d"])


def _parse_end(obj: dict[str, Any]) -> EndFrame:
    return EndFrame(_frame_id(obj, "end"))


def _parse_credit(obj: dict[str, Any]) -> CreditFrame:
    id = _frame_id(obj, "credit")
    n = obj.get("n")
    if not _is_int(n) or n <= 0:
        raise FrameError("'credit' frame 'n' must be a positive integer", id)
    return CreditFrame(id, n)


def _parse_cancel(obj: dict[str, Any]) -> CancelFrame:
    return CancelFrame(_frame_id(obj, "cancel"))


_CLIENT_PARSERS: dict[str, Callable[[dict[str, Any]], ClientFrame]] = {
    "call": _parse_call,
    "next": _parse_next,
    "end": _parse_end,
    "credit": _parse_credit,
    "cancel": _parse_cancel,
    "ping": lambda obj: PingFrame(obj.get("d")),
    "pong": lambda obj: PongFrame(obj.get("d")),
}


def parse_client_frame(text: str | bytes) -> ClientFrame:
    """Parse one frame a client sent; raise :class:`FrameError` if it is malformed."""
    obj = _load_object(text)
    parser = _CLIENT_PARSERS.get(obj["t"])
    if parser is None:
        raise FrameError(f"unknown frame type {obj['t']!r}", _optional_id(obj))
    return parser(obj)


def _optional_id(obj: dict[str, Any]) -> int | None:
    value = obj.get("id")
    return value if _is_int(value) and 0 < value <= MAX_ID else None


# -- parsing server frames (client side) --------------------------------------


def _parse_hello(obj: dict[str, Any]) -> HelloFrame:
    version, conn = obj.get("v"), obj.get("conn")
    heartbeat, limits = obj.get("heartbeat"), obj.get("limits")
    if not _is_int(version) or not isinstance(conn, str):
        raise FrameError("'hello' frame needs an integer 'v' and a string 'conn'")
    if not _is_number(heartbeat) or not isinstance(limits, dict):
        raise FrameError("'hello' frame needs a number 'heartbeat' and an object 'limits'")
    return HelloFrame(version, conn, heartbeat, limits)


def _parse_server_next(obj: dict[str, Any]) -> NextFrame:
    frame = _parse_next(obj)
    eid = obj.get("eid")
    if eid is not None and not isinstance(eid, str):
        raise FrameError("'next' frame 'eid' must be a string", frame.id)
    frame.eid = eid
    return frame


def _parse_server_end(obj: dict[str, Any]) -> EndFrame:
    return EndFrame(_frame_id(obj, "end"), obj.get("d"))


def _parse_error(obj: dict[str, Any]) -> ErrorFrame:
    id = obj.get("id")
    if id is not None and (not _is_int(id) or id <= 0):
        raise FrameError("'error' frame 'id' must be a positive integer or null")
    code = obj.get("code")
    if not isinstance(code, str):
        raise FrameError("'error' frame needs a string 'code'", id)
    message = obj.get("message") or ""
    details = obj.get("details") or {}
    if not isinstance(message, str) or not isinstance(details, dict):
        raise FrameError("'error' frame 'message' must be a string, 'details' an object", id)
    return ErrorFrame(id, code, message, details)


def _parse_ready(obj: dict[str, Any]) -> ReadyFrame:
    id = _frame_id(obj, "ready")
    eid, recovered = obj.get("eid"), obj.get("recovered")
    if not isinstance(eid, str):
        raise FrameError("'ready' frame needs a string 'eid'", id)
    if recovered is not None and not isinstance(recovered, bool):
        raise FrameError("'ready' frame 'recovered' must be a boolean", id)
    return ReadyFrame(id, eid, recovered)


_SERVER_PARSERS: dict[str, Callable[[dict[str, Any]], ServerFrame]] = {
    "hello": _parse_hello,
    "next": _parse_server_next,
    "end": _parse_server_end,
    "error": _parse_error,
    "credit": _parse_credit,
    "ready": _parse_ready,
    "ping": lambda obj: PingFrame(obj.get("d")),
    "pong": lambda obj: PongFrame(obj.get("d")),
}


def parse_server_frame(text: str | bytes) -> ServerFrame:
    """Parse one frame a server sent; raise :class:`FrameError` if it is malformed."""
    obj = _load_object(text)
    parser = _SERVER_PARSERS.get(obj["t"])
    if parser is None:
        raise FrameError(f"unknown frame type {obj['t']!r}", _optional_id(obj))
    return parser(obj)


# -- encoding -------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _encoder(default: JSONDefault | None) -> json.JSONEncoder:
    # json.dumps with any non-default option builds a new JSONEncoder per call,
    # a third of the cost of a small frame; an encoder keeps no state between
    # encode() calls, so one per hook is shared.
    return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=default)


def dumps(obj: Any, default: JSONDefault | None = None) -> str:
    """Compact JSON, UTF-8 as is, and no NaN or Infinity (JSON has neither)."""
    return _encoder(default).encode(obj)


def exceeds(data: str | bytes, max_bytes: int) -> bool:
    """Whether a frame is over ``max_bytes`` of UTF-8, encoding only when it may be."""
    if len(data) * 4 <= max_bytes or isinstance(data, bytes):
        return len(data) > max_bytes
    return len(data.encode()) > max_bytes


def encode_hello(conn: str, heartbeat: float, limits: dict[str, int], version: int = 1) -> str:
    return dumps({"t": "hello", "v": version, "conn": conn, "heartbeat": heartbeat, "limits": limits})


def encode_call(
    id: int,
    method: str,
    args: dict[str, Any] | None = None,
    *,
    credit: int | None = None,
    timeout: float | None = None,
    resume: str | None = None,
    default: JSONDefault | None = None,
) -> str:
    frame: dict[str, Any] = {"t": "call", "id": id, "m": method}
    if args:
        frame["a"] = args
    if credit is not None:
        frame["credit"] = credit
    if timeout is not None:
        frame["timeout"] = timeout
    if resume is not None:
        frame["resume"] = resume
    return dumps(frame, default)


def encode_next(id: int | None, data: Any, eid: str | None = None, default: JSONDefault | None = None) -> str:
    frame: dict[str, Any] = {"t": "next", "id": id, "d": data}
    if id is None:
        del frame["id"]
    if eid is not None:
        frame["eid"] = eid
    return dumps(frame, default)


def encode_next_json(id: int | None, data_json: str, eid: str | None = None) -> str:
    """A ``next`` frame around an item that is JSON already.

    A topic's event is encoded once, when it is published; each subscriber's
    frame is then put together around that text instead of encoding it again.
    ``eid`` is one the server made (``<epoch>:<offset>``), so it needs no escaping.
    """
    head = '{"t":"next","d":' if id is None else f'{{"t":"next","id":{id},"d":'
    return head + data_json + ("}" if eid is None else f',"eid":"{eid}"}}')


def encode_end(id: int | None, data: Any = None, default: JSONDefault | None = None) -> str:
    frame: dict[str, Any] = {"t": "end", "id": id}
    if id is None:
        del frame["id"]
    if data is not None:
        frame["d"] = data
    return dumps(frame, default)


def encode_client_end(id: int) -> str:
    return dumps({"t": "end", "id": id})


def encode_error(
    id: int | None,
    code: ErrorCode | str,
    message: str = "",
    details: dict[str, Any] | None = None,
    default: JSONDefault | None = None,
) -> str:
    frame = {"t": "error", "id": id, "code": str(code), "message": message, "details": details or {}}
    return dumps(frame, default)


def encode_credit(id: int, n: int) -> str:
    return dumps({"t": "credit", "id": id, "n": n})


def encode_cancel(id: int) -> str:
    return dumps({"t": "cancel", "id": id})


def encode_ready(id: int, eid: str, recovered: bool | None = None) -> str:
    frame: dict[str, Any] = {"t": "ready", "id": id, "eid": eid}
    if recovered is not None:
        frame["recovered"] = recovered
    return dumps(frame)


def encode_ping(data: Any = None) -> str:
    return '{"t":"ping"}' if data is None else dumps({"t": "ping", "d": data})


def encode_pong(data: Any = None, default: JSONDefault | None = None) -> str:
    return dumps({"t": "pong", "d": data}, default)
