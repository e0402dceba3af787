"""Shopper pages: the launch and its sign-up form, the verification result, the
waiting room (which becomes the store picker and the hold when it is your turn),
the reservation code, and how to check the draw."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from service import errors
from service.admin import launches
from service.admin.models import Item
from service.customers import selfservice
from service.moments import when
from service.pages.render import EXCEPTION_HANDLERS, page
from service.queue import checkin, draw, registrations, signup, turns
from service.stock import reservations
from service.stock.codes import QR_BORDER, format_code, qr_symbol
from service.web.auth import (
    SHOPPER_COOKIE,
    TICKET_COOKIE,
    channel_of,
    require_customer,
    shopper_cookie,
)
from service.web.params import AnyRequest, AppDeps

STATE_LABELS = {
    "draft": "Coming soon",
    "registration_open": "Registration open",
    "registration_closed": "Registration closed",
    "checkin_open": "Waiting room open",
    "selling": "On sale now",
    "sold_out": "Sold out",
    "closed": "Sale closed",
    "pickup": "Pickup in stores",
    "archived": "Ended",
}

_DRAWN_FOOTER = (
    "Fair launches: everyone who registered gets the same chance, and the order can be"
    " checked by anyone."
)
# How each fairness mode orders the queue, in the shopper's words: a first-come launch
# never speaks of a draw. `draw_at` names the timing the draw happens at (None: none).
FAIRNESS: dict[str, dict[str, str | None]] = {
    "prequeue-shuffle": {
        "draw_at": "sale_starts_at",
        "how": "Registering early gives no advantage: on launch day everyone who checked in"
        " is put in a random order that anyone can verify.",
        "at_sale": "everyone in the waiting room is put in a random order. Arriving early"
        " gives no advantage.",
        "order": "Everyone checked in when the sale starts is put in a random order.",
        "footer": _DRAWN_FOOTER,
    },
    "lottery": {
        "draw_at": "checkin_opens_at",
        "how": "Registering early gives no advantage: when the waiting room opens, a draw"
        " that anyone can verify picks who is invited to buy, and in which order.",
        "at_sale": "the invited are let in from the waiting room in the order the draw gave them.",
        "order": "A draw when the waiting room opens picks who may buy, and in which order.",
        "footer": _DRAWN_FOOTER,
    },
    "fifo": {
        "draw_at": None,
        "how": "First come, first served: places in the waiting room go in order of"
        " arrival, from the moment it opens.",
        "at_sale": "people are let in from the waiting room in order of arrival: first"
        " come, first served.",
        "order": "First come, first served: places go in order of arrival.",
        "footer": "First come, first served: places in the queue go in order of arrival.",
    },
}

# A reservation's status on its badge, in the shopper's words.
STATUS_WORDS = {"no_show": "not collected"}

# The channel a timeline entry came through, in the shopper's words.
CHANNEL_WORDS = {
    "web": "online",
    "app": "app",
    "phone": "phone",
    "store": "in store",
    "admin": "organiser",
    "system": "fairdrop",
}


def iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def _duration(seconds: int) -> str:
    if seconds % 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def _names(items: list[Item]) -> dict[str, str]:
    return {i.id: i.name for i in items}


def script_json(value: object) -> str:
    """JSON safe inside a `<script type="application/json">` element."""
    return msgspec.json.encode(value).decode().replace("<", "\\u003c")


def qr_svg(data: str) -> str:
    """A QR code as inline SVG markup (no image request, nothing inline to execute)."""
    out: str = qr_symbol(data).svg_inline(
        scale=4, border=QR_BORDER, dark="#14181f", light="#fff", omitsize=True
    )
    return out


async def _launch_context(deps: AppDeps, launch_id: str) -> dict[str, Any]:
    launch = await launches.get_launch(deps, launch_id)
    stores = await launches.list_items(deps, launch_id, "stores")
    skus = await launches.list_items(deps, launch_id, "skus")
    return {
        "launch": launch,
        "stores": stores,
        "skus": skus,
        "state_label": STATE_LABELS.get(launch.state, launch.state),
        "fair": FAIRNESS[launch.fairness_mode],
        "title": launch.name,
        "hold_for": _duration(launch.hold_seconds),
        "choose_for": _duration(launch.admission_window_seconds),
        # Times in the launch's zone; the pages' script adds the reader's own if it differs.
        "zone": launch.time_zone,
        "when": functools.partial(when, zone=launch.time_zone),
        "iso": iso,
    }


async def _turn_ends(deps: AppDeps, launch_id: str, registration_id: int) -> datetime | None:
    """While the shopper may still hold another unit (a confirmation leaves the turn
    open while the limit allows), when that time ends; None once the turn is over."""
    rank = await checkin.current_rank(deps, launch_id, registration_id)
    if rank is None or rank < 0:
        return None
    found = await turns.turn(deps, launch_id, rank, registration_id)
    return None if found.until_ms is None else datetime.fromtimestamp(found.until_ms / 1000, UTC)


class ShopperPages(Controller):
    path = "/launches/{launch_id:str}"
    include_in_schema = False
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", operation_id="pageLaunch")
    async def landing(self, deps: AppDeps, launch_id: FromPath[str]) -> Template:
        return page("landing.html", **await _launch_context(deps, launch_id))

    @get("/verify", operation_id="pageVerify")
    async def verify(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str], token: FromQuery[str]
    ) -> Template:
        context = await _launch_context(deps, launch_id)
        try:
            done = await signup.verify(deps, launch_id, token, channel=channel_of(request))
        except errors.FairdropError as exc:
            context["title"] = "This link does not work"
            return page("verified.html", status=exc.status, failure=exc.detail, **context)
        return page(
            "verified.html",
            cookies=[shopper_cookie(deps, done.shopper_token)],
            failure=None,
            public_id=done.public_id,
            **context,
        )

    @get("/queue", operation_id="pageQueue")
    async def queue(self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]) -> Template:
        context = await _launch_context(deps, launch_id)
        context["title"] = f"Waiting room · {context['launch'].name}"
        try:
            registration_id: int | None = require_customer(request, deps, launch_id)
        except errors.Unauthorized:
            registration_id = None
        reserved = registration_id is not None and any(
            r.status in ("confirmed", "collected")
            for r in await reservations.for_registration(deps, launch_id, registration_id)
        )
        preferred = registration_id is not None and await registrations.preferred_store(
            deps, launch_id, registration_id
        )
        return page(
            "queue.html",
            reserved=reserved,
            preferred_store=preferred or "",
            has_shopper=SHOPPER_COOKIE in request.cookies,
            has_ticket=TICKET_COOKIE in request.cookies,
            now_ms=deps.clock.now_ms(),
            names_json=script_json(
                {
                    "stores": _names(context["stores"]),
                    "skus": _names(context["skus"]),
                }
            ),
            **context,
        )

    @get("/reservation", operation_id="pageReservation")
    async def reservation(
        self, request: AnyRequest, deps: AppDeps, launch_id: FromPath[str]
    ) -> Template:
        context = await _launch_context(deps, launch_id)
        context["title"] = f"Your reservation · {context['launch'].name}"
        try:
            registration_id = require_customer(request, deps, launch_id)
        except errors.Unauthorized:
            return page("reservation.html", status=401, signed_in=False, items=[], **context)
        stores, skus = _names(context["stores"]), _names(context["skus"])
        found = await reservations.for_registration(deps, launch_id, registration_id)
        items = [
            {
                "r": r,
                "code": format_code(r.code),
                "qr": qr_svg(r.code),
                "store": stores.get(r.store_id, r.store_id),
                "sku": skus.get(r.sku_id, r.sku_id),
            }
            for r in found
        ]
        history = await selfservice.history(deps, launch_id, registration_id, (stores, skus))
        return page(
            "reservation.html",
            signed_in=True,
            items=items,
            turn_ends=await _turn_ends(deps, launch_id, registration_id),
            history=history,
            channels=CHANNEL_WORDS,
            status_words=STATUS_WORDS,
            **context,
        )

    @get("/draw", operation_id="pageDraw")
    async def draw_page(self, deps: AppDeps, launch_id: FromPath[str]) -> Template:
        context = await _launch_context(deps, launch_id)
        heading = "The draw" if context["fair"]["draw_at"] else "First come, first served"
        context["title"] = f"{heading} · {context['launch'].name}"
        try:
            commitment: draw.Commitment | None = await draw.commitment(deps, launch_id)
        except errors.NotFound:
            commitment = None
        return page("draw.html", commitment=commitment, **context)


HANDLERS = [ShopperPages]
