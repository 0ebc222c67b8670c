"""Database state of streaming_app."""

from __future__ import annotations

from django.db import models


class RedeemedTicket(models.Model):
    """A ticket that was used: what makes tickets single-use across processes.

    Rows are only needed until the ticket would have expired anyway, and are
    pruned as new tickets are redeemed.
    """

    nonce = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "redeemed ticket"

    def __str__(self) -> str:
        return self.nonce
