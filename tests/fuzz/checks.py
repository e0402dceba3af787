"""A check of our own for the schema fuzzer (loaded as schemathesis hooks): a field
error (400 `invalid-request`, 422 `invalid-field`) names only fields the operation has
(its parameters and its body's properties) or the unknown ones the request sent."""

from __future__ import annotations

import re
from typing import Any

import schemathesis

PROBLEMS = ("/invalid-request", "/invalid-field")


def _resolve(raw: dict[str, Any], node: Any) -> Any:
    """`node` with its `$ref` (a pointer into this document) followed."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = raw
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _names(raw: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    names = {p["name"] for p in (_resolve(raw, p) for p in operation.get("parameters", []))}
    for media in operation.get("requestBody", {}).get("content", {}).values():
        body = _resolve(raw, media.get("schema", {}))
        for alternative in [body, *body.get("oneOf", []), *body.get("anyOf", [])]:
            names |= set(_resolve(raw, alternative).get("properties", {}))
    return names


@schemathesis.check
def fields_are_real(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code not in (400, 422):
        return None
    try:
        problem = response.json()
    except ValueError:
        return None
    if not isinstance(problem, dict) or not str(problem.get("type", "")).endswith(PROBLEMS):
        return None
    raw = case.operation.schema.raw_schema
    known = _names(raw, case.operation.definition.raw)
    if isinstance(case.body, dict):
        known |= {str(k) for k in case.body}  # an unknown field the request sent
    named = [*problem.get("fields", []), *(e.get("field") for e in problem.get("errors", []))]
    phantom = sorted(
        {f for f in named if f and f not in known and re.split(r"[.\[]", f)[0] not in known}
    )
    if phantom:
        raise AssertionError(f"field error names {phantom}, not fields of this operation")
    if problem.get("errors") and not isinstance(problem.get("fields"), list):
        raise AssertionError("a field error without its `fields` list")
    return None
