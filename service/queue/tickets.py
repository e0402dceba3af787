"""Queue tickets: signed, expiring, bound to (launch, registration), carrying the rank.

Because the ticket carries the rank, answering "where am I?" needs no lookup, and a
lost Redis loses nobody's place.
"""

from __future__ import annotations

import msgspec

from service.deps import Deps
from service.errors import Unauthorized

KIND = "ticket"
PREQUEUE = -1
TTL_MS = 24 * 3600 * 1000


class TicketClaims(msgspec.Struct, frozen=True, array_like=True):
    launch_id: str
    registration_id: int
    rank: int
    """Place in the queue from 0; -1 while checked in before the draw."""
    expires_ms: int
    kind: str = KIND


_decoder = msgspec.msgpack.Decoder(TicketClaims)


def issue(deps: Deps, launch_id: str, registration_id: int, rank: int) -> str:
    expires = deps.clock.now_ms() + TTL_MS
    return deps.signer.sign(TicketClaims(launch_id, registration_id, rank, expires))


def issued_ms(claims: TicketClaims) -> int:
    """When the ticket was issued (every ticket lives `TTL_MS`)."""
    return claims.expires_ms - TTL_MS


def read(deps: Deps, token: str, launch_id: str) -> TicketClaims:
    """A genuine, unexpired ticket for `launch_id`, else `Unauthorized`."""
    claims = deps.signer.open(token, _decoder, "queue ticket")
    if claims.kind != KIND:
        raise Unauthorized(
            "This is not a queue ticket: open the waiting room from the link we e-mailed you."
        )
    if claims.launch_id != launch_id:
        raise Unauthorized("This queue ticket belongs to another launch.")
    if claims.expires_ms <= deps.clock.now_ms():
        raise Unauthorized(
            "This queue ticket has expired: open the waiting room again for the same place."
        )
    return claims
