"""Every failure becomes an RFC 9457 problem response, here and nowhere else."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from service.errors import (
    PROBLEM_BASE,
    FairdropError,
    FieldError,
    InvalidRequest,
)
from service.infra.logs import REQUEST_ID
from service.infra.outages import outage

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"

# Framework-raised HTTP errors, by status, get stable types too.
_HTTP_TYPES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    429: "too-many-requests",
    503: "unavailable",
}


def problem_parts(
    path: str,
    status: int,
    type_: str,
    title: str,
    detail: str,
    extra: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """A problem's body and headers: for the routed app and the fast lane alike.

    `extra` members go beside RFC 9457's own; a member named like one of those (an
    error saying a reservation's `status`) never replaces it.
    """
    extra = extra or {}
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + type_,
        "title": title,
        "status": status,
        "detail": detail,
        # A path may hold what JSON cannot spell (a lone surrogate): shown as "?".
        "instance": path if path.isascii() else path.encode("utf-8", "replace").decode(),
    }
    if (request_id := REQUEST_ID.get()) is not None:
        body["request_id"] = request_id  # as in the answer's X-Request-Id header
    body |= {k: v for k, v in extra.items() if k not in body}
    retry = extra.get("retry_after", 1 if status == 503 else None)
    return body, None if retry is None else {"Retry-After": str(retry)}


def domain_parts(path: str, exc: FairdropError) -> tuple[dict[str, Any], dict[str, str] | None]:
    return problem_parts(path, exc.status, exc.type, exc.title, exc.detail, exc.extra)


def unexpected_parts(path: str) -> tuple[dict[str, Any], dict[str, str] | None]:
    return problem_parts(
        path,
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal-error",
        "Internal error",
        "Something went wrong on our side; it has been logged.",
    )


def problem(
    request: Request[Any, Any, Any], status: int, type_: str, title: str, detail: str
) -> Response[dict[str, Any]]:
    body, headers = problem_parts(request.url.path, status, type_, title, detail)
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _response(parts: tuple[dict[str, Any], dict[str, str] | None]) -> Response[dict[str, Any]]:
    body, headers = parts
    return Response(body, status_code=body["status"], media_type=MEDIA_TYPE, headers=headers)


def domain_error(request: Request[Any, Any, Any], exc: FairdropError) -> Response[dict[str, Any]]:
    return _response(domain_parts(request.url.path, exc))


# Errors about the body as a whole come keyed by the handler's parameter name (`data`),
# which means nothing to a client: name the field msgspec's message names, or none.
# (A field's name may hold a backtick: up to the message's last one.)
_NAMED_FIELD = re.compile(r"(?:missing required|contains unknown) field `(.+)`$", re.DOTALL)


def _field_errors(request: Request[Any, Any, Any], exc: ValidationException) -> list[FieldError]:
    out: list[FieldError] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            field, message = item.get("key"), str(item.get("message"))
            given = item.get("source") or "body"
            source = str(getattr(given, "value", given))  # a ParamType for parameters
            if source == "body" and field == "data":
                named = _NAMED_FIELD.search(message)
                field = named.group(1) if named else None
                if message == "'data'":  # Litestar's KeyError text for a missing body
                    message = "A JSON body is required."
            elif field is not None:
                field = _wire_name(request, str(field))
            out.append((field, message, source))
    return out


def _wire_name(request: Request[Any, Any, Any], key: str) -> str:
    """A parameter as the client spells it (`Idempotency-Key`), not as the handler's
    argument is named (`idempotency_key`), which is how Litestar keys its errors."""
    handler = request.scope.get("route_handler")
    parameters = getattr(getattr(handler, "parsed_fn_signature", None), "parameters", {})
    definition = parameters.get(key)
    name = getattr(getattr(definition, "kwarg_definition", None), "name", None)
    return name if isinstance(name, str) and name else key


def validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    """Litestar's report of a request that does not fit the handler's signature, as the
    one field-error shape (`InvalidRequest`: `errors` and `fields`)."""
    items = _field_errors(request, exc)
    detail = "; ".join(f"{field or 'body'}: {message}" for field, message, _ in items)
    return domain_error(request, InvalidRequest(detail or exc.detail, errors=items))


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    type_ = _HTTP_TYPES.get(status, "http-error")
    return problem(request, status, type_, type_.replace("-", " ").capitalize(), exc.detail)


def exception_parts(
    method: str, path: str, exc: Exception
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """Any exception a handler let through, as its problem: a domain error as itself, a
    backend outage (Postgres or Redis down, frozen, timing out, busy) as 503
    `unavailable` with `Retry-After`, anything else as a logged 500."""
    if isinstance(exc, FairdropError):
        return domain_parts(path, exc)
    if (down := outage(exc)) is not None:
        log.warning("backend unavailable on %s %s: %r", method, path, exc)
        return domain_parts(path, down)
    log.exception("unhandled error on %s %s", method, path, exc_info=exc)
    return unexpected_parts(path)


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    return _response(exception_parts(request.method, request.url.path, exc))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    FairdropError: domain_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
