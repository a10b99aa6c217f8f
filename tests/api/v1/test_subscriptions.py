"""``/v1/contracts`` and ``/v1/subscriptions``: with items, their versions, status and MRR."""

from __future__ import annotations

from tests.api.conftest import Served
from tests.api.v1.conftest import Books, problem, unstamped


def subscription(id_: int, currency: str, unit: str, mrr: str) -> dict[str, object]:
    return {
        "id": id_,
        "contract_id": id_,
        "customer_id": id_,
        "currency": currency,
        "frequency": "monthly",
        "start_date": "2026-01-01",
        "trial_days": 0,
        "term_months": 12,
        "auto_renew": True,
        "term_count": 1,
        "cancel_date": None,
        "revision": 0,
        "billed_until": "2026-04-01",
        "next_billing_date": "2026-04-01",
        "billing_error": None,
        "status": "active",
        "mrr": mrr,
        "on": "2026-02-15",
        "items": [
            {
                "id": id_,
                "key": "SEATS",
                "kind": "recurring",
                "product_code": "SEATS",
                "product_name": "Seats",
                "service_date": None,
                "versions": [
                    {
                        "effective_date": "2026-01-01",
                        "price_id": id_,
                        "pricing_model": "per_unit",
                        "unit_amount": unit,
                        "flat_amount": None,
                        "quantity": "10",
                        "discount_percent": "0",
                    }
                ],
            }
        ],
        "external_ids": {},
    }


def test_subscriptions_with_items_status_and_mrr_on_a_day(served: Served, books: Books) -> None:
    key = served.key()
    answer = served.get("/v1/subscriptions?on=2026-02-15", key)
    assert unstamped(answer.json()) == {
        "data": [
            subscription(1, "GBP", "10", "100.00"),
            subscription(2, "JPY", "1000", "10000"),
        ],
        "next_cursor": None,
    }
    one = served.get("/v1/subscriptions/2?on=2025-12-31", key).json()
    assert (one["status"], one["mrr"]) == ("pending", "0")
    assert served.get("/v1/subscriptions?customer_id=2&on=2026-02-15", key).json()["data"] == [
        answer.json()["data"][1]
    ]
    assert served.get("/v1/subscriptions/9", key).json() == problem(
        404, "not-found", "Not found", "unknown subscription 9", "/v1/subscriptions/9"
    )


def test_contracts_with_their_subscriptions(served: Served, books: Books) -> None:
    answer = served.get("/v1/contracts?customer_id=2", served.key())
    assert unstamped(answer.json()) == {
        "data": [
            {
                "id": 2,
                "customer_id": 2,
                "name": "Contract",
                "subscription_ids": [2],
                "external_ids": {},
            }
        ],
        "next_cursor": None,
    }
