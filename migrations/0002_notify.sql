-- Notifications: outbox rows whose topic starts with 'notify.' are e-mails, sent by
-- service/notify. A producer may name its message with a dedupe key (enqueueing the
-- same key again is a no-op); a failed send waits until next_attempt_at (back-off);
-- a delivery row records the Message-ID handed to the SMTP server.

ALTER TABLE outbox
    ADD COLUMN dedupe_key      text UNIQUE,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now();

-- Due notifications, in the order the sender claims them.
CREATE INDEX outbox_notify_due ON outbox (next_attempt_at, id)
    WHERE processed_at IS NULL AND topic LIKE 'notify.%';

-- Written in the transaction that marks the outbox row processed, so a row is either
-- pending or has exactly one delivery (or was dropped: processed, no delivery row,
-- last_error says why).
CREATE TABLE deliveries (
    outbox_id  bigint PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    message_id text NOT NULL UNIQUE,
    recipient  text NOT NULL,
    sent_at    timestamptz NOT NULL DEFAULT now()
);
