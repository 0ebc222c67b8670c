"""client.js in Chromium: a browser's WebSocket cannot send headers, so a token is refused up front.

In Node the client passes a token through Node's built-in WebSocket
(tests/js/interop.test.mjs); in a page it must say, at construction, to use
the session cookie or a ticket instead.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_token_without_a_websocket_class_that_sends_headers_is_refused_in_a_browser(context, daphne_server):
    page = await context.new_page()
    await page.goto(f"{daphne_server.http_url}/")
    message = await page.evaluate(
        """async () => {
            const { StreamClient } = await import("/static/streaming_app/client.js");
            try { new StreamClient("/ws/", { token: "abc" }); return "constructed"; }
            catch (error) { return `${error.name}: ${error.message}`; }
        }"""
    )
    assert message.startswith("TypeError: Headers (and token) need a WebSocket class that accepts them")
