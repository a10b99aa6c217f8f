"""``/v1/invoices`` and ``/v1/credit-notes``: documents with lines and taxes, read set-based;
their filters; the PDF of the latest version, as kept."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from tests.api.conftest import Served
from tests.api.v1.conftest import Books, problem, unstamped
from tests.statements import counting

CREDIT_NOTE = {
    "id": 7,
    "kind": "credit_note",
    "number": "CN-000001",
    "status": "issued",
    "customer_id": 1,
    "customer_name": "Customer C1",
    "subscription_id": 1,
    "credited_invoice": "INV-000003",
    "currency": "GBP",
    "issue_date": "2026-03-10",
    "due_date": "2026-03-10",
    "period_start": "2026-02-01",
    "period_end": "2026-02-28",
    "subtotal": "30.00",
    "tax_total": "6.00",
    "total": "36.00",
    "amount_paid": "0.00",
    "amount_credited": "0.00",
    "amount_due": "0.00",
    "unapplied": None,
    "tax_note": None,
    "reason": "service outage",
    "reference": "INV-000003:92a94edfa35a8154",
    "version": 1,
    "lines": [
        {
            "position": 1,
            "kind": "recurring",
            "product_code": "SEATS",
            "description": "Seats × 10, 2026-02-01..2026-02-28 (credited: service outage)",
            "quantity": "10",
            "discount_percent": "0",
            "service_start": "2026-02-01",
            "service_end": "2026-02-28",
            "amount": "30.00",
            "tax_rate": "20",
            "credited_amount": "0.00",
        }
    ],
    "taxes": [
        {
            "jurisdiction": "GB",
            "rate": "20",
            "taxable": "30.00",
            "tax": "6.00",
            "reverse_charge": False,
        }
    ],
}


def invoice(
    id_: int, customer: int, month: int, *, status: str, paid: str, credited: str, due: str
) -> dict[str, object]:
    """One of the fixture's invoices: GB ones 100.00 + 20% GBP, JP ones 10000 + 10% JPY."""
    gb = customer == 1
    money = (lambda text: f"{text}.00") if gb else (lambda text: text)
    last = {1: 31, 2: 28, 3: 31}[month]
    start, end = f"2026-{month:02d}-01", f"2026-{month:02d}-{last}"
    return {
        "id": id_,
        "kind": "invoice",
        "number": f"INV-{id_:06d}",
        "status": status,
        "customer_id": customer,
        "customer_name": f"Customer C{customer}",
        "subscription_id": customer,
        "credited_invoice": None,
        "currency": "GBP" if gb else "JPY",
        "issue_date": start,
        "due_date": {1: "2026-01-31", 2: "2026-03-03", 3: "2026-03-31"}[month],  # 30 days
        "period_start": start,
        "period_end": end,
        "subtotal": money("100" if gb else "10000"),
        "tax_total": money("20" if gb else "1000"),
        "total": money("120" if gb else "11000"),
        "amount_paid": paid,
        "amount_credited": credited,
        "amount_due": due,
        "unapplied": None,
        "tax_note": None,
        "reason": None,
        "reference": None,
        "version": 2 if status == "paid" or credited not in ("0", "0.00") else 1,
        "lines": [
            {
                "position": 1,
                "kind": "recurring",
                "product_code": "SEATS",
                "description": f"Seats × 10, {start}..{end}",
                "quantity": "10",
                "discount_percent": "0",
                "service_start": start,
                "service_end": end,
                "amount": money("100" if gb else "10000"),
                "tax_rate": "20" if gb else "10",
                "credited_amount": "30.00" if credited == "36.00" else money("0"),
            }
        ],
        "taxes": [
            {
                "jurisdiction": "GB" if gb else "JP",
                "rate": "20" if gb else "10",
                "taxable": money("100" if gb else "10000"),
                "tax": money("20" if gb else "1000"),
                "reverse_charge": False,
            }
        ],
    }


INV1 = invoice(1, 1, 1, status="paid", paid="120.00", credited="0.00", due="0.00")
INV2 = invoice(2, 2, 1, status="open", paid="0", credited="0", due="11000")
INV3 = invoice(3, 1, 2, status="open", paid="0.00", credited="36.00", due="84.00")
INV4 = invoice(4, 2, 2, status="open", paid="0", credited="0", due="11000")
INV5 = invoice(5, 1, 3, status="open", paid="0.00", credited="0.00", due="120.00")
INV6 = invoice(6, 2, 3, status="open", paid="0", credited="0", due="11000")


def test_invoices_with_lines_and_taxes_money_in_each_currencys_precision(
    served: Served, books: Books
) -> None:
    answer = served.get("/v1/invoices", served.key())

    assert answer.status_code == 200
    assert unstamped(answer.json()) == {
        "data": [INV1, INV2, INV3, INV4, INV5, INV6],
        "next_cursor": None,
    }


@pytest.mark.parametrize(
    ("query", "numbers"),
    [
        ("customer_id=2", ["INV-000002", "INV-000004", "INV-000006"]),
        ("status=paid", ["INV-000001"]),
        ("customer_id=1&status=open", ["INV-000003", "INV-000005"]),
        ("issued_from=2026-02-01", ["INV-000003", "INV-000004", "INV-000005", "INV-000006"]),
        ("issued_from=2026-02-01&issued_to=2026-02-28", ["INV-000003", "INV-000004"]),
        ("issued_to=2025-12-31", []),
        ("status=void", []),
    ],
)
def test_invoices_filtered(served: Served, books: Books, query: str, numbers: list[str]) -> None:
    answer = served.get(f"/v1/invoices?{query}", served.key())
    assert [doc["number"] for doc in answer.json()["data"]] == numbers


def test_a_filter_of_another_kind_is_refused_as_a_problem(served: Served, books: Books) -> None:
    answer = served.get("/v1/invoices?status=issued&issued_from=March", served.key())

    assert answer.status_code == 422
    body = answer.json()
    assert (body["type"], body["title"]) == (
        "https://connector.invalid/problems/invalid-request",
        "Unprocessable content",
    )
    assert [error["location"] for error in body["errors"]] == [
        "query.status",
        "query.issued_from",
    ]


def test_credit_notes_name_the_invoice_they_credit(served: Served, books: Books) -> None:
    key = served.key()
    listed = served.get("/v1/credit-notes?customer_id=1&status=issued", key)
    assert unstamped(listed.json()) == {"data": [CREDIT_NOTE], "next_cursor": None}
    assert unstamped(served.get("/v1/credit-notes/CN-000001", key).json()) == CREDIT_NOTE
    assert served.get("/v1/credit-notes?customer_id=2", key).json()["data"] == []


def test_one_invoice_and_a_number_of_another_kind(served: Served, books: Books) -> None:
    key = served.key()
    assert unstamped(served.get("/v1/invoices/INV-000003", key).json()) == INV3
    missing = served.get("/v1/invoices/CN-000001", key)
    assert missing.json() == problem(
        404, "not-found", "Not found", "unknown invoice 'CN-000001'", "/v1/invoices/CN-000001"
    )


def test_a_page_of_documents_costs_three_statements_however_long(
    served: Served, books: Books
) -> None:
    key = served.key()
    served.get("/v1/invoices", key)  # the key's first use is noted once
    engine = served.instance.engine
    counts = {}
    for limit in (1, 6):
        with counting(engine) as seen:
            answer = served.get(f"/v1/invoices?limit={limit}", key)
        assert len(answer.json()["data"]) == limit
        counts[limit] = [sql.split(None, 1)[0].upper() for sql in seen.sql]
    # the key, then the documents (with customers and credited invoices), lines, taxes; and
    # on SQLite the BEGIN of each of the two transactions (the key's, the page's)
    expected = ["SELECT"] * 4
    if engine.dialect.name == "sqlite":
        expected = ["BEGIN", "SELECT", "BEGIN", "SELECT", "SELECT", "SELECT"]
    assert counts == {1: expected, 6: expected}


def stored_pdf(factory: sessionmaker[Session], number: str) -> bytes:
    with factory() as session:
        doc = session.scalars(select(tables.Document).where(tables.Document.number == number)).one()
        content = session.scalar(
            select(tables.PdfContent.content)
            .join(tables.DocumentFile, tables.DocumentFile.sha256 == tables.PdfContent.sha256)
            .where(
                tables.DocumentFile.document_id == doc.id,
                tables.DocumentFile.version == doc.version,
            )
        )
        assert content is not None
        return bytes(content)


def test_the_pdf_is_the_one_kept_for_the_latest_version(
    served: Served, books: Books, factory: sessionmaker[Session]
) -> None:
    key = served.key()
    first = served.get("/v1/invoices/INV-000003/pdf", key)  # rendered now, and kept

    assert first.status_code == 200
    assert first.headers["content-type"] == "application/pdf"
    assert first.headers["content-disposition"] == 'inline; filename="INV-000003.pdf"'
    assert first.headers["x-document-version"] == "2"
    assert first.content.startswith(b"%PDF-")
    assert first.content == stored_pdf(factory, "INV-000003")
    again = served.get("/v1/invoices/INV-000003/pdf", key)
    assert again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]

    note = served.get("/v1/credit-notes/CN-000001/pdf", key)
    assert note.content == stored_pdf(factory, "CN-000001")
    assert served.get("/v1/credit-notes/INV-000003/pdf", key).status_code == 404
