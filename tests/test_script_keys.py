"""Each script is sent only the keys its `-- KEYS:` header names: the header must cover
every key the script touches, itself or through the prelude's helpers."""

from __future__ import annotations

import re

import pytest

from service.infra.keys import LAUNCH_KEY_NAMES
from service.infra.redis import SCRIPT_NAMES, _lua_dir, script_keys, script_source

_FUNCTION = re.compile(r"^local function (\w+)\(.*?\n(.*?)^end$", re.S | re.M)
_KEY = re.compile(r"\bK_([A-Z]+)\b")
_CALL = re.compile(r"\b(\w+)\(")


def _touched(text: str, helpers: dict[str, str], seen: frozenset[str] = frozenset()) -> set[str]:
    """Key names `text` uses, following calls into the prelude's helpers."""
    used = {k.lower() for k in _KEY.findall(text)}
    for called in _CALL.findall(text):
        if called in helpers and called not in seen:
            used |= _touched(helpers[called], helpers, seen | {called})
    return used


HELPERS = dict(_FUNCTION.findall((_lua_dir() / "_shared.lua").read_text()))


def test_the_helper_parser_sees_the_prelude() -> None:
    assert {"drop_hold", "expire_due", "log", "forget_hold"} <= set(HELPERS)
    assert _touched("expire_due(now, 1)", HELPERS) >= {"holds", "expiry", "free", "evlog"}


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_header_names_every_key_the_script_touches(name: str) -> None:
    body = (_lua_dir() / f"{name}.lua").read_text()
    declared = script_keys(name)
    assert len(set(declared)) == len(declared), f"{name} names a key twice"
    missing = _touched(body, HELPERS) - set(declared)
    assert not missing, f"lua/{name}.lua touches {sorted(missing)} but its header omits them"


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_source_binds_declared_keys_in_order_and_leaves_the_rest_nil(name: str) -> None:
    source = script_source(name)
    for i, key in enumerate(script_keys(name), 1):
        assert f"local K_{key.upper()} = KEYS[{i}]\n" in source
    for key in set(LAUNCH_KEY_NAMES) - set(script_keys(name)):
        assert f"K_{key.upper()} = KEYS[" not in source


def test_reserve_is_sent_fewer_keys_than_the_launch_has() -> None:
    # The point of the headers: the hottest script does not carry the queue's keys.
    assert len(script_keys("reserve")) < len(LAUNCH_KEY_NAMES)
    assert "qpos" not in script_keys("reserve")
