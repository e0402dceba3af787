"""Every failure becomes an RFC 9457 problem response, here and nowhere else."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from service.errors import PROBLEM_BASE, FairdropError

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
    path: str, status: int, type_: str, title: str, detail: str, **extra: Any
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """A problem's body and headers: for the routed app and the fast lane alike."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": path,
    }
    body.update(extra)
    retry = extra.get("retry_after", 1 if status == 503 else None)
    return body, None if retry is None else {"Retry-After": str(retry)}


def domain_parts(path: str, exc: FairdropError) -> tuple[dict[str, Any], dict[str, str] | None]:
    return problem_parts(path, exc.status, exc.type, exc.title, exc.detail, **exc.extra)


def unexpected_parts(path: str) -> tuple[dict[str, Any], dict[str, str] | None]:
    return problem_parts(
        path,
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal-error",
        "Internal error",
        "Something went wrong on our side; it has been logged.",
    )


def problem(
    request: Request[Any, Any, Any], status: int, type_: str, title: str, detail: str, **extra: Any
) -> Response[dict[str, Any]]:
    body, headers = problem_parts(request.url.path, status, type_, title, detail, **extra)
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _response(parts: tuple[dict[str, Any], dict[str, str] | None]) -> Response[dict[str, Any]]:
    body, headers = parts
    return Response(body, status_code=body["status"], media_type=MEDIA_TYPE, headers=headers)


def domain_error(request: Request[Any, Any, Any], exc: FairdropError) -> Response[dict[str, Any]]:
    return _response(domain_parts(request.url.path, exc))


# Errors about the body as a whole come keyed by the handler's parameter name (`data`),
# which means nothing to a client: name the field msgspec's message names, or none.
_NAMED_FIELD = re.compile(r"(?:missing required|contains unknown) field `([^`]+)`")


def _field_errors(exc: ValidationException) -> list[dict[str, Any]]:
    out = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            field, message = item.get("key"), item.get("message")
            if item.get("source") == "body" and field == "data":
                named = _NAMED_FIELD.search(str(message))
                field = named.group(1) if named else None
                if message == "'data'":  # Litestar's KeyError text for a missing body
                    message = "A JSON body is required."
            out.append({"field": field, "message": message, "source": item.get("source")})
    return out


def validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    errors = _field_errors(exc)
    fields = [e["field"] for e in errors if e["field"]]
    detail = exc.detail
    if errors:
        detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
    return problem(
        request,
        400,
        "invalid-request",
        "The request does not match what this endpoint takes",
        detail,
        errors=errors,
        fields=fields,
    )


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    type_ = _HTTP_TYPES.get(status, "http-error")
    return problem(request, status, type_, type_.replace("-", " ").capitalize(), exc.detail)


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _response(unexpected_parts(request.url.path))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    FairdropError: domain_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
