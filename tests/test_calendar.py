"""RFC 5545 text: escaping and line folding, for any text (hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.customers.calendar import escape, fold
from tests.selfservice_kit import unescape, unfold


@given(st.text(max_size=400))
def test_any_text_folds_to_short_lines_and_comes_back(text: str) -> None:
    line = "DESCRIPTION:" + escape(text)
    folded = fold(line) + "\r\n"
    physical = folded.encode().split(b"\r\n")[:-1]
    assert all(len(p) <= 75 for p in physical), "at most 75 octets a line"
    assert all(p.decode() for p in physical), "never inside a UTF-8 character"
    assert all(p.startswith(b" ") for p in physical[1:])
    [back] = unfold(folded)
    assert back == line
    value = back.removeprefix("DESCRIPTION:")
    assert "\n" not in value and "\r" not in value
    assert unescape(value) == text.replace("\r\n", "\n").replace("\r", "\n")


def test_special_characters_are_escaped() -> None:
    assert escape('a,b;c\\d\ne "f"') == 'a\\,b\\;c\\\\d\\ne "f"'
    assert fold("X" * 75) == "X" * 75
    assert fold("X" * 76) == "X" * 75 + "\r\n X"
    assert fold("é" * 40).split("\r\n ")[0] == "é" * 37, "74/75 octets, not half an é"
