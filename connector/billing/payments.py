"""Settlement of invoices: payments, credit notes, refunds, statuses and balances.

Money received or credited is applied to what is due, oldest first, never beyond what an invoice
still owes; what is left stays with the customer as credit (an over-payment, a credit note on a
paid invoice) until it is applied to a later invoice or refunded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from connector.billing.money import ZERO

Target = TypeVar("Target")


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    VOID = "void"


class PaymentKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


def amount_due(total: Decimal, paid: Decimal, credited: Decimal) -> Decimal:
    return max(ZERO, total - paid - credited)


def invoice_status(total: Decimal, paid: Decimal, credited: Decimal) -> InvoiceStatus:
    """Open while anything is due; paid once payments and credits cover the total."""
    return InvoiceStatus.PAID if amount_due(total, paid, credited) == 0 else InvoiceStatus.OPEN


def apply_funds(
    available: Decimal, targets: Sequence[tuple[Target, Decimal]]
) -> tuple[list[tuple[Target, Decimal]], Decimal]:
    """Apply ``available`` to ``(target, due)`` pairs in order; returns the applications and
    what is left over."""
    applied: list[tuple[Target, Decimal]] = []
    left = available
    for target, due in targets:
        if left <= 0:
            break
        take = min(left, due)
        if take > 0:
            applied.append((target, take))
            left -= take
    return applied, left


def customer_balance(
    invoices: Iterable[Decimal],
    credit_notes: Iterable[Decimal],
    payments: Iterable[Decimal],
    refunds: Iterable[Decimal],
) -> Decimal:
    """What the customer owes (positive) or holds as credit (negative): invoices less credit
    notes less payments plus refunds. Void documents are left out by the caller."""
    return sum(invoices, ZERO) - sum(credit_notes, ZERO) - sum(payments, ZERO) + sum(refunds, ZERO)
