"""Every domain error has a stable problem type and status, and docs/api.md lists each."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from service import errors
from service.web.problems import _HTTP_TYPES

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def subclasses(cls: type[errors.FairdropError]) -> Iterator[type[errors.FairdropError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def documented() -> dict[str, int]:
    """The problem-type table of docs/api.md: type → status."""
    rows = re.findall(r"^\| `([a-z-]+)` \| (\d{3}) \|", DOC.read_text(), re.M)
    return {type_: int(status) for type_, status in rows}


def test_every_error_class_has_its_own_type_and_a_client_or_backend_status() -> None:
    classes = list(subclasses(errors.FairdropError))
    assert len(classes) > 20
    for cls in classes:
        assert cls.type != errors.FairdropError.type, cls
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", cls.type), cls
        assert 400 <= cls.status < 500 or cls.status == 503, cls
        assert cls.title and cls.title != errors.FairdropError.title, cls


def test_every_type_raised_is_documented_with_its_status_and_nothing_else_is() -> None:
    raised = {cls.type: cls.status for cls in subclasses(errors.FairdropError)}
    framework = {type_: status for status, type_ in _HTTP_TYPES.items()}
    table = documented()
    for type_, status in {**framework, **raised}.items():
        assert table.get(type_) == status, f"{type_} ({status}) is not in docs/api.md"
    unknown = set(table) - set(raised) - set(framework) - {"internal-error"}
    assert unknown == set(), "documented types nothing raises"
