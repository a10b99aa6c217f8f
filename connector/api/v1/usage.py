"""Metered usage in: ``POST /v1/usage-events`` takes a batch of usage events, answering each on
its own (what comes out of them: :mod:`connector.api.v1.upcoming`).

A batch is stored by the same code as ``connector usage import`` (one transaction, a few
statements whatever its size). Each event's ``transaction_id`` makes it count once, so this
write takes no ``Idempotency-Key``: a batch sent again (after a timeout, say) answers
*duplicate* for what was stored the first time and stores the rest; nothing is kept of the
answer, which a stored key would have to replay."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field, WithJsonSchema

from connector.api.auth import WriteKey, instance_of
from connector.api.v1.schemas import PROBLEMS, Model
from connector.db.types import utc_now
from connector.sync.usage_events import Limits, Outcome, ingest_batch
from connector.sync.usage_mapping import usage_mapping_of

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
