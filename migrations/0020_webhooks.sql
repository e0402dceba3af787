-- Webhooks: endpoints that a launch's operators register for other systems, and a
-- durable queue of signed deliveries to them (service/webhooks).
--
-- Every webhook comes from a row of the audit trail. A trigger notes each new event of
-- a launch that has endpoints in webhook_inbox, in the transaction that wrote the event,
-- so nothing is announced that did not commit and nothing committed is missed; the
-- sweeper turns the inbox into deliveries (one per endpoint subscribed to the type).

CREATE TABLE webhook_endpoints (
    id              text PRIMARY KEY,
    launch_id       text NOT NULL REFERENCES launches (id) ON DELETE CASCADE,
    url             text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
    events          text[] NOT NULL CHECK (cardinality(events) > 0),
    secret          text NOT NULL,
    -- After a rotation the previous secret signs too, until previous_until.
    previous_secret text,
    previous_until  timestamptz,
    enabled         boolean NOT NULL DEFAULT true,
    disabled_at     timestamptz,
    disabled_reason text,
    -- Rounds in a row in which no delivery got through, and when the next may start.
    failures        integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    retry_at        timestamptz NOT NULL DEFAULT '-infinity',
    -- Events up to this id happened before the endpoint existed; they are not sent.
    after_event     bigint NOT NULL DEFAULT 0,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_by_launch ON webhook_endpoints (launch_id);

-- Events not yet turned into deliveries.
CREATE TABLE webhook_inbox (event_id bigint PRIMARY KEY);

CREATE FUNCTION webhook_inbox_fill() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO webhook_inbox (event_id)
    SELECT n.id FROM new_events n
    WHERE n.launch_id IS NOT NULL
      AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.launch_id = n.launch_id);
    RETURN NULL;
END
$$;

-- Once per statement (a confirm batch or a drained list is one), not once per row.
CREATE TRIGGER events_to_webhooks AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_inbox_fill();

CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id      text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    message_id       text NOT NULL,  -- webhook-id: the same on every attempt and replay
    event_id         bigint NOT NULL,
    type             text NOT NULL,
    order_key        text NOT NULL,  -- deliveries sharing it go out one after another
    payload          text NOT NULL,  -- the exact body that is signed
    status           text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    last_attempt_at  timestamptz,
    last_status      integer,
    last_response_ms integer,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, message_id)
);
-- Due deliveries, looked up per endpoint that may be sent to (a disabled or backing-off
-- endpoint's backlog is never scanned).
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at, id)
    WHERE status = 'pending';
-- What a delivery waits for: an earlier one of its endpoint and order key not yet through.
CREATE INDEX webhook_deliveries_open ON webhook_deliveries (endpoint_id, order_key, event_id, id)
    WHERE status <> 'delivered';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, id);
