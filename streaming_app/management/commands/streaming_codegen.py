"""``manage.py streaming_codegen typescript -o DIR`` / ``python -o FILE.py``: typed clients from the schema."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...codegen import python, typescript
from ...schema import current_document

JS_CLIENT = Path(__file__).resolve().parents[2] / "static" / "streaming_app"


class Command(BaseCommand):
    help = (
        "Write a typed client of every registered streaming method. typescript -o DIR: DIR/api.ts "
        "(createApi(client)) beside a copy of the JavaScript client (client.js, its modules and client.d.ts). "
        "python -o FILE.py: a module with Api(client) over the async StreamClient, typed with TypedDicts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("language", choices=["typescript", "python"])
        parser.add_argument("-o", "--output", required=True, help="a directory (typescript) or a .py file (python)")

    def handle(self, *args: Any, language: str, output: str, **options: Any) -> None:
        document = current_document()
        target = Path(output)
        if language == "python":
            if target.is_dir():
                raise CommandError(f"{target} is a directory; python -o takes the module's file name, e.g. api.py.")
            target.write_text(python(document), encoding="utf-8")
            self.stdout.write(f"Wrote {target}.")
            return
        if target.exists() and not target.is_dir():
            raise CommandError(f"{target} is a file; typescript -o takes a directory.")
        target.mkdir(parents=True, exist_ok=True)
        # client.js imports its sibling modules, so they are copied with it.
        for source in sorted(JS_CLIENT.glob("*.js")) + [JS_CLIENT / "client.d.ts"]:
            shutil.copyfile(source, target / source.name)
        (target / "api.ts").write_text(typescript(document), encoding="utf-8")
        package = target / "package.json"
        if not package.exists():  # the modules are ES modules; a project's own package.json is left alone
            package.write_text('{"type": "module", "private": true}\n', encoding="utf-8")
        self.stdout.write(f"Wrote {target / 'api.ts'} and the JavaScript client beside it.")
