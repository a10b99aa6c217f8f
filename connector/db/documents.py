"""Invoices and credit notes in storage: gapless numbering, writing drafts, billed state."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connector.billing.charges import Charge
from connector.billing.invoicing import DocumentDraft, DocumentKind, InvoicedLine
from connector.billing.money import ZERO
from connector.billing.payments import InvoiceStatus
from connector.billing.periods import ONE_DAY, Period
from connector.billing.tax import CreditedTax
from connector.db import tables
from connector.db.bulk import bulk_insert, reserve_ids
from connector.db.types import utc_now
from connector.errors import NotFoundError

CREDIT_NOTE_ISSUED = "issued"


def format_number(prefix: str, value: int, digits: int) -> str:
    return f"{prefix}{value:0{digits}d}"


def allocate_numbers(session: Session, series: str, count: int) -> int:
    """Reserve ``count`` consecutive numbers of ``series`` and return the first. The reservation
    commits or rolls back with the documents that use it, so numbers never have gaps."""
    table = tables.table_of(tables.NumberSeries)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    session.execute(
        dialect.insert(table).values(name=series, next_value=1).on_conflict_do_nothing()
    )
    after = session.execute(
        update(table)
        .where(table.c.name == series)
        .values(next_value=table.c.next_value + count)
        .returning(table.c.next_value)
    ).scalar_one()
    return after - count


@dataclass
class BilledState:
    """Past billing of one subscription from some day on: net amounts per (item, key date) and
    the invoice lines a credit may still correct."""

    billed: dict[tuple[str, date], Decimal] = field(default_factory=dict)
    invoiced: list[InvoicedLine] = field(default_factory=list)
    revisions: dict[tuple[str, date], int] = field(default_factory=dict)  # the last charged

    def revision_of(self, key: tuple[str, date], current: int) -> int:
        """The revision a new charge of ``key`` takes: the subscription's ``current`` one, or
        the next after the last charged when that is as recent (late usage billed again
        without a change to the contract)."""
        last = self.revisions.get(key)
        return current if last is None or last < current else last + 1


def load_billed(session: Session, since: dict[int, date]) -> dict[int, BilledState]:
    """Billed state per subscription id, for charges keyed on or after its date."""
    if not since:
        return {}
    line, doc, charge, item = (
        tables.DocumentLine,
        tables.Document,
        tables.Charge,
        tables.SubscriptionItem,
    )
    rows = session.execute(
        select(
            doc.subscription_id,
            doc.kind,
            line.id,
            line.document_id,
            line.amount,
            line.credited_amount,
            line.tax_rate,
            item.item_key,
            charge.period_start,
            charge.revision,
            doc.period_start.label("doc_start"),
            doc.period_end.label("doc_end"),
        )
        .join(doc, doc.id == line.document_id)
        .join(charge, charge.id == line.charge_id)
        .join(item, item.id == charge.subscription_item_id)
        .where(doc.subscription_id.in_(list(since)), doc.status != InvoiceStatus.VOID.value)
    ).all()
    states: dict[int, BilledState] = defaultdict(BilledState)
    for r in rows:
        if r.period_start < since[r.subscription_id]:
            continue
        state = states[r.subscription_id]
        key = (r.item_key, r.period_start)
        state.revisions[key] = max(r.revision, state.revisions.get(key, r.revision))
        if r.kind == DocumentKind.INVOICE:
            state.billed[key] = state.billed.get(key, ZERO) + r.amount
            state.invoiced.append(
                InvoicedLine(
                    line_id=r.id,
                    invoice_id=r.document_id,
                    item_key=r.item_key,
                    key_date=r.period_start,
                    remaining=r.amount - r.credited_amount,
                    tax_rate=r.tax_rate,
                    period=Period(r.doc_start, r.doc_end),
                )
            )
        else:
            state.billed[key] = state.billed.get(key, ZERO) - r.amount
    return dict(states)


def load_tax_history(
    session: Session, invoice_ids: Iterable[int]
) -> dict[int, dict[Decimal, CreditedTax]]:
    """Per invoice and rate: what the invoice taxed, where and how, and what its credit notes
    took back."""
    ids = sorted(set(invoice_ids))
    if not ids:
        return {}
    doc, tax = tables.Document, tables.DocumentTax
    history: dict[int, dict[Decimal, CreditedTax]] = defaultdict(dict)
    for invoice_id, rate, taxable, amount, jurisdiction, reverse_charge in session.execute(
        select(
            tax.document_id, tax.rate, tax.taxable, tax.tax, tax.jurisdiction, tax.reverse_charge
        ).where(tax.document_id.in_(ids))
    ):
        history[invoice_id][rate] = CreditedTax(
            taxable, amount, jurisdiction=jurisdiction, reverse_charge=reverse_charge
        )
    credited = session.execute(
        select(doc.invoice_id, tax.rate, tax.taxable, tax.tax)
        .join(tax, tax.document_id == doc.id)
        .where(
            doc.invoice_id.in_(ids),
            doc.kind == DocumentKind.CREDIT_NOTE.value,
            doc.status != InvoiceStatus.VOID.value,
        )
    )
    for credited_id, rate, taxable, amount in credited:
        past = history[credited_id].get(rate) if credited_id is not None else None
        if credited_id is not None and past is not None:
            history[credited_id][rate] = replace(
                past,
                credited_taxable=past.credited_taxable + taxable,
                credited_tax=past.credited_tax + amount,
            )
    return dict(history)


@dataclass(frozen=True, slots=True)
class IssuedDocument:
    id: int
    number: str
    draft: DocumentDraft
    customer_id: int
    subscription_id: int | None


def insert_charges(session: Session, charges: Sequence[tuple[Charge, int]]) -> dict[int, int]:
    """Insert ``(charge, revision)`` pairs; returns charge row ids by ``id(charge)``. The unique
    constraint on item, period and revision refuses a charge that was already made."""
    table = tables.table_of(tables.Charge)
    ids = reserve_ids(session, table, len(charges))
    if charges:
        bulk_insert(
            session,
            table,
            [
                {
                    "id": row_id,
                    "subscription_item_id": charge.item.id,
                    "period_start": charge.key_date,
                    "revision": revision,
                    "amount": charge.amount,
                }
                for (charge, revision), row_id in zip(charges, ids, strict=True)
            ],
        )
    return {id(charge): row_id for (charge, _), row_id in zip(charges, ids, strict=True)}


def insert_documents(
    session: Session,
    documents: Sequence[tuple[DocumentDraft, int, int | None, str]],
    charge_ids: dict[int, int],
) -> list[IssuedDocument]:
    """Insert ``(draft, customer id, subscription id, number)`` with lines and taxes. A line
    whose charge has no row in ``charge_ids`` (a credit note issued by hand: no billing run
    decided it, so reconciliation leaves it be) has no charge id."""
    if not documents:
        return []
    doc_table = tables.table_of(tables.Document)
    now = utc_now()
    revenue_from = _credit_revenue_from(session, [draft for draft, *_ in documents])
    issued = [
        IssuedDocument(doc_id, number, draft, customer_id, subscription_id)
        for (draft, customer_id, subscription_id, number), doc_id in zip(
            documents, reserve_ids(session, doc_table, len(documents)), strict=True
        )
    ]
    bulk_insert(
        session,
        doc_table,
        [
            {
                "id": doc.id,
                "kind": doc.draft.kind.value,
                "number": doc.number,
                "customer_id": doc.customer_id,
                "subscription_id": doc.subscription_id,
                "invoice_id": doc.draft.credited_invoice_id,
                "currency": doc.draft.currency.code,
                "issue_date": doc.draft.issue_date,
                "due_date": doc.draft.due_date,
                "period_start": doc.draft.period.start,
                "period_end": doc.draft.period.end,
                "subtotal": doc.draft.subtotal,
                "tax_total": doc.draft.tax_total,
                "total": doc.draft.total,
                "amount_paid": ZERO,
                "amount_credited": ZERO,
                "unapplied": None,
                "status": InvoiceStatus.OPEN.value
                if doc.draft.kind is DocumentKind.INVOICE
                else CREDIT_NOTE_ISSUED,
                "revenue_from": revenue_from.get(doc.draft.credited_invoice_id or 0),
                "created_at": now,
                "tax_note": doc.draft.tax_note,
                "version": 1,
            }
            for doc in issued
        ],
    )
    bulk_insert(
        session,
        tables.table_of(tables.DocumentLine),
        [
            {
                "document_id": doc.id,
                "charge_id": charge_ids.get(id(line.charge)),
                "subscription_item_id": line.charge.item.id,
                "product_id": line.charge.item.product.id,
                "kind": line.charge.item.kind.value,
                "description": (line.description or line.charge.description)[:500],
                "quantity": line.charge.quantity if line.quantity is None else line.quantity,
                "discount_percent": line.charge.discount_percent,
                "service_start": (line.service or line.charge.service).start,
                "service_end": (line.service or line.charge.service).end,
                "amount": line.amount,
                "tax_rate": line.tax_rate,
                "credited_line_id": line.credited_line_id,
                "credited_amount": ZERO,
                "recognized": ZERO,
            }
            for doc in issued
            for line in doc.draft.lines
        ],
    )
    bulk_insert(
        session,
        tables.table_of(tables.DocumentTax),
        [
            {
                "document_id": doc.id,
                "rate": tax.rate,
                "taxable": tax.taxable,
                "tax": tax.tax,
                "jurisdiction": tax.jurisdiction,
                "reverse_charge": tax.reverse_charge,
            }
            for doc in issued
            for tax in doc.draft.taxes
        ],
    )
    return issued


def _credit_revenue_from(session: Session, drafts: Sequence[DocumentDraft]) -> dict[int, date]:
    """Per credited invoice, the day after its revenue journaled so far: a credit note takes
    back the days before at once, and journals the rest on the same days as its invoice."""
    invoice_ids = {d.credited_invoice_id for d in drafts if d.credited_invoice_id is not None}
    if not invoice_ids:
        return {}
    progress = tables.RevenueProgress
    return {
        row.document_id: row.recognized_through + ONE_DAY
        for row in session.execute(
            select(progress.document_id, progress.recognized_through).where(
                progress.document_id.in_(invoice_ids)
            )
        )
    }


def record_credited_lines(session: Session, credit_notes: Iterable[IssuedDocument]) -> None:
    """Add each credit note line to the credited amount of the invoice line it corrects."""
    credited: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for doc in credit_notes:
        for line in doc.draft.lines:
            if line.credited_line_id is not None:
                credited[line.credited_line_id] += line.amount
    if not credited:
        return
    rows = session.execute(
        select(tables.DocumentLine.id, tables.DocumentLine.credited_amount).where(
            tables.DocumentLine.id.in_(list(credited))
        )
    ).all()
    session.execute(
        update(tables.DocumentLine),
        [{"id": r.id, "credited_amount": r.credited_amount + credited[r.id]} for r in rows],
    )


def find_document(
    session: Session, number: str, kind: DocumentKind | None = None
) -> tables.Document:
    query = select(tables.Document).where(tables.Document.number == number)
    if kind is not None:
        query = query.where(tables.Document.kind == kind.value)
    row = session.scalar(query)
    if row is None:
        what = "invoice" if kind is DocumentKind.INVOICE else "document"
        raise NotFoundError(f"unknown {what} {number!r}")
    return row


def last_issue_date(session: Session) -> date | None:
    return session.scalar(select(func.max(tables.Document.issue_date)))
