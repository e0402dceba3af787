-- The waiting room: admission settings per launch, the draw's commitment and
-- reveal, and the order it drew (so a lost Redis cannot lose anyone's place).

ALTER TABLE launches
    ADD COLUMN admit_rate               double precision NOT NULL DEFAULT 5
        CHECK (admit_rate >= 0 AND admit_rate <= 100000),
    ADD COLUMN active_cap               integer NOT NULL DEFAULT 500
        CHECK (active_cap BETWEEN 1 AND 1000000),
    ADD COLUMN admission_window_seconds integer NOT NULL DEFAULT 120
        CHECK (admission_window_seconds BETWEEN 10 AND 86400);

CREATE TABLE draws (
    launch_id    text PRIMARY KEY REFERENCES launches (id) ON DELETE CASCADE,
    seed_hash    text NOT NULL,          -- sha256(seed), published at commit
    seed         bytea NOT NULL,         -- secret until revealed
    roster       text[] NOT NULL,        -- public ids verified at commit, sorted
    roster_hash  text NOT NULL,          -- sha256 of the roster, published at commit
    committed_at timestamptz NOT NULL DEFAULT now(),
    revealed_at  timestamptz,
    entrants     integer,
    drawn        bigint[]                -- registration ids in drawn order (rank = index)
);
