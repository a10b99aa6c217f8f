"""Settlement: amounts due, statuses, applying funds, customer balances."""

from decimal import Decimal

import pytest

from connector.billing.payments import (
    InvoiceStatus,
    amount_due,
    apply_funds,
    customer_balance,
    invoice_status,
)

D = Decimal


@pytest.mark.parametrize(
    ("total", "paid", "credited", "due", "status"),
    [
        ("110.00", "0", "0", "110.00", InvoiceStatus.OPEN),
        ("110.00", "50.00", "0", "60.00", InvoiceStatus.OPEN),
        ("110.00", "50.00", "60.00", "0", InvoiceStatus.PAID),
        ("110.00", "110.00", "0", "0", InvoiceStatus.PAID),
        ("110.00", "120.00", "0", "0", InvoiceStatus.PAID),  # over-paid: nothing is due
        ("110.00", "0", "109.99", "0.01", InvoiceStatus.OPEN),
        ("0.00", "0", "0", "0", InvoiceStatus.PAID),
    ],
)
def test_amount_due_and_status(
    total: str, paid: str, credited: str, due: str, status: InvoiceStatus
) -> None:
    assert amount_due(D(total), D(paid), D(credited)) == D(due)
    assert invoice_status(D(total), D(paid), D(credited)) is status


def test_apply_funds_oldest_first_never_beyond_what_is_due() -> None:
    targets = [("INV-1", D("100.00")), ("INV-2", D("50.00")), ("INV-3", D("80.00"))]
    applied, left = apply_funds(D("120.00"), targets)
    assert applied == [("INV-1", D("100.00")), ("INV-2", D("20.00"))]
    assert left == D("0.00")


def test_apply_funds_keeps_an_over_payment_as_credit() -> None:
    targets = [("INV-1", D("100.00")), ("INV-2", D("0.00")), ("INV-3", D("30.00"))]
    applied, left = apply_funds(D("150.00"), targets)
    assert applied == [("INV-1", D("100.00")), ("INV-3", D("30.00"))]
    assert left == D("20.00")


def test_apply_nothing() -> None:
    assert apply_funds(D("0"), [("INV-1", D("10.00"))]) == ([], D("0"))
    assert apply_funds(D("10.00"), []) == ([], D("10.00"))


def test_customer_balance() -> None:
    invoices = [D("110.00"), D("55.00")]
    credit_notes = [D("20.00")]
    payments = [D("110.00"), D("60.00")]
    refunds = [D("5.00")]
    # 165.00 - 20.00 - 170.00 + 5.00 = -20.00: the customer holds 20.00 of credit.
    assert customer_balance(invoices, credit_notes, payments, refunds) == D("-20.00")
    assert customer_balance([D("99.99")], [], [], []) == D("99.99")
    assert customer_balance([], [], [], []) == D("0")
