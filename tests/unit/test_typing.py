"""mypy --strict over the package, and over a user's module of the public API.

The configuration is pyproject.toml's ``[tool.mypy]``. Skips locally without
mypy (the ``dev`` extra installs it); fails in CI instead.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import IN_CI, ROOT

USAGE = Path(__file__).with_name("typing_usage.py")


@pytest.fixture(scope="module")
def mypy() -> list[str]:
    if importlib.util.find_spec("mypy") is None:
        message = "mypy is not installed (pip install -e '.[dev]')"
        pytest.fail(f"{message}; CI type-checks the package") if IN_CI else pytest.skip(message)
    return [sys.executable, "-m", "mypy"]


def run_mypy(command: list[str]) -> None:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"mypy reported:\n{result.stdout}{result.stderr}", pytrace=False)


def test_package_type_checks_strictly(mypy: list[str]) -> None:
    run_mypy(mypy)


def test_public_api_has_its_types_in_a_users_module(mypy: list[str]) -> None:
    run_mypy([*mypy, str(USAGE.relative_to(ROOT))])
