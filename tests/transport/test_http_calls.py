"""End to end: the HTTP transport over a real daphne, read with httpx and curl.

Each test documents one behaviour of the HTTP transport (shared/protocol.md,
"HTTP transport") against the example project's ``interop`` service, or the
probe methods of ``probes/httpprobe_asgi.py`` on the ``probe_server`` (keepalives
every 0.25 s, ``retry: 500``, deadlines capped at 30 s). Nothing of
streaming_app is imported.
"""

from __future__ import annotations

import json
import socket
import time
import uuid

import httpx
import pytest
from conftest import start_server
from httpclient import Curl, assert_error, client, get_ndjson, get_sse, parse_ndjson, parse_sse, wait_for_cleanups

pytestmark = pytest.mark.django_db(transaction=True)

ERROR_STATUS = {
    "cancelled": 499, "unknown": 500, "invalid_argument": 400, "deadline_exceeded": 504, "not_found": 404,
    "already_exists": 500, "permission_denied": 403, "resource_exhausted": 429, "failed_precondition": 500,
    "aborted": 500, "out_of_range": 500, "unimplemented": 501, "internal": 500, "unavailable": 503,
    "data_loss": 500, "unauthenticated": 401,
}
MAX_BODY = 1_000_000  # MAX_FRAME_BYTES of the example project


def unique_tag() -> str:
    return f"http-{uuid.uuid4().hex}"


# -- unary calls ----------------------------------------------------------------------------


def test_get_unary_answers_json_with_the_result_in_d(http):
    response = http.get("interop.unary", params={"payload": "héllo"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"d": {"payload": "héllo"}}


def test_post_unary_takes_its_arguments_as_a_json_body(http):
    response = http.post("interop.unary", json={"payload": "posted"})
    assert response.status_code == 200
    assert response.json() == {"d": {"payload": "posted"}}


def test_post_with_an_empty_body_calls_without_arguments(http):
    response = http.post("interop.empty", content=b"")
    assert response.status_code == 200
    assert response.json() == {"d": {}}


def test_get_unary_with_accept_json_or_any_type_answers_json(http):
    for accept in ("application/json", "*/*", "text/html,*/*;q=0.8"):
        response = http.get("interop.empty", headers={"Accept": accept})
        assert response.json() == {"d": {}}, accept


def test_responses_vary_on_accept(http):
    assert "accept" in http.get("interop.empty").headers["vary"].lower()


def test_query_arguments_are_converted_by_the_parameters_type_hints(probe):
    response = probe.get(
        "httpprobe.typed", params={"n": "5", "flag": "true", "day": "2024-02-29", "name": "42", "tags": '["a","b"]'}
    )
    assert response.json() == {
        "d": {"n": 5, "flag": True, "day": "2024-02-29", "name": "42", "tags": ["a", "b"], "ratio": None}
    }


def test_large_unary_result_is_not_limited_by_the_websocket_frame_size(http):
    response = http.get("interop.big", params={"size": 2_000_000})
    assert response.status_code == 200
    assert len(response.json()["d"]["data"]) == 2_000_000


# -- server streams -----------------------------------------------------------------------------


def test_sse_stream_sends_each_item_as_a_next_event_then_end_with_the_result(http):
    response, stream = get_sse(http, "interop.count", params={"n": 3})
    assert response.status_code == 200
    assert [(e.event, e.json()) for e in stream.events] == [
        ("next", {"i": 0}), ("next", {"i": 1}), ("next", {"i": 2}), ("end", {"total": 3}),
    ]
    assert all(e.id is None for e in stream.events)  # not a resumable stream


def test_sse_response_has_proxy_friendly_headers(http):
    response, _ = get_sse(http, "interop.count", params={"n": 1})
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "content-length" not in response.headers


def test_sse_stream_starts_with_the_retry_hint_of_the_settings(http, probe):
    assert get_sse(http, "interop.count", params={"n": 0})[1].retry == 3000
    assert get_sse(probe, "interop.count", params={"n": 0})[1].retry == 500


def test_stream_without_accept_or_with_any_type_is_sse(http):
    for headers in ({"Accept": "*/*"}, {"Accept": ""}):
        with http.stream("GET", "interop.count", params={"n": 1}, headers=headers) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            assert parse_sse(response.iter_lines()).last.event == "end"


def test_ndjson_stream_sends_websocket_frames_without_id_one_per_line(http):
    response, records = get_ndjson(http, "interop.count", params={"n": 2, "start": 5})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert records == [{"t": "next", "d": {"i": 5}}, {"t": "next", "d": {"i": 6}}, {"t": "end", "d": {"total": 2}}]


def test_stream_of_twenty_thousand_items_arrives_complete_and_in_order(http):
    _, records = get_ndjson(http, "interop.count", params={"n": 20_000})
    assert [r["d"]["i"] for r in records[:-1]] == list(range(20_000))
    assert records[-1] == {"t": "end", "d": {"total": 20_000}}


def test_post_stream_takes_its_arguments_as_a_json_body(http):
    with http.stream("POST", "interop.count", json={"n": 2}, headers={"Accept": "application/x-ndjson"}) as response:
        assert [r["t"] for r in parse_ndjson(response.iter_lines())] == ["next", "next", "end"]


def test_sse_items_arrive_one_by_one_before_the_stream_finishes(http):
    arrivals = []
    with http.stream("GET", "interop.count", params={"n": 3, "interval_ms": 300},
                     headers={"Accept": "text/event-stream"}) as response:
        start = time.monotonic()
        for line in response.iter_lines():
            if line.startswith("data:"):
                arrivals.append(time.monotonic() - start)
            if len(arrivals) == 4:
                break
    assert len(arrivals) == 4  # three items and end
    assert arrivals[0] < 0.25, arrivals  # the first item did not wait for the others
    assert arrivals[3] - arrivals[0] >= 0.5, arrivals


def test_stream_headers_leave_at_once_not_with_the_first_item_or_keepalive(probe_server):
    # httprobe.late yields after 1 s; keepalives on this server come every 0.25 s.
    with socket.create_connection(("127.0.0.1", probe_server.port), timeout=5) as sock:
        sock.sendall(
            b"GET /streams/httpprobe.late?delay_ms=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Accept: application/x-ndjson\r\n\r\n"
        )
        first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 OK\r\n"), first
    assert first.endswith(b"\r\n\r\n"), first  # the headers alone, nothing of the body yet


def test_curl_reads_sse_events_as_they_arrive(daphne_server):
    url = f"{daphne_server.http_url}/streams/interop.count?n=3&interval_ms=400"
    with Curl(url) as curl:
        data_lines = [(t, line) for t, line in curl.lines() if line.startswith("data:")]
    assert [line for _, line in data_lines] == [
        'data: {"i":0}', 'data: {"i":1}', 'data: {"i":2}', 'data: {"total":3}',
    ]
    first, last = data_lines[0][0], data_lines[-1][0]
    assert last - first >= 0.7, data_lines  # read as they came, not all at the end


def test_curl_reads_ndjson_lines_as_they_arrive(daphne_server):
    url = f"{daphne_server.http_url}/streams/interop.count?n=3&interval_ms=400"
    with Curl(url, "-H", "Accept: application/x-ndjson") as curl:
        lines = list(curl.lines())
    assert [json.loads(line) for _, line in lines if line] == [
        {"t": "next", "d": {"i": 0}}, {"t": "next", "d": {"i": 1}}, {"t": "next", "d": {"i": 2}},
        {"t": "end", "d": {"total": 3}},
    ]
    assert lines[-1][0] - lines[0][0] >= 0.7, lines


# -- errors inside a stream ---------------------------------------------------------------------------


def test_sse_error_after_items_arrives_as_an_error_event(http):
    response, stream = get_sse(http, "interop.fail_after", params={"n": 2, "code": "not_found"})
    assert response.status_code == 200
    assert stream.items == [{"i": 0}, {"i": 1}]
    assert stream.last.event == "error"
    assert stream.last.json() == {"code": "not_found", "message": "failed after 2 items", "details": {}}


def test_ndjson_error_after_items_arrives_as_an_error_record(http):
    _, records = get_ndjson(http, "interop.fail_after", params={"n": 1, "code": "unavailable"})
    assert records == [
        {"t": "next", "d": {"i": 0}},
        {"t": "error", "code": "unavailable", "message": "failed after 1 items", "details": {}},
    ]


def test_error_raised_by_a_stream_before_its_first_item_is_in_band_after_a_200(http):
    response, stream = get_sse(http, "interop.count", params={"n": -1})
    assert response.status_code == 200
    assert [e.event for e in stream.events] == ["error"]
    assert stream.last.json()["code"] == "invalid_argument"


def test_item_that_cannot_be_encoded_ends_the_stream_with_internal(probe):
    _, records = get_ndjson(probe, "httpprobe.unencodable")
    assert records == [
        {"t": "next", "d": {"i": 0}},
        {"t": "error", "code": "internal", "message": "Internal error.", "details": {}},
    ]


def test_error_whose_details_cannot_be_encoded_is_answered_without_them(probe):
    error = assert_error(probe.get("httpprobe.unencodable_details"), 500, "failed_precondition")
    assert error == {"code": "failed_precondition", "message": "Stock changed.", "details": {}}


def test_stream_error_whose_details_cannot_be_encoded_ends_the_stream_without_them(probe):
    _, records = get_ndjson(probe, "httpprobe.stream_unencodable_details")
    assert records == [
        {"t": "next", "d": {"i": 0}},
        {"t": "error", "code": "aborted", "message": "Conflict.", "details": {}},
    ]


def test_a_stream_handler_that_raises_cancelled_error_itself_ends_with_cancelled(probe):
    _, records = get_ndjson(probe, "httpprobe.stream_raise_cancelled", timeout=3)
    assert records == [
        {"t": "next", "d": {"i": 0}},
        {"t": "error", "code": "cancelled", "message": "The call was cancelled.", "details": {}},
    ]


def test_a_unary_handler_that_raises_cancelled_error_itself_is_499_cancelled(probe):
    assert_error(probe.get("httpprobe.raise_cancelled", timeout=3), 499, "cancelled")


def test_stream_deadline_is_an_in_band_deadline_exceeded(http):
    start = time.monotonic()
    _, stream = get_sse(http, "interop.count", params={"n": 5, "interval_ms": 300, "timeout": 0.5})
    assert stream.items == [{"i": 0}, {"i": 1}]
    assert stream.last.event == "error" and stream.last.json()["code"] == "deadline_exceeded"
    assert time.monotonic() - start < 2.0


def test_a_stream_that_ends_normally_ends_with_exactly_one_end_record(http):
    with http.stream("GET", "interop.count", params={"n": 2}, headers={"Accept": "text/event-stream"}) as response:
        stream = parse_sse(response.iter_lines(), stop_after_terminal=False)
    assert [e.event for e in stream.events] == ["next", "next", "end"]


# -- deadlines of unary calls --------------------------------------------------------------------------


def test_unary_deadline_answers_504_deadline_exceeded_and_stops_the_handler(probe):
    tag = unique_tag()
    start = time.monotonic()
    response = probe.get("httpprobe.sleep", params={"seconds": 5, "tag": tag, "timeout": 0.3})
    assert_error(response, 504, "deadline_exceeded")
    assert time.monotonic() - start < 2.0
    assert probe.get("httpprobe.finished", params={"tag": tag}).json() == {"d": {"finished": "cancelled"}}


def test_unary_within_its_deadline_answers_normally(probe):
    response = probe.get("httpprobe.sleep", params={"seconds": 0.05, "timeout": 5})
    assert response.json() == {"d": {"slept": 0.05}}


def test_handler_sees_the_deadline_capped_by_max_timeout(probe):
    remaining = probe.get("httpprobe.context", params={"timeout": 1000}).json()["d"]["time_remaining"]
    assert 25 < remaining <= 30


def test_handler_sees_no_deadline_without_timeout(probe):
    assert probe.get("httpprobe.context").json()["d"] == {
        "transport": "http", "resume": None, "time_remaining": None, "method": "httpprobe.context",
    }


# -- errors before the call begins: HTTP statuses -------------------------------------------------------


@pytest.mark.parametrize("code", sorted(ERROR_STATUS))
def test_each_error_code_of_a_unary_call_has_its_http_status(http, code):
    response = http.get("interop.fail", params={"code": code, "message": f"failing with {code}"})
    error = assert_error(response, ERROR_STATUS[code], code)
    assert error["message"] == f"failing with {code}"


def test_unknown_method_is_404_not_found(http):
    error = assert_error(http.get("interop.nope"), 404, "not_found")
    assert error["details"] == {"method": "interop.nope"}


def test_unknown_namespace_is_404_not_found(http):
    assert_error(http.post("nowhere.nothing", json={}), 404, "not_found")


@pytest.mark.parametrize("method", ["interop.sum", "interop.echo"])
def test_client_stream_and_bidirectional_methods_answer_405_naming_the_websocket(http, method):
    response = http.post(method, json={})
    error = assert_error(response, 405, "unimplemented")
    assert error["details"]["transport"] == "websocket"
    assert "WebSocket" in error["message"]
    assert response.headers["allow"] == ""


@pytest.mark.parametrize("verb", ["PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_http_methods_answer_405_with_allow(http, verb):
    response = http.request(verb, "interop.empty")
    assert_error(response, 405, "unimplemented")
    assert response.headers["allow"] == "GET, POST"


def test_head_answers_405_with_allow(http):
    response = http.head("interop.empty")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_unary_call_accepting_only_event_streams_is_406_listing_json(http):
    error = assert_error(http.get("interop.empty", headers={"Accept": "text/event-stream"}), 406, "invalid_argument")
    assert error["details"]["available"] == ["application/json"]


def test_stream_call_accepting_only_json_is_406_listing_sse_and_ndjson(http):
    error = assert_error(http.get("interop.count", params={"n": 1}, headers={"Accept": "application/json"}),
                         406, "invalid_argument")
    assert error["details"]["available"] == ["text/event-stream", "application/x-ndjson"]


def test_an_unexpected_exception_is_500_internal_revealing_nothing(http):
    response = http.get("interop.crash")
    assert_error(response, 500, "internal")
    assert response.json()["error"]["message"] == "Internal error."
    assert "secret" not in response.text and "Traceback" not in response.text


def test_permission_errors_of_a_stream_have_their_status_before_the_stream_starts(http):
    with http.stream("GET", "interop.count", params={"n": "x"}, headers={"Accept": "text/event-stream"}) as response:
        response.read()
    assert_error(response, 400, "invalid_argument")


# -- bad query strings and bodies -----------------------------------------------------------------------


def test_query_argument_of_the_wrong_type_is_400_with_field_errors(http):
    error = assert_error(http.get("interop.count", params={"n": "five"}), 400, "invalid_argument")
    assert error["details"] == {"errors": {"n": ["Must be an integer."]}}


def test_missing_required_argument_is_400(http):
    error = assert_error(http.get("interop.unary"), 400, "invalid_argument")
    assert error["details"] == {"errors": {"payload": ["This argument is required."]}}


def test_unknown_query_argument_is_400(http):
    error = assert_error(http.get("interop.empty", params={"extra": "1"}), 400, "invalid_argument")
    assert error["details"] == {"errors": {"extra": ["Unknown argument."]}}


def test_query_parameter_given_twice_is_400(http):
    error = assert_error(http.get("interop.unary?payload=a&payload=b"), 400, "invalid_argument")
    assert error["details"] == {"errors": {"payload": ["Given more than once."]}}


@pytest.mark.parametrize("timeout", ["0", "-2", "soon", "nan", "inf"])
def test_bad_timeout_is_400(http, timeout):
    error = assert_error(http.get("interop.empty", params={"timeout": timeout}), 400, "invalid_argument")
    assert error["details"] == {"errors": {"timeout": ["Must be a positive number of seconds."]}}


def test_post_body_that_is_not_json_is_400(http):
    error = assert_error(http.post("interop.unary", content=b"payload=hi"), 400, "invalid_argument")
    assert "JSON" in error["message"]


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_post_body_that_is_not_a_json_object_is_400(http, body):
    error = assert_error(http.post("interop.unary", content=body), 400, "invalid_argument")
    assert "object" in error["message"]


def test_post_body_with_a_wrong_type_is_400_with_field_errors(http):
    error = assert_error(http.post("interop.unary", json={"payload": 5}), 400, "invalid_argument")
    assert error["details"] == {"errors": {"payload": ["Must be a string."]}}


def test_post_body_with_nan_is_400(http):
    assert_error(http.post("interop.unary", content=b'{"payload": NaN}'), 400, "invalid_argument")


def test_post_body_that_is_not_utf8_is_400(http):
    assert_error(http.post("interop.unary", content=b'{"payload": "\xff"}'), 400, "invalid_argument")


def test_post_body_nested_too_deeply_is_400(http):
    assert_error(http.post("interop.unary", content=b"[" * 200_000), 400, "invalid_argument")


def test_post_body_larger_than_the_frame_limit_is_400(http):
    body = json.dumps({"payload": "x" * MAX_BODY}).encode()
    error = assert_error(http.post("interop.unary", content=body), 400, "invalid_argument")
    assert error["details"] == {"max_bytes": MAX_BODY}


def test_post_body_of_exactly_the_frame_limit_is_accepted(http):
    prefix, suffix = b'{"payload": "', b'"}'
    body = prefix + b"x" * (MAX_BODY - len(prefix) - len(suffix)) + suffix
    assert len(body) == MAX_BODY
    assert http.post("interop.unary", content=body).status_code == 200


def test_post_with_arguments_in_the_query_string_is_400(http):
    error = assert_error(http.post("interop.unary?payload=hi", json={}), 400, "invalid_argument")
    assert "payload" in error["details"]["errors"]


def test_more_query_parameters_than_django_reads_is_400(http):
    query = "&".join(f"a{i}=1" for i in range(1200))  # DATA_UPLOAD_MAX_NUMBER_FIELDS is 1000
    error = assert_error(http.get(f"interop.empty?{query}"), 400, "invalid_argument")
    assert "query string" in error["message"]


def test_path_under_the_prefix_that_names_no_method_is_a_json_404(http, daphne_server):
    for path in ("", "a/b", "..%2F..%2Fetc"):
        assert_error(http.get(f"{daphne_server.http_url}/streams/{path}"), 404, "not_found")


def test_the_server_still_answers_after_bad_input(http):
    http.post("interop.unary", content=b"\x00\xff{")
    http.get("interop.count?n=1&n=2")
    assert http.get("interop.empty").json() == {"d": {}}


# -- Last-Event-ID ----------------------------------------------------------------------------------------


def test_last_event_id_header_is_handed_to_the_method(probe):
    _, stream = get_sse(probe, "httpprobe.resume", headers={"Last-Event-ID": "7:41"})
    assert stream.items == [{"resume": "7:41"}]


def test_last_event_id_query_parameter_is_handed_to_the_method(probe):
    _, stream = get_sse(probe, "httpprobe.resume", params={"last_event_id": "7:42"})
    assert stream.items == [{"resume": "7:42"}]


def test_last_event_id_header_wins_over_the_query_parameter(probe):
    _, stream = get_sse(probe, "httpprobe.resume", params={"last_event_id": "1:1"}, headers={"Last-Event-ID": "2:2"})
    assert stream.items == [{"resume": "2:2"}]


# -- keepalives -------------------------------------------------------------------------------------------


def test_sse_keepalive_comments_interleave_with_slow_items(probe):
    _, stream = get_sse(probe, "interop.count", params={"n": 3, "interval_ms": 700})
    assert stream.items == [{"i": 0}, {"i": 1}, {"i": 2}]
    shape = "".join("c" if entry == "comment" else entry[6] for entry in stream.order)  # n(ext), c, e(nd)
    gaps_between_items = shape[shape.index("n"):shape.rindex("n") + 1].split("n")[1:-1]
    # each 700 ms gap between two items holds keepalives sent every 0.25 s
    assert len(gaps_between_items) == 2 and all(gap.count("c") >= 1 for gap in gaps_between_items), shape


def test_ndjson_keepalives_are_ping_records(probe):
    _, records = get_ndjson(probe, "interop.count", params={"n": 2, "interval_ms": 700})
    assert {"t": "ping"} in records
    assert [r for r in records if r["t"] != "ping"] == [
        {"t": "next", "d": {"i": 0}}, {"t": "next", "d": {"i": 1}}, {"t": "end", "d": {"total": 2}},
    ]


def test_a_fast_stream_sends_no_keepalives(probe):
    _, stream = get_sse(probe, "interop.count", params={"n": 1000})
    assert stream.comments == []


# -- disconnects ---------------------------------------------------------------------------------------------


def test_closing_an_sse_stream_runs_the_handlers_finally_promptly(http):
    tag = unique_tag()
    with http.stream("GET", "interop.forever", params={"interval_ms": 20, "tag": tag},
                     headers={"Accept": "text/event-stream"}) as response:
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data:")) == 'data: {"i":0}'
    count, waited = wait_for_cleanups(http, tag, 1)
    assert count == 1
    assert waited < 1.0


def test_closing_an_ndjson_stream_runs_the_handlers_finally_promptly(http):
    tag = unique_tag()
    with http.stream("GET", "interop.forever", params={"interval_ms": 20, "tag": tag},
                     headers={"Accept": "application/x-ndjson"}) as response:
        assert json.loads(next(response.iter_lines())) == {"t": "next", "d": {"i": 0}}
    count, waited = wait_for_cleanups(http, tag, 1)
    assert count == 1
    assert waited < 1.0


def test_killing_curl_mid_stream_runs_the_handlers_finally(daphne_server, http):
    tag = unique_tag()
    with Curl(f"{daphne_server.http_url}/streams/interop.forever?interval_ms=0&tag={tag}") as curl:
        lines = curl.lines()
        assert next(line for _, line in lines if line.startswith("data:")) == 'data: {"i":0}'
    count, waited = wait_for_cleanups(http, tag, 1)
    assert count == 1
    assert waited < 1.0


def test_a_client_that_leaves_stops_a_unary_handler(probe):
    tag = unique_tag()
    with pytest.raises(httpx.ReadTimeout):
        probe.get("httpprobe.sleep", params={"seconds": 30, "tag": tag}, timeout=0.3)
    for _ in range(100):
        finished = probe.get("httpprobe.finished", params={"tag": tag}).json()["d"]["finished"]
        if finished:
            break
        time.sleep(0.02)
    assert finished == "cancelled"


def test_each_disconnected_stream_is_cleaned_up_once(http):
    tag = unique_tag()
    for _ in range(3):
        with http.stream("GET", "interop.forever", params={"interval_ms": 10, "tag": tag}) as response:
            next(response.iter_lines())
    assert wait_for_cleanups(http, tag, 3)[0] == 3


# -- backpressure -----------------------------------------------------------------------------------------------


def test_under_uvicorn_a_reader_that_stops_holds_the_handler_at_its_yield(tmp_path, django_db_blocker):
    """An ASGI server whose send waits for the socket carries backpressure up to the handler.

    (daphne's send never waits, so under daphne a stalled reader makes the
    server buffer the stream; see docs/protocol.md.)
    """
    n = 2_000_000
    with django_db_blocker.unblock():
        server = start_server(tmp_path, server="uvicorn", app="probes.flowprobe_asgi:application")
    try:
        with client(server) as http, socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.sendall(
                f"GET /streams/flowprobe.items?key=stall&n={n} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Accept: application/x-ndjson\r\n\r\n".encode()
            )
            previous, produced = -1, 0
            for _ in range(50):  # until production stops moving (bounded: 50 x 0.3 s)
                time.sleep(0.3)
                produced = http.get("flowprobe.produced", params={"key": "stall"}).json()["d"]["produced"]
                if produced == previous:
                    break
                previous = produced
        assert 0 < produced < n / 4, produced
    finally:
        server.stop()
