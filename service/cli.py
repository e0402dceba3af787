"""The `fairdrop` command: serve, demo, outbox, migrate, rebuild, verify-draw, admin, rehearse."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shlex
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import msgspec

from service.auth.apikeys import KeyInfo, create_key, list_keys, revoke_key
from service.clock import SystemClock
from service.deps import Deps
from service.errors import FairdropError
from service.infra import db
from service.infra.redis import redis_for
from service.infra.settings import Settings, from_env
from service.pickup.windows import now_of

T = TypeVar("T")


def fail(message: str) -> NoReturn:
    """A user's mistake: one line on stderr, exit status 2, no traceback."""
    print(f"fairdrop: {message}", file=sys.stderr)
    raise SystemExit(2)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see {self.prog} --help)")


@contextlib.contextmanager
def _resolved(settings: Settings) -> Iterator[Settings]:
    """Settings with real URLs: the given ones, or embedded servers started for this run."""
    if not settings.embedded:
        yield settings
        return
    from service.infra.embedded import services

    print(
        "fairdrop: DATABASE_URL/REDIS_URL unset; starting embedded PostgreSQL and Valkey…",
        file=sys.stderr,
    )
    with services(settings) as resolved:
        yield resolved


async def _with_deps(settings: Settings, work: Callable[[Deps], Awaitable[T]]) -> T:
    assert settings.database_url is not None and settings.redis_url is not None
    await db.migrate_url(settings.database_url, settings.db_schema)
    pool = await db.create_pool(settings, min_size=1, max_size=5)
    redis = redis_for(settings)
    try:
        return await work(Deps(settings=settings, pool=pool, redis=redis, clock=SystemClock()))
    finally:
        await redis.aclose()
        await pool.close()


def _export(settings: Settings) -> None:
    """Workers are separate processes: hand them the resolved settings by environment."""
    assert settings.database_url is not None and settings.redis_url is not None
    os.environ["DATABASE_URL"] = settings.database_url
    os.environ["REDIS_URL"] = settings.redis_url
    os.environ["FAIRDROP_SECRET"] = settings.secret
    os.environ["FAIRDROP_PUBLIC_URL"] = settings.base_url


def _serve(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    _export(settings)
    Granian(
        target="service.web.asgi:app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.uvloop if sys.platform != "win32" else Loops.asyncio,
        log_access=False,
    ).serve()


def _check_port(settings: Settings) -> None:
    """Say plainly that the port is taken, before starting anything."""
    import socket

    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            fail(
                f"cannot listen on {settings.host}:{settings.port} ({exc.strerror});"
                " pick another port with --port 8080 or FAIRDROP_PORT=8080"
            )


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    _check_port(settings)
    with _resolved(settings) as s:
        asyncio.run(_with_deps(s, _noop))
        print(
            f"fairdrop: serving on http://{s.host}:{s.port} ({s.workers} worker(s))",
            file=sys.stderr,
        )
        _serve(s)


async def _noop(deps: Deps) -> None:
    return None


def cmd_demo(settings: Settings, args: argparse.Namespace) -> None:
    from service import demo

    _check_port(settings)
    if "FAIRDROP_NOTIFY" not in os.environ and "FAIRDROP_SMTP_HOST" not in os.environ:
        # No mail server named: keep e-mails queued in the outbox instead of retrying.
        os.environ["FAIRDROP_NOTIFY"] = "0"
        settings = msgspec.structs.replace(settings, notify=False)
        print(
            "fairdrop: e-mails stay in the outbox (set FAIRDROP_SMTP_HOST to send them)",
            file=sys.stderr,
        )

    async def work(deps: Deps) -> demo.DemoInfo:
        if args.reset:
            await demo.reset(deps)
            print("fairdrop: the demo's launches and keys were dropped", file=sys.stderr)
        return await demo.seed(deps)

    with _resolved(settings) as s:
        s = _demo_pins(s, write=True)
        info = asyncio.run(_with_deps(s, work))
        print(demo.describe(info, s.base_url, _command()), flush=True)
        _serve(s)


def _command() -> str:
    """How to run `fairdrop` again from here, with this run's data dir (as typed)."""
    command = sys.argv[0] if os.path.basename(sys.argv[0]) == "fairdrop" else "fairdrop"
    if data_dir := os.environ.get("FAIRDROP_DATA_DIR"):
        command = f"FAIRDROP_DATA_DIR={shlex.quote(data_dir)} {command}"
    return command


def _demo_pins(settings: Settings, *, write: bool) -> Settings:
    """The demo's secret and address, kept beside the embedded data: the demo's printed
    links keep working after a restart, and `fairdrop outbox` renders links that work.
    Each applies only when its variable (`FAIRDROP_SECRET`, `FAIRDROP_PUBLIC_URL`) is unset;
    with `write`, the demo's are saved first (the secret made once)."""
    import platformdirs

    folder = settings.data_dir or platformdirs.user_data_dir("fairdrop")
    secret_file = os.path.join(folder, "demo-secret")
    url_file = os.path.join(folder, "demo-url")
    if write:
        os.makedirs(folder, exist_ok=True)
        if not os.path.exists(secret_file):
            import secrets

            with open(secret_file, "w") as f:
                f.write(secrets.token_urlsafe(32))
        with open(url_file, "w") as f:
            f.write(settings.base_url)
    pins: dict[str, str] = {}
    if settings.secret_is_random and os.path.exists(secret_file):
        with open(secret_file) as f:
            pins["secret"] = f.read().strip()
    if "FAIRDROP_PUBLIC_URL" not in os.environ and os.path.exists(url_file):
        with open(url_file) as f:
            pins["public_url"] = f.read().strip()
    return msgspec.structs.replace(settings, **pins)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> None:
    with _resolved(settings) as s:
        assert s.database_url is not None
        applied = asyncio.run(db.migrate_url(s.database_url, s.db_schema))
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")


def cmd_rebuild(settings: Settings, args: argparse.Namespace) -> None:
    from service.stock.rebuild import rebuild

    async def work(deps: Deps) -> None:
        report = await rebuild(deps, args.launch)
        print(msgspec.json.encode(report).decode())

    with _resolved(settings) as s:
        asyncio.run(_with_deps(s, work))


def cmd_create_key(settings: Settings, args: argparse.Namespace) -> None:
    async def work(deps: Deps) -> None:
        key = await create_key(deps.pool, args.role, label=args.label, store_id=args.store)
        print(key)

    if (args.role == "staff") != (args.store is not None):
        fail("a staff key needs --store; other roles take none")
    with _resolved(settings) as s:
        asyncio.run(_with_deps(s, work))


def cmd_outbox(settings: Settings, args: argparse.Namespace) -> None:
    """Print the e-mails in the outbox, newest first, as they would be sent now."""
    from service.notify import outbox

    async def work(deps: Deps) -> list[outbox.Mail]:
        return await outbox.read(deps, launch_id=args.launch, to=args.to, limit=args.limit)

    with _resolved(settings) as s:
        mails = asyncio.run(_with_deps(_demo_pins(s, write=False), work))
    if not mails:
        print("No e-mails in the outbox" + (" that match." if args.launch or args.to else "."))
    for mail in mails:
        print(f"── #{mail.id} · {mail.kind} · {mail.launch_id} · {mail.note}")
        print(f"To:      {mail.to}\nSubject: {mail.subject}\n")
        print("".join(f"    {line}".rstrip() + "\n" for line in mail.text.rstrip().splitlines()))


KEY_COLUMNS = ("id", "label", "role", "store", "created", "last used", "revoked")


def key_rows(keys: list[KeyInfo]) -> list[tuple[str, ...]]:
    """The keys as `list-keys` prints them: one row a key, times to the minute (UTC)."""

    def at(when: datetime | None) -> str:
        return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if when else "-"

    return [
        (
            k.id,
            k.label or "-",
            k.role,
            k.store_id or "-",
            at(k.created_at),
            at(k.last_used_at),
            at(k.revoked_at),
        )
        for k in keys
    ]


def cmd_list_keys(settings: Settings, args: argparse.Namespace) -> None:
    async def work(deps: Deps) -> None:
        rows = [KEY_COLUMNS, *key_rows(await list_keys(deps.pool))]
        widths = [max(len(row[i]) for row in rows) for i in range(len(KEY_COLUMNS))]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())

    with _resolved(settings) as s:
        asyncio.run(_with_deps(s, work))


def cmd_revoke_key(settings: Settings, args: argparse.Namespace) -> None:
    async def work(deps: Deps) -> None:
        key = await revoke_key(deps.pool, args.id, now=now_of(deps), actor="cli")
        print(
            f"revoked {key.id} ({key.label or key.role}) at {key.revoked_at:%Y-%m-%d %H:%M:%S %Z}"
        )

    with _resolved(settings) as s:
        asyncio.run(_with_deps(s, work))


def cmd_verify_draw(settings: Settings, args: argparse.Namespace) -> None:
    """Recompute a published draw from its seed and ids; check the commitment."""
    from service.queue.draw import PublishedDraw, check

    raw = _read_draw(args.source, settings.base_url)
    try:
        published = msgspec.json.decode(raw, type=PublishedDraw)
    except msgspec.DecodeError as exc:
        fail(f"{args.source} is not a published draw ({exc})")
    problems = check(published, seed_hash=args.seed_hash)
    for problem in problems:
        print(f"FAILED: {problem}")
    if problems:
        raise SystemExit(1)
    print(
        f"OK: the order of {len(published.order)} entrants, all on the committed roster of"
        f" {len(published.roster)}, follows from the seed, and sha256(seed) ="
        f" {published.seed_hash} as committed"
        + (" and as you saved it." if args.seed_hash else ".")
    )
    if args.id:
        try:
            place = published.order.index(args.id) + 1
        except ValueError:
            fail(f"{args.id} did not take part in this draw")
        print(f"{args.id} is number {place} of {len(published.order)}.")


def _seed_hash(text: str) -> str:
    value = text.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise argparse.ArgumentTypeError("a seed hash is 64 hex digits (a SHA-256)")
    return value


# Any address of a launch the pages or the API print: its page, its draw page, its API
# resource, its draw, its published draw.
_LAUNCH_PATH = re.compile(r"^(?:/api)?/launches/([^/?#]+)(?:/draw(?:/published)?)?/?$")


def draw_url(source: str, public_url: str) -> str | None:
    """The published draw's URL for `source`: for any address of a launch (a URL, or a
    path as the draw page prints it, taken on `FAIRDROP_PUBLIC_URL`), its published draw;
    any other URL as it is; None for anything else (a file)."""
    url = public_url.rstrip("/") + source if source.startswith("/") else source
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    found = _LAUNCH_PATH.match(parts.path)
    if found is None:
        return None if url != source else url
    path = f"/api/launches/{found.group(1)}/draw/published"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _read_draw(source: str, public_url: str) -> bytes:
    """The published draw's bytes: from a file, else from the launch `source` names."""
    url = draw_url(source, public_url)
    if url is None or (url != source and os.path.exists(source)):
        try:
            with open(source, "rb") as f:
                return f.read()
        except OSError as exc:
            fail(f"cannot read {source}: {exc.strerror or exc}")
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:  # noqa: S310 (http/https only)
            body: bytes = reply.read()
            return body
    except urllib.error.HTTPError as exc:
        fail(f"{url} answered {exc.code}: {_problem_detail(exc) or exc.reason}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        fail(f"cannot reach {url}: {getattr(exc, 'reason', None) or exc}")


def _problem_detail(exc: urllib.error.HTTPError) -> str | None:
    """The `detail` of a problem response, if the server sent one."""
    try:
        detail = msgspec.json.decode(exc.read()).get("detail")
    except (msgspec.DecodeError, AttributeError, OSError):
        return None
    return str(detail) if detail else None


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fairdrop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP service (granian)").set_defaults(func=cmd_serve)
    demo = sub.add_parser("demo", help="seed the demo launches and serve them")
    demo.add_argument(
        "--reset", action="store_true", help="drop the demo's data first (only the demo's)"
    )
    demo.set_defaults(func=cmd_demo)
    sub.add_parser("migrate", help="apply pending database migrations").set_defaults(
        func=cmd_migrate
    )
    rebuild = sub.add_parser("rebuild", help="rebuild a launch's Redis state from Postgres")
    rebuild.add_argument("launch")
    rebuild.set_defaults(func=cmd_rebuild)
    verify = sub.add_parser(
        "verify-draw", help="check a published draw (file or launch URL) and find a place"
    )
    verify.add_argument(
        "source",
        help="a JSON file, or the launch's page, draw page or API address"
        " (http://host/launches/ID, /api/launches/ID/draw/published, ...; a path is taken"
        " on FAIRDROP_PUBLIC_URL)",
    )
    verify.add_argument("--id", help="a public id whose place to print")
    verify.add_argument(
        "--seed-hash",
        type=_seed_hash,
        metavar="HEX",
        help="the seed hash (sha256, 64 hex digits) you saved when registration closed",
    )
    verify.set_defaults(func=cmd_verify_draw)
    admin = sub.add_parser("admin", help="administration").add_subparsers(
        dest="admin", required=True
    )
    key = admin.add_parser("create-key", help="create an API key and print it once")
    key.add_argument("--role", choices=["admin", "operator", "staff", "agent"], default="admin")
    key.add_argument("--store", default=None, help="the store a staff key is scoped to")
    key.add_argument("--label", default="")
    key.set_defaults(func=cmd_create_key)
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
    admin.add_parser(
        "list-keys", help="list API keys: id, label, role, store, created, last used, revoked"
    ).set_defaults(func=cmd_list_keys)
    revoke = admin.add_parser("revoke-key", help="revoke an API key (refused from now on)")
    revoke.add_argument("id", help="the key's id (the part after fd_, as list-keys shows it)")
    revoke.set_defaults(func=cmd_revoke_key)
    for name in ("serve", "demo"):
        p = sub.choices[name]
        p.add_argument("--host")
        p.add_argument("--port", type=int)
        p.add_argument("--workers", type=int)
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
