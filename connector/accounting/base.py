"""The accounting interface: what the sync engine hands to any accounting target.

Targets are built for remote APIs as much as for files: documents go in batches (at most
``max_batch``), every document carries an idempotency ``key`` derived from its type, id and
version (never random), and each comes back with its own :class:`PostResult`: done, to be tried
again (``retriable``), or refused with the target's message. A target must treat a document it
already holds as done, so that a retry after any crash posts nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
PAYMENT = "payment"
REFUND = "refund"
REVENUE = "revenue"
VOID = "void"  # an invoice issued in error, reversed whole
CREDIT_KEPT = "credit_kept"  # a payment finance recorded left customer credit
CREDIT_APPLIED = "credit_applied"  # customer credit held applied to a later invoice


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    name: str
    country: str
    currency: str
    tax_id: str | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """A document line. ``recognized`` is, on a credit note, the part of a recurring line
    whose revenue its invoice had already journaled when it was drafted: it is taken back from
    revenue, the rest from deferred revenue (on a void: the revenue journaled for the line).
    ``scheduled`` marks a one-time line dated on another day than its invoice: like recurring
    lines, it waits in deferred revenue and is recognized by the revenue close on its own
    service date (through the unbilled receivable when that day came before the invoice)."""

    product_code: str
    product_family: str | None
    recurring: bool
    amount: Decimal
    recognized: Decimal = Decimal(0)
    tax_rate: Decimal = Decimal(0)  # percent
    description: str = ""
    scheduled: bool = False

    @property
    def deferred(self) -> bool:
        """The invoice credits deferred revenue for it (the revenue close recognizes it)."""
        return self.recurring or self.scheduled


@dataclass(frozen=True, slots=True)
class Tax:
    """Tax of one rate of a document, owed in ``jurisdiction`` (a country, ``FR``, or a region,
    ``US-CA``; empty: the customer's country). A reverse-charged tax has rate and amount 0: the
    customer accounts for it."""

    rate: Decimal
    amount: Decimal
    jurisdiction: str = ""
    reverse_charge: bool = False


@dataclass(frozen=True, slots=True)
class Invoice:
    """An invoice, a credit note, or the void of an invoice (``document_type``); amounts are
    positive for all three. A void reverses the invoice whole: ``recognized`` on its lines is
    the revenue already journaled for them."""

    key: str
    document_type: str
    document_id: int
    number: str
    customer: Customer
    issue_date: date
    due_date: date
    currency: str
    lines: tuple[Line, ...]
    taxes: tuple[Tax, ...]
    total: Decimal
    invoice_number: str | None = None  # the invoice a credit note credits
    applied: Decimal = Decimal(0)  # how much of a credit note the billing core applied to it
    credit: Decimal = Decimal(0)  # a credit note: what it left as the customer's credit
    booking_date: date | None = None  # booked on this day: its own is in a closed period
    # A credit note: every invoice the billing core applied it to (its own, and others as
    # customer credit), with the amount; empty for other documents.
    applied_to: tuple[tuple[str, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class Payment:
    """Money received (``payment``) or paid back (``refund``). ``credit`` is the part that is
    the customer's credit: what a payment left over once it paid what it could (an
    over-payment), what a refund paid out of credit. ``credit_kept`` (a payment finance
    recorded in accounting: the over-payment to move to customer credit) and
    ``credit_applied`` (credit held applied to the invoice ``invoice_number``: ``amount`` now,
    ``credit`` what its source has applied to that invoice in all) move credit only.
    """

    key: str
    document_type: str
    document_id: int
    customer: Customer
    paid_on: date
    currency: str
    amount: Decimal
    invoice_number: str | None = None
    reference: str | None = None
    credit_note_number: str | None = None  # a refund: the credit note it pays out
    credit: Decimal = Decimal(0)
    booking_date: date | None = None  # booked on this day: its own is in a closed period


@dataclass(frozen=True, slots=True)
class RevenueAmount:
    product_code: str
    product_family: str | None
    amount: Decimal  # negative for a credit note's revenue
    recurring: bool = True  # a one-time line recognized on its service date: False


JOURNAL_DEFERRED = "deferred"  # deferred revenue to revenue
JOURNAL_UNBILLED = "unbilled"  # earned before its invoice: the unbilled receivable to revenue
JOURNAL_INVOICED = "invoiced"  # on the invoice's date: deferred revenue to the unbilled receivable


@dataclass(frozen=True, slots=True)
class RevenueJournal:
    """Revenue of one invoice or credit note recognized for ``period``; ``kind`` says from
    which account (``deferred``, ``unbilled``) or, for ``invoiced``, what the invoice clears of
    the unbilled receivable on its issue date."""

    key: str
    document_id: int
    journal_date: date
    period_start: date
    period_end: date
    customer: Customer
    currency: str
    source_number: str
    invoice_number: str | None
    amounts: tuple[RevenueAmount, ...]
    kind: str = JOURNAL_DEFERRED
    booking_date: date | None = None  # booked on this day: its own is in a closed period

    document_type = REVENUE


Document = Invoice | Payment | RevenueJournal


@dataclass(frozen=True, slots=True)
class PostResult:
    key: str
    ok: bool
    external_id: str | None = None
    error: str | None = None
    retriable: bool = False


@dataclass(frozen=True, slots=True)
class ExternalPayment:
    """A payment recorded in accounting, not by the connector."""

    reference: str  # stable: recording it again changes nothing
    invoice_number: str
    amount: Decimal
    currency: str
    date: date
    where: str  # where it was found, for messages
    problem: str | None = None  # it cannot be matched (why): listed for a person to fix


class AccountingTarget(Protocol):
    name: str
    max_batch: int

    def upsert_customers(self, customers: Sequence[Customer]) -> list[PostResult]: ...

    def post(
        self, documents: Sequence[Document], retried: frozenset[str] = frozenset()
    ) -> list[PostResult]:
        """Post ``documents``; ``retried`` holds the keys of those an earlier attempt may have
        delivered (its answer never came back), which the target must look for first."""
        ...

    def payments(self, since: str | None) -> tuple[list[ExternalPayment], str | None]:
        """Payments recorded in accounting since the cursor ``since``, and the next cursor."""
        ...


def document_key(document_type: str, document_id: int, version: int = 1) -> str:
    """The idempotency key of one version of a document."""
    return f"{document_type}:{document_id}:v{version}"
