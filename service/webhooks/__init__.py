"""Webhooks: other systems hear what fairdrop records, signed, at least once, in order.

- `payloads`: one versioned msgspec struct per event type (the OpenAPI `webhooks`
  section, `openapi`, is generated from them);
- `endpoints`: what operators register per launch (URL checked by `targets`, event
  types, a Standard Webhooks secret shown once), the delivery log, replay;
- `fanout`: every webhook comes from a committed audit-trail row (`events`): a trigger
  notes new events of launches with endpoints in the same transaction, and the sweeper
  turns them into one delivery per subscribed endpoint;
- `delivery`: the sweeper POSTs due deliveries (claimed with `FOR UPDATE SKIP LOCKED`
  and a lease), backs off, and disables an endpoint that keeps failing.
"""
