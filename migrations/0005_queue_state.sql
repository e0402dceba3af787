-- The queue's counters, saved every few seconds, so that a lost Redis can be given
-- back the queue length and how far admission had got (tickets carry the ranks).
CREATE TABLE queue_state (
    launch_id text PRIMARY KEY REFERENCES launches (id) ON DELETE CASCADE,
    qlen      integer NOT NULL CHECK (qlen >= 0),
    admitted  integer NOT NULL CHECK (admitted >= 0),
    lapsed    integer NOT NULL DEFAULT 0,
    saved_at  timestamptz NOT NULL DEFAULT now()
);
