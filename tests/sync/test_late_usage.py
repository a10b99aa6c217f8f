"""Late usage: events stored after their period was billed reach the next invoice as an
adjustment, never lost and never counted twice; within ``usage.grace_hours`` of the period's
end they still reach the period's own invoice, which waits for them."""

from __future__ import annotations

import itertools
import shutil
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.engine import make_engine, session_factory, transaction
from connector.db.usage_late import lock_usage
from connector.settings import Settings, load_settings
from connector.sync import contracts
from connector.sync.billing_run import run_billing
from connector.sync.usage_events import ingest_batch
from tests import builders
from tests.builders import documents, lines
from tests.conftest import TEST_TAX_RATES
from tests.sync.test_billing_usage import (
    FEB,
    JAN,
    MAPPING,
    MAR,
    METRICS,
    calls,
    metered_subscription,
)

D = Decimal


def settings_with(database_url: str, tmp_path: Path, grace_hours: int = 0) -> Settings:
    mapping = tmp_path / "usage.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    return load_settings(
        database_url=database_url,
        ledger={"path": tmp_path / "ledger.beancount"},
        tax={"rates": TEST_TAX_RATES},
        usage={"mapping_file": str(mapping), "grace_hours": grace_hours},
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def state(factory: sessionmaker[Session], subscription_id: int) -> tuple[date | None, ...]:
    with factory() as session:
        row = session.get_one(tables.Subscription, subscription_id)
        return (row.billed_as_of, row.usage_billed_until, row.reconcile_from)


def test_an_event_after_its_period_was_billed_is_an_adjustment_on_the_next_invoice(
    factory: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    settings = settings_with(database_url, tmp_path)
    subscription_id, customer_id = metered_subscription(factory)
    calls(factory, customer_id, "2026-01-10T09:00", 5, "jan")
    run_billing(factory, settings, JAN)
    run_billing(factory, settings, FEB)  # January's 5 calls: 3 × 0.25
    assert state(factory, subscription_id) == (FEB, FEB, None)
    calls(factory, customer_id, "2026-02-03T09:00", 3, "feb")  # February: not billed yet
    assert state(factory, subscription_id) == (FEB, FEB, None)

    calls(factory, customer_id, "2026-01-20T10:00", 4, "late")  # January's, after its invoice
    assert state(factory, subscription_id) == (FEB, FEB, date(2026, 1, 20))
    result = run_billing(factory, settings, date(2026, 2, 5))

    assert (result.invoices, result.credit_notes) == (1, 0)
    assert documents(factory)[-1] == (
        "INV-000003",
        "invoice",
        date(2026, 2, 5),
        D("1.00"),
        D("1.00"),
    )
    assert lines(factory, "INV-000003") == [  # 4 more calls at 0.25
        ("Api: usage change for 2026-01-01..2026-01-31", JAN, date(2026, 1, 31), D("1.00"))
    ]
    assert state(factory, subscription_id) == (date(2026, 2, 5), FEB, None)
    assert run_billing(factory, settings, date(2026, 2, 5)).invoices == 0
    run_billing(factory, settings, MAR)  # February's 3 calls: 1 × 0.25, once
    with factory() as session:
        usage = session.execute(
            select(tables.Charge.period_start, tables.Charge.amount)
            .join(tables.SubscriptionItem)
            .where(tables.SubscriptionItem.kind == "metered")
            .order_by(tables.Charge.id)
        ).all()
    assert [tuple(row) for row in usage] == [(JAN, D("0.75")), (JAN, D("1.00")), (FEB, D("0.25"))]


def test_within_the_grace_a_late_event_still_reaches_the_period_invoice(
    factory: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    settings = settings_with(database_url, tmp_path, grace_hours=6)
    subscription_id, customer_id = metered_subscription(factory)
    with transaction(factory) as session:  # no metered item: billed at once
        flat = builders.subscription(
            session,
            builders.customer(session, "C2"),
            [builders.spec(session, builders.price(session, "FLAT", unit_amount="40.00"), 1)],
            start=JAN,
        ).id
    calls(factory, customer_id, "2026-01-10T09:00", 5, "jan")
    run_billing(factory, settings, JAN, now=at("2026-01-01T07:00"))

    early = run_billing(factory, settings, FEB, now=at("2026-02-01T05:59"))
    calls(factory, customer_id, "2026-01-31T23:30", 2, "in-grace")  # stored at 06:00
    assert state(factory, subscription_id) == (date(2026, 1, 31), JAN, None)
    later = run_billing(factory, settings, FEB, now=at("2026-02-01T06:00"))

    assert (early.invoices, later.invoices, later.credit_notes) == (1, 1, 0)
    assert documents(factory) == [
        ("INV-000001", "invoice", JAN, D("100.00"), D("100.00")),
        ("INV-000002", "invoice", JAN, D("40.00"), D("40.00")),
        ("INV-000003", "invoice", FEB, D("40.00"), D("40.00")),  # the flat fee, at 05:59
        ("INV-000004", "invoice", FEB, D("101.25"), D("101.25")),
    ]
    assert lines(factory, "INV-000004")[1] == (  # 7 calls, 5 beyond the free ones
        "API calls (count) × 7, 2026-01-01 00:00 – 2026-02-01 00:00 UTC",
        JAN,
        date(2026, 1, 31),
        D("1.25"),
    )
    assert state(factory, subscription_id) == (FEB, FEB, None)
    assert state(factory, flat)[:2] == (FEB, None)


def test_a_backfill_run_is_not_held_by_the_grace(
    factory: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    settings = settings_with(database_url, tmp_path, grace_hours=48)
    _, customer_id = metered_subscription(factory)
    calls(factory, customer_id, "2026-01-10T09:00", 3, "jan")

    for day in (JAN, FEB):
        run_billing(factory, settings, day, now=at("2026-06-01T00:00"))

    assert [doc[3] for doc in documents(factory)] == [D("100.00"), D("100.25")]


def test_events_stored_while_a_billing_batch_reads_the_usage_wait_for_it(
    factory: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    """A billing batch holds the customer's usage lock from before it reads the usage to its
    commit (PostgreSQL; SQLite: its write lock): a batch of late events waits, then sees the
    period billed and marks it."""
    settings = settings_with(database_url, tmp_path)
    subscription_id, customer_id = metered_subscription(factory)
    run_billing(factory, settings, JAN)
    stored = threading.Event()

    def late_batch() -> None:
        calls(factory, customer_id, "2026-01-20T10:00", 4, "late")
        stored.set()

    with transaction(factory) as session:
        session.execute(select(tables.Subscription.id))  # the batch's rows (SQLite: its lock)
        lock_usage(session, [customer_id], exclusive=True)
        worker = threading.Thread(target=late_batch)
        worker.start()
        assert not stored.wait(1.0)  # held by the billing batch's lock
        session.execute(  # what the batch's billing writes
            tables.table_of(tables.Subscription)
            .update()
            .values(billed_as_of=FEB, usage_billed_until=FEB)
        )
    worker.join(30)

    assert stored.is_set()
    assert state(factory, subscription_id) == (FEB, FEB, date(2026, 1, 20))


RUN_DAYS = [JAN, date(2026, 1, 20), FEB, date(2026, 2, 10), MAR, date(2026, 3, 2)]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    minutes=st.lists(st.integers(0, 59 * 24 * 60 - 1), max_size=25),  # January and February
    data=st.data(),
)
def test_billed_usage_is_the_priced_count_of_distinct_events_whenever_they_arrive(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory, minutes: list, data: Any
) -> None:
    """Events arrive in any order, some twice, in batches between billing runs: each period
    is billed, over its invoice and adjustments, 0.25 per call beyond 2, once."""
    folder = tmp_path_factory.mktemp("late")
    shutil.copy(sqlite_template, folder / "connector.db")
    url = f"sqlite:///{folder / 'connector.db'}"
    engine = make_engine(url)
    factory = session_factory(engine)
    try:
        settings = settings_with(url, folder)
        _, customer_id = metered_subscription(factory)
        events = [
            {
                "transaction_id": f"e{n}",
                "customer": str(customer_id),
                "metric": "api_calls",
                "timestamp": (at("2026-01-01T00:00") + timedelta(minutes=m)).isoformat(),
                "properties": {},
            }
            for n, m in enumerate(minutes)
        ]
        again = data.draw(st.lists(st.sampled_from(events), max_size=8)) if events else []
        arrival = data.draw(st.permutations(events + again))
        cuts = sorted(data.draw(st.sets(st.integers(0, len(arrival)), max_size=len(RUN_DAYS))))
        runs = sorted(data.draw(st.lists(st.sampled_from(RUN_DAYS), min_size=len(cuts))))
        bounds = [0, *cuts, len(arrival)]
        for index, (start, end) in enumerate(itertools.pairwise(bounds)):
            ingest_batch(factory, METRICS, arrival[start:end], at("2026-03-02T00:00"))
            if index < len(cuts):
                run_billing(factory, settings, runs[index])
        run_billing(factory, settings, date(2026, 3, 3))

        with factory() as session:
            billed = session.execute(
                select(tables.Charge.period_start, func.sum(tables.Charge.amount))
                .join(tables.SubscriptionItem)
                .where(tables.SubscriptionItem.kind == "metered")
                .group_by(tables.Charge.period_start)
            ).all()
        counts = {JAN: 0, FEB: 0}
        for m in minutes:
            counts[JAN if m < 31 * 24 * 60 else FEB] += 1
        expected = {month: D("0.25") * (n - 2) for month, n in counts.items() if n > 2}
        assert {month: amount for month, amount in billed if amount} == expected
    finally:
        engine.dispose()


def test_two_subscriptions_metering_one_metric_are_held_rather_than_billed_twice(
    factory: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    settings = settings_with(database_url, tmp_path)
    first, customer_id = metered_subscription(factory)
    other, _ = metered_subscription(factory, "C2")
    with transaction(factory) as session:
        customer = session.get_one(tables.Customer, customer_id)
        api = builders.metered_price(session, unit_amount="0.25", free_units="2", key="api-1")
        second = builders.subscription(
            session, customer, [builders.spec(session, api, 1)], start=date(2026, 1, 15)
        ).id

    result = run_billing(factory, settings, date(2026, 2, 15))  # both due

    reason = (
        f"metric 'api_calls' is metered by subscription {{}} of customer {customer_id} too, "
        "over some of the same days: its usage would be billed twice (end one of them before "
        "the other starts, or meter another metric)"
    )
    assert result.failed == {first: reason.format(second), second: reason.format(first)}
    assert [doc[3] for doc in documents(factory)] == [D("100.00"), D("100.00")]  # C2's
    with factory() as session:
        held = session.get_one(tables.Subscription, first)
        assert (held.billing_error, held.billed_as_of) == (reason.format(second), None)
    assert other not in result.failed


def test_a_metric_passed_from_one_subscription_to_the_next_is_billed_by_each_for_its_days(
    factory: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    settings = settings_with(database_url, tmp_path)
    first, customer_id = metered_subscription(factory)
    with transaction(factory) as session:
        contracts.cancel_subscription(session, first, cancel_date=FEB)
        customer = session.get_one(tables.Customer, customer_id)
        api = builders.metered_price(session, unit_amount="0.10", key="api-2")
        builders.subscription(session, customer, [builders.spec(session, api, 1)], start=FEB)
    calls(factory, customer_id, "2026-01-31T23:00", 5, "old")
    calls(factory, customer_id, "2026-02-01T01:00", 7, "new")

    result = run_billing(factory, settings, MAR)

    assert result.failed == {}
    assert [doc[3] for doc in documents(factory)] == [D("100.75"), D("0.70")]
