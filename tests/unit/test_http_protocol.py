"""Unit tests of the HTTP transport's wire format (streaming_app.protocol.http) and query arguments.

No sockets and, for the protocol part, no Django: content negotiation and the
SSE and NDJSON records are plain functions of strings.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import inspect
import json
import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any, Literal

import pytest

from streaming_app.arguments import ArgumentSpec
from streaming_app.exceptions import InvalidArgument
from streaming_app.protocol import frames as wire
from streaming_app.protocol.http import (
    JSON,
    NDJSON,
    SSE,
    NDJSONRecords,
    SSERecords,
    error_body,
    negotiate,
    parse_timeout,
    result_body,
)

ROOT = Path(__file__).resolve().parents[2]
STREAM_OFFERS = [SSE, NDJSON]


def sse_events(text: str) -> list[dict[str, str]]:
    """Parse SSE text the way the WHATWG algorithm does (fields per blank-line-separated block)."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if fields:
            events.append(fields)
    return events


# -- negotiation ------------------------------------------------------------------


def test_no_accept_header_gets_the_first_offer():
    assert negotiate(None, STREAM_OFFERS) == SSE
    assert negotiate(None, [JSON]) == JSON


def test_a_blank_accept_header_is_treated_as_absent():
    assert negotiate("  ", STREAM_OFFERS) == SSE


def test_any_type_gets_the_first_offer():
    assert negotiate("*/*", STREAM_OFFERS) == SSE


def test_an_exact_type_is_chosen():
    assert negotiate("application/x-ndjson", STREAM_OFFERS) == NDJSON
    assert negotiate("text/event-stream", STREAM_OFFERS) == SSE


def test_the_higher_weight_wins():
    assert negotiate("text/event-stream;q=0.5, application/x-ndjson", STREAM_OFFERS) == NDJSON


def test_a_subtype_wildcard_matches_its_type_only():
    assert negotiate("application/*", STREAM_OFFERS) == NDJSON
    assert negotiate("text/*", [JSON]) is None


def test_a_more_specific_range_overrides_a_wildcard():
    assert negotiate("*/*, text/event-stream;q=0", STREAM_OFFERS) == NDJSON


def test_q_zero_refuses_a_type():
    assert negotiate("application/json;q=0", [JSON]) is None


def test_nothing_acceptable_is_none():
    assert negotiate("text/html", [JSON]) is None
    assert negotiate("application/json", STREAM_OFFERS) is None


def test_media_type_parameters_other_than_q_are_ignored():
    assert negotiate("application/json; charset=utf-8", [JSON]) == JSON


def test_a_browser_navigation_accept_gets_json_for_a_unary_call():
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
    assert negotiate(browser, [JSON]) == JSON


def test_matching_ignores_case():
    assert negotiate("Text/Event-Stream", STREAM_OFFERS) == SSE


def test_an_unreadable_weight_is_ignored():
    assert negotiate("application/x-ndjson;q=abc, text/event-stream;q=0.5", STREAM_OFFERS) == NDJSON


def test_garbage_accept_matches_nothing():
    assert negotiate("garbage,,;;", STREAM_OFFERS) is None


# -- SSE records -------------------------------------------------------------------------


def test_sse_item_is_a_next_event_with_json_data():
    text = SSERecords().next({"i": 1, "s": "é"})
    assert text == 'event: next\ndata: {"i":1,"s":"é"}\n\n'


def test_sse_item_with_an_event_id_carries_it_first():
    assert sse_events(SSERecords().next(1, eid="3:17")) == [{"id": "3:17", "event": "next", "data": "1"}]


def test_sse_event_id_with_a_line_break_is_left_out():
    assert "id:" not in SSERecords().next(1, eid="3:\n17")


def test_sse_data_stays_on_one_line_whatever_the_item():
    text = SSERecords().next({"text": "line one\nline two\r\nthree\u2028"})
    [event] = sse_events(text)
    assert json.loads(event["data"]) == {"text": "line one\nline two\r\nthree\u2028"}
    assert text.count("\n") == 3  # "event:", "data:" and the blank line


def test_sse_end_carries_the_result_or_null():
    assert SSERecords().end({"total": 3}) == 'event: end\ndata: {"total":3}\n\n'
    assert SSERecords().end(None) == "event: end\ndata: null\n\n"


def test_sse_error_carries_code_message_and_details():
    [event] = sse_events(SSERecords().error("not_found", "Gone.", {"id": 4}))
    assert event["event"] == "error"
    assert json.loads(event["data"]) == {"code": "not_found", "message": "Gone.", "details": {"id": 4}}


def test_sse_ready_has_id_event_and_data():
    assert sse_events(SSERecords().ready("1:5", recovered=True)) == [
        {"id": "1:5", "event": "ready", "data": '{"eid":"1:5","recovered":true}'}
    ]
    assert json.loads(sse_events(SSERecords().ready("1:5"))[0]["data"]) == {"eid": "1:5"}


def test_sse_opening_is_the_retry_hint():
    assert SSERecords(retry=1500).opening() == "retry: 1500\n\n"
    assert SSERecords(retry=None).opening() == ""


def test_sse_keepalive_is_a_comment_that_dispatches_no_event():
    keepalive = SSERecords().keepalive()
    assert keepalive.startswith(":") and keepalive.endswith("\n\n")
    assert sse_events(keepalive) == []


def test_sse_uses_the_json_default_hook_for_items():
    records = SSERecords(default=lambda value: sorted(value))
    assert sse_events(records.next({3, 1}))[0]["data"] == "[1,3]"


def test_sse_item_that_is_not_json_raises():
    with pytest.raises(ValueError):
        SSERecords().next(float("nan"))
    with pytest.raises(TypeError):
        SSERecords().next(object())


# -- NDJSON records ------------------------------------------------------------------------


def test_ndjson_records_are_websocket_frames_without_id_one_per_line():
    records = NDJSONRecords()
    lines = [records.next({"i": 0}), records.next(1, eid="2:9"), records.end({"total": 2})]
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    assert [json.loads(line) for line in lines] == [
        {"t": "next", "d": {"i": 0}},
        {"t": "next", "d": 1, "eid": "2:9"},
        {"t": "end", "d": {"total": 2}},
    ]


@pytest.mark.parametrize("data", [{"i": 0, "s": "é\n"}, None, [1, 2.5], "x"])
@pytest.mark.parametrize("eid", [None, "4:2", 'odd "id"'])
def test_ndjson_item_is_byte_for_byte_the_websocket_next_frame_without_id(data, eid):
    assert NDJSONRecords().next(data, eid) == wire.encode_next(None, data, eid) + "\n"


def test_ndjson_end_without_result_has_no_d():
    assert json.loads(NDJSONRecords().end(None)) == {"t": "end"}


def test_ndjson_error_has_code_message_and_details_and_no_id():
    assert json.loads(NDJSONRecords().error("internal", "Internal error.")) == {
        "t": "error", "code": "internal", "message": "Internal error.", "details": {},
    }


def test_ndjson_ready_and_keepalive():
    assert json.loads(NDJSONRecords().ready("1:2", recovered=False)) == {"t": "ready", "eid": "1:2", "recovered": False}
    assert NDJSONRecords().keepalive() == '{"t":"ping"}\n'
    assert NDJSONRecords().opening() == ""


def test_ndjson_item_with_a_line_break_stays_on_one_line():
    line = NDJSONRecords().next("a\nb")
    assert line.count("\n") == 1 and json.loads(line)["d"] == "a\nb"


# -- bodies and parameters -------------------------------------------------------------------


def test_error_body_shape():
    assert json.loads(error_body("permission_denied", "No.", {"code": "x"})) == {
        "error": {"code": "permission_denied", "message": "No.", "details": {"code": "x"}}
    }
    assert json.loads(error_body("internal")) == {"error": {"code": "internal", "message": "", "details": {}}}


def test_result_body_keeps_a_null_result():
    assert result_body(None) == '{"d":null}'
    assert result_body({"a": [1]}) == '{"d":{"a":[1]}}'


@pytest.mark.parametrize("text, value", [("1", 1.0), ("0.25", 0.25), ("30", 30.0)])
def test_timeout_accepts_positive_finite_seconds(text, value):
    assert parse_timeout(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "abc", "", "nan", "inf", "1e400"])
def test_timeout_refuses_anything_else(text):
    with pytest.raises(ValueError):
        parse_timeout(text)


def test_the_http_framing_module_imports_no_django():
    code = (
        "import sys; import streaming_app.protocol.http; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'channels', 'rest_framework')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# -- query arguments (streaming_app.arguments) -----------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    ONE = 1


@dataclasses.dataclass
class Point:
    x: int
    y: int


def spec_of(func: Any) -> ArgumentSpec:
    parameters = list(inspect.signature(func).parameters.values())
    return ArgumentSpec(parameters, typing.get_type_hints(func))


def decoded(func: Any, **params: str) -> dict[str, Any]:
    spec = spec_of(func)
    return spec.validate(spec.decode_query(params))


def test_query_integer_is_read_as_json():
    def f(n: int): ...
    assert decoded(f, n="5") == {"n": 5}


def test_query_string_stays_a_string_even_when_it_looks_like_json():
    def f(payload: str): ...
    assert decoded(f, payload="5") == {"payload": "5"}
    assert decoded(f, payload='{"a":1}') == {"payload": '{"a":1}'}


def test_query_booleans_floats_and_null():
    def f(flag: bool, ratio: float, limit: int | None = 3): ...
    assert decoded(f, flag="true", ratio="0.5", limit="null") == {"flag": True, "ratio": 0.5, "limit": None}


def test_query_lists_dicts_and_dataclasses_are_json():
    def f(ids: list[int], meta: dict[str, str], at: Point): ...
    assert decoded(f, ids="[1,2]", meta='{"k":"v"}', at='{"x":1,"y":2}') == {
        "ids": [1, 2], "meta": {"k": "v"}, "at": Point(1, 2),
    }


def test_query_dates_uuids_decimals_and_str_literals_parse_from_the_string():
    def f(day: datetime.date, price: decimal.Decimal, mode: Literal["a", "b"]): ...
    assert decoded(f, day="2024-05-01", price="1.10", mode="b") == {
        "day": datetime.date(2024, 5, 1), "price": decimal.Decimal("1.10"), "mode": "b",
    }


def test_query_enums_take_either_kind_of_value():
    def f(a: Color, b: Color): ...
    assert decoded(f, a="red", b="1") == {"a": Color.RED, "b": Color.ONE}


def test_query_untyped_parameters_get_the_string():
    def f(data=None, **extra): ...
    assert decoded(f, data="5", other="[1]") == {"data": "5", "other": "[1]"}


def test_query_value_of_the_wrong_type_is_reported_like_any_argument():
    def f(n: int): ...
    with pytest.raises(InvalidArgument) as info:
        decoded(f, n="five")
    assert info.value.details == {"errors": {"n": ["Must be an integer."]}}


def test_query_nan_is_not_a_number():
    def f(ratio: float): ...
    with pytest.raises(InvalidArgument):
        decoded(f, ratio="NaN")


def test_query_unknown_parameter_is_reported():
    def f(n: int = 0): ...
    with pytest.raises(InvalidArgument) as info:
        decoded(f, bogus="1")
    assert info.value.details == {"errors": {"bogus": ["Unknown argument."]}}
