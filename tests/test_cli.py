"""The `fairdrop` command, run for real: every address of a launch the pages and `--help`
print reaches its published draw, and a user's mistake is one line on stderr and exit
status 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from service.deps import Deps
from service.queue import checkin, draw
from service.queue.draw import PublishedDraw
from tests.serve import advance, free_port, server_env, serving, stocked_launch

L = "drop"


def fairdrop(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def refused(run: subprocess.CompletedProcess[str], says: str) -> None:
    """A user's mistake: exit status 2, one line on stderr that says why, no traceback."""
    where = f"{run.args[3:]}: {run.returncode}\n{run.stdout}{run.stderr}"
    assert run.returncode == 2, where
    assert "Traceback" not in run.stdout + run.stderr, where
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fairdrop: "), where
    assert says.lower() in lines[0].lower(), where


@pytest.fixture
async def drawn(deps: Deps) -> PublishedDraw:
    regs = await stocked_launch(deps, L, registrations=6)
    await advance(deps, L, "registration_open", "registration_closed", "checkin_open")
    for reg in regs[:4]:
        await checkin.check_in(deps, L, reg)
    await advance(deps, L, "selling")
    return await draw.published(deps, L)


@pytest.fixture
def served(deps: Deps, drawn: PublishedDraw) -> Iterator[tuple[str, dict[str, str]]]:
    """The app's base URL, and the environment a `fairdrop` command shares it with."""
    with serving(deps.settings) as base:
        yield base, {**server_env(deps.settings), "FAIRDROP_PUBLIC_URL": base}


async def test_verify_draw_takes_every_address_of_a_launch(
    served: tuple[str, dict[str, str]], drawn: PublishedDraw
) -> None:
    base, env = served
    one = drawn.order[2]
    paths = [
        f"/launches/{L}",  # the launch's page
        f"/launches/{L}/draw",  # its draw page
        f"/api/launches/{L}",
        f"/api/launches/{L}/draw",
        f"/api/launches/{L}/draw/published",  # as the draw page prints it
        f"/api/launches/{L}/draw/published/",
    ]
    for source in [base + p for p in paths] + paths:  # a path is taken on the public URL
        run = fairdrop("verify-draw", source, "--id", one, env=env)
        assert run.returncode == 0, (source, run.stdout, run.stderr)
        assert run.stdout.startswith("OK:") and f"{one} is number 3 of 4." in run.stdout


async def test_verify_draw_reads_a_file_by_a_relative_path(
    tmp_path: Path, drawn: PublishedDraw
) -> None:
    (tmp_path / "draw.json").write_bytes(msgspec.json.encode(drawn))
    run = fairdrop("verify-draw", "draw.json", cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.startswith("OK:"), run.stdout + run.stderr


async def test_verify_draw_mistakes_are_one_line_and_status_2(
    served: tuple[str, dict[str, str]], tmp_path: Path, drawn: PublishedDraw
) -> None:
    base, env = served
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"launch_id": "x"}')
    (tmp_path / "draw.json").write_bytes(msgspec.json.encode(drawn))
    closed = f"http://127.0.0.1:{free_port()}"
    for args, says in [
        (("nowhere.json",), "cannot read nowhere.json"),
        ((str(tmp_path / "missing.json"),), "no such file"),
        ((str(tmp_path),), "cannot read"),  # a folder
        (("bad.json",), "not a published draw"),
        (("other.json",), "not a published draw"),
        ((f"{closed}/launches/{L}",), "cannot reach"),
        (("http://no-such-host.invalid/launches/x",), "cannot reach"),
        ((f"{base}/api/launches/nope/draw",), "answered 404"),
        ((f"{base}/launches/{L}/nowhere",), "answered 404"),
        (("draw.json", "--id", "not-an-entrant"), "did not take part"),
        (("draw.json", "--bogus"), "unrecognized arguments"),
        ((), "source"),
    ]:
        refused(fairdrop("verify-draw", *args, env=env, cwd=tmp_path), says)


async def test_rebuild_and_create_key_mistakes_are_one_line_and_status_2(deps: Deps) -> None:
    env = server_env(deps.settings)
    refused(fairdrop("rebuild", "no-such-launch", env=env), "no launch 'no-such-launch'")
    for args, says in [
        (("--role", "root"), "invalid choice: 'root'"),
        (("--role", "staff"), "needs --store"),
        (("--role", "agent", "--store", "S1"), "other roles take none"),
        (("--colour", "red"), "unrecognized arguments"),
    ]:
        refused(fairdrop("admin", "create-key", *args, env=env), says)
    refused(fairdrop("admin", env=env), "required")
    refused(fairdrop("no-such-command", env=env), "invalid choice")
    made = fairdrop("admin", "create-key", "--role", "staff", "--store", "S1", env=env)
    assert made.returncode == 0 and made.stdout.startswith("fd_"), made.stderr
