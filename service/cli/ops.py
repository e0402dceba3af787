"""`fairdrop migrate`, `rebuild`, `outbox` and `rehearse`."""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from service.cli._base import Subparsers, fail, resolved, with_deps
from service.cli.serving import demo_pins
from service.deps import Deps
from service.infra import db
from service.infra.settings import Settings


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> None:
    with resolved(settings) as s:
        assert s.database_url is not None
        applied = asyncio.run(db.migrate_url(s.database_url, s.db_schema))
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")


def cmd_rebuild(settings: Settings, args: argparse.Namespace) -> None:
    from service.stock.rebuild import rebuild

    async def work(deps: Deps) -> None:
        report = await rebuild(deps, args.launch)
        print(msgspec.json.encode(report).decode())

    with resolved(settings) as s:
        asyncio.run(with_deps(s, work))


def cmd_outbox(settings: Settings, args: argparse.Namespace) -> None:
    """Print the e-mails in the outbox, newest first, as they would be sent now."""
    from service.notify import outbox

    async def work(deps: Deps) -> list[outbox.Mail]:
        return await outbox.read(deps, launch_id=args.launch, to=args.to, limit=args.limit)

    with resolved(settings) as s:
        mails = asyncio.run(with_deps(demo_pins(s, write=False), work))
    if not mails:
        print("No e-mails in the outbox" + (" that match." if args.launch or args.to else "."))
    for mail in mails:
        print(f"── #{mail.id} · {mail.kind} · {mail.launch_id} · {mail.note}")
        print(f"To:      {mail.to}\nSubject: {mail.subject}\n")
        print("".join(f"    {line}".rstrip() + "\n" for line in mail.text.rstrip().splitlines()))


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count of 1 or more")
    return int(text)


def cmd_rehearse(settings: Settings, args: argparse.Namespace) -> None:
    """A whole launch with a simulated crowd; the summary is the last stdout line."""
    try:
        from service.rehearse.analyse import broken_invariants
        from service.rehearse.run import rehearse
    except ImportError as exc:
        fail(f"rehearse needs `pip install 'fairdrop[rehearse]'` ({exc})")
    from service.rehearse.options import Refused, from_args

    try:
        summary = rehearse(from_args(args))
    except Refused as exc:
        fail(f"rehearse: {exc}")
    print(msgspec.json.encode(summary).decode(), flush=True)
    if broken := broken_invariants(summary):
        print(
            f"fairdrop rehearse: {'; '.join(broken)} (replay: --seed {summary['seed']})",
            file=sys.stderr,
        )
        raise SystemExit(1)


def add_commands(sub: Subparsers) -> None:
    sub.add_parser("migrate", help="apply pending database migrations").set_defaults(
        func=cmd_migrate
    )
    rebuild = sub.add_parser("rebuild", help="rebuild a launch's Redis state from Postgres")
    rebuild.add_argument("launch")
    rebuild.set_defaults(func=cmd_rebuild)
    mail = sub.add_parser(
        "outbox", help="print the e-mails in the outbox (sent or not), newest first"
    )
    mail.add_argument("--launch", help="only this launch's")
    mail.add_argument("--to", help="only those to this address")
    mail.add_argument("--limit", type=_positive, default=20, help="at most this many (default 20)")
    mail.set_defaults(func=cmd_outbox)
    from service.rehearse.options import add_arguments

    rehearsal = sub.add_parser("rehearse", help="run a whole launch with a simulated crowd")
    add_arguments(rehearsal)
    rehearsal.set_defaults(func=cmd_rehearse)
