"""Aged receivables from the billing core, as they stood on an as-of date.

What an invoice owed on that date is its total less the allocations (payments, credit notes)
dated on or before it; unapplied credit is what payments received and credit notes issued by
then had not yet been applied or refunded. Void invoices are left out (an invoice is voided
only while nothing was paid or credited on it). The figures come from the billing core alone,
so they are the same whatever the accounting target. A handful of queries, whatever the
number of invoices: documents, then allocations, then payments, then customer names.

:func:`past_due_invoices` lists the invoices themselves with the collections step each had
reached by the as-of date (:mod:`connector.sync.dunning`) and whether a dispute was open then.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import Session

from connector.billing.aging import Credit, CurrencyAging, OpenInvoice, age
from connector.billing.invoicing import DocumentKind
from connector.billing.money import ZERO
from connector.billing.payments import InvoiceStatus, PaymentKind
from connector.db import tables
from connector.db.documents import CREDIT_NOTE_ISSUED

Allocation = tables.Allocation
Document = tables.Document
Payment = tables.Payment


def _allocated(
    session: Session, column: Any, among: Select[Any], as_of: date
) -> dict[int, Decimal]:
    """Sum of the allocations dated by ``as_of`` per id in ``column`` (their target or their
    source), for the ids ``among`` selects."""
    totals: dict[int, Decimal] = defaultdict(lambda: ZERO)
    rows = session.execute(
        select(column, Allocation.amount).where(
            column.in_(among.scalar_subquery()), Allocation.allocated_on <= as_of
        )
    )
    for key, amount in rows:
        totals[key] += amount
    return totals


def _open_invoices(session: Session, as_of: date) -> list[OpenInvoice]:
    return [
        OpenInvoice(row.customer_id, row.currency, row.due_date, owed)
        for row, owed in _owing(session, as_of)
    ]


def _owing(session: Session, as_of: date) -> list[tuple[Any, Decimal]]:
    """Invoices issued by ``as_of`` that may have owed something then (open now, or settled
    by an allocation dated after it), with what they owed then."""
    settled_later = exists().where(
        Allocation.invoice_id == Document.id, Allocation.allocated_on > as_of
    )
    conditions = (
        Document.kind == DocumentKind.INVOICE.value,
        Document.status != InvoiceStatus.VOID.value,
        Document.issue_date <= as_of,
        or_(Document.status == InvoiceStatus.OPEN.value, settled_later),
    )
    columns = (Document.customer_id, Document.currency, Document.due_date, Document.total)
    rows = session.execute(select(Document.id, Document.number, *columns).where(*conditions))
    applied = _allocated(
        session, Allocation.invoice_id, select(Document.id).where(*conditions), as_of
    )
    return [(row, row.total - applied[row.id]) for row in rows.all()]


def _credits(session: Session, as_of: date) -> list[Credit]:
    """Payments received and credit notes issued by ``as_of`` with credit left then: unapplied
    now, or applied or refunded by an allocation dated after it."""
    payment_used_later = exists().where(
        Allocation.payment_id == Payment.id, Allocation.allocated_on > as_of
    )
    payment_conditions = (
        Payment.kind == PaymentKind.PAYMENT.value,
        Payment.received_on <= as_of,
        or_(Payment.unapplied.is_not(None), payment_used_later),
    )
    note_used_later = exists().where(
        Allocation.credit_note_id == Document.id, Allocation.allocated_on > as_of
    )
    note_conditions = (
        Document.kind == DocumentKind.CREDIT_NOTE.value,
        Document.status == CREDIT_NOTE_ISSUED,
        Document.issue_date <= as_of,
        or_(Document.unapplied.is_not(None), note_used_later),
    )
    payments = session.execute(
        select(Payment.id, Payment.customer_id, Payment.currency, Payment.amount).where(
            *payment_conditions
        )
    ).all()
    notes = session.execute(
        select(Document.id, Document.customer_id, Document.currency, Document.total).where(
            *note_conditions
        )
    ).all()
    paid_out = _allocated(
        session, Allocation.payment_id, select(Payment.id).where(*payment_conditions), as_of
    )
    credited = _allocated(
        session, Allocation.credit_note_id, select(Document.id).where(*note_conditions), as_of
    )
    return [
        Credit(row.customer_id, row.currency, row.amount - paid_out[row.id]) for row in payments
    ] + [Credit(row.customer_id, row.currency, row.total - credited[row.id]) for row in notes]


def aged_receivables(session: Session, as_of: date) -> list[CurrencyAging]:
    """The aged receivables report on ``as_of`` (see :mod:`connector.billing.aging`)."""
    invoices = _open_invoices(session, as_of)
    credits = _credits(session, as_of)
    owing = {line.customer_id for line in invoices} | {line.customer_id for line in credits}
    names = {
        customer_id: name
        for customer_id, name in session.execute(select(tables.Customer.id, tables.Customer.name))
        if customer_id in owing
    }
    return age(invoices, credits, names, as_of)


@dataclass(frozen=True)
class PastDueInvoice:
    """An invoice that owed something on the as-of date and was past due or had reached a
    collections step by then."""

    number: str
    customer: str
    currency: str
    due_date: date
    days_past_due: int
    owed: Decimal
    step: str | None  # the latest collections step taken by the as-of date
    disputed: bool  # a dispute was open at the end of the as-of date


def past_due_invoices(session: Session, as_of: date) -> list[PastDueInvoice]:
    """The invoices owing on ``as_of`` that were past due or had reached a collections step,
    most overdue first (a handful of queries)."""
    owing = [(row, owed) for row, owed in _owing(session, as_of) if owed > 0]
    ids = [row.id for row, _ in owing]
    steps: dict[int, str] = {}
    step = tables.DunningStep
    for document_id, name in session.execute(
        select(step.document_id, step.step)
        .where(step.document_id.in_(ids), step.state == "taken", step.reached_on <= as_of)
        .order_by(step.reached_on, step.id)
    ):
        steps[document_id] = name
    day_end = datetime.combine(as_of + timedelta(days=1), time(), UTC)
    dispute = tables.Dispute
    disputed = set(
        session.scalars(
            select(dispute.document_id).where(
                dispute.document_id.in_(ids),
                dispute.opened_at < day_end,
                or_(dispute.resolved_at.is_(None), dispute.resolved_at >= day_end),
            )
        )
    )
    names = dict(
        session.execute(
            select(tables.Customer.id, tables.Customer.name).where(
                tables.Customer.id.in_({row.customer_id for row, _ in owing})
            )
        ).all()
    )
    lines = [
        PastDueInvoice(
            row.number,
            names.get(row.customer_id, f"customer {row.customer_id}"),
            row.currency,
            row.due_date,
            (as_of - row.due_date).days,
            owed,
            steps.get(row.id),
            row.id in disputed,
        )
        for row, owed in owing
        if row.due_date < as_of or row.id in steps or row.id in disputed
    ]
    return sorted(lines, key=lambda line: (-line.days_past_due, line.number))
