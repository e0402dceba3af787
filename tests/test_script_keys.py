"""Each script is sent only the keys its `-- KEYS:` header names: the header must cover
every key the script touches, itself or through the prelude's helpers."""

from __future__ import annotations

import inspect
import re

import pytest

from service.infra.keys import LAUNCH_KEY_NAMES, LaunchKeys
from service.infra.lua import (
    _HELPER,
    SCRIPT_NAMES,
    _lua_dir,
    helpers_used,
    script_keys,
    script_source,
    shared_helpers,
)

_KEY = re.compile(r"\bK_([A-Z]+)\b")
_CALL = re.compile(r"\b(\w+)\(")


def _touched(text: str, helpers: dict[str, str], seen: frozenset[str] = frozenset()) -> set[str]:
    """Key names `text` uses, following calls into the prelude's helpers."""
    used = {k.lower() for k in _KEY.findall(text)}
    for called in _CALL.findall(text):
        if called in helpers and called not in seen:
            used |= _touched(helpers[called], helpers, seen | {called})
    return used


HELPERS = shared_helpers()[1]
_DEFINED = re.compile(_HELPER.pattern, re.M)


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


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_source_defines_every_helper_it_calls(name: str) -> None:
    """Each helper is a closure made on every call, so a script carries only the ones it
    names; never fewer than it calls, directly or through another helper."""
    body = (_lua_dir() / f"{name}.lua").read_text()
    defined = {d for d in _DEFINED.findall(script_source(name)) if d in HELPERS}
    called = helpers_used(body, HELPERS, _CALL)  # calls only: stricter than the pruner's words
    assert called <= defined, f"{name} calls {sorted(called - defined)} without them"


def test_a_script_without_helpers_is_sent_none() -> None:
    assert not set(_DEFINED.findall(script_source("turn"))) & HELPERS.keys()
    assert set(_DEFINED.findall(script_source("confirm_end"))) & HELPERS.keys() == {
        "log",
        "log_event",
        "leave_shopping",
        "forget_hold",
        "slot_mask",
    }
    assert {"expire_due", "drop_hold"} <= set(_DEFINED.findall(script_source("reserve")))


def test_every_launch_key_has_a_property_and_nothing_else_passes_for_one() -> None:
    keys = LaunchKeys("k-test", "p:")
    for name in LAUNCH_KEY_NAMES:
        assert isinstance(inspect.getattr_static(LaunchKeys, name), property), name
        assert getattr(keys, name) == f"p:fd:{{k-test}}:{name}"
    assert keys.all == [getattr(keys, name) for name in LAUNCH_KEY_NAMES]
    with pytest.raises(AttributeError):
        _ = keys.fre  # type: ignore[attr-defined]
