"""Corrections finance makes by hand: a credit note on an invoice, paid or not, and a refund of
the customer's credit, each exactly once.

A credit note issued by hand is the billing run's kind of credit note: drafted on the invoice's
lines (each line of it names the invoice line it credits, over that line's service, so that
revenue is taken back on the invoice's days), taxed on everything credited against the invoice
so far (a full credit gives back exactly the invoice's tax), issued through the same numbering,
outbox and settlement (it reduces what its invoice still owes; what is left is the customer's
credit). It is no billing run's decision: no charge stands behind it, so reconciling the
subscription later neither takes it back nor bills it again.

It is idempotent: its reference (``--reference``, or the invoice and the reason when none is
given) is unique among credit notes, so issuing the same correction again finds the one issued.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.charges import Charge
from connector.billing.invoicing import DocumentKind, DraftLine, draft_credit_note
from connector.billing.money import ZERO, Currency, currency, round_money, split_proportionally
from connector.billing.payments import InvoiceStatus
from connector.billing.periods import Period
from connector.billing.subscriptions import SubscriptionItem
from connector.db import tables
from connector.db.catalog import PriceCache
from connector.db.documents import find_document, load_tax_history
from connector.db.engine import is_unique_violation, transaction
from connector.db.subscriptions import load_subscriptions
from connector.errors import BillingError, InvalidInputError
from connector.settings import Settings
from connector.sync.issuing import check_issue_date, issue
from connector.sync.settlement import credit_held, positive_amount, record_refund

MAX_REASON = 500


@dataclass(frozen=True)
class Credited:
    """The credit note of a correction; ``issued`` is False when it had been issued before."""

    credit_note: tables.Document
    invoice: tables.Document
    customer: str
    issued: bool


def natural_reference(invoice_number: str, reason: str) -> str:
    """The reference of a correction given none: its invoice and its reason."""
    digest = hashlib.sha256(reason.encode()).hexdigest()[:16]
    return f"{invoice_number}:{digest}"


def credit_invoice(
    factory: sessionmaker[Session],
    settings: Settings,
    number: str,
    *,
    reason: str,
    on: date,
    amount: Decimal | str | None = None,
    lines: Mapping[int, Decimal | str | None] | None = None,
    reference: str | None = None,
) -> Credited:
    """Credit the invoice ``number`` as of ``on``: ``amount`` before tax (spread over its lines
    in proportion to what each still holds), or ``lines`` (line positions, from 1, as the
    invoice lists them, each with an amount before tax, or None for all it still holds), or
    else everything it still holds. Issuing the same correction again (its ``reference``, or
    the invoice and ``reason``) returns the credit note issued the first time."""
    for attempt in (1, 2):
        try:
            with transaction(factory) as session:
                return credit_in(
                    session,
                    settings,
                    number,
                    reason=reason,
                    on=on,
                    amount=amount,
                    lines=lines,
                    reference=reference,
                )
        except IntegrityError as error:  # the same correction, issued at the same moment
            if attempt == 2 or not is_unique_violation(error):
                raise
    raise AssertionError("unreachable")


def credit_in(
    session: Session,
    settings: Settings,
    number: str,
    *,
    reason: str,
    on: date,
    amount: Decimal | str | None = None,
    lines: Mapping[int, Decimal | str | None] | None = None,
    reference: str | None = None,
) -> Credited:
    """:func:`credit_invoice` in the caller's transaction (which, when the same correction is
    issued at the same moment, fails on its unique reference: try it again)."""
    reason = " ".join(reason.split())
    if not reason:
        raise InvalidInputError("a credit note needs a reason")
    if len(reason) > MAX_REASON:
        raise InvalidInputError(f"the reason is longer than {MAX_REASON} characters")
    if amount is not None and lines is not None:
        raise InvalidInputError("give an amount or lines to credit, not both")
    invoice = _locked_invoice(session, number)
    customer = session.get_one(tables.Customer, invoice.customer_id).name
    key = (reference or "").strip() or natural_reference(invoice.number, reason)
    money = currency(invoice.currency)
    rows = _invoice_lines(session, invoice)
    done = session.scalar(
        select(tables.Document).where(
            tables.Document.kind == DocumentKind.CREDIT_NOTE.value,
            tables.Document.reference == key,
        )
    )
    if done is not None:
        _same_correction(session, done, invoice, key, amount, lines, rows)
        return Credited(done, invoice, customer, issued=False)
    if invoice.status == InvoiceStatus.VOID.value:
        raise BillingError(f"invoice {invoice.number} is void: there is nothing to credit")
    credits = _credits(rows, money, amount, lines, invoice.number)
    if not credits:
        raise BillingError(f"invoice {invoice.number} has nothing left to credit")
    check_issue_date(session, on)
    draft = draft_credit_note(
        _draft_lines(session, invoice, rows, credits, reason),
        invoice_id=invoice.id,
        period=Period(invoice.period_start, invoice.period_end),
        currency=money,
        issue_date=on,
        rounding=settings.tax.rounding,
        tax_history=load_tax_history(session, [invoice.id]).get(invoice.id),
    )
    (issued,) = issue(
        session, settings.billing, [(draft, invoice.customer_id, invoice.subscription_id)], {}, on
    )
    note = session.get_one(tables.Document, issued.id)
    note.reference, note.reason = key, reason
    session.flush()
    return Credited(note, invoice, customer, issued=True)


def _locked_invoice(session: Session, number: str) -> tables.Document:
    """The invoice, locked until the transaction ends (PostgreSQL: two corrections of one
    invoice wait for each other; SQLite has one writer at a time)."""
    invoice = find_document(session, number, DocumentKind.INVOICE)
    return session.scalars(
        select(tables.Document)
        .where(tables.Document.id == invoice.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _invoice_lines(session: Session, invoice: tables.Document) -> list[tables.DocumentLine]:
    return list(
        session.scalars(
            select(tables.DocumentLine)
            .where(tables.DocumentLine.document_id == invoice.id)
            .order_by(tables.DocumentLine.id)
        )
    )


def _credits(
    rows: list[tables.DocumentLine],
    money: Currency,
    amount: Decimal | str | None,
    lines: Mapping[int, Decimal | str | None] | None,
    number: str,
) -> dict[int, Decimal]:
    """What to credit of each invoice line (by index), never more than it still holds."""
    left = [row.amount - row.credited_amount for row in rows]
    if lines is not None:
        credits: dict[int, Decimal] = {}
        for position, wanted in sorted(lines.items()):
            if not 1 <= position <= len(rows):
                raise InvalidInputError(f"invoice {number} has no line {position}")
            index = position - 1
            value = left[index] if wanted is None else positive_amount(wanted, money.code)
            if value > left[index]:
                raise BillingError(
                    f"line {position} of {number} has {left[index]} {money.code} left to "
                    f"credit (before tax), not {value}"
                )
            credits[index] = value
    elif amount is not None:
        value = positive_amount(amount, money.code)
        holds = sum(left, ZERO)
        if value > holds:
            raise BillingError(
                f"invoice {number} has {holds} {money.code} left to credit (before tax), "
                f"not {value}"
            )
        credits = dict(enumerate(split_proportionally(value, left, money)))
    else:
        credits = dict(enumerate(left))
    return {index: value for index, value in credits.items() if value > 0}


def _draft_lines(
    session: Session,
    invoice: tables.Document,
    rows: list[tables.DocumentLine],
    credits: dict[int, Decimal],
    reason: str,
) -> list[DraftLine]:
    items = _items(session, invoice)
    drafted = []
    for index, value in sorted(credits.items()):
        row = rows[index]
        item = items.get(row.subscription_item_id or 0)
        if item is None:
            raise BillingError(f"line {index + 1} of {invoice.number} has no subscription item")
        charge_row = session.get(tables.Charge, row.charge_id) if row.charge_id else None
        charge = Charge(
            item=item,
            key_date=charge_row.period_start if charge_row else row.service_start,
            period=Period(invoice.period_start, invoice.period_end),
            service=Period(row.service_start, row.service_end),
            amount=-value,
            quantity=row.quantity,
            discount_percent=row.discount_percent,
            adjustment=True,
        )
        drafted.append(
            DraftLine(
                charge,
                value,
                row.tax_rate,
                credited_line_id=row.id,
                description=f"{row.description} (credited: {reason})",
            )
        )
    return drafted


def _items(session: Session, invoice: tables.Document) -> dict[int, SubscriptionItem]:
    if invoice.subscription_id is None:
        return {}
    row = session.get_one(tables.Subscription, invoice.subscription_id)
    subscription = load_subscriptions(session, [row], PriceCache())[row.id]
    return {item.id: item for item in subscription.items if item.id is not None}


def _same_correction(  # noqa: PLR0917 - what was asked, and what was issued
    session: Session,
    done: tables.Document,
    invoice: tables.Document,
    key: str,
    amount: Decimal | str | None,
    lines: Mapping[int, Decimal | str | None] | None,
    rows: list[tables.DocumentLine],
) -> None:
    """A correction issued before under ``key`` must be this one: of the same invoice, and of
    the same amount or the same lines when they are given."""
    if done.invoice_id != invoice.id:
        other = session.get_one(tables.Document, done.invoice_id)
        raise InvalidInputError(
            f"reference {key!r} was used for {done.number}, a credit of {other.number}"
        )
    taken = {
        line.credited_line_id: line.amount
        for line in session.scalars(
            select(tables.DocumentLine).where(tables.DocumentLine.document_id == done.id)
        )
    }
    asked = str(amount) if amount is not None else None
    differs = amount is not None and Decimal(asked or "0") != done.subtotal
    if lines is not None:
        wanted = {rows[p - 1].id: w for p, w in lines.items() if 1 <= p <= len(rows)}
        differs = set(wanted) != set(taken) or any(
            w is not None and Decimal(str(w)) != taken[i] for i, w in wanted.items()
        )
    if differs:
        raise InvalidInputError(
            f"{invoice.number} was already credited by {done.number} (subtotal {done.subtotal} "
            f"{done.currency}) under {key!r}: to credit it again, give another reference"
        )


@dataclass(frozen=True)
class Refunded:
    """A refund recorded (or found again under its reference), and the credit left after it."""

    refund: tables.Payment
    customer: str
    credit_left: Decimal


def refund(
    session: Session,
    number: str,
    *,
    amount: Decimal | str,
    on: date,
    reference: str | None = None,
    again: bool = False,
) -> Refunded:
    """Pay ``amount`` back, on ``on``, out of the credit the customer of the invoice or credit
    note ``number`` holds in its currency (what a credit note on a paid invoice, or an
    over-payment, left): see :func:`connector.sync.settlement.record_refund`."""
    document = find_document(session, number)
    row = record_refund(
        session,
        customer_id=document.customer_id,
        amount=amount,
        refunded_on=on,
        currency_code=document.currency,
        reference=reference,
        again=again,
    )
    customer = session.get_one(tables.Customer, document.customer_id).name
    left = credit_held(session, document.customer_id, document.currency)
    return Refunded(row, customer, round_money(left, currency(document.currency)))
