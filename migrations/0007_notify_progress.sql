-- Notifications that walk a launch step by step (check-in opens: over the verified
-- registrations; your turn: over the admitted ranks; hold expiring: over expiry
-- times) remember how far they got. The row is locked while a step is taken, so
-- however many processes run the schedule, each step is taken once; dedupe keys on
-- the outbox make a repeated step harmless anyway.
CREATE TABLE notify_progress (
    launch_id  text NOT NULL REFERENCES launches (id) ON DELETE CASCADE,
    kind       text NOT NULL,
    reached    bigint NOT NULL DEFAULT 0,
    done       boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (launch_id, kind)
);
