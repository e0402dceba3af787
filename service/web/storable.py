"""Text Postgres cannot store is refused at one seam, before any handler runs.

Postgres's text holds neither NUL nor a lone surrogate (UTF-8 cannot spell one): sent
to it, either fails the statement (`CharacterNotInRepertoireError`, a 500). So every
string a request carries is checked here, once, from the app's `before_request` hook:
its path parameters, its query parameters, and its body — JSON (every key and string,
at any depth), a form, or any other text such as a CSV (by line and column). A string
that fails is a 400 `invalid-request` naming the field and where it came from.

It costs a request almost nothing when there is nothing to find: a JSON body can carry
a NUL or a lone surrogate only as a `\\u` escape (raw control characters and invalid
UTF-8 are not JSON), a query string or form a NUL only as `%00` (invalid UTF-8 there
is read as U+FFFD), so a body or query without those bytes is not parsed here at all.
The fast lane (`service.web.fastpath`) hands any path that is not plain ASCII to the
routed app, which refuses it here. A route or controller that sets a `before_request`
of its own replaces this one (Litestar keeps the closest): call `refuse_unstorable`
from it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import PurePath
from urllib.parse import parse_qsl

import msgspec

from service.errors import InvalidRequest
from service.web.params import AnyRequest

_DETAIL = "Text with a NUL character or a lone surrogate cannot be stored."
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM = "application/x-www-form-urlencoded"
_NOT_JSON = object()
_PATH_TYPES = (str, PurePath)
# Bytes looked for as ints: `b"%" in data` first tries the needle as an int and formats
# the TypeError it gets (~0.7 us, ~2k instructions, each time).
_PERCENT, _NUL, _BACKSLASH = ord("%"), 0, ord("\\")


def storable(text: str) -> bool:
    """Whether Postgres can store `text`: no NUL, and no lone surrogate."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


async def refuse_unstorable(request: AnyRequest) -> None:
    """`InvalidRequest` naming the first path, query or body field Postgres cannot store."""
    scope = request.scope
    path: str = scope["path"]
    if not path.isascii() or "\x00" in path:  # every path parameter is a part of the path
        for name, value in scope["path_params"].items():
            if isinstance(value, _PATH_TYPES) and not storable(str(value)):
                raise _refused(name, "path")
    query: bytes = scope["query_string"]
    if _PERCENT in query or _NUL in query:
        _check_pairs(parse_qsl(query.decode("latin-1"), keep_blank_values=True), "query")
    if scope["method"] not in _BODY_METHODS:
        return
    body = await request.body()
    if _BACKSLASH in body or _NUL in body or _PERCENT in body:
        # Only now the content type: building the header map costs more than the rest.
        _check_body(body, request.content_type[0])


def _check_body(body: bytes, media_type: str) -> None:
    if media_type == _FORM:
        _check_pairs(parse_qsl(body.decode("latin-1"), keep_blank_values=True), "body")
        return
    if b"\\u" in body:  # JSON, whatever the content type says (a list import may omit it)
        parsed = _json(body)
        if parsed is not _NOT_JSON and (where := _unstorable_at(parsed, "")) is not None:
            raise _refused(where or None, "body")
    if b"\x00" in body:  # a CSV or other text
        line = body[: body.index(b"\x00")].count(b"\n") + 1
        raise _refused(_column_of_nul(body), "body", f"line {line}")


def _json(body: bytes) -> object:
    """The body as JSON, or `_NOT_JSON`. msgspec refuses an escaped lone surrogate as
    malformed; Python's decoder reads it, so that the field can be named."""
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        pass
    try:
        return json.loads(body)
    except ValueError:
        return _NOT_JSON  # not JSON, or broken: the handler's own decoding says so


def _check_pairs(pairs: list[tuple[str, str]], source: str) -> None:
    """Query or form pairs, decoded as Litestar decodes them (`parse_qsl`)."""
    for key, value in pairs:
        if not storable(value) or not storable(key):
            raise _refused(key if storable(key) else None, source)


def _unstorable_at(value: object, path: str) -> str | None:
    """The path (`a.b[2].c`) of the first string in `value` Postgres cannot store."""
    if isinstance(value, str):
        return None if storable(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if not storable(str(key)):
                return path or ""
            if (found := _unstorable_at(item, here)) is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if (found := _unstorable_at(item, f"{path}[{i}]")) is not None:
                return found
    return None


def _refused(field: str | None, source: str, where: str | None = None) -> InvalidRequest:
    said = ", ".join(w for w in (where, field) if w) or source
    return InvalidRequest(f"{said}: {_DETAIL}", field=field, source=source)


def _column_of_nul(body: bytes) -> str | None:
    """The CSV column (by its header) of the first NUL, if the body reads as CSV."""
    text = body.decode("utf-8-sig", "replace")
    rows = csv.reader(io.StringIO(text))
    header = next(rows, [])
    if any("\x00" in cell for cell in header):
        return None
    for row in rows:
        for i, cell in enumerate(row):
            if "\x00" in cell:
                return header[i].strip() if i < len(header) else None
    return None
