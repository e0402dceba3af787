"""The launch console, for marketing and operations (roles `admin`, `operator`): the
launches, a new launch, and one launch's stores, SKUs, allocation grid, registration,
import, links, lifecycle and audit trail.

Server-rendered forms that work without script (a small one checks the times' order
as they are typed). Every form calls the function the admin API's handler calls;
each POST answers 303 back to the page with a notice (`console_flash`). Another
site's page cannot post them (`service.web.origin`, before every handler)."""

from __future__ import annotations

import zoneinfo
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from service import errors
from service.admin import audit, console_view, launch_form, launches, timeline
from service.admin.models import STATES, ItemCreate, Launch, LaunchState, Transition
from service.auth.apikeys import Principal, key_names
from service.moments import when
from service.pages.console import NeedsSignIn, signed_in_as, staff_nav, to_sign_in, visible_launches
from service.pages.console_flash import (
    Flash,
    cleared,
    flash_cookie,
    read_flash,
    report_lines,
    report_notice,
)
from service.pages.render import EXCEPTION_HANDLERS, page
from service.pages.shopper import iso
from service.web.auth import key_channel
from service.web.params import AnyRequest, AppDeps

Filter = Annotated[str | None, QueryParameter(max_length=100)]
STATE_WORDS = {
    "draft": "Draft",
    "registration_open": "Registration open",
    "registration_closed": "Registration closed",
    "checkin_open": "Waiting room open",
    "selling": "Selling",
    "sold_out": "Sold out",
    "closed": "Sale closed",
    "pickup": "Pickup",
    "archived": "Archived",
}
MODES = {
    "prequeue-shuffle": "Pre-queue, shuffled at the sale's start",
    "fifo": "First come, first served",
    "lottery": "Lottery (a draw invites some)",
}


async def _operator(request: AnyRequest, deps: AppDeps, launch_id: str | None = None) -> Principal:
    who = await signed_in_as(request, deps, "operator")
    if launch_id is not None and who.launch_id not in (None, launch_id):
        raise errors.Forbidden("This key is for another launch.")
    return who


async def _form(request: AnyRequest) -> dict[str, str]:
    """The form's text fields (files left out)."""
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _back(deps: AppDeps, launch_id: str, flash: Flash, anchor: str = "") -> Redirect:
    return Redirect(
        f"/console/launches/{launch_id}{anchor}",
        status_code=303,
        cookies=[flash_cookie(deps, flash)],
    )


def _launch_form(
    who: Principal,
    values: dict[str, str],
    problems: dict[str | None, str],
    status: int = 200,
    editing: Launch | None = None,
) -> Template:
    """The new-launch form, or (`editing`) the same form for a launch's settings."""
    return page(
        "console_new.html",
        status=status,
        title=f"Edit {editing.name}" if editing else "New launch",
        editing=editing,
        action=f"/console/launches/{editing.id}/edit" if editing else "/console/launches/new",
        values=values,
        problems=problems,
        modes=MODES,
        zones=sorted(zoneinfo.available_timezones()),
        order=timeline.ORDER,
        labels=launch_form.LABELS,
        **staff_nav(who, "/console"),
    )


def _exports(request: AnyRequest, launch_id: str) -> list[tuple[str, str]]:
    """The admin API's CSV exports of a launch, where the app has them: (name, link)."""
    prefix = "/api/admin/launches/{launch_id:str}/exports/"
    return [
        (
            r.path.removeprefix(prefix).removesuffix(".csv"),
            r.path.replace("{launch_id:str}", launch_id),
        )
        for r in request.app.routes
        if r.path.startswith(prefix) and "{" not in r.path.removeprefix(prefix)
    ]


def _controls(launch: Launch) -> list[tuple[str, str, str]]:
    """The lifecycle buttons that apply now: (action, target state, label)."""
    out: list[tuple[str, str, str]] = []
    here = STATES.index(launch.state)
    ahead = [s for s in STATES[here + 1 :] if s != "sold_out"]
    if ahead:
        out.append(("advance", ahead[0], f"Move to “{STATE_WORDS[ahead[0]]}”"))
    if launch.state in ("checkin_open", "selling", "sold_out"):
        out.append(
            ("resume", "", "Resume admission")
            if launch.paused
            else ("pause", "", "Pause admission")
        )
    if here < STATES.index("closed"):
        out.append(("close", "", "Close the launch"))
    return out


class LaunchConsole(Controller):
    path = "/console"
    include_in_schema = False
    exception_handlers = {**EXCEPTION_HANDLERS, NeedsSignIn: to_sign_in}

    @get("/", operation_id="pageConsole")
    async def index(self, request: AnyRequest, deps: AppDeps) -> Template:
        who = await _operator(request, deps)
        shown = await console_view.summaries(deps, await visible_launches(deps, who))
        return page(
            "console_list.html",
            title="Launches",
            summaries=shown,
            words=STATE_WORDS,
            when=when,
            iso=iso,
            **staff_nav(who, "/console"),
        )

    @get("/launches/new", operation_id="pageConsoleNew")
    async def new(self, request: AnyRequest, deps: AppDeps) -> Template:
        who = await _operator(request, deps)
        if who.launch_id is not None:
            raise errors.Forbidden("This key is for one launch; it cannot create another.")
        return _launch_form(who, {"time_zone": "UTC"}, {})

    @post("/launches/new", operation_id="pageConsoleCreate", status_code=303)
    async def create(self, request: AnyRequest, deps: AppDeps) -> Template | Redirect:
        who = await _operator(request, deps)
        if who.launch_id is not None:
            raise errors.Forbidden("This key is for one launch; it cannot create another.")
        values = await _form(request)
        try:
            made = await launch_form.create(deps, values, actor=who.actor, channel=key_channel(who))
        except launch_form.FormProblems as exc:
            return _launch_form(who, values, exc.problems, status=422)
        return _back(deps, made.id, Flash(notice=f"Launch “{made.name}” created, as a draft."))

    @get("/launches/{launch_id:str}", operation_id="pageConsoleLaunch")
    async def launch(
        self,
        request: AnyRequest,
        deps: AppDeps,
        launch_id: FromPath[str],
        kind: Filter = None,
        actor: Filter = None,
        channel: Filter = None,
    ) -> Template:
        who = await _operator(request, deps, launch_id)
        launch = await launches.get_launch(deps, launch_id)
        kind, actor, channel = kind or None, actor or None, channel or None
        facets = await audit.facets(deps, launch_id)
        return page(
            "console_launch.html",
            cookies=[cleared()],
            title=launch.name,
            launch=launch,
            words=STATE_WORDS,
            modes=MODES,
            grid=await console_view.grid(deps, launch_id),
            cell=console_view.cell,
            flash=read_flash(deps, request) or Flash(),
            report_lines=report_lines,
            campaign=deps.settings.link(f"/launches/{launch_id}"),
            controls=_controls(launch),
            exports=_exports(request, launch_id),
            events=await audit.launch_events(
                deps, launch_id, newest_first=True, kind=kind, actor=actor, channel=channel
            ),
            facets=facets,
            names=await key_names(deps.pool, facets.actors, launch_id),
            chosen={"kind": kind, "actor": actor, "channel": channel},
            order=timeline.ORDER,
            labels=launch_form.LABELS,
            zone=launch.time_zone,
            when=when,
            iso=iso,
            **staff_nav(who, "/console"),
        )

    @get("/launches/{launch_id:str}/edit", operation_id="pageConsoleEdit")
    async def edit(self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]) -> Template:
        who = await _operator(request, deps, launch_id)
        launch = await launches.get_launch(deps, launch_id)
        return _launch_form(who, launch_form.values_of(launch), {}, editing=launch)

    @post("/launches/{launch_id:str}/edit", operation_id="pageConsoleUpdate", status_code=303)
    async def update(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]
    ) -> Template | Redirect:
        who = await _operator(request, deps, launch_id)
        launch = await launches.get_launch(deps, launch_id)
        values = await _form(request)
        try:
            await launch_form.update(
                deps, launch_id, values, actor=who.actor, channel=key_channel(who)
            )
        except launch_form.FormProblems as exc:
            return _launch_form(who, values, exc.problems, status=422, editing=launch)
        return _back(deps, launch_id, Flash(notice="Launch settings saved."))

    @post("/launches/{launch_id:str}/items", operation_id="pageConsoleItem", status_code=303)
    async def add_item(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]
    ) -> Redirect:
        who = await _operator(request, deps, launch_id)
        values = await _form(request)
        table = "skus" if values.get("table") == "skus" else "stores"
        what = "SKU" if table == "skus" else "Store"
        given = {k: values.get(k, "").strip() for k in ("id", "name")}
        try:
            body = msgspec.convert(given, ItemCreate)  # as the API's body is decoded
        except msgspec.ValidationError:
            words = (
                f"A {what.lower()} needs a name (up to 200 characters) and an id of 1 to 40"
                " letters, digits, - or _ (no spaces)."
            )
            return _back(deps, launch_id, Flash(kind="bad", notice=words), "#stock")
        try:
            await launches.add_item(
                deps, launch_id, table, body, actor=who.actor, channel=key_channel(who)
            )
        except errors.FairdropError as exc:
            return _back(deps, launch_id, Flash(kind="bad", notice=exc.detail), "#stock")
        return _back(deps, launch_id, Flash(notice=f"{what} “{body.name}” added."), "#stock")

    @post("/launches/{launch_id:str}/allocations", operation_id="pageConsoleGrid", status_code=303)
    async def allocations(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]
    ) -> Redirect:
        who = await _operator(request, deps, launch_id)
        values = await _form(request)
        changed, refused = await console_view.set_grid(
            deps, launch_id, values, actor=who.actor, channel=key_channel(who)
        )
        if refused:
            typed = {n: values.get(f"alloc:{n}", "") for n in refused}
            notice = f"{len(refused)} allocation(s) not changed ({changed} changed): see below."
            flash = Flash(kind="bad", notice=notice, cells=refused, typed=typed)
        else:
            flash = Flash(notice=f"{changed} allocation(s) changed." if changed else "No change.")
        return _back(deps, launch_id, flash, "#stock")

    @post(
        "/launches/{launch_id:str}/import",
        operation_id="pageConsoleImport",
        status_code=303,
        request_max_body_size=32 * 1024 * 1024,
    )
    async def import_list(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]
    ) -> Redirect:
        who = await _operator(request, deps, launch_id)
        data = await request.form()
        upload = data.get("file")
        text = str(data.get("list") or "")
        try:
            if isinstance(upload, UploadFile) and upload.filename:
                text = (await upload.read()).decode("utf-8-sig")
            report = await console_view.import_list(
                deps, launch_id, text, actor=who.actor, channel=key_channel(who)
            )
        except UnicodeDecodeError:
            flash = Flash(kind="bad", notice="The file is not UTF-8 text: save it as UTF-8 CSV.")
        except errors.FairdropError as exc:
            flash = Flash(kind="bad", notice=exc.detail)
        else:
            kind = "bad" if report.invalid else "ok"
            flash = Flash(kind=kind, notice=report_notice(report), report=report)
        return _back(deps, launch_id, flash, "#registration")

    @post(
        "/launches/{launch_id:str}/lifecycle", operation_id="pageConsoleLifecycle", status_code=303
    )
    async def lifecycle(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]
    ) -> Redirect | Template:
        who = await _operator(request, deps, launch_id)
        values = await _form(request)
        action, to = values.get("action", ""), values.get("to") or None
        if action not in ("advance", "pause", "resume", "close") or (to and to not in STATES):
            return _back(deps, launch_id, Flash(kind="bad", notice="Choose a step."))
        final = action in ("advance", "close")
        if final and values.get("confirmed") != "yes":
            return await _confirm(deps, who, launch_id, action, to)
        step = Transition(action=action, to=to, reason=values.get("reason", "")[:500])  # type: ignore[arg-type]
        try:
            moved = await launches.transition(
                deps, launch_id, step, actor=who.actor, channel=key_channel(who)
            )
        except errors.FairdropError as exc:
            return _back(deps, launch_id, Flash(kind="bad", notice=exc.detail), "#lifecycle")
        done = "paused" if moved.paused else STATE_WORDS[moved.state]
        return _back(deps, launch_id, Flash(notice=f"The launch is now: {done}."), "#lifecycle")


async def _confirm(
    deps: AppDeps, who: Principal, launch_id: str, action: str, to: str | None
) -> Template:
    """The irreversible steps are asked once more (a page of its own: works without script)."""
    launch = await launches.get_launch(deps, launch_id)
    target: LaunchState = "closed" if action == "close" else to  # type: ignore[assignment]
    return page(
        "console_confirm.html",
        title=f"{launch.name}: {STATE_WORDS.get(target, target)}?",
        launch=launch,
        action=action,
        to=to or "",
        target=STATE_WORDS.get(target, target),
        now=STATE_WORDS[launch.state],
        consequence=CONSEQUENCES.get(target, ""),
        **staff_nav(who, "/console"),
    )


CONSEQUENCES: dict[str, Any] = {
    "registration_open": "Shoppers can register on the launch's page from now on."
    " A launch never goes back to draft.",
    "registration_closed": "Nobody can register any more, and the draw's commitment is"
    " published. Registration cannot be opened again.",
    "checkin_open": "Verified shoppers can join the waiting room.",
    "selling": "The draw runs (if the launch has one) and admission starts.",
    "closed": "The sale ends: nobody more is admitted and no new holds are placed."
    " It cannot be reopened.",
    "pickup": "Stores start handing out reservations.",
    "archived": "The launch ends for good.",
}

HANDLERS = [LaunchConsole]
