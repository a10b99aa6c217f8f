"""The mail outbox as ``connector status`` shows it: messages per state (pending, of which in
flight: an attempt whose outcome is not recorded yet; sent; parked; waiting), whether sending
is enabled, and each message that waits for a person: refused by the server (with its answer)
or waiting for its customer's billing address."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.db import tables
from connector.email import queue

SHOWN = 50  # messages listed per state at most (the counts are complete)


@dataclass(frozen=True)
class WaitingMessage:
    number: str
    kind: str
    customer: str
    state: str
    answer: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind,
            "customer": self.customer,
            "state": self.state,
            "answer": self.answer,
        }


@dataclass
class EmailState:
    enabled: bool
    counts: dict[str, int] = field(default_factory=dict)  # per state, and "in_flight"
    messages: list[WaitingMessage] = field(default_factory=list)  # parked, then waiting

    def attention(self) -> list[str]:
        lines = []
        if parked := self.counts.get(queue.PARKED, 0):
            lines.append(f"e-mail: {parked} messages refused by the mail server (see e-mail)")
        if waiting := self.counts.get(queue.WAITING, 0):
            lines.append(f"e-mail: {waiting} messages waiting for a customer's billing address")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "counts": dict(self.counts),
            "messages": [message.to_dict() for message in self.messages],
        }


def email_state(session: Session, enabled: bool) -> EmailState:
    """Counts per state (one query), and the parked and waiting messages (one query each)."""
    message = tables.EmailMessage
    counts = dict.fromkeys(queue.STATES, 0)
    for state, count in session.execute(
        select(message.state, func.count()).group_by(message.state)
    ):
        counts[state] = count
    counts["in_flight"] = (
        session.scalar(
            select(func.count())
            .select_from(message)
            .where(message.state == queue.PENDING, message.attempt_started_at.is_not(None))
        )
        or 0
    )
    found = EmailState(enabled, counts)
    for state in (queue.PARKED, queue.WAITING):
        rows = session.execute(
            select(tables.Document.number, message.kind, tables.Customer.name, message.answer)
            .join(tables.Document, tables.Document.id == message.document_id)
            .join(tables.Customer, tables.Customer.id == tables.Document.customer_id)
            .where(message.state == state)
            .order_by(message.id)
            .limit(SHOWN)
        )
        found.messages.extend(
            WaitingMessage(number, kind, customer, state, answer or "")
            for number, kind, customer, answer in rows
        )
    return found
