"""The push to accounting: outbox rows become documents posted to the accounting target.

Rows go in batches of the target's size. A batch is read in one transaction, posted outside any
(the write is external), and its results recorded in another: ``done`` once the target
confirmed, ``pending`` to try again, ``parked`` with the target's message. A crash between the
post and the record leaves the rows undelivered; the next push posts them again and the target,
which already holds them, answers done without writing twice.

Closed periods: a batch is built under the books' lock and dated by the closing in force (a
document whose own date is on or before it is booked on the first open day), and its rows are
marked in flight until their answers are recorded, so that no closing crosses them.

Payments recorded in accounting are read back here too (:func:`read_payments`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting import base, dating
from connector.accounting.base import AccountingTarget, document_key
from connector.accounting.chart import load_chart
from connector.accounting.ledger import Ledger
from connector.accounting.xero.target import XeroTarget
from connector.billing.money import currency as currency_of
from connector.billing.periods import Period
from connector.billing.pricing import ChargeKind
from connector.billing.revenue import CreditSchedule
from connector.db import books, outbox, tables
from connector.db.engine import transaction
from connector.errors import AccountingError, AccountingLimitError, ConfigError, ConnectorError
from connector.settings import Settings, mapping_path
from connector.sync import ledger_heal, revenue_close, settlement
from connector.sync.stopping import no_stop

log = logging.getLogger(__name__)


@dataclass
class PushResult:
    target: str
    posted: int = 0
    already_there: int = 0
    pending: int = 0
    parked: dict[str, str] = field(default_factory=dict)  # document key -> why
    reposted: list[str] = field(default_factory=list)  # lost from the ledger, put back in line
    moved_aside: dict[str, str] = field(default_factory=dict)  # damaged ledger file -> why

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "posted": self.posted,
            "already_there": self.already_there,
            "pending": self.pending,
            "parked": dict(self.parked),
            "reposted": list(self.reposted),
            "moved_aside": dict(self.moved_aside),
        }


def make_target(
    settings: Settings, factory: sessionmaker[Session] | None = None
) -> AccountingTarget:
    """The target ``accounting.target`` names; Xero keeps its tokens and contacts in the
    database ``factory`` opens."""
    chart = load_chart(mapping_path(settings.accounting.mapping_file))
    if settings.accounting.target == "ledger":
        return Ledger(settings.ledger.path, chart, settings.billing.default_currency)
    if settings.accounting.target == "xero":
        if factory is None:
            raise ConfigError("the xero target needs the database")
        missing = [
            f"xero.{key}" for key in ("client_id", "tenant_id") if not getattr(settings.xero, key)
        ]
        if not settings.xero.client_secret.get_secret_value():
            missing.append("xero.client_secret")
        if missing:
            raise ConfigError(f"accounting.target = xero needs {', '.join(missing)}")
        return XeroTarget(settings, factory, chart.xero)
    raise ConfigError(f"accounting.target {settings.accounting.target!r} is not available")


def check_target(target: AccountingTarget) -> None:
    """Check the target's configuration against the target itself, when it offers such a
    check (Xero: the mapping's TaxTypes against the organisation's tax rates): a configuration
    error is raised before anything is sent; a target out of reach is left to the push."""
    check = getattr(target, "check_configuration", None)
    if check is None:
        return
    try:
        check()
    except AccountingError as error:
        log.warning("%s: configuration not checked: %s", target.name, error)


# -- documents from the billing core --------------------------------------------------------------
class _Loader:
    """Builds the documents of a batch of outbox rows, reading each table once per batch, each
    booked on the first open day when its own date is on or before ``closed_through``."""

    def __init__(
        self,
        session: Session,
        rows: Sequence[tables.Outbox],
        closed_through: date | None = None,
    ) -> None:
        self.session = session
        self.closed_through = closed_through
        self.customers: dict[int, base.Customer] = {}
        self.products: dict[int, tuple[str, str | None]] = {}
        self.documents: dict[int, tables.Document] = {}
        self.lines: dict[int, list[tables.DocumentLine]] = {}
        self.taxes: dict[int, list[tables.DocumentTax]] = {}
        self.payments: dict[int, tables.Payment] = {}
        self.journals: dict[int, tables.RevenueJournal] = {}
        self._schedules: dict[int, CreditSchedule] | None = None
        self._prefetch(rows)

    def _prefetch(self, rows: Sequence[tables.Outbox]) -> None:
        session = self.session
        by_type: dict[str, list[int]] = {}
        for row in rows:
            by_type.setdefault(row.document_type, []).append(row.document_id)
        journal_ids = by_type.get(base.REVENUE, [])
        self.journals = {
            row.id: row
            for row in session.scalars(
                select(tables.RevenueJournal).where(tables.RevenueJournal.id.in_(journal_ids))
            )
        }
        payment_ids = (
            by_type.get(base.PAYMENT, [])
            + by_type.get(base.REFUND, [])
            + by_type.get(base.CREDIT_KEPT, [])
        )
        self.payments = {
            row.id: row
            for row in session.scalars(
                select(tables.Payment).where(tables.Payment.id.in_(payment_ids))
            )
        }
        doc_ids = set(
            by_type.get(base.INVOICE, [])
            + by_type.get(base.CREDIT_NOTE, [])
            + by_type.get(base.VOID, [])
        )
        doc_ids |= {journal.document_id for journal in self.journals.values()}
        self._load_documents(doc_ids)
        linked = {doc.invoice_id for doc in self.documents.values() if doc.invoice_id}
        linked |= {p.invoice_id for p in self.payments.values() if p.invoice_id}
        self._load_documents(linked - self.documents.keys())
        for line in session.scalars(
            select(tables.DocumentLine)
            .where(tables.DocumentLine.document_id.in_(doc_ids))
            .order_by(tables.DocumentLine.id)
        ):
            self.lines.setdefault(line.document_id, []).append(line)
        for tax in session.scalars(
            select(tables.DocumentTax)
            .where(tables.DocumentTax.document_id.in_(doc_ids))
            .order_by(tables.DocumentTax.rate)
        ):
            self.taxes.setdefault(tax.document_id, []).append(tax)
        customer_ids = {doc.customer_id for doc in self.documents.values()}
        customer_ids |= {payment.customer_id for payment in self.payments.values()}
        for customer in session.scalars(
            select(tables.Customer).where(tables.Customer.id.in_(customer_ids))
        ):
            self.customers[customer.id] = base.Customer(
                customer.id, customer.name, customer.country, customer.currency, customer.tax_id
            )
        for product in session.scalars(select(tables.Product)):
            self.products[product.id] = (product.code, product.family)

    def _load_documents(self, ids: set[int]) -> None:
        for doc in self.session.scalars(select(tables.Document).where(tables.Document.id.in_(ids))):
            self.documents[doc.id] = doc

    def _credit_schedules(self) -> dict[int, CreditSchedule]:
        """The schedules of the batch's credit note lines, per line id, loaded at once."""
        if self._schedules is None:
            self._schedules = revenue_close.credit_schedules(
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
        return self._schedules

    def _document(self, document_id: int) -> tables.Document:
        if document_id not in self.documents:
            self.documents[document_id] = self.session.get_one(tables.Document, document_id)
        return self.documents[document_id]

    def customer(self, customer_id: int) -> base.Customer:
        if customer_id not in self.customers:
            row = self.session.get_one(tables.Customer, customer_id)
            self.customers[customer_id] = base.Customer(
                row.id, row.name, row.country, row.currency, row.tax_id
            )
        return self.customers[customer_id]

    def product(self, product_id: int) -> tuple[str, str | None]:
        if product_id not in self.products:
            row = self.session.get_one(tables.Product, product_id)
            self.products[product_id] = (row.code, row.family)
        return self.products[product_id]

    def number(self, document_id: int | None) -> str | None:
        return None if document_id is None else self._document(document_id).number

    def invoice(self, row: tables.Outbox) -> base.Invoice:
        doc = self._document(row.document_id)
        lines = []
        for line in self.lines.get(doc.id, []):
            code, family = self.product(line.product_id)
            recurring = line.kind == ChargeKind.RECURRING.value
            recognized = Decimal(0)
            if row.document_type == base.VOID:
                recognized = line.recognized  # the revenue journaled for it
            elif line.id in self._credit_schedules():
                taken = revenue_close.taken_back_at_issue(
                    self._credit_schedules()[line.id], doc.revenue_from
                )
                recognized = -taken
            lines.append(
                base.Line(
                    code,
                    family,
                    recurring,
                    line.amount,
                    recognized,
                    tax_rate=line.tax_rate,
                    description=line.description,
                    scheduled=not recurring
                    and revenue_close.scheduled(
                        line.kind, doc.kind, line.service_start, doc.issue_date
                    ),
                )
            )
        taxes = tuple(
            base.Tax(tax.rate, tax.tax, tax.jurisdiction, tax.reverse_charge)
            for tax in self.taxes.get(doc.id, [])
        )
        applied_to: dict[int, Decimal] = {}
        if row.document_type == base.CREDIT_NOTE:
            for invoice_id, amount in self.session.execute(
                select(tables.Allocation.invoice_id, tables.Allocation.amount)
                .where(
                    tables.Allocation.credit_note_id == doc.id,
                    tables.Allocation.invoice_id.is_not(None),
                )
                .order_by(tables.Allocation.id)
            ):  # in Python: amounts are exact decimals, not SQL numbers
                if invoice_id is not None:
                    applied_to[invoice_id] = applied_to.get(invoice_id, Decimal(0)) + amount
        applied = applied_to.get(doc.invoice_id or 0, Decimal(0))
        return base.Invoice(
            key=document_key(row.document_type, doc.id),
            document_type=row.document_type,
            document_id=doc.id,
            number=doc.number,
            customer=self.customer(doc.customer_id),
            issue_date=doc.issue_date,
            due_date=doc.due_date,
            currency=doc.currency,
            lines=tuple(lines),
            taxes=taxes,
            total=doc.total,
            invoice_number=self.number(doc.invoice_id),
            applied=applied,
            credit=(
                (doc.credit_kept or Decimal(0))
                if row.document_type == base.CREDIT_NOTE
                else Decimal(0)
            ),
            applied_to=tuple(
                (self.number(invoice_id) or "", amount)
                for invoice_id, amount in applied_to.items()
                if amount > 0
            ),
        )

    def payment(self, row: tables.Outbox) -> base.Payment:
        payment = self.payments[row.document_id]
        return base.Payment(
            key=document_key(row.document_type, payment.id),
            document_type=row.document_type,
            document_id=payment.id,
            customer=self.customer(payment.customer_id),
            paid_on=payment.received_on,
            currency=payment.currency,
            amount=payment.amount,
            invoice_number=self.number(payment.invoice_id),
            reference=payment.reference,
            credit_note_number=self._refunded_credit_note(payment),
            credit=payment.credit_kept or Decimal(0),
        )

    def credit_kept(self, row: tables.Outbox) -> base.Payment:
        """An over-payment finance recorded in accounting: moved to the customer's credit."""
        payment = self.payment(row)
        return replace(payment, amount=payment.credit, credit=Decimal(0), credit_note_number=None)

    def credit_applied(self, row: tables.Outbox) -> base.Payment:
        """Customer credit held (an earlier over-payment or credit note) applied to an
        invoice."""
        allocation = self.session.get_one(tables.Allocation, row.document_id)
        invoice = self._document(allocation.invoice_id or 0)
        source = (
            self.number(allocation.credit_note_id)
            if allocation.credit_note_id is not None
            else None
        )
        reference = None
        if allocation.payment_id is not None:
            paid = self.session.get_one(tables.Payment, allocation.payment_id)
            reference = f"payment of {paid.received_on.isoformat()}" + (
                f" {paid.reference}" if paid.reference else ""
            )
        source_column = (
            tables.Allocation.credit_note_id
            if allocation.credit_note_id is not None
            else tables.Allocation.payment_id
        )
        # What the source has applied to this invoice in all, through this allocation: a
        # target compares it with what it holds, so that a retry applies nothing twice.
        applied = sum(
            self.session.scalars(
                select(tables.Allocation.amount).where(
                    source_column == (allocation.credit_note_id or allocation.payment_id),
                    tables.Allocation.invoice_id == allocation.invoice_id,
                    tables.Allocation.id <= allocation.id,
                )
            ),
            Decimal(0),
        )
        return base.Payment(
            key=document_key(row.document_type, allocation.id),
            document_type=row.document_type,
            document_id=allocation.id,
            customer=self.customer(invoice.customer_id),
            paid_on=allocation.allocated_on,
            currency=invoice.currency,
            amount=allocation.amount,
            invoice_number=invoice.number,
            reference=reference,
            credit_note_number=source,
            credit=applied,
        )

    def _refunded_credit_note(self, payment: tables.Payment) -> str | None:
        """The credit note a refund pays out (the first, when it draws on several)."""
        if payment.kind != base.REFUND:
            return None
        credit_note_id = self.session.scalar(
            select(tables.Allocation.credit_note_id)
            .where(
                tables.Allocation.refund_id == payment.id,
                tables.Allocation.credit_note_id.is_not(None),
            )
            .order_by(tables.Allocation.id)
            .limit(1)
        )
        return self.number(credit_note_id)

    def revenue(self, row: tables.Outbox) -> base.RevenueJournal:
        journal = self.journals[row.document_id]
        source = self._document(journal.document_id)
        amounts = []
        parts = sorted(
            (revenue_close.parse_amount_key(key), amount) for key, amount in journal.amounts.items()
        )
        for (product_id, recurring), amount in parts:
            code, family = self.product(product_id)
            amounts.append(base.RevenueAmount(code, family, Decimal(amount), recurring))
        return base.RevenueJournal(
            key=document_key(base.REVENUE, journal.id),
            document_id=journal.id,
            journal_date=journal.journal_date,
            period_start=journal.period_start,
            period_end=journal.period_end,
            customer=self.customer(source.customer_id),
            currency=journal.currency,
            source_number=source.number,
            invoice_number=self.number(source.invoice_id),
            amounts=tuple(amounts),
            kind=journal.kind,
        )

    def document(self, row: tables.Outbox) -> base.Document:
        doc: base.Document
        if row.document_type in (base.INVOICE, base.CREDIT_NOTE, base.VOID):
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


def push(
    factory: sessionmaker[Session],
    settings: Settings,
    target: AccountingTarget | None = None,
    checkpoint: Callable[[], None] = no_stop,
) -> PushResult:
    """Deliver every outbox row the target has not received yet, and to the ledger again what
    it no longer holds (:mod:`connector.sync.ledger_heal`); ``checkpoint`` is called between
    batches (it raises to stop there)."""
    target = target or make_target(settings, factory)
    result = PushResult(target.name)
    if isinstance(target, Ledger):  # what the ledger lost since it was delivered goes again
        healed = ledger_heal.heal(factory, target)
        result.reposted, result.moved_aside = healed.reposted, healed.moved_aside
    after = 0  # rows left pending in this run wait for the next one
    while True:
        checkpoint()
        with transaction(factory) as session:
            books.lock(session)  # the batch is dated by the closing in force; none crosses it
            rows = outbox.undelivered(session, target.name, target.max_batch, after)
            loader = _Loader(session, rows, books.closed_through(session))
            batch = [(row.id, loader.document(row)) for row in rows]
            ids = [row_id for row_id, _ in batch]
            # Before the write: a crash leaves the rows marked as sent, and in flight.
            tried = outbox.begin_attempt(session, target.name, ids) if ids else set()
            books.mark_in_flight(session, target.name, ids)
        if not batch:
            return result
        if not after:
            check_target(target)  # before the first write; an idle push costs nothing
        after = batch[-1][0]
        retried = frozenset(doc.key for row_id, doc in batch if row_id in tried)
        answers = target.post([doc for _, doc in batch], retried)
        outcomes = _outcomes(batch, answers, result)
        with transaction(factory) as session:
            outbox.record(session, target.name, outcomes)
            books.landed(session, target.name, ids)
        if all(outcome.state == outbox.PENDING for outcome in outcomes):
            return result  # the target is not taking anything now; the next push tries again


def _outcomes(
    batch: Sequence[tuple[int, base.Document]],
    answers: Sequence[base.PostResult],
    result: PushResult,
) -> list[outbox.Outcome]:
    by_key = {answer.key: answer for answer in answers}
    outcomes = []
    for outbox_id, doc in batch:
        answer = by_key.get(doc.key)
        if answer is None or (not answer.ok and answer.retriable):
            result.pending += 1
            error = answer.error if answer else "no answer from the target"
            outcomes.append(outbox.Outcome(outbox_id, outbox.PENDING, error=error))
        elif answer.ok:
            if answer.external_id == "already in the ledger":
                result.already_there += 1
            else:
                result.posted += 1
            outcomes.append(outbox.Outcome(outbox_id, outbox.DONE, answer.external_id))
        else:
            result.parked[doc.key] = answer.error or "refused"
            outcomes.append(outbox.Outcome(outbox_id, outbox.PARKED, error=answer.error))
    return outcomes


# -- payments recorded in accounting --------------------------------------------------------------
PAYMENTS_LOOKBACK = timedelta(minutes=5)  # clocks differ; a payment read twice is known


@dataclass
class PaymentsResult:
    recorded: int = 0
    known: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # where -> why
    stopped: str | None = None  # the target's API limit ended the read; the next one resumes
    reconciled: int = 0  # credit notes whose credit went back to the customer, as there

    def to_dict(self) -> dict[str, object]:
        return {
            "recorded": self.recorded,
            "known": self.known,
            "refused": dict(self.refused),
            "stopped": self.stopped,
            "reconciled": self.reconciled,
        }


def read_payments(
    factory: sessionmaker[Session], settings: Settings, target: AccountingTarget | None = None
) -> PaymentsResult:
    """Apply payments recorded in accounting to the billing core (each once), and mark them
    delivered to that target so that they are not posted back to it."""
    target = target or make_target(settings, factory)
    result = PaymentsResult()
    # A target that applies payments and credit notes to invoices itself (Xero) is followed.
    settles = bool(getattr(target, "applies_to_invoices", False))
    cursor_name = f"accounting:{target.name}:payments"
    with transaction(factory) as session:
        cursor = session.get(tables.SyncCursor, cursor_name)
        since = cursor.position - PAYMENTS_LOOKBACK if cursor and cursor.position else None
    try:
        found, after = target.payments(since.isoformat(timespec="seconds") if since else None)
    except AccountingLimitError as error:
        result.stopped = str(error)
        return result
    for payment in found:
        if payment.problem is not None:
            result.refused[payment.where] = payment.problem
            log.warning("payment at %s not recorded: %s", payment.where, payment.problem)
            continue
        try:
            with transaction(factory) as session:
                recorded = _record_external(session, payment, target.name, settles)
            result.recorded += recorded
            result.known += not recorded
        except ConnectorError as error:
            result.refused[payment.where] = str(error)
            log.warning("payment at %s not recorded: %s", payment.where, error)
    if settles:
        with transaction(factory) as session:
            result.reconciled = _pay_instead_of_credit(session, target.name)
    if after and not result.refused:  # a refused payment is read again until it is fixed
        with transaction(factory) as session:
            read = datetime.fromisoformat(after)
            position = read.astimezone(UTC) if read.tzinfo else read.replace(tzinfo=UTC)
            stored = session.get(tables.SyncCursor, cursor_name)
            if stored is None:
                session.add(tables.SyncCursor(name=cursor_name, position=position))
            elif stored.position is None or position > stored.position:
                stored.position = position
    return result


def _record_external(
    session: Session, payment: base.ExternalPayment, target: str, settles: bool
) -> bool:
    """Apply one payment recorded in accounting; False when it was applied before."""
    known = session.scalar(
        select(tables.Payment.id).where(tables.Payment.reference == payment.reference)
    )
    if known is not None:
        return False
    invoice = session.scalar(
        select(tables.Document).where(
            tables.Document.number == payment.invoice_number,
            tables.Document.kind == base.INVOICE,
        )
    )
    if invoice is None:
        raise ConnectorError(f"no invoice {payment.invoice_number}")
    if invoice.currency != payment.currency:
        raise ConnectorError(
            f"paid in {payment.currency}, but {invoice.number} is in {invoice.currency}"
        )
    # Paid there before credit notes applied here reached it: the payment comes first, those
    # credit notes' credit goes back to the customer (as there).
    excess = payment.amount - settlement.due_of(invoice)
    pending = _credit_notes_not_at(session, target, invoice) if settles else set()
    if excess > 0 and pending:
        released = settlement.release_credit(session, invoice, excess, pending, payment.date)
        outbox.send_again(session, target, base.CREDIT_NOTE, released)
    row = settlement.record_payment(
        session,
        amount=payment.amount,
        received_on=payment.date,
        invoice_number=invoice.number,
        reference=payment.reference,
    )
    outbox.delivered_elsewhere(session, base.PAYMENT, row.id, target, payment.where)
    if row.credit_kept:  # an over-payment: to the customer's credit
        outbox.enqueue(session, base.CREDIT_KEPT, [row.id])
    return True


def _credit_notes_not_at(session: Session, target: str, invoice: tables.Document) -> set[int]:
    """Credit notes applied to ``invoice`` whose delivery to ``target`` is not done: the
    target does not hold their application (yet)."""
    applied = {
        note
        for note in session.scalars(
            select(tables.Allocation.credit_note_id).where(
                tables.Allocation.invoice_id == invoice.id,
                tables.Allocation.credit_note_id.is_not(None),
            )
        )
        if note is not None
    }
    done = outbox.states(session, target, base.CREDIT_NOTE, applied)
    return {note for note in applied if done.get(note) != outbox.DONE}


def _pay_instead_of_credit(session: Session, target: str) -> int:
    """Where ``target`` holds a payment on an invoice in full but the billing core applied
    part of it elsewhere because credit notes the target does not hold were applied to that
    invoice first (a credit note issued on an invoice already paid there, from before the
    payments were read back ahead of billing): apply the payment to its invoice instead and
    keep those credit notes' credit as the customer's, as the target does. Returns how many
    credit notes were released; those it had refused are sent again."""
    candidates = session.scalars(
        select(tables.Payment)
        .join(
            tables.Outbox,
            (tables.Outbox.document_type == base.PAYMENT)
            & (tables.Outbox.document_id == tables.Payment.id),
        )
        .join(tables.Delivery, tables.Delivery.outbox_id == tables.Outbox.id)
        .where(
            tables.Payment.kind == base.PAYMENT,
            tables.Payment.unapplied.is_not(None),
            tables.Payment.invoice_id.is_not(None),
            tables.Delivery.target == target,
            tables.Delivery.state == outbox.DONE,
        )
        .order_by(tables.Payment.id)
    ).all()
    released: set[int] = set()
    for payment in candidates:
        invoice = session.get_one(tables.Document, payment.invoice_id)
        pending = _credit_notes_not_at(session, target, invoice)
        if pending:
            released.update(
                settlement.pay_instead_of_credit(
                    session, payment, invoice, pending, payment.received_on
                )
            )
    outbox.send_again(session, target, base.CREDIT_NOTE, released)
    return len(released)
