"""Short-lived, single-use, signed tickets for browser WebSocket handshakes.

A browser cannot set an ``Authorization`` header on a WebSocket; when the
session cookie is not an option (another origin, a token-based front end),
the page asks the ticket endpoint for a ticket and connects with
``?ticket=...``. The ticket is signed with SECRET_KEY, names the user, expires
after ``TICKET_MAX_AGE`` seconds and is accepted once: redemption records its
nonce, and a unique constraint makes a second use fail on every process.
"""

from __future__ import annotations

import datetime
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core import signing
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from .conf import streaming_settings
from .revocation import key_hash

SALT = "streaming_app.ticket"


class InvalidTicket(Exception):
    """The ticket is malformed, forged, expired, already used or names no active user."""


def issue_ticket(user: Any, session_key: str | None = None) -> str:
    """A ticket for ``user``; ``session_key`` (of the session that asked) is carried as a hash.

    The hash lets a logout of that session close the connections the ticket
    opened (streaming_app.revocation names sessions by the same hash); the
    key itself never goes into a URL.
    """
    payload = {"u": str(user.pk), "n": secrets.token_urlsafe(18)}
    if session_key:
        payload["s"] = key_hash(session_key)
    return signing.TimestampSigner(salt=SALT).sign_object(payload, compress=False)


def ticket_session_hash(ticket: str) -> str | None:
    """The session hash a genuine ticket carries (None: none, or not a ticket); its age is not checked."""
    try:
        payload = signing.TimestampSigner(salt=SALT).unsign_object(ticket)
    except (signing.BadSignature, ValueError):
        return None
    session = payload.get("s") if isinstance(payload, dict) else None
    return session if isinstance(session, str) else None


def redeem_ticket(ticket: str) -> Any:
    """The user a ticket was issued to; it cannot be redeemed again."""
    max_age = streaming_settings.TICKET_MAX_AGE
    try:
        payload = signing.TimestampSigner(salt=SALT).unsign_object(ticket, max_age=max_age)
    except signing.SignatureExpired:
        raise InvalidTicket("Ticket expired.") from None
    except (signing.BadSignature, ValueError):
        raise InvalidTicket("Invalid ticket.") from None
    nonce, user_id = (payload.get("n"), payload.get("u")) if isinstance(payload, dict) else (None, None)
    if not isinstance(nonce, str) or not isinstance(user_id, str):
        raise InvalidTicket("Invalid ticket.")
    from .models import RedeemedTicket

    now = timezone.now()
    try:
        with transaction.atomic():
            RedeemedTicket.objects.create(
                nonce=nonce[:64], expires_at=now + datetime.timedelta(seconds=max_age)
            )
    except IntegrityError:
        raise InvalidTicket("Ticket already used.") from None
    RedeemedTicket.objects.filter(expires_at__lt=now).delete()
    user_model = get_user_model()
    try:
        user = user_model._default_manager.get(pk=user_id)
    except (user_model.DoesNotExist, ValueError, TypeError):
        raise InvalidTicket("Invalid ticket.") from None
    if not user.is_active:
        raise InvalidTicket("User inactive or deleted.")
    return user


@require_POST
@csrf_protect
def ticket_view(request: HttpRequest) -> JsonResponse:
    """``POST <prefix>/_ticket``: a ticket for the session's user."""
    if not request.user.is_authenticated:
        return JsonResponse(
            {"error": {"code": "unauthenticated", "message": "Log in to get a ticket.", "details": {}}},
            status=401,
        )
    return JsonResponse(
        {"ticket": issue_ticket(request.user, request.session.session_key), "expires_in": streaming_settings.TICKET_MAX_AGE}
    )
