"""``/v1/metrics/mrr``: per currency and month, each figure in its currency's precision."""

from __future__ import annotations

from tests.api.conftest import Served
from tests.api.v1.conftest import Books, problem


def month(name: str, since: str, as_of: str, code: str, first: bool) -> dict[str, object]:
    gb = code == "GBP"
    mrr, arr = ("100.00", "1200.00") if gb else ("10000", "120000")
    zero = "0.00" if gb else "0"
    return {
        "month": name,
        "currency": code,
        "since": since,
        "as_of": as_of,
        "mrr": mrr,
        "arr": arr,
        "active_customers": 1,
        "arpu": mrr,
        "mrr_at_start": zero if first else mrr,
        "customers_at_start": 0 if first else 1,
        "movements": {
            "new": mrr if first else zero,
            "expansion": zero,
            "contraction": zero,
            "churn": zero,
            "reactivation": zero,
            "net": mrr if first else zero,
        },
        "churned_customers": 0,
        "logo_churn": None if first else "0.0000",
        "revenue_churn": None if first else "0.0000",
        "net_revenue_retention": None if first else "1.0000",
        "ltv": None,
    }


def test_mrr_per_currency_and_month(served: Served, books: Books) -> None:
    answer = served.get("/v1/metrics/mrr?from=2026-01&to=2026-02", served.key())

    assert answer.status_code == 200
    assert answer.json() == {
        "data": [
            month("2026-01", "2025-12-31", "2026-01-31", "GBP", first=True),
            month("2026-01", "2025-12-31", "2026-01-31", "JPY", first=True),
            month("2026-02", "2026-01-31", "2026-02-28", "GBP", first=False),
            month("2026-02", "2026-01-31", "2026-02-28", "JPY", first=False),
        ]
    }


def test_months_out_of_order_or_malformed_are_refused(served: Served, books: Books) -> None:
    key = served.key()
    backwards = served.get("/v1/metrics/mrr?from=2026-03&to=2026-01", key)
    assert backwards.json() == problem(
        400, "bad-request", "Bad request", "from (2026-03) is after to (2026-01)", "/v1/metrics/mrr"
    )
    too_many = served.get("/v1/metrics/mrr?from=2000-01&to=2026-01", key)
    assert too_many.json()["detail"] == "ask for at most 120 months at once, not 313"
    malformed = served.get("/v1/metrics/mrr?from=2026-13", key)
    assert (malformed.status_code, malformed.json()["errors"][0]["location"]) == (
        422,
        "query.from",
    )
