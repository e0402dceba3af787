"""docs/webhooks.md says what is: its payload examples decode as the payload structs,
its table names every event type, and its receiver example, run as written, accepts
fairdrop's deliveries and refuses a forged one."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import httpx
import msgspec

from service.admin import launches
from service.admin.models import Transition
from service.deps import Deps
from service.webhooks import delivery, endpoints
from service.webhooks.fanout import fan_out
from service.webhooks.models import EndpointCreate
from service.webhooks.payloads import EVENT_TYPES, AnyWebhookEvent
from tests.serve import ACTOR, free_port, selling_launch

DOC = (Path(__file__).parents[1] / "docs" / "webhooks.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S)


def test_the_examples_are_payloads_and_the_table_names_every_type() -> None:
    examples = _blocks("json")
    assert len(examples) >= 4
    for text in examples:
        event = msgspec.json.decode(text.encode(), type=AnyWebhookEvent)
        assert event.version == 1
    listed = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", DOC, flags=re.M)
    assert sorted(listed) == sorted(EVENT_TYPES)


async def test_the_receiver_example_verifies_what_fairdrop_sends(deps: Deps) -> None:
    deps.settings = msgspec.structs.replace(deps.settings, webhook_allow_private=True)
    await selling_launch(deps, "drop", registrations=1)
    (code,) = _blocks("python")
    port = free_port()
    made_url = f"http://127.0.0.1:{port}/"
    made = await endpoints.create_endpoint(
        deps, "drop", EndpointCreate(url=made_url, events=["*"]), **ACTOR
    )
    code = code.replace('"whsec_..."', repr(made.secret)).replace("PORT = 8080", f"PORT = {port}")
    setup, run = code.rsplit("server.serve_forever()", 1)
    assert run.strip() == ""
    ns: dict[str, object] = {}
    exec(compile(setup, "docs/webhooks.md", "exec"), ns)
    server = ns["server"]
    threading.Thread(target=server.serve_forever, daemon=True).start()  # type: ignore[attr-defined]
    try:
        await launches.transition(deps, "drop", Transition(action="pause"), **ACTOR)
        await fan_out(deps)
        assert await delivery.deliver_due(deps) == 1
        assert ns["seen"] == {
            "evt_" + str(await deps.pool.fetchval("SELECT max(event_id) FROM webhook_deliveries"))
        }
        async with httpx.AsyncClient(trust_env=False) as client:
            forged = await client.post(
                made_url,
                content=b'{"type": "launch.sold_out"}',
                headers={
                    "webhook-id": "x",
                    "webhook-timestamp": "1",
                    "webhook-signature": "v1,AAAA",
                },
            )
        assert forged.status_code == 400
    finally:
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]
