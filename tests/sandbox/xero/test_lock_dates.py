"""Lock dates: shown on GET /Organisation once set, and nothing dated on or before them is added
or voided, with Xero's own messages; the period lock date does not bind an adviser."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from sandbox.xero.errors import ElementError
from sandbox.xero.locks import xero_day
from sandbox.xero.server import XeroSandbox
from tests.sandbox.xero.conftest import (
    Api,
    body,
    credit_note_body,
    invoice_body,
    messages,
    payment_body,
)

MAR31, FEB28 = date(2026, 3, 31), date(2026, 2, 28)
PERIOD = "The document date cannot be before the period lock date, currently set at 31-Mar-2026"
END_OF_YEAR = (
    "The document date cannot be before the end of year lock date, currently set at 28-Feb-2026"
)


def organisation(api: Api) -> dict[str, Any]:
    response = api.get("Organisation")
    assert response.status_code == 200
    [found] = body(response)["Organisations"]
    return dict(found)


def refusals(api: Api, path: str, plural: str, *elements: dict[str, Any]) -> list[list[str]]:
    response = api.put(f"{path}?summarizeErrors=false", {plural: list(elements)})
    assert response.status_code == 200, response.text
    return [messages(element) for element in body(response)[plural]]


def journal(day: str) -> dict[str, Any]:
    return {
        "Narration": f"Revenue {day}",
        "Date": day,
        "Status": "POSTED",
        "LineAmountTypes": "NoTax",
        "JournalLines": [
            {"AccountCode": "835", "LineAmount": Decimal("10.00"), "Description": "Deferred"},
            {"AccountCode": "200", "LineAmount": Decimal("-10.00"), "Description": "Revenue"},
        ],
    }


def test_the_organisation_shows_its_lock_dates_once_set(
    api: Api, xero_sandbox: XeroSandbox
) -> None:
    assert "PeriodLockDate" not in organisation(api)
    assert "EndOfYearLockDate" not in organisation(api)

    xero_sandbox.store.set_lock_dates(period=MAR31, end_of_year=FEB28)

    shown = organisation(api)
    assert (shown["PeriodLockDate"], shown["EndOfYearLockDate"]) == (
        "/Date(1774915200000+0000)/",
        "/Date(1772236800000+0000)/",
    )
    assert xero_day(date(2026, 1, 5)) == "05-Jan-2026"


def test_documents_dated_on_or_before_a_lock_date_are_refused_with_xeros_messages(
    api: Api, contact_id: str, xero_sandbox: XeroSandbox
) -> None:
    xero_sandbox.store.set_lock_dates(period=MAR31, end_of_year=FEB28)

    assert refusals(
        api,
        "Invoices",
        "Invoices",
        invoice_body(contact_id, "INV-1", Date="2026-03-31"),  # on the period lock date
        invoice_body(contact_id, "INV-2", Date="2026-02-10"),  # before both
        invoice_body(contact_id, "INV-3", Date="2026-04-01"),  # the first open day
    ) == [[PERIOD], [PERIOD, END_OF_YEAR], []]
    assert [i["InvoiceNumber"] for i in xero_sandbox.store.invoices.values()] == ["INV-3"]
    assert refusals(
        api,
        "CreditNotes",
        "CreditNotes",
        credit_note_body(contact_id, "CN-1", Date="2026-03-20"),
        credit_note_body(contact_id, "CN-2", Date="2026-04-01"),
    ) == [[PERIOD], []]
    assert refusals(
        api, "ManualJournals", "ManualJournals", journal("2026-03-31"), journal("2026-04-01")
    ) == [[PERIOD], []]
    [invoice_id] = xero_sandbox.store.invoices
    assert refusals(
        api,
        "Payments",
        "Payments",
        payment_body(invoice_id, "10.00", "PAY-1", Date="2026-02-28"),
        payment_body(invoice_id, "10.00", "PAY-2", Date="2026-04-02"),
    ) == [[PERIOD, END_OF_YEAR], []]


def test_a_batch_that_summarizes_errors_is_refused_whole(
    api: Api, contact_id: str, xero_sandbox: XeroSandbox
) -> None:
    xero_sandbox.store.set_lock_dates(period=MAR31)

    response = api.put(
        "Invoices",
        {"Invoices": [invoice_body(contact_id, "INV-1", Date="2026-03-15")]},
    )

    assert response.status_code == 400
    refusal = body(response)
    assert (refusal["Type"], refusal["Message"]) == (
        "ValidationException",
        "A validation exception occurred",
    )
    assert [messages(e) for e in refusal["Elements"]] == [[PERIOD]]
    assert xero_sandbox.store.invoices == {}


def test_allocations_and_voids_in_a_locked_period_are_refused(
    api: Api, contact_id: str, xero_sandbox: XeroSandbox
) -> None:
    invoice = api.invoice(contact_id, "INV-1", Date="2026-03-15")
    credit = api.credit_note(contact_id, "CN-1", Date="2026-03-20")
    xero_sandbox.store.set_lock_dates(period=MAR31)

    allocate = api.put(
        f"CreditNotes/{credit['CreditNoteID']}/Allocations",
        {
            "Allocations": [
                {
                    "Invoice": {"InvoiceID": invoice["InvoiceID"]},
                    "Amount": Decimal("33.00"),
                    "Date": "2026-03-31",
                }
            ]
        },
    )
    voided = api.post(
        "Invoices?summarizeErrors=false",
        {"Invoices": [{"InvoiceID": invoice["InvoiceID"], "Status": "VOIDED"}]},
    )

    assert allocate.status_code == 400
    assert [messages(e) for e in body(allocate)["Elements"]] == [[PERIOD]]
    assert [messages(e) for e in body(voided)["Invoices"]] == [
        ["The document cannot be edited as it is currently dated before the period lock date"]
    ]
    assert xero_sandbox.store.invoices[invoice["InvoiceID"]]["Status"] == "AUTHORISED"
    # After the lock date, the credit note can still be applied to the locked invoice.
    later = api.put(
        f"CreditNotes/{credit['CreditNoteID']}/Allocations",
        {
            "Allocations": [
                {
                    "Invoice": {"InvoiceID": invoice["InvoiceID"]},
                    "Amount": Decimal("33.00"),
                    "Date": "2026-04-01",
                }
            ]
        },
    )
    assert later.status_code == 200, later.text


@pytest.mark.xero(period_lock_date=MAR31, end_of_year_lock_date=FEB28, adviser=True)
def test_the_period_lock_date_does_not_bind_an_adviser(
    api: Api, contact_id: str, xero_sandbox: XeroSandbox
) -> None:
    assert refusals(
        api,
        "Invoices",
        "Invoices",
        invoice_body(contact_id, "INV-1", Date="2026-03-15"),
        invoice_body(contact_id, "INV-2", Date="2026-02-28"),
    ) == [[], [END_OF_YEAR]]
    [invoice] = xero_sandbox.store.invoices.values()
    voided = api.post(
        "Invoices?summarizeErrors=false",
        {"Invoices": [{"InvoiceID": invoice["InvoiceID"], "Status": "VOIDED"}]},
    )
    assert [messages(e) for e in body(voided)["Invoices"]] == [[]]
    assert organisation(api)["PeriodLockDate"] == "/Date(1774915200000+0000)/"


def test_finance_cannot_record_a_payment_in_a_locked_period_either(
    api: Api, contact_id: str, xero_sandbox: XeroSandbox
) -> None:
    api.invoice(contact_id, "INV-1", Date="2026-04-02")
    xero_sandbox.store.set_lock_dates(end_of_year=FEB28)

    with pytest.raises(ElementError, match="end of year lock date, currently set at 28-Feb-2026"):
        xero_sandbox.store.record_payment("INV-1", "10.00", date(2026, 2, 1))
    assert xero_sandbox.store.record_payment("INV-1", "10.00", date(2026, 4, 3))["Amount"] == (
        Decimal("10.00")
    )
