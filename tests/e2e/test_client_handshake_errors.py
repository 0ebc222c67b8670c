"""The Python client's error when a WebSocket handshake is answered with an HTTP status.

A newcomer whose project is not wired for WebSocket sees HTTP 404 (a server that is not
ASGI, such as runserver without daphne) or 500 (an ASGI application with no route for
the path); the client's error says so and points at ``manage.py check``.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Iterator

import pytest
from conftest import plain_http_server

from streaming_app.client import StreamClient, Unavailable

pytestmark = pytest.mark.django_db(transaction=True)


class NotFound(BaseHTTPRequestHandler):
    """What a WSGI-only server answers to a WebSocket upgrade: a plain 404 page."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = b"<h1>Not Found</h1>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def wsgi_like_server() -> Iterator[str]:
    with plain_http_server(NotFound) as url:
        yield url


async def test_a_404_handshake_names_the_routing_and_manage_py_check(wsgi_like_server):
    with pytest.raises(Unavailable) as raised:
        async with StreamClient(wsgi_like_server):
            pass
    error = raised.value
    assert error.details["http_status"] == 404
    assert "HTTP 404" in error.message
    assert "StreamConsumer" in error.message and "INSTALLED_APPS" in error.message
    assert "python manage.py check" in error.message


async def test_a_500_handshake_from_an_unrouted_path_says_where_to_look(daphne_server):
    url = daphne_server.ws_url.replace("/ws/", "/not-routed/")
    with pytest.raises(Unavailable) as raised:
        async with StreamClient(url):
            pass
    error = raised.value
    assert error.details["http_status"] == 500
    assert "No route found for path" in error.message
    assert "python manage.py check" in error.message
