"""A script's error names the Lua file and line it is at, not the assembled script's line
(the loader prepends the key bindings and the prelude's helpers to each script)."""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError

from service.deps import Deps
from service.infra.lua import SCRIPT_NAMES, _lua_dir, assemble, where


def _line_of(file: str, text: str) -> int:
    lines = (_lua_dir() / file).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_every_line_of_an_assembled_script_maps_back_to_its_file(name: str) -> None:
    source, origins = assemble(name)
    files = {"_shared.lua": (_lua_dir() / "_shared.lua").read_text().splitlines()}
    files[f"{name}.lua"] = (_lua_dir() / f"{name}.lua").read_text().splitlines()
    for number, line in enumerate(source.splitlines(), 1):
        file, _, at = where(origins, number).removeprefix("lua/").rpartition(":")
        if file in files and line.strip():
            assert files[file][int(at) - 1] == line, (name, number)


async def test_an_error_in_a_script_names_its_file_and_line(deps: Deps) -> None:
    with pytest.raises(ResponseError) as raised:
        # A slot that is not a number: comparing it fails in withdraw_sold.lua itself.
        await deps.scripts.run("withdraw_sold", deps.keys("lines"), "", "S1:K1", 1, "7", "x")
    line = _line_of("withdraw_sold.lua", "if slot >= 0 then")
    assert f"lua/withdraw_sold.lua:{line}" in str(raised.value)
    assert "user_script" not in str(raised.value)


async def test_an_error_in_a_helper_names_the_prelude_and_its_line(deps: Deps) -> None:
    with pytest.raises(ResponseError) as raised:
        # A unit that is not a number fails in the prelude's pair_member.
        await deps.scripts.run("withdraw_sold", deps.keys("lines"), "", "S1:K1", "x", "7", -1)
    assert "lua/_shared.lua:" in str(raised.value), raised.value
    at = int(str(raised.value).split("lua/_shared.lua:")[1].split(":")[0])
    assert "string.format" in (_lua_dir() / "_shared.lua").read_text().splitlines()[at - 1]


async def test_errors_in_a_pipeline_are_located_too(deps: Deps) -> None:
    keys = deps.keys("lines")
    [reply] = await deps.scripts.run_each(
        "withdraw_sold", [(keys, ("", "S1:K1", 1, "7", "x"))], raise_on_error=False
    )
    assert isinstance(reply, ResponseError)
    assert "lua/withdraw_sold.lua:" in str(reply)
