"""Registrations: the operator's list import and shopper tokens."""

from __future__ import annotations

import csv
import io
import secrets
from typing import NamedTuple

import msgspec

from service import errors
from service.admin.models import (
    ImportProblem,
    ImportReport,
    Registration,
    RegistrationIn,
    ShopperToken,
)
from service.auth.tokens import ShopperClaims
from service.deps import Deps
from service.infra.db import allow_long
from service.queue import emails, phones
from service.stock.codes import ALPHABET

MAX_IMPORT_ROWS = 100_000
REGISTRATION_COLUMNS = (
    "id, public_id, launch_id, email, name, phone, channel, verified_at, created_at"
)


def new_public_id() -> str:
    return "r" + "".join(secrets.choice(ALPHABET) for _ in range(12)).lower()


def parse_csv(text: str) -> list[tuple[int, dict[str, object]]]:
    """Rows of a CSV with a header naming `email` (and optionally `name`, `phone`)."""
    reader = csv.DictReader(io.StringIO(text))
    fields = {f.strip().lower() for f in reader.fieldnames or []}
    if "email" not in fields:
        raise errors.InvalidField(
            "The CSV needs a header row with an `email` column.", field="email"
        )
    rows: list[tuple[int, dict[str, object]]] = []
    for row in reader:
        clean = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k}
        rows.append((reader.line_num, {k: v for k, v in clean.items() if v}))
    return rows


def parse_json(body: bytes) -> list[tuple[int, dict[str, object]]]:
    try:
        items = msgspec.json.decode(body, type=list[dict[str, object]])
    except msgspec.DecodeError as exc:
        raise errors.BadRequest(f"The body is not a JSON list of objects: {exc}") from exc
    return [(i + 1, item) for i, item in enumerate(items)]


async def import_registrations(
    deps: Deps,
    launch_id: str,
    rows: list[tuple[int, dict[str, object]]],
    *,
    actor: str,
    channel: str,
) -> ImportReport:
    """Validate, normalise and insert; invalid rows are reported by line, never dropped silently."""
    if len(rows) > MAX_IMPORT_ROWS:
        raise errors.PayloadTooLarge(f"At most {MAX_IMPORT_ROWS} registrations per import.")
    good, invalid, repeated = _read_rows(rows, deps.settings.phone_region)
    async with deps.pool.acquire() as con, con.transaction():
        await allow_long(con, deps.settings)  # up to 32 MiB of rows in one statement
        if not await con.fetchval(
            "SELECT EXISTS (SELECT 1 FROM launches WHERE id = $1)", launch_id
        ):
            raise errors.NotFound(f"No launch {launch_id!r}.")
        # The ones already registered (by e-mail or phone) come back, to say which lines.
        taken: list[str] = await con.fetchval(
            "WITH new AS ("
            " INSERT INTO registrations (launch_id, public_id, email, email_norm, name, phone,"
            "  phone_norm, channel, verified_at)"
            " SELECT $1, p, e, n, nm, ph, pn, $3, now()"
            " FROM unnest($2::text[], $4::text[], $5::text[], $6::text[], $7::text[], $9::text[])"
            "  AS t(p, e, n, nm, ph, pn)"
            " ON CONFLICT DO NOTHING RETURNING id, public_id),"
            " ev AS (INSERT INTO events (launch_id, actor, channel, kind, subject)"
            "  SELECT $1, $8, $3, 'registration.imported', 'registration:' || id FROM new)"
            " SELECT coalesce(array_agg(t.p), '{}') FROM unnest($2::text[]) AS t(p)"
            " WHERE NOT EXISTS (SELECT 1 FROM new WHERE new.public_id = t.p)",
            launch_id,
            [g.public_id for g in good],
            channel,
            [g.email for g in good],
            [g.email_norm for g in good],
            [g.name for g in good],
            [g.phone for g in good],
            actor,
            [g.phone_norm for g in good],
        )
    lost = set(taken)
    repeated += [g.line for g in good if g.public_id in lost]
    return ImportReport(
        created=len(good) - len(lost),
        duplicates=len(repeated),
        invalid=invalid,
        duplicate_lines=sorted(repeated),
    )


class _Imported(NamedTuple):
    line: int
    public_id: str
    email: str
    email_norm: str
    name: str | None
    phone: str | None
    phone_norm: str | None


def _read_rows(
    rows: list[tuple[int, dict[str, object]]], region: str
) -> tuple[list[_Imported], list[ImportProblem], list[int]]:
    """The rows to insert, the invalid ones by line, and the lines that repeat an earlier
    row's e-mail or phone."""
    invalid: list[ImportProblem] = []
    seen: set[str] = set()
    duplicates: list[int] = []
    good: list[_Imported] = []
    for line, raw in rows:
        try:
            item = msgspec.convert(raw, RegistrationIn)
        except msgspec.ValidationError as exc:
            invalid.append(ImportProblem(line, str(exc)))
            continue
        if not emails.is_valid(item.email):
            invalid.append(ImportProblem(line, f"{item.email!r} is not an e-mail address"))
            continue
        norm = emails.normalize(item.email)
        phone_norm = phones.normalize(item.phone, region) if item.phone else None
        if item.phone and phone_norm is None:
            invalid.append(ImportProblem(line, f"{item.phone!r} is not a phone number"))
            continue
        if norm in seen or (phone_norm is not None and phone_norm in seen):
            duplicates.append(line)
            continue
        seen.add(norm)
        if phone_norm is not None:
            seen.add(phone_norm)
        good.append(
            _Imported(
                line, new_public_id(), item.email.strip(), norm, item.name, item.phone, phone_norm
            )
        )
    return good, invalid, duplicates


async def get_registration(deps: Deps, launch_id: str, registration_id: int) -> Registration:
    row = await deps.pool.fetchrow(
        f"SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE launch_id = $1 AND id = $2",
        launch_id,
        registration_id,
    )
    if row is None:
        raise errors.NotFound("No such registration.")
    return Registration(**dict(row))


async def preferred_store(deps: Deps, launch_id: str, registration_id: int) -> str | None:
    """The store the customer said they prefer at sign-up, if any."""
    store: str | None = await deps.pool.fetchval(
        "SELECT preferred_store FROM registrations WHERE launch_id = $1 AND id = $2",
        launch_id,
        registration_id,
    )
    return store


async def list_registrations(
    deps: Deps, launch_id: str, limit: int = 100, after: int = 0
) -> list[Registration]:
    rows = await deps.pool.fetch(
        f"SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE launch_id = $1 AND id > $2"
        " ORDER BY id LIMIT $3",
        launch_id,
        after,
        limit,
    )
    return [Registration(**dict(r)) for r in rows]


async def issue_token(deps: Deps, launch_id: str, registration_id: int) -> ShopperToken:
    """A signed token bound to (launch, registration) that lets its holder shop."""
    registration = await get_registration(deps, launch_id, registration_id)
    if registration.verified_at is None:
        raise errors.Conflict("The registration's e-mail is not verified yet.")
    expires = deps.clock.now_ms() + deps.settings.shopper_token_ttl_seconds * 1000
    token = deps.signer.sign(ShopperClaims(launch_id, registration_id, expires))
    return ShopperToken(registration_id=registration_id, token=token, expires_ms=expires)
