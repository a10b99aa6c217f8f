"""Aging buckets and the report's arithmetic, on plain values."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from connector.billing.aging import Credit, OpenInvoice, age, bucket_of

D = Decimal
AS_OF = date(2026, 6, 30)


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (-31, "current"),
        (0, "current"),  # due today: not yet past due
        (1, "days_1_30"),
        (30, "days_1_30"),
        (31, "days_31_60"),
        (60, "days_31_60"),
        (61, "days_61_90"),
        (90, "days_61_90"),
        (91, "days_over_90"),
        (10_000, "days_over_90"),
    ],
)
def test_buckets_by_days_past_due(days: int, bucket: str) -> None:
    assert bucket_of(days) == bucket


def test_amounts_add_up_per_customer_and_currency_and_credit_is_never_netted() -> None:
    def owed(customer: int, code: str, days: int, amount: str) -> OpenInvoice:
        return OpenInvoice(customer, code, AS_OF - timedelta(days=days), D(amount))

    invoices = [
        owed(1, "USD", -5, "100.00"),
        owed(1, "USD", 45, "20.50"),
        owed(1, "USD", 60, "0.25"),
        owed(1, "USD", 120, "7.00"),
        owed(1, "EUR", 91, "238.00"),
        owed(2, "USD", 30, "50.00"),
        owed(2, "USD", 31, "0.00"),  # settled: no line of its own
        owed(3, "JPY", 61, "15000"),
    ]
    credits = [Credit(2, "USD", D("300.00")), Credit(4, "USD", D("0.00"))]
    names = {1: "acme", 2: "Beta", 3: "Chiba", 4: "Delta"}

    report = age(invoices, credits, names, AS_OF)

    assert [section.currency for section in report] == ["EUR", "JPY", "USD"]
    usd = report[2]
    assert [(c.name, c.amounts.to_dict()) for c in usd.customers] == [
        (
            "acme",
            {
                "current": D("100.00"),
                "days_1_30": D("0.00"),
                "days_31_60": D("20.75"),
                "days_61_90": D("0.00"),
                "days_over_90": D("7.00"),
                "total": D("127.75"),
                "credit": D("0.00"),
            },
        ),
        (
            "Beta",
            {
                "current": D("0.00"),
                "days_1_30": D("50.00"),
                "days_31_60": D("0.00"),
                "days_61_90": D("0.00"),
                "days_over_90": D("0.00"),
                "total": D("50.00"),
                "credit": D("300.00"),
            },
        ),
    ]
    assert usd.totals.to_dict() == {
        "current": D("100.00"),
        "days_1_30": D("50.00"),
        "days_31_60": D("20.75"),
        "days_61_90": D("0.00"),
        "days_over_90": D("7.00"),
        "total": D("177.75"),
        "credit": D("300.00"),
    }
    assert report[1].totals.to_dict()["days_61_90"] == D("15000")  # JPY: no minor unit
    assert report[0].totals.to_dict()["days_over_90"] == D("238.00")


def test_nothing_owed_and_no_credit_is_an_empty_report() -> None:
    assert age([], [Credit(1, "USD", D(0))], {}, AS_OF) == []
