-- The lottery mode: the draw orders the whole roster; the first `invited` are
-- invited, the rest wait in that order and move up one by one (`moved_up` so far).
-- A registration's place in the queue is its index in that order.

ALTER TABLE draws
    ADD COLUMN invited  integer CHECK (invited >= 0),
    ADD COLUMN moved_up integer NOT NULL DEFAULT 0 CHECK (moved_up >= 0);

ALTER TABLE registrations
    ADD COLUMN invited_at timestamptz;
