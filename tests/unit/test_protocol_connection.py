"""Unit tests of streaming_app.protocol.connection: frame size, bad frames and heartbeats.

No Django, no sockets and no clock: a ServerConnection is fed frames and
times as plain numbers.
"""

from __future__ import annotations

import json

import pytest

from streaming_app.protocol import CallFrame, CloseCode, FrameError, FrameTooLarge, Limits, PingFrame, ServerConnection


def connection(
    *, max_frame: int = 100, max_bad_frames: int = 3, interval: float = 10.0, timeout: float = 25.0, now: float = 0.0
) -> ServerConnection:
    limits = Limits(
        max_frame=max_frame,
        max_calls=4,
        client_window=8,
        max_bad_frames=max_bad_frames,
        heartbeat_interval=interval,
        heartbeat_timeout=timeout,
    )
    return ServerConnection(limits, now)


def test_hello_announces_the_heartbeat_and_the_limits():
    assert json.loads(connection().hello("c1")) == {
        "t": "hello", "v": 1, "conn": "c1", "heartbeat": 10.0,
        "limits": {"max_frame": 100, "max_calls": 4, "client_window": 8},
    }


def test_a_frame_is_parsed_and_its_size_kept():
    conn = connection()
    assert conn.receive('{"t":"ping","d":1}', now=1.0) == PingFrame(1)
    assert conn.last_frame_size == len('{"t":"ping","d":1}')


def test_a_frame_over_max_frame_bytes_closes_with_4413():
    with pytest.raises(FrameTooLarge) as info:
        connection(max_frame=20).receive('{"t":"ping","d":"' + "x" * 20 + '"}', now=1.0)
    assert info.value.close_code is CloseCode.FRAME_TOO_LARGE


def test_the_frame_limit_counts_utf8_bytes_not_characters():
    text = '{"t":"ping","d":"' + "é" * 30 + '"}'  # 50 characters, 80 bytes
    assert len(text) <= 60 < len(text.encode())
    with pytest.raises(FrameTooLarge):
        connection(max_frame=60).receive(text, now=1.0)


def test_a_frame_at_exactly_max_frame_bytes_is_accepted():
    text = '{"t":"ping","d":"' + "x" * 10 + '"}'
    assert connection(max_frame=len(text)).receive(text, now=1.0) == PingFrame("x" * 10)


def test_a_malformed_frame_raises_frame_error():
    with pytest.raises(FrameError):
        connection().receive("not json", now=1.0)


def test_a_bad_frame_gets_an_error_frame_with_null_id_and_the_offending_id():
    conn = connection()
    frame, close_code = conn.bad_frame(FrameError("'credit' frame 'n' must be a positive integer", 7))
    assert json.loads(frame) == {
        "t": "error", "id": None, "code": "invalid_argument",
        "message": "'credit' frame 'n' must be a positive integer", "details": {"id": 7},
    }
    assert close_code is None


def test_bad_frames_close_with_4400_at_the_limit():
    conn = connection(max_bad_frames=3)
    codes = [conn.bad_frame(FrameError("bad"))[1] for _ in range(3)]
    assert codes == [None, None, CloseCode.BAD_FRAMES]


def test_a_malformed_call_frame_still_uses_its_id():
    conn = connection()
    with pytest.raises(FrameError) as info:
        conn.receive('{"t":"call","id":5,"m":"ns.m","a":[]}', now=1.0)
    conn.bad_frame(info.value)
    assert conn.session.last_id == 5
    with pytest.raises(FrameError):
        conn.session.claim_id(5)


def test_a_bad_frame_naming_an_older_id_does_not_move_the_last_id():
    conn = connection()
    conn.session.claim_id(9)
    with pytest.raises(FrameError) as info:
        conn.receive('{"t":"call","id":4,"m":""}', now=1.0)
    conn.bad_frame(info.value)
    assert conn.session.last_id == 9


def test_a_valid_call_frame_is_returned_for_the_transport_to_open():
    frame = connection().receive('{"t":"call","id":1,"m":"ns.m","credit":2}', now=1.0)
    assert frame == CallFrame(1, "ns.m", {}, 2)


def test_any_frame_received_proves_the_peer_alive():
    conn = connection(interval=10, timeout=25, now=0.0)
    conn.receive('{"t":"pong"}', now=20.0)
    assert not conn.ping_due(29.0) and not conn.timed_out(44.0)
    assert conn.timed_out(45.0)


def test_an_oversized_frame_does_not_count_as_a_sign_of_life():
    conn = connection(max_frame=10, now=0.0)
    with pytest.raises(FrameTooLarge):
        conn.receive('{"t":"ping","d":"far too long"}', now=20.0)
    assert conn.last_seen == 0.0


def test_a_ping_is_due_after_one_silent_interval():
    conn = connection(interval=10, timeout=25, now=0.0)
    assert not conn.ping_due(9.9)
    assert conn.ping_due(10.0)


def test_the_connection_times_out_after_the_heartbeat_timeout():
    conn = connection(interval=10, timeout=25, now=0.0)
    assert not conn.timed_out(24.9)
    assert conn.timed_out(25.0)


def test_the_next_check_is_an_interval_away_or_sooner_when_the_timeout_comes_first():
    conn = connection(interval=10, timeout=25, now=0.0)
    assert conn.until_next_check(0.0) == 10.0
    assert conn.until_next_check(20.0) == 5.0


def test_a_frame_the_server_would_send_fits_up_to_max_frame_bytes():
    conn = connection(max_frame=10)
    assert conn.fits("x" * 10)
    assert not conn.fits("é" * 6)  # 12 bytes


# -- calls per second (protocol/call_rate.py) ------------------------------------------------------------


def test_call_rate_allows_a_burst_of_rate_calls_then_refuses_with_the_wait():
    from streaming_app.protocol.call_rate import CallRate

    rate = CallRate(5, now=100.0)
    assert [rate.take(100.0) for _ in range(5)] == [0.0] * 5
    assert rate.take(100.0) == pytest.approx(0.2)


def test_call_rate_refills_at_rate_per_second():
    from streaming_app.protocol.call_rate import CallRate

    rate = CallRate(10, now=0.0)
    for _ in range(10):
        rate.take(0.0)
    assert rate.take(0.05) > 0  # half a token
    assert rate.take(0.2) == 0.0
