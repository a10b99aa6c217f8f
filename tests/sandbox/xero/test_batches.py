"""Batched writes: summarizeErrors both ways, size limits, schema violations."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from sandbox.xero.server import XeroSandbox
from tests.sandbox.xero.conftest import Api, body, contact_body, invoice_body, line

NAME_TAKEN = (
    "The contact name Customer 1 is already assigned to another contact. "
    "The contact name must be unique across all active contacts."
)


def test_summarize_errors_false_saves_the_good_ones(api: Api, xero_sandbox: XeroSandbox) -> None:
    response = api.put(
        "Contacts?summarizeErrors=false",
        {"Contacts": [contact_body(1), contact_body(9, Name="Customer 1"), contact_body(2)]},
    )
    assert response.status_code == 200
    answer = body(response)
    assert answer["Status"] == "OK"
    good, bad, other = answer["Contacts"]
    assert (good["StatusAttributeString"], other["StatusAttributeString"]) == ("OK", "OK")
    assert bad == {
        **contact_body(9, Name="Customer 1"),
        "StatusAttributeString": "ERROR",
        "ValidationErrors": [{"Message": NAME_TAKEN}],
        "HasValidationErrors": True,
    }
    names = sorted(c["Name"] for c in xero_sandbox.store.contacts.values())
    assert names == ["Customer 1", "Customer 2"]


@pytest.mark.parametrize("query", ["", "?summarizeErrors=true", "?summarizeErrors=TRUE"])
def test_summarized_errors_save_nothing(api: Api, xero_sandbox: XeroSandbox, query: str) -> None:
    elements = [contact_body(1), contact_body(9, Name="Customer 1")]
    response = api.put(f"Contacts{query}", {"Contacts": elements})
    assert response.status_code == 400
    assert body(response) == {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [
            {**contact_body(1), "ValidationErrors": []},
            {
                **contact_body(9, Name="Customer 1"),
                "StatusAttributeString": "ERROR",
                "ValidationErrors": [{"Message": NAME_TAKEN}],
                "HasValidationErrors": True,
            },
        ],
    }
    assert xero_sandbox.store.contacts == {}
    # the name the rolled-back element took is free again
    assert api.contact(1)["Name"] == "Customer 1"


def test_summarized_errors_undo_payments_too(
    api: Api, contact_id: str, xero_sandbox: XeroSandbox
) -> None:
    invoice = api.invoice(contact_id)
    before = xero_sandbox.store.invoices[invoice["InvoiceID"]]
    good = {
        "Invoice": {"InvoiceID": invoice["InvoiceID"]},
        "Account": {"Code": "090"},
        "Date": "2026-03-25",
        "Amount": Decimal("100.00"),
        "Reference": "A",
    }
    response = api.put("Payments", {"Payments": [good, {**good, "Reference": "B"}]})
    assert response.status_code == 400
    assert xero_sandbox.store.payments == {}
    assert xero_sandbox.store.invoices[invoice["InvoiceID"]] is before


def test_summarize_errors_must_be_a_boolean(api: Api) -> None:
    response = api.put("Contacts?summarizeErrors=no", {"Contacts": [contact_body()]})
    assert response.status_code == 400
    assert body(response)["Message"] == "summarizeErrors must be true or false, not 'no'"


def test_at_most_50_elements(api: Api, xero_sandbox: XeroSandbox) -> None:
    fifty = [contact_body(n) for n in range(50)]
    assert api.put("Contacts", {"Contacts": fifty}).status_code == 200
    response = api.put("Contacts", {"Contacts": [contact_body(n) for n in range(100, 151)]})
    assert response.status_code == 400
    assert body(response) == {
        "ErrorNumber": 14,
        "Type": "PostDataInvalidException",
        "Message": "Contacts: at most 50 elements per request (got 51)",
    }
    assert len(xero_sandbox.store.contacts) == 50


def test_bodies_over_3_5_mb(api: Api) -> None:
    padding = "x" * 3_500_000
    response = api.request(
        "PUT",
        "Contacts",
        data=json.dumps({"Contacts": [contact_body(Name=padding)]}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert body(response)["Title"] == "Request Entity Too Large"


def raw_put(api: Api, path: str, data: bytes | str, content_type: str = "application/json") -> Any:
    response = api.request("PUT", path, data=data, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    answer = body(response)
    assert (answer["ErrorNumber"], answer["Type"]) == (14, "PostDataInvalidException")
    return answer["Message"]


def test_bodies_that_are_not_json(api: Api) -> None:
    assert raw_put(api, "Contacts", b"{").startswith("The request body is not valid JSON: ")
    assert raw_put(api, "Contacts", '{"Contacts": [{"Name": NaN}]}') == (
        "The request body is not valid JSON: NaN is not a number JSON allows"
    )
    assert raw_put(api, "Contacts", b'{"Contacts": []}', "text/xml") == (
        "Content-Type must be application/json, not 'text/xml'"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("DueDate"), "Invoices[0]: 'DueDate' is a required property"),
        (
            lambda e: e.update(Url="https://x"),
            "Invoices[0]: Additional properties are not allowed ('Url' was unexpected)",
        ),
        (
            lambda e: e["LineItems"][0].update(UnitAmount="50.00"),
            "Invoices[0].LineItems[0].UnitAmount: '50.00' is not of type 'number'",
        ),
        (
            lambda e: e.update(Type="ACCPAY"),
            "Invoices[0].Type: 'ACCPAY' is not one of ['ACCREC']",
        ),
        (
            lambda e: e.update(Status="DRAFT"),
            "Invoices[0].Status: 'DRAFT' is not one of ['AUTHORISED']",
        ),
        (
            lambda e: e.update(LineAmountTypes="exclusive"),
            "Invoices[0].LineAmountTypes: 'exclusive' is not one of ['Exclusive', 'Inclusive', "
            "'NoTax']",
        ),
        (
            lambda e: e.update(Date="15/03/2026"),
            "Invoices[0].Date: '15/03/2026' does not match '^\\\\d{4}-\\\\d{2}-\\\\d{2}$'",
        ),
        (
            lambda e: e.update(Date="2026-02-30"),
            "Invoices[0].Date: '2026-02-30' is not a 'date'",
        ),
        (
            lambda e: e.update(CurrencyCode="usd"),
            "Invoices[0].CurrencyCode: 'usd' does not match '^[A-Z]{3}$'",
        ),
        (
            lambda e: e.update(Reference="r" * 256),
            f"Invoices[0].Reference: '{'r' * 256}' is too long",
        ),
        (
            lambda e: e["Contact"].update(ContactID="CUST-1"),
            "Invoices[0].Contact.ContactID: 'CUST-1' does not match "
            "'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'",
        ),
        (lambda e: e.update(LineItems=[]), "Invoices[0].LineItems: [] should be non-empty"),
    ],
)
def test_schema_violations(
    api: Api, contact_id: str, xero_sandbox: XeroSandbox, change: Any, message: str
) -> None:
    element = invoice_body(contact_id, LineItems=[line()])
    change(element)
    response = api.put(
        "Invoices?summarizeErrors=false", {"Invoices": [element, invoice_body(contact_id, "OK-1")]}
    )
    assert response.status_code == 400
    assert body(response) == {
        "ErrorNumber": 14,
        "Type": "PostDataInvalidException",
        "Message": message,
    }
    assert xero_sandbox.store.invoices == {}


def test_the_body_itself_must_match(api: Api) -> None:
    assert raw_put(api, "Contacts", b"[]") == "(body): [] is not of type 'object'"
    assert raw_put(api, "Contacts", b'{"Invoices": []}') == (
        "(body): Additional properties are not allowed ('Invoices' was unexpected)"
    )


def test_decimals_stay_exact(api: Api, contact_id: str) -> None:
    dimes = line(
        Quantity=3,
        UnitAmount=Decimal("0.10"),
        LineAmount=Decimal("0.30"),
        TaxAmount=Decimal("0.03"),
    )
    [invoice] = api.created(
        "Invoices", "Invoices", invoice_body(contact_id, LineItems=[dimes, dimes])
    )
    assert (invoice["SubTotal"], invoice["TotalTax"], invoice["Total"]) == (
        Decimal("0.60"),
        Decimal("0.06"),
        Decimal("0.66"),
    )
    raw = api.get(f"Invoices/{invoice['InvoiceID']}").text
    assert '"Total":0.66' in raw
    assert '"UnitAmount":0.10' in raw
