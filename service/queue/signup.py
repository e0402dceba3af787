"""Public pre-registration and e-mail verification.

A second registration with the same (normalised) e-mail or phone answers exactly
like the first, so nobody can learn whether an address is registered; the owner of
an unverified address gets the verification link again instead.
"""

from __future__ import annotations

from typing import Annotated

import asyncpg
import msgspec

from service import errors, events, subjects
from service.auth.tokens import ShopperClaims
from service.deps import Deps
from service.ids import StoreId
from service.infra.db import Conn
from service.notify import enqueue_notification
from service.queue import emails, phones
from service.queue.registrations import new_public_id

VERIFY_KIND = "verify"
VERIFY_TTL_MS = 3 * 24 * 3600 * 1000
RESEND_MS = 10 * 60 * 1000


class SignUp(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    phone: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    preferred_store: StoreId | None = None


class SignUpAccepted(msgspec.Struct):
    status: str = "check-your-email"
    detail: str = "If this address can register, a verification link is on its way."


class Verified(msgspec.Struct):
    status: str
    public_id: str
    launch_id: str
    shopper_token: str
    """The shopper's own signed link to this registration: check-in, status, cancel."""


def verification_link(deps: Deps, launch_id: str, registration_id: int) -> str:
    expires = deps.clock.now_ms() + VERIFY_TTL_MS
    token = deps.signer.sign(ShopperClaims(launch_id, registration_id, expires, VERIFY_KIND))
    return deps.settings.link(f"/api/launches/{launch_id}/verify?token={token}")


async def sign_up(deps: Deps, launch_id: str, body: SignUp, *, channel: str) -> SignUpAccepted:
    """Register `body` for the launch and e-mail its verification link. The answer is the
    same whether or not the address or number was registered already (someone else's
    sign-up must not tell them); an unverified registration gets its link again."""
    if not emails.is_valid(body.email):
        raise errors.InvalidField("This is not an e-mail address.", field="email")
    phone_norm, national = _phone_of(deps, body.phone)
    async with deps.pool.acquire() as con, con.transaction():
        cap = await _open_for(con, launch_id, body.preferred_store)
        existing = await con.fetchrow(
            "SELECT id, verified_at FROM registrations WHERE launch_id = $1"
            f" AND (email_norm = $2 OR {phones.same_number('phone_norm', 3)})",
            launch_id,
            emails.normalize(body.email),
            phone_norm,
            national,
        )
        if existing is not None:
            if existing["verified_at"] is None:
                await _send_link(deps, con, launch_id, existing["id"])
            return SignUpAccepted()
        if cap is not None:
            await _refuse_over_cap(con, launch_id, cap)
        try:
            registration_id: int = await con.fetchval(
                "INSERT INTO registrations (launch_id, public_id, email, email_norm, name, phone,"
                " phone_norm, preferred_store, channel) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                " RETURNING id",
                launch_id,
                new_public_id(),
                body.email.strip(),
                emails.normalize(body.email),
                body.name,
                body.phone,
                phone_norm,
                body.preferred_store,
                channel,
            )
        except asyncpg.UniqueViolationError:
            return SignUpAccepted()  # a concurrent twin won; answer the same
        await events.record(
            con,
            launch_id=launch_id,
            actor=subjects.registration(registration_id),
            channel=channel,
            kind="registration.created",
            subject=subjects.registration(registration_id),
        )
        await _send_link(deps, con, launch_id, registration_id)
    return SignUpAccepted()


def _phone_of(deps: Deps, phone: str | None) -> tuple[str | None, str | None]:
    """The number in E.164 and as dialled within its country (None, None: none given)."""
    if not phone:
        return None, None
    region = deps.settings.phone_region
    normalized = phones.normalize(phone, region)
    if normalized is None:
        raise errors.InvalidField(
            "This is not a phone number: give it with its country code (+49 30 …),"
            " or as dialled within the country.",
            field="phone",
        )
    return normalized, phones.national(phone, region)


async def _open_for(con: Conn, launch_id: str, preferred_store: str | None) -> int | None:
    """Check the launch takes sign-ups (and has the store preferred); its cap, if any."""
    launch = await con.fetchrow(
        "SELECT state, registration_cap FROM launches WHERE id = $1 FOR SHARE", launch_id
    )
    if launch is None:
        raise errors.NotFound(f"No launch {launch_id!r}.")
    if launch["state"] != "registration_open":
        raise errors.RegistrationClosed()
    if preferred_store is not None and not await con.fetchval(
        "SELECT EXISTS (SELECT 1 FROM stores WHERE launch_id = $1 AND id = $2)",
        launch_id,
        preferred_store,
    ):
        raise errors.InvalidField("The launch has no such store.", field="preferred_store")
    cap: int | None = launch["registration_cap"]
    return cap


async def _refuse_over_cap(con: Conn, launch_id: str, cap: int) -> None:
    # Serialise sign-ups of this launch so the cap holds exactly.
    await con.execute("SELECT pg_advisory_xact_lock(hashtext('signup:' || $1))", launch_id)
    count = await con.fetchval("SELECT count(*) FROM registrations WHERE launch_id = $1", launch_id)
    if count >= cap:
        raise errors.RegistrationFull()


async def _send_link(deps: Deps, con: Conn, launch_id: str, registration_id: int) -> None:
    link = verification_link(deps, launch_id, registration_id)
    # One link per registration per ten minutes, however often the form is sent.
    window = deps.clock.now_ms() // RESEND_MS
    await enqueue_notification(
        con,
        launch_id,
        "verify_email",
        {"registration": registration_id, "link": link},
        dedupe_key=f"verify:{launch_id}:{registration_id}:{window}",
    )


async def verify(deps: Deps, launch_id: str, token: str, *, channel: str) -> Verified:
    claims = deps.signer.verify(
        token, launch_id=launch_id, now_ms=deps.clock.now_ms(), kind=VERIFY_KIND
    )
    async with deps.pool.acquire() as con, con.transaction():
        public_id = await con.fetchval(
            "UPDATE registrations SET verified_at = now()"
            " WHERE launch_id = $1 AND id = $2 AND verified_at IS NULL RETURNING public_id",
            launch_id,
            claims.registration_id,
        )
        if public_id is None:  # clicked twice, or gone
            public_id = await con.fetchval(
                "SELECT public_id FROM registrations WHERE launch_id = $1 AND id = $2",
                launch_id,
                claims.registration_id,
            )
            if public_id is None:
                raise errors.NotFound("No such registration.")
            return _verified(deps, launch_id, claims.registration_id, public_id)
        await events.record(
            con,
            launch_id=launch_id,
            actor=subjects.registration(claims.registration_id),
            channel=channel,
            kind="registration.verified",
            subject=subjects.registration(claims.registration_id),
        )
    return _verified(deps, launch_id, claims.registration_id, public_id)


def _verified(deps: Deps, launch_id: str, registration_id: int, public_id: str) -> Verified:
    expires = deps.clock.now_ms() + deps.settings.shopper_token_ttl_seconds * 1000
    token = deps.signer.sign(ShopperClaims(launch_id, registration_id, expires))
    return Verified(
        status="verified", public_id=public_id, launch_id=launch_id, shopper_token=token
    )
