"""Webhook deliveries as ``connector status`` and ``connector webhook deliveries`` show them:
per endpoint, its deliveries per state and how many are failing now (pending after a refused
attempt); the latest deliveries with their last answer. What waits for a person: an endpoint
disabled (410 Gone), deliveries failed for good, deliveries failing now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.db import tables
from connector.sync.webhook_fanout import FAILED, PENDING, STATES

SHOWN = 50  # deliveries listed at most (newest first)
_delivery = tables.WebhookDelivery


@dataclass(frozen=True)
class EndpointState:
    id: int
    url: str
    enabled: bool
    disabled_reason: str | None
    counts: dict[str, int]  # per state, and "failing": pending after a refused attempt

    def attention(self) -> list[str]:
        lines = []
        if not self.enabled:
            why = self.disabled_reason
            lines.append(f"webhook endpoint {self.id} ({self.url}) is disabled: {why}")
        if failed := self.counts.get(FAILED, 0):
            lines.append(f"webhook endpoint {self.id}: {failed} deliveries failed")
        if failing := self.counts.get("failing", 0):
            lines.append(f"webhook endpoint {self.id}: {failing} deliveries failing (retried)")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "deliveries": dict(self.counts),
        }


@dataclass
class WebhookState:
    endpoints: list[EndpointState] = field(default_factory=list)

    def attention(self) -> list[str]:
        return [line for endpoint in self.endpoints for line in endpoint.attention()]

    def to_dict(self) -> dict[str, Any]:
        return {"endpoints": [endpoint.to_dict() for endpoint in self.endpoints]}


def webhook_state(session: Session) -> WebhookState | None:
    """Each endpoint with its deliveries counted (two queries); None without endpoints."""
    endpoints = session.execute(
        select(
            tables.WebhookEndpoint.id,
            tables.WebhookEndpoint.url,
            tables.WebhookEndpoint.enabled,
            tables.WebhookEndpoint.disabled_reason,
        ).order_by(tables.WebhookEndpoint.id)
    ).all()
    if not endpoints:
        return None
    failing = (_delivery.state == PENDING) & (_delivery.attempts > 0)
    counts: dict[int, dict[str, int]] = {}
    for endpoint_id, state, is_failing, count in session.execute(
        select(_delivery.endpoint_id, _delivery.state, failing, func.count()).group_by(
            _delivery.endpoint_id, _delivery.state, failing
        )
    ):
        found = counts.setdefault(endpoint_id, dict.fromkeys((*STATES, "failing"), 0))
        found[state] += count
        if is_failing:
            found["failing"] += count
    return WebhookState(
        [
            EndpointState(
                row.id,
                row.url,
                row.enabled,
                row.disabled_reason,
                counts.get(row.id, dict.fromkeys((*STATES, "failing"), 0)),
            )
            for row in endpoints
        ]
    )


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    endpoint_id: int
    webhook_id: str
    type: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint_id": self.endpoint_id,
            "webhook_id": self.webhook_id,
            "type": self.type,
            "state": self.state,
            "attempts": self.attempts,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "next_attempt_at": self.next_attempt_at,
            "delivered_at": self.delivered_at,
            "created_at": self.created_at,
        }


def recent_deliveries(
    session: Session, endpoint_id: int | None = None, limit: int = SHOWN
) -> list[DeliveryRow]:
    """The latest deliveries (of one endpoint, or all), newest first: one query."""
    event = tables.WebhookEvent
    query = (
        select(
            _delivery.id,
            _delivery.endpoint_id,
            event.webhook_id,
            event.type,
            _delivery.state,
            _delivery.attempts,
            _delivery.last_status,
            _delivery.last_error,
            _delivery.next_attempt_at,
            _delivery.delivered_at,
            _delivery.created_at,
        )
        .join(event, event.id == _delivery.event_id)
        .order_by(_delivery.id.desc())
        .limit(limit)
    )
    if endpoint_id is not None:
        query = query.where(_delivery.endpoint_id == endpoint_id)
    return [DeliveryRow(*row) for row in session.execute(query)]


def last_latencies(session: Session, delivery_ids: list[int]) -> dict[int, int]:
    """The latency (ms) of the latest attempt of each of ``delivery_ids``: one query."""
    if not delivery_ids:
        return {}
    attempt = tables.WebhookAttempt
    latest = (
        select(attempt.delivery_id, func.max(attempt.id).label("id"))
        .where(attempt.delivery_id.in_(delivery_ids))
        .group_by(attempt.delivery_id)
        .subquery()
    )
    rows = session.execute(
        select(attempt.delivery_id, attempt.latency_ms).join(latest, latest.c.id == attempt.id)
    )
    return {delivery_id: latency for delivery_id, latency in rows}
