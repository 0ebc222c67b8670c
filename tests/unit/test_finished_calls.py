"""The finished calls a process holds for the history table: bounded, anonymous ones first to go (issue 17, row 8)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from streaming_app.finished import MAX_AGGREGATES, FinishedCalls

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def record(n: int, username: str = "", method: str = "interop.empty") -> dict:
    return {
        "method": method, "namespace": "interop", "kind": "unary", "transport": "websocket",
        "username": username, "client": "127.0.0.1:1", "process": "h:1", "connection_id": "c",
        "call_id": n, "started_at": T0 + timedelta(seconds=n), "ended_at": T0 + timedelta(seconds=n + 1),
        "duration": float(n), "items_in": 0, "items_out": 1, "bytes_in": 10, "bytes_out": 20,
        "end_reason": "completed", "error_code": "", "calls": 1,
    }


def test_past_the_limit_the_oldest_anonymous_record_is_aggregated_before_any_users():
    finished = FinishedCalls()
    finished.add(record(1, "alice"), limit=3)
    for n in range(2, 6):
        finished.add(record(n), limit=3)
    assert [r["call_id"] for r in finished.named] == [1]
    assert [r["call_id"] for r in finished.anonymous] == [4, 5]
    [aggregate] = finished.aggregates.values()
    assert (aggregate["calls"], aggregate["username"], aggregate["call_id"]) == (2, "", 0)
    assert finished.aggregated == 2


def test_an_aggregate_sums_items_and_bytes_and_keeps_the_span_and_mean_duration():
    finished = FinishedCalls()
    for n in range(1, 5):
        finished.add(record(n), limit=1)
    [aggregate] = finished.aggregates.values()
    assert aggregate["calls"] == 3 and aggregate["bytes_out"] == 60 and aggregate["items_out"] == 3
    assert aggregate["started_at"] == T0 + timedelta(seconds=1) and aggregate["ended_at"] == T0 + timedelta(seconds=4)
    assert aggregate["duration"] == 2.0


def test_take_writes_users_calls_one_by_one_first_and_aggregates_what_exceeds_the_rows():
    finished = FinishedCalls()
    for n in range(1, 6):
        finished.add(record(n), limit=100)
    finished.add(record(6, "bob"), limit=100)
    rows = finished.take(max_rows=2)
    singles = [(r["call_id"], r["username"]) for r in rows if r["calls"] == 1]
    assert singles == [(6, "bob"), (1, "")]
    assert [r["calls"] for r in rows if r["calls"] > 1] == [4]
    assert sum(r["calls"] for r in rows) == 6 and len(finished) == 0


def test_aggregates_are_bounded_however_many_users_a_flood_uses():
    finished = FinishedCalls()
    for n in range(MAX_AGGREGATES * 3):
        finished.add(record(n, f"user{n}"), limit=0)
    assert len(finished.aggregates) == MAX_AGGREGATES + 1  # the last one without its user
    assert sum(r["calls"] for r in finished.aggregates.values()) == MAX_AGGREGATES * 3


def test_an_aggregate_put_back_after_a_failed_write_merges_with_the_next():
    finished = FinishedCalls()
    for n in range(1, 4):
        finished.add(record(n), limit=0)
    rows = finished.take(max_rows=10)
    for row in rows:  # the write failed
        finished.add(row, limit=0)
    finished.add(record(9), limit=0)
    [aggregate] = finished.take(max_rows=10)
    assert aggregate["calls"] == 4
