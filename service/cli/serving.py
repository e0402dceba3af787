"""`fairdrop serve` and `fairdrop demo`: granian in front of the app."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys

import msgspec

from service.cli._base import Subparsers, fail, resolved, with_deps
from service.deps import Deps
from service.infra import metrics
from service.infra.settings import Settings


def _export(settings: Settings) -> None:
    """Workers are separate processes: hand them the resolved settings by environment."""
    assert settings.database_url is not None and settings.redis_url is not None
    os.environ["DATABASE_URL"] = settings.database_url
    os.environ["REDIS_URL"] = settings.redis_url
    os.environ["FAIRDROP_SECRET"] = settings.secret
    os.environ["FAIRDROP_PUBLIC_URL"] = settings.base_url


def serve_app(settings: Settings, target: str = "service.web.asgi:app") -> None:
    """Serve the ASGI app `target` names with granian, as `settings` say.

    The workers share one metrics folder (`service.infra.metrics`): the one
    `PROMETHEUS_MULTIPROC_DIR` names, emptied first, or a temporary one removed after."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    _export(settings)
    folder = metrics.prepare_dir(settings.metrics_dir)
    granian = Granian(
        target=target,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.uvloop if sys.platform != "win32" else Loops.asyncio,
        log_access=False,
        # A worker that dies (killed, out of memory) is replaced; without this granian
        # stops the healthy workers too and exits.
        respawn_failed_workers=True,
    )
    try:
        granian.serve()
    finally:
        if settings.metrics_dir is None:
            metrics.remove_dir(folder)


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
    serve(settings)


def serve(settings: Settings, target: str = "service.web.asgi:app") -> None:
    """Apply pending migrations, then serve `target` (the app) until stopped."""
    _check_port(settings)
    with resolved(settings) as s:
        asyncio.run(with_deps(s, _noop))
        print(
            f"fairdrop: serving on http://{s.host}:{s.port} ({s.workers} worker(s))",
            file=sys.stderr,
        )
        serve_app(s, target)


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

    with resolved(settings) as s:
        s = demo_pins(s, write=True)
        info = asyncio.run(with_deps(s, work))
        print(demo.describe(info, s.base_url, _command()), flush=True)
        serve_app(s)


def _command() -> str:
    """How to run `fairdrop` again from here, with this run's data dir (as typed)."""
    command = sys.argv[0] if os.path.basename(sys.argv[0]) == "fairdrop" else "fairdrop"
    if data_dir := os.environ.get("FAIRDROP_DATA_DIR"):
        command = f"FAIRDROP_DATA_DIR={shlex.quote(data_dir)} {command}"
    return command


def demo_pins(settings: Settings, *, write: bool) -> Settings:
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


def add_commands(sub: Subparsers) -> None:
    sub.add_parser("serve", help="run the HTTP service (granian)").set_defaults(func=cmd_serve)
    demo = sub.add_parser("demo", help="seed the demo launches and serve them")
    demo.add_argument(
        "--reset", action="store_true", help="drop the demo's data first (only the demo's)"
    )
    demo.set_defaults(func=cmd_demo)
    for name in ("serve", "demo"):
        p = sub.choices[name]
        p.add_argument("--host")
        p.add_argument("--port", type=int)
        p.add_argument("--workers", type=int)
