"""Credit notes, their allocations to invoices, and refunds."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandbox.xero.server import XeroSandbox
from tests.sandbox.xero.conftest import Api, body, credit_note_body, messages

NOT_FOUND = "The document with the supplied id was not found for this endpoint."


def allocate(api: Api, credit_note_id: str, invoice_id: str, amount: str, **query: str) -> Any:
    return api.put(
        f"CreditNotes/{credit_note_id}/Allocations",
        {
            "Allocations": [
                {
                    "Invoice": {"InvoiceID": invoice_id},
                    "Amount": Decimal(amount),
                    "Date": "2026-03-21",
                }
            ]
        },
        params={"summarizeErrors": "false", **query},
    )


def test_create(api: Api, contact_id: str, xero_sandbox: XeroSandbox) -> None:
    response = api.put("CreditNotes", {"CreditNotes": [credit_note_body(contact_id)]})
    assert response.status_code == 200
    [note] = body(response)["CreditNotes"]
    expected = {
        "Type": "ACCRECCREDIT",
        "CreditNoteNumber": "CN-1",
        "Reference": "REF-CN-1",
        "Date": "/Date(1773964800000+0000)/",
        "DateString": "2026-03-20T00:00:00",
        "Status": "AUTHORISED",
        "CurrencyCode": "USD",
        "SubTotal": Decimal("30.00"),
        "TotalTax": Decimal("3.00"),
        "Total": Decimal("33.00"),
        "RemainingCredit": Decimal("33.00"),
        "Allocations": [],
        "Payments": [],
        "StatusAttributeString": "OK",
    }
    assert {key: note[key] for key in expected} == expected
    assert note["CreditNoteID"] in xero_sandbox.store.credit_notes


def test_credit_note_numbers_are_unique(api: Api, contact_id: str) -> None:
    api.credit_note(contact_id)
    response = api.put(
        "CreditNotes?summarizeErrors=false", {"CreditNotes": [credit_note_body(contact_id)]}
    )
    assert messages(body(response)["CreditNotes"][0]) == ["Credit Note # must be unique."]


def test_allocation(api: Api, contact_id: str, xero_sandbox: XeroSandbox) -> None:
    invoice = api.invoice(contact_id)  # 110.00
    note = api.credit_note(contact_id)  # 33.00
    response = allocate(api, note["CreditNoteID"], invoice["InvoiceID"], "20.00")
    assert response.status_code == 200
    [allocation] = body(response)["Allocations"]
    assert allocation["StatusAttributeString"] == "OK"
    assert allocation["Amount"] == Decimal("20.00")
    assert allocation["Date"] == "/Date(1774051200000+0000)/"
    assert allocation["Invoice"]["InvoiceNumber"] == "INV-1"
    assert allocation["CreditNote"]["CreditNoteNumber"] == "CN-1"
    stored_invoice = xero_sandbox.store.invoices[invoice["InvoiceID"]]
    assert (stored_invoice["AmountCredited"], stored_invoice["AmountDue"]) == (
        Decimal("20.00"),
        Decimal("90.00"),
    )
    assert stored_invoice["Status"] == "AUTHORISED"
    assert stored_invoice["CreditNotes"] == [
        {
            "CreditNoteID": note["CreditNoteID"],
            "CreditNoteNumber": "CN-1",
            "AppliedAmount": Decimal("20.00"),
            "Date": "/Date(1774051200000+0000)/",
        }
    ]
    stored_note = xero_sandbox.store.credit_notes[note["CreditNoteID"]]
    assert stored_note["RemainingCredit"] == Decimal("13.00")
    assert [a["Amount"] for a in stored_note["Allocations"]] == [Decimal("20.00")]


def test_full_allocations_settle_both(api: Api, contact_id: str, xero_sandbox: XeroSandbox) -> None:
    small = api.invoice(
        contact_id,
        "INV-S",
        LineItems=[
            {
                "Description": "Small",
                "Quantity": 1,
                "UnitAmount": Decimal("33.00"),
                "LineAmount": Decimal("33.00"),
                "AccountCode": "200",
                "TaxType": "NONE",
                "TaxAmount": 0,
            }
        ],
    )
    note = api.credit_note(contact_id)
    assert allocate(api, note["CreditNoteID"], small["InvoiceID"], "33.00").status_code == 200
    invoice = xero_sandbox.store.invoices[small["InvoiceID"]]
    credit = xero_sandbox.store.credit_notes[note["CreditNoteID"]]
    assert (invoice["Status"], invoice["AmountDue"]) == ("PAID", Decimal("0.00"))
    assert invoice["FullyPaidOnDate"] == "/Date(1774051200000+0000)/"
    assert (credit["Status"], credit["RemainingCredit"]) == ("PAID", Decimal("0.00"))


def test_allocation_rules(api: Api, contact_id: str) -> None:
    invoice = api.invoice(contact_id)
    note = api.credit_note(contact_id)
    euro_note = api.credit_note(contact_id, "CN-EUR", CurrencyCode="EUR")
    other = api.contact(2)
    others_note = api.credit_note(other["ContactID"], "CN-OTHER")

    def refusal(note_id: str, invoice_id: str, amount: str) -> list[str]:
        response = allocate(api, note_id, invoice_id, amount)
        assert response.status_code == 200, response.text
        return messages(body(response)["Allocations"][0])

    assert refusal(note["CreditNoteID"], invoice["InvoiceID"], "33.01") == [
        "The amount allocated exceeds the remaining credit on the credit note."
    ]
    assert refusal(euro_note["CreditNoteID"], invoice["InvoiceID"], "1.00") == [
        "The credit note and the invoice must be in the same currency."
    ]
    assert refusal(others_note["CreditNoteID"], invoice["InvoiceID"], "1.00") == [
        "The credit note and the invoice must belong to the same contact."
    ]
    assert refusal(note["CreditNoteID"], "00000000-0000-4000-8000-000000000000", "1.00") == [
        NOT_FOUND
    ]
    big = api.credit_note(
        contact_id,
        "CN-BIG",
        LineItems=[
            {
                "Description": "Big",
                "Quantity": 1,
                "UnitAmount": 500,
                "LineAmount": 500,
                "AccountCode": "200",
                "TaxType": "NONE",
                "TaxAmount": 0,
            }
        ],
    )
    assert refusal(big["CreditNoteID"], invoice["InvoiceID"], "110.01") == [
        "The amount allocated exceeds the amount due on the invoice."
    ]
    missing = allocate(api, "00000000-0000-4000-8000-000000000000", invoice["InvoiceID"], "1")
    assert missing.status_code == 404
    zero = allocate(api, note["CreditNoteID"], invoice["InvoiceID"], "0")
    assert zero.status_code == 400
    assert (
        body(zero)["Message"]
        == "Allocations[0].Amount: 0 is less than or equal to the minimum of 0"
    )


def test_refund(api: Api, contact_id: str, xero_sandbox: XeroSandbox) -> None:
    note = api.credit_note(contact_id)
    refund = {
        "CreditNote": {"CreditNoteID": note["CreditNoteID"]},
        "Account": {"Code": "090"},
        "Date": "2026-03-28",
        "Amount": Decimal("33.00"),
        "Reference": "REFUND-1",
    }
    too_much = {**refund, "Amount": Decimal("33.01")}
    response = api.put("Payments?summarizeErrors=false", {"Payments": [too_much, refund]})
    refused, paid = body(response)["Payments"]
    assert messages(refused) == ["Payment amount exceeds the amount outstanding on this document"]
    assert paid["PaymentType"] == "ARCREDITPAYMENT"
    assert paid["CreditNote"] == {
        "CreditNoteID": note["CreditNoteID"],
        "CreditNoteNumber": "CN-1",
        "Type": "ACCRECCREDIT",
        "CurrencyCode": "USD",
        "Contact": {"ContactID": contact_id, "Name": "Customer 1", "ContactNumber": "CUST-1"},
    }
    stored = xero_sandbox.store.credit_notes[note["CreditNoteID"]]
    assert (stored["Status"], stored["RemainingCredit"]) == ("PAID", Decimal("0.00"))
    assert [p["Reference"] for p in stored["Payments"]] == ["REFUND-1"]


def test_get_by_reference(api: Api, contact_id: str) -> None:
    for number in ("CN-1", "CN-2", "CN-3"):
        api.credit_note(contact_id, number)
    where = 'Reference=="REF-CN-1" OR Reference=="REF-CN-3"'
    notes = body(api.get("CreditNotes", params={"where": where}))["CreditNotes"]
    assert [note["CreditNoteNumber"] for note in notes] == ["CN-1", "CN-3"]
    where = 'CreditNoteNumber=="CN-2"'
    notes = body(api.get("CreditNotes", params={"where": where}))["CreditNotes"]
    assert [note["CreditNoteNumber"] for note in notes] == ["CN-2"]
