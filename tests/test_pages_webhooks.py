"""The operations page in a real browser says which webhook endpoint was disabled and
why, after the real app's background loop gave up on a receiver that keeps failing."""

from __future__ import annotations

import re

import msgspec
from playwright.async_api import expect

from service.admin import launches
from service.admin.models import Transition
from service.auth.apikeys import create_key
from service.clock import SystemClock
from service.deps import Deps
from service.webhooks import endpoints
from service.webhooks.models import EndpointCreate
from tests.browser import Browser, browser, no_script_errors, shoot
from tests.serve import ACTOR, selling_launch, serving
from tests.test_pages_console import _sign_in
from tests.test_webhooks_restart import BACKGROUND, until
from tests.webhook_receiver import receiving

__all__ = ["browser", "no_script_errors"]  # fixtures used by name

L = "drop"


async def test_the_operations_page_names_a_disabled_webhook_and_why(
    deps: Deps, browser: Browser, no_script_errors: None
) -> None:
    deps.clock = SystemClock()  # the server runs on real time
    deps.settings = msgspec.structs.replace(deps.settings, webhook_allow_private=True)
    await selling_launch(deps, stores=("S1", "S2"), units=20, registrations=3)
    await deps.pool.execute("UPDATE launches SET name = 'Fairphone 6'")
    key = await create_key(deps.pool, "operator", label="War room")
    with receiving() as receiver:
        receiver.default = 503
        made = await endpoints.create_endpoint(
            deps, L, EndpointCreate(url=receiver.url, events=["*"]), **ACTOR
        )
        await launches.transition(deps, L, Transition(action="pause"), **ACTOR)
        env = BACKGROUND | {"FAIRDROP_WEBHOOK_DISABLE_AFTER": "2"}
        with serving(deps.settings, env=env) as base:
            off = "SELECT NOT enabled FROM webhook_endpoints WHERE id = $1"
            await until(lambda: deps.pool.fetchval(off, made.id), "the endpoint disabled")
            ops = await browser.new_page(base)

            async def look() -> None:
                await _sign_in(ops, f"/ops/{L}", key)
                line = ops.locator("#webhooks-disabled")
                await expect(line).to_be_visible()
                await expect(line).to_contain_text(f"Webhook {receiver.url} is disabled")
                await expect(line).to_contain_text(
                    re.compile(r"no delivery got through in 2 tries in a row .*HTTP 503")
                )
                await expect(line).to_contain_text("1 delivery waits for it")
                await shoot(ops, "45-operations-webhook-disabled")

            await browser.run(look())
