"""The OpenAPI document as fairdrop serves it: Litestar's, plus what Litestar cannot
know — the webhooks fairdrop sends (`service.webhooks.openapi`) and the error answers,
which are RFC 9457 problems (`service.web.problems`), not the framework's own shape.

Every operation is documented with: `400` (`invalid-request`: the field-error shape)
where it takes input, `422` (`invalid-field`, the same shape) where it takes a body,
`4XX` (any other refusal: its `type` says which), `500` and `503` (`unavailable`, with
`Retry-After`), each `application/problem+json`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import OpenAPI

from service.errors import ALL_ERRORS, PROBLEM_BASE
from service.web.problems import MEDIA_TYPE
from service.webhooks.openapi import add_webhooks

_TYPES = sorted({cls.type for cls in ALL_ERRORS} | {"internal-error", "method-not-allowed"})

PROBLEM: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem. Members an error adds (`field`, `collected_by`,"
    " `reservation_status`, `retry_after`, …) sit beside these, never in their place.",
    "properties": {
        "type": {
            "type": "string",
            "format": "uri",
            "description": f"Stable for each kind of failure: `{PROBLEM_BASE}<name>`, the name"
            f" one of {', '.join(f'`{t}`' for t in _TYPES)}.",
            "examples": [PROBLEM_BASE + "sold-out"],
        },
        "title": {"type": "string", "description": "The kind of failure, in words."},
        "status": {"type": "integer", "description": "The HTTP status, again."},
        "detail": {"type": "string", "description": "What went wrong this time, in words."},
        "instance": {"type": "string", "description": "The path asked for."},
        "request_id": {
            "type": "string",
            "description": "The request's id, as in the `X-Request-Id` header (and the logs).",
        },
    },
    "required": ["type", "title", "status", "detail", "instance"],
    "additionalProperties": True,
}

FIELD_PROBLEM: dict[str, Any] = {
    "description": "A problem naming the fields at fault: `invalid-request` (400: the"
    " request does not match what the endpoint takes) or `invalid-field` (422: a"
    " well-formed value breaks a rule).",
    "allOf": [
        {"$ref": "#/components/schemas/Problem"},
        {
            "type": "object",
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {
                                "type": ["string", "null"],
                                "description": "The name as sent (`Idempotency-Key`);"
                                " null when the body as a whole is wrong.",
                            },
                            "message": {"type": "string"},
                            "source": {"enum": ["body", "query", "path", "header"]},
                        },
                        "required": ["field", "message", "source"],
                    },
                },
                "fields": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The names alone.",
                },
            },
            "required": ["errors", "fields"],
        },
    ],
}

_INVALID_EXAMPLE = {
    "type": PROBLEM_BASE + "invalid-request",
    "title": "The request does not match what this endpoint takes",
    "status": 400,
    "detail": "store_id: Expected `str`, got `int`",
    "instance": "/api/launches/phone-17/holds",
    "errors": [{"field": "store_id", "message": "Expected `str`, got `int`", "source": "body"}],
    "fields": ["store_id"],
}


def _answer(description: str, schema: str, **extra: Any) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/{schema}"}}
    if "example" in extra:
        content["example"] = extra.pop("example")
    return {"description": description, "content": {MEDIA_TYPE: content}, **extra}


_ANSWERS = {
    "400": _answer(
        "`invalid-request`: a wrong type, a missing or unknown field, a malformed"
        " parameter, text Postgres cannot store; `errors` names each field.",
        "FieldProblem",
        example=_INVALID_EXAMPLE,
    ),
    "4XX": _answer(
        "Refused: the problem's `type` says why (`unauthorized`, `forbidden`,"
        " `not-found`, `sold-out`, `limit-reached`, `hold-expired`, …).",
        "Problem",
    ),
    "500": _answer("`internal-error`: logged on our side.", "Problem"),
    "503": _answer(
        "`unavailable`: a backend (Postgres, Redis) is down or slow; try again after"
        " `Retry-After` seconds.",
        "Problem",
        headers={"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
    ),
}
_INVALID_FIELD = _answer(
    "`invalid-field`: a well-formed value breaks a rule (times out of lifecycle order, a"
    " time outside the years 2000 to 9998); `errors` names each field.",
    "FieldProblem",
)


def add_problems(schema: dict[str, Any]) -> None:
    """Document every operation's error answers as problems (see the module's docstring)."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM
    schemas["FieldProblem"] = FIELD_PROBLEM
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            takes = "requestBody" in operation or bool(operation.get("parameters"))
            if takes or "400" in responses:  # Litestar's own "400" is not what is sent
                responses["400"] = _ANSWERS["400"]
            responses.update({k: v for k, v in _ANSWERS.items() if k != "400"})
            if "requestBody" in operation:
                responses["422"] = _INVALID_FIELD


class _Document(OpenAPI):
    def to_schema(self) -> dict[str, Any]:
        schema = super().to_schema()
        add_webhooks(schema)
        add_problems(schema)
        return schema


@dataclasses.dataclass
class FairdropOpenAPIConfig(OpenAPIConfig):
    """An `OpenAPIConfig` whose document carries the webhooks and the problem answers."""

    def to_openapi_schema(self) -> OpenAPI:
        base = super().to_openapi_schema()
        return _Document(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)})
