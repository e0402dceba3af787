-- Public pre-registration: a cap per launch, phone de-duplication, preferred store,
-- and the lottery's outcome per registration.

ALTER TABLE launches
    ADD COLUMN registration_cap integer CHECK (registration_cap > 0),
    ADD COLUMN lottery_size     integer CHECK (lottery_size > 0);

ALTER TABLE registrations
    ADD COLUMN phone_norm      text,
    ADD COLUMN preferred_store text,
    ADD COLUMN draw_status     text CHECK (draw_status IN ('invited', 'waitlisted'));

CREATE UNIQUE INDEX registrations_one_per_phone
    ON registrations (launch_id, phone_norm) WHERE phone_norm IS NOT NULL;
