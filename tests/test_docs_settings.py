"""The settings table in docs/operations.md and the `Settings` struct say the same thing."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from service.infra import settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def documented_variables() -> set[str]:
    """Every variable named in the first column of the settings table."""
    text = DOC.read_text()
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def test_every_setting_is_documented_and_every_documented_setting_exists() -> None:
    read = set(settings.ENV_VARS.values())
    documented = documented_variables()
    assert read - documented == set(), "settings read but not in docs/operations.md"
    assert documented - read == set(), "settings documented but not read"


def test_every_variable_is_a_field_of_settings() -> None:
    fields = {f.name for f in msgspec.structs.fields(settings.Settings)}
    assert set(settings.ENV_VARS) <= fields
