"""Composing a MIME message and handing it to the SMTP server.

A message is multipart/alternative: plain text, then HTML (multipart/related when it
carries inline images, each referenced from the HTML as `cid:`). Its Message-ID is
derived from the outbox id, so a message sent again after a crash carries the same
Message-ID and the receiving side can recognise it.
"""

from __future__ import annotations

import contextlib
import email.utils
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from types import TracebackType
from urllib.parse import urlsplit

import aiosmtplib

from service.infra.settings import Settings
from service.notify.templates import Rendered

CONNECT_TIMEOUT_SECONDS = 10.0
COMMAND_TIMEOUT_SECONDS = 30.0

# The server is unreachable or went away, so the rest of a batch would fail the same
# way. aiosmtplib's connect, disconnect and timeout errors are all OSErrors.
CONNECTION_ERRORS = (OSError,)


def mail_domain(settings: Settings) -> str:
    """The right-hand side of Message-IDs and Content-IDs: this deployment's host name.

    Distinct deployments (staging, production) must not share Message-IDs, or a mail
    client that de-duplicates by Message-ID would hide one of two different messages.
    """
    return urlsplit(settings.base_url).hostname or "fairdrop"


def message_id(settings: Settings, outbox_id: int) -> str:
    return f"<outbox-{outbox_id}@{mail_domain(settings)}>"


def compose(
    settings: Settings,
    *,
    outbox_id: int,
    to: Address,
    rendered: Rendered,
    images: dict[str, tuple[str, bytes]],
    at: datetime,
) -> EmailMessage:
    """The message for outbox row `outbox_id`; `images` maps a Content-ID to (name, PNG)."""
    msg = EmailMessage()
    msg["Message-ID"] = message_id(settings, outbox_id)
    msg["Date"] = email.utils.format_datetime(at)
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = rendered.subject
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    html_part = msg.get_payload()[1]  # type: ignore[index]
    assert isinstance(html_part, EmailMessage)
    for cid, (filename, png) in images.items():
        html_part.add_related(
            png,
            maintype="image",
            subtype="png",
            cid=f"<{cid}>",
            filename=filename,
            disposition="inline",
        )
    return msg


class Mailer:
    """One SMTP connection, opened on first use and reused for a batch of messages."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._smtp: aiosmtplib.SMTP | None = None

    async def __aenter__(self) -> Mailer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._smtp is not None and exc is None:
            # Everything was sent; a failed goodbye loses nothing.
            with contextlib.suppress(aiosmtplib.SMTPException):
                await self._smtp.quit()
        self.drop()

    def drop(self) -> None:
        """Close the connection without a goodbye (after an error, or when cancelled)."""
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self._settings
        implicit_tls = s.smtp_tls and s.smtp_port == 465
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_user,
            password=s.smtp_password,
            use_tls=implicit_tls,
            start_tls=s.smtp_tls and not implicit_tls,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
        await smtp.connect(timeout=CONNECT_TIMEOUT_SECONDS)
        return smtp

    async def send(self, msg: EmailMessage) -> None:
        """Hand `msg` over; returns once the server has accepted it (250 after DATA)."""
        try:
            if self._smtp is None or not self._smtp.is_connected:
                self._smtp = await self._connect()
            await self._smtp.send_message(msg)
        except BaseException:
            # After any failure (or cancellation) the session's state is unknown: start
            # the next message on a fresh connection.
            self.drop()
            raise
