"""The HTTP transport's wire format, without I/O: negotiation and stream records.

A call over HTTP answers with one of three media types: JSON for a unary
result, and for a server stream either Server-Sent Events or NDJSON. This
module chooses the media type from an ``Accept`` header and turns items and
outcomes into the bytes of each format; the Django view in
:mod:`streaming_app.transports.http` drives it. Like the rest of :mod:`.protocol` it
imports neither Django nor Channels and is tested without sockets.

Stream records, one per item or outcome:

=============  ==============================================  =========================================
record         SSE (``text/event-stream``)                     NDJSON (``application/x-ndjson``)
=============  ==============================================  =========================================
opening        ``retry: <ms>`` (when configured)               nothing
item           ``[id: <eid>]`` ``event: next`` ``data: <d>``   ``{"t":"next","d":<d>[,"eid":"<eid>"]}``
ready          ``id: <eid>`` ``event: ready`` ``data: {..}``   ``{"t":"ready","eid":..[,"recovered":..]}``
end            ``event: end`` ``data: <result or null>``       ``{"t":"end"[,"d":<result>]}``
error          ``event: error`` ``data: {code,message,...}``   ``{"t":"error","code":..,"message":..,"details":{}}``
keepalive      ``: keepalive`` (a comment)                     ``{"t":"ping"}``
=============  ==============================================  =========================================

The NDJSON objects are the WebSocket server frames without ``id``.
"""

from __future__ import annotations

from typing import Any, Sequence

from .codes import ErrorCode
from .frames import JSONDefault, dumps, encode_end, encode_ping

JSON = "application/json"
SSE = "text/event-stream"
NDJSON = "application/x-ndjson"


# -- content negotiation --------------------------------------------------------


def _parse_accept(header: str) -> list[tuple[str, str, float]]:
    """``(type, subtype, q)`` of each media range; parameters other than q are ignored."""
    ranges = []
    for token in header.split(","):
        media, *params = token.split(";")
        kind, _, subtype = media.strip().lower().partition("/")
        if not kind or not subtype:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 1.0  # an unreadable weight is ignored, as Django does
                if not 0.0 <= q <= 1.0:
                    q = 1.0
        ranges.append((kind, subtype, q))
    return ranges


def _quality(offer: str, ranges: list[tuple[str, str, float]]) -> float:
    """The weight the most specific matching range gives ``offer`` (RFC 9110, 12.5.1)."""
    kind, _, subtype = offer.partition("/")
    best_specificity, q = -1, 0.0
    for range_kind, range_subtype, range_q in ranges:
        if range_kind == kind and range_subtype == subtype:
            specificity = 2
        elif range_kind == kind and range_subtype == "*":
            specificity = 1
        elif range_kind == "*" and range_subtype == "*":
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best_specificity, q = specificity, range_q
    return q


def negotiate(accept: str | None, offers: Sequence[str]) -> str | None:
    """The offer the client prefers, or None if it accepts none of them.

    A missing or blank ``Accept`` accepts anything. Ties go to the earlier
    offer, so the order of ``offers`` is the server's preference. Media type
    parameters other than ``q`` (``charset=utf-8``) are ignored.
    """
    if accept is None or not accept.strip():
        return offers[0] if offers else None
    ranges = _parse_accept(accept)
    best, best_q = None, 0.0
    for offer in offers:
        q = _quality(offer, ranges)
        if q > best_q:
            best, best_q = offer, q
    return best


# -- stream records ----------------------------------------------------------------


def _safe_id(eid: str) -> bool:
    """An SSE ``id`` field cannot hold a line break or NUL (the spec ignores such ids)."""
    return not any(c in eid for c in "\r\n\0")


class SSERecords:
    """Server-Sent Events, readable by a plain browser ``EventSource``.

    ``retry`` (milliseconds, or None) is the reconnection delay hint sent
    first. JSON never contains a raw line break, so every ``data`` is one line.
    """

    media_type = SSE
    content_type = "text/event-stream; charset=utf-8"

    def __init__(self, retry: int | None = None, default: JSONDefault | None = None) -> None:
        self.retry = retry
        self.default = default

    def opening(self) -> str:
        return "" if self.retry is None else f"retry: {int(self.retry)}\n\n"

    def next(self, data: Any, eid: str | None = None) -> str:
        return self.next_json(dumps(data, self.default), eid)

    def next_json(self, data_json: str, eid: str | None = None) -> str:
        """An item already encoded (a topic event, encoded once for every subscriber)."""
        if eid is not None and _safe_id(eid):
            return f"id: {eid}\nevent: next\ndata: {data_json}\n\n"
        return f"event: next\ndata: {data_json}\n\n"

    def ready(self, eid: str, recovered: bool | None = None) -> str:
        data: dict[str, Any] = {"eid": eid}
        if recovered is not None:
            data["recovered"] = recovered
        id_line = f"id: {eid}\n" if _safe_id(eid) else ""
        return f"{id_line}event: ready\ndata: {dumps(data)}\n\n"

    def end(self, result: Any = None) -> str:
        return f"event: end\ndata: {dumps(result, self.default)}\n\n"

    def error(self, code: ErrorCode | str, message: str = "", details: dict[str, Any] | None = None) -> str:
        data = {"code": str(code), "message": message, "details": details or {}}
        return f"event: error\ndata: {dumps(data, self.default)}\n\n"

    def keepalive(self) -> str:
        return ": keepalive\n\n"


class NDJSONRecords:
    """One JSON object per line: the WebSocket server frames without ``id``."""

    media_type = NDJSON
    content_type = NDJSON

    def __init__(self, default: JSONDefault | None = None) -> None:
        self.default = default

    def opening(self) -> str:
        return ""

    def next(self, data: Any, eid: str | None = None) -> str:
        return self.next_json(dumps(data, self.default), eid)

    def next_json(self, data_json: str, eid: str | None = None) -> str:
        # encode_next(None, data, eid) + "\n", without building and encoding a wrapper dict per item
        if eid is None:
            return f'{{"t":"next","d":{data_json}}}\n'
        return f'{{"t":"next","d":{data_json},"eid":{dumps(eid)}}}\n'

    def ready(self, eid: str, recovered: bool | None = None) -> str:
        frame: dict[str, Any] = {"t": "ready", "eid": eid}
        if recovered is not None:
            frame["recovered"] = recovered
        return dumps(frame) + "\n"

    def end(self, result: Any = None) -> str:
        return encode_end(None, result, self.default) + "\n"

    def error(self, code: ErrorCode | str, message: str = "", details: dict[str, Any] | None = None) -> str:
        frame = {"t": "error", "code": str(code), "message": message, "details": details or {}}
        return dumps(frame, self.default) + "\n"

    def keepalive(self) -> str:
        return encode_ping() + "\n"


def error_body(code: ErrorCode | str, message: str = "", details: dict[str, Any] | None = None,
               default: JSONDefault | None = None) -> str:
    """The JSON body of an HTTP error response: ``{"error": {"code", "message", "details"}}``."""
    return dumps({"error": {"code": str(code), "message": message, "details": details or {}}}, default)


def result_body(result: Any, default: JSONDefault | None = None) -> str:
    """The JSON body of a unary call's success: ``{"d": <result>}``."""
    return dumps({"d": result}, default)


def parse_timeout(text: str) -> float:
    """A ``timeout`` query parameter: a positive, finite number of seconds; ValueError otherwise."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise ValueError(text)
    return value
