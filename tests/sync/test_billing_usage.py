"""The billing run bills metered items' usage in arrears: the usage of a period on the invoice
issued at its end, next to the next period's fixed fees, from the hourly aggregates, once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.usage import Aggregation, Metric
from connector.db import tables
from connector.db.engine import transaction
from connector.settings import Settings, load_settings
from connector.sync import contracts
from connector.sync.billing_run import run_billing
from connector.sync.usage_events import Limits, ingest_batch
from tests import builders
from tests.builders import documents, lines
from tests.conftest import TEST_TAX_RATES
from tests.statements import counting

D = Decimal
METRICS = {"api_calls": Metric("api_calls", Aggregation.COUNT, name="API calls")}
MAPPING = """\
metrics:
  - code: api_calls
    name: API calls
    aggregation: count
"""
JAN, FEB, MAR, APR = (date(2026, month, 1) for month in (1, 2, 3, 4))


@pytest.fixture
def usage_settings(database_url: str, tmp_path: Path) -> Settings:
    mapping = tmp_path / "usage.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    return load_settings(
        database_url=database_url,
        ledger={"path": tmp_path / "ledger.beancount"},
        tax={"rates": TEST_TAX_RATES},
        usage={"mapping_file": str(mapping)},
    )


def metered_subscription(factory: sessionmaker[Session], ref: str = "C1") -> tuple[int, int]:
    """A monthly subscription from January 1: a fixed fee of 100.00 and API calls at 0.25
    each beyond 2 free a month. Returns (subscription id, customer id)."""
    with transaction(factory) as session:
        customer = builders.customer(session, ref)
        plan = builders.price(session, "PLAN", unit_amount="100.00")
        api = builders.metered_price(session, unit_amount="0.25", free_units="2", key="api-1")
        row = builders.subscription(
            session,
            customer,
            [builders.spec(session, plan, 1), builders.spec(session, api, 1)],
            start=JAN,
        )
        return row.id, customer.id


def calls(factory: sessionmaker[Session], customer_id: int, at: str, count: int, tag: str) -> None:
    """``count`` API calls of the customer, a minute apart from ``at`` (UTC)."""
    start = datetime.fromisoformat(at).replace(tzinfo=UTC)
    events: list[Any] = [
        {
            "transaction_id": f"{tag}-{n}",
            "customer": str(customer_id),
            "metric": "api_calls",
            "timestamp": (start + timedelta(minutes=n)).isoformat(),
            "properties": {},
        }
        for n in range(count)
    ]
    results = ingest_batch(
        factory, METRICS, events, start + timedelta(days=1), Limits(past=timedelta(days=3660))
    )
    assert all(result.outcome.value == "accepted" for result in results)


def test_usage_in_arrears_next_to_fees_in_advance_over_three_months(
    factory: sessionmaker[Session], usage_settings: Settings
) -> None:
    _, customer_id = metered_subscription(factory)
    calls(factory, customer_id, "2026-01-10T09:00", 5, "jan")
    calls(factory, customer_id, "2026-02-27T23:30", 10, "feb")  # across midnight into Feb 28
    calls(factory, customer_id, "2026-03-31T23:59", 1, "mar")

    for day in (JAN, FEB, MAR, APR):
        run_billing(factory, usage_settings, day)

    assert documents(factory) == [
        ("INV-000001", "invoice", JAN, D("100.00"), D("100.00")),
        ("INV-000002", "invoice", FEB, D("100.75"), D("100.75")),
        ("INV-000003", "invoice", MAR, D("102.00"), D("102.00")),
        ("INV-000004", "invoice", APR, D("100.00"), D("100.00")),
    ]
    assert lines(factory, "INV-000002") == [
        ("Plan × 1, 2026-02-01..2026-02-28", FEB, date(2026, 2, 28), D("100.00")),
        (
            "API calls (count) × 5, 2026-01-01 00:00 – 2026-02-01 00:00 UTC",
            JAN,
            date(2026, 1, 31),
            D("0.75"),
        ),
    ]
    assert lines(factory, "INV-000003")[1] == (
        "API calls (count) × 10, 2026-02-01 00:00 – 2026-03-01 00:00 UTC",
        FEB,
        date(2026, 2, 28),
        D("2.00"),
    )
    # March: 1 call, within the free units: nothing to bill, no line
    assert [line[0] for line in lines(factory, "INV-000004")] == [
        "Plan × 1, 2026-04-01..2026-04-30"
    ]
    again = run_billing(factory, usage_settings, APR)
    assert (again.invoices, again.credit_notes) == (0, 0)
    with factory() as session:
        usage_charges = session.execute(
            select(tables.Charge.period_start, tables.Charge.amount)
            .join(tables.SubscriptionItem)
            .where(tables.SubscriptionItem.kind == "metered")
            .order_by(tables.Charge.period_start)
        ).all()
    assert [tuple(c) for c in usage_charges] == [(JAN, D("0.75")), (FEB, D("2.00"))]


def test_an_upgrade_mid_period_splits_the_usage_at_the_change(
    factory: sessionmaker[Session], usage_settings: Settings
) -> None:
    subscription_id, customer_id = metered_subscription(factory)
    run_billing(factory, usage_settings, JAN)
    run_billing(factory, usage_settings, FEB)
    calls(factory, customer_id, "2026-02-10T08:00", 4, "before")
    calls(factory, customer_id, "2026-02-20T08:00", 6, "after")
    with transaction(factory) as session:
        plan = builders.price(session, "PLAN", unit_amount="100.00")
        cheaper = builders.metered_price(session, unit_amount="0.10", free_units="2", key="api-2")
        contracts.amend_subscription(
            session,
            subscription_id,
            effective=date(2026, 2, 15),
            items=[builders.spec(session, plan, 1), builders.spec(session, cheaper, 1)],
        )

    result = run_billing(factory, usage_settings, MAR)

    assert (result.invoices, result.credit_notes) == (1, 0)
    assert documents(factory)[-1] == ("INV-000003", "invoice", MAR, D("100.90"), D("100.90"))
    assert lines(factory, "INV-000003") == [
        ("Plan × 1, 2026-03-01..2026-03-31", MAR, date(2026, 3, 31), D("100.00")),
        (  # 4 calls at 0.25 beyond 2 free
            "API calls (count) × 4, 2026-02-01 00:00 – 2026-02-15 00:00 UTC",
            FEB,
            date(2026, 2, 14),
            D("0.50"),
        ),
        (  # 6 calls at 0.10 beyond 2 free
            "API calls (count) × 6, 2026-02-15 00:00 – 2026-03-01 00:00 UTC",
            date(2026, 2, 15),
            date(2026, 2, 28),
            D("0.40"),
        ),
    ]
    assert run_billing(factory, usage_settings, MAR).invoices == 0


def test_a_cancellation_bills_the_usage_up_to_the_cancel_date(
    factory: sessionmaker[Session], usage_settings: Settings
) -> None:
    subscription_id, customer_id = metered_subscription(factory)
    run_billing(factory, usage_settings, JAN)
    run_billing(factory, usage_settings, FEB)
    calls(factory, customer_id, "2026-02-03T08:00", 4, "served")
    calls(factory, customer_id, "2026-02-20T08:00", 3, "cancelled")  # after service ended
    with transaction(factory) as session:
        contracts.cancel_subscription(session, subscription_id, cancel_date=date(2026, 2, 15))

    early = run_billing(factory, usage_settings, date(2026, 2, 14))  # service not over yet
    result = run_billing(factory, usage_settings, date(2026, 2, 15))

    assert (early.invoices, early.credit_notes) == (0, 1)  # the unused days of the fee
    assert (result.invoices, result.credit_notes) == (1, 0)
    assert documents(factory)[-1] == (
        "INV-000003",
        "invoice",
        date(2026, 2, 15),
        D("0.50"),
        D("0.50"),
    )
    assert lines(factory, "INV-000003") == [
        (
            "API calls (count) × 4, 2026-02-01 00:00 – 2026-02-15 00:00 UTC",
            FEB,
            date(2026, 2, 14),
            D("0.50"),
        )
    ]
    with factory() as session:
        subscription = session.get_one(tables.Subscription, subscription_id)
        assert subscription.next_billing_date is None
    later = run_billing(factory, usage_settings, APR)
    assert (later.subscriptions, later.invoices, later.credit_notes) == (0, 0, 0)


def test_statements_of_a_run_do_not_grow_with_the_events(
    factory: sessionmaker[Session], engine: Engine, usage_settings: Settings
) -> None:
    customers = [metered_subscription(factory, f"C{n}")[1] for n in range(3)]
    for customer_id in customers:
        calls(factory, customer_id, "2026-01-10T09:00", 3, f"jan{customer_id}")
        calls(factory, customer_id, "2026-02-01T00:00", 300, f"feb{customer_id}")  # 5 hours
    run_billing(factory, usage_settings, JAN)

    with counting(engine) as few:
        assert run_billing(factory, usage_settings, FEB).invoices == 3
    with counting(engine) as many:
        assert run_billing(factory, usage_settings, MAR).invoices == 3

    assert len(many) == len(few)
    assert len(few.touching("usage_daily")) == 1  # one query for the whole batch
    assert few.touching("usage_hourly") == []  # periods are whole days: the daily aggregates
    with factory() as session:
        billed = session.scalar(
            select(func.sum(tables.Document.subtotal)).where(tables.Document.issue_date == MAR)
        )
    assert billed == 3 * (D("100.00") + D("74.50"))  # 298 calls beyond the free ones


def test_a_backdated_cancellation_credits_the_usage_billed_after_it(
    factory: sessionmaker[Session], usage_settings: Settings
) -> None:
    subscription_id, customer_id = metered_subscription(factory)
    calls(factory, customer_id, "2026-01-05T08:00", 6, "kept")
    calls(factory, customer_id, "2026-01-20T08:00", 8, "taken-back")
    run_billing(factory, usage_settings, JAN)
    run_billing(factory, usage_settings, FEB)  # January's 14 calls: 12 × 0.25 = 3.00
    with transaction(factory) as session:
        contracts.cancel_subscription(session, subscription_id, cancel_date=date(2026, 1, 15))

    result = run_billing(factory, usage_settings, date(2026, 2, 2))

    assert (result.invoices, result.credit_notes) == (0, 2)  # one per invoice credited
    assert documents(factory)[:2] == [
        ("CN-000001", "credit_note", date(2026, 2, 2), D("54.84"), D("54.84")),  # January fee
        ("CN-000002", "credit_note", date(2026, 2, 2), D("102.00"), D("102.00")),
    ]
    assert lines(factory, "CN-000002")[-1] == (
        "Api: usage credited for 2026-01-01..2026-01-14",
        JAN,
        date(2026, 1, 14),
        D("2.00"),  # 6 calls to the 14th: 4 × 0.25 = 1.00 of the 3.00 billed stay
    )
    assert run_billing(factory, usage_settings, APR).credit_notes == 0
