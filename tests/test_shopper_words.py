"""What a shopper can be told, in plain words: every refusal a shopper's page or app
can meet (a link or ticket that is missing, damaged, foreign, expired or of the wrong
kind; closed check-in; not admitted; Redis down) says what happened and what to do,
without the words of the machinery (tokens, bearer headers, Redis, ranks)."""

from __future__ import annotations

import re
from typing import Any

from litestar.testing import AsyncTestClient

from service.auth.tokens import ShopperClaims, TokenSigner
from service.clock import FakeClock
from service.deps import Deps
from service.errors import Unavailable
from service.infra.outages import BACKEND, POSTGRES, REDIS
from service.queue.registrations import issue_token
from service.queue.tickets import TicketClaims
from tests.serve import selling_launch, stocked_launch, tickets_for

L = "drop"
JARGON = re.compile(
    r"malformed|token|bearer|authori[sz]ation|cookie|redis|postgres|backing service|"
    r"\brank\b|hold_id|registration_id|payload|endpoint|credential|`",
    re.IGNORECASE,
)


def _plain(problem: dict[str, Any]) -> list[str]:
    return [
        f"{problem.get('type')}: {part!r}"
        for part in (problem.get("title", ""), problem.get("detail", ""))
        if JARGON.search(str(part))
    ]


async def test_every_refusal_a_shopper_meets_is_in_plain_words(
    deps: Deps,
    clock: FakeClock,
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    regs = await selling_launch(deps, L, registrations=3, units=1)
    # Third in line for one unit: admission never reaches them while the first two
    # are within their windows, however slowly this test runs.
    ticket = (await tickets_for(deps, L, regs))[2]
    token = (await issue_token(deps, L, regs[0])).token
    later, secret = clock.now_ms() + 60_000, deps.settings.secret
    sign, forge = TokenSigner(secret).sign, TokenSigner("not-" + secret).sign
    tickets_shown = {
        "none": None,
        "damaged": "garbage",
        "forged": forge(TicketClaims(L, regs[0], 0, later)),
        "expired": sign(TicketClaims(L, regs[0], 0, 1)),  # the app runs on real time
        "foreign": sign(TicketClaims("other", regs[0], 0, later)),
        "a link, not a ticket": token,
        "not admitted": ticket,
    }
    links_shown = {
        "none": None,
        "damaged": "garbage",
        "forged": forge(ShopperClaims(L, regs[0], later)),
        "expired": sign(ShopperClaims(L, regs[0], 1)),
        "foreign": sign(ShopperClaims("other", regs[0], later)),
    }
    seen: list[dict[str, Any]] = []

    async def ask(method: str, path: str, credential: str | None, **kw: Any) -> None:
        headers = {} if credential is None else {"Authorization": f"Bearer {credential}"}
        r = await client.request(method, f"/api/launches/{L}{path}", headers=headers, **kw)
        assert r.status_code >= 400, (path, r.text)
        seen.append(r.json())

    for name, credential in tickets_shown.items():
        if name != "not admitted":  # waiting is no refusal
            await ask("GET", "/queue/status", credential)
        await ask("POST", "/holds", credential, json={"store_id": "S1", "sku_id": "K1"})
    for credential in links_shown.values():
        await ask("POST", "/queue/checkin", credential)
        await ask("GET", "/me", credential)
        await ask("POST", "/holds/h1/confirm", credential)
        await ask("GET", "/manage", credential)
    await ask("POST", "/registrations", None, json={"email": "new@example.com"})  # closed

    assert len(seen) == 2 * len(tickets_shown) - 1 + 4 * len(links_shown) + 1
    assert [p for problem in seen for p in _plain(problem)] == []


async def test_a_closed_waiting_room_and_a_lost_redis_are_said_plainly(
    deps: Deps,
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    regs = await stocked_launch(deps, L, registrations=1)
    token = (await issue_token(deps, L, regs[0])).token
    auth = {"Authorization": f"Bearer {token}"}
    r = await client.post(f"/api/launches/{L}/queue/checkin", headers=auth)
    assert r.status_code == 409
    problems = [r.json()]
    # What every call that finds Redis down answers (503 unavailable).
    for detail in (REDIS, POSTGRES, BACKEND):
        problems.append({"type": Unavailable.type, "title": Unavailable.title, "detail": detail})
    assert [p for problem in problems for p in _plain(problem)] == []
