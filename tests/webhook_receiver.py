"""A real HTTP receiver for webhook tests: `http.server` in a thread on a loopback port,
recording every request and answering with the statuses a test scripts (then 200).
It can be stopped and started again on the same port, as a receiver that restarts."""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgspec
from standardwebhooks import Webhook

from service.webhooks.payloads import AnyWebhookEvent
from tests.serve import free_port


class Received(msgspec.Struct, frozen=True):
    headers: dict[str, str]
    body: bytes
    status: int
    """What the receiver answered."""

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    def verified(self, secret: str) -> AnyWebhookEvent:
        """The payload, if its signature verifies with `secret` (raises otherwise)."""
        Webhook(secret).verify(self.body, self.headers)
        event = msgspec.json.decode(self.body, type=AnyWebhookEvent)
        assert event.id == self.message_id
        return event

    @property
    def type(self) -> str:
        return str(msgspec.json.decode(self.body)["type"])


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[Received] = []
        self.answers: collections.deque[int] = collections.deque()
        """Statuses to answer next, in order; when empty, `default`."""
        self.default = 200
        self.rule: Callable[[Received], int | None] | None = None
        """Decides a request's status first, when it returns one."""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def delivered(self) -> list[Received]:
        """The requests answered with a 2xx, in arrival order."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def _answer(self, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            ruled = self.rule(Received(headers, body, 0)) if self.rule else None
            if ruled is not None:
                status = ruled
            else:
                status = self.answers.popleft() if self.answers else self.default
            self.requests.append(Received(headers, body, status))
            return status

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._answer(headers, body)
                reply = b"ok" if status < 300 else b"not now"
                self.send_response(status)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@contextlib.contextmanager
def receiving(*answers: int) -> Iterator[Receiver]:
    """A running receiver that answers `answers` first, then 200."""
    receiver = Receiver()
    receiver.answers.extend(answers)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
