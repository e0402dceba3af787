"""The OpenAPI document says what errors look like: every error answer of every
operation is `application/problem+json` with a schema (type, title, status, detail,
instance; `errors` and `fields` for the field errors), and what the app really sends
validates against it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema_rs  # schemathesis's validator, already a test dependency
from litestar.testing import AsyncTestClient

from service.auth.apikeys import create_key
from service.deps import Deps
from tests.serve import selling_launch

PROBLEM = "application/problem+json"


def _errors_of(doc: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (path, method, status, answer)
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict)
        for status, answer in operation.get("responses", {}).items()
        if status[0] in "45" or status == "default"
    ]


def _validate(doc: dict[str, Any], path: str, method: str, status: str, body: object) -> None:
    schema = doc["paths"][path][method]["responses"][status]["content"][PROBLEM]["schema"]
    validator = jsonschema_rs.validator_for({**schema, "components": doc["components"]})
    problems = [e.message for e in validator.iter_errors(body)]
    assert problems == [], (path, status, body, problems)


async def test_every_error_answer_is_a_documented_problem(
    deps: Deps,
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert schemas["Problem"]["required"] == ["type", "title", "status", "detail", "instance"]
    field = schemas["FieldProblem"]["allOf"][1]
    assert set(field["required"]) == {"errors", "fields"}

    answers = _errors_of(doc)
    assert len({(p, m) for p, m, _, _ in answers}) == sum(
        1 for ops in doc["paths"].values() for op in ops.values() if isinstance(op, dict)
    ), "every operation documents its errors"
    for path, method, status, answer in answers:
        assert list(answer.get("content", {})) == [PROBLEM], (path, method, status)
    holds = "/api/launches/{launch_id}/holds"
    assert doc["paths"][holds]["post"]["responses"]["400"]["content"][PROBLEM]["schema"] == {
        "$ref": "#/components/schemas/FieldProblem"
    }
    assert "Retry-After" in doc["paths"][holds]["post"]["responses"]["503"]["headers"]

    # What is sent is what is documented.
    await selling_launch(deps, units=1, registrations=1)
    bad = await client.post("/api/launches/drop/holds", json={"store_id": 5})
    assert bad.status_code == 400 and bad.headers["content-type"] == PROBLEM
    _validate(doc, holds, "post", "400", bad.json())
    missing = await client.get("/api/launches/nope")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    _validate(doc, "/api/launches/{launch_id}", "get", "4XX", missing.json())
    key = await create_key(deps.pool, "admin")
    soon = datetime.now(UTC) + timedelta(days=1)
    order = {"sale_starts_at": soon.isoformat(), "pickup_starts_at": soon.isoformat()}
    wrong = await client.patch(
        "/api/admin/launches/drop", json=order, headers={"Authorization": f"Bearer {key}"}
    )
    assert wrong.status_code == 422 and wrong.headers["content-type"] == PROBLEM
    _validate(doc, "/api/admin/launches/{launch_id}", "patch", "422", wrong.json())
