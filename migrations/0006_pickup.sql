-- Pickup windows and no-show release. A reservation is collected within its launch's
-- pickup window; an agent may extend the end for one reservation (never shorten it:
-- the end in force is the later of the two). A reservation still confirmed when its
-- window ends is released as a no-show: its unit and limit slot go back.

ALTER TABLE reservations
    ADD COLUMN pickup_ends_at timestamptz,
    ADD COLUMN released_at    timestamptz,
    DROP CONSTRAINT reservations_status_check,
    ADD CONSTRAINT reservations_status_check
        CHECK (status IN ('confirmed', 'collected', 'cancelled', 'released', 'no_show'));

-- What the no-show sweep and the pickup lists look through: the uncollected ones.
CREATE INDEX reservations_awaiting_pickup ON reservations (launch_id, store_id)
    WHERE status = 'confirmed';
