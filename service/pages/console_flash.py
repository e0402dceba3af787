"""The launch console's notice after a form: a POST redirects (303) back to the launch's
page, and what happened (a notice, an import's report, the grid cells refused and the
values typed) rides along in a signed, short-lived, HttpOnly cookie read once."""

from __future__ import annotations

import msgspec
from litestar.datastructures import Cookie

from service import errors
from service.admin.models import ImportReport
from service.deps import Deps
from service.web.params import AnyRequest

FLASH_COOKIE = "fd_flash"
MAX_LINES = 25
"""Invalid and duplicate lines carried in the cookie each (it stays under 4 KB); the rest
are counted."""


class Flash(msgspec.Struct, kw_only=True):
    kind: str = "ok"
    """`ok` or `bad`."""
    notice: str = ""
    report: ImportReport | None = None
    more_lines: int = 0
    """Lines of the report left out of the cookie."""
    cells: dict[str, str] = {}
    """Grid cell → why it was refused."""
    typed: dict[str, str] = {}
    """Grid cell → what was typed there (kept, so nothing typed is lost)."""


_decoder = msgspec.msgpack.Decoder(Flash)


def flash_cookie(deps: Deps, flash: Flash) -> Cookie:
    report = flash.report
    if report is not None:
        lines = len(report.invalid) + len(report.duplicate_lines)
        flash.more_lines = max(0, lines - 2 * MAX_LINES)
        flash.report = msgspec.structs.replace(
            report,
            invalid=report.invalid[:MAX_LINES],
            duplicate_lines=report.duplicate_lines[:MAX_LINES],
        )
    flash.notice = flash.notice[:600]
    return Cookie(
        key=FLASH_COOKIE,
        value=deps.signer.sign(flash),
        path="/console",
        httponly=True,
        samesite="strict",
        max_age=120,
    )


def read_flash(deps: Deps, request: AnyRequest) -> Flash | None:
    """The notice the last form left, if genuine (a forged or stale one is ignored)."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        return deps.signer.open(raw, _decoder, "notice")
    except errors.Unauthorized:
        return None


def cleared() -> Cookie:
    return Cookie(
        key=FLASH_COOKIE, value="", path="/console", max_age=0, httponly=True, samesite="strict"
    )


def report_notice(report: ImportReport) -> str:
    lines = len(report.invalid)
    return (
        f"Imported: {report.created} accepted, {report.duplicates} duplicate(s),"
        f" {lines} invalid line(s)."
    )


DUPLICATE = "this e-mail or phone is registered already, or comes earlier in the list"


def report_lines(report: ImportReport) -> list[tuple[int, str, str]]:
    """The lines not imported, in order: (line, "invalid" or "duplicate", why)."""
    lines = [(p.line, "invalid", p.problem) for p in report.invalid]
    lines += [(n, "duplicate", DUPLICATE) for n in report.duplicate_lines]
    return sorted(lines)
