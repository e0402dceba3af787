"""The `fairdrop` command: serve, demo, outbox, migrate, rebuild, verify-draw, admin, rehearse."""

from __future__ import annotations

import argparse

import msgspec

from service.cli import draw, keys, ops, serving
from service.cli._base import Parser, fail
from service.errors import FairdropError
from service.infra.settings import from_env


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="fairdrop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serving.add_commands(sub)
    ops.add_commands(sub)
    draw.add_commands(sub)
    admin = sub.add_parser("admin", help="administration").add_subparsers(
        dest="admin", required=True
    )
    keys.add_commands(admin)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = from_env()
    overrides = {k: getattr(args, k, None) for k in ("host", "port", "workers")}
    settings = msgspec.structs.replace(
        settings, **{k: v for k, v in overrides.items() if v is not None}
    )
    try:
        args.func(settings, args)
    except FairdropError as exc:
        fail(exc.detail)
    except OSError as exc:  # a server named in the environment that does not answer
        fail(f"cannot reach a service fairdrop needs: {exc}")


if __name__ == "__main__":
    main()
