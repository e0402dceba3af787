"""The ASGI entry point granian imports: `service.web.asgi:app`.

The app, with the waiting room's status poll answered beside the framework on its
happy path (`service/web/fastpath.py`).
"""

from service.web.app import create_app
from service.web.fastpath import FastStatus

app = FastStatus(create_app())
