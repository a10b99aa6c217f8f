"""Fixtures for the fake Xero's tests: an API client on a fresh organisation, and builders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests

from sandbox.xero.server import XeroSandbox
from sandbox.xero.testing import api_session


class Api:
    """Requests to one fake Xero's API, with its token, tenant and JSON headers."""

    def __init__(self, xero: XeroSandbox) -> None:
        self.xero = xero
        self.session = api_session(xero)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, f"{self.xero.api_url}/{path}", **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, json=body, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=body, **kwargs)

    # -- shortcuts that must succeed -------------------------------------------------------
    def created(self, path: str, plural: str, *elements: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.put(f"{path}?summarizeErrors=false", {plural: list(elements)})
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = body(response)[plural]
        assert [result["StatusAttributeString"] for result in results] == ["OK"] * len(elements)
        return results

    def contact(self, number: int = 1, **fields: Any) -> dict[str, Any]:
        return self.created("Contacts", "Contacts", contact_body(number, **fields))[0]

    def invoice(self, contact_id: str, number: str = "INV-1", **fields: Any) -> dict[str, Any]:
        return self.created("Invoices", "Invoices", invoice_body(contact_id, number, **fields))[0]

    def credit_note(self, contact_id: str, number: str = "CN-1", **fields: Any) -> dict[str, Any]:
        element = credit_note_body(contact_id, number, **fields)
        return self.created("CreditNotes", "CreditNotes", element)[0]


def body(response: requests.Response) -> Any:
    """The JSON body with exact decimals."""
    return response.json(parse_float=Decimal)


def messages(element: dict[str, Any]) -> list[str]:
    return [error["Message"] for error in element.get("ValidationErrors", [])]


def contact_body(number: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "Name": f"Customer {number}",
        "ContactNumber": f"CUST-{number}",
        "DefaultCurrency": "USD",
        **fields,
    }


TEN_PERCENT = "TAX006"  # Japan Consumption Tax 10% in the fake organisation


def line(**fields: Any) -> dict[str, Any]:
    """2 × 50.00 = 100.00 of Sales with 10% tax (10.00)."""
    return {
        "Description": "Subscription, March 2026",
        "Quantity": 2,
        "UnitAmount": Decimal("50.00"),
        "LineAmount": Decimal("100.00"),
        "AccountCode": "200",
        "TaxType": TEN_PERCENT,
        "TaxAmount": Decimal("10.00"),
        **fields,
    }


def invoice_body(contact_id: str, number: str = "INV-1", **fields: Any) -> dict[str, Any]:
    return {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "Date": "2026-03-15",
        "DueDate": "2026-04-14",
        "InvoiceNumber": number,
        "Reference": f"REF-{number}",
        "CurrencyCode": "USD",
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": [line()],
        **fields,
    }


def credit_note_body(contact_id: str, number: str = "CN-1", **fields: Any) -> dict[str, Any]:
    """1 × 30.00 with 3.00 tax: 33.00 of credit."""
    return {
        "Type": "ACCRECCREDIT",
        "Contact": {"ContactID": contact_id},
        "Date": "2026-03-20",
        "CreditNoteNumber": number,
        "Reference": f"REF-{number}",
        "CurrencyCode": "USD",
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": [
            line(
                Quantity=1,
                UnitAmount=Decimal("30.00"),
                LineAmount=Decimal("30.00"),
                TaxAmount=Decimal("3.00"),
            )
        ],
        **fields,
    }


def payment_body(
    invoice_id: str, amount: str, reference: str = "PAY-1", **fields: Any
) -> dict[str, Any]:
    return {
        "Invoice": {"InvoiceID": invoice_id},
        "Account": {"Code": "090"},
        "Date": "2026-03-25",
        "Amount": Decimal(amount),
        "Reference": reference,
        **fields,
    }


@pytest.fixture
def api(xero_sandbox: XeroSandbox) -> Api:
    return Api(xero_sandbox)


@pytest.fixture
def contact_id(api: Api) -> str:
    contact_id: str = api.contact()["ContactID"]
    return contact_id
