"""The ASGI entry point granian imports: `service.web.asgi:app`.

The app, with the status poll and the confirm answered beside the framework on their
happy path (`service/web/fastpath.py`).
"""

from service.web.app import create_app
from service.web.fastpath import FastLane

app = FastLane(create_app())
