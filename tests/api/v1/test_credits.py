"""``POST /v1/invoices/{number}/credit-notes``: a credit note as `connector invoice credit`
issues it, once per correction and once per Idempotency-Key."""

from __future__ import annotations

from tests.api.conftest import Served
from tests.api.v1.conftest import Books, problem, unstamped

CN2 = {
    "id": 8,
    "kind": "credit_note",
    "number": "CN-000002",
    "status": "issued",
    "customer_id": 1,
    "customer_name": "Customer C1",
    "subscription_id": 1,
    "credited_invoice": "INV-000005",
    "currency": "GBP",
    "issue_date": "2026-03-20",
    "due_date": "2026-03-20",
    "period_start": "2026-03-01",
    "period_end": "2026-03-31",
    "subtotal": "10.00",
    "tax_total": "2.00",
    "total": "12.00",
    "amount_paid": "0.00",
    "amount_credited": "0.00",
    "amount_due": "0.00",
    "unapplied": None,
    "tax_note": None,
    "reason": "goodwill",
    "reference": "GW-1",
    "version": 1,
    "lines": [
        {
            "position": 1,
            "kind": "recurring",
            "product_code": "SEATS",
            "description": "Seats × 10, 2026-03-01..2026-03-31 (credited: goodwill)",
            "quantity": "10",
            "discount_percent": "0",
            "service_start": "2026-03-01",
            "service_end": "2026-03-31",
            "amount": "10.00",
            "tax_rate": "20",
            "credited_amount": "0.00",
        }
    ],
    "taxes": [
        {
            "jurisdiction": "GB",
            "rate": "20",
            "taxable": "10.00",
            "tax": "2.00",
            "reverse_charge": False,
        }
    ],
}
BODY = {"reason": "goodwill", "amount": "10.00", "issue_date": "2026-03-20", "reference": "GW-1"}


def test_a_credit_note_is_issued_once(served: Served, books: Books) -> None:
    key = served.key("write")
    path = "/v1/invoices/INV-000005/credit-notes"

    issued = served.write(path, key, BODY, idempotency_key="gw-1")

    assert issued.status_code == 201
    assert unstamped(issued.json()) == {"issued": True, "credit_note": CN2}
    replayed = served.write(path, key, BODY, idempotency_key="gw-1")
    assert (replayed.status_code, replayed.json()) == (201, issued.json())
    assert replayed.headers["idempotent-replayed"] == "true"
    # another key, the same correction (its reference): the credit note issued the first time
    found = served.write(path, key, BODY)
    assert found.status_code == 200
    assert found.json() == {**issued.json(), "issued": False}
    invoice = served.get("/v1/invoices/INV-000005", key).json()
    assert (invoice["amount_credited"], invoice["amount_due"]) == ("12.00", "108.00")


def test_lines_are_credited_by_position(served: Served, books: Books) -> None:
    body = {"reason": "one seat", "lines": [{"position": 1, "amount": "10.00"}]}
    answer = served.write(
        "/v1/invoices/INV-000005/credit-notes",
        served.key("write"),
        {**body, "issue_date": "2026-03-20"},
    )
    assert answer.status_code == 201
    note = answer.json()["credit_note"]
    assert (note["number"], note["subtotal"], note["total"]) == ("CN-000002", "10.00", "12.00")


def test_a_credit_the_billing_rules_refuse_is_a_conflict(served: Served, books: Books) -> None:
    key = served.key("write")
    early = served.write(
        "/v1/invoices/INV-000005/credit-notes", key, {**BODY, "issue_date": "2026-03-01"}
    )
    assert early.json() == problem(
        409,
        "billing-rule",
        "Conflict",
        "as-of date 2026-03-01 is before the last issued document (2026-03-10); document dates "
        "must not go backwards within a numbering series",
        "/v1/invoices/INV-000005/credit-notes",
    )
    both = served.write(
        "/v1/invoices/INV-000005/credit-notes",
        key,
        {**BODY, "lines": [{"position": 1}]},
    )
    assert (both.status_code, both.json()["detail"]) == (
        422,
        "give an amount or lines to credit, not both",
    )
