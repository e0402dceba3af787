"""`fairdrop verify-draw`: anyone can check a published draw, from a file or any address
of its launch."""

from __future__ import annotations

import argparse
import os
import re
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

import msgspec

from service.cli._base import Subparsers, fail
from service.infra.settings import Settings


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


def add_commands(sub: Subparsers) -> None:
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
