"""Dependencies point one way: a lower module imports nothing of the module that uses it.

Three cycles were once hidden behind imports inside functions (or under
``TYPE_CHECKING``): brokers ↔ hub, monitor ↔ control ↔ switches, and the
Python client's calls → the client. They are broken with an interface (the
hub is a ``BrokerEventHandler``), data (control commands are a table) and a
narrow object (a call's ``CallChannel``). These tests read the sources, and
import each lower module alone in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "streaming_app"

# module -> modules it must not import, at any level (functions and TYPE_CHECKING included)
LOWER_LAYERS = {
    "streaming_app.brokers": {"streaming_app.hub"},
    "streaming_app.brokers.base": {"streaming_app.hub"},
    "streaming_app.brokers.memory": {"streaming_app.hub"},
    "streaming_app.brokers.redis": {"streaming_app.hub"},
    "streaming_app.control": {"streaming_app.monitor", "streaming_app.switches"},
    "streaming_app.switches": {"streaming_app.monitor"},
    "streaming_app.client.calls": {"streaming_app.client.client"},
}


def source_of(module: str) -> Path:
    path = ROOT / Path(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imports_of(module: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import statement of ``module``."""
    path = source_of(module)
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    anchor = ".".join(parts[: len(parts) - child.level + 1])
                    base = f"{anchor}.{base}" if base else anchor
                found.append((base, child.lineno, in_function))
                found.extend((f"{base}.{alias.name}", child.lineno, in_function) for alias in child.names)
            visit(child, nested)

    visit(tree, False)
    return found


@pytest.mark.parametrize("module", sorted(LOWER_LAYERS))
def test_lower_module_does_not_import_the_module_above_it(module):
    forbidden = LOWER_LAYERS[module]
    hits = [(name, line) for name, line, _ in imports_of(module) if name in forbidden]
    assert hits == [], f"{module} imports {hits}"


@pytest.mark.parametrize(
    "module",
    ["streaming_app.brokers", "streaming_app.hub", "streaming_app.control", "streaming_app.monitor",
     "streaming_app.switches", "streaming_app.client.calls", "streaming_app.client.client"],
)
def test_no_function_level_import_of_the_package_remains_in_these_modules(module):
    inner = [(name, line) for name, line, in_function in imports_of(module)
             if in_function and name.startswith("streaming_app.")
             and name.rpartition(".")[0] not in ("streaming_app.models", "streaming_app")  # the app registry's models
             and not name.startswith("streaming_app.models")]
    assert inner == [], f"{module} imports inside functions: {inner}"


@pytest.mark.parametrize("module", sorted(LOWER_LAYERS))
def test_lower_module_imports_alone_without_the_module_above(module):
    code = "import importlib, sys, types\n"
    if module.startswith("streaming_app.client."):
        # The client needs no Django; its package __init__ imports every client
        # module, so calls.py is loaded under a bare package to see what it pulls in.
        code += (
            "sys.modules['django'] = None\n"
            "import streaming_app\n"
            "package = types.ModuleType('streaming_app.client')\n"
            f"package.__path__ = [{str(PACKAGE / 'client')!r}]\n"
            "sys.modules['streaming_app.client'] = package\n"
        )
    code += (
        f"importlib.import_module({module!r})\n"
        f"print(sorted(m for m in {sorted(LOWER_LAYERS[module])!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"DJANGO_SETTINGS_MODULE": "project.settings", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert ast.literal_eval(result.stdout.strip()) == []
