"""Pages for staff, agents and operators: sign in with an API key or a one-time link
(a signed session in an HttpOnly, SameSite=Strict cookie that the API's key check
accepts: `service.auth.signin`), then the pickup desk, the agent console and the
operations dashboard. Each page is a shell; its script calls
the same JSON API a till or a script would."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template

from service import errors
from service.admin import launches
from service.admin.models import STATES, Launch
from service.auth import signin
from service.auth.apikeys import Principal, Role, authenticate
from service.moments import when
from service.notify import outbox
from service.pages.render import EXCEPTION_HANDLERS, page
from service.pages.shopper import STATE_LABELS, iso, script_json
from service.pickup.windows import now_of
from service.web.auth import KEY_COOKIE, require_key
from service.web.params import AnyRequest, AppDeps, StoreQuery

LaunchQuery = Annotated[str | None, QueryParameter(pattern=r"^[a-z0-9-]{0,40}$")]
ToQuery = Annotated[str | None, QueryParameter(max_length=320)]


class SignIn(msgspec.Struct):
    key: Annotated[str, msgspec.Meta(max_length=200)] = ""
    next: Annotated[str, msgspec.Meta(max_length=500)] = "/"


class SignInLink(msgspec.Struct):
    token: Annotated[str, msgspec.Meta(max_length=100)] = ""
    next: Annotated[str, msgspec.Meta(max_length=500)] = "/"


LinkToken = Annotated[str | None, QueryParameter(max_length=100)]
ROLE_WORDS = {
    "staff": "store staff",
    "agent": "customer service",
    "operator": "operations",
    "admin": "administrator",
}


def _local(path: str) -> str:
    """Only a path on this site: never an open redirect."""
    return path if path.startswith("/") and not path.startswith("//") else "/"


def _home(who: Principal) -> str:
    return {"staff": "/desk", "agent": "/agent"}.get(who.role, "/ops")


def _as(who: Principal) -> str:
    """Who a key speaks for, in words: "store staff · LDN"."""
    words = ROLE_WORDS.get(who.role, who.role)
    return f"{words} · {who.store_id}" if who.store_id else words


def _sign_in_page(
    next: str, *, failure: str | None = None, status: int = 200, bad_key: bool = False
) -> Template:
    """The key form; `failure` says why the last try (a key, or a link) did not sign in."""
    return page(
        "login.html",
        status=status,
        title="Staff sign-in",
        next=_local(next),
        failure=failure,
        bad_key=bad_key,
        link=None,
        as_who=None,
    )


def _signed_in(deps: AppDeps, who: Principal, next: str) -> Redirect:
    """Back to where the sign-in was asked for (or the role's page), with the session."""
    cookie = Cookie(
        key=KEY_COOKIE,
        value=signin.session_token(deps, who),
        path="/",
        httponly=True,
        samesite="strict",
        max_age=signin.SESSION_SECONDS,
    )
    target = _local(next)
    return Redirect(target if target != "/" else _home(who), cookies=[cookie], status_code=303)


class NeedsSignIn(Exception):
    pass


async def signed_in_as(request: AnyRequest, deps: AppDeps, *roles: Role) -> Principal:
    try:
        return await require_key(request, deps, *roles)
    except errors.Unauthorized as exc:
        raise NeedsSignIn from exc


def to_sign_in(request: AnyRequest, exc: Exception) -> Redirect:
    return Redirect("/staff/login", query_params={"next": request.url.path}, status_code=303)


def staff_nav(who: Principal, current: str) -> dict[str, Any]:
    links = []
    if who.role in ("admin", "operator"):
        links.append(("/console", "Launches"))
        links.append(("/ops", "Operations"))
    if who.role in ("admin", "staff"):
        links.append(("/desk", "Pickup desk"))
    if who.role in ("admin", "agent"):
        links.append(("/agent", "Agent console"))
    if who.role in ("admin", "operator"):
        links.append(("/outbox", "Outbox"))
    return {"who": who, "nav": links, "current": current}


class ConsolePages(Controller):
    include_in_schema = False
    exception_handlers = {**EXCEPTION_HANDLERS, NeedsSignIn: to_sign_in}

    @get("/staff/login", operation_id="pageSignIn")
    async def sign_in_form(
        self, deps: AppDeps, next: FromQuery[str] = "/", token: LinkToken = None
    ) -> Template:
        if token is None:
            return _sign_in_page(next)
        try:
            who = await signin.link_principal(deps, token)
        except errors.Unauthorized as exc:
            return _sign_in_page(next, failure=exc.detail, status=401)
        return page(
            "login.html",
            title="Staff sign-in",
            next=_local(next),
            link=token,
            as_who=_as(who),
            failure=None,
            bad_key=False,
        )

    @post("/staff/login", operation_id="pageSignInPost", status_code=303)
    async def sign_in(
        self,
        deps: AppDeps,
        data: Annotated[SignIn, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect | Template:
        try:
            who = await authenticate(deps.pool, data.key.strip(), now_of(deps))
        except errors.Unauthorized as exc:
            return _sign_in_page(data.next, failure=exc.detail, status=401, bad_key=True)
        return _signed_in(deps, who, data.next)

    @post("/staff/login/link", operation_id="pageSignInLink", status_code=303)
    async def sign_in_by_link(
        self,
        deps: AppDeps,
        data: Annotated[SignInLink, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect | Template:
        try:
            who = await signin.redeem_link(deps, data.token)
        except errors.Unauthorized as exc:
            return _sign_in_page(data.next, failure=exc.detail, status=401)
        return _signed_in(deps, who, data.next)

    @post("/staff/logout", operation_id="pageSignOut", status_code=303)
    async def sign_out(self) -> Redirect:
        gone = Cookie(
            key=KEY_COOKIE, value="", path="/", max_age=0, httponly=True, samesite="strict"
        )
        return Redirect("/staff/login", cookies=[gone], status_code=303)

    @get("/desk", operation_id="pageDeskLaunches")
    async def desk_index(self, request: AnyRequest, deps: AppDeps) -> Template:
        who = await signed_in_as(request, deps, "staff")
        return await _pick_launch(deps, who, "desk", "Pickup desk")

    @get("/desk/{launch_id:str}", operation_id="pageDesk")
    async def desk(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str], store: StoreQuery = None
    ) -> Template:
        who = await signed_in_as(request, deps, "staff")
        launch = await launches.get_launch(deps, launch_id)
        stores = {s.id: s.name for s in await launches.list_items(deps, launch_id, "stores")}
        store_id = who.store_id or store
        return page(
            "desk.html",
            title=f"Pickup desk · {launch.name}",
            launch=launch,
            store_id=store_id,
            store_name=stores.get(store_id or "", store_id),
            stores=stores,
            iso=iso,
            now_ms=deps.clock.now_ms(),
            **staff_nav(who, "/desk"),
        )

    @get("/ops", operation_id="pageOpsLaunches")
    async def ops_index(
        self, request: AnyRequest, deps: AppDeps, launch: LaunchQuery = None
    ) -> Template | Redirect:
        who = await signed_in_as(request, deps, "operator")
        if launch:  # the dashboard's launch picker, without script
            return Redirect(f"/ops/{launch}", status_code=303)
        return await _pick_launch(deps, who, "ops", "Operations")

    @get("/ops/{launch_id:str}", operation_id="pageOps")
    async def ops(self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]) -> Template:
        who = await signed_in_as(request, deps, "operator")
        launch = await launches.get_launch(deps, launch_id)
        return page(
            "ops.html",
            title=f"Operations · {launch.name}",
            launch=launch,
            state_label=STATE_LABELS.get(launch.state, launch.state),
            states=" ".join(STATES),
            launches=await visible_launches(deps, who),
            labels=STATE_LABELS,
            **staff_nav(who, "/ops"),
        )

    @get("/agent", operation_id="pageAgent")
    async def agent(self, request: AnyRequest, deps: AppDeps, q: FromQuery[str] = "") -> Template:
        who = await signed_in_as(request, deps, "agent")
        names = {
            launch.id: {
                "name": launch.name,
                "stores": {
                    i.id: i.name for i in await launches.list_items(deps, launch.id, "stores")
                },
                "skus": {i.id: i.name for i in await launches.list_items(deps, launch.id, "skus")},
            }
            for launch in await launches.list_launches(deps)
        }
        return page(
            "agent.html",
            title="Agent console",
            q=q[:320],
            names_json=script_json(names),
            **staff_nav(who, "/agent"),
        )

    @get("/outbox", operation_id="pageOutbox")
    async def outbox_page(
        self, request: AnyRequest, deps: AppDeps, launch: LaunchQuery = None, to: ToQuery = None
    ) -> Template:
        who = await signed_in_as(request, deps, "operator")
        launch_id = who.launch_id or launch or None
        return page(
            "outbox.html",
            title="Outbox",
            mails=await outbox.read(deps, launch_id=launch_id, to=to or None, limit=50),
            pieces=outbox.pieces,
            launches=await visible_launches(deps, who),
            launch_id=launch_id or "",
            to=to or "",
            sending=deps.settings.notify and deps.settings.background,
            when=when,
            iso=iso,
            **staff_nav(who, "/outbox"),
        )


async def visible_launches(deps: AppDeps, who: Principal) -> list[Launch]:
    """Every launch, or only the one a key is scoped to."""
    all_launches = await launches.list_launches(deps)
    return [x for x in all_launches if who.launch_id in (None, x.id)]


async def _pick_launch(deps: AppDeps, who: Principal, kind: str, title: str) -> Template:
    return page(
        "pick_launch.html",
        title=title,
        kind=kind,
        launches=await visible_launches(deps, who),
        labels=STATE_LABELS,
        when=when,
        iso=iso,
        **staff_nav(who, f"/{kind}"),
    )


HANDLERS = [ConsolePages]
