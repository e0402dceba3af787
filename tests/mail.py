"""A real SMTP server on loopback (aiosmtpd) that keeps what it accepts."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import msgspec
from aiosmtpd.controller import Controller

from service.deps import Deps
from tests.serve import free_port


class Inbox:
    """An aiosmtpd handler keeping what it accepts; it can drop or stall the k-th DATA."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.data_commands = 0
        self.drop_at: int | None = None  # close the connection instead of answering
        self.stall_at: int | None = None  # hang until `release`, then refuse
        self.stalled = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_commands += 1
        if self.data_commands == self.drop_at:
            server.transport.close()
            return "421 4.3.0 gone"
        if self.data_commands == self.stall_at:
            self.stalled.set()
            await asyncio.to_thread(self.release.wait)
            return "451 4.3.0 too late"
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 2.0.0 OK"

    def ids(self) -> Counter[str]:
        return Counter(str(m["Message-ID"]) for m in self.messages)


@contextlib.contextmanager
def smtp_server(deps: Deps, port: int | None = None) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port())
    controller.start()
    deps.settings = msgspec.structs.replace(deps.settings, smtp_port=controller.port)
    try:
        yield inbox
    finally:
        inbox.release.set()
        controller.stop()


HOST = "shop.example"
"""The public host the notification tests' links and Message-IDs use."""
