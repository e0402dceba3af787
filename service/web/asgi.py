"""The ASGI entry point granian imports: `service.web.asgi:app`.

The app, with the status poll and the confirm answered beside the framework on their
happy path (`service/web/fastpath.py`), every request counted and timed
(`service/web/observe.py`).
"""

from service.infra.settings import get_settings
from service.web.app import create_app
from service.web.fastpath import FastLane
from service.web.observe import Observed

app = Observed(FastLane(create_app()), get_settings())
