"""The ASGI entry point granian imports: `service.web.asgi:app`."""

from service.web.app import create_app

app = create_app()
