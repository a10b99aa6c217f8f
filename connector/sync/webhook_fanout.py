"""Fanning webhook events out: one delivery for each endpoint subscribed to an event's type
(an endpoint receives the events written since it was added), due at once. A batch of events
costs four statements: the events, the enabled endpoints, one insert of the deliveries (each
once per endpoint and event), one update marking the events fanned out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connector.db import tables
from connector.db.bulk import execute_many
from connector.db.types import utc_now

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
DISABLED = "disabled"
STATES = (PENDING, DELIVERED, FAILED, DISABLED)

_event = tables.WebhookEvent
_endpoint = tables.WebhookEndpoint


def fan_out(session: Session, limit: int) -> int:
    """Make the deliveries of the next ``limit`` events not fanned out yet; how many events."""
    events = session.execute(
        select(_event.id, _event.type, _event.ordering_key, _event.created_at)
        .where(_event.fanned_out.is_(False))
        .order_by(_event.id)
        .limit(limit)
    ).all()
    if not events:
        return 0
    endpoints = session.execute(
        select(_endpoint.id, _endpoint.events, _endpoint.created_at).where(
            _endpoint.enabled.is_(True)
        )
    ).all()
    now = utc_now()
    rows: list[dict[str, Any]] = [
        {
            "endpoint_id": endpoint.id,
            "event_id": event.id,
            "ordering_key": event.ordering_key,
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": event.created_at,
            "last_status": None,
            "last_error": None,
            "delivered_at": None,
            "created_at": now,
            "updated_at": now,
        }
        for event in events
        for endpoint in endpoints
        if event.type in endpoint.events and event.created_at >= endpoint.created_at
    ]
    if rows:
        table = tables.table_of(tables.WebhookDelivery)
        dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
        statement = (
            dialect.insert(table)
            .inline()
            .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
        )
        execute_many(session, statement, table, rows)
    session.execute(
        update(_event).where(_event.id.in_([event.id for event in events])).values(fanned_out=True)
    )
    return len(events)
