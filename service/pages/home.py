"""The front page: every public launch of this deployment, with its pages, and the
way in for staff."""

from __future__ import annotations

from litestar import get
from litestar.response import Template

from service.admin import launches
from service.admin.models import STATES, Launch
from service.moments import when
from service.pages.render import EXCEPTION_HANDLERS, page
from service.pages.shopper import FAIRNESS, STATE_LABELS, iso
from service.web.params import AppDeps

ENDED = ("sold_out", "closed", "pickup", "archived")
# What a shopper most likely wants next, by state: (path under the launch, words).
NEXT_STEP = {
    "registration_open": ("", "Register"),
    "registration_closed": ("/queue", "Go to the waiting room"),
    "checkin_open": ("/queue", "Go to the waiting room"),
    "selling": ("/queue", "Go to the waiting room"),
}


def _order(launch: Launch) -> tuple[int, float]:
    """Furthest along first; then by sale start, soonest first (unscheduled last)."""
    start = launch.sale_starts_at.timestamp() if launch.sale_starts_at else float("inf")
    return (-STATES.index(launch.state), start)


def public(all_launches: list[Launch]) -> tuple[list[Launch], list[Launch]]:
    """The launches shoppers may see (not drafts): (current and upcoming, ended)."""
    shown = sorted((x for x in all_launches if x.state != "draft"), key=_order)
    return [x for x in shown if x.state not in ENDED], [x for x in shown if x.state in ENDED]


@get("/", operation_id="pageHome", include_in_schema=False, exception_handlers=EXCEPTION_HANDLERS)
async def home(deps: AppDeps) -> Template:
    current, ended = public(await launches.list_launches(deps))
    return page(
        "home.html",
        title="Launches",
        current=current,
        ended=ended,
        labels=STATE_LABELS,
        next_step=NEXT_STEP,
        fairness=FAIRNESS,
        when=when,
        iso=iso,
    )


HANDLERS = [home]
