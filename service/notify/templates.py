"""Rendering a notification: one Jinja2 template pair per kind, in `templates/`.

`<kind>.txt` is the plain-text part and sets the subject (`{% set subject = ... %}`);
`<kind>.html` is the HTML part, usually extending `_layout.html`. HTML is autoescaped,
text is not, and an undefined variable is an error, not an empty string.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import jinja2

from service.stock.codes import QR_BORDER, qr_symbol

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("service.notify", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def kinds() -> set[str]:
    """Every kind with a template pair."""
    names = set(_ENV.list_templates())
    return {
        name.removesuffix(".txt")
        for name in names
        if name.endswith(".txt")
        and not name.startswith("_")
        and name.removesuffix(".txt") + ".html" in names
    }


def render(kind: str, context: dict[str, Any]) -> Rendered:
    text_module = _ENV.get_template(f"{kind}.txt").make_module(context)
    # Headers are one line: a launch name with a newline must not fold into a new header.
    subject = " ".join(str(getattr(text_module, "subject", "")).split())
    if not subject:
        raise ValueError(f"template {kind}.txt sets no subject")
    html = _ENV.get_template(f"{kind}.html").render({**context, "subject": subject})
    return Rendered(subject=subject, text=str(text_module).lstrip("\n"), html=html)


def qr_png(data: str) -> bytes:
    """A QR code of `data` as PNG, big enough to scan from a phone screen."""
    buffer = io.BytesIO()
    qr_symbol(data).save(buffer, kind="png", scale=8, border=QR_BORDER)
    return buffer.getvalue()
