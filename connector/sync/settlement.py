"""Settlement: payments, refunds, credit notes applied to invoices, and customer balances.

Every movement of money between a source (a payment, a credit note) and a target (an invoice, a
refund) is an allocation row, written in the same transaction as the totals it changes.

What a payment or credit note cannot apply when it is recorded (an over-payment, a credit note
on a paid invoice) is the customer's credit: ``credit_kept`` records it, and accounting holds it
as a liability to the customer, not as a negative receivable. Credit applied later to another
invoice (``from_credit``) and refunds paid out of it move it back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.billing.invoicing import DocumentKind
from connector.billing.money import ZERO, currency, round_money, to_decimal
from connector.billing.payments import (
    InvoiceStatus,
    PaymentKind,
    amount_due,
    apply_funds,
    customer_balance,
    invoice_status,
)
from connector.billing.plausibility import ceiling_of
from connector.db import outbox, tables, webhook_events
from connector.db import writeback_queue as writeback
from connector.db.documents import CREDIT_NOTE_ISSUED, find_document
from connector.documents import store
from connector.errors import BillingError, InvalidInputError, NotFoundError
from connector.webhooks import events

Source = tables.Payment | tables.Document
CREDIT_APPLIED = "credit_applied"  # outbox: credit held applied to an invoice


def keep_credit(source: Source) -> None:
    """The source has paid or credited what it could when it was recorded: what is left is
    the customer's credit from now on."""
    source.credit_kept = source.unapplied or ZERO


def due_of(invoice: tables.Document) -> Decimal:
    return amount_due(invoice.total, invoice.amount_paid, invoice.amount_credited)


def _allocate(
    session: Session,
    source: Source,
    amount: Decimal,
    on: date,
    *,
    invoice: tables.Document | None = None,
    refund: tables.Payment | None = None,
) -> tables.Allocation:
    """Record money moving from a payment or credit note to an invoice or a refund."""
    is_payment = isinstance(source, tables.Payment)
    allocation = tables.Allocation(
        payment_id=source.id if is_payment else None,
        credit_note_id=None if is_payment else source.id,
        invoice_id=invoice.id if invoice is not None else None,
        refund_id=refund.id if refund is not None else None,
        amount=amount,
        allocated_on=on,
        # Out of credit held since the source was recorded (not while it was being recorded).
        from_credit=invoice is not None and source.credit_kept is not None,
    )
    session.add(allocation)
    _spend(source, amount)
    return allocation


def _apply(
    session: Session, source: Source, invoice: tables.Document, amount: Decimal, on: date
) -> None:
    allocation = _allocate(session, source, amount, on, invoice=invoice)
    if allocation.from_credit:
        session.flush()
        outbox.enqueue(session, CREDIT_APPLIED, [allocation.id])
    if isinstance(source, tables.Payment):
        invoice.amount_paid += amount
    else:
        invoice.amount_credited += amount
    was = invoice.status
    invoice.status = invoice_status(
        invoice.total, invoice.amount_paid, invoice.amount_credited
    ).value
    invoice.version += 1  # what it shows changed: its PDF is rendered again
    store.queue_renders(session, [invoice.id])
    writeback.mark(session, writeback.DOCUMENT, [invoice.id])
    if was != InvoiceStatus.PAID.value and invoice.status == InvoiceStatus.PAID.value:
        webhook_events.emit_document(session, events.INVOICE_PAID, invoice, str(invoice.version))


def _open_invoices(session: Session, customer_id: int, currency_code: str) -> list[tables.Document]:
    return list(
        session.scalars(
            select(tables.Document)
            .where(
                tables.Document.customer_id == customer_id,
                tables.Document.kind == DocumentKind.INVOICE.value,
                tables.Document.status == InvoiceStatus.OPEN.value,
                tables.Document.currency == currency_code,
            )
            .order_by(tables.Document.issue_date, tables.Document.id)
        )
    )


def _credits(session: Session, customer_id: int) -> list[Source]:
    """Unapplied payments and credit notes of a customer, oldest first."""
    payments = session.scalars(
        select(tables.Payment).where(
            tables.Payment.customer_id == customer_id,
            tables.Payment.kind == PaymentKind.PAYMENT.value,
            tables.Payment.unapplied.is_not(None),
        )
    )
    notes = session.scalars(
        select(tables.Document).where(
            tables.Document.customer_id == customer_id,
            tables.Document.kind == DocumentKind.CREDIT_NOTE.value,
            tables.Document.status == CREDIT_NOTE_ISSUED,
            tables.Document.unapplied.is_not(None),
        )
    )
    sources: list[Source] = [*payments, *notes]
    return sorted(sources, key=lambda s: (_source_date(s), s.id))


def credit_held(session: Session, customer_id: int, code: str) -> Decimal:
    """The credit the customer holds in currency ``code``: what its payments and credit notes
    have not applied or refunded yet."""
    return sum(
        (s.unapplied or ZERO for s in _credits(session, customer_id) if s.currency == code), ZERO
    )


def _source_date(source: Source) -> date:
    return source.received_on if isinstance(source, tables.Payment) else source.issue_date


def _spend(source: Source, amount: Decimal) -> None:
    left = (source.unapplied or ZERO) - amount
    source.unapplied = left if left > 0 else None


def settle_customer(session: Session, customer_id: int, on: date) -> None:
    """Apply the customer's unapplied payments and credit notes to open invoices in the same
    currency, oldest first."""
    for source in _credits(session, customer_id):
        invoices = _open_invoices(session, customer_id, source.currency)
        applied, _ = apply_funds(source.unapplied or ZERO, [(i, due_of(i)) for i in invoices])
        for invoice, amount in applied:
            _apply(session, source, invoice, amount, on)
    session.flush()


def apply_credit_note(
    session: Session, credit_note: tables.Document, invoice: tables.Document, on: date
) -> None:
    """A new credit note first reduces what its invoice still owes; the rest becomes credit."""
    applied = min(credit_note.total, due_of(invoice))
    credit_note.unapplied = credit_note.total
    if applied > 0:
        _apply(session, credit_note, invoice, applied, on)


def credit_applied(
    session: Session, invoice: tables.Document, credit_note_ids: Iterable[int]
) -> dict[int, Decimal]:
    """What each of these credit notes has applied to ``invoice``, net of releases."""
    ids = list(credit_note_ids)
    applied: dict[int, Decimal] = defaultdict(Decimal)
    if not ids:
        return applied
    for credit_note_id, amount in session.execute(
        select(tables.Allocation.credit_note_id, tables.Allocation.amount).where(
            tables.Allocation.invoice_id == invoice.id,
            tables.Allocation.credit_note_id.in_(ids),
        )
    ):
        if credit_note_id is not None:
            applied[credit_note_id] += amount  # exact decimals, summed in Python
    return applied


def release_credit(
    session: Session,
    invoice: tables.Document,
    amount: Decimal,
    credit_note_ids: Iterable[int],
    on: date,
) -> list[int]:
    """Take up to ``amount`` of what these credit notes applied to ``invoice`` back off it,
    the newest credit note first: the invoice owes it again and the credit notes hold it as the
    customer's credit. Each release is an allocation row of the amount released, negative.
    Returns the credit notes released from."""
    applied = credit_applied(session, invoice, credit_note_ids)
    released: list[int] = []
    left = amount
    for credit_note_id in sorted(applied, reverse=True):
        take = min(left, applied[credit_note_id])
        if take <= 0:
            continue
        note = session.get_one(tables.Document, credit_note_id)
        session.add(
            tables.Allocation(
                credit_note_id=note.id, invoice_id=invoice.id, amount=-take, allocated_on=on
            )
        )
        note.unapplied = (note.unapplied or ZERO) + take
        invoice.amount_credited -= take
        left -= take
        released.append(note.id)
    invoice.status = invoice_status(
        invoice.total, invoice.amount_paid, invoice.amount_credited
    ).value
    invoice.version += 1  # what it shows changed: its PDF is rendered again
    store.queue_renders(session, [invoice.id])
    writeback.mark(session, writeback.DOCUMENT, [invoice.id])
    session.flush()
    return released


def pay_instead_of_credit(
    session: Session,
    payment: tables.Payment,
    invoice: tables.Document,
    credit_note_ids: Iterable[int],
    on: date,
) -> list[int]:
    """The accounting system holds ``payment`` on ``invoice`` in full, and not these credit
    notes' application to it: release them from the invoice by as much of the payment as is
    still unapplied, and apply the payment there instead. Returns the credit notes released
    from (their credit is the customer's again)."""
    left = payment.unapplied or ZERO
    applied = credit_applied(session, invoice, credit_note_ids)
    amount = min(left, sum(applied.values(), ZERO))
    if amount <= 0:
        return []
    released = release_credit(session, invoice, amount, applied, on)
    _apply(session, payment, invoice, amount, on)
    session.flush()
    return released


def customers_with_credit(session: Session, customer_ids: list[int]) -> set[int]:
    payments = session.scalars(
        select(tables.Payment.customer_id).where(
            tables.Payment.customer_id.in_(customer_ids), tables.Payment.unapplied.is_not(None)
        )
    )
    notes = session.scalars(
        select(tables.Document.customer_id).where(
            tables.Document.customer_id.in_(customer_ids),
            tables.Document.kind == DocumentKind.CREDIT_NOTE.value,
            tables.Document.unapplied.is_not(None),
        )
    )
    return {*payments, *notes}


def _existing(
    session: Session, customer_id: int, kind: PaymentKind, reference: str | None, amount: Decimal
) -> tables.Payment | None:
    if reference is None:
        return None
    row = session.scalar(
        select(tables.Payment).where(
            tables.Payment.customer_id == customer_id,
            tables.Payment.kind == kind.value,
            tables.Payment.reference == reference,
        )
    )
    if row is not None and row.amount != amount:
        raise InvalidInputError(
            f"{kind} {reference!r} was already recorded with amount {row.amount}, not {amount}"
        )
    return row


def record_payment(
    session: Session,
    *,
    amount: Decimal | str,
    received_on: date,
    invoice_number: str | None = None,
    customer_id: int | None = None,
    reference: str | None = None,
    again: bool = False,
    max_amount: Mapping[str, Decimal] | None = None,
) -> tables.Payment:
    """Record money received, for an invoice or for a customer. It pays the named invoice first,
    then the customer's other open invoices, oldest first; anything left is customer credit.
    With a reference, recording the same payment again changes nothing; without one, a payment
    of the same amount on the same day for the same invoice (or customer) is refused as a
    duplicate unless ``again`` says it is another payment. With ``max_amount``
    (``billing.max_amount``), a payment of more than the customer owes plus the ceiling of its
    currency is refused as implausible (a mistyped amount), before anything is recorded."""
    invoice = None
    if invoice_number is not None:
        invoice = find_document(session, invoice_number, DocumentKind.INVOICE)
        if invoice.status == InvoiceStatus.VOID.value:
            raise BillingError(f"invoice {invoice_number} is void and cannot be paid")
        if customer_id is not None and customer_id != invoice.customer_id:
            raise InvalidInputError(f"invoice {invoice_number} belongs to another customer")
        customer_id = invoice.customer_id
    if customer_id is None:
        raise InvalidInputError("a payment needs an invoice number or a customer")
    customer = session.get(tables.Customer, customer_id)
    if customer is None:
        raise NotFoundError(f"unknown customer {customer_id}")
    code = invoice.currency if invoice is not None else customer.currency
    value = positive_amount(amount, code)
    existing = _existing(session, customer_id, PaymentKind.PAYMENT, reference, value)
    if existing is not None:
        return existing
    if max_amount is not None:
        _refuse_implausible(session, customer, value, code, max_amount)
    if reference is None and not again:
        _refuse_duplicate(
            session,
            PaymentKind.PAYMENT,
            customer_id,
            invoice.number if invoice is not None else f"customer {customer_id}",
            value,
            code,
            received_on,
            invoice_id=invoice.id if invoice is not None else None,
        )
    payment = tables.Payment(
        customer_id=customer_id,
        kind=PaymentKind.PAYMENT.value,
        currency=code,
        amount=value,
        received_on=received_on,
        reference=reference,
        invoice_id=invoice.id if invoice is not None else None,
        unapplied=value,
    )
    session.add(payment)
    session.flush()
    outbox.enqueue(session, PaymentKind.PAYMENT.value, [payment.id])
    webhook_events.emit_payment(session, payment, invoice.number if invoice else None)
    if invoice is not None and invoice.status == InvoiceStatus.OPEN.value:
        _apply(session, payment, invoice, min(value, due_of(invoice)), received_on)
    settle_customer(session, customer_id, received_on)
    keep_credit(payment)
    session.flush()
    return payment


def record_refund(
    session: Session,
    *,
    customer_id: int,
    amount: Decimal | str,
    refunded_on: date,
    currency_code: str | None = None,
    reference: str | None = None,
    again: bool = False,
) -> tables.Payment:
    """Return money to a customer out of its credit (over-payments, credit notes on paid
    invoices), oldest credit first. More than the credit held is refused. With a reference,
    recording the same refund again changes nothing; without one, a refund of the same amount
    and currency on the same day to the same customer is refused as a duplicate unless
    ``again`` says it is another refund."""
    customer = session.get(tables.Customer, customer_id)
    if customer is None:
        raise NotFoundError(f"unknown customer {customer_id}")
    code = currency(currency_code or customer.currency).code
    value = positive_amount(amount, code)
    existing = _existing(session, customer_id, PaymentKind.REFUND, reference, value)
    if existing is not None:
        return existing
    if reference is None and not again:
        _refuse_duplicate(
            session, PaymentKind.REFUND, customer_id, customer.name, value, code, refunded_on
        )
    sources = [s for s in _credits(session, customer_id) if s.currency == code]
    available = sum((s.unapplied or ZERO for s in sources), ZERO)
    if value > available:
        held = round_money(available, currency(code))
        raise BillingError(
            f"customer {customer_id} holds {held} {code} of credit; cannot refund {value}"
        )
    refund = tables.Payment(
        customer_id=customer_id,
        kind=PaymentKind.REFUND.value,
        currency=code,
        amount=value,
        received_on=refunded_on,
        reference=reference,
        unapplied=None,
    )
    session.add(refund)
    session.flush()
    outbox.enqueue(session, PaymentKind.REFUND.value, [refund.id])
    left = value
    from_credit = ZERO
    for source in sources:
        take = min(left, source.unapplied or ZERO)
        if take <= 0:
            continue
        if source.credit_kept is not None:
            from_credit += take
        _allocate(session, source, take, refunded_on, refund=refund)
        left -= take
    refund.credit_kept = from_credit  # a refund: what it paid out of customer credit
    session.flush()
    return refund


class DuplicatePaymentError(BillingError):
    """The same payment (or refund) seems to be recorded twice: same amount, day and invoice
    (or customer), and no reference to tell them apart."""


def _refuse_duplicate(  # noqa: PLR0917 - what identifies a payment without a reference
    session: Session,
    kind: PaymentKind,
    customer_id: int,
    what: str,
    amount: Decimal,
    code: str,
    on: date,
    *,
    invoice_id: int | None = None,
) -> None:
    """Refuse a payment or refund without a reference when one of the same amount, currency and
    day is recorded for the same invoice (payments) or customer (refunds), whatever its
    reference: most likely the same money recorded twice."""
    query = select(tables.Payment).where(
        tables.Payment.customer_id == customer_id,
        tables.Payment.kind == kind.value,
        tables.Payment.currency == code,
        tables.Payment.received_on == on,
    )
    if kind is PaymentKind.PAYMENT:
        query = query.where(
            tables.Payment.invoice_id == invoice_id
            if invoice_id is not None
            else tables.Payment.invoice_id.is_(None)
        )
    same = [
        row for row in session.scalars(query.order_by(tables.Payment.id)) if row.amount == amount
    ]
    if same:
        seen = f" (reference {same[0].reference})" if same[0].reference else ""
        raise DuplicatePaymentError(
            f"a {kind} of {amount} {code} on {on} for {what} is already recorded{seen}: "
            "not recorded twice"
        )


def _refuse_implausible(
    session: Session,
    customer: tables.Customer,
    value: Decimal,
    code: str,
    max_amount: Mapping[str, Decimal],
) -> None:
    """A payment above what the customer owes in ``code`` plus ``billing.max_amount``."""
    ceiling = ceiling_of(max_amount, code)
    if ceiling is None:
        return
    owed = max(
        (b.balance for b in balances(session, customer.id) if b.currency == code), default=ZERO
    )
    owed = max(owed, ZERO)
    if value > owed + ceiling:
        unit = currency(code)
        shown = {
            name: f"{round_money(v, unit):,f} {code}"
            for name, v in (("value", value), ("owed", owed), ("ceiling", ceiling))
        }
        raise InvalidInputError(
            f"amount {shown['value']} is more than {customer.name} owes ({shown['owed']}) plus "
            f"billing.max_amount ({shown['ceiling']}): check the amount, or raise "
            "billing.max_amount to record it"
        )


def positive_amount(amount: Decimal | str, code: str) -> Decimal:
    """An amount given by a person: a positive number with no more decimals than ``code``."""
    value = to_decimal(amount, what="amount")
    money = currency(code)
    if value <= 0:
        raise InvalidInputError(f"amount must be positive, not {value}")
    if round_money(value, money) != value:
        raise InvalidInputError(f"amount {value} has more decimals than {code} allows")
    return value


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    invoiced: Decimal
    credited: Decimal
    paid: Decimal
    refunded: Decimal

    @property
    def balance(self) -> Decimal:
        """Owed by the customer (positive) or held as credit (negative)."""
        return customer_balance([self.invoiced], [self.credited], [self.paid], [self.refunded])


def balances(session: Session, customer_id: int) -> list[Balance]:
    """The customer's balance in each currency it was billed or paid in."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: dict.fromkeys(("invoiced", "credited", "paid", "refunded"), ZERO)
    )
    docs = session.execute(
        select(tables.Document.kind, tables.Document.currency, tables.Document.total).where(
            tables.Document.customer_id == customer_id,
            tables.Document.status != InvoiceStatus.VOID.value,
        )
    )
    for kind, code, total in docs:
        totals[code]["invoiced" if kind == DocumentKind.INVOICE else "credited"] += total
    payments = session.execute(
        select(tables.Payment.kind, tables.Payment.currency, tables.Payment.amount).where(
            tables.Payment.customer_id == customer_id
        )
    )
    for kind, code, amount in payments:
        totals[code]["paid" if kind == PaymentKind.PAYMENT else "refunded"] += amount
    return [Balance(code, **values) for code, values in sorted(totals.items())]
