"""End to end: a real headless Chromium reads a stream with a plain ``EventSource``.

The page is the example project's ``/demo/sse/`` (project/demo/templates/demo/sse.html):
it opens an ``EventSource`` on ``interop.count``, lists the ``next`` events and
closes the source on ``end`` or on the server's ``error`` event. Chromium is the
system's (/usr/bin/chromium), driven by Playwright; nothing is downloaded.
"""

from __future__ import annotations

import json
import time

import pytest
from conftest import CHROMIUM_ARGS, chromium_path

# No django_db mark: these tests touch no database themselves, and Playwright's
# sync API keeps an event loop running in this thread, where Django would refuse
# the database flush that follows a transactional test.

TIMEOUT_MS = 10_000
STREAM_PATH = "/streams/interop.count"


@pytest.fixture(scope="module")
def sync_browser():
    """Chromium through Playwright's sync API (conftest's ``browser`` is the async one)."""
    path = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(sync_browser):
    context = sync_browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.stream_requests = []  # type: ignore[attr-defined]
    page.on("request", lambda request: STREAM_PATH in request.url and page.stream_requests.append(request))
    yield page
    context.close()


def open_demo(page, server, query: str) -> None:
    page.goto(f"{server.http_url}/demo/sse/?{query}")


def wait_for_status(page, *statuses: str) -> str:
    page.wait_for_function(
        "statuses => statuses.includes(document.getElementById('status').value)", arg=list(statuses)
    )
    return page.eval_on_selector("#status", "el => el.value")


def test_eventsource_shows_every_item_as_it_arrives_then_the_result(page, daphne_server):
    open_demo(page, daphne_server, "n=5&interval_ms=150")
    assert wait_for_status(page, "end", "error", "failed") == "end"
    items = page.eval_on_selector_all("#items li", "lis => lis.map(li => [li.textContent, +li.dataset.ms])")
    assert [json.loads(text) for text, _ in items] == [{"i": k} for k in range(5)]
    times = [ms for _, ms in items]
    assert times[-1] - times[0] >= 450, times  # shown one by one, 150 ms apart, not all at the end
    assert json.loads(page.eval_on_selector("#result", "el => el.value")) == {"total": 5}
    assert page.stream_requests[0].headers["accept"] == "text/event-stream"


def test_the_page_closes_the_source_on_end_so_the_browser_does_not_reconnect(page, probe_server):
    open_demo(page, probe_server, "n=2&interval_ms=0")  # this server sends retry: 500
    assert wait_for_status(page, "end", "error", "failed") == "end"
    time.sleep(1.5)  # three reconnection delays
    assert len(page.stream_requests) == 1
    assert page.evaluate("() => document.getElementById('status').value") == "end"


def test_the_servers_error_event_reaches_the_page_which_closes_the_source(page, probe_server):
    open_demo(page, probe_server, "n=-1&interval_ms=0")
    assert wait_for_status(page, "end", "error", "failed") == "error"
    assert page.eval_on_selector("#error", "el => el.value") == "invalid_argument"
    time.sleep(1.5)
    assert len(page.stream_requests) == 1


def test_an_http_error_status_makes_eventsource_give_up_without_reconnecting(page, probe_server):
    open_demo(page, probe_server, "n=many&interval_ms=0")  # 400: n is not an integer
    assert wait_for_status(page, "end", "error", "failed") == "failed"
    time.sleep(1.5)
    assert len(page.stream_requests) == 1


# -- resuming with Last-Event-ID ------------------------------------------------------------


@pytest.fixture
def redis_server(django_db_setup, django_db_blocker, tmp_path, redis_url):
    """A daphne of the example project on Redis, which a test may kill and start again on its port."""
    from conftest import start_server

    def start(port: int | None = None):
        with django_db_blocker.unblock():
            return start_server(tmp_path, env={"REDIS_URL": redis_url}, port=port)

    servers = [start()]
    yield servers, start
    for server in servers:
        server.stop()


def test_eventsource_resumes_with_last_event_id_after_the_server_restarts(page, redis_server, redis_url):
    import signal
    import uuid

    from streaming_app.brokers.redis import RedisBroker

    (servers, start) = redis_server
    server = servers[0]
    topic = f"sse{uuid.uuid4().hex[:10]}"
    broker = RedisBroker(redis_url, "streaming_app")
    requests = []
    page.on("request", lambda request: "interop.subscribe" in request.url and requests.append(request))
    page.goto(f"{server.http_url}/demo/sse/?n=1")
    page.evaluate(
        """topic => {
            window.got = []; window.readies = [];
            const source = new EventSource(`/streams/interop.subscribe?topic=${topic}`);
            source.addEventListener('ready', e => window.readies.push([e.lastEventId, JSON.parse(e.data)]));
            source.addEventListener('next', e => window.got.push([e.lastEventId, JSON.parse(e.data)]));
        }""",
        topic,
    )
    page.wait_for_function("window.readies.length === 1")
    eids = [broker.publish(f"interop.{topic}", json.dumps(n)) for n in range(10)]
    page.wait_for_function("window.got.length === 10")
    server.process.send_signal(signal.SIGKILL)  # the browser's connection breaks
    server.process.wait(10)
    eids += [broker.publish(f"interop.{topic}", json.dumps(n)) for n in range(10, 20)]  # while it is down
    servers.append(start(server.port))
    page.wait_for_function("window.got.length >= 20", timeout=30_000)  # EventSource retries by itself
    eids += [broker.publish(f"interop.{topic}", json.dumps(20))]
    page.wait_for_function("window.got.length >= 21")
    got = page.evaluate("window.got")
    readies = page.evaluate("window.readies")
    resumed = requests[-1]
    assert [data for _, data in got] == list(range(21))
    assert [eid for eid, _ in got] == eids
    assert resumed.all_headers().get("last-event-id") == eids[9]
    assert readies[1] == [eids[9], {"eid": eids[9], "recovered": True}]
