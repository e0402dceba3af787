"""The one seam from failures to problem responses: members an error carries never break
or replace RFC 9457's own, and a field error names the field as the client sent it."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Litestar, post
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.testing import AsyncTestClient

from service import errors
from service.errors import PROBLEM_BASE
from service.web.problems import EXCEPTION_HANDLERS, MEDIA_TYPE


@post("/collect/{code:str}", sync_to_thread=False)
def refuse(code: FromPath[str]) -> None:
    # The desk tells a reservation's status; other members are named like RFC 9457's.
    raise errors.NotCollectable(
        "It was cancelled.", status="cancelled", type="x", title="x", instance="x", path="x"
    )


@post("/resend", sync_to_thread=False)
def resend(
    idempotency_key: Annotated[str, HeaderParameter(name="Idempotency-Key", max_length=4)],
    per_page: Annotated[int, QueryParameter(name="per-page", ge=1)] = 1,
) -> None:
    return None


class Item(msgspec.Struct, forbid_unknown_fields=True):
    name: str


@post("/items", sync_to_thread=False)
def add_item(data: JSONBody[Item]) -> None:
    return None


async def test_a_body_field_is_named_whole_whatever_it_holds() -> None:
    app = Litestar([add_item], exception_handlers=EXCEPTION_HANDLERS)
    async with AsyncTestClient(app) as c:
        for sent, named in [
            ({"name": "x", "a`b` c": 1}, "a`b` c"),  # a backtick, as msgspec quotes names
            ({"name": "x", "line\nbreak": 1}, "line\nbreak"),
            ({}, "name"),
        ]:
            r = await c.post("/items", json=sent)
            assert r.status_code == 400, r.text
            assert r.json()["fields"] == [named], (sent, r.text)
            assert [e["field"] for e in r.json()["errors"]] == [named]


async def test_members_named_like_the_rfc_ones_never_replace_them() -> None:
    app = Litestar([refuse], exception_handlers=EXCEPTION_HANDLERS)
    async with AsyncTestClient(app) as c:
        r = await c.post("/collect/ABC")
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == MEDIA_TYPE
    body = r.json()
    assert body == {
        "type": PROBLEM_BASE + "not-collectable",
        "title": errors.NotCollectable.title,
        "status": 409,
        "detail": "It was cancelled.",
        "instance": "/collect/ABC",
        "path": "x",
    }


async def test_a_parameter_is_named_as_the_client_sends_it() -> None:
    app = Litestar([resend], exception_handlers=EXCEPTION_HANDLERS)
    async with AsyncTestClient(app) as c:
        r = await c.post("/resend?per-page=0", headers={"Idempotency-Key": "too long"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["type"] == PROBLEM_BASE + "invalid-request"
    assert sorted(body["fields"]) == ["Idempotency-Key", "per-page"]
    assert sorted((e["field"], e["source"]) for e in body["errors"]) == [
        ("Idempotency-Key", "header"),
        ("per-page", "query"),
    ]
    assert "Idempotency-Key: " in body["detail"] and "idempotency_key" not in r.text
