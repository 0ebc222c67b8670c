"""The documentation's links resolve inside the repository (a clone has no shared/ folder)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

DOCUMENTS = sorted(
    [ROOT / "README.md", ROOT / "tests" / "README.md", ROOT / "clients" / "python" / "README.md",
     ROOT / "streaming_app" / "static" / "streaming_app" / "README.md", *(ROOT / "docs").glob("*.md")]
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_name_files_of_the_repository(document: Path) -> None:
    missing = []
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        if not (document.parent / target.split("#")[0]).exists():
            missing.append(target)
    assert missing == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_document_sends_the_reader_to_shared_contracts_outside_the_repository(document: Path) -> None:
    assert re.findall(r"shared/\w+\.md", document.read_text()) == []
