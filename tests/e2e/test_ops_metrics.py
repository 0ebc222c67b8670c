"""Prometheus metrics scraped from a real daphne after real calls (docs/operations.md).

Each test scrapes ``GET /metrics`` before and after what it does and asserts the
difference, so tests sharing the module's server do not count each other's calls.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import Server, start_server
from wsclient import connected

pytestmark = pytest.mark.django_db(transaction=True)

Sample = tuple[str, tuple[tuple[str, str], ...]]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory, redis_url) -> Iterator[Server]:
    with django_db_blocker.unblock():
        process = start_server(tmp_path_factory.mktemp("metrics"), env={"REDIS_URL": redis_url})
    yield process
    process.stop()


def scrape(server: Server, headers: dict[str, str] | None = None) -> dict[Sample, float]:
    response = httpx.get(f"{server.http_url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")  # no Accept: Prometheus' text format
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: dict[Sample, float], after: dict[Sample, float], name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def poll(server: Server, check, timeout: float = 5.0) -> dict[Sample, float]:
    """Scrape until ``check(samples)`` holds (a call's end is counted as its task unwinds)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        samples = await asyncio.to_thread(scrape, server)
        if check(samples) or asyncio.get_running_loop().time() > deadline:
            return samples
        await asyncio.sleep(0.05)


async def test_websocket_calls_are_counted_by_method_transport_and_outcome(server):
    before = scrape(server)
    async with connected(server.ws_url) as conn:
        assert (await conn.result(1, "interop.unary", {"payload": "a"}))["t"] == "end"
        assert (await conn.result(2, "interop.unary", {"payload": "b"}))["t"] == "end"
        assert (await conn.result(3, "interop.fail", {"code": "not_found"}))["t"] == "error"
        await conn.call(4, "interop.forever", {"interval_ms": 10}, credit=1)
        assert (await conn.recv_for(4))["t"] == "next"
        await conn.send({"t": "cancel", "id": 4})
        await conn.sync()
    after = await poll(server, lambda s: delta(before, s, "streaming_calls_total", method="interop.forever",
                                                transport="websocket", outcome="cancelled") == 1)
    ws = {"transport": "websocket"}
    assert delta(before, after, "streaming_calls_total", method="interop.unary", outcome="ok", **ws) == 2
    assert delta(before, after, "streaming_calls_total", method="interop.fail", outcome="not_found", **ws) == 1
    assert delta(before, after, "streaming_calls_total", method="interop.forever", outcome="cancelled", **ws) == 1


def test_http_calls_are_counted_under_their_transport(server):
    before = scrape(server)
    unary = httpx.post(f"{server.http_url}/streams/interop.unary", json={"payload": "x"}, timeout=10)
    assert unary.status_code == 200
    stream = httpx.get(f"{server.http_url}/streams/interop.count?n=4",
                       headers={"Accept": "application/x-ndjson"}, timeout=10)
    assert stream.status_code == 200 and stream.text.count('"next"') == 4
    after = scrape(server)
    assert delta(before, after, "streaming_calls_total", method="interop.unary", transport="http", outcome="ok") == 1
    assert delta(before, after, "streaming_calls_total", method="interop.count", transport="ndjson", outcome="ok") == 1
    assert delta(before, after, "streaming_items_sent_total", method="interop.count") == 4


async def test_open_connections_and_calls_are_gauges(server):
    before = scrape(server)
    async with connected(server.ws_url) as one, connected(server.ws_url) as two:
        for conn in (one, two):
            await conn.call(1, "interop.forever", {"interval_ms": 50}, credit=1)
            assert (await conn.recv_for(1))["t"] == "next"
        during = scrape(server)
        assert delta(before, during, "streaming_connections") == 2
        assert delta(before, during, "streaming_calls_open", method="interop.forever") == 2
    after = await poll(server, lambda s: value(s, "streaming_calls_open", method="interop.forever")
                       == value(before, "streaming_calls_open", method="interop.forever"))
    assert delta(before, after, "streaming_connections") == 0
    assert delta(before, after, "streaming_calls_open", method="interop.forever") == 0


async def test_items_of_an_open_stream_are_counted_while_it_runs(server):
    before = scrape(server)
    async with connected(server.ws_url) as conn:
        await conn.call(1, "interop.forever", {"interval_ms": 1}, credit=7)
        for _ in range(7):
            assert (await conn.recv_for(1))["t"] == "next"
        during = scrape(server)  # the call is still open, held by its credit
        assert delta(before, during, "streaming_items_sent_total", method="interop.forever") == 7
        assert delta(before, during, "streaming_calls_open", method="interop.forever") == 1
    after = await poll(server, lambda s: delta(before, s, "streaming_calls_open", method="interop.forever") == 0)
    assert delta(before, after, "streaming_items_sent_total", method="interop.forever") == 7  # never backwards


async def test_call_durations_fall_into_histogram_buckets(server):
    before = scrape(server)
    async with connected(server.ws_url) as conn:
        await conn.call(1, "interop.count", {"n": 3, "interval_ms": 150}, credit=10)
        frames = await conn.until_terminal(1)
    assert frames[-1]["t"] == "end"
    after = await poll(server, lambda s: delta(before, s, "streaming_call_duration_seconds_count",
                                                method="interop.count") == 1)
    name = "streaming_call_duration_seconds_bucket"
    assert delta(before, after, name, method="interop.count", le="0.25") == 0  # three items 150 ms apart
    assert delta(before, after, name, method="interop.count", le="+Inf") == 1
    assert 0.3 <= delta(before, after, "streaming_call_duration_seconds_sum", method="interop.count") < 10


async def test_published_events_and_their_deliveries_are_counted(server):
    topic = f"metrics-{uuid.uuid4().hex[:8]}"
    before = scrape(server)
    async with connected(server.ws_url) as one, connected(server.ws_url) as two, connected(server.ws_url) as pub:
        for conn in (one, two):
            await conn.call(1, "interop.subscribe", {"topic": topic}, credit=100)
            assert (await conn.recv_for(1))["t"] == "ready"
        for n in range(3):
            assert (await pub.result(n + 1, "interop.publish", {"topic": topic, "data": n}))["t"] == "end"
        for conn in (one, two):
            for _ in range(3):
                assert (await conn.recv_for(1))["t"] == "next"
        after = scrape(server)
    assert delta(before, after, "streaming_published_total") == 3
    assert delta(before, after, "streaming_deliveries_total") == 6


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(server):
    response = httpx.get(f"{server.http_url}/metrics", timeout=10,
                         headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert "# TYPE streaming_calls counter" in response.text
    assert response.text.endswith("# EOF\n")


def test_a_request_relayed_by_a_proxy_is_not_taken_for_a_loopback_one(server):
    response = httpx.get(f"{server.http_url}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert response.status_code in (401, 403)
    assert "streaming_" not in response.text


def test_staff_users_read_the_metrics_from_anywhere(server, staff_token):
    samples = scrape(server, {"X-Forwarded-For": "203.0.113.9", "Authorization": f"Bearer {staff_token}"})
    assert ("streaming_connections", ()) in samples


def test_with_metrics_off_nothing_is_counted(django_db_blocker, tmp_path):
    with django_db_blocker.unblock():
        off = start_server(tmp_path, env={"DJANGO_STREAMING_METRICS": "0"})
    try:
        assert httpx.post(f"{off.http_url}/streams/interop.unary", json={"payload": "x"}, timeout=10).status_code == 200
        samples = scrape(off)
    finally:
        off.stop()
    assert not [name for name, _ in samples if name.startswith("streaming_")]
    assert ("process_resident_memory_bytes", ()) in samples  # the view still serves the process's own
