"""Unit tests of streaming_app.protocol: frames, encoders and codes.

No Django and no sockets: the protocol package is plain Python that clients
share, so these tests only feed it strings and look at what comes back.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streaming_app.protocol import (
    CallFrame,
    CancelFrame,
    CloseCode,
    CreditFrame,
    EndFrame,
    ErrorCode,
    ErrorFrame,
    FrameError,
    HelloFrame,
    NextFrame,
    PingFrame,
    PongFrame,
    ReadyFrame,
    is_reconnectable,
    parse_client_frame,
    parse_server_frame,
)
from streaming_app.protocol import frames as wire

ROOT = Path(__file__).resolve().parents[2]


def frame(**fields) -> str:
    return json.dumps(fields)


def parse_error(text: str | bytes, parse=parse_client_frame) -> FrameError:
    with pytest.raises(FrameError) as info:
        parse(text)
    return info.value


# -- the package stays free of Django -------------------------------------------------


def test_protocol_package_imports_neither_django_nor_channels():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "import sys, streaming_app.protocol, streaming_app.protocol.frames, "
        "streaming_app.protocol.session, streaming_app.protocol.codes, streaming_app.protocol.connection\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'channels', 'rest_framework'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


# -- client frames: well-formed ---------------------------------------------------------


def test_call_frame_with_every_field_is_parsed():
    parsed = parse_client_frame(
        frame(t="call", id=7, m="orders.watch_all", a={"x": 1}, credit=64, timeout=30, resume="3:14")
    )
    assert parsed == CallFrame(7, "orders.watch_all", {"x": 1}, 64, 30.0, "3:14")
    assert type(parsed.timeout) is float


def test_call_frame_with_only_required_fields_gets_defaults():
    assert parse_client_frame(frame(t="call", id=1, m="a.b")) == CallFrame(1, "a.b", {}, None, None, None)


def test_call_frame_with_null_optionals_gets_defaults():
    parsed = parse_client_frame(frame(t="call", id=1, m="a.b", a=None, credit=None, timeout=None, resume=None))
    assert parsed == CallFrame(1, "a.b", {}, None, None, None)


def test_call_frame_accepts_zero_credit():
    assert parse_client_frame(frame(t="call", id=1, m="a.b", credit=0)).credit == 0


def test_call_frame_accepts_fractional_timeout():
    assert parse_client_frame(frame(t="call", id=1, m="a.b", timeout=0.25)).timeout == 0.25


def test_call_frame_ignores_unknown_fields():
    assert parse_client_frame(frame(t="call", id=1, m="a.b", extra=True)) == CallFrame(1, "a.b")


def test_next_frame_is_parsed():
    assert parse_client_frame(frame(t="next", id=3, d={"v": 1})) == NextFrame(3, {"v": 1})


def test_next_frame_with_null_data_is_parsed():
    assert parse_client_frame(frame(t="next", id=3, d=None)) == NextFrame(3, None)


def test_client_next_frame_ignores_eid():
    assert parse_client_frame(frame(t="next", id=3, d=1, eid="0:1")).eid is None


def test_end_frame_is_parsed_without_data():
    assert parse_client_frame(frame(t="end", id=4, d="ignored")) == EndFrame(4, None)


def test_credit_frame_is_parsed():
    assert parse_client_frame(frame(t="credit", id=5, n=32)) == CreditFrame(5, 32)


def test_cancel_frame_is_parsed():
    assert parse_client_frame(frame(t="cancel", id=6)) == CancelFrame(6)


def test_ping_frame_keeps_its_data():
    assert parse_client_frame(frame(t="ping", d={"k": [1]})) == PingFrame({"k": [1]})


def test_ping_frame_without_data_is_parsed():
    assert parse_client_frame(frame(t="ping")) == PingFrame(None)


def test_pong_frame_is_parsed():
    assert parse_client_frame(frame(t="pong", d=9)) == PongFrame(9)


# -- client frames: malformed -----------------------------------------------------------


def test_binary_frame_is_malformed():
    error = parse_error(b'{"t":"ping"}')
    assert "binary" in error.message
    assert error.id is None


@pytest.mark.parametrize("text", ["", "{", "not json", '{"t":"ping"} trailing'])
def test_text_that_is_not_json_is_malformed(text):
    error = parse_error(text)
    assert error.id is None
    assert error.details() == {}


@pytest.mark.parametrize("text", ["[]", "[1, 2]", '"call"', "7", "null", "true"])
def test_json_that_is_not_an_object_is_malformed(text):
    assert parse_error(text).id is None


@pytest.mark.parametrize("text", ['{"id": 1}', '{"t": 1, "id": 1}', '{"t": null}', '{"t": ["call"]}'])
def test_frame_without_a_string_type_is_malformed(text):
    assert parse_error(text).id is None


def test_unknown_frame_type_reports_its_id():
    error = parse_error(frame(t="subscribe", id=9))
    assert "subscribe" in error.message
    assert error.id == 9
    assert error.details() == {"id": 9}


@pytest.mark.parametrize("bad_id", [None, 0, -1, "9", True, 1.5])
def test_unknown_frame_type_without_a_valid_id_reports_none(bad_id):
    assert parse_error(frame(t="subscribe", id=bad_id)).id is None


def test_server_only_frame_type_is_unknown_from_a_client():
    assert parse_error(frame(t="hello", id=2)).id == 2


@pytest.mark.parametrize("t", ["call", "next", "end", "credit", "cancel"])
def test_frame_without_id_is_malformed(t):
    error = parse_error(frame(t=t, m="a.b", d=1, n=1))
    assert error.id is None
    assert "'id'" in error.message


@pytest.mark.parametrize("t", ["call", "next", "end", "credit", "cancel"])
@pytest.mark.parametrize("bad_id", [0, -3, "7", 7.0, 1.5, True, False, None, [7], {"id": 7}])
def test_frame_with_an_id_that_is_not_a_positive_integer_is_malformed(t, bad_id):
    error = parse_error(frame(t=t, id=bad_id, m="a.b", d=1, n=1))
    assert error.id is None


@pytest.mark.parametrize("method", [None, "", 5, ["a.b"]])
def test_call_frame_without_a_method_name_reports_its_id(method):
    fields = {"t": "call", "id": 7}
    if method is not None:
        fields["m"] = method
    error = parse_error(json.dumps(fields))
    assert error.id == 7
    assert error.details() == {"id": 7}


@pytest.mark.parametrize("args", [[1, 2], "x", 3, True])
def test_call_frame_whose_arguments_are_not_an_object_reports_its_id(args):
    assert parse_error(frame(t="call", id=7, m="a.b", a=args)).id == 7


@pytest.mark.parametrize("credit", [-1, "3", 1.5, 2.0, True, [1]])
def test_call_frame_with_bad_credit_reports_its_id(credit):
    assert parse_error(frame(t="call", id=7, m="a.b", credit=credit)).id == 7


@pytest.mark.parametrize("timeout", [0, -1, "3", True, [1]])
def test_call_frame_with_bad_timeout_reports_its_id(timeout):
    assert parse_error(frame(t="call", id=7, m="a.b", timeout=timeout)).id == 7


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN"])
def test_non_finite_number_literal_is_not_json(literal):
    # Python's json module would read these non-standard literals; JSON has none of them.
    error = parse_error('{"t":"call","id":7,"m":"a.b","timeout":%s}' % literal)
    assert "JSON" in error.message
    assert error.id is None


@pytest.mark.parametrize("literal", ["Infinity", "NaN"])
def test_non_finite_number_inside_item_data_is_not_json(literal):
    assert parse_error('{"t":"next","id":2,"d":[1,%s]}' % literal).id is None


def test_malformed_call_with_a_valid_id_names_it_as_used():
    # The transport claims that id all the same: a rejected call still uses its id.
    error = parse_error(frame(t="call", id=7, m=""))
    assert error.call_id == 7


def test_call_with_an_invalid_id_names_no_used_id():
    assert parse_error(frame(t="call", id=-1, m="a.b")).call_id is None


@pytest.mark.parametrize("fields", [{"t": "next", "id": 7}, {"t": "credit", "id": 7, "n": 0}, {"t": "zap", "id": 7}])
def test_malformed_frame_other_than_call_names_no_used_id(fields):
    error = parse_error(json.dumps(fields))
    assert error.id == 7
    assert error.call_id is None


@pytest.mark.parametrize("resume", [5, True, ["0:1"], {"eid": "0:1"}])
def test_call_frame_with_non_string_resume_reports_its_id(resume):
    assert parse_error(frame(t="call", id=7, m="a.b", resume=resume)).id == 7


def test_next_frame_without_data_reports_its_id():
    error = parse_error(frame(t="next", id=8))
    assert error.id == 8
    assert "'d'" in error.message


@pytest.mark.parametrize("n", [None, 0, -2, "4", 1.5, 4.0, True])
def test_credit_frame_without_a_positive_count_reports_its_id(n):
    fields = {"t": "credit", "id": 5}
    if n is not None:
        fields["n"] = n
    assert parse_error(json.dumps(fields)).id == 5


def test_frame_error_is_a_value_error_with_a_message():
    error = FrameError("bad", 3)
    assert isinstance(error, ValueError)
    assert str(error) == "bad"
    assert error.details() == {"id": 3}
    assert FrameError("bad").details() == {}


# -- server frames (what clients parse) --------------------------------------------------


def test_server_hello_is_parsed():
    text = wire.encode_hello("c1", 25.0, {"max_frame": 1000, "max_calls": 10, "client_window": 64})
    assert parse_server_frame(text) == HelloFrame(1, "c1", 25.0, {"max_frame": 1000, "max_calls": 10, "client_window": 64})


@pytest.mark.parametrize(
    "fields",
    [
        {"v": "1", "conn": "c", "heartbeat": 1, "limits": {}},
        {"v": 1, "conn": 5, "heartbeat": 1, "limits": {}},
        {"v": 1, "conn": "c", "heartbeat": "1", "limits": {}},
        {"v": 1, "conn": "c", "heartbeat": 1, "limits": []},
        {"conn": "c", "heartbeat": 1, "limits": {}},
    ],
)
def test_malformed_server_hello_is_refused(fields):
    assert parse_error(json.dumps({"t": "hello", **fields}), parse_server_frame).id is None


def test_server_next_keeps_its_event_id():
    assert parse_server_frame(frame(t="next", id=2, d=[1], eid="5:9")) == NextFrame(2, [1], "5:9")


def test_server_next_without_event_id_has_none():
    assert parse_server_frame(frame(t="next", id=2, d=1)).eid is None


def test_server_next_with_non_string_event_id_reports_its_id():
    assert parse_error(frame(t="next", id=2, d=1, eid=5), parse_server_frame).id == 2


def test_server_end_keeps_its_result():
    assert parse_server_frame(frame(t="end", id=2, d={"total": 3})) == EndFrame(2, {"total": 3})


def test_server_end_without_result_has_none():
    assert parse_server_frame(frame(t="end", id=2)) == EndFrame(2, None)


def test_server_error_with_a_call_id_is_parsed():
    parsed = parse_server_frame(
        frame(t="error", id=3, code="not_found", message="gone", details={"k": 1})
    )
    assert parsed == ErrorFrame(3, "not_found", "gone", {"k": 1})


def test_server_error_with_null_id_is_parsed():
    parsed = parse_server_frame(frame(t="error", id=None, code="invalid_argument"))
    assert parsed == ErrorFrame(None, "invalid_argument", "", {})


def test_server_error_with_null_message_and_details_gets_empty_ones():
    parsed = parse_server_frame(frame(t="error", id=1, code="internal", message=None, details=None))
    assert (parsed.message, parsed.details) == ("", {})


@pytest.mark.parametrize("bad_id", [0, -1, "3", True])
def test_server_error_with_bad_id_is_refused(bad_id):
    assert parse_error(frame(t="error", id=bad_id, code="internal"), parse_server_frame).id is None


@pytest.mark.parametrize(
    "fields",
    [
        {"id": 3},
        {"id": 3, "code": 13},
        {"id": 3, "code": "internal", "message": 5},
        {"id": 3, "code": "internal", "details": [1]},
    ],
)
def test_malformed_server_error_reports_its_id(fields):
    assert parse_error(json.dumps({"t": "error", **fields}), parse_server_frame).id == 3


def test_server_credit_is_parsed():
    assert parse_server_frame(frame(t="credit", id=4, n=2)) == CreditFrame(4, 2)


def test_server_credit_with_zero_count_reports_its_id():
    assert parse_error(frame(t="credit", id=4, n=0), parse_server_frame).id == 4


def test_server_ready_is_parsed():
    assert parse_server_frame(frame(t="ready", id=5, eid="1:0")) == ReadyFrame(5, "1:0", None)


def test_server_ready_keeps_recovered():
    assert parse_server_frame(frame(t="ready", id=5, eid="1:0", recovered=False)).recovered is False


@pytest.mark.parametrize("fields", [{"eid": 3}, {}, {"eid": "1:0", "recovered": "yes"}])
def test_malformed_server_ready_reports_its_id(fields):
    assert parse_error(json.dumps({"t": "ready", "id": 5, **fields}), parse_server_frame).id == 5


def test_server_ping_and_pong_are_parsed():
    assert parse_server_frame('{"t":"ping"}') == PingFrame(None)
    assert parse_server_frame(frame(t="pong", d="x")) == PongFrame("x")


def test_client_only_frame_type_is_unknown_from_a_server():
    assert parse_error(frame(t="call", id=1, m="a.b"), parse_server_frame).id == 1


def test_server_frame_that_is_not_an_object_is_refused():
    assert parse_error("[]", parse_server_frame).id is None


# -- encoders --------------------------------------------------------------------------------


def test_dumps_is_compact():
    assert wire.dumps({"a": [1, 2], "b": {"c": None}}) == '{"a":[1,2],"b":{"c":null}}'


def test_dumps_keeps_non_ascii_text_as_is():
    assert wire.dumps({"s": "héllo ✓"}) == '{"s":"héllo ✓"}'


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_dumps_refuses_non_finite_numbers(value):
    with pytest.raises(ValueError):
        wire.dumps({"x": value})


def test_dumps_uses_the_default_hook_for_unknown_values():
    assert wire.dumps({"x": frozenset([1])}, default=list) == '{"x":[1]}'


def test_dumps_with_different_hooks_uses_each_hook():
    assert wire.dumps({"x": frozenset([1])}, default=list) == '{"x":[1]}'
    assert wire.dumps({"x": frozenset([1])}, default=lambda v: "other") == '{"x":"other"}'
    assert wire.dumps({"x": 1.5}) == '{"x":1.5}'


def test_dumps_without_a_hook_refuses_unknown_values():
    with pytest.raises(TypeError):
        wire.dumps({"x": object()})


def test_encode_hello():
    assert wire.encode_hello("abc", 25.0, {"max_frame": 10}) == (
        '{"t":"hello","v":1,"conn":"abc","heartbeat":25.0,"limits":{"max_frame":10}}'
    )


def test_encode_call_omits_absent_options():
    assert wire.encode_call(1, "a.b") == '{"t":"call","id":1,"m":"a.b"}'


def test_encode_call_with_every_option():
    text = wire.encode_call(2, "a.b", {"x": 1}, credit=0, timeout=1.5, resume="0:3")
    assert text == '{"t":"call","id":2,"m":"a.b","a":{"x":1},"credit":0,"timeout":1.5,"resume":"0:3"}'


def test_encoded_call_parses_back_to_the_same_frame():
    text = wire.encode_call(9, "ns.m", {"k": [1, "é"]}, credit=3, timeout=2, resume="1:2")
    assert parse_client_frame(text) == CallFrame(9, "ns.m", {"k": [1, "é"]}, 3, 2.0, "1:2")


def test_encode_next_with_event_id():
    assert wire.encode_next(3, {"i": 1}, "0:5") == '{"t":"next","id":3,"d":{"i":1},"eid":"0:5"}'


def test_encode_next_without_event_id():
    assert wire.encode_next(3, None) == '{"t":"next","id":3,"d":null}'


def test_encode_next_without_call_id_for_ndjson():
    assert wire.encode_next(None, 1) == '{"t":"next","d":1}'


def test_encode_next_refuses_nan():
    with pytest.raises(ValueError):
        wire.encode_next(1, math.nan)


def test_encode_next_uses_the_default_hook():
    assert wire.encode_next(1, {1, 2}, default=sorted) == '{"t":"next","id":1,"d":[1,2]}'


def test_encode_end_omits_a_null_result():
    assert wire.encode_end(4) == '{"t":"end","id":4}'


def test_encode_end_keeps_a_falsy_result():
    assert wire.encode_end(4, 0) == '{"t":"end","id":4,"d":0}'
    assert wire.encode_end(4, False) == '{"t":"end","id":4,"d":false}'


def test_encode_end_without_call_id():
    assert wire.encode_end(None, {"n": 1}) == '{"t":"end","d":{"n":1}}'


def test_encode_client_end():
    assert wire.encode_client_end(4) == '{"t":"end","id":4}'
    assert parse_client_frame(wire.encode_client_end(4)) == EndFrame(4)


def test_encode_error_has_every_field():
    assert wire.encode_error(5, ErrorCode.NOT_FOUND, "gone") == (
        '{"t":"error","id":5,"code":"not_found","message":"gone","details":{}}'
    )


def test_encode_error_with_null_id_and_details():
    text = wire.encode_error(None, "invalid_argument", "bad", {"id": 3})
    assert json.loads(text) == {"t": "error", "id": None, "code": "invalid_argument", "message": "bad", "details": {"id": 3}}


def test_encoded_error_parses_back():
    text = wire.encode_error(5, ErrorCode.PERMISSION_DENIED, "no", {"a": 1})
    assert parse_server_frame(text) == ErrorFrame(5, "permission_denied", "no", {"a": 1})


def test_encode_credit_and_cancel():
    assert wire.encode_credit(3, 32) == '{"t":"credit","id":3,"n":32}'
    assert wire.encode_cancel(3) == '{"t":"cancel","id":3}'
    assert parse_client_frame(wire.encode_credit(3, 32)) == CreditFrame(3, 32)
    assert parse_client_frame(wire.encode_cancel(3)) == CancelFrame(3)


def test_encode_ready_without_resume_omits_recovered():
    assert wire.encode_ready(2, "1:0") == '{"t":"ready","id":2,"eid":"1:0"}'


def test_encode_ready_with_recovered():
    assert wire.encode_ready(2, "1:0", False) == '{"t":"ready","id":2,"eid":"1:0","recovered":false}'


def test_encode_ping_without_data():
    assert wire.encode_ping() == '{"t":"ping"}'


def test_encode_ping_with_data():
    assert wire.encode_ping([1]) == '{"t":"ping","d":[1]}'


def test_encode_pong_echoes_data():
    assert wire.encode_pong("x") == '{"t":"pong","d":"x"}'
    assert wire.encode_pong() == '{"t":"pong","d":null}'


# -- codes -----------------------------------------------------------------------------------

GRPC_CODES = [
    "cancelled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
    "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
    "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated",
]


def test_error_codes_are_the_grpc_canonical_codes_in_snake_case():
    assert sorted(code.value for code in ErrorCode) == sorted(GRPC_CODES)
    assert wire.ErrorCode is ErrorCode


def test_error_code_prints_as_its_wire_value():
    assert str(ErrorCode.PERMISSION_DENIED) == "permission_denied"
    assert f"{ErrorCode.NOT_FOUND}" == "not_found"


@pytest.mark.parametrize(
    "code, status",
    [
        ("invalid_argument", 400),
        ("unauthenticated", 401),
        ("permission_denied", 403),
        ("not_found", 404),
        ("resource_exhausted", 429),
        ("cancelled", 499),
        ("unimplemented", 501),
        ("unavailable", 503),
        ("deadline_exceeded", 504),
    ],
)
def test_error_code_http_status_follows_the_protocol(code, status):
    assert ErrorCode(code).http_status == status


@pytest.mark.parametrize(
    "code",
    ["unknown", "already_exists", "failed_precondition", "aborted", "out_of_range", "internal", "data_loss"],
)
def test_other_error_codes_answer_500(code):
    assert ErrorCode(code).http_status == 500


@pytest.mark.parametrize(
    "name, value",
    [
        ("NORMAL", 1000),
        ("TERMINATED", 4000),
        ("BAD_FRAMES", 4400),
        ("INVALID_CREDENTIALS", 4401),
        ("FORBIDDEN", 4403),
        ("HEARTBEAT_TIMEOUT", 4408),
        ("FRAME_TOO_LARGE", 4413),
        ("TOO_MANY_CONNECTIONS", 4429),
        ("INTERNAL_ERROR", 4500),
        ("DRAINING", 4503),
    ],
)
def test_close_codes_have_the_protocol_values(name, value):
    assert CloseCode[name] == value


@pytest.mark.parametrize("code", [1006, 1011, 4408, 4429, 4500, 4503])
def test_clients_reconnect_after(code):
    assert CloseCode(code).reconnectable
    assert is_reconnectable(code)


@pytest.mark.parametrize("code", [1000, 4000, 4400, 4401, 4403, 4413])
def test_clients_do_not_reconnect_after(code):
    assert not CloseCode(code).reconnectable
    assert not is_reconnectable(code)


def test_no_close_code_is_not_reconnectable():
    assert not is_reconnectable(None)


def test_a_frame_nested_too_deeply_is_malformed_not_a_crash():
    text = '{"t":"next","id":1,"d":' + "[" * 200_000 + "]" * 200_000 + "}"
    with pytest.raises(FrameError, match="nested too deeply"):
        parse_client_frame(text)
