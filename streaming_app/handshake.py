"""The WebSocket handshake: Origin validation (also as ASGI middleware) and authentication.

A handshake is an HTTP request, so it is turned into one (Django's
``ASGIRequest`` wrapped in a DRF ``Request``) and authenticated with the same
DRF authentication classes the HTTP transport uses.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Mapping
from urllib.parse import urlsplit

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http.request import split_domain_port, validate_host
from rest_framework.request import Request

from .conf import streaming_settings

if TYPE_CHECKING:
    from rest_framework.authentication import BaseAuthentication

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin1")
    return None


def allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def origin_allowed(scope: Mapping[str, Any]) -> bool:
    """Whether a browser may open this socket from the page it came from.

    No ``Origin`` header means a non-browser client, which CSRF-style checks
    do not concern. Otherwise the origin must be an allowed host, a
    ``CSRF_TRUSTED_ORIGINS`` entry or a ``STREAMING["ALLOWED_ORIGINS"]`` entry.
    """
    origin = header(scope, b"origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    if origin in streaming_settings.ALLOWED_ORIGINS:
        return True
    if _trusted(origin, parts.scheme, parts.netloc, settings.CSRF_TRUSTED_ORIGINS):
        return True
    domain, _port = split_domain_port(parts.netloc)
    return bool(domain) and validate_host(domain, allowed_hosts())


class OriginValidator:
    """ASGI middleware refusing WebSocket handshakes from origins :func:`origin_allowed` refuses.

    The same rule the consumer applies, for a stack that wants it outside the
    consumer, as Channels' ``AllowedHostsOriginValidator`` is::

        "websocket": OriginValidator(URLRouter(websocket_urlpatterns)),

    A refused handshake is closed before it reaches the application, so
    daphne answers 403, and nothing inside (authentication, tickets) runs.
    Other scopes (``http``, ``lifespan``) pass through: HTTP calls are guarded
    by CSRF, not by the Origin rule. The consumer still checks by default;
    with this middleware in front, ``StreamConsumer.check_origin = False`` (on
    a subclass) skips the second check.
    """

    def __init__(self, application: ASGIApp) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or origin_allowed(scope):
            await self.application(scope, receive, send)
            return
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close"})  # before accept: the server answers 403


def _trusted(origin: str, scheme: str, netloc: str, trusted: Iterable[str]) -> bool:
    for entry in trusted:
        if entry == origin:
            return True
        entry_parts = urlsplit(entry)
        if entry_parts.netloc.startswith("*.") and entry_parts.scheme == scheme:
            suffix = entry_parts.netloc[1:]
            if netloc.endswith(suffix):
                return True
    return False


class DefaultAuthentication:
    """The authentication policy of both transports: ``STREAMING["DEFAULT_AUTHENTICATION_CLASSES"]``.

    A WebSocket handshake and an HTTP call are authenticated the same way, so
    the consumer and the HTTP view share this ``get_*()`` hook (DRF's pattern);
    override it on a subclass of either to authenticate differently.
    """

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [cls() for cls in streaming_settings.DEFAULT_AUTHENTICATION_CLASSES]


def build_request(scope: Mapping[str, Any], authenticators: list[Any]) -> Request:
    """A DRF request for the handshake, authenticated lazily by ``authenticators``.

    A user already in the scope (Channels' ``AuthMiddlewareStack``, or a test)
    is taken as is, the way DRF's test client forces authentication.
    """
    http_request = ASGIRequest({**scope, "method": "GET"}, io.BytesIO())
    scope_user = scope.get("user")
    if scope_user is not None and getattr(scope_user, "is_authenticated", False):
        # DRF's Request reads this attribute of the request it wraps, as its test client sets it.
        setattr(http_request, "_force_auth_user", scope_user)
    return Request(http_request, authenticators=authenticators)


def authenticate(request: Request) -> Any:
    """Run the authenticators now (they touch the database); raise on bad credentials."""
    return request.user
