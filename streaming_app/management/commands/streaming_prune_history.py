"""``manage.py streaming_prune_history``: delete finished calls older than the retention.

Run it from cron (or a periodic task); the server processes never delete
history themselves, so a busy process does no cleanup work on its event loop.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ...conf import streaming_settings
from ...models import FinishedCall

BATCH = 10_000  # rows per DELETE, so a large backlog does not hold one long lock


class Command(BaseCommand):
    help = (
        "Delete finished-call history older than STREAMING['HISTORY_RETENTION_DAYS'] "
        "(or --days). Prints how many rows went."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=float, help="keep this many days instead of the setting")
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args: Any, days: float | None, dry_run: bool, **options: Any) -> None:
        if days is None:
            days = streaming_settings.HISTORY_RETENTION_DAYS
            if days is None:
                self.stdout.write("HISTORY_RETENTION_DAYS is None: history is kept; nothing deleted.")
                return
        if days < 0:
            raise CommandError("--days must not be negative.")
        cutoff = timezone.now() - timedelta(days=days)
        old = FinishedCall.objects.filter(ended_at__lt=cutoff)
        if dry_run:
            self.stdout.write(f"{old.count()} finished calls ended before {cutoff:%Y-%m-%d %H:%M:%S} (dry run).")
            return
        deleted = 0
        for _ in range(1_000_000):  # bounded: at most a billion rows per run
            ids = list(old.order_by().values_list("pk", flat=True)[:BATCH])
            if not ids:
                break
            deleted += FinishedCall.objects.filter(pk__in=ids).delete()[0]
        self.stdout.write(f"Deleted {deleted} finished calls ended before {cutoff:%Y-%m-%d %H:%M:%S}.")
