"""Disputes: a customer contests an invoice, and collections pause until it is resolved.

A dispute is opened on an open invoice with a reason, and resolved later; both moments are
kept (a history of disputes per invoice; at most one open). While one is open the invoice
reaches no step of the collections schedule (:mod:`connector.sync.dunning`), its record in
Salesforce shows it (``Disputed__c``, ``Dispute_Reason__c``), and an escalation it had set on
its account no longer counts. Once resolved, the schedule resumes with the latest step due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.billing.invoicing import DocumentKind
from connector.billing.payments import InvoiceStatus
from connector.db import tables
from connector.db import writeback_queue as queue
from connector.db.documents import find_document
from connector.db.types import utc_now
from connector.errors import InvalidInputError

MAX_REASON = 1000


@dataclass(frozen=True)
class DisputeView:
    number: str
    reason: str
    opened_at: datetime
    resolved_at: datetime | None


def _invoice(session: Session, number: str) -> tables.Document:
    document = find_document(session, number)
    if document.kind != DocumentKind.INVOICE.value:
        raise InvalidInputError(f"{number} is a credit note: only an invoice can be disputed")
    return document


def _open(session: Session, document_id: int) -> tables.Dispute | None:
    return session.scalar(
        select(tables.Dispute).where(
            tables.Dispute.document_id == document_id, tables.Dispute.resolved_at.is_(None)
        )
    )


def open_dispute(
    session: Session, number: str, reason: str, now: datetime | None = None
) -> DisputeView:
    """Open a dispute of invoice ``number``; its collections pause."""
    reason = reason.strip()
    if not reason:
        raise InvalidInputError("give the reason of the dispute (--reason TEXT)")
    if len(reason) > MAX_REASON:
        raise InvalidInputError(f"the reason is longer than {MAX_REASON} characters")
    invoice = _invoice(session, number)
    if invoice.status != InvoiceStatus.OPEN.value:
        raise InvalidInputError(
            f"invoice {number} is {invoice.status}: only an open invoice can be disputed"
        )
    found = _open(session, invoice.id)
    if found is not None:
        raise InvalidInputError(
            f"invoice {number} is already disputed since "
            f"{found.opened_at.isoformat(timespec='seconds')}: {found.reason}"
        )
    dispute = tables.Dispute(document_id=invoice.id, reason=reason, opened_at=now or utc_now())
    session.add(dispute)
    session.flush()
    queue.mark(session, queue.DOCUMENT, [invoice.id])
    return DisputeView(number, reason, dispute.opened_at, None)


def resolve_dispute(session: Session, number: str, now: datetime | None = None) -> DisputeView:
    """Resolve the open dispute of invoice ``number``; its collections resume."""
    invoice = _invoice(session, number)
    found = _open(session, invoice.id)
    if found is None:
        raise InvalidInputError(f"invoice {number} has no open dispute")
    found.resolved_at = now or utc_now()
    session.flush()
    queue.mark(session, queue.DOCUMENT, [invoice.id])
    return DisputeView(number, found.reason, found.opened_at, found.resolved_at)


def disputed(session: Session, document_ids: list[int]) -> dict[int, str]:
    """The open disputes of these documents, with their reasons (one query)."""
    return dict(
        session.execute(
            select(tables.Dispute.document_id, tables.Dispute.reason).where(
                tables.Dispute.document_id.in_(document_ids),
                tables.Dispute.resolved_at.is_(None),
            )
        ).all()
    )
