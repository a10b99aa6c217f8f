"""``/v1/payments``: payments with where their money went, their filters, and recording one
(``POST``) once per Idempotency-Key."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from tests.api.conftest import Served
from tests.api.v1.conftest import Books, problem, unstamped

FIRST = {
    "id": 1,
    "kind": "payment",
    "customer_id": 1,
    "currency": "GBP",
    "amount": "120.00",
    "received_on": "2026-01-10",
    "reference": None,
    "invoice": "INV-000001",
    "unapplied": None,
    "credit_kept": "0.00",
    "applied": [
        {
            "payment_id": 1,
            "credit_note": None,
            "invoice": "INV-000001",
            "refund_id": None,
            "amount": "120.00",
            "on": "2026-01-10",
        }
    ],
}


def payments(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(tables.Payment)) or 0


def test_payments_listed_and_filtered(served: Served, books: Books) -> None:
    key = served.key()
    assert unstamped(served.get("/v1/payments", key).json()) == {
        "data": [FIRST],
        "next_cursor": None,
    }
    assert unstamped(served.get("/v1/payments/1", key).json()) == FIRST
    for query in ("customer_id=2", "received_from=2026-01-11", "received_to=2026-01-09"):
        assert served.get(f"/v1/payments?{query}", key).json()["data"] == []
    for query in ("customer_id=1&kind=payment", "received_from=2026-01-10&received_to=2026-01-10"):
        assert [p["id"] for p in served.get(f"/v1/payments?{query}", key).json()["data"]] == [1]


def test_a_payment_is_recorded_once_per_idempotency_key(
    served: Served, books: Books, factory: sessionmaker[Session]
) -> None:
    key = served.key("write")
    body = {
        "invoice": "INV-000002",
        "amount": "11000",
        "received_on": "2026-03-15",
        "reference": "BANK-7",
    }

    first = served.write("/v1/payments", key, body, idempotency_key="pay-inv-2")

    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert unstamped(first.json()) == {
        "payment": {
            "id": 2,
            "kind": "payment",
            "customer_id": 2,
            "currency": "JPY",
            "amount": "11000",
            "received_on": "2026-03-15",
            "reference": "BANK-7",
            "invoice": "INV-000002",
            "unapplied": None,
            "credit_kept": "0",
            "applied": [
                {
                    "payment_id": 2,
                    "credit_note": None,
                    "invoice": "INV-000002",
                    "refund_id": None,
                    "amount": "11000",
                    "on": "2026-03-15",
                }
            ],
        },
        "invoice": {
            "number": "INV-000002",
            "status": "paid",
            "total": "11000",
            "amount_paid": "11000",
            "amount_due": "0",
        },
    }
    # the same request again: the first answer, not a second payment
    again = served.write("/v1/payments", key, {**body}, idempotency_key="pay-inv-2")
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    # the same key on another body: refused
    other = served.write(
        "/v1/payments", key, {**body, "amount": "1000"}, idempotency_key="pay-inv-2"
    )
    assert other.status_code == 409
    assert other.json() == problem(
        409,
        "idempotency-key-reused",
        "Conflict",
        "the Idempotency-Key 'pay-inv-2' was first used for another request (POST /v1/payments "
        "with another body): send a new key with a new request",
        "/v1/payments",
    )
    assert payments(factory) == 2
    assert served.get("/v1/invoices/INV-000002", key).json()["status"] == "paid"


def test_the_same_payment_without_reference_twice_is_refused(served: Served, books: Books) -> None:
    key = served.key("write")
    body = {"invoice": "INV-000005", "amount": "50.00", "received_on": "2026-03-15"}
    assert served.write("/v1/payments", key, body).status_code == 201

    twice = served.write("/v1/payments", key, body)  # another key: a new request

    assert twice.status_code == 409
    assert twice.json()["type"] == "https://connector.invalid/problems/duplicate-payment"
    assert twice.json()["detail"].endswith(
        'if it is another payment, send it with "again": true (or give each its reference)'
    )
    again = served.write("/v1/payments", key, {**body, "again": True})
    assert again.status_code == 201
    assert again.json()["invoice"]["amount_due"] == "20.00"


def test_writes_need_a_write_key_and_an_idempotency_key(served: Served, books: Books) -> None:
    body = {"invoice": "INV-000005", "amount": "50.00"}
    read = served.write("/v1/payments", served.key("read"), body)
    assert read.status_code == 403
    assert read.json()["type"] == "https://connector.invalid/problems/scope"
    assert read.json()["detail"].endswith("has the read scope; this needs a write key")

    keyless = served.post("/v1/payments", served.key("write"), json=body)
    assert keyless.status_code == 400
    assert keyless.json() == problem(
        400,
        "idempotency-key-missing",
        "Bad request",
        "a write needs an Idempotency-Key header: a key of your choosing (a UUID), the same "
        "when the request is sent again",
        "/v1/payments",
    )


def test_a_refused_payment_is_not_kept_and_may_be_sent_again(served: Served, books: Books) -> None:
    key = served.key("write")
    body = {"invoice": "INV-000099", "amount": "50.00"}
    missing = served.write("/v1/payments", key, body, idempotency_key="k")
    assert (missing.status_code, missing.json()["detail"]) == (404, "unknown invoice 'INV-000099'")
    fixed = served.write("/v1/payments", key, {**body, "invoice": "INV-000005"}, "k")
    assert fixed.status_code == 201
