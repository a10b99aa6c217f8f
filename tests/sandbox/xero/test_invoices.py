"""Invoices: creation and its rules, totals per LineAmountTypes, voiding, GET filters."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sandbox.xero.server import XeroSandbox
from tests.sandbox.xero.conftest import Api, body, invoice_body, line, messages, payment_body

NOT_FOUND = "The document with the supplied id was not found for this endpoint."


def refused(api: Api, *elements: dict[str, Any], query: str = "") -> list[list[str]]:
    response = api.put(f"Invoices?summarizeErrors=false{query}", {"Invoices": list(elements)})
    assert response.status_code == 200, response.text
    return [messages(element) for element in body(response)["Invoices"]]


def test_create(api: Api, contact_id: str, xero_sandbox: XeroSandbox) -> None:
    second = line(
        Description="Setup",
        Quantity=1,
        UnitAmount=Decimal("19.99"),
        LineAmount=Decimal("19.99"),
        AccountCode="260",
        TaxType="NONE",
        TaxAmount=0,
    )
    response = api.put(
        "Invoices", {"Invoices": [invoice_body(contact_id, LineItems=[line(), second])]}
    )
    assert response.status_code == 200
    [invoice] = body(response)["Invoices"]
    assert invoice["StatusAttributeString"] == "OK"
    assert xero_sandbox.store.invoices[invoice["InvoiceID"]]["Total"] == Decimal("129.99")
    expected = {
        "Type": "ACCREC",
        "InvoiceNumber": "INV-1",
        "Reference": "REF-INV-1",
        "Contact": {"ContactID": contact_id, "Name": "Customer 1", "ContactNumber": "CUST-1"},
        "Date": "/Date(1773532800000+0000)/",
        "DateString": "2026-03-15T00:00:00",
        "DueDate": "/Date(1776124800000+0000)/",
        "DueDateString": "2026-04-14T00:00:00",
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "CurrencyCode": "USD",
        "SubTotal": Decimal("119.99"),
        "TotalTax": Decimal("10.00"),
        "Total": Decimal("129.99"),
        "AmountDue": Decimal("129.99"),
        "AmountPaid": Decimal("0.00"),
        "AmountCredited": Decimal("0.00"),
        "Payments": [],
        "CreditNotes": [],
    }
    assert {key: invoice[key] for key in expected} == expected
    assert [
        (item["Description"], item["Quantity"], item["UnitAmount"], item["LineAmount"])
        for item in invoice["LineItems"]
    ] == [
        ("Subscription, March 2026", 2, Decimal("50.00"), Decimal("100.00")),
        ("Setup", 1, Decimal("19.99"), Decimal("19.99")),
    ]
    assert all(len(item["LineItemID"]) == 36 for item in invoice["LineItems"])


@pytest.mark.parametrize(
    ("amount_types", "tax", "totals"),
    [
        ("Inclusive", "9.09", ("90.91", "9.09", "100.00")),
        ("NoTax", "0", ("100.00", "0.00", "100.00")),
    ],
)
def test_totals_by_line_amount_types(
    api: Api, contact_id: str, amount_types: str, tax: str, totals: tuple[str, ...]
) -> None:
    element = invoice_body(
        contact_id, LineAmountTypes=amount_types, LineItems=[line(TaxAmount=Decimal(tax))]
    )
    [invoice] = api.created("Invoices", "Invoices", element)
    assert (invoice["SubTotal"], invoice["TotalTax"], invoice["Total"]) == tuple(
        Decimal(total) for total in totals
    )


def test_a_zero_invoice_is_paid_at_once(api: Api, contact_id: str) -> None:
    free = line(UnitAmount=0, LineAmount=0, TaxAmount=0)
    invoice = api.invoice(contact_id, LineItems=[free])
    assert (invoice["Status"], invoice["AmountDue"]) == ("PAID", Decimal("0.00"))
    assert invoice["FullyPaidOnDate"] == "/Date(1773532800000+0000)/"


def test_rules(api: Api, contact_id: str) -> None:
    api.invoice(contact_id, "INV-1")
    unknown_contact = "00000000-0000-4000-8000-000000000000"
    assert refused(
        api,
        invoice_body(unknown_contact, "INV-2"),
        invoice_body(contact_id, "INV-3", LineItems=[line(AccountCode="999")]),
        invoice_body(contact_id, "INV-4", LineItems=[line(AccountCode="090")]),
        invoice_body(contact_id, "INV-5", LineItems=[line(TaxType="GST")]),
        invoice_body(contact_id, "INV-1"),
        invoice_body(contact_id, "INV-6", CurrencyCode="NZD"),
        invoice_body(contact_id, "INV-7", LineItems=[line(LineAmount=Decimal("99.99"))]),
        invoice_body(contact_id, "INV-8", LineItems=[line(TaxAmount=Decimal("1.005"))]),
        invoice_body(contact_id, "INV-9", LineItems=[line(UnitAmount=-50, LineAmount=-100)]),
    ) == [
        [f"The contact with ContactID {unknown_contact} was not found."],
        ["Account code '999' is not a valid code for this document."],
        ["Account code '090' is not a valid code for this document."],
        ["The TaxType code 'GST' does not exist or cannot be used for this type of transaction."],
        ["Invoice # must be unique."],
        ["The currency NZD is not enabled for this organisation."],
        ["Line 1: LineAmount 99.99 must equal Quantity × UnitAmount (2 × 50.00 = 100.00)."],
        ["Line 1: TaxAmount 1.005 has more than 2 decimal places."],
        ["The document total cannot be negative."],
    ]


def test_several_errors_on_one_element(api: Api, contact_id: str) -> None:
    element = invoice_body(
        contact_id, CurrencyCode="NZD", LineItems=[line(AccountCode="999"), line(AccountCode="999")]
    )
    assert refused(api, element) == [
        [
            "The currency NZD is not enabled for this organisation.",
            "Account code '999' is not a valid code for this document.",
        ]
    ]


def test_line_amounts_round_half_up_to_cents(api: Api, contact_id: str) -> None:
    thirds = line(Quantity=3, UnitAmount=Decimal("33.335"), LineAmount=Decimal("100.01"))
    assert refused(api, invoice_body(contact_id, LineItems=[thirds])) == [
        ["Line 1: UnitAmount 33.335 has more than 2 decimal places."]
    ]
    assert refused(api, invoice_body(contact_id, LineItems=[thirds]), query="&unitdp=4") == [[]]
    assert api.put("Invoices?unitdp=3", {"Invoices": []}).status_code == 400


def test_invoice_numbers_repeated_within_one_batch(api: Api, contact_id: str) -> None:
    assert refused(api, invoice_body(contact_id, "A"), invoice_body(contact_id, "A")) == [
        [],
        ["Invoice # must be unique."],
    ]


def void(api: Api, invoice_id: str) -> dict[str, Any]:
    response = api.post(
        "Invoices?summarizeErrors=false",
        {"Invoices": [{"InvoiceID": invoice_id, "Status": "VOIDED"}]},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = body(response)["Invoices"][0]
    return result


def test_void(api: Api, contact_id: str, xero_sandbox: XeroSandbox) -> None:
    invoice = api.invoice(contact_id)
    voided = void(api, invoice["InvoiceID"])
    assert (voided["StatusAttributeString"], voided["Status"]) == ("OK", "VOIDED")
    assert voided["AmountDue"] == Decimal("0.00")
    assert voided["Total"] == Decimal("110.00")
    stored = xero_sandbox.store.invoices[invoice["InvoiceID"]]
    assert stored["Status"] == "VOIDED"
    again = void(api, invoice["InvoiceID"])
    assert (again["StatusAttributeString"], again["UpdatedDateUTC"]) == (
        "OK",
        stored["UpdatedDateUTC"],
    )
    # the number stays taken
    assert refused(api, invoice_body(contact_id, "INV-1")) == [["Invoice # must be unique."]]


def test_void_refusals(api: Api, contact_id: str) -> None:
    paid = api.invoice(contact_id, "INV-1")
    api.created("Payments", "Payments", payment_body(paid["InvoiceID"], "10.00"))
    assert messages(void(api, paid["InvoiceID"])) == [
        "This document cannot be edited as it has a payment or credit note allocated to it."
    ]
    free = api.invoice(
        contact_id, "INV-2", LineItems=[line(UnitAmount=0, LineAmount=0, TaxAmount=0)]
    )
    assert messages(void(api, free["InvoiceID"])) == [
        "Invoice not of valid status for modification"
    ]
    assert messages(void(api, "00000000-0000-4000-8000-000000000000")) == [NOT_FOUND]


def test_post_takes_voids_only(api: Api, contact_id: str) -> None:
    invoice = api.invoice(contact_id)
    response = api.post(
        "Invoices", {"Invoices": [{"InvoiceID": invoice["InvoiceID"], "Status": "PAID"}]}
    )
    assert response.status_code == 400
    assert body(response)["Message"] == ("Invoices[0].Status: 'PAID' is not one of ['VOIDED']")


def test_get_filters(api: Api, contact_id: str) -> None:
    created = [api.invoice(contact_id, f"INV-{n}") for n in range(1, 5)]
    void(api, created[3]["InvoiceID"])

    def numbers(**params: str) -> list[str]:
        response = api.get("Invoices", params=params)
        assert response.status_code == 200, response.text
        return [invoice["InvoiceNumber"] for invoice in body(response)["Invoices"]]

    assert numbers(where='Reference=="REF-INV-1" OR Reference=="REF-INV-3"') == ["INV-1", "INV-3"]
    assert numbers(where='Status=="VOIDED"') == ["INV-4"]
    assert numbers(where='Type=="ACCREC" AND InvoiceNumber=="INV-2"') == ["INV-2"]
    assert numbers(InvoiceNumbers="INV-2,INV-3,INV-9") == ["INV-2", "INV-3"]
    assert numbers(IDs=f"{created[0]['InvoiceID']},{created[1]['InvoiceID'].upper()}") == [
        "INV-1",
        "INV-2",
    ]
    assert numbers(page="1") == ["INV-1", "INV-2", "INV-3", "INV-4"]  # the void came last
    single = api.get(f"Invoices/{created[2]['InvoiceID']}")
    assert [i["InvoiceNumber"] for i in body(single)["Invoices"]] == ["INV-3"]
    missing = api.get("Invoices/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["Detail"] == NOT_FOUND


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"IDs": "nope"}, "IDs: 'nope' is not a GUID"),
        ({"page": "0"}, "page must be a whole number from 1 to 1000000000, not '0'"),
        ({"pageSize": "1001"}, "pageSize must be a whole number from 1 to 1000, not '1001'"),
        ({"order": "Total DESC"}, "order: only UpdatedDateUTC (ascending) is supported"),
        (
            {"Statuses": "PAID"},
            "GET /Invoices does not take the query parameter Statuses (it takes: IDs, "
            "InvoiceNumbers, order, page, pageSize, where)",
        ),
        (
            {"where": 'Narration=="x"'},
            "where cannot filter on Narration here (fields: InvoiceNumber, Reference, Status, "
            "Type)",
        ),
    ],
)
def test_get_refuses_what_it_does_not_know(api: Api, params: dict[str, str], message: str) -> None:
    response = api.get("Invoices", params=params)
    assert response.status_code == 400
    assert response.json() == {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message}


def test_tax_is_computed_per_line_from_the_tax_types_rate_to_the_cent(
    api: Api, contact_id: str
) -> None:
    """Xero's own tax: 43,329 JPY at 10 % is 4,332.90 (cents, whatever the currency); two
    lines of 16.72 GBP at 20 % are 3.34 each. Sent as such, they are no adjustment."""
    yen = line(Quantity=1, UnitAmount=43329, LineAmount=43329, TaxAmount=Decimal("4332.90"))
    invoice = api.invoice(contact_id, "INV-JPY", CurrencyCode="JPY", LineItems=[yen])
    assert (invoice["TotalTax"], invoice["Total"]) == (Decimal("4332.90"), Decimal("47661.90"))
    pounds = line(
        Quantity=1, UnitAmount=Decimal("16.72"), LineAmount=Decimal("16.72"), TaxType="TAX002"
    )
    invoice = api.invoice(
        contact_id,
        "INV-GBP",
        CurrencyCode="GBP",
        LineItems=[{**pounds, "TaxAmount": Decimal("3.34")}] * 2,
    )
    assert (invoice["TotalTax"], invoice["Total"]) == (Decimal("6.68"), Decimal("40.12"))


def test_a_tax_exclusive_line_keeps_the_tax_it_is_given_as_an_adjustment(
    api: Api, contact_id: str
) -> None:
    yen = line(Quantity=1, UnitAmount=43329, LineAmount=43329, TaxAmount=4333)
    invoice = api.invoice(contact_id, CurrencyCode="JPY", LineItems=[yen])
    assert [item["TaxAmount"] for item in invoice["LineItems"]] == [Decimal("4333.00")]
    assert (invoice["TotalTax"], invoice["Total"]) == (Decimal("4333.00"), Decimal("47662.00"))
    assert invoice["AmountDue"] == Decimal("47662.00")


def test_an_inclusive_line_takes_no_tax_adjustment(api: Api, contact_id: str) -> None:
    """Xero adjusts tax on tax-exclusive transactions only; 100.00 inclusive of 10 % holds
    9.09 of tax."""
    assert refused(
        api,
        invoice_body(
            contact_id, LineAmountTypes="Inclusive", LineItems=[line(TaxAmount=Decimal("9.10"))]
        ),
        invoice_body(contact_id, LineAmountTypes="NoTax", LineItems=[line()]),
    ) == [
        ["Line 1: Tax amount 9.10 is incorrect for TAX006 tax type, should be 9.09"],
        ["Line 1: TaxAmount must be 0 when LineAmountTypes is NoTax."],
    ]


def test_a_tax_type_for_purchases_or_one_the_organisation_lacks_is_refused(
    api: Api, contact_id: str
) -> None:
    message = "The TaxType code '{}' does not exist or cannot be used for this type of transaction."
    assert refused(
        api,
        invoice_body(contact_id, LineItems=[line(TaxType="INPUT", TaxAmount=0)]),
        invoice_body(contact_id, "INV-2", LineItems=[line(TaxType="OUTPUT2")]),
    ) == [[message.format("INPUT")], [message.format("OUTPUT2")]]
