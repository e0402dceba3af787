"""The OpenAPI document's `webhooks` section (OpenAPI 3.1): what fairdrop POSTs to a
registered endpoint, one entry per event type, its body the type's msgspec struct.

Litestar builds the document's component schemas from the routes only, so the payload
schemas are added to the generated document (`add_webhooks`, called where the document
is turned into JSON: `service.web.openapi`).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import msgspec

from service.webhooks.payloads import PAYLOADS

_REF = "#/components/schemas/{name}"
_HEADERS = [
    ("webhook-id", "The message id, the same on every retry: process each id once."),
    ("webhook-timestamp", "Unix seconds when this attempt was signed (refuse old ones)."),
    (
        "webhook-signature",
        "`v1,<base64 HMAC-SHA256>` of `{webhook-id}.{webhook-timestamp}.{body}` with the"
        " endpoint's secret, space-separated when a rotated secret still signs too.",
    ),
]


_ANSWERED = "Received. Any other answer, or none within the timeout, is retried."


def _header(name: str, about: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": about,
        "schema": {"type": "string"},
    }


@functools.cache
def webhooks_section() -> tuple[dict[str, Any], dict[str, Any]]:
    """(the `webhooks` object, the component schemas its bodies refer to)."""
    refs, components = msgspec.json.schema_components(PAYLOADS.values(), ref_template=_REF)
    hooks: dict[str, Any] = {}
    for (event_type, cls), ref in zip(PAYLOADS.items(), refs, strict=True):
        hooks[event_type] = {
            "post": {
                "operationId": "webhook_" + event_type.replace(".", "_"),
                "summary": inspect.getdoc(cls),
                "tags": ["webhooks"],
                "parameters": [_header(name, about) for name, about in _HEADERS],
                "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
                "responses": {"2XX": {"description": _ANSWERED}},
            }
        }
    return hooks, components


def add_webhooks(schema: dict[str, Any]) -> None:
    """Put the `webhooks` section and its payload schemas into a generated document."""
    hooks, components = webhooks_section()
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    clash = {n for n in components if n in schemas and schemas[n] != components[n]}
    if clash:
        raise RuntimeError(f"webhook payload schemas clash with the API's: {sorted(clash)}")
    schemas.update(components)
    schema["webhooks"] = hooks
