-- Places in the queue given after the draw (or every place of a fifo launch): the
-- drawn ones are in draws.drawn already. Copied from Redis by the sweeper, about a
-- second behind, so a lost Redis gives late arrivals their places back too: checking
-- in again returns the same rank, and their "your turn" e-mail still goes out.
CREATE TABLE queue_places (
    launch_id       text NOT NULL REFERENCES launches (id) ON DELETE CASCADE,
    registration_id bigint NOT NULL,
    rank            integer NOT NULL CHECK (rank >= 0),
    placed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (launch_id, registration_id),
    UNIQUE (launch_id, rank)
);
