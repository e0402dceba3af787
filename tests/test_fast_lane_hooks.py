"""Nothing app-wide skips the fast lane unnoticed.

The fast lane (`service/web/fastpath.py`) answers the status poll and the confirm beside
Litestar, so Litestar's middleware and hooks never see those requests. Whatever the app
adds for every request must be mirrored by the lane (and listed here with where), or be
an ASGI wrapper around the lane in `service/web/asgi.py`.
"""

from __future__ import annotations

import msgspec

from service.infra.settings import Settings
from service.web.app import create_app

MIRRORED: dict[str, str] = {}
"""App-wide hooks and where the fast lane does the same (none: counting, timing, logging
and request ids are `service.web.observe.Observed`, wrapped around the lane)."""


def test_the_app_has_no_middleware_the_fast_lane_would_skip(settings: Settings) -> None:
    app = create_app(msgspec.structs.replace(settings, background=False))
    assert not app.middleware, "wrap FastLane in service/web/asgi.py instead"


def test_every_app_wide_hook_is_mirrored_by_the_fast_lane(settings: Settings) -> None:
    app = create_app(msgspec.structs.replace(settings, background=False))
    hooks = [*app.before_send]
    hooks += [h for h in (app.after_request, app.after_response, app.before_request) if h]
    names = {getattr(h, "__name__", repr(h)) for h in hooks}
    assert names <= MIRRORED.keys(), f"not mirrored by the fast lane: {names - MIRRORED.keys()}"


def test_what_every_request_gets_wraps_the_fast_lane() -> None:
    from service.web import asgi
    from service.web.fastpath import FastLane
    from service.web.observe import Observed

    assert isinstance(asgi.app, Observed) and isinstance(asgi.app.app, FastLane)
