"""The app the benchmarks serve: fairdrop's own, with the baseline routes beside it."""

from service.web.app import create_app
from service.web.fastpath import FastLane
from tests.bench._endpoints import HANDLERS

app = FastLane(create_app(extra_handlers=HANDLERS))
