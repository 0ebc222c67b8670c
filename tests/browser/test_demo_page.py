"""The live demo page in headless Chromium, served by a real daphne.

The browser is the system's Chromium (``/usr/bin/chromium``, or ``CHROMIUM``),
driven by Playwright for Python (the ``browser`` and ``context`` fixtures of
conftest.py); no browser is downloaded. The page imports
``{% static 'streaming_app/client.js' %}`` as a native ES module, with no
bundler. Locally the tests skip when Playwright or Chromium is missing; with
``CI=true`` they fail.
"""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_PATH = "/static/streaming_app/client.js"


class DemoPage:
    """A tab showing the demo page, with the errors it reported and the responses it got."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.responses: dict[str, object] = {}
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("response", lambda response: self.responses.setdefault(response.url, response))

    @classmethod
    async def open(cls, context, server) -> DemoPage:
        demo = cls(await context.new_page())
        await demo.page.goto(f"{server.http_url}/")
        await demo.page.wait_for_selector("#state[data-state=open]")
        return demo

    async def count(self, n: int, interval_ms: int = 0) -> None:
        await self.page.fill("#counter input[name=n]", str(n))
        await self.page.fill("#counter input[name=interval_ms]", str(interval_ms))
        await self.page.click("#counter button[type=submit]")

    async def counted(self) -> list[str]:
        return await self.page.locator("#counter [data-items] li").all_inner_texts()

    async def say(self, text: str) -> None:
        await self.page.wait_for_selector("#echo [data-status=open]")
        await self.page.fill("#echo input[name=message]", text)
        await self.page.press("#echo input[name=message]", "Enter")


async def test_the_page_imports_the_client_from_static_files_as_an_es_module_with_no_bundler(context, daphne_server):
    demo = await DemoPage.open(context, daphne_server)
    response = demo.responses[f"{daphne_server.http_url}{CLIENT_PATH}"]
    assert response.status == 200
    assert response.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript")
    html = await demo.page.content()
    assert f'import {{ StreamClient }} from "{CLIENT_PATH}";' in html  # the template's own import, no bundle
    # The module the page imported by that URL is the one the page uses: native ES module loading.
    assert await demo.page.evaluate(
        "url => import(url).then(m => m.StreamClient === window.streamingDemo.StreamClient)", CLIENT_PATH
    )
    assert await demo.page.evaluate("window.streamingDemo.client.hello.v") == 1
    assert demo.errors == []


async def test_two_tabs_each_stream_items_and_get_their_echo_replies_from_one_server(context, daphne_server):
    from playwright.async_api import expect

    first = await DemoPage.open(context, daphne_server)
    second = await DemoPage.open(context, daphne_server)
    await first.count(4, interval_ms=20)
    await second.count(6)
    await first.say("hello from the first tab")
    await second.say("hello from the second tab")

    await expect(first.page.locator("#counter [data-status]")).to_have_attribute("data-status", "done")
    await expect(second.page.locator("#counter [data-status]")).to_have_attribute("data-status", "done")
    assert await first.counted() == [f"item {k}" for k in range(4)]
    assert await second.counted() == [f"item {k}" for k in range(6)]
    await expect(first.page.locator("#counter [data-status]")).to_contain_text('{"total":4}')

    await expect(first.page.locator("#echo [data-replies] li")).to_have_count(1)
    await expect(second.page.locator("#echo [data-replies] li")).to_have_count(1)
    await expect(first.page.locator("#echo [data-replies] li")).to_contain_text("hello from the first tab")
    await expect(second.page.locator("#echo [data-replies] li")).to_contain_text("hello from the second tab")

    connections = {await tab.page.evaluate("window.streamingDemo.client.hello.conn") for tab in (first, second)}
    assert len(connections) == 2, "each tab has its own connection"
    assert first.errors == [] and second.errors == []


async def test_stop_cancels_the_running_stream(context, daphne_server):
    from playwright.async_api import expect

    demo = await DemoPage.open(context, daphne_server)
    await demo.count(1000, interval_ms=50)
    await demo.page.wait_for_function("document.querySelectorAll('#counter [data-items] li').length >= 3")
    await demo.page.click("#counter [data-stop]")
    await expect(demo.page.locator("#counter [data-status]")).to_have_attribute("data-status", "stopped")
    stopped_at = len(await demo.counted())
    await demo.page.wait_for_timeout(300)
    assert len(await demo.counted()) == stopped_at
    assert demo.errors == []


@pytest.fixture
def dora(make_user):
    return make_user("dora", is_staff=True)  # the admin's login form takes staff users only


async def signed_in(context, server, username: str):
    """A tab that logged in through the admin's login form and landed on the demo page."""
    page = await context.new_page()
    await page.goto(f"{server.http_url}/admin/login/?next=/")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", "pw-123456")
    await page.click("input[type=submit]")
    await page.wait_for_url(f"{server.http_url}/")
    return page


async def test_a_signed_in_browser_is_authenticated_by_its_session_cookie(context, daphne_server, dora):
    from playwright.async_api import expect

    page = await signed_in(context, daphne_server, "dora")
    await expect(page.locator("#whoami")).to_have_attribute("data-user", "dora")
    await expect(page.locator("#whoami")).to_have_text("dora (staff)")


async def test_an_anonymous_browser_is_shown_as_such(context, daphne_server):
    from playwright.async_api import expect

    demo = await DemoPage.open(context, daphne_server)
    await expect(demo.page.locator("#whoami")).to_have_text("nobody (anonymous)")


TICKET_ROUND_TRIP = """async (url) => {
    const { StreamClient, ticketFetcher } = await import(url);
    const ticket = await ticketFetcher()();   // POST /streams/_ticket with the page's session and CSRF cookies
    const first = new StreamClient("/ws/", { ticket });
    const me = await first.call("interop.whoami");
    await first.close();
    const again = new StreamClient("/ws/", { ticket });
    const refused = await again.ready.then(() => "accepted", (error) => error.code);
    await again.close();
    return [me.username, refused];
}"""


async def test_a_signed_in_page_gets_a_ticket_that_authenticates_one_connection(context, daphne_server, dora):
    page = await signed_in(context, daphne_server, "dora")
    # The second use of the same ticket is refused: the first connection really redeemed it.
    assert await page.evaluate(TICKET_ROUND_TRIP, CLIENT_PATH) == ["dora", "unauthenticated"]


async def chat(demo: DemoPage, text: str) -> None:
    await demo.page.wait_for_selector("#chat [data-status=open]")
    await demo.page.fill("#chat input[name=message]", text)
    await demo.page.press("#chat input[name=message]", "Enter")


async def test_two_tabs_exchange_chat_messages_through_the_room(context, daphne_server):
    from playwright.async_api import expect

    first = await DemoPage.open(context, daphne_server)
    second = await DemoPage.open(context, daphne_server)
    await second.page.wait_for_selector("#chat [data-status=open]")  # both in the room before anyone speaks
    await chat(first, "hello from tab one")
    await expect(second.page.locator("#chat [data-messages] li")).to_have_count(1)
    await chat(second, "and hello back")
    for tab in (first, second):
        messages = tab.page.locator("#chat [data-messages] li")
        await expect(messages).to_have_count(2)
        await expect(messages.nth(0)).to_contain_text("hello from tab one")
        await expect(messages.nth(1)).to_contain_text("and hello back")
        await expect(messages.nth(0)).to_contain_text("(guest)")
    assert first.errors == [] and second.errors == []


async def test_the_chat_rooms_member_list_shows_both_tabs_and_drops_a_closed_one(context, daphne_server):
    """Counted against what the first tab saw alone: the lobby is shared with other tests' tabs."""
    from playwright.async_api import expect

    first = await DemoPage.open(context, daphne_server)
    roster = first.page.locator("#chat [data-members] li")
    await expect(roster).not_to_have_count(0, timeout=10_000)
    before = set(await roster.all_text_contents())
    second = await DemoPage.open(context, daphne_server)
    await expect(roster).to_have_count(len(before) + 1, timeout=10_000)
    [newcomer] = set(await roster.all_text_contents()) - before
    assert newcomer.endswith("(guest)")
    await expect(second.page.locator("#chat [data-members] li")).to_have_count(len(before) + 1, timeout=10_000)
    await second.page.close()
    await expect(roster).to_have_count(len(before), timeout=10_000)
    assert newcomer not in await roster.all_text_contents()
    assert first.errors == []


async def test_a_note_added_in_one_tab_appears_in_the_other_tabs_live_list(context, daphne_server):
    from playwright.async_api import expect

    first = await DemoPage.open(context, daphne_server)
    second = await DemoPage.open(context, daphne_server)
    await expect(second.page.locator("#notes [data-status]")).to_have_attribute("data-status", "live")
    text = f"note {uuid.uuid4().hex[:8]}"
    await first.page.fill("#notes input[name=text]", text)
    await first.page.press("#notes input[name=text]", "Enter")
    await expect(second.page.locator("#notes [data-notes] li", has_text=text)).to_have_count(1)
    await expect(first.page.locator("#notes [data-notes] li", has_text=text)).to_have_count(1)
    assert first.errors == [] and second.errors == []


def in_orm(action):
    """Run ``action`` in a worker thread and close that thread's connection (so teardown can drop the test database)."""
    from asgiref.sync import sync_to_async
    from django.db import connection

    def run():
        try:
            return action()
        finally:
            connection.close()

    return sync_to_async(run)()


@pytest.mark.redis
async def test_notes_changed_through_the_orm_update_and_leave_the_live_list(context, daphne_on_redis):
    from playwright.async_api import expect

    from project.demo.models import Note

    demo = await DemoPage.open(context, daphne_on_redis)
    await expect(demo.page.locator("#notes [data-status]")).to_have_attribute("data-status", "live")
    note = await in_orm(lambda: Note.objects.create(text="from the ORM"))
    row = demo.page.locator(f"#notes [data-notes] li[data-pk='{note.pk}']")
    await expect(row).to_have_text("from the ORM")
    note.text = "edited in the ORM"
    await in_orm(note.save)
    await expect(row).to_have_text("edited in the ORM")
    await in_orm(note.delete)
    await expect(row).to_have_count(0)
