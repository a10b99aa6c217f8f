"""Payments on invoices: rules, settling, reading back by reference and by modification time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from sandbox.xero.dates import parse_ms
from sandbox.xero.errors import ElementError
from sandbox.xero.server import XeroSandbox
from tests.sandbox.xero.conftest import Api, body, line, messages, payment_body


def test_pay_in_part_then_in_full(api: Api, contact_id: str, xero_sandbox: XeroSandbox) -> None:
    invoice = api.invoice(contact_id)  # 110.00
    [first] = api.created("Payments", "Payments", payment_body(invoice["InvoiceID"], "10.10"))
    expected = {
        "Date": "/Date(1774396800000+0000)/",
        "Amount": Decimal("10.10"),
        "Reference": "PAY-1",
        "PaymentType": "ACCRECPAYMENT",
        "Status": "AUTHORISED",
        "Invoice": {
            "InvoiceID": invoice["InvoiceID"],
            "InvoiceNumber": "INV-1",
            "Type": "ACCREC",
            "CurrencyCode": "USD",
            "Contact": {"ContactID": contact_id, "Name": "Customer 1", "ContactNumber": "CUST-1"},
        },
        "StatusAttributeString": "OK",
    }
    assert {key: first[key] for key in expected} == expected
    assert first["Account"]["Code"] == "090"
    assert first["PaymentID"] in xero_sandbox.store.payments
    partly = xero_sandbox.store.invoices[invoice["InvoiceID"]]
    assert (partly["Status"], partly["AmountPaid"], partly["AmountDue"]) == (
        "AUTHORISED",
        Decimal("10.10"),
        Decimal("99.90"),
    )
    api.created("Payments", "Payments", payment_body(invoice["InvoiceID"], "99.90", "PAY-2"))
    paid = xero_sandbox.store.invoices[invoice["InvoiceID"]]
    assert (paid["Status"], paid["AmountPaid"], paid["AmountDue"]) == (
        "PAID",
        Decimal("110.00"),
        Decimal("0.00"),
    )
    assert paid["FullyPaidOnDate"] == "/Date(1774396800000+0000)/"
    assert [p["Reference"] for p in paid["Payments"]] == ["PAY-1", "PAY-2"]


def test_rules(api: Api, contact_id: str) -> None:
    invoice = api.invoice(contact_id)
    voided = api.invoice(contact_id, "INV-V")
    api.post("Invoices", {"Invoices": [{"InvoiceID": voided["InvoiceID"], "Status": "VOIDED"}]})
    unknown = "00000000-0000-4000-8000-000000000000"
    response = api.put(
        "Payments?summarizeErrors=false",
        {
            "Payments": [
                payment_body(invoice["InvoiceID"], "110.01"),
                payment_body(invoice["InvoiceID"], "1.00", Account={"Code": "200"}),
                payment_body(invoice["InvoiceID"], "1.00", Account={"Code": "999"}),
                payment_body(voided["InvoiceID"], "1.00"),
                payment_body(unknown, "1.00"),
                payment_body(invoice["InvoiceID"], "1.001"),
            ]
        },
    )
    assert [messages(p) for p in body(response)["Payments"]] == [
        ["Payment amount exceeds the amount outstanding on this document"],
        [
            "Account code '200' is not a bank account: payments can only be made to or from a "
            "BANK account."
        ],
        ["Account code '999' is not a valid code for this document."],
        ["Payments can only be made against Authorised documents"],
        ["The document with the supplied id was not found for this endpoint."],
        ["Amount 1.001 has more than 2 decimal places."],
    ]


def test_payments_in_one_batch_add_up(api: Api, contact_id: str) -> None:
    invoice = api.invoice(contact_id)
    response = api.put(
        "Payments?summarizeErrors=false",
        {
            "Payments": [
                payment_body(invoice["InvoiceID"], "60.00", "A"),
                payment_body(invoice["InvoiceID"], "60.00", "B"),
            ]
        },
    )
    assert [p["StatusAttributeString"] for p in body(response)["Payments"]] == ["OK", "ERROR"]


def test_an_invoice_or_a_credit_note_not_both(api: Api, contact_id: str) -> None:
    invoice = api.invoice(contact_id)
    note = api.credit_note(contact_id)
    both = payment_body(
        invoice["InvoiceID"], "1.00", CreditNote={"CreditNoteID": note["CreditNoteID"]}
    )
    neither = payment_body(invoice["InvoiceID"], "1.00")
    del neither["Invoice"]
    for element in (both, neither):
        response = api.put("Payments", {"Payments": [element]})
        assert response.status_code == 400
        assert body(response)["Type"] == "PostDataInvalidException"
        assert body(response)["Message"].startswith("Payments[0]: ")


def test_get_by_reference(api: Api, contact_id: str) -> None:
    invoice = api.invoice(contact_id)
    for reference in ("PAY-1", "PAY-2", "PAY-3"):
        api.created("Payments", "Payments", payment_body(invoice["InvoiceID"], "1.00", reference))
    where = 'Reference=="PAY-1" OR Reference=="PAY-3"'
    found = body(api.get("Payments", params={"where": where}))["Payments"]
    assert [p["Reference"] for p in found] == ["PAY-1", "PAY-3"]
    typed = 'PaymentType=="ACCRECPAYMENT" AND Status=="AUTHORISED"'
    assert len(body(api.get("Payments", params={"where": typed}))["Payments"]) == 3


def test_if_modified_since(api: Api, contact_id: str, xero_sandbox: XeroSandbox) -> None:
    store = xero_sandbox.store
    api.invoice(contact_id)
    # the store's clock never goes back, so the payments are made in 2099
    moments = iter(
        [
            datetime(2099, 3, 1, 9, 59, 59, tzinfo=UTC),
            datetime(2099, 3, 1, 10, 0, 0, tzinfo=UTC),
            datetime(2099, 3, 1, 10, 0, 1, tzinfo=UTC),
            datetime(2099, 3, 2, 8, 0, 0, tzinfo=UTC),
        ]
    )
    store.clock = lambda: next(moments)
    for number in range(4):
        store.record_payment("INV-1", "1.00", date(2026, 3, 1), f"PAY-{number}")
    store.clock = lambda: datetime(2099, 3, 3, tzinfo=UTC)

    def references(since: str) -> list[str]:
        response = api.get("Payments", headers={"If-Modified-Since": since})
        assert response.status_code == 200, response.text
        return [p["Reference"] for p in body(response)["Payments"]]

    assert references("2099-03-01T10:00:00+00:00") == ["PAY-2", "PAY-3"]
    assert references("2099-03-01T09:59:59.500Z") == ["PAY-1", "PAY-2", "PAY-3"]
    assert references("2099-03-01T11:00:00+01:00") == ["PAY-2", "PAY-3"]
    assert references("2099-03-01T10:00:00Z") == ["PAY-2", "PAY-3"]
    assert references("Sun, 01 Mar 2099 10:00:00 GMT") == ["PAY-2", "PAY-3"]
    assert references("2099-03-02T08:00:00+00:00") == []
    assert references("2000-01-01T00:00:00+00:00") == ["PAY-0", "PAY-1", "PAY-2", "PAY-3"]
    bad = api.get("Payments", headers={"If-Modified-Since": "yesterday"})
    assert bad.status_code == 400
    assert body(bad)["Message"] == "If-Modified-Since: cannot read 'yesterday'"


@pytest.mark.parametrize(
    "since", ["2099-03-01T10:00:00", "2099-03-01T10:00:00.250", "2099-03-01 10:00:00"]
)
def test_if_modified_since_without_an_offset_is_refused(
    api: Api, contact_id: str, since: str
) -> None:
    """The official OpenAPI description declares If-Modified-Since a ``date-time`` (RFC 3339),
    which must carry its UTC offset: a local time names no instant."""
    refused = api.get("Payments", headers={"If-Modified-Since": since})
    assert refused.status_code == 400
    assert body(refused) == {
        "ErrorNumber": 16,
        "Type": "QueryParseException",
        "Message": f"If-Modified-Since: {since!r} has no UTC offset; send a date-time with one "
        "(2026-03-01T10:00:00+00:00)",
    }


def test_pages_of_payments_in_modification_order(
    api: Api, contact_id: str, xero_sandbox: XeroSandbox
) -> None:
    cheap = line(Quantity=250, UnitAmount=1, LineAmount=250, TaxAmount=0)
    api.invoice(contact_id, LineItems=[cheap])
    for number in range(230):
        xero_sandbox.store.record_payment("INV-1", 1, "2026-03-02", f"P{number:03}")
    since = {"If-Modified-Since": "2000-01-01T00:00:00Z"}
    pages = [
        body(api.get("Payments", params={"page": str(page)}, headers=since))
        for page in (1, 2, 3, 4)
    ]
    assert [len(page["Payments"]) for page in pages] == [100, 100, 30, 0]
    assert pages[0]["pagination"] == {"page": 1, "pageSize": 100, "pageCount": 3, "itemCount": 230}
    everything = [p for page in pages for p in page["Payments"]]
    assert [p["Reference"] for p in everything] == [f"P{n:03}" for n in range(230)]
    stamps = [(parse_ms(p["UpdatedDateUTC"]), p["PaymentID"]) for p in everything]
    assert stamps == sorted(stamps)


def test_record_payment(api: Api, contact_id: str, xero_sandbox: XeroSandbox) -> None:
    api.invoice(contact_id)
    payment = xero_sandbox.store.record_payment("INV-1", "110.00", date(2026, 3, 31), "Wire 1")
    assert (payment["Amount"], payment["Reference"], payment["Date"]) == (
        Decimal("110.00"),
        "Wire 1",
        "/Date(1774915200000+0000)/",
    )
    assert xero_sandbox.store.invoice_by_number("INV-1")["Status"] == "PAID"  # type: ignore[index]
    with pytest.raises(ElementError) as refused:
        xero_sandbox.store.record_payment("INV-1", "0.01", date(2026, 3, 31))
    assert refused.value.messages == [
        "Payment amount exceeds the amount outstanding on this document"
    ]
    with pytest.raises(LookupError):
        xero_sandbox.store.record_payment("INV-404", "1", date(2026, 3, 31))
    found = body(api.get("Payments", params={"where": 'Reference=="Wire 1"'}))["Payments"]
    assert [p["PaymentID"] for p in found] == [payment["PaymentID"]]
