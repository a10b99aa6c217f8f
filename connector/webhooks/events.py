"""The events the connector announces, and how each is identified.

An event's id (the ``webhook-id`` header, ``evt_…``) is derived from what changed: its type,
its subject (``document:12``) and what tells successive events of that type and subject apart
(a document's version, a record's payload hash). The same change written twice is the same
event (stored once), and every delivery of it, retries included, carries the same id.

Its body is the Standard Webhooks payload: ``{"type", "timestamp", "data"}``, serialized once
(:func:`body`) the same way on every attempt.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CUSTOMER_CREATED = "customer.created"
SUBSCRIPTION_CREATED = "subscription.created"
SUBSCRIPTION_UPDATED = "subscription.updated"
SUBSCRIPTION_CANCELLED = "subscription.cancelled"
INVOICE_CREATED = "invoice.created"
INVOICE_PAID = "invoice.paid"
INVOICE_VOIDED = "invoice.voided"
INVOICE_OVERDUE = "invoice.overdue"
CREDIT_NOTE_CREATED = "credit_note.created"
PAYMENT_RECEIVED = "payment.received"
RECORD_WAITING = "record.waiting"
RECORD_RELEASED = "record.released"

TYPES = (
    CUSTOMER_CREATED,
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_UPDATED,
    SUBSCRIPTION_CANCELLED,
    INVOICE_CREATED,
    INVOICE_PAID,
    INVOICE_VOIDED,
    INVOICE_OVERDUE,
    CREDIT_NOTE_CREATED,
    PAYMENT_RECEIVED,
    RECORD_WAITING,
    RECORD_RELEASED,
)
ID_PREFIX = "evt_"


@dataclass(frozen=True)
class Event:
    """One change to announce. ``ordering_key`` names what its order is kept within: events
    of one key reach an endpoint in the order they were written (``customer:4``: everything
    about a customer, its subscriptions, documents and payments included)."""

    type: str
    subject: str
    ordering_key: str
    data: dict[str, Any] = field(hash=False)
    discriminator: str = ""

    @property
    def webhook_id(self) -> str:
        return event_id(self.type, self.subject, self.discriminator)


def event_id(event_type: str, subject: str, discriminator: str = "") -> str:
    """``evt_`` and 26 characters (130 bits) of the SHA-256 of what identifies the change."""
    digest = hashlib.sha256(f"{event_type}|{subject}|{discriminator}".encode()).digest()
    return ID_PREFIX + base64.b32encode(digest).decode("ascii")[:26].lower()


def timestamp(moment: datetime) -> str:
    """An event's time as its body gives it: UTC, ISO 8601, microseconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def payload(event: Event, created_at: datetime) -> dict[str, Any]:
    """The Standard Webhooks payload of ``event``: its type, its time and its data."""
    return {"type": event.type, "timestamp": timestamp(created_at), "data": event.data}


def body(stored: dict[str, Any]) -> bytes:
    """The bytes sent (and signed) for a stored payload: the same on every attempt."""
    return json.dumps(stored, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def parse_types(text: str) -> list[str]:
    """Event types from a comma-separated list; an unknown one is refused, naming the known
    ones. ``*`` stands for every type."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError("no event types given")
    if names == ["*"]:
        return list(TYPES)
    unknown = [name for name in names if name not in TYPES]
    if unknown:
        raise ValueError(
            f"unknown event type{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"known: {', '.join(TYPES)}"
        )
    return list(dict.fromkeys(names))
