"""The JSON each document becomes in Xero: exact bodies for the scenario's documents."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from connector.accounting.base import Line, Tax
from connector.accounting.chart import XeroChart
from connector.accounting.xero import payloads
from tests.accounting.documents import ALICE, MULLER, credit_note, invoice, payment, revenue

D = Decimal
CHART = XeroChart(
    revenue_by_product={"SETUP": "270"},
    revenue_by_family={"Services": "280"},
    tax_types={D("7.25"): "TAX001", "DE": {D("19"): "TAX003", D("7"): "TAX004"}, D("0"): "NONE"},
)


def test_an_invoice_carries_xeros_own_line_tax_and_our_rounding_on_the_largest_line() -> None:
    """Xero's tax per line is 2.42 each (7.26); ours, once for the rate, is 7.25: the largest
    line (Setup, 33.34) carries the difference."""
    doc = invoice(
        21,
        "INV-000021",
        ALICE,
        date(2026, 3, 1),
        lines=[
            Line("PRO", "Platform", True, D("33.33"), tax_rate=D("7.25"), description="Pro"),
            Line("PRO", "Platform", True, D("33.33"), tax_rate=D("7.25"), description="Pro"),
            Line("SETUP", None, False, D("33.34"), tax_rate=D("7.25"), description="Setup"),
        ],
        taxes=[Tax(D("7.25"), D("7.25"))],
        total="107.25",
        due=date(2026, 3, 31),
    )
    body = payloads.invoice(doc, "c-1", CHART)
    assert body == {
        "Type": "ACCREC",
        "Contact": {"ContactID": "c-1"},
        "Date": "2026-03-01",
        "DueDate": "2026-03-31",
        "InvoiceNumber": "INV-000021",
        "Reference": "INV-000021",
        "CurrencyCode": "USD",
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": [
            {
                "Description": "Pro",
                "Quantity": D(1),
                "UnitAmount": D("33.33"),
                "LineAmount": D("33.33"),
                "AccountCode": "835",
                "TaxType": "TAX001",
                "TaxAmount": D("2.42"),
            },
            {
                "Description": "Pro",
                "Quantity": D(1),
                "UnitAmount": D("33.33"),
                "LineAmount": D("33.33"),
                "AccountCode": "835",
                "TaxType": "TAX001",
                "TaxAmount": D("2.42"),
            },
            {
                "Description": "Setup",
                "Quantity": D(1),
                "UnitAmount": D("33.34"),
                "LineAmount": D("33.34"),
                "AccountCode": "270",
                "TaxType": "TAX001",
                "TaxAmount": D("2.41"),
            },
        ],
    }
    lines = body["LineItems"]
    assert sum(item["LineAmount"] + item["TaxAmount"] for item in lines) == doc.total


def test_a_credit_note_takes_recognized_revenue_back_from_revenue_the_rest_from_deferred() -> None:
    doc = credit_note(
        4,
        "CN-000001",
        "INV-000002",
        MULLER,
        date(2026, 2, 1),
        lines=[
            Line("PRO", "Platform", True, D("100.00"), recognized=D("70.97"), tax_rate=D("19")),
            Line("TRAINING", "Services", False, D("50.00"), tax_rate=D("7")),
        ],
        taxes=[Tax(D("19"), D("19.00")), Tax(D("7"), D("3.50"))],
        total="172.50",
    )
    body = payloads.credit_note(doc, "c-2", CHART)
    assert body["Type"] == "ACCRECCREDIT"
    assert body["CreditNoteNumber"] == body["Reference"] == "CN-000001"
    assert [
        (item["AccountCode"], item["LineAmount"], item["TaxType"], item["TaxAmount"])
        for item in body["LineItems"]
    ] == [
        ("200", D("70.97"), "TAX003", D("13.48")),
        ("835", D("29.03"), "TAX003", D("5.52")),
        ("280", D("50.00"), "TAX004", D("3.50")),
    ]


def test_a_rate_without_a_tax_type_is_refused_with_the_fix() -> None:
    doc = invoice(
        22,
        "INV-000022",
        ALICE,
        date(2026, 3, 1),
        lines=[Line("PRO", "Platform", True, D("10.00"), tax_rate=D("8.875"))],
        taxes=[Tax(D("8.875"), D("0.89"))],
        total="10.89",
    )
    with pytest.raises(payloads.UnmappableError) as refused:
        payloads.invoice(doc, "c-1", CHART)
    assert str(refused.value) == (
        "no Xero TaxType for tax rate 8.875% in US: add it under xero.tax_types in the "
        "accounting mapping file (US: {8.875: …}, or 8.875: … for every country)"
    )


def test_a_countrys_own_tax_type_wins_over_the_rate_for_every_country() -> None:
    chart = XeroChart(tax_types={"20": "TAX002", "FR": {"20": "TAX005"}})
    lines = [Line("PRO", "Platform", True, D("10.00"), tax_rate=D("20"))]
    for customer, tax_type in ((ALICE, "TAX002"), (replace(ALICE, country="FR"), "TAX005")):
        doc = invoice(
            23,
            "INV-000023",
            customer,
            date(2026, 3, 1),
            lines=lines,
            taxes=[Tax(D("20"), D("2.00"))],
            total="12.00",
        )
        [item] = payloads.invoice(doc, "c-1", chart)["LineItems"]
        assert (item["TaxType"], item["TaxAmount"]) == (tax_type, D("2.00"))


def test_payments_and_refunds_carry_the_reference_they_are_found_by() -> None:
    paid = payment(5, ALICE, date(2026, 1, 15), "1000.00", "INV-000001", reference="wire-1")
    refund = payment(8, MULLER, date(2026, 2, 5), "119.00", None, refund=True)
    assert payloads.payment(paid, {"InvoiceID": "i-1"}, CHART) == {
        "Invoice": {"InvoiceID": "i-1"},
        "Account": {"Code": "090"},
        "Date": "2026-01-15",
        "Amount": D("1000.00"),
        "Reference": "PAY-5",
    }
    assert payloads.payment(refund, {"CreditNoteID": "n-1"}, CHART)["CreditNote"] == {
        "CreditNoteID": "n-1"
    }
    assert payloads.payment_reference(refund) == "REFUND-8"


def test_revenue_of_a_month_becomes_one_balanced_manual_journal() -> None:
    jan1, jan31 = date(2026, 1, 1), date(2026, 1, 31)
    journals = [
        revenue(9, ALICE, "INV-000001", jan1, jan31, amounts=[("PRO", "Platform", "400.00")]),
        revenue(
            11,
            ALICE,
            "INV-000002",
            jan1,
            jan31,
            amounts=[("PRO", "Platform", "70.97"), ("TRAINING", "Services", "50.00")],
        ),
        revenue(
            13,
            ALICE,
            "CN-000001",
            jan1,
            jan31,
            amounts=[("PRO", "Platform", "-29.03")],
            journal_date=date(2026, 1, 20),
        ),
    ]
    narration = payloads.narration("2026-01", "USD", [j.key for j in journals])
    body = payloads.manual_journal(journals, CHART, narration)
    assert body == {
        "Narration": narration,
        "Date": "2026-01-31",
        "Status": "POSTED",
        "LineAmountTypes": "NoTax",
        "JournalLines": [
            {
                "AccountCode": "200",
                "LineAmount": D("-441.94"),
                "Description": "Subscription revenue recognized",
            },
            {
                "AccountCode": "280",
                "LineAmount": D("-50.00"),
                "Description": "Subscription revenue recognized",
            },
            {
                "AccountCode": "835",
                "LineAmount": D("491.94"),
                "Description": "Deferred revenue released",
            },
        ],
    }
    assert narration.startswith("Revenue recognized 2026-01 (USD), billing connector ")
    assert narration == payloads.narration("2026-01", "USD", reversed([j.key for j in journals]))


def test_revenue_that_cancels_out_makes_no_journal() -> None:
    jan1, jan31 = date(2026, 1, 1), date(2026, 1, 31)
    journals = [
        revenue(1, ALICE, "INV-1", jan1, jan31, amounts=[("PRO", None, "10.00")]),
        revenue(2, ALICE, "CN-1", jan1, jan31, amounts=[("PRO", None, "-10.00")]),
    ]
    assert payloads.manual_journal(journals, CHART, "n") is None


def test_idempotency_keys_are_derived_from_the_documents_and_what_is_sent() -> None:
    keys = [f"invoice:{n}:v1" for n in range(1, 51)]
    body = {"Invoices": [{"InvoiceNumber": f"INV-{n}", "Total": D("1.00")} for n in range(50)]}
    key = payloads.batch_key("Invoices", keys, body)
    assert key == payloads.batch_key("Invoices", list(keys), {**body})
    assert key.startswith("Invoices:invoice:1:v1:50:")
    assert len(key) <= 128
    assert key != payloads.batch_key("Invoices", [*keys[:49], "invoice:51:v1"], body)
    assert key != payloads.batch_key("Invoices", [*keys[:49], "invoice:50:v2"], body)
    fixed = {"Invoices": [*body["Invoices"][:49], {"InvoiceNumber": "INV-49", "Total": D("2")}]}
    assert key != payloads.batch_key("Invoices", keys, fixed)  # sent again after a fix


def test_xero_dates_and_timestamps_are_read_in_utc() -> None:
    assert payloads.parse_date("/Date(1773532800000+0000)/") == date(2026, 3, 15)
    assert payloads.parse_date("2026-03-15T00:00:00") == date(2026, 3, 15)
    assert payloads.parse_timestamp("/Date(1773578096123+0000)/") == datetime(
        2026, 3, 15, 12, 34, 56, 123000, tzinfo=UTC
    )
    assert payloads.parse_timestamp("2026-03-15T12:34:56") == datetime(
        2026, 3, 15, 12, 34, 56, tzinfo=UTC
    )


def test_if_modified_since_is_an_rfc_3339_date_time_with_its_utc_offset() -> None:
    assert payloads.rfc3339("2026-03-15T12:34:56") == "2026-03-15T12:34:56+00:00"
    assert payloads.rfc3339("2026-03-15T12:34:56.789+00:00") == "2026-03-15T12:34:56+00:00"
    assert payloads.rfc3339("2026-03-15T13:34:56+01:00") == "2026-03-15T12:34:56+00:00"
