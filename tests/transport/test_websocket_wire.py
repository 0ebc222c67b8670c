"""End to end: protocol v1 over a real daphne, spoken frame by frame with plain ``websockets``.

Each test documents one behaviour of the WebSocket transport (shared/protocol.md)
or of the example project's ``interop`` service (shared/interop.md). The client
is written from the protocol alone (see ``tests/wsclient.py``); nothing of
streaming_app is imported.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from wsclient import (
    SUBPROTOCOL,
    Connection,
    connect,
    connected,
    wait_for_cleanups,
)

pytestmark = pytest.mark.django_db(transaction=True)

MAX_FRAME = 1_000_000
MAX_CALLS = 100
CLIENT_WINDOW = 64
ERROR_CODES = [
    "cancelled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
    "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
    "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated",
]


@pytest.fixture
async def conn(daphne_server):
    """An anonymous connection whose ``hello`` has been read."""
    connection = await connect(daphne_server.ws_url)
    yield connection
    await connection.close()


@pytest.fixture
def user_token(make_token) -> str:
    """A bearer token of the non-staff user "wsuser" (created outside the event loop)."""
    return make_token("wsuser", is_staff=False)


@pytest.fixture
def staff_token(make_token) -> str:
    """A bearer token of the staff user "boss"."""
    return make_token("boss", is_staff=True)


def unique_tag() -> str:
    return f"e2e-{uuid.uuid4().hex}"


def items(frames: list[dict]) -> list:
    return [frame["d"] for frame in frames if frame["t"] == "next"]


def assert_bad_frame_error(frame: dict, offending_id: int | None = None) -> None:
    """The protocol's answer to a malformed frame: an error for no call, invalid_argument."""
    assert frame["t"] == "error", frame
    assert frame["id"] is None, frame
    assert frame["code"] == "invalid_argument", frame
    assert isinstance(frame["message"], str) and frame["message"]
    if offending_id is None:
        assert "id" not in (frame.get("details") or {}), frame
    else:
        assert frame["details"]["id"] == offending_id, frame


async def assert_usable(conn: Connection, id: int = 1000) -> None:
    """A unary call still works on this connection."""
    frame = await conn.result(id, "interop.unary", {"payload": "still here"})
    assert frame == {"t": "end", "id": id, "d": {"payload": "still here"}}


# -- handshake ------------------------------------------------------------------


async def test_hello_announces_version_connection_id_heartbeat_and_limits(conn):
    hello = conn.hello
    assert {"t", "v", "conn", "heartbeat", "limits"} <= set(hello)
    assert hello["v"] == 1
    assert isinstance(hello["conn"], str) and hello["conn"]
    assert isinstance(hello["heartbeat"], (int, float)) and hello["heartbeat"] > 0
    assert hello["limits"] == {"max_frame": MAX_FRAME, "max_calls": MAX_CALLS, "client_window": CLIENT_WINDOW}


async def test_server_negotiates_the_json_subprotocol(conn):
    assert conn.ws.subprotocol == SUBPROTOCOL


async def test_each_connection_gets_its_own_connection_id(conn, daphne_server):
    async with connected(daphne_server.ws_url) as other:
        assert other.hello["conn"] != conn.hello["conn"]


async def test_ping_is_answered_by_pong_with_the_same_data(conn):
    await conn.send({"t": "ping", "d": 42})
    assert await conn.recv() == {"t": "pong", "d": 42}


# -- unary methods -------------------------------------------------------------------


async def test_empty_returns_an_empty_object(conn):
    assert await conn.result(1, "interop.empty") == {"t": "end", "id": 1, "d": {}}


async def test_unary_returns_its_payload(conn):
    assert await conn.result(1, "interop.unary", {"payload": "héllo"}) == {
        "t": "end", "id": 1, "d": {"payload": "héllo"},
    }


async def test_unary_without_its_required_argument_is_invalid_argument(conn):
    frame = await conn.result(1, "interop.unary", {})
    assert frame["t"] == "error" and frame["id"] == 1
    assert frame["code"] == "invalid_argument"


async def test_whoami_anonymous_is_unauthenticated(conn):
    frame = await conn.result(1, "interop.whoami")
    assert frame["t"] == "error" and frame["id"] == 1
    assert frame["code"] == "unauthenticated"


async def test_whoami_with_a_bearer_token_names_the_user(daphne_server, user_token):
    async with connected(daphne_server.ws_url, headers={"Authorization": f"Bearer {user_token}"}) as conn:
        frame = await conn.result(1, "interop.whoami")
    assert frame == {"t": "end", "id": 1, "d": {"username": "wsuser", "is_staff": False}}


async def test_staff_only_denies_an_authenticated_non_staff_user(daphne_server, user_token):
    async with connected(daphne_server.ws_url, headers={"Authorization": f"Bearer {user_token}"}) as conn:
        frame = await conn.result(1, "interop.staff_only")
    assert frame["t"] == "error" and frame["id"] == 1
    assert frame["code"] == "permission_denied"


async def test_staff_only_allows_a_staff_user(daphne_server, staff_token):
    async with connected(daphne_server.ws_url, headers={"Authorization": f"Bearer {staff_token}"}) as conn:
        frame = await conn.result(1, "interop.staff_only")
    assert frame == {"t": "end", "id": 1, "d": {"ok": True}}


@pytest.mark.parametrize("code", ERROR_CODES)
async def test_fail_round_trips_each_error_code_with_its_message(conn, code):
    frame = await conn.result(1, "interop.fail", {"code": code, "message": f"because {code}"})
    assert frame["t"] == "error" and frame["id"] == 1
    assert frame["code"] == code
    assert frame["message"] == f"because {code}"


async def test_crash_is_internal_and_reveals_neither_secret_nor_traceback(conn):
    await conn.call(1, "interop.crash")
    raw = await conn.recv_raw()
    assert "secret-7f3a" not in raw
    assert "Traceback" not in raw
    assert "RuntimeError" not in raw
    frame = json.loads(raw)
    assert frame["t"] == "error" and frame["id"] == 1
    assert frame["code"] == "internal"
    await assert_usable(conn)


async def test_big_result_arrives_in_one_frame(conn):
    await conn.call(1, "interop.big", {"size": 900_000})
    frame = await conn.recv()
    assert frame["t"] == "end" and frame["id"] == 1
    assert frame["d"]["data"] == "x" * 900_000


async def test_big_result_above_the_frame_limit_is_resource_exhausted(conn):
    frame = await conn.result(1, "interop.big", {"size": MAX_FRAME})
    assert frame["t"] == "error" and frame["id"] == 1
    assert frame["code"] == "resource_exhausted"
    await assert_usable(conn)


# -- server streams ----------------------------------------------------------------


async def test_count_streams_items_then_returns_the_total(conn):
    await conn.call(1, "interop.count", {"n": 3})
    frames = await conn.until_terminal(1)
    assert frames == [
        {"t": "next", "id": 1, "d": {"i": 0}},
        {"t": "next", "id": 1, "d": {"i": 1}},
        {"t": "next", "id": 1, "d": {"i": 2}},
        {"t": "end", "id": 1, "d": {"total": 3}},
    ]


async def test_count_zero_ends_at_once_with_total_zero(conn):
    assert await conn.result(1, "interop.count", {"n": 0}) == {"t": "end", "id": 1, "d": {"total": 0}}


async def test_count_starts_at_start(conn):
    await conn.call(1, "interop.count", {"n": 3, "start": 10})
    frames = await conn.until_terminal(1)
    assert items(frames) == [{"i": 10}, {"i": 11}, {"i": 12}]
    assert frames[-1] == {"t": "end", "id": 1, "d": {"total": 3}}


async def test_count_spaces_items_by_interval_ms(conn):
    started = time.monotonic()
    await conn.call(1, "interop.count", {"n": 3, "interval_ms": 100})
    frames = await conn.until_terminal(1)
    elapsed = time.monotonic() - started
    assert items(frames) == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert elapsed >= 0.19  # two intervals between three items


async def test_count_with_negative_n_is_invalid_argument(conn):
    frame = await conn.result(1, "interop.count", {"n": -1})
    assert frame["t"] == "error" and frame["id"] == 1
    assert frame["code"] == "invalid_argument"


async def test_fail_after_streams_n_items_then_fails_with_the_code(conn):
    await conn.call(1, "interop.fail_after", {"n": 2, "code": "aborted"})
    frames = await conn.until_terminal(1)
    assert items(frames) == [{"i": 0}, {"i": 1}]
    assert frames[-1]["t"] == "error" and frames[-1]["code"] == "aborted"
    assert len(frames) == 3


# -- client streams and bidirectional calls ---------------------------------------------


async def test_sum_adds_the_items_the_client_sends(conn):
    await conn.call(1, "interop.sum")
    for v in (1, 2, 3, 4):
        await conn.send({"t": "next", "id": 1, "d": {"v": v}})
    await conn.send({"t": "end", "id": 1})
    assert await conn.until_terminal(1) == [{"t": "end", "id": 1, "d": {"sum": 10, "count": 4}}]


async def test_sum_of_no_items_is_zero(conn):
    await conn.call(1, "interop.sum")
    await conn.send({"t": "end", "id": 1})
    assert await conn.until_terminal(1) == [{"t": "end", "id": 1, "d": {"sum": 0, "count": 0}}]


async def test_sum_with_a_malformed_item_is_invalid_argument(conn):
    await conn.call(1, "interop.sum")
    await conn.send({"t": "next", "id": 1, "d": {"v": 1}})
    await conn.send({"t": "next", "id": 1, "d": {"v": "not a number"}})
    frames = await conn.until_terminal(1)
    assert frames[-1]["t"] == "error" and frames[-1]["id"] == 1
    assert frames[-1]["code"] == "invalid_argument"
    await conn.send({"t": "end", "id": 1})  # crossed the error in flight: ignored
    assert await conn.sync() == []


async def test_echo_sends_back_each_item_in_order(conn):
    sent = [{"k": k} for k in range(20)] + ["text", 7, None, [1, 2]]
    await conn.call(1, "interop.echo")
    for item in sent:
        await conn.send({"t": "next", "id": 1, "d": item})
    await conn.send({"t": "end", "id": 1})
    frames = await conn.until_terminal(1)
    assert items(frames) == sent
    assert frames[-1]["t"] == "end"


async def test_echo_answers_each_item_before_the_client_ends(conn):
    await conn.call(1, "interop.echo")
    for k in range(3):
        await conn.send({"t": "next", "id": 1, "d": k})
        assert await conn.recv_for(1) == {"t": "next", "id": 1, "d": k}
    await conn.send({"t": "end", "id": 1})
    assert (await conn.until_terminal(1))[-1]["t"] == "end"


# -- multiplexing -----------------------------------------------------------------------


async def test_calls_interleave_on_one_connection(conn):
    await conn.call(1, "interop.count", {"n": 4, "interval_ms": 50})
    await conn.call(2, "interop.count", {"n": 4, "interval_ms": 50, "start": 100})
    await conn.call(3, "interop.echo")
    await conn.send({"t": "next", "id": 3, "d": "hi"})
    await conn.send({"t": "end", "id": 3})
    order = []
    ended = set()
    async with asyncio.timeout(5):
        for _ in range(50):
            if len(ended) == 3:
                break
            frame = await conn.recv()
            order.append((frame["id"], frame["t"]))
            if frame["t"] in ("end", "error"):
                assert frame["t"] == "end", frame
                ended.add(frame["id"])
    assert ended == {1, 2, 3}
    ids = [id for id, _ in order]
    # Call 2 sends items before call 1 has finished, and the echo is not held up by either.
    assert ids.index(2) < max(i for i, id in enumerate(ids) if id == 1)
    assert ids.index(3) < max(i for i, id in enumerate(ids) if id == 1)
    assert [t for id, t in order if id == 1] == ["next"] * 4 + ["end"]
    assert [t for id, t in order if id == 2] == ["next"] * 4 + ["end"]
    assert [t for id, t in order if id == 3] == ["next", "end"]


async def test_a_slow_call_does_not_hold_up_a_later_unary_call(conn):
    await conn.call(1, "interop.forever", {"interval_ms": 1000, "tag": unique_tag()})
    assert await conn.recv_for(1) == {"t": "next", "id": 1, "d": {"i": 0}}
    started = time.monotonic()
    frame = await conn.result(2, "interop.unary", {"payload": "quick"})
    assert frame == {"t": "end", "id": 2, "d": {"payload": "quick"}}
    assert time.monotonic() - started < 0.8
    assert [f for f in conn.backlog if f.get("id") == 1] == []  # no second item yet
    await conn.send({"t": "cancel", "id": 1})


# -- flow control --------------------------------------------------------------------------


async def test_credit_limits_how_many_items_the_server_sends(conn):
    await conn.call(1, "interop.forever", {"interval_ms": 0, "tag": unique_tag()}, credit=5)
    received = [await conn.recv_for(1) for _ in range(5)]
    assert items(received) == [{"i": k} for k in range(5)]
    assert await conn.quiet(0.3) == []


async def test_a_credit_frame_releases_exactly_that_many_more_items(conn):
    await conn.call(1, "interop.forever", {"interval_ms": 0, "tag": unique_tag()}, credit=5)
    [await conn.recv_for(1) for _ in range(5)]
    assert await conn.quiet(0.3) == []
    await conn.send({"t": "credit", "id": 1, "n": 3})
    received = [await conn.recv_for(1) for _ in range(3)]
    assert items(received) == [{"i": k} for k in range(5, 8)]
    assert await conn.quiet(0.3) == []


async def test_zero_credit_holds_the_stream_until_credit_arrives(conn):
    await conn.call(1, "interop.count", {"n": 3}, credit=0)
    assert await conn.quiet(0.3) == []
    await conn.send({"t": "credit", "id": 1, "n": 1})
    assert await conn.recv_for(1) == {"t": "next", "id": 1, "d": {"i": 0}}
    assert await conn.quiet(0.3) == []


async def test_stream_that_used_up_its_credit_ends_only_after_more_credit(conn):
    await conn.call(1, "interop.count", {"n": 3}, credit=3)
    received = [await conn.recv_for(1) for _ in range(3)]
    assert items(received) == [{"i": 0}, {"i": 1}, {"i": 2}]
    # The generator is parked at its last yield: the server cannot know it is done.
    assert await conn.quiet(0.3) == []
    await conn.send({"t": "credit", "id": 1, "n": 1})
    assert await conn.recv_for(1) == {"t": "end", "id": 1, "d": {"total": 3}}


async def test_credit_is_cumulative(conn):
    await conn.call(1, "interop.count", {"n": 10}, credit=0)
    await conn.send({"t": "credit", "id": 1, "n": 2})
    await conn.send({"t": "credit", "id": 1, "n": 3})
    received = [await conn.recv_for(1) for _ in range(5)]
    assert items(received) == [{"i": k} for k in range(5)]
    assert await conn.quiet(0.3) == []


async def test_client_may_send_a_full_window_of_items_before_any_credit(conn):
    # Credit 0 keeps the echo handler from reading, so the server grants nothing back.
    await conn.call(1, "interop.echo", credit=0)
    for k in range(CLIENT_WINDOW):
        await conn.send({"t": "next", "id": 1, "d": k})
    assert await conn.quiet(0.3) == []  # no error: the window allowed them all
    await conn.send({"t": "credit", "id": 1, "n": 1000})
    await conn.send({"t": "end", "id": 1})
    frames = await conn.until_terminal(1)
    assert items(frames) == list(range(CLIENT_WINDOW))
    assert frames[-1]["t"] == "end"


async def test_server_grants_client_credit_as_it_consumes_items(conn):
    await conn.call(1, "interop.echo")
    for k in range(CLIENT_WINDOW):
        await conn.send({"t": "next", "id": 1, "d": k})
    echoed, granted = [], 0
    async with asyncio.timeout(5):
        for _ in range(4 * CLIENT_WINDOW):
            if len(echoed) == CLIENT_WINDOW and granted >= CLIENT_WINDOW // 2:
                break
            frame = await conn.recv_for(1)
            if frame["t"] == "credit":
                assert isinstance(frame["n"], int) and frame["n"] > 0
                granted += frame["n"]
            else:
                assert frame["t"] == "next", frame
                echoed.append(frame["d"])
    assert echoed == list(range(CLIENT_WINDOW))
    # With the credit granted the client may go on past its first window.
    for k in range(CLIENT_WINDOW, CLIENT_WINDOW + granted):
        await conn.send({"t": "next", "id": 1, "d": k})
    await conn.send({"t": "end", "id": 1})
    frames = await conn.until_terminal(1)
    assert items(frames) == list(range(CLIENT_WINDOW, CLIENT_WINDOW + granted))
    assert frames[-1]["t"] == "end"


async def test_sending_more_items_than_allowed_fails_the_call_with_resource_exhausted(conn):
    await conn.call(1, "interop.echo", credit=0)  # credit 0: the handler reads nothing
    for k in range(CLIENT_WINDOW + 5):
        await conn.send({"t": "next", "id": 1, "d": k})
    frame = await conn.recv()
    assert frame["t"] == "error" and frame["id"] == 1
    assert frame["code"] == "resource_exhausted"
    # The items that crossed the error are ignored: no second error, no bad-frame error.
    assert await conn.sync() == []
    await assert_usable(conn)


# -- cancellation ------------------------------------------------------------------------------


async def test_cancel_stops_the_call_and_nothing_more_arrives_for_it(conn):
    await conn.call(1, "interop.forever", {"interval_ms": 10, "tag": unique_tag()})
    await conn.recv_for(1)
    await conn.recv_for(1)
    await conn.send({"t": "cancel", "id": 1})
    in_flight = await conn.sync()  # sent before the server handled the cancel
    assert all(frame["t"] == "next" and frame["id"] == 1 for frame in in_flight)
    assert await conn.quiet(0.3) == []  # no more items, and no terminal frame


async def test_cancel_runs_the_handlers_finally(conn):
    tag = unique_tag()
    await conn.call(1, "interop.forever", {"interval_ms": 10, "tag": tag})
    await conn.recv_for(1)
    await conn.send({"t": "cancel", "id": 1})
    assert await wait_for_cleanups(conn, tag, 1, first_id=10) == 1


async def test_dropping_the_connection_runs_the_finally_of_open_calls(conn, daphne_server):
    tag = unique_tag()
    async with connected(daphne_server.ws_url) as doomed:
        await doomed.call(1, "interop.forever", {"interval_ms": 10, "tag": tag})
        await doomed.recv_for(1)
        doomed.ws.transport.abort()  # no close frame: the TCP connection just goes away
    assert await wait_for_cleanups(conn, tag, 1, first_id=10) == 1


async def test_frames_for_an_ended_call_are_ignored_silently(conn):
    assert (await conn.result(1, "interop.empty"))["t"] == "end"
    await conn.send({"t": "credit", "id": 1, "n": 5})
    await conn.send({"t": "cancel", "id": 1})
    await conn.send({"t": "end", "id": 1})
    await conn.send({"t": "next", "id": 1, "d": 1})
    assert await conn.sync() == []


async def test_frames_for_a_cancelled_call_are_ignored_silently(conn):
    await conn.call(1, "interop.forever", {"interval_ms": 10, "tag": unique_tag()})
    await conn.recv_for(1)
    await conn.send({"t": "cancel", "id": 1})
    await conn.send({"t": "credit", "id": 1, "n": 5})
    await conn.send({"t": "cancel", "id": 1})
    in_flight = await conn.sync()
    assert all(frame["t"] == "next" for frame in in_flight)


# -- deadlines ------------------------------------------------------------------------------


async def test_deadline_exceeded_ends_the_call_and_runs_its_finally(conn):
    tag = unique_tag()
    started = time.monotonic()
    await conn.call(1, "interop.forever", {"interval_ms": 20, "tag": tag}, timeout=0.3)
    frames = await conn.until_terminal(1)
    elapsed = time.monotonic() - started
    assert frames[-1]["t"] == "error" and frames[-1]["id"] == 1
    assert frames[-1]["code"] == "deadline_exceeded"
    assert 0.25 <= elapsed < 3
    assert all(frame["t"] == "next" for frame in frames[:-1])
    assert await wait_for_cleanups(conn, tag, 1, first_id=10) == 1


async def test_deadline_error_needs_no_credit(conn):
    await conn.call(1, "interop.forever", {"interval_ms": 0, "tag": unique_tag()}, credit=2, timeout=0.3)
    frames = await conn.until_terminal(1)
    assert [frame["t"] for frame in frames] == ["next", "next", "error"]
    assert frames[-1]["code"] == "deadline_exceeded"


async def test_deadline_is_not_reported_for_a_call_that_finished_in_time(conn):
    assert await conn.result(1, "interop.empty", timeout=5) == {"t": "end", "id": 1, "d": {}}
    assert await conn.quiet(0.2) == []


# -- bad input ---------------------------------------------------------------------------------

BAD_FRAMES = [
    pytest.param("{not json", None, id="not-json"),
    pytest.param("[1, 2, 3]", None, id="json-array"),
    pytest.param('"call"', None, id="json-string"),
    pytest.param('{"t": "ping", "d": NaN}', None, id="nan-is-not-json"),
    pytest.param("{}", None, id="no-t"),
    pytest.param('{"t": 5, "id": 3}', None, id="t-not-string"),
    pytest.param('{"t": "bogus", "id": 3}', 3, id="unknown-t"),
    pytest.param('{"t": "call", "m": "interop.empty"}', None, id="call-without-id"),
    pytest.param('{"t": "call", "id": 0, "m": "interop.empty"}', None, id="id-zero"),
    pytest.param('{"t": "call", "id": -4, "m": "interop.empty"}', None, id="id-negative"),
    pytest.param('{"t": "call", "id": "3", "m": "interop.empty"}', None, id="id-string"),
    pytest.param('{"t": "call", "id": 1.5, "m": "interop.empty"}', None, id="id-float"),
    pytest.param('{"t": "call", "id": true, "m": "interop.empty"}', None, id="id-bool"),
    pytest.param('{"t": "call", "id": 3}', 3, id="call-without-m"),
    pytest.param('{"t": "call", "id": 3, "m": 7}', 3, id="m-not-string"),
    pytest.param('{"t": "call", "id": 3, "m": "interop.empty", "a": [1]}', 3, id="a-not-object"),
    pytest.param('{"t": "call", "id": 3, "m": "interop.empty", "a": "x"}', 3, id="a-string"),
    pytest.param('{"t": "call", "id": 3, "m": "interop.empty", "timeout": -1}', 3, id="timeout-negative"),
    pytest.param('{"t": "call", "id": 3, "m": "interop.empty", "timeout": "5"}', 3, id="timeout-string"),
    pytest.param('{"t": "call", "id": 3, "m": "interop.empty", "credit": -1}', 3, id="credit-negative"),
    pytest.param('{"t": "call", "id": 3, "m": "interop.empty", "credit": "5"}', 3, id="credit-string"),
    pytest.param('{"t": "call", "id": 3, "m": "interop.empty", "resume": 5}', 3, id="resume-not-string"),
    pytest.param('{"t": "next", "id": 3, "d": 1}', 3, id="next-never-opened"),
    pytest.param('{"t": "end", "id": 3}', 3, id="end-never-opened"),
    pytest.param('{"t": "credit", "id": 3, "n": 1}', 3, id="credit-never-opened"),
    pytest.param('{"t": "cancel", "id": 3}', 3, id="cancel-never-opened"),
    pytest.param('{"t": "cancel"}', None, id="cancel-without-id"),
    pytest.param('{"t": "credit", "id": "3", "n": 1}', None, id="credit-id-string"),
]


@pytest.mark.parametrize("raw, offending_id", BAD_FRAMES)
async def test_malformed_frame_gets_an_error_for_no_call_and_the_connection_stays_open(conn, raw, offending_id):
    await conn.send(raw)
    assert_bad_frame_error(await conn.recv(), offending_id)
    await assert_usable(conn)


async def test_binary_frame_is_a_malformed_frame(conn):
    await conn.send(b'{"t": "ping", "d": 1}')
    assert_bad_frame_error(await conn.recv())
    await assert_usable(conn)


async def test_deeply_nested_json_is_a_malformed_frame_not_a_server_error(conn):
    await conn.send('{"t":"ping","d":' + "[" * 100_000 + "]" * 100_000 + "}")
    assert_bad_frame_error(await conn.recv())
    await assert_usable(conn)


async def test_credit_of_zero_is_a_malformed_frame_and_leaves_the_call_alone(conn):
    await conn.call(1, "interop.count", {"n": 2}, credit=0)
    await conn.send({"t": "credit", "id": 1, "n": 0})
    assert_bad_frame_error(await conn.recv(), 1)
    await conn.send({"t": "credit", "id": 1, "n": 5})
    frames = await conn.until_terminal(1)
    assert items(frames) == [{"i": 0}, {"i": 1}]
    assert frames[-1] == {"t": "end", "id": 1, "d": {"total": 2}}


async def test_call_id_equal_to_an_earlier_id_is_rejected(conn):
    assert (await conn.result(5, "interop.empty"))["t"] == "end"
    await conn.call(5, "interop.empty")
    assert_bad_frame_error(await conn.recv(), 5)
    await assert_usable(conn)


async def test_call_id_lower_than_an_earlier_id_is_rejected(conn):
    assert (await conn.result(5, "interop.empty"))["t"] == "end"
    await conn.call(4, "interop.empty")
    assert_bad_frame_error(await conn.recv(), 4)
    await assert_usable(conn)


async def test_call_ids_need_not_be_consecutive(conn):
    assert (await conn.result(3, "interop.empty"))["t"] == "end"
    assert (await conn.result(90, "interop.empty"))["t"] == "end"


async def test_frame_for_an_id_the_client_skipped_is_for_a_call_never_opened(conn):
    assert (await conn.result(5, "interop.empty"))["t"] == "end"
    await conn.send({"t": "cancel", "id": 3})
    assert_bad_frame_error(await conn.recv(), 3)
    await assert_usable(conn)


async def test_unknown_method_is_unimplemented_for_that_call(conn):
    frame = await conn.result(7, "interop.no_such_method")
    assert frame["t"] == "error" and frame["id"] == 7
    assert frame["code"] == "unimplemented"
    await assert_usable(conn)


async def test_a_rejected_call_still_uses_its_id(conn):
    assert (await conn.result(7, "interop.no_such_method"))["code"] == "unimplemented"
    await conn.call(7, "interop.empty")
    assert_bad_frame_error(await conn.recv(), 7)


async def test_a_malformed_call_frame_still_uses_its_id(conn):
    await conn.send({"t": "call", "id": 7, "m": "interop.empty", "a": [1]})
    assert_bad_frame_error(await conn.recv(), 7)
    await conn.call(7, "interop.empty")
    assert_bad_frame_error(await conn.recv(), 7)
    await assert_usable(conn)


async def test_next_on_a_server_stream_is_a_malformed_frame(conn):
    await conn.call(1, "interop.count", {"n": 2}, credit=0)
    await conn.send({"t": "next", "id": 1, "d": 1})
    assert_bad_frame_error(await conn.recv(), 1)
    await conn.send({"t": "credit", "id": 1, "n": 5})  # the call itself goes on
    assert (await conn.until_terminal(1))[-1] == {"t": "end", "id": 1, "d": {"total": 2}}


async def test_end_on_a_server_stream_is_a_malformed_frame(conn):
    await conn.call(1, "interop.count", {"n": 2}, credit=0)
    await conn.send({"t": "end", "id": 1})
    assert_bad_frame_error(await conn.recv(), 1)
    await conn.send({"t": "credit", "id": 1, "n": 5})
    assert (await conn.until_terminal(1))[-1] == {"t": "end", "id": 1, "d": {"total": 2}}


async def test_next_after_the_client_ended_its_half_is_a_malformed_frame(conn):
    await conn.call(1, "interop.echo", credit=0)
    await conn.send({"t": "end", "id": 1})
    await conn.send({"t": "next", "id": 1, "d": 1})
    assert_bad_frame_error(await conn.recv(), 1)
    await conn.send({"t": "credit", "id": 1, "n": 5})
    frames = await conn.until_terminal(1)
    assert len(frames) == 1 and frames[0]["t"] == "end"
    assert frames[0].get("d") is None  # a bidirectional stream with no return value


async def test_frame_larger_than_max_frame_closes_with_4413(conn):
    await conn.send('{"t":"ping","d":"' + "x" * MAX_FRAME + '"}')
    assert await conn.close_code() == 4413


async def test_frame_just_under_max_frame_is_accepted(conn):
    padding = "x" * (MAX_FRAME - 100)
    await conn.send({"t": "ping", "d": padding})
    assert await conn.recv() == {"t": "pong", "d": padding}


async def test_repeated_bad_frames_close_the_connection_with_4400(conn):
    for _ in range(19):
        await conn.send("not json")
        assert_bad_frame_error(await conn.recv())
    await assert_usable(conn)  # 19 are tolerated
    await conn.send("not json")
    assert await conn.close_code() == 4400


async def test_more_open_calls_than_max_calls_is_resource_exhausted_for_the_new_call(conn):
    for id in range(1, MAX_CALLS + 1):  # held open: no credit to send their first item
        await conn.call(id, "interop.count", {"n": 1}, credit=0)
    frame = await conn.result(MAX_CALLS + 1, "interop.empty")
    assert frame["t"] == "error" and frame["id"] == MAX_CALLS + 1
    assert frame["code"] == "resource_exhausted"
    # Once a call ends, a new one fits again.
    await conn.send({"t": "cancel", "id": 1})
    assert await conn.result(MAX_CALLS + 2, "interop.empty") == {"t": "end", "id": MAX_CALLS + 2, "d": {}}
