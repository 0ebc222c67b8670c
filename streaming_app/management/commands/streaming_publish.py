"""``manage.py streaming_publish TOPIC DATA``: publish from a terminal, a cron job or a script."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...exceptions import StreamError
from ...topics import publish


class Command(BaseCommand):
    help = (
        "Publish an event on a topic, to every subscriber on every server process. "
        "DATA is JSON; with --text it is sent as a string; with '-' events are read "
        "from standard input, one JSON value per line. Prints each event id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("topic", help="e.g. chat.lobby")
        parser.add_argument("data", help="a JSON value, or '-' to read one per line from stdin")
        parser.add_argument("--text", action="store_true", help="publish DATA as a string, not JSON")

    def handle(self, *args: Any, topic: str, data: str, text: bool, **options: Any) -> None:
        lines = sys.stdin if data == "-" else [data]
        for number, line in enumerate(lines, 1):
            if data == "-" and not line.strip():
                continue
            value = line.rstrip("\n") if text else self.parse(line, number if data == "-" else None)
            try:
                eid = publish(topic, value)
            except StreamError as exc:
                raise CommandError(exc.message) from None
            self.stdout.write(eid)

    @staticmethod
    def parse(line: str, number: int | None) -> Any:
        try:
            return json.loads(line)
        except ValueError as exc:
            where = f"line {number}: " if number else ""
            raise CommandError(f"{where}DATA is not JSON ({exc}); use --text to publish a string.") from None
