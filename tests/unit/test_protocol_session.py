"""Unit tests of streaming_app.protocol.session: ids, credit, windows and half-closes.

No Django and no sockets: a ServerSession is fed ids and items directly.
"""

from __future__ import annotations

import pytest

from streaming_app.protocol import Call, CallKind, CallState, FrameError, ServerSession, WindowExceeded
from streaming_app.protocol.session import MAX_SKIPPED_RANGES

CLIENT_STREAMING = [CallKind.CLIENT_STREAM, CallKind.BIDI_STREAM]
NOT_CLIENT_STREAMING = [CallKind.UNARY, CallKind.SERVER_STREAM]


def session(max_calls: int = 10, client_window: int = 4) -> ServerSession:
    return ServerSession(max_calls=max_calls, client_window=client_window)


def call(kind: CallKind = CallKind.BIDI_STREAM, credit: int | None = None, window: int = 4) -> Call:
    return Call(1, "ns.m", kind, credit, window)


# -- call kinds -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, client, server",
    [
        (CallKind.UNARY, False, False),
        (CallKind.SERVER_STREAM, False, True),
        (CallKind.CLIENT_STREAM, True, False),
        (CallKind.BIDI_STREAM, True, True),
    ],
)
def test_call_kind_says_which_halves_stream(kind, client, server):
    assert kind.client_streams is client
    assert kind.server_streams is server


def test_call_kind_prints_as_its_value():
    assert str(CallKind.SERVER_STREAM) == "server_stream"


# -- ids ------------------------------------------------------------------------------------


def test_increasing_ids_are_accepted_with_gaps():
    s = session()
    for id in (1, 2, 5, 100):
        s.claim_id(id)
    assert s.last_id == 100


def test_reused_id_is_refused_with_that_id():
    s = session()
    s.claim_id(3)
    with pytest.raises(FrameError) as info:
        s.claim_id(3)
    assert info.value.id == 3
    assert info.value.details() == {"id": 3}


def test_smaller_id_is_refused_with_that_id():
    s = session()
    s.claim_id(5)
    with pytest.raises(FrameError) as info:
        s.claim_id(4)
    assert info.value.id == 4


def test_refused_id_does_not_move_the_last_id():
    s = session()
    s.claim_id(5)
    with pytest.raises(FrameError):
        s.claim_id(2)
    assert s.last_id == 5
    s.claim_id(6)


def test_claimed_but_never_opened_id_counts_as_used():
    # A call rejected after its id was claimed (unknown method, too many calls) still uses the id.
    s = session()
    s.claim_id(1)
    with pytest.raises(FrameError):
        s.claim_id(1)


# -- lookup ---------------------------------------------------------------------------------


def test_lookup_returns_an_open_call():
    s = session()
    s.claim_id(1)
    opened = s.open(1, "ns.m", CallKind.SERVER_STREAM, None)
    assert s.lookup(1, "credit") is opened


def test_lookup_of_an_ended_call_returns_none():
    s = session()
    s.claim_id(1)
    s.open(1, "ns.m", CallKind.SERVER_STREAM, None)
    s.close(1)
    assert s.lookup(1, "cancel") is None


def test_lookup_of_a_used_but_rejected_id_returns_none():
    s = session()
    s.claim_id(2)  # claimed, then rejected without opening
    assert s.lookup(2, "next") is None


def test_lookup_of_an_id_the_client_skipped_is_a_frame_error():
    # No call frame ever carried id 3: it was never opened, even though 5 was.
    s = session()
    s.claim_id(2)
    s.claim_id(5)
    with pytest.raises(FrameError) as info:
        s.lookup(3, "end")
    assert info.value.id == 3


@pytest.mark.parametrize("id, used", [(1, False), (2, True), (3, False), (4, False), (5, True), (6, False), (7, True), (8, False)])
def test_was_used_tells_claimed_ids_from_skipped_and_future_ones(id, used):
    s = session()
    for claimed in (2, 5, 7):
        s.claim_id(claimed)
    assert s.was_used(id) is used


def test_skipped_id_ranges_are_bounded_by_forgetting_the_oldest():
    s = session()
    for n in range(MAX_SKIPPED_RANGES + 1):
        s.claim_id(2 * n + 2)  # skips 1, 3, 5, ...
    assert len(s._skipped) <= MAX_SKIPPED_RANGES
    assert s.lookup(1, "credit") is None  # forgotten: treated as an ended call
    last_skipped = 2 * MAX_SKIPPED_RANGES + 1
    with pytest.raises(FrameError):
        s.lookup(last_skipped, "credit")


@pytest.mark.parametrize("frame_type", ["next", "end", "credit", "cancel"])
def test_lookup_of_a_never_opened_id_is_a_frame_error_with_that_id(frame_type):
    s = session()
    s.claim_id(1)
    with pytest.raises(FrameError) as info:
        s.lookup(2, frame_type)
    assert info.value.id == 2
    assert frame_type in info.value.message


def test_lookup_on_a_fresh_session_is_a_frame_error():
    with pytest.raises(FrameError) as info:
        session().lookup(1, "next")
    assert info.value.id == 1


def test_close_marks_the_call_closed_and_forgets_it():
    s = session()
    s.claim_id(1)
    opened = s.open(1, "ns.m", CallKind.UNARY, None)
    s.close(1)
    assert opened.closed
    assert opened.state is CallState.CLOSED
    assert 1 not in s.calls


def test_closing_an_unknown_id_is_harmless():
    s = session()
    s.close(42)
    assert s.calls == {}


def test_session_is_full_at_max_calls():
    s = session(max_calls=2)
    for id in (1, 2):
        s.claim_id(id)
        assert not s.full
        s.open(id, "ns.m", CallKind.UNARY, None)
    assert s.full
    s.close(1)
    assert not s.full


def test_open_uses_the_session_client_window():
    s = session(client_window=7)
    s.claim_id(1)
    assert s.open(1, "ns.m", CallKind.CLIENT_STREAM, None).inbound_allowed == 7


# -- outbound credit ------------------------------------------------------------------------


def test_absent_credit_is_unbounded():
    c = call(CallKind.SERVER_STREAM, credit=None)
    assert all(c.take_credit() for _ in range(10_000))
    assert c.credit is None


def test_granting_credit_keeps_unbounded_credit_unbounded():
    c = call(CallKind.SERVER_STREAM, credit=None)
    c.add_credit(5)
    assert c.credit is None


def test_counted_credit_runs_out():
    c = call(CallKind.SERVER_STREAM, credit=2)
    assert [c.take_credit() for _ in range(3)] == [True, True, False]
    assert c.credit == 0


def test_zero_credit_allows_nothing():
    c = call(CallKind.SERVER_STREAM, credit=0)
    assert not c.take_credit()
    assert c.credit == 0


def test_granted_credit_is_cumulative():
    c = call(CallKind.SERVER_STREAM, credit=0)
    c.add_credit(2)
    c.add_credit(1)
    assert [c.take_credit() for _ in range(4)] == [True, True, True, False]


# -- inbound window ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CLIENT_STREAMING)
def test_client_streaming_call_starts_open_with_the_window(kind):
    c = call(kind, window=5)
    assert c.state is CallState.OPEN
    assert c.inbound_allowed == 5


@pytest.mark.parametrize("kind", NOT_CLIENT_STREAMING)
def test_other_calls_start_half_closed_with_no_window(kind):
    c = call(kind, window=5)
    assert c.state is CallState.HALF_CLOSED
    assert c.inbound_allowed == 0


def test_client_may_send_up_to_the_window_before_any_credit():
    c = call(window=3)
    for _ in range(3):
        c.receive_item()
    assert c.inbound_allowed == 0


def test_item_beyond_the_window_is_refused():
    c = call(window=3)
    for _ in range(3):
        c.receive_item()
    with pytest.raises(WindowExceeded):
        c.receive_item()


@pytest.mark.parametrize("kind", NOT_CLIENT_STREAMING)
def test_item_on_a_call_without_client_half_is_a_frame_error(kind):
    c = Call(9, "ns.m", kind, None, 4)
    with pytest.raises(FrameError) as info:
        c.receive_item()
    assert info.value.id == 9


def test_credit_is_granted_back_in_half_window_batches():
    c = call(window=4)
    grants = []
    for _ in range(4):
        c.receive_item()
    for _ in range(4):
        grants.append(c.item_consumed())
    assert grants == [0, 2, 0, 2]
    assert c.inbound_allowed == 4


def test_odd_window_grants_once_half_is_reached():
    c = call(window=5)
    for _ in range(5):
        c.receive_item()
    assert [c.item_consumed() for _ in range(5)] == [0, 0, 3, 0, 0]
    assert c.inbound_allowed == 3


def test_window_of_one_grants_after_every_item():
    c = call(window=1)
    c.receive_item()
    assert c.item_consumed() == 1
    c.receive_item()
    with pytest.raises(WindowExceeded):
        c.receive_item()


def test_granted_items_may_be_sent_after_the_window_is_used():
    c = call(window=4)
    for _ in range(4):
        c.receive_item()
    c.item_consumed()
    assert c.item_consumed() == 2
    c.receive_item()
    c.receive_item()
    with pytest.raises(WindowExceeded):
        c.receive_item()


# -- half-close --------------------------------------------------------------------------------


def test_end_half_closes_a_client_streaming_call():
    c = call(CallKind.CLIENT_STREAM)
    c.end_client_half()
    assert c.state is CallState.HALF_CLOSED
    assert not c.closed


def test_second_end_is_a_frame_error():
    c = Call(4, "ns.m", CallKind.BIDI_STREAM, None, 4)
    c.end_client_half()
    with pytest.raises(FrameError) as info:
        c.end_client_half()
    assert info.value.id == 4


@pytest.mark.parametrize("kind", NOT_CLIENT_STREAMING)
def test_end_on_a_call_without_client_half_is_a_frame_error(kind):
    c = Call(4, "ns.m", kind, None, 4)
    with pytest.raises(FrameError) as info:
        c.end_client_half()
    assert info.value.id == 4


def test_item_after_end_is_a_frame_error():
    c = Call(4, "ns.m", CallKind.BIDI_STREAM, None, 4)
    c.end_client_half()
    with pytest.raises(FrameError) as info:
        c.receive_item()
    assert info.value.id == 4


def test_no_credit_is_granted_after_the_client_half_ended():
    c = call(window=2)
    c.receive_item()
    c.receive_item()
    c.end_client_half()
    assert [c.item_consumed(), c.item_consumed()] == [0, 0]


def test_no_credit_is_granted_on_a_closed_call():
    c = call(window=2)
    c.receive_item()
    c.close()
    assert c.item_consumed() == 0


def test_end_after_close_is_a_frame_error():
    c = call()
    c.close()
    with pytest.raises(FrameError):
        c.end_client_half()
