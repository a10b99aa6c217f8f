from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.exc import StatementError

from connector.db.types import ExactDecimal, UTCDateTime

metadata = MetaData()
samples = Table(
    "type_samples",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("amount", ExactDecimal()),
    Column("at", UTCDateTime()),
)


@pytest.fixture
def sample_engine(engine):
    metadata.create_all(engine)
    yield engine
    metadata.drop_all(engine)


def test_decimals_round_trip_exactly(sample_engine) -> None:
    values = [
        Decimal("0.1"),
        Decimal("12345678901234567890.123456789"),
        Decimal("-0.005"),
        Decimal("100.10"),
    ]
    with sample_engine.begin() as connection:
        connection.execute(insert(samples), [{"amount": v} for v in values])
        stored = connection.execute(select(samples.c.amount).order_by(samples.c.id)).scalars().all()
    assert stored == values
    assert [str(v) for v in stored] == ["0.1", "12345678901234567890.123456789", "-0.005", "100.10"]


def test_floats_are_refused(sample_engine) -> None:
    with (
        pytest.raises(StatementError, match="needs a Decimal"),
        sample_engine.begin() as connection,
    ):
        connection.execute(insert(samples).values(amount=0.1))


def test_datetimes_come_back_aware_in_utc(sample_engine) -> None:
    tokyo = timezone(timedelta(hours=9))
    with sample_engine.begin() as connection:
        connection.execute(insert(samples).values(at=datetime(2026, 3, 1, 9, 30, tzinfo=tokyo)))
        stored = connection.execute(select(samples.c.at)).scalar_one()
    assert stored == datetime(2026, 3, 1, 0, 30, tzinfo=UTC)
    assert stored.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(sample_engine) -> None:
    with (
        pytest.raises(StatementError, match="has no timezone"),
        sample_engine.begin() as connection,
    ):
        connection.execute(insert(samples).values(at=datetime(2026, 3, 1, 9, 30)))  # noqa: DTZ001
