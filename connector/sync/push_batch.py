"""The documents of a batch of outbox rows, as accounting targets take them, read set-based.

A batch costs a handful of queries whatever its size, read as plain rows (no ORM entities):

- the outbox rows (:func:`read_rows`), with the revenue journals and payments they name, the
  payments' customers and the day the books are closed through;
- the documents they need (:class:`Loader`): those posted, the sources of the journals, the
  invoices that payments pay and that credit notes credit, with their customers and taxes;
- the lines of the invoices, credit notes and voids, with their products;
- only when the batch has them: the products of its journals not seen yet in this push, the
  schedules of its credit notes' lines, the allocations of its credit notes and refunds (one
  query), those of its credit applied.

Each document is booked on the first open day when its own date is on or before the day the
books are closed through (:func:`connector.accounting.dating.book`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, and_, or_, select
from sqlalchemy.orm import Session

from connector.accounting import base, dating
from connector.accounting.base import document_key
from connector.billing.money import currency as currency_of
from connector.billing.periods import Period
from connector.billing.pricing import ChargeKind
from connector.billing.revenue import Schedule, scheduled
from connector.db import books, outbox, tables
from connector.sync import revenue_close

AnyRow = Row[*tuple[Any, ...]]
ZERO = Decimal(0)
INVOICE_TYPES = (base.INVOICE, base.CREDIT_NOTE, base.VOID)
PAYMENT_TYPES = (base.PAYMENT, base.REFUND, base.CREDIT_KEPT)

_outbox = tables.table_of(tables.Outbox)
_journal = tables.table_of(tables.RevenueJournal)
_payment = tables.table_of(tables.Payment)
_customer = tables.table_of(tables.Customer)
_document = tables.table_of(tables.Document)
_line = tables.table_of(tables.DocumentLine)
_tax = tables.table_of(tables.DocumentTax)
_product = tables.table_of(tables.Product)
_allocation = tables.table_of(tables.Allocation)


def read_rows(session: Session, target: str, limit: int, after: int = 0) -> Sequence[AnyRow]:
    """The next rows ``target`` has not received (:func:`connector.db.outbox.pending_query`),
    each with its journal (``journal_*``) or payment (``payment_*``, its customer as
    ``customer_*``), and ``closed_through``: one query."""
    journal, payment, customer = _journal, _payment, _customer
    query = (
        outbox.pending_query(target, limit, after)
        .add_columns(
            books.closed_through_query().label("closed_through"),
            journal.c.document_id.label("journal_source"),
            journal.c.kind.label("journal_kind"),
            journal.c.period_start.label("journal_start"),
            journal.c.period_end.label("journal_end"),
            journal.c.journal_date.label("journal_date"),
            journal.c.currency.label("journal_currency"),
            journal.c.amounts.label("journal_amounts"),
            payment.c.id.label("payment_id"),
            payment.c.customer_id.label("payment_customer"),
            payment.c.kind.label("payment_kind"),
            payment.c.currency.label("payment_currency"),
            payment.c.amount.label("payment_amount"),
            payment.c.received_on.label("payment_received_on"),
            payment.c.reference.label("payment_reference"),
            payment.c.invoice_id.label("payment_invoice"),
            payment.c.credit_kept.label("payment_credit_kept"),
            customer.c.name.label("customer_name"),
            customer.c.country.label("customer_country"),
            customer.c.currency.label("customer_currency"),
            customer.c.tax_id.label("customer_tax_id"),
        )
        .outerjoin(
            journal,
            and_(_outbox.c.document_type == base.REVENUE, journal.c.id == _outbox.c.document_id),
        )
        .outerjoin(
            payment,
            and_(_outbox.c.document_type.in_(PAYMENT_TYPES), payment.c.id == _outbox.c.document_id),
        )
        .outerjoin(customer, customer.c.id == payment.c.customer_id)
    )
    return session.execute(query).all()


def _customer_of(row: AnyRow, customer_id: int) -> base.Customer:
    return base.Customer(
        customer_id,
        row.customer_name,
        row.customer_country,
        row.customer_currency,
        row.customer_tax_id,
    )


@dataclass
class Products:
    """Product code and family per product id, read as needed and kept for a whole push."""

    known: dict[int, tuple[str, str | None]] = field(default_factory=dict)

    def need(self, session: Session, ids: Iterable[int]) -> None:
        """Read the products of ``ids`` not known yet (one query, none when all are known)."""
        missing = set(ids) - self.known.keys()
        if missing:
            for row in session.execute(
                select(_product.c.id, _product.c.code, _product.c.family).where(
                    _product.c.id.in_(missing)
                )
            ):
                self.known[row.id] = (row.code, row.family)

    def __getitem__(self, product_id: int) -> tuple[str, str | None]:
        return self.known[product_id]


@dataclass(frozen=True, slots=True)
class _Applied:
    """Customer credit applied to an invoice (an allocation), with what it needs to be sent."""

    id: int
    invoice_id: int
    invoice_number: str
    currency: str
    customer: base.Customer
    allocated_on: date
    amount: Decimal
    source_number: str | None  # the credit note it comes from
    reference: str | None  # the payment it comes from
    applied: Decimal  # what its source has applied to the invoice in all, through it


class Loader:
    """Builds the documents of a batch of outbox rows read by :func:`read_rows`, reading each
    table once per batch."""

    def __init__(
        self,
        session: Session,
        rows: Sequence[AnyRow],
        closed_through: date | None = None,
        products: Products | None = None,
    ) -> None:
        self.session = session
        self.closed_through = closed_through
        self.products = products if products is not None else Products()
        self.customers: dict[int, base.Customer] = {}
        self.documents: dict[int, AnyRow] = {}
        self.numbers: dict[int, str] = {}  # of documents read with allocations
        self.taxes: dict[int, list[base.Tax]] = defaultdict(list)
        self.lines: dict[int, list[AnyRow]] = defaultdict(list)
        self.applied_to: dict[int, dict[int, Decimal]] = {}  # credit note -> invoice -> amount
        self.refunded: dict[int, int] = {}  # refund -> the first credit note it pays out
        self.applied: dict[int, _Applied] = {}
        self.schedules: dict[int, Schedule] = {}
        by_type: dict[str, list[AnyRow]] = defaultdict(list)
        for row in rows:
            by_type[row.document_type].append(row)
        self._read_documents(by_type)
        self._read_lines(by_type)
        self.products.need(
            session,
            (
                revenue_close.parse_amount_key(key)[0]
                for row in by_type[base.REVENUE]
                for key in row.journal_amounts or {}
            ),
        )
        self._read_allocations(
            [row.document_id for row in by_type[base.CREDIT_NOTE]],
            [
                row.payment_id
                for kind in PAYMENT_TYPES
                for row in by_type[kind]
                if row.payment_kind == base.REFUND
            ],
        )
        self._read_applied([row.document_id for row in by_type[base.CREDIT_APPLIED]])

    # -- reads -----------------------------------------------------------------------------
    def _read_documents(self, by_type: dict[str, list[AnyRow]]) -> None:
        """The documents posted, the journals' sources, the invoices paid, and the invoices
        those credit: one query, with their customers and taxes."""
        doc, linked = _document, _document.alias("linked")
        wanted = {row.document_id for kind in INVOICE_TYPES for row in by_type[kind]}
        wanted |= {row.journal_source for row in by_type[base.REVENUE] if row.journal_source}
        paid = {
            row.payment_invoice
            for kind in PAYMENT_TYPES
            for row in by_type[kind]
            if row.payment_invoice is not None
        }
        if not wanted and not paid:
            return
        query = (
            select(
                doc.c.id,
                doc.c.kind,
                doc.c.number,
                doc.c.customer_id,
                doc.c.invoice_id,
                doc.c.currency,
                doc.c.issue_date,
                doc.c.due_date,
                doc.c.total,
                doc.c.credit_kept,
                doc.c.revenue_from,
                _customer.c.name.label("customer_name"),
                _customer.c.country.label("customer_country"),
                _customer.c.currency.label("customer_currency"),
                _customer.c.tax_id.label("customer_tax_id"),
                _tax.c.rate.label("tax_rate"),
                _tax.c.tax.label("tax_amount"),
                _tax.c.jurisdiction.label("tax_jurisdiction"),
                _tax.c.reverse_charge.label("tax_reverse_charge"),
            )
            .join(_customer, _customer.c.id == doc.c.customer_id)
            .outerjoin(_tax, _tax.c.document_id == doc.c.id)
            .where(
                or_(
                    doc.c.id.in_(wanted | paid),
                    doc.c.id.in_(select(linked.c.invoice_id).where(linked.c.id.in_(wanted))),
                )
            )
            .order_by(doc.c.id, _tax.c.rate)
        )
        for row in self.session.execute(query):
            if row.id not in self.documents:
                self.documents[row.id] = row
                self.customers[row.customer_id] = _customer_of(row, row.customer_id)
            if row.tax_rate is not None:
                self.taxes[row.id].append(
                    base.Tax(
                        row.tax_rate, row.tax_amount, row.tax_jurisdiction, row.tax_reverse_charge
                    )
                )

    def _read_lines(self, by_type: dict[str, list[AnyRow]]) -> None:
        """The lines of the invoices, credit notes and voids, with their products; the
        schedules of the credit notes' recurring lines that credit an invoice line."""
        ids = {row.document_id for kind in INVOICE_TYPES for row in by_type[kind]}
        if not ids:
            return
        line = _line
        for row in self.session.execute(
            select(
                line.c.id,
                line.c.document_id,
                line.c.product_id,
                line.c.kind,
                line.c.description,
                line.c.service_start,
                line.c.service_end,
                line.c.amount,
                line.c.tax_rate,
                line.c.credited_line_id,
                line.c.recognized,
                _product.c.code.label("product_code"),
                _product.c.family.label("product_family"),
            )
            .join(_product, _product.c.id == line.c.product_id)
            .where(line.c.document_id.in_(ids))
            .order_by(line.c.id)
        ):
            self.lines[row.document_id].append(row)
            self.products.known[row.product_id] = (row.product_code, row.product_family)
        self.schedules = revenue_close.credit_schedules(
            self.session,
            [
                revenue_close.CreditLine(
                    line.id,
                    line.credited_line_id,
                    line.amount,
                    Period(line.service_start, line.service_end),
                    currency_of(self.documents[doc_id].currency),
                )
                for doc_id, lines in self.lines.items()
                if self.documents[doc_id].kind == base.CREDIT_NOTE
                for line in lines
                if line.credited_line_id is not None and line.kind == ChargeKind.RECURRING.value
            ],
        )

    def _read_allocations(self, credit_notes: Sequence[int], refunds: Sequence[int]) -> None:
        """One query: per credit note, the invoices the billing core applied it to, with the
        amount (in Python: amounts are exact decimals, not SQL numbers); per refund, the
        credit note it pays out (the first, when it draws on several); their numbers."""
        if not credit_notes and not refunds:
            return
        allocation = _allocation
        invoice, note = _document.alias("applied_invoice"), _document.alias("credit_note")
        self.applied_to = {doc_id: {} for doc_id in credit_notes}
        for row in self.session.execute(
            select(
                allocation.c.credit_note_id,
                allocation.c.invoice_id,
                allocation.c.refund_id,
                allocation.c.amount,
                invoice.c.number.label("invoice_number"),
                note.c.number.label("credit_note_number"),
            )
            .outerjoin(invoice, invoice.c.id == allocation.c.invoice_id)
            .outerjoin(note, note.c.id == allocation.c.credit_note_id)
            .where(
                or_(
                    and_(
                        allocation.c.credit_note_id.in_(credit_notes),
                        allocation.c.invoice_id.is_not(None),
                    ),
                    and_(
                        allocation.c.refund_id.in_(refunds),
                        allocation.c.credit_note_id.is_not(None),
                    ),
                )
            )
            .order_by(allocation.c.id)
        ):
            if row.credit_note_id in self.applied_to and row.invoice_id is not None:
                self.numbers[row.invoice_id] = row.invoice_number
                totals = self.applied_to[row.credit_note_id]
                totals[row.invoice_id] = totals.get(row.invoice_id, ZERO) + row.amount
            if row.refund_id is not None and row.credit_note_id is not None:
                self.refunded.setdefault(row.refund_id, row.credit_note_id)
                self.numbers[row.credit_note_id] = row.credit_note_number

    def _read_applied(self, ids: Sequence[int]) -> None:
        """The credit applied of the batch, with every allocation to the same invoices (what
        each source has applied there in all): one query."""
        if not ids:
            return
        allocation, invoice = _allocation, _document.alias("applied_invoice")
        note, paid = _document.alias("source_note"), _payment.alias("source_payment")
        among = select(allocation.c.invoice_id).where(allocation.c.id.in_(ids))
        rows = self.session.execute(
            select(
                allocation.c.id,
                allocation.c.invoice_id,
                allocation.c.credit_note_id,
                allocation.c.payment_id,
                allocation.c.amount,
                allocation.c.allocated_on,
                invoice.c.number.label("invoice_number"),
                invoice.c.currency,
                invoice.c.customer_id,
                _customer.c.name.label("customer_name"),
                _customer.c.country.label("customer_country"),
                _customer.c.currency.label("customer_currency"),
                _customer.c.tax_id.label("customer_tax_id"),
                note.c.number.label("source_number"),
                paid.c.received_on.label("paid_on"),
                paid.c.reference.label("paid_reference"),
            )
            .join(invoice, invoice.c.id == allocation.c.invoice_id)
            .join(_customer, _customer.c.id == invoice.c.customer_id)
            .outerjoin(note, note.c.id == allocation.c.credit_note_id)
            .outerjoin(paid, paid.c.id == allocation.c.payment_id)
            .where(allocation.c.invoice_id.in_(among))
            .order_by(allocation.c.id)
        ).all()
        wanted = set(ids)
        for row in rows:
            if row.id not in wanted:
                continue
            reference = None
            if row.payment_id is not None:
                reference = f"payment of {row.paid_on.isoformat()}" + (
                    f" {row.paid_reference}" if row.paid_reference else ""
                )
            # What the source has applied to this invoice in all, through this allocation: a
            # target compares it with what it holds, so that a retry applies nothing twice.
            source = "credit_note_id" if row.credit_note_id is not None else "payment_id"
            applied = sum(
                (
                    other.amount
                    for other in rows
                    if getattr(other, source) == getattr(row, source)
                    and other.invoice_id == row.invoice_id
                    and other.id <= row.id
                ),
                ZERO,
            )
            self.applied[row.id] = _Applied(
                row.id,
                row.invoice_id,
                row.invoice_number,
                row.currency,
                _customer_of(row, row.customer_id),
                row.allocated_on,
                row.amount,
                row.source_number,
                reference,
                applied,
            )

    # -- lookups ---------------------------------------------------------------------------
    def number(self, document_id: int | None) -> str | None:
        if document_id is None:
            return None
        if document_id in self.documents:
            return str(self.documents[document_id].number)
        return self.numbers[document_id]

    def _document(self, document_id: int) -> AnyRow:
        return self.documents[document_id]

    # -- documents -------------------------------------------------------------------------
    def invoice(self, row: AnyRow) -> base.Invoice:
        doc = self._document(row.document_id)
        lines = []
        for line in self.lines.get(doc.id, []):
            recurring = line.kind == ChargeKind.RECURRING.value
            recognized = ZERO
            if row.document_type == base.VOID:
                recognized = line.recognized  # the revenue journaled for it
            elif line.id in self.schedules:
                recognized = -revenue_close.taken_back_at_issue(
                    self.schedules[line.id], doc.revenue_from
                )
            lines.append(
                base.Line(
                    line.product_code,
                    line.product_family,
                    recurring,
                    line.amount,
                    recognized,
                    tax_rate=line.tax_rate,
                    description=line.description,
                    scheduled=not recurring
                    and scheduled(line.kind, doc.kind, line.service_start, doc.issue_date),
                )
            )
        applied_to = (
            self.applied_to.get(doc.id, {}) if row.document_type == base.CREDIT_NOTE else {}
        )
        return base.Invoice(
            key=document_key(row.document_type, doc.id),
            document_type=row.document_type,
            document_id=doc.id,
            number=doc.number,
            customer=self.customers[doc.customer_id],
            issue_date=doc.issue_date,
            due_date=doc.due_date,
            currency=doc.currency,
            lines=tuple(lines),
            taxes=tuple(self.taxes.get(doc.id, ())),
            total=doc.total,
            invoice_number=self.number(doc.invoice_id),
            applied=applied_to.get(doc.invoice_id or 0, ZERO),
            credit=(doc.credit_kept or ZERO) if row.document_type == base.CREDIT_NOTE else ZERO,
            applied_to=tuple(
                (self.number(invoice_id) or "", amount)
                for invoice_id, amount in applied_to.items()
                if amount > 0
            ),
        )

    def payment(self, row: AnyRow) -> base.Payment:
        if row.payment_id is None:
            raise LookupError(f"no payment {row.document_id} for outbox row {row.id}")
        refunded = self.refunded.get(row.payment_id) if row.payment_kind == base.REFUND else None
        return base.Payment(
            key=document_key(row.document_type, row.payment_id),
            document_type=row.document_type,
            document_id=row.payment_id,
            customer=_customer_of(row, row.payment_customer),
            paid_on=row.payment_received_on,
            currency=row.payment_currency,
            amount=row.payment_amount,
            invoice_number=self.number(row.payment_invoice),
            reference=row.payment_reference,
            credit_note_number=self.number(refunded),
            credit=row.payment_credit_kept or ZERO,
        )

    def credit_kept(self, row: AnyRow) -> base.Payment:
        """An over-payment finance recorded in accounting: moved to the customer's credit."""
        payment = self.payment(row)
        return replace(payment, amount=payment.credit, credit=ZERO, credit_note_number=None)

    def credit_applied(self, row: AnyRow) -> base.Payment:
        """Customer credit held (an earlier over-payment or credit note) applied to an
        invoice."""
        applied = self.applied[row.document_id]
        return base.Payment(
            key=document_key(row.document_type, applied.id),
            document_type=row.document_type,
            document_id=applied.id,
            customer=applied.customer,
            paid_on=applied.allocated_on,
            currency=applied.currency,
            amount=applied.amount,
            invoice_number=applied.invoice_number,
            reference=applied.reference,
            credit_note_number=applied.source_number,
            credit=applied.applied,
        )

    def revenue(self, row: AnyRow) -> base.RevenueJournal:
        if row.journal_source is None:
            raise LookupError(f"no revenue journal {row.document_id} for outbox row {row.id}")
        source = self._document(row.journal_source)
        parts = sorted(
            (revenue_close.parse_amount_key(key), amount)
            for key, amount in row.journal_amounts.items()
        )
        amounts = []
        for (product_id, recurring), amount in parts:
            code, family = self.products[product_id]
            amounts.append(base.RevenueAmount(code, family, Decimal(amount), recurring))
        return base.RevenueJournal(
            key=document_key(base.REVENUE, row.document_id),
            document_id=row.document_id,
            journal_date=row.journal_date,
            period_start=row.journal_start,
            period_end=row.journal_end,
            customer=self.customers[source.customer_id],
            currency=row.journal_currency,
            source_number=source.number,
            invoice_number=self.number(source.invoice_id),
            amounts=tuple(amounts),
            kind=row.journal_kind,
        )

    def document(self, row: AnyRow) -> base.Document:
        doc: base.Document
        if row.document_type in INVOICE_TYPES:
            doc = self.invoice(row)
        elif row.document_type in (base.PAYMENT, base.REFUND):
            doc = self.payment(row)
        elif row.document_type == base.CREDIT_KEPT:
            doc = self.credit_kept(row)
        elif row.document_type == base.CREDIT_APPLIED:
            doc = self.credit_applied(row)
        else:
            doc = self.revenue(row)
        return dating.book(doc, self.closed_through)
