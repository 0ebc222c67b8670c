"""The admin's method explorer in headless Chromium, against a real daphne of the example project.

The page is logged in as a superuser through the admin's login form; its
calls go over the app's own protocol (client.js, the session cookie).
Cleanups are read with a raw WebSocket client (``interop.cleanups``).
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from wsclient import connect, wait_for_cleanups

pytestmark = pytest.mark.django_db(transaction=True)

EXPLORER = "/admin/streaming_app/livecall/explorer/"


@pytest.fixture
def admin_user(transactional_db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root", password="pw-123456")


async def explorer_page(context, server):
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{server.http_url}/admin/login/?next={EXPLORER}")
    await page.fill("input[name=username]", "root")
    await page.fill("input[name=password]", "pw-123456")
    await page.click("input[type=submit]")
    await page.wait_for_url(f"{server.http_url}{EXPLORER}")
    page.errors = errors  # type: ignore[attr-defined]
    return page


async def run(page, method: str, args: dict) -> object:
    section = page.locator(f"section[data-method='{method}']")
    await section.locator("textarea.args").fill(json.dumps(args))
    await section.locator("button.run").click()
    return section


async def test_the_explorer_lists_every_method_with_kind_schemas_and_docstring(context, daphne_server, admin_user):
    page = await explorer_page(context, daphne_server)
    count = page.locator("section[data-method='interop.count']")
    assert await count.get_attribute("data-kind") == "server_stream"
    arguments = json.loads(await count.locator("pre.schema[data-part=arguments]").text_content())
    assert arguments["required"] == ["n"]
    assert await count.locator("pre.schema[data-part=item]").count() == 1
    watch = page.locator("section[data-method='notes.watch']")
    assert "changes, live" in await watch.locator(".description").text_content()
    assert await page.locator("section[data-method='interop.sum'] form").count() == 0  # a client stream: no form
    assert page.errors == []


async def test_the_explorer_runs_interop_count_and_shows_its_items(context, daphne_server, admin_user):
    page = await explorer_page(context, daphne_server)
    section = await run(page, "interop.count", {"n": 3, "start": 7})
    await section.locator(".status[data-state=done]").wait_for()
    assert await section.locator("ol.items li").all_text_contents() == ['{"i":7}', '{"i":8}', '{"i":9}']
    assert json.loads((await section.locator("pre.result").text_content()).removeprefix("result: ")) == {"total": 3}
    assert page.errors == []


async def test_the_explorer_shows_a_unary_result_and_an_error_code(context, daphne_server, admin_user):
    page = await explorer_page(context, daphne_server)
    section = await run(page, "interop.unary", {"payload": "from the page"})
    await section.locator(".status[data-state=done]").wait_for()
    assert "from the page" in await section.locator("pre.result").text_content()
    section = await run(page, "interop.fail", {"code": "not_found", "message": "nope"})
    await section.locator(".status[data-state=error]").wait_for()
    assert await section.locator(".status").text_content() == "not_found: nope"


async def test_cancel_in_the_explorer_runs_the_servers_cleanup(context, daphne_server, admin_user):
    tag = f"explorer-{uuid.uuid4().hex[:8]}"
    page = await explorer_page(context, daphne_server)
    section = await run(page, "interop.forever", {"interval_ms": 50, "tag": tag})
    await section.locator("ol.items li:nth-child(3)").wait_for()
    await section.locator("button.cancel").click()
    await section.locator(".status[data-state=cancelled]").wait_for()
    conn = await connect(daphne_server.ws_url)
    try:
        assert await wait_for_cleanups(conn, tag, 1, first_id=1) == 1
    finally:
        await conn.close()
    shown = await section.locator("ol.items li").count()
    await asyncio.sleep(0.3)
    assert await section.locator("ol.items li").count() == shown  # nothing arrives after cancel
