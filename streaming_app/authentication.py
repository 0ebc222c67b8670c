"""Authentication classes for streams: DRF's interface, usable on both transports.

They authenticate a DRF ``Request``; for a WebSocket that request is built
from the handshake (see :mod:`.handshake`), so any DRF authentication class
that reads headers or the query string works there too.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .tickets import InvalidTicket, redeem_ticket


class BearerTokenAuthentication(authentication.TokenAuthentication):
    """DRF authtoken tokens sent as ``Authorization: Bearer <key>``."""

    keyword = "Bearer"


class SessionAuthentication(authentication.SessionAuthentication):
    """The Django session: from the middleware when there is one, else from the cookie.

    A WebSocket handshake passes through no Django middleware, so the session
    is loaded here from the cookie. An unknown or expired session is anonymous,
    not an error: a stale cookie must not break a connection. CSRF is enforced
    as DRF does, for unsafe HTTP methods only.
    """

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        http_request = request._request
        user = getattr(http_request, "user", None)
        if user is None:
            if not hasattr(http_request, "session"):
                engine = import_module(settings.SESSION_ENGINE)
                key = http_request.COOKIES.get(settings.SESSION_COOKIE_NAME)
                http_request.session = engine.SessionStore(key)
            user = get_user(http_request)
        if not user or not user.is_active:
            return None
        self.enforce_csrf(request)
        return (user, None)


class TicketAuthentication(authentication.BaseAuthentication):
    """A single-use ticket in the ``ticket`` query parameter (browsers)."""

    def authenticate(self, request: Request) -> tuple[Any, str] | None:
        ticket = request._request.GET.get("ticket")
        if not ticket:
            return None
        cached = getattr(request._request, "_streaming_ticket_user", None)
        if cached is not None:
            return (cached, ticket)
        try:
            user = redeem_ticket(ticket)
        except InvalidTicket as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        setattr(request._request, "_streaming_ticket_user", user)
        return (user, ticket)

    def authenticate_header(self, request: Request) -> str:
        return "Ticket"
