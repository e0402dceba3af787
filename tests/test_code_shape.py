"""fairdrop's code stays easy to change: no function of the service over 60 lines unless
its docstring says why it is long ("Long: ..."), no module over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[1] / "service"
FUNCTION_LINES, MODULE_LINES = 60, 400


def test_no_function_is_longer_than_sixty_lines_without_saying_why() -> None:
    long = []
    for path in sorted(SERVICE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                why = ast.get_docstring(node) or ""
                if lines > FUNCTION_LINES and "Long:" not in why:
                    long.append(f"{path.relative_to(SERVICE)}:{node.lineno} {node.name} ({lines})")
    assert not long


def test_no_module_is_longer_than_four_hundred_lines() -> None:
    long = [
        f"{path.relative_to(SERVICE)} ({n})"
        for path in sorted(SERVICE.rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MODULE_LINES
    ]
    assert not long
