"""Imports point down: each layer imports only from itself and the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[1] / "service"

# What each package may import from fairdrop, besides itself.
BELOW: dict[str, set[str]] = {
    "infra": {"errors", "clock"},
    "store": {"infra", "errors"},  # the launch store: over the Redis client, nothing else
    "stock": {"infra", "store", "deps", "errors", "events", "subjects", "clock"},
}
# Only the outermost layers (entry points, the web and the page layer, the job table)
# import these.
TOP = {"web", "pages", "cli", "jobs", "demo", "rehearse", "__main__"}


def _imports(path: Path) -> set[str]:
    """The first name after `service.` of every fairdrop module `path` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "service":
                if len(parts) > 1:
                    found.add(parts[1])
                else:
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "service" and len(parts) > 1:
                    found.add(parts[1])
    return found


def _package(path: Path) -> str:
    return path.relative_to(SERVICE).parts[0].removesuffix(".py")


MODULES = sorted(SERVICE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SERVICE)))
def test_imports_point_down(path: Path) -> None:
    package = _package(path)
    imported = _imports(path) - {package}
    if package in BELOW:
        assert imported <= BELOW[package], f"{path.name} imports {imported - BELOW[package]}"
    if package not in TOP:
        assert not imported & TOP, f"{path.name} imports {imported & TOP} from a layer above"


def test_the_valkey_starter_does_not_import_the_postgres_one() -> None:
    """`embedded` starts Valkey through `embedded_valkey`; the reverse would be a circle."""
    tree = ast.parse((SERVICE / "infra" / "embedded_valkey.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "service.infra.embedded" not in modules
