"""Database state of streaming_app."""

from __future__ import annotations

from django.db import models

from .outcomes import EndReason

__all__ = ["EndReason", "EndpointSwitch", "FinishedCall", "LiveCall", "RedeemedTicket"]


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


class FinishedCall(models.Model):
    """One call that ended, written in batches by each server process's monitor.

    Rows are history for the admin; nothing in streaming_app reads them back
    on a call's path. ``manage.py streaming_prune_history`` deletes old ones.
    """

    method = models.CharField(max_length=200, db_index=True)
    namespace = models.CharField(max_length=100)
    kind = models.CharField(max_length=20)
    transport = models.CharField(max_length=20)
    username = models.CharField(max_length=150, blank=True, db_index=True)
    client = models.CharField(max_length=100, blank=True)
    process = models.CharField(max_length=200)
    connection_id = models.CharField(max_length=32)
    call_id = models.PositiveBigIntegerField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(db_index=True)
    duration = models.FloatField(help_text="seconds")
    items_in = models.PositiveBigIntegerField(default=0)
    items_out = models.PositiveBigIntegerField(default=0)
    bytes_in = models.PositiveBigIntegerField(default=0)
    bytes_out = models.PositiveBigIntegerField(default=0)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, db_index=True)
    error_code = models.CharField(max_length=40, blank=True, db_index=True)
    calls = models.PositiveIntegerField(
        default=1,
        help_text="calls this row stands for: more than 1 for an aggregate of calls a flood did not let "
        "the server keep one by one (items and bytes summed, mean duration)",
    )

    class Meta:
        verbose_name = "finished call"
        ordering = ["-ended_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.method} #{self.call_id} ({self.end_reason})"


class EndpointSwitch(models.Model):
    """A method (``ns.method``) or a whole namespace (``ns``) an administrator turned off.

    New calls of a disabled endpoint fail with ``unavailable``. Each server
    process caches the switches and drops its cache when the control topic
    says they changed (see :mod:`streaming_app.switches`).
    """

    name = models.CharField(
        max_length=200, unique=True, help_text="A method such as 'orders.watch', or a namespace such as 'orders'."
    )
    disabled = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True, help_text="Why; shown to nobody but administrators.")
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        verbose_name = "endpoint switch"
        verbose_name_plural = "endpoint switches"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({'disabled' if self.disabled else 'enabled'})"


class LiveCall(models.Model):
    """No table: the admin's entry for the live calls page and its permissions.

    Live calls are in the server processes' memory (and Redis), not in the
    database; this unmanaged model only gives the admin index a link and the
    permission system three codenames.
    """

    class Meta:
        managed = False
        db_table = "streaming_app_livecall_unused"
        verbose_name = "live call"
        default_permissions = ("view",)
        permissions = [
            ("terminate_livecall", "Can terminate live calls and connections"),
            ("publish_topic", "Can publish test messages to topics"),
        ]
