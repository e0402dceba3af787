"""A shopper's link token: genuine, unexpired and for this launch.

It names the registration; whether its holder may hold a unit now is the queue's
answer (an admitted queue ticket, checked by the reserve script), not this one's.
"""

from __future__ import annotations

from service.auth.tokens import ShopperClaims
from service.deps import Deps


def shopper_claims(deps: Deps, token: str, launch_id: str) -> ShopperClaims:
    """The verified claims of a shopper allowed to shop `launch_id` (else `Unauthorized`)."""
    return deps.signer.verify(token, launch_id=launch_id, now_ms=deps.clock.now_ms())
