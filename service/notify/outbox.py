"""Reading the e-mails in the outbox: what was sent, dropped, or is still waiting.

With no SMTP server to hand them to (development, the demo: `FAIRDROP_NOTIFY=0`), the
messages stay in the outbox. `read` renders them as the sender would send them now
(`sender.prepare`), so a verification link, a reservation code or a self-service link
can be followed from `fairdrop outbox` or the operators' outbox page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Literal

import msgspec

from service.deps import Deps
from service.notify.sender import TOPIC_PREFIX, prepare
from service.queue import emails

State = Literal["waiting", "sent", "dropped"]


class Mail(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    launch_id: str | None
    kind: str
    state: State
    note: str
    """Why it is in that state: sent when, the last error, why it was dropped."""
    created_at: datetime
    to: str
    subject: str
    text: str
    links: list[str]


_READ = """
SELECT o.id, o.launch_id, o.topic, o.payload, o.created_at, o.processed_at, o.last_error,
       d.sent_at
FROM outbox o
LEFT JOIN deliveries d ON d.outbox_id = o.id
LEFT JOIN registrations r
       ON r.launch_id = o.launch_id AND r.id = (o.payload->>'registration')::bigint
WHERE o.topic LIKE $1 || '%'
  AND ($2::text IS NULL OR o.launch_id = $2)
  AND ($3::text IS NULL OR r.email_norm = $3)
ORDER BY o.id DESC
LIMIT $4
"""

_LINK = re.compile(r"https?://[^\s<>\"']+")


def links_in(text: str) -> list[str]:
    """The links in a plain-text body, in order, without trailing punctuation."""
    return [m.rstrip(".,;:!?)") for m in _LINK.findall(text)]


def pieces(text: str) -> list[tuple[str, bool]]:
    """`text` cut into (piece, is a link), for showing its links as links."""
    out: list[tuple[str, bool]] = []
    at = 0
    for found in _LINK.finditer(text):
        link = found.group().rstrip(".,;:!?)")
        if found.start() > at:
            out.append((text[at : found.start()], False))
        out.append((link, True))
        at = found.start() + len(link)
    if at < len(text):
        out.append((text[at:], False))
    return out


def _plain(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    return "" if body is None else str(body.get_content())


async def read(
    deps: Deps, *, launch_id: str | None = None, to: str | None = None, limit: int = 20
) -> list[Mail]:
    """The newest `limit` notifications (of one launch, to one address), newest first."""
    now = datetime.fromtimestamp(deps.clock.now_ms() / 1000, tz=UTC)
    wanted = emails.normalize(to) if to else None
    mails = []
    async with deps.pool.acquire() as con:
        for row in await con.fetch(_READ, TOPIC_PREFIX, launch_id, wanted, limit):
            if row["sent_at"] is not None:
                state: State = "sent"
                note = f"sent {row['sent_at']:%Y-%m-%d %H:%M:%S %Z}"
            elif row["processed_at"] is not None:
                state, note = "dropped", f"not sent: {row['last_error'] or 'dropped'}"
            else:
                state = "waiting"
                note = f"not sent yet: {row['last_error']}" if row["last_error"] else "not sent yet"
            try:
                async with con.transaction():  # a failed load leaves the connection usable
                    msg, _ = await prepare(deps, con, row, now)
            except Exception as exc:  # what would stop it being sent stops it being shown
                to_line, subject, text = "", "(cannot be shown)", str(exc)
            else:
                to_line, subject, text = str(msg["To"]), str(msg["Subject"]), _plain(msg)
            mails.append(
                Mail(
                    id=row["id"],
                    launch_id=row["launch_id"],
                    kind=row["topic"].removeprefix(TOPIC_PREFIX),
                    state=state,
                    note=note,
                    created_at=row["created_at"],
                    to=to_line,
                    subject=subject,
                    text=text,
                    links=links_in(text),
                )
            )
    return mails
