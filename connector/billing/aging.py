"""Aged receivables: what customers still owe, by how long it is past due, per currency.

Each invoice's amount still owed on the as-of date (its total less the payments and credit
notes applied to it by then) falls in one bucket by its days past due: ``current`` (not yet due:
due on the as-of date or later), then 1–30, 31–60, 61–90 and over 90 days past due. Unapplied
customer credit (payments beyond what was due, credit notes left over) is its own column,
never netted against what is owed. Amounts stay in their currency; nothing is converted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from connector.billing.money import ZERO, Currency, currency

CURRENT = "current"
BUCKETS = (CURRENT, "days_1_30", "days_31_60", "days_61_90", "days_over_90")
BUCKET_LIMITS = ((0, CURRENT), (30, "days_1_30"), (60, "days_31_60"), (90, "days_61_90"))


def bucket_of(days_past_due: int) -> str:
    """The bucket of an amount ``days_past_due`` days past its due date (0 or less: current)."""
    for last_day, name in BUCKET_LIMITS:
        if days_past_due <= last_day:
            return name
    return "days_over_90"


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    customer_id: int
    currency: str
    due_date: date
    owed: Decimal  # still owed on the as-of date


@dataclass(frozen=True, slots=True)
class Credit:
    customer_id: int
    currency: str
    amount: Decimal  # unapplied on the as-of date


@dataclass
class AgedAmounts:
    """One line of the report: amounts per bucket, their total, and unapplied credit."""

    money: Currency
    buckets: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(BUCKETS, ZERO))
    credit: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        """What is owed, all buckets together (credit is not taken off)."""
        return sum(self.buckets.values(), ZERO)

    def add(self, other: AgedAmounts) -> None:
        for name in BUCKETS:
            self.buckets[name] += other.buckets[name]
        self.credit += other.credit

    def to_dict(self) -> dict[str, Decimal]:
        quantum = self.money.quantum
        return {
            **{name: self.buckets[name].quantize(quantum) for name in BUCKETS},
            "total": self.total.quantize(quantum),
            "credit": self.credit.quantize(quantum),
        }


@dataclass(frozen=True)
class CustomerAging:
    customer_id: int
    name: str
    amounts: AgedAmounts


@dataclass(frozen=True)
class CurrencyAging:
    currency: str
    customers: list[CustomerAging]
    totals: AgedAmounts


def age(
    invoices: Iterable[OpenInvoice],
    credits: Iterable[Credit],
    names: dict[int, str],
    as_of: date,
) -> list[CurrencyAging]:
    """The report per currency (in code order), customers by name; customers that owe nothing
    and hold no credit are left out."""
    lines: dict[tuple[str, int], AgedAmounts] = {}

    def line(code: str, customer_id: int) -> AgedAmounts:
        key = (code, customer_id)
        if key not in lines:
            lines[key] = AgedAmounts(currency(code))
        return lines[key]

    for invoice in invoices:
        if invoice.owed > 0:
            days = (as_of - invoice.due_date).days
            line(invoice.currency, invoice.customer_id).buckets[bucket_of(days)] += invoice.owed
    for credit in credits:
        if credit.amount > 0:
            line(credit.currency, credit.customer_id).credit += credit.amount
    report = []
    for code in sorted({code for code, _ in lines}):
        customers = sorted(
            (
                CustomerAging(
                    customer_id, names.get(customer_id, f"customer {customer_id}"), amounts
                )
                for (line_code, customer_id), amounts in lines.items()
                if line_code == code
            ),
            key=lambda c: (c.name.casefold(), c.customer_id),
        )
        totals = AgedAmounts(currency(code))
        for customer in customers:
            totals.add(customer.amounts)
        report.append(CurrencyAging(code, customers, totals))
    return report
