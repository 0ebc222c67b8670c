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
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.utils.functional import cached_property
from django.utils.http import is_same_domain
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


def origin_allowed(scope: Mapping[str, Any]) -> bool:
    """Whether a browser may open this socket from the page it came from: Django's CSRF Origin rule.

    No ``Origin`` header means a non-browser client (browsers always send one
    with a WebSocket handshake), which CSRF-style checks do not concern.
    Otherwise, as ``CsrfViewMiddleware._origin_verified`` decides: the origin
    is the request's own ``scheme://host[:port]`` (``wss`` counting as
    ``https``, ``SECURE_PROXY_SSL_HEADER`` and ``USE_X_FORWARDED_HOST``
    honoured, the host validated by ``ALLOWED_HOSTS``), or an entry of
    ``CSRF_TRUSTED_ORIGINS`` (exact, or ``scheme://*.domain`` for its
    subdomains), or of ``STREAMING["ALLOWED_ORIGINS"]`` (exact). Scheme and
    port count; ``ALLOWED_HOSTS`` alone never admits an origin, so
    ``ALLOWED_HOSTS = ["*"]`` does not open the socket to every site.
    """
    origin = header(scope, b"origin")
    if origin is None:
        return True
    if origin in streaming_settings.ALLOWED_ORIGINS:
        return True
    if origin == _own_origin(scope):
        return True
    trusted = settings.CSRF_TRUSTED_ORIGINS
    if origin in trusted:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    netloc = parts.netloc.lower()
    return bool(netloc) and any(
        is_same_domain(netloc, entry_parts.netloc.lstrip("*"))
        for entry_parts in (urlsplit(entry) for entry in trusted if "*" in entry)
        if entry_parts.scheme == parts.scheme
    )


def _own_origin(scope: Mapping[str, Any]) -> str | None:
    """``scheme://host`` of the handshake as Django sees it (None: the host is not allowed)."""
    scheme = _HTTP_SCHEMES.get(scope.get("scheme") or "ws", "http")
    request = ASGIRequest({**scope, "scheme": scheme, "method": "GET"}, io.BytesIO())
    try:
        host = request.get_host()
    except DisallowedHost:
        return None
    return f"{'https' if request.is_secure() else 'http'}://{host}"


# A WebSocket scope's scheme as the HTTP scheme Django's request knows.
_HTTP_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


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


# Views of META that Django computes once and caches on the request: the
# authenticators read them at the handshake, then an idle connection would keep
# them (about 2 KiB) for its lifetime. Dropped, each is recomputed, equal, when
# something reads it again.
PARSED_ON_DEMAND = ("headers", "GET", "COOKIES")


def forget_parsed(request: Request) -> None:
    """Drop what authentication parsed out of META (headers, query, cookies); read again on demand."""
    http_request = request._request
    cached = http_request.__dict__
    for name in PARSED_ON_DEMAND:
        if isinstance(getattr(type(http_request), name, None), cached_property):  # else not recomputable
            cached.pop(name, None)
