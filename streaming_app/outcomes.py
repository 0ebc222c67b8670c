"""How a call ended, as the runner decides it and the admin's history records it.

A module of its own, apart from :mod:`.models`, so that the runner and the
transports can name an end reason at import time, before Django's app
registry is ready (importing a models module needs it).
"""

from __future__ import annotations

from django.db import models


class EndReason(models.TextChoices):
    """How a call ended, as the history records it."""

    COMPLETED = "completed", "completed"
    CANCELLED = "cancelled", "cancelled by the client"
    ERROR = "error", "error"
    DEADLINE = "deadline", "deadline exceeded"
    TERMINATED = "terminated", "terminated by an administrator"
    DISCONNECTED = "disconnected", "client disconnected"
    REVOKED = "revoked", "credentials revoked"
