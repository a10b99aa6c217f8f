"""Exact decimal arithmetic in SQL, on SQLite (text) and PostgreSQL (NUMERIC)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import exact, tables
from connector.db.engine import transaction
from connector.sync import contracts

D = Decimal
HOUR = datetime(2026, 3, 1, tzinfo=UTC)


def test_sums_and_maximums_in_sql_are_exact(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        customer = contracts.upsert_customer(
            session, name="A", country="US", currency="USD", system="test", external_id="A"
        )
        for n, (total, maximum) in enumerate(
            [("0.1", "9.5"), ("0.2", "10.25"), ("100000000000000000000", None), (None, "-1")]
        ):
            session.add(
                tables.UsageHourly(
                    customer_id=customer.id,
                    metric="m",
                    group_value=str(n),
                    hour=HOUR,
                    events=1,
                    total=None if total is None else D(total),
                    maximum=None if maximum is None else D(maximum),
                )
            )
        session.flush()
        exact.prepare(session)
        hourly = tables.UsageHourly
        summed = session.scalar(select(exact.total(session, hourly.total)))
        added = session.execute(
            select(
                exact.add(session, hourly.total, hourly.maximum),
                exact.greatest(session, hourly.total, hourly.maximum),
            ).order_by(hourly.group_value)
        ).all()

    assert summed == D("100000000000000000000.3")
    assert added == [
        (D("9.6"), D("9.5")),
        (D("10.45"), D("10.25")),
        (D("100000000000000000000"), D("100000000000000000000")),
        (D("-1"), D("-1")),
    ]


def test_totals_by_group_are_exact_and_null_without_values(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        customer = contracts.upsert_customer(
            session, name="B", country="US", currency="USD", system="test", external_id="B"
        )
        for n, (metric, total) in enumerate(
            [("a", "0.10"), ("a", "2.005"), ("a", "-3"), ("b", None), ("c", "1E+2"), ("c", None)]
        ):
            session.add(
                tables.UsageHourly(
                    customer_id=customer.id,
                    metric=metric,
                    group_value=str(n),
                    hour=HOUR,
                    events=1,
                    total=None if total is None else D(total),
                )
            )
        session.flush()
        hourly = tables.UsageHourly
        totals = session.execute(
            select(hourly.metric, exact.total(session, hourly.total))
            .group_by(hourly.metric)
            .order_by(hourly.metric)
        ).all()

    assert totals == [("a", D("-0.895")), ("b", None), ("c", D(100))]
    assert str(totals[0][1]) == "-0.895"
