-- fairdrop core schema: launches, stock as unit rows, registrations, reservations,
-- events (the audit trail), outbox, API keys.

CREATE TABLE launches (
    id                     text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    state                  text NOT NULL DEFAULT 'draft' CHECK (state IN (
                               'draft', 'registration_open', 'registration_closed',
                               'checkin_open', 'selling', 'sold_out', 'closed',
                               'pickup', 'archived')),
    paused                 boolean NOT NULL DEFAULT false,
    hold_seconds           integer NOT NULL DEFAULT 300 CHECK (hold_seconds BETWEEN 10 AND 86400),
    per_customer_limit     integer NOT NULL DEFAULT 1 CHECK (per_customer_limit BETWEEN 1 AND 16),
    fairness_mode          text NOT NULL DEFAULT 'prequeue-shuffle'
                               CHECK (fairness_mode IN ('prequeue-shuffle', 'fifo', 'lottery')),
    registration_opens_at  timestamptz,
    registration_closes_at timestamptz,
    checkin_opens_at       timestamptz,
    sale_starts_at         timestamptz,
    sale_ends_at           timestamptz,
    pickup_starts_at       timestamptz,
    pickup_ends_at         timestamptz,
    archive_at             timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE stores (
    launch_id text NOT NULL REFERENCES launches (id) ON DELETE CASCADE,
    id        text NOT NULL CHECK (id ~ '^[A-Za-z0-9_-]{1,40}$'),
    name      text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    PRIMARY KEY (launch_id, id)
);

CREATE TABLE skus (
    launch_id text NOT NULL REFERENCES launches (id) ON DELETE CASCADE,
    id        text NOT NULL CHECK (id ~ '^[A-Za-z0-9_-]{1,40}$'),
    name      text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    PRIMARY KEY (launch_id, id)
);

-- Every allocated unit is a row. The allocation of (store, sku) is the count of its
-- unit rows; there is no counter row that every confirm would have to lock.
CREATE TABLE units (
    launch_id text    NOT NULL,
    store_id  text    NOT NULL,
    sku_id    text    NOT NULL,
    unit_no   integer NOT NULL CHECK (unit_no >= 0),
    PRIMARY KEY (launch_id, store_id, sku_id, unit_no),
    FOREIGN KEY (launch_id, store_id) REFERENCES stores (launch_id, id) ON DELETE CASCADE,
    FOREIGN KEY (launch_id, sku_id) REFERENCES skus (launch_id, id) ON DELETE CASCADE
);

CREATE TABLE registrations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    launch_id   text NOT NULL REFERENCES launches (id) ON DELETE CASCADE,
    public_id   text NOT NULL UNIQUE,
    email       text NOT NULL,
    email_norm  text NOT NULL,
    name        text,
    phone       text,
    channel     text NOT NULL DEFAULT 'web',
    verified_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (launch_id, email_norm),
    UNIQUE (launch_id, id)
);

-- A live reservation (confirmed or collected) owns one unit and one of its customer's
-- limit slots. Both are unique among live reservations, so Postgres itself refuses
-- more live reservations than unit rows, and more per customer than slots.
CREATE TABLE reservations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    launch_id       text NOT NULL,
    hold_id         text NOT NULL,
    registration_id bigint NOT NULL,
    store_id        text NOT NULL,
    sku_id          text NOT NULL,
    unit_no         integer,
    slot            smallint CHECK (slot >= 0),
    code            text NOT NULL,
    status          text NOT NULL DEFAULT 'confirmed'
                        CHECK (status IN ('confirmed', 'collected', 'cancelled', 'released')),
    channel         text NOT NULL,
    released_unit   integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    collected_at    timestamptz,
    collected_by    text,
    cancelled_at    timestamptz,
    UNIQUE (launch_id, hold_id),
    UNIQUE (launch_id, code),
    FOREIGN KEY (launch_id, registration_id) REFERENCES registrations (launch_id, id),
    -- No ON DELETE action: a unit with a live reservation can never be removed.
    FOREIGN KEY (launch_id, store_id, sku_id, unit_no)
        REFERENCES units (launch_id, store_id, sku_id, unit_no),
    CHECK ((status IN ('confirmed', 'collected')) = (unit_no IS NOT NULL AND slot IS NOT NULL))
);

-- NULLs are distinct, so these bind live reservations only.
CREATE UNIQUE INDEX reservations_one_per_unit
    ON reservations (launch_id, store_id, sku_id, unit_no);
CREATE UNIQUE INDEX reservations_one_per_slot
    ON reservations (launch_id, registration_id, slot);
CREATE INDEX reservations_by_registration ON reservations (registration_id);

-- The audit trail: every change of state, who made it, through which channel.
CREATE TABLE events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    launch_id text,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    channel   text NOT NULL,
    kind      text NOT NULL,
    subject   text,
    data      jsonb NOT NULL DEFAULT '{}'::jsonb,
    source_id text UNIQUE
);
CREATE INDEX events_by_launch ON events (launch_id, id);
CREATE INDEX events_by_subject ON events (subject);

-- Changes committed here that must reach Redis (or SMTP) afterwards.
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    launch_id    text,
    topic        text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    processed_at timestamptz,
    last_error   text
);
CREATE INDEX outbox_pending ON outbox (id) WHERE processed_at IS NULL;

CREATE TABLE api_keys (
    id          text PRIMARY KEY,
    secret_hash bytea NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'operator', 'staff', 'agent')),
    store_id    text,
    launch_id   text,
    label       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK ((role = 'staff') = (store_id IS NOT NULL))
);
