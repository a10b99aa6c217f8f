"""``GET /v1/customers/{id}/upcoming-invoice`` through the real server: the usage of the current
period priced by the customer's metered items, the next invoice's fixed fees, and the metrics
no item bills with their quantity only, as ``connector usage show --json`` gives them.

The subscription starts on the first day of the current month (UTC) and the events are dated
at its first instant: always in the current period, whatever the day the tests run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connector.billing.usage import HOUR, hour_of
from connector.db.engine import transaction
from connector.sync import contracts
from connector.sync.usage_report import month_of, window_of
from tests import builders
from tests.api.conftest import Served
from tests.api.v1.conftest import problem

SF = "001000000000001AAA"
MONTH = month_of(datetime.now(UTC).date())
NEXT = month_of(MONTH.end + timedelta(days=1))
STAMP = window_of(MONTH).start.strftime("%Y-%m-%dT%H:%M:%SZ")


def subscribed(factory: sessionmaker[Session]) -> tuple[int, int]:
    """A customer (Salesforce Account SF) with a monthly subscription from the first of this
    month: a fee of 100.00, API calls at 0.01 beyond 10,000 free, seats at 12.00 with a minimum
    of 60.00. Returns (customer id, subscription id)."""
    with transaction(factory) as session:
        customer = contracts.upsert_customer(
            session, name="Acme", country="US", currency="USD", system="salesforce", external_id=SF
        )
        plan = builders.price(session, "PLAN", unit_amount="100.00")
        api = builders.metered_price(session, unit_amount="0.01", free_units="10000")
        seats = builders.metered_price(
            session, "SEATS", metric="seats", unit_amount="12.00", minimum="60.00"
        )
        row = builders.subscription(
            session,
            customer,
            [builders.spec(session, price) for price in (plan, api, seats)],
            start=MONTH.start,
        )
        return customer.id, row.id


def event(tx: str, metric: str = "api_calls", **props: Any) -> dict[str, Any]:
    return {
        "transaction_id": tx,
        "customer": SF,
        "metric": metric,
        "timestamp": STAMP,
        "properties": props,
    }


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_upcoming_invoice_prices_the_period_by_the_items_next_to_the_next_fees(
    served: Served, factory: sessionmaker[Session]
) -> None:
    customer_id, subscription_id = subscribed(factory)
    write, read = served.key("write"), served.key("read")
    calls = [event(f"c{n}") for n in range(10_001)]
    extra = [
        event("b1", "bandwidth_gb", gb="1000.5", region="eu", direction="egress"),
        event("b2", "bandwidth_gb", gb=2, region="us", direction="egress"),
        event("b3", "bandwidth_gb", gb=99, region="us", direction="ingress"),
        event("u1", "seats", user_id="ann"),
        event("u2", "seats", user_id="bob"),
        event("u3", "seats", user_id="ann"),
    ]
    for first in range(0, len(calls), 1000):
        batch = calls[first : first + 1000]
        answer = served.post("/v1/usage-events", write, json={"events": batch})
        assert answer.json()["accepted"] == len(batch)
    assert served.post("/v1/usage-events", write, json={"events": extra}).json()["accepted"] == 6
    now = datetime.now(UTC)

    answer = served.get(f"/v1/customers/{SF}/upcoming-invoice", read)

    assert answer.status_code == 200
    found = answer.json()
    until = datetime.fromisoformat(found.pop("until"))
    assert hour_of(now) + HOUR <= until <= hour_of(datetime.now(UTC)) + HOUR
    month = {"start": iso(window_of(MONTH).start), "end": iso(window_of(MONTH).end)}
    assert found == {
        "customer": {"id": customer_id, "name": "Acme"},
        "currency": "USD",
        "subscriptions": [
            {
                "id": subscription_id,
                "contract": "Contract",
                "frequency": "monthly",
                "period": month,
                "invoice_date": NEXT.start.isoformat(),
                "usage": "60.01",
                "fees": "100.00",
                "total": "160.01",
            }
        ],
        "usage": [
            line(
                subscription_id,
                "API",
                "api_calls",
                "API calls",
                "count",
                None,
                month,
                "10001",
                "1",
                "0.01",
            ),
            line(
                subscription_id,
                "SEATS",
                "seats",
                "Active seats",
                "unique_count",
                None,
                month,
                "2",
                "2",
                "24.00",
            ),
            # bandwidth: no item bills it
            line(None, None, "bandwidth_gb", "Bandwidth (GB)", "sum", "eu", month, "1000.5"),
            line(None, None, "bandwidth_gb", "Bandwidth (GB)", "sum", "us", month, "2"),
        ],
        "shortfalls": [
            {
                "subscription": subscription_id,
                "item": "SEATS",
                "metric": "seats",
                "period": month,
                "minimum": "60.00",
                "charged": "24.00",
                "amount": "36.00",
            }
        ],
        "fees": [
            {
                "subscription": subscription_id,
                "item": "PLAN",
                "description": f"Plan × 1, {NEXT}",
                "quantity": "1",
                "service": {"start": NEXT.start.isoformat(), "end": NEXT.end.isoformat()},
                "amount": "100.00",
            }
        ],
        "total": "160.01",
    }
    # the same by our id
    ours = served.get(f"/v1/customers/{customer_id}/upcoming-invoice", read).json()
    assert {**ours, "until": None} == {**found, "until": None}


def line(  # noqa: PLR0917 - one usage line, as the answer lists it
    subscription: int | None,
    item: str | None,
    metric: str,
    name: str,
    aggregation: str,
    group: str | None,
    period: dict[str, str],
    quantity: str,
    billable: str | None = None,
    amount: str | None = None,
) -> dict[str, Any]:
    return {
        "subscription": subscription,
        "item": item,
        "metric": metric,
        "name": name,
        "aggregation": aggregation,
        "group": group,
        "period": period,
        "quantity": quantity,
        "billable": billable,
        "amount": amount,
    }


def test_a_customer_without_a_subscription_has_its_usage_shown_with_no_charge(
    served: Served, factory: sessionmaker[Session]
) -> None:
    with transaction(factory) as session:
        customer = builders.customer(session, "N", name="None yet")
    key = served.key("write")
    sent = {**event("n1"), "customer": str(customer.id)}
    assert served.post("/v1/usage-events", key, json={"events": [sent]}).json()["accepted"] == 1

    found = served.get(f"/v1/customers/{customer.id}/upcoming-invoice", key).json()

    month = {"start": iso(window_of(MONTH).start), "end": iso(window_of(MONTH).end)}
    assert (found["subscriptions"], found["fees"], found["shortfalls"], found["total"]) == (
        [],
        [],
        [],
        "0.00",
    )
    assert found["usage"] == [line(None, None, "api_calls", "API calls", "count", None, month, "1")]


def test_an_unknown_customer_has_no_upcoming_invoice(served: Served) -> None:
    answer = served.get("/v1/customers/nobody/upcoming-invoice", served.key("read"))

    assert answer.status_code == 404
    assert answer.json() == problem(
        404,
        "not-found",
        "Not found",
        "no customer 'nobody' (give our id or its Salesforce Account Id)",
        "/v1/customers/nobody/upcoming-invoice",
    )
