"""The shopper's self-service link: signed, expiring, bound to (launch, registration).

It is a shopper token of its own kind (`manage`): MACed with keyed BLAKE2b under the app
secret over (launch, registration, expiry, kind), so it cannot be altered to name another
registration or launch, and it cannot be replayed as a check-in token. It is put in
the e-mails that confirm a registration or a reservation.
"""

from __future__ import annotations

from service.auth.tokens import ShopperClaims
from service.deps import Deps

KIND = "manage"
TTL_MS = 60 * 24 * 3600 * 1000
"""Long enough to reach from registration through pickup."""


def manage_token(deps: Deps, launch_id: str, registration_id: int) -> str:
    expires = deps.clock.now_ms() + TTL_MS
    return deps.signer.sign(ShopperClaims(launch_id, registration_id, expires, KIND))


def manage_url(deps: Deps, launch_id: str, token: str) -> str:
    return deps.settings.link(f"/api/launches/{launch_id}/manage?token={token}")


def read(deps: Deps, token: str, launch_id: str) -> int:
    """The registration a genuine, unexpired link for `launch_id` names, else `Unauthorized`."""
    claims = deps.signer.verify(token, launch_id=launch_id, now_ms=deps.clock.now_ms(), kind=KIND)
    return claims.registration_id
