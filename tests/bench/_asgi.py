"""The app the benchmarks serve: fairdrop's own, wrapped as `service/web/asgi.py`
wraps it, with the baseline routes beside it."""

from service.infra.settings import get_settings
from service.web.app import create_app
from service.web.fastpath import FastLane
from service.web.observe import Observed
from tests.bench._endpoints import HANDLERS

app = Observed(FastLane(create_app(extra_handlers=HANDLERS)), get_settings())
