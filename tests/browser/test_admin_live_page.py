"""The admin's live calls page in headless Chromium, over two daphne processes on Redis.

Streams are started with raw WebSocket clients (tests/wsclient.py, bearer
tokens) on both processes; the page is logged in as a superuser through the
admin's login form. Screenshots go to ``test-output/admin/`` (git-ignored).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from conftest import ROOT
from wsclient import Connection, connect, wait_for_cleanups

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SHOTS = ROOT / "test-output" / "admin"
WITHIN = 10.0  # seconds the page has to show a change (snapshots are written every second)


def shot_path(name: str) -> str:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return str(Path(SHOTS) / f"{name}.png")


@pytest.fixture
def admin_user(transactional_db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root", password="pw-123456")


@pytest.fixture
def token(make_token):
    return make_token("streamer")


async def live_page(context, server):  # noqa: F811
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.goto(f"{server.http_url}/admin/login/?next=/admin/streaming_app/livecall/")
    await page.fill("input[name=username]", "root")
    await page.fill("input[name=password]", "pw-123456")
    await page.click("input[type=submit]")
    await page.wait_for_url(f"{server.http_url}/admin/streaming_app/livecall/")
    await page.wait_for_selector("#live-state[data-state=live]")
    page.errors = errors  # type: ignore[attr-defined]
    return page


async def forever(server, token: str, tag: str, call_id: int = 1) -> Connection:
    conn = await connect(server.ws_url, headers={"Authorization": f"Bearer {token}"})
    await conn.call(call_id, "interop.forever", {"interval_ms": 50, "tag": tag})
    frame = await conn.recv_for(call_id)
    assert frame["t"] == "next", frame
    return conn


def row(page, conn: Connection, call_id: int = 1):
    return page.locator(f"#live-calls tbody tr[data-conn='{conn.hello['conn']}'][data-call='{call_id}']")


async def items_out(page, conn: Connection) -> int:
    return int(await row(page, conn).get_attribute("data-items-out"))


async def wait_until(predicate, timeout: float = WITHIN) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.1) + 1):
        if await predicate():
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_live_page_shows_calls_of_both_processes_with_growing_counts(context, two_servers, admin_user, token):  # noqa: F811
    from playwright.async_api import expect

    tag = uuid.uuid4().hex
    first = await forever(two_servers[0], token, tag)
    second = await forever(two_servers[1], token, tag)
    try:
        page = await live_page(context, two_servers[0])
        for conn in (first, second):
            await expect(row(page, conn)).to_have_count(1, timeout=WITHIN * 1000)
        processes = {await row(page, conn).get_attribute("data-process") for conn in (first, second)}
        assert len(processes) == 2, "each stream is shown on the process that serves it"
        await expect(row(page, first).locator("td").nth(3)).to_have_text("streamer")
        before = await items_out(page, first)
        await wait_until(lambda: _grew(page, first, before))
        summary = page.locator("#live-summary tr[data-method='interop.forever']")
        await expect(summary).to_have_attribute("data-open", "2")
        await page.screenshot(path=shot_path("live-two-processes"), full_page=True)
        assert page.errors == []
    finally:
        await first.close()
        await second.close()


async def _grew(page, conn: Connection, before: int) -> bool:
    return await items_out(page, conn) > before


async def test_terminating_a_call_from_the_page_sends_cancelled_and_runs_its_finally(context, two_servers, admin_user, token):  # noqa: F811
    from playwright.async_api import expect

    tag = uuid.uuid4().hex
    # The page is served by the first process; the call lives on the second.
    conn = await forever(two_servers[1], token, tag)
    try:
        page = await live_page(context, two_servers[0])
        await expect(row(page, conn)).to_have_count(1, timeout=WITHIN * 1000)
        await page.screenshot(path=shot_path("live-before-terminate"), full_page=True)
        await row(page, conn).locator("button[data-terminate-call]").click()
        frames = await conn.until_terminal(1, timeout=WITHIN)
        error = frames[-1]
        assert (error["t"], error["code"], error["details"]) == ("error", "cancelled", {"reason": "terminated"})
        assert error["message"] == "Terminated by an administrator."
        assert await wait_for_cleanups(conn, tag, 1, first_id=2) == 1
        await expect(row(page, conn)).to_have_count(0, timeout=WITHIN * 1000)
        await page.screenshot(path=shot_path("live-after-terminate"), full_page=True)
    finally:
        await conn.close()


async def test_closing_a_connection_from_the_page_closes_it_with_4000_and_runs_finally(context, two_servers, admin_user, token):  # noqa: F811
    from playwright.async_api import expect

    tag = uuid.uuid4().hex
    conn = await forever(two_servers[1], token, tag)
    await conn.call(2, "interop.forever", {"interval_ms": 50, "tag": tag})
    page = await live_page(context, two_servers[0])
    await expect(row(page, conn, 2)).to_have_count(1, timeout=WITHIN * 1000)
    await row(page, conn).locator("button[data-close-connection]").click()
    assert await conn.close_code(timeout=WITHIN) == 4000
    checker = await forever(two_servers[0], token, "unrelated-" + tag)
    try:
        assert await wait_for_cleanups(checker, tag, 2, first_id=2) == 2  # both calls' finally ran
    finally:
        await checker.close()


async def test_calls_of_a_killed_process_leave_the_live_list(context, two_servers, admin_user, token):  # noqa: F811
    from playwright.async_api import expect

    tag = uuid.uuid4().hex
    survivor = await forever(two_servers[0], token, tag)
    doomed = await forever(two_servers[1], token, tag)
    try:
        page = await live_page(context, two_servers[0])
        await expect(row(page, doomed)).to_have_count(1, timeout=WITHIN * 1000)
        two_servers[1].process.kill()  # SIGKILL: no cleanup of its own
        two_servers[1].process.wait(10)
        await expect(row(page, doomed)).to_have_count(0, timeout=WITHIN * 1000)
        await expect(row(page, survivor)).to_have_count(1)
        await page.screenshot(path=shot_path("live-after-kill"), full_page=True)
    finally:
        await survivor.close()
        await doomed.ws.close()


async def test_disabling_a_method_from_the_page_refuses_new_calls_on_every_process_until_enabled(context, two_servers, admin_user, token):  # noqa: F811
    from playwright.async_api import expect

    page = await live_page(context, two_servers[0])
    summary = page.locator("#live-summary tr[data-method='interop.unary']")
    await summary.locator("button[data-disable]").click()
    await expect(summary).to_have_attribute("data-disabled", "true", timeout=WITHIN * 1000)
    await page.screenshot(path=shot_path("live-disabled"), full_page=True)
    conns = [await connect(server.ws_url, headers={"Authorization": f"Bearer {token}"}) for server in two_servers]
    try:
        for conn in conns:
            frame = await conn.result(1, "interop.unary", {"payload": "x"})
            assert (frame["t"], frame["code"]) == ("error", "unavailable"), frame
            assert frame["details"] == {"reason": "disabled", "method": "interop.unary"}
        await summary.locator("button[data-enable]").click()
        await expect(summary).to_have_attribute("data-disabled", "false", timeout=WITHIN * 1000)
        for conn in conns:
            frame = await conn.result(2, "interop.unary", {"payload": "x"})
            assert frame == {"t": "end", "id": 2, "d": {"payload": "x"}}
    finally:
        for conn in conns:
            await conn.close()


async def test_the_topics_table_shows_a_rooms_subscribers_and_members_of_both_processes(context, two_servers, admin_user, token):  # noqa: F811
    from playwright.async_api import expect

    topic = f"room{uuid.uuid4().hex[:10]}"
    members = []
    for server, headers in zip(two_servers, ({"Authorization": f"Bearer {token}"}, None)):
        conn = await connect(server.ws_url, headers=headers)
        await conn.call(1, "interop.room", {"topic": topic})
        frame = await conn.recv_for(1)
        while frame["t"] == "ready":
            frame = await conn.recv_for(1)
        assert frame["d"]["presence"] == "join", frame
        members.append(conn)
    try:
        page = await live_page(context, two_servers[0])
        cells = page.locator(f"#live-topics tbody tr[data-topic='interop.{topic}'] td")
        # topic, subscribers, presence watchers, members (clients), signed-in users, anonymous
        await expect(cells).to_have_text([f"interop.{topic}", "2", "2", "2", "1", "1"], timeout=WITHIN * 1000)
        await page.screenshot(path=shot_path("topics"), full_page=True)
        await members[1].close()
        await expect(cells).to_have_text([f"interop.{topic}", "1", "1", "1", "1", "0"], timeout=WITHIN * 1000)
        assert page.errors == []
    finally:
        for conn in members:
            await conn.close()
