"""The Lua scripts as Redis runs them: one file a script under `lua/`, each given its keys
as locals and the prelude's helpers it uses (`lua/_shared.lua`), and a script's error
lines mapped back to the file they are in."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from redis.exceptions import ResponseError

from service.infra.keys import LAUNCH_KEY_NAMES

SCRIPT_NAMES: tuple[str, ...] = (
    "reserve",
    "release",
    "confirm_begin",
    "confirm_end",
    "confirm_abort",
    "expire",
    "add_units",
    "withdraw_units",
    "return_unit",
    "move_begin",
    "move_unit",
    "load",
    "checkin",
    "draw_begin",
    "draw_finish",
    "admit",
    "queue_restore",
    "invite",
    "holds_of",
    "confirm_overdue",
    "turn",
    "rate_limit",
    "leave",
    "withdraw_sold",
)


def _lua_dir() -> Path:
    packaged = resources.files("service").joinpath("_lua")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "lua"


_KEYS_HEADER = re.compile(r"^-- KEYS: ([a-z ]+)$", re.MULTILINE)


def script_keys(name: str) -> tuple[str, ...]:
    """The keys the script names in its `-- KEYS:` header, in the order it takes them."""
    text = (_lua_dir() / f"{name}.lua").read_text()
    found = _KEYS_HEADER.search(text)
    if found is None:
        raise ValueError(f"lua/{name}.lua has no `-- KEYS:` header")
    names = tuple(found.group(1).split())
    unknown = set(names) - set(LAUNCH_KEY_NAMES)
    if unknown:
        raise ValueError(f"lua/{name}.lua names unknown keys {sorted(unknown)}")
    return names


def _key_local(name: str) -> str:
    return f"K_{name.upper()}"


_HELPER = re.compile(r"^local function (\w+)\(")
_WORD = re.compile(r"\w+")


def shared_helpers() -> tuple[str, dict[str, str]]:
    """`lua/_shared.lua` as its header and its helpers by name, in the file's order, each
    with the comment lines right above it."""
    lines = (_lua_dir() / "_shared.lua").read_text().splitlines(keepends=True)
    starts: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        if found := _HELPER.match(line):
            while i > 0 and lines[i - 1].startswith("--"):
                i -= 1
            starts.append((i, found.group(1)))
    ends = [start for start, _ in starts[1:]] + [len(lines)]
    helpers = {
        name: "".join(lines[start:end]) for (start, name), end in zip(starts, ends, strict=True)
    }
    return "".join(lines[: starts[0][0]]), helpers


def helpers_used(text: str, helpers: dict[str, str], names: re.Pattern[str] = _WORD) -> set[str]:
    """The helpers `text` names (each match of `names`), and the helpers those name, and
    so on."""
    used: set[str] = set()
    todo = [text]
    while todo:
        for name in set(names.findall(todo.pop())) & helpers.keys() - used:
            used.add(name)
            todo.append(helpers[name])
    return used


def script_source(name: str) -> str:
    """The text Redis runs for `name`: its keys bound to locals, the prelude's helpers it
    uses, then the operation. Only those helpers: each is a closure made afresh on every
    call, and making them all cost each script ~2 us of Redis CPU (most capture several
    keys). Keys it does not name stay nil locals, so a script that reached for one
    would fail loudly."""
    return assemble(name)[0]


Origins = tuple[tuple[int, str, int], ...]
"""Where each part of an assembled script comes from: (its first line in the script,
its file, that line's number in the file), in order."""


def assemble(name: str) -> tuple[str, Origins]:
    """`script_source`, with where each of its lines comes from."""
    folder = _lua_dir()
    names = script_keys(name)
    binding = [f"local {_key_local(n)} = KEYS[{i}]" for i, n in enumerate(names, 1)]
    others = [_key_local(n) for n in LAUNCH_KEY_NAMES if n not in names]
    if others:
        binding.append(f"local {', '.join(others)}")
    body = (folder / f"{name}.lua").read_text()
    shared = (folder / "_shared.lua").read_text()
    header, helpers = shared_helpers()
    used = helpers_used(body, helpers)
    kept = [text for helper, text in helpers.items() if helper in used]  # defined in order
    parts = [("\n".join(binding) + "\n", f"{name}.lua (its keys)", 1), (header, "_shared.lua", 1)]
    parts += [(text, "_shared.lua", shared[: shared.index(text)].count("\n") + 1) for text in kept]
    parts += [("\n" + body, f"{name}.lua", 0)]  # the blank line before it: line 0
    origins, line = [], 1
    for text, file, first in parts:
        origins.append((line, file, first))
        line += text.count("\n")
    return "".join(text for text, _, _ in parts), tuple(origins)


def where(origins: Origins, line: int) -> str:
    """`lua/<file>:<line>` of an assembled script's `line`."""
    start, file, first = max((o for o in origins if o[0] <= line), key=lambda o: o[0])
    return f"lua/{file}:{first + line - start}"


_SCRIPT_LINE = re.compile(r"user_script:(\d+)")


def located(origins: Origins, error: ResponseError) -> ResponseError:
    """`error` with each `user_script:<line>` Redis names as the file and line it is."""
    text = _SCRIPT_LINE.sub(lambda m: where(origins, int(m.group(1))), str(error))
    return error if text == str(error) else type(error)(text)
