"""Every string input of every route refuses text Postgres cannot store (NUL, a lone
surrogate) with a 4xx naming the field, never a 500; and every time input refuses a
year Postgres and Python part on.

The routes are read off the app's route table, with each handler's signature for its
query parameters and body, so a new route is walked without being listed here. Every
route that takes a body is also sent a JSON object, a form and a CSV it never asked
for (a handler that reads its body raw, like the registration import, is covered so).
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import msgspec
from litestar import Litestar
from litestar.enums import RequestEncodingType
from litestar.params import BodyKwarg, ParameterKwarg
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from litestar.types import Receive, Scope, Send

from service.clock import FakeClock
from service.deps import Deps
from service.errors import PROBLEM_BASE
from service.infra.settings import Settings
from service.web.app import create_app
from service.web.fastpath import FastLane
from tests.serve import selling_launch

NUL = "a\x00b"
SURROGATE_MARK = "SURROGATE"
"""A path segment the shim below turns into a lone surrogate, as a server may pass one."""
TIMES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
DAYS = ["0001-01-01", "9999-12-31"]
_RESERVED = {"request", "scope", "state", "headers", "cookies", "query", "body", "socket"}
_PARAM = re.compile(r"\{(\w+):(\w+)\}")


class Shim:
    """Puts a lone surrogate where the path says SURROGATE (httpx cannot send one)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and SURROGATE_MARK in scope["path"]:
            scope = {**scope, "path": scope["path"].replace(SURROGATE_MARK, "a\ud800b")}
        await self.app(scope, receive, send)


@dataclass
class Route:
    method: str
    template: str
    path_params: dict[str, str]  # name → converter (str, int, path)
    query: dict[str, Any] = field(default_factory=dict)  # name → annotation
    body: Any = None  # the `data` struct, if any
    form: bool = False


def _types_in(annotation: Any) -> set[Any]:
    """The plain types an annotation admits (Annotated, unions and Optional unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _types_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_types_in(a) for a in typing.get_args(annotation)))
    if origin is typing.Literal:
        return {str}
    return {origin or annotation}


def routes(app: Litestar) -> list[Route]:
    out = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                r = Route(method, route.path, dict(_PARAM.findall(route.path)))
                deps = set(handler.resolve_dependencies())
                for name, definition in handler.parsed_fn_signature.parameters.items():
                    kwarg = definition.kwarg_definition
                    if name in deps or name in _RESERVED or name in r.path_params:
                        continue
                    if name == "data" or isinstance(kwarg, BodyKwarg):
                        r.body = definition.annotation
                        r.form = isinstance(kwarg, BodyKwarg) and kwarg.media_type in (
                            RequestEncodingType.URL_ENCODED,
                            RequestEncodingType.MULTI_PART,
                        )
                    elif isinstance(kwarg, ParameterKwarg) and (kwarg.header or kwarg.cookie):
                        continue
                    else:
                        alias = kwarg.query if isinstance(kwarg, ParameterKwarg) else None
                        r.query[alias or name] = definition.annotation
                out.append(r)
    return out


def _struct_fields(annotation: Any) -> dict[str, set[Any]]:
    """Top-level fields of the body struct (nested structs as `a.b`), with their types."""
    struct = next(
        (t for t in _types_in(annotation) if isinstance(t, type) and issubclass(t, msgspec.Struct)),
        None,
    )
    if struct is None:
        return {}
    out: dict[str, set[Any]] = {}
    for f in msgspec.structs.fields(struct):
        kinds = _types_in(f.type)
        out[f.encode_name] = kinds
        for inner_name, inner in _struct_fields(f.type).items():
            out[f"{f.encode_name}.{inner_name}"] = inner
    return out


def _nested(dotted: str, value: Any) -> dict[str, Any]:
    head, _, rest = dotted.partition(".")
    return {head: _nested(rest, value) if rest else value}


def url(route: Route, bad: dict[str, str] | None = None) -> str:
    def fill(m: re.Match[str]) -> str:
        name, kind = m.group(1), m.group(2)
        if bad and name in bad:
            return bad[name]
        return "1" if kind == "int" else "x"

    return _PARAM.sub(fill, route.template)


@dataclass
class Case:
    route: Route
    where: str  # path, query, body
    field: str | None
    request: dict[str, Any]
    expect: str = "refused"
    """refused: 400 naming `field` (a NUL or lone surrogate); time: a 4xx naming it (a year
    out of range); any: not a 5xx (percent-encoded invalid UTF-8, read as U+FFFD)."""


def cases(route: Route) -> list[Case]:
    out: list[Case] = []
    for name, kind in route.path_params.items():
        if kind in ("str", "path"):
            out.append(Case(route, "path", name, {"url": url(route, {name: "a%00b"})}))
            out.append(Case(route, "path", name, {"url": url(route, {name: SURROGATE_MARK})}))
    for name, annotation in route.query.items():
        kinds = _types_in(annotation)
        if str in kinds:
            base = f"{url(route)}?{name}="
            out.append(Case(route, "query", name, {"url": base + "a%00b"}))
            out.append(Case(route, "query", name, {"url": base + "a%ED%A0%80b"}, "any"))
        if date in kinds or datetime in kinds:
            for day in DAYS:
                out.append(
                    Case(route, "query", name, {"url": f"{url(route)}?{name}={day}"}, "time")
                )
    if route.method in ("POST", "PUT", "PATCH", "DELETE"):
        for name, kinds in _struct_fields(route.body).items():
            if str in kinds:
                if route.form:
                    out.append(Case(route, "body", name, {"data": {name: NUL}}))
                else:
                    out.append(Case(route, "body", name, {"json": _nested(name, NUL)}))
                    escaped = msgspec.json.encode(_nested(name, "SURROGATE"))
                    surrogate = escaped.replace(b"SURROGATE", b"a\\ud800b")
                    out.append(Case(route, "body", name, {"content": surrogate, "json_type": 1}))
            if datetime in kinds and not route.form:
                for at in TIMES:
                    out.append(Case(route, "body", name, {"json": _nested(name, at)}, "time"))
        # Bodies the route never asked for: JSON at depth, a list, a form, a CSV.
        out += [
            Case(route, "body", "extra.note", {"json": {"extra": {"note": NUL}}}),
            Case(route, "body", "[0].name", {"json": [{"name": NUL}]}),
            Case(route, "body", "note", {"data": {"note": NUL}}),
            Case(route, "body", "name", {"content": b"email,name\r\na@b.co,x\x00y\r\n", "csv": 1}),
        ]
    return out


async def test_every_string_input_of_every_route_refuses_what_postgres_cannot_store(
    deps: Deps, settings: Settings, clock: FakeClock, admin_key: str
) -> None:
    await selling_launch(deps, "x", units=1, registrations=1)
    app = create_app(msgspec.structs.replace(settings, background=False), clock)
    table = routes(app)
    assert len(table) > 40 and any(r.template == "/api/agent/customers" for r in table)
    walked: set[tuple[str, str, str | None]] = set()
    async with AsyncTestClient(Shim(FastLane(app))) as client:  # type: ignore[arg-type]
        c: AsyncTestClient[Litestar] = client  # type: ignore[assignment]
        for route in table:
            for case in cases(route):
                request = {"url": url(route), **case.request}
                headers = {"Authorization": f"Bearer {admin_key}"}
                if request.pop("csv", None):
                    headers["Content-Type"] = "text/csv"
                if request.pop("json_type", None):
                    headers["Content-Type"] = "application/json"
                r = await c.request(route.method, headers=headers, **request)
                said = f"{route.method} {route.template} {case.where} {case.field}: "
                said += f"{r.status_code} {r.text[:300]}"
                assert r.status_code < 500, said
                if case.expect == "any":
                    continue
                assert 400 <= r.status_code < 500, said
                api = route.template.startswith("/api/")
                if api:
                    assert r.headers["content-type"].startswith("application/problem+json"), said
                if case.expect == "refused":
                    assert r.status_code == 400, said
                    if api:
                        body = r.json()
                        assert body["type"] == PROBLEM_BASE + "invalid-request", said
                        assert body["fields"] == [case.field], said
                        assert body["errors"][0]["source"] == case.where, said
                elif api and r.status_code == 422:
                    assert r.json()["fields"] == [case.field], said
                walked.add((route.method, route.template, case.field))
    assert ("GET", "/api/agent/customers", "q") in walked
    assert ("POST", "/api/launches/{launch_id:str}/registrations", "name") in walked
    assert ("POST", "/api/admin/launches", "sale_starts_at") in walked
    assert ("POST", "/staff/login", "key") in walked


async def test_launch_times_postgres_cannot_store_are_refused_naming_the_field(
    deps: Deps, settings: Settings, clock: FakeClock, admin_key: str
) -> None:
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with AsyncTestClient(create_app(settings, clock)) as c:
        made = await c.post("/api/admin/launches", json={"id": "t1", "name": "T"}, headers=headers)
        assert made.status_code == 201
        for at in TIMES:
            for method, path, extra in (
                ("POST", "/api/admin/launches", {"id": "t2", "name": "T"}),
                ("PATCH", "/api/admin/launches/t1", {}),
            ):
                r = await c.request(
                    method, path, json={**extra, "pickup_ends_at": at}, headers=headers
                )
                assert r.status_code == 422, r.text
                assert r.json()["fields"] == ["pickup_ends_at"], r.text
        assert (await c.get("/api/admin/launches/t2", headers=headers)).status_code == 404
