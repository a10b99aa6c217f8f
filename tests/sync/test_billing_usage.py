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
