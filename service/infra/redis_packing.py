"""Packing commands with hiredis (C) rather than redis-py's Python, and a script's head
(`EVALSHA <sha> <numkeys> <keys>`) once per launch. redis-py's version is bounded in
pyproject.toml, and tests/test_redis_client.py checks the bytes on the wire are what
redis-py would send, so an upgrade that changes its connection fails a test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import DataError


def _body(packed: bytes) -> bytes:
    """A packed command without its leading `*<count>` line."""
    return packed[packed.index(b"\n") + 1 :]


class ScriptHead:
    """`EVALSHA <sha> <numkeys> <key>…` of one script on one launch, packed once.

    Sent as `execute_command("EVALSHA", head, *args)` on a `HiredisPackedConnection`,
    which packs only `args`: a launch's key names never change, and packing them cost
    a hold more than its ticket check did (hiredis spends ~1,200 instructions on each
    argument; a hold sends 11 keys; `tests/bench/run.py reserve-ir`). The bytes on
    the wire are the same as for `evalsha(sha, numkeys, *keys, *args)`.
    """

    __slots__ = ("_body", "_lines", "_words", "keys", "sha")

    def __init__(self, sha: str, keys: Sequence[str]) -> None:
        self.sha, self.keys = sha, tuple(keys)
        command: Any = ("EVALSHA", sha, len(self.keys), *self.keys)
        self._body = _body(hiredis.pack_command(command))
        self._words = 3 + len(self.keys)
        self._lines: dict[int, bytes] = {}  # by argument count: the head with its count

    def pack(self, args: Sequence[Any]) -> list[bytes]:
        n = len(args)
        line = self._lines.get(n)
        if line is None:
            line = self._lines[n] = b"*%d\r\n" % (self._words + n) + self._body
        if not n:
            return [line]
        try:
            return [line, _body(hiredis.pack_command(tuple(args)))]
        except TypeError as exc:
            raise DataError(str(exc)) from exc

    def __str__(self) -> str:  # what redis-py shows of a failed command
        return f"{self.sha} {len(self.keys)} {' '.join(self.keys)}"


class HiredisPackedConnection(aioredis.Connection):
    """A connection that packs commands with hiredis (C) instead of redis-py's Python,
    and sends a `ScriptHead`'s packed bytes as they are.

    redis-py's sync client already does the first when hiredis is installed; its
    asyncio client does not, and packing a launch script's 17 keys in Python cost more
    client CPU than the rest of the call (`tests/bench/run.py reserve`).
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        if len(args) > 1 and type(args[1]) is ScriptHead:
            return args[1].pack(args[2:])
        name = args[0]
        if isinstance(name, str):  # "CONFIG GET": Redis wants the words apart
            args = (*name.encode().split(), *args[1:])
        elif b" " in name:
            args = (*name.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(str(exc)) from exc
