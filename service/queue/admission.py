"""The admission seam: may this shopper reserve now?

For now a genuine, unexpired shopper token for the launch admits its holder while
the launch is selling (the reserve script checks "selling"). The waiting room will
replace this function with "admitted by the queue", in this one place.
"""

from __future__ import annotations

from service.auth.tokens import ShopperClaims
from service.deps import Deps


def shopper_claims(deps: Deps, token: str, launch_id: str) -> ShopperClaims:
    """The verified claims of a shopper allowed to shop `launch_id` (else `Unauthorized`)."""
    return deps.signer.verify(token, launch_id=launch_id, now_ms=deps.clock.now_ms())
