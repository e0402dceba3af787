"""Notifications: outbox → SMTP.

A request that should tell a customer something only inserts an outbox row with topic
`notify.<kind>` in its own transaction (`enqueue_notification`); it never waits for
mail. The background sweeper calls `send_pending`, which sends each due row in one
transaction: claim it (FOR UPDATE SKIP LOCKED, so processes never send the same row
at once), load the data its templates need from Postgres *now*, render text + HTML,
hand it to the SMTP server, then record a `deliveries` row and mark the outbox row
processed, and commit. A failure records `last_error` and moves `next_attempt_at`
out (exponential back-off from the injected clock); a message that can never go out
(its registration is gone, its address refused) is dropped with the reason.

Delivery is at least once, not exactly once. If the process dies after the server
accepted a message (250 after DATA) but before the commit, the row is still pending
and is sent again. No SMTP command can ask a server "did you get this?", so that
window cannot be closed from here; what we guarantee is that the copy carries the
same Message-ID (`<outbox-<id>@<public host>>`), so mail stores and clients can tell
it is the same message, and that the delivery is recorded once. Every other failure
(connection refused or dropped, an error reply, cancellation before the 250) leaves
the row pending with nothing delivered, and a later sweep sends it.
"""

from service.notify.letters import LETTERS
from service.notify.sender import KINDS, enqueue_notification, send_pending

KINDS.update(LETTERS)

__all__ = ["KINDS", "enqueue_notification", "send_pending"]
