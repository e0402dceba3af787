"""Rendering a page: the template, the headers every page carries, errors as pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException
from litestar.response import Template
from litestar.types import ExceptionHandlersMap

from service.errors import FairdropError

# Scripts and styles come only from /static: no inline script can run, whatever a
# launch or customer name contains. Tokens travel in URLs (the e-mailed link), so no
# page tells another site where it came from.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self';"
    " script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none';"
    " form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def page(
    name: str,
    *,
    status: int = 200,
    cookies: Sequence[Cookie] = (),
    **context: Any,
) -> Template:
    """Render `templates/<name>` with `context` and the page headers."""
    return Template(
        template_name=name,
        context=context,
        status_code=status,
        headers=HEADERS,
        cookies=list(cookies),
    )


def _error_page(status: int, title: str, detail: str) -> Template:
    return page("error.html", status=status, title=title, detail=detail)


def _domain(request: Request[Any, Any, Any], exc: FairdropError) -> Template:
    """The error's page; a 503 (a backend out) or 429 says when to try again, as the
    problem responses do."""
    template = _error_page(exc.status, exc.title, exc.detail)
    retry = exc.extra.get("retry_after", 1 if exc.status == 503 else None)
    if retry is not None:
        template.headers = {**template.headers, "Retry-After": str(retry)}
    return template


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Template:
    title = "Page not found" if exc.status_code == 404 else "This page cannot be shown"
    return _error_page(exc.status_code, title, str(exc.detail))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {FairdropError: _domain, HTTPException: _http}
"""Page routes answer failures with a page, not problem+json."""
