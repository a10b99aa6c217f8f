"""Metered usage: ``POST /v1/usage-events`` takes a batch of usage events, answering each on its
own; ``GET /v1/customers/{id}/upcoming-invoice`` is what ``connector usage show --json`` says.

A batch is stored by the same code as ``connector usage import`` (one transaction, a few
statements whatever its size). Each event's ``transaction_id`` makes it count once, so this
write takes no ``Idempotency-Key``: a batch sent again (after a timeout, say) answers
*duplicate* for what was stored the first time and stores the rest; nothing is kept of the
answer, which a stored key would have to replay."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field, WithJsonSchema

from connector.api.auth import ReadKey, WriteKey, instance_of
from connector.api.v1.schemas import PROBLEMS, DecimalText, Model, Money
from connector.db.types import utc_now
from connector.sync.usage_events import Limits, Outcome, ingest_batch
from connector.sync.usage_mapping import usage_mapping_of
from connector.sync.usage_report import current_usage

router = APIRouter(tags=["usage"], responses=PROBLEMS)
MAX_EVENTS = 1000

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "UsageEvent",
    "description": "One usage event. An element that is not one is refused on its own, with "
    "its reason, in the answer (not by a 422 for the whole batch).",
    "properties": {
        "transaction_id": {
            "type": "string",
            "maxLength": 255,
            "description": "Yours, unique: the same id again is a duplicate, not counted.",
        },
        "customer": {
            "type": "string",
            "maxLength": 255,
            "description": "Our customer id or the customer's Salesforce Account Id.",
        },
        "metric": {"type": "string", "description": "A metric's code (mappings/usage.yaml)."},
        "timestamp": {
            "anyOf": [{"type": "string"}, {"type": "number"}],
            "description": "ISO 8601 with a time zone (2026-03-01T12:00:00Z) or Unix seconds.",
            "examples": ["2026-03-01T12:00:00Z"],
        },
        "properties": {
            "type": "object",
            "description": "The event's properties (numbers as JSON numbers or decimal strings).",
        },
    },
    "required": ["transaction_id", "customer", "metric", "timestamp"],
}


class UsageEvents(Model):
    events: list[Annotated[Any, WithJsonSchema(EVENT_SCHEMA)]] = Field(
        max_length=MAX_EVENTS, description=f"Up to {MAX_EVENTS:,} events, answered in order."
    )


class EventAnswer(Model):
    transaction_id: str | None = Field(description="The event's, when it has a readable one.")
    status: Literal["accepted", "duplicate", "refused"]
    reason: str | None = Field(default=None, description="Why it was refused (refused only).")


class UsageEventsAnswer(Model):
    accepted: int
    duplicates: int
    refused: int
    results: list[EventAnswer] = Field(description="One per event sent, in the same order.")


@router.post(
    "/usage-events",
    response_model=UsageEventsAnswer,
    summary="Send a batch of usage events",
)
def send_usage_events(request: Request, _key: WriteKey, body: UsageEvents) -> JSONResponse:
    """Each event is *accepted* (stored and counted), a *duplicate* (its transaction id was
    stored before, in this batch or an earlier one: acknowledged, not counted), or *refused*
    with its reason, the rest of the batch going on. The answer is 200 whatever each event's
    fate. No ``Idempotency-Key``: the transaction ids make sending the batch again safe."""
    instance = instance_of(request)
    usage = instance.settings.usage
    results = ingest_batch(
        instance.factory,
        usage_mapping_of(instance.settings).metrics,
        body.events,
        utc_now(),
        Limits.of(usage.max_future_seconds, usage.max_age_days),
    )
    counts = Counter(result.outcome for result in results)
    return JSONResponse(
        {
            "accepted": counts[Outcome.ACCEPTED],
            "duplicates": counts[Outcome.DUPLICATE],
            "refused": counts[Outcome.REFUSED],
            "results": [result.to_dict() for result in results],
        }
    )


class CustomerRef(Model):
    id: int
    name: str


class Window(Model):
    start: datetime
    end: datetime = Field(description="Exclusive: the first instant after the period.")


class UsageLine(Model):
    metric: str
    name: str
    aggregation: str
    group: str | None = Field(description="The value of the metric's group_by property.")
    quantity: DecimalText = Field(description="Measured up to `until`.")
    billable: DecimalText | None = Field(description="Less free units; null without a price.")
    amount: Money | None = Field(description="Null when the metric has no price.")


class Shortfall(Model):
    metric: str
    minimum: Money
    charged: Money
    amount: Money = Field(description="The minimum less what the metric charged.")


class UpcomingInvoice(Model):
    customer: CustomerRef
    currency: str
    period: Window
    until: datetime = Field(description="Quantities are those up to this instant.")
    usage: list[UsageLine]
    shortfalls: list[Shortfall]
    total: Money


@router.get(
    "/customers/{customer_id}/upcoming-invoice",
    response_model=UpcomingInvoice,
    summary="A customer's usage in the current period and its charges now",
)
def upcoming_invoice(
    request: Request,
    _key: ReadKey,
    customer_id: Annotated[
        str, Path(max_length=255, description="Our customer id or its Salesforce Account Id.")
    ],
) -> UpcomingInvoice:
    """The usage of the current period (the calendar month, UTC) per metric and group, up to
    the next whole hour, and the charges it would produce if the period ended now: what
    ``connector usage show CUSTOMER --json`` prints."""
    instance = instance_of(request)
    report = current_usage(instance.factory, instance.settings, customer_id, utc_now())
    return UpcomingInvoice.model_validate(report.to_dict())
