"""``/v1/customers`` through the real server: keys, the list, one customer, and not found."""

from __future__ import annotations

from tests.api.conftest import Served
from tests.api.v1.conftest import Books, problem, unstamped


def customer(id_: int, ref: str, country: str, currency: str) -> dict[str, object]:
    return {
        "id": id_,
        "name": f"Customer {ref}",
        "country": country,
        "region": None,
        "currency": currency,
        "tax_id": None,
        "language": None,
        "billing_email": None,
        "address": {"street": None, "city": None, "state": None, "postal_code": None},
        "external_ids": {"test": ref},
    }


def test_customers_are_listed_with_their_ids_elsewhere(served: Served, books: Books) -> None:
    answer = served.get("/v1/customers", served.key())

    assert answer.status_code == 200
    assert unstamped(answer.json()) == {
        "data": [customer(1, "C1", "GB", "GBP"), customer(2, "C2", "JP", "JPY")],
        "next_cursor": None,
    }
    created = answer.json()["data"][0]["created_at"]
    assert created.endswith("Z") or created.endswith("+00:00")


def test_customers_filtered_by_currency(served: Served, books: Books) -> None:
    answer = served.get("/v1/customers?currency=jpy", served.key())
    assert [c["name"] for c in answer.json()["data"]] == ["Customer C2"]


def test_one_customer_and_a_missing_one(served: Served, books: Books) -> None:
    key = served.key()
    assert unstamped(served.get("/v1/customers/2", key).json()) == customer(2, "C2", "JP", "JPY")

    missing = served.get("/v1/customers/99", key)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json() == problem(
        404, "not-found", "Not found", "unknown customer 99", "/v1/customers/99"
    )


def test_a_read_needs_a_key_that_is_ours(served: Served) -> None:
    without = served.get("/v1/customers")
    assert without.status_code == 401
    assert without.headers["www-authenticate"] == 'Bearer realm="connector"'
    assert without.json() == problem(
        401,
        "unauthorized",
        "Unauthorized",
        "give an API key as `Authorization: Bearer <key>`",
        "/v1/customers",
    )
    unknown = served.get("/v1/customers", "ck_" + "x" * 43)
    assert (unknown.status_code, unknown.json()["detail"]) == (
        401,
        "the API key is unknown or revoked",
    )
