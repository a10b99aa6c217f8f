"""The push to accounting: outbox rows become documents posted to the accounting target.

Rows go in batches of the target's size. A batch is read in one transaction, posted outside any
(the write is external), and its results recorded in another: ``done`` once the target
confirmed, ``pending`` to try again, ``parked`` with the target's message. A crash between the
post and the record leaves the rows undelivered; the next push posts them again and the target,
which already holds them, answers done without writing twice.

Payments recorded in accounting are read back here too (:func:`read_payments`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting import base
from connector.accounting.base import AccountingTarget, document_key
from connector.accounting.chart import load_chart
from connector.accounting.ledger import Ledger
from connector.accounting.xero.target import XeroTarget
from connector.billing.money import currency as currency_of
from connector.billing.periods import Period
from connector.billing.pricing import ChargeKind
from connector.billing.revenue import RevenueSchedule
from connector.db import outbox, tables
from connector.db.engine import transaction
from connector.errors import AccountingLimitError, ConfigError, ConnectorError
from connector.settings import Settings, mapping_path
from connector.sync import settlement
from connector.sync.stopping import no_stop

log = logging.getLogger(__name__)


@dataclass
class PushResult:
    target: str
    posted: int = 0
    already_there: int = 0
    pending: int = 0
    parked: dict[str, str] = field(default_factory=dict)  # document key -> why

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "posted": self.posted,
            "already_there": self.already_there,
            "pending": self.pending,
            "parked": dict(self.parked),
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


# -- documents from the billing core --------------------------------------------------------------
class _Loader:
    """Builds the documents of a batch of outbox rows, reading each table once per batch."""

    def __init__(self, session: Session, rows: Sequence[tables.Outbox]) -> None:
        self.session = session
        self.customers: dict[int, base.Customer] = {}
        self.products: dict[int, tuple[str, str | None]] = {}
        self.documents: dict[int, tables.Document] = {}
        self.lines: dict[int, list[tables.DocumentLine]] = {}
        self.taxes: dict[int, list[tables.DocumentTax]] = {}
        self.payments: dict[int, tables.Payment] = {}
        self.journals: dict[int, tables.RevenueJournal] = {}
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
        payment_ids = by_type.get(base.PAYMENT, []) + by_type.get(base.REFUND, [])
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

    def _journaled(self, document_id: int) -> dict[int, Decimal]:
        """Revenue journaled for a document, per product."""
        totals: dict[int, Decimal] = {}
        for journal in self.session.scalars(
            select(tables.RevenueJournal).where(tables.RevenueJournal.document_id == document_id)
        ):
            for product_id, amount in journal.amounts.items():
                key = int(product_id)
                totals[key] = totals.get(key, Decimal(0)) + Decimal(amount)
        return totals

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
        money = currency_of(doc.currency)
        journaled = self._journaled(doc.id) if row.document_type == base.VOID else {}
        lines = []
        for line in self.lines.get(doc.id, []):
            code, family = self.product(line.product_id)
            recurring = line.kind == ChargeKind.RECURRING.value
            recognized = Decimal(0)
            if recurring and row.document_type == base.VOID:
                recognized = journaled.pop(line.product_id, Decimal(0))
            elif recurring and row.document_type == base.CREDIT_NOTE:
                period = Period(line.service_start, line.service_end)
                schedule = RevenueSchedule(line.amount, money, period)
                recognized = schedule.recognized_through(doc.issue_date)
            lines.append(
                base.Line(
                    code,
                    family,
                    recurring,
                    line.amount,
                    recognized,
                    tax_rate=line.tax_rate,
                    description=line.description,
                )
            )
        taxes = tuple(
            base.Tax(tax.rate, tax.tax, tax.jurisdiction, tax.reverse_charge)
            for tax in self.taxes.get(doc.id, [])
        )
        applied = Decimal(0)
        if row.document_type == base.CREDIT_NOTE and doc.invoice_id is not None:
            applied = sum(  # in Python: amounts are exact decimals, not SQL numbers
                self.session.scalars(
                    select(tables.Allocation.amount).where(
                        tables.Allocation.credit_note_id == doc.id,
                        tables.Allocation.invoice_id == doc.invoice_id,
                    )
                ),
                Decimal(0),
            )
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
        for product_id, amount in sorted(journal.amounts.items(), key=lambda item: int(item[0])):
            code, family = self.product(int(product_id))
            amounts.append(base.RevenueAmount(code, family, Decimal(amount)))
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
        )

    def document(self, row: tables.Outbox) -> base.Document:
        if row.document_type in (base.INVOICE, base.CREDIT_NOTE, base.VOID):
            return self.invoice(row)
        if row.document_type in (base.PAYMENT, base.REFUND):
            return self.payment(row)
        return self.revenue(row)


def push(
    factory: sessionmaker[Session],
    settings: Settings,
    target: AccountingTarget | None = None,
    checkpoint: Callable[[], None] = no_stop,
) -> PushResult:
    """Deliver every outbox row the target has not received yet; ``checkpoint`` is called
    between batches (it raises to stop there)."""
    target = target or make_target(settings, factory)
    result = PushResult(target.name)
    after = 0  # rows left pending in this run wait for the next one
    while True:
        checkpoint()
        with transaction(factory) as session:
            rows = outbox.undelivered(session, target.name, target.max_batch, after)
            loader = _Loader(session, rows)
            batch = [(row.id, loader.document(row)) for row in rows]
        if not batch:
            return result
        after = batch[-1][0]
        with transaction(factory) as session:  # before the write: a crash leaves it marked
            tried = outbox.begin_attempt(session, target.name, [row_id for row_id, _ in batch])
        retried = frozenset(doc.key for row_id, doc in batch if row_id in tried)
        answers = target.post([doc for _, doc in batch], retried)
        outcomes = _outcomes(batch, answers, result)
        with transaction(factory) as session:
            outbox.record(session, target.name, outcomes)
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

    def to_dict(self) -> dict[str, object]:
        return {
            "recorded": self.recorded,
            "known": self.known,
            "refused": dict(self.refused),
            "stopped": self.stopped,
        }


def read_payments(
    factory: sessionmaker[Session], settings: Settings, target: AccountingTarget | None = None
) -> PaymentsResult:
    """Apply payments recorded in accounting to the billing core (each once), and mark them
    delivered to that target so that they are not posted back to it."""
    target = target or make_target(settings, factory)
    result = PaymentsResult()
    cursor_name = f"accounting:{target.name}:payments"
    with transaction(factory) as session:
        cursor = session.get(tables.SyncCursor, cursor_name)
        since = cursor.position - PAYMENTS_LOOKBACK if cursor and cursor.position else None
    try:
        found, after = target.payments(since.strftime("%Y-%m-%dT%H:%M:%S") if since else None)
    except AccountingLimitError as error:
        result.stopped = str(error)
        return result
    for payment in found:
        try:
            with transaction(factory) as session:
                known = session.scalar(
                    select(tables.Payment.id).where(tables.Payment.reference == payment.reference)
                )
                if known is not None:
                    result.known += 1
                    continue
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
                row = settlement.record_payment(
                    session,
                    amount=payment.amount,
                    received_on=payment.date,
                    invoice_number=invoice.number,
                    reference=payment.reference,
                )
                outbox.delivered_elsewhere(
                    session, base.PAYMENT, row.id, target.name, payment.where
                )
                result.recorded += 1
        except ConnectorError as error:
            result.refused[payment.where] = str(error)
            log.warning("payment at %s not recorded: %s", payment.where, error)
    if after and not result.refused:  # a refused payment is read again until it is fixed
        with transaction(factory) as session:
            position = datetime.fromisoformat(after).replace(tzinfo=UTC)
            stored = session.get(tables.SyncCursor, cursor_name)
            if stored is None:
                session.add(tables.SyncCursor(name=cursor_name, position=position))
            elif stored.position is None or position > stored.position:
                stored.position = position
    return result
