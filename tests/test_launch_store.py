"""Only the launch store (`service/store/`) talks to Redis about a launch: no other module
of the service calls the Redis client or runs a script itself, and nothing above the
store catches a redis exception."""

from __future__ import annotations

import ast
from pathlib import Path

import msgspec

from service.store.queue import AdmitReply

SERVICE = Path(__file__).resolve().parents[1] / "service"
# The store itself; the layer below it (the client, the script runner, the drains); the
# rehearsal tool, which watches a whole deployment from outside.
ALLOWED = ("store/", "infra/", "rehearse/")


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "redis":
            value = node.value
            owner = value.attr if isinstance(value, ast.Attribute) else getattr(value, "id", "")
            if owner == "deps":
                found.append(f"{path}:{node.lineno}: deps.redis")
        if isinstance(node, ast.Attribute) and node.attr in ("run", "run_many", "run_each"):
            value = node.value
            if isinstance(value, ast.Attribute) and value.attr == "scripts":
                found.append(f"{path}:{node.lineno}: scripts.{node.attr}")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("redis"):
            found.append(f"{path}:{node.lineno}: imports {node.module}")
    return found


def test_only_the_store_talks_to_redis_about_a_launch() -> None:
    offences = []
    for path in sorted(SERVICE.rglob("*.py")):
        rel = path.relative_to(SERVICE).as_posix()
        if rel.startswith(ALLOWED):
            continue
        offences += _offences(path)
    assert not offences, "\n".join(offences)


def test_the_checker_sees_an_offence(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from redis.exceptions import RedisError\n"
        "async def f(deps):\n"
        "    await deps.redis.hget('k', 'f')\n"
        "    await deps.scripts.run('reserve', None)\n"
        "    await self.deps.redis.lrange('k', 0, -1)\n"
    )
    assert len(_offences(bad)) == 4


def test_admit_reply_decodes_positionally_with_or_without_its_last_count() -> None:
    reply = ["drawn", 5, 3, 0, 2, 1, 120000, 0, 2000, 100, 50, 1, 1, 0, 1]
    older = msgspec.convert(reply, AdmitReply, strict=False)
    assert (older.qlen, older.admitting, older.loaded, older.left_prequeue) == (5, True, True, 0)
    assert msgspec.convert([*reply, 4], AdmitReply, strict=False).left_prequeue == 4
