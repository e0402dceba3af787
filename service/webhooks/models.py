"""The webhook API's requests and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from service.webhooks.payloads import EventType

Subscription = EventType | Literal["*"]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Events = Annotated[list[Subscription], msgspec.Meta(min_length=1, max_length=32)]
DeliveryStatus = Literal["pending", "delivered", "failed"]


class EndpointCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: Url
    """Where to POST: https:// (or http://), a public address, no credentials in it."""
    events: Events
    """Event types to send, or `["*"]` for all of them (including types added later)."""


class EndpointUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: Url | msgspec.UnsetType = msgspec.UNSET
    events: Events | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    """Enable (again: the failure count starts over) or disable. A disabled endpoint
    keeps its queue: what happens meanwhile is sent, in order, once it is enabled."""


class RotateSecret(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    grace_seconds: Annotated[int, msgspec.Meta(ge=0, le=7 * 86400)] = 86400
    """How long the previous secret keeps signing beside the new one."""


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One event's delivery to one endpoint: its log line."""

    id: int
    message_id: str
    """The `webhook-id` it is sent with (the same on every attempt and replay)."""
    event_id: int
    type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    """When it is tried next (pending only)."""
    last_attempt_at: datetime | None
    last_status: int | None
    """The HTTP status the receiver last answered (null: no answer)."""
    last_response_ms: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryCounts(msgspec.Struct, frozen=True, kw_only=True):
    pending: int
    delivered: int
    failed: int


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    launch_id: str
    url: str
    events: list[str]
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    failures: int
    """Rounds in a row in which no delivery got through."""
    previous_secret_until: datetime | None
    """After a rotation: until when the previous secret still signs."""
    created_at: datetime
    counts: DeliveryCounts
    deliveries: list[Delivery]
    """The delivery log, newest first (the latest 20; `…/deliveries` pages through all)."""


class EndpointCreated(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    secret: str
    """`whsec_…`: shown once. Verify each delivery's signature with it."""
    endpoint: Endpoint


class SecretRotated(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    secret: str
    """The new secret, shown once; it signs every delivery from now on."""
    previous_secret_until: datetime | None
    """Until when the previous secret signs too (each delivery then carries both)."""


class DisabledEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    """For the dashboard: an endpoint that receives nothing until enabled again."""

    id: str
    url: str
    disabled_at: datetime | None
    reason: str
    pending: int
    """Deliveries waiting for it."""
