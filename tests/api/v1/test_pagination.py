"""Pages by cursor: every item once across pages, filters kept, the server's default size,
and a cursor that is not ours refused as a problem."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connector.settings import Settings
from tests.api.conftest import Served, serving
from tests.api.v1.conftest import Books, problem


def pages(served: Served, key: str, path: str) -> list[list[str]]:
    """The numbers of each page of ``path``, following next_cursor to the end."""
    found, cursor = [], None
    while True:
        joiner = "&" if "?" in path else "?"
        answer = served.get(path + (f"{joiner}cursor={cursor}" if cursor else ""), key)
        assert answer.status_code == 200
        body = answer.json()
        found.append([doc["number"] for doc in body["data"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return found


def test_every_invoice_once_across_pages(served: Served, books: Books) -> None:
    key = served.key()
    assert pages(served, key, "/v1/invoices?limit=2") == [
        ["INV-000001", "INV-000002"],
        ["INV-000003", "INV-000004"],
        ["INV-000005", "INV-000006"],
    ]
    assert pages(served, key, "/v1/invoices?limit=4&customer_id=1") == [
        ["INV-000001", "INV-000003", "INV-000005"]
    ]
    assert pages(served, key, "/v1/invoices?limit=1&customer_id=2&issued_from=2026-02-01") == [
        ["INV-000004"],
        ["INV-000006"],
    ]


def test_the_default_page_is_api_page_size(
    engine: Engine, factory: sessionmaker[Session], settings: Settings, books: Books
) -> None:
    smaller = settings.model_copy(update={"api": settings.api.model_copy(update={"page_size": 4})})
    with serving(engine, factory, smaller) as served:
        assert pages(served, served.key(), "/v1/invoices") == [
            ["INV-000001", "INV-000002", "INV-000003", "INV-000004"],
            ["INV-000005", "INV-000006"],
        ]


def test_a_cursor_not_ours_and_a_page_too_long_are_refused(served: Served, books: Books) -> None:
    key = served.key()
    forged = served.get("/v1/invoices?cursor=bm90IG91cnM", key)
    assert forged.status_code == 400
    assert forged.json() == problem(
        400,
        "invalid-cursor",
        "Bad request",
        "cursor 'bm90IG91cnM' is not one this API gave: pass the next_cursor of the previous "
        "page as it is, or leave it out for the first page",
        "/v1/invoices",
    )
    long = served.get("/v1/invoices?limit=1001", key)
    assert long.status_code == 422
    assert long.json()["errors"] == [
        {"location": "query.limit", "message": "Input should be less than or equal to 1000"}
    ]
