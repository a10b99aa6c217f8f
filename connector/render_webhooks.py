"""Webhooks as the command line shows them: the endpoints (``connector webhook list`` and
``connector status``) and the latest deliveries (``connector webhook deliveries``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    from connector.sync.webhook_status import DeliveryRow, WebhookState
    from connector.webhooks.endpoints import EndpointInfo

STATES = ("pending", "failing", "delivered", "failed", "disabled")


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


def webhook_table(state: WebhookState) -> Table:
    """Each endpoint with its deliveries per state (``failing``: pending after a refusal)."""
    table = Table(title="Webhook endpoints")
    for column in ("Id", "URL", "Enabled", *(name.capitalize() for name in STATES)):
        table.add_column(column, overflow="fold")
    for endpoint in state.endpoints:
        table.add_row(
            str(endpoint.id),
            endpoint.url,
            "yes" if endpoint.enabled else f"no: {endpoint.disabled_reason}",
            *(str(endpoint.counts.get(name, 0)) for name in STATES),
        )
    return table


def endpoint_table(endpoints: Sequence[EndpointInfo]) -> Table:
    table = Table(title="Webhook endpoints")
    for column in ("Id", "URL", "Events", "Enabled", "Created", "Deliveries"):
        table.add_column(column, overflow="fold")
    for endpoint in endpoints:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(endpoint.deliveries.items()))
        table.add_row(
            str(endpoint.id),
            endpoint.url,
            ", ".join(endpoint.events),
            "yes" if endpoint.enabled else f"no: {endpoint.disabled_reason}",
            _when(endpoint.created_at),
            counts or "none",
        )
    return table


def delivery_table(deliveries: Sequence[DeliveryRow]) -> Table:
    table = Table(title="Webhook deliveries (newest first)")
    columns = ("Id", "Endpoint", "Event", "Type", "State", "Tries", "Last answer", "Next try")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in deliveries:
        answer = row.last_error or (str(row.last_status) if row.last_status else "")
        table.add_row(
            str(row.id),
            str(row.endpoint_id),
            row.webhook_id,
            row.type,
            row.state,
            str(row.attempts),
            answer,
            _when(row.next_attempt_at) if row.state == "pending" else "",
        )
    return table
