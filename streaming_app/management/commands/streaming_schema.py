"""``manage.py streaming_schema``: the AsyncAPI 3.0 document of every method, or ``--check`` it against a saved one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...compatibility import NotASchemaDocument, breaking_changes
from ...schema import current_document


class Command(BaseCommand):
    help = (
        "Print the AsyncAPI 3.0 document (JSON) of every registered streaming method; -o writes it to a file. "
        "--check SAVED compares the current methods with a saved document and exits 1 listing each "
        "breaking change (2 when SAVED is not such a document), 0 when every change is compatible."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-o", "--output", help="write the document to this file instead of standard output")
        parser.add_argument("--format", choices=["json", "yaml"], default="json",
                            help="yaml needs PyYAML installed (it is not a dependency)")
        parser.add_argument("--check", metavar="SAVED", help="a document saved earlier (JSON) to compare with")

    def handle(self, *args: Any, output: str | None, format: str, check: str | None, **options: Any) -> None:
        document = current_document()
        if check is not None:
            self.compare(Path(check), document)
            return
        if format == "yaml":
            try:
                import yaml
            except ImportError:
                raise CommandError("--format yaml needs PyYAML, which is not installed; use JSON.") from None
            text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        else:
            text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if output:
            Path(output).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")

    def compare(self, path: Path, document: dict[str, Any]) -> None:
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.", returncode=2) from None
        except ValueError as exc:
            raise CommandError(f"{path} is not a JSON AsyncAPI document: {exc}.", returncode=2) from None
        try:
            changes = breaking_changes(saved, document)
        except NotASchemaDocument as exc:
            raise CommandError(f"{path} cannot be checked: {exc}.", returncode=2) from None
        if changes:
            listed = "\n".join(f"  - {change}" for change in changes)
            raise CommandError(f"{len(changes)} breaking change(s) since {path}:\n{listed}", returncode=1)
        self.stdout.write(f"No breaking changes since {path}.")
