"""Daily usage aggregates: kept with the hourly ones as events arrive, filled from them by the
migration that adds them, and measuring what the hours do for every window of whole days (a
billing run's periods and their parts)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.metered import MeteredModel, MeteredPrice
from connector.billing.money import currency
from connector.billing.periods import ONE_DAY, Period
from connector.billing.usage import Aggregation, Metric, Usage
from connector.billing.usage_billing import Meter, window_of
from connector.billing.usage_periods import Window
from connector.db.engine import reading, transaction
from connector.db.migrate import alembic_config, current_revision, head_revision, upgrade
from connector.db.usage import DAILY, DAY_VALUES, HOURLY, VALUES, usage_of
from connector.db.usage_read import batch_usage
from connector.sync import contracts
from connector.sync.usage_events import Limits, ingest_batch
from tests.statements import counting

D = Decimal
NOW = datetime(2026, 5, 1, tzinfo=UTC)
START = datetime(2026, 1, 20, tzinfo=UTC)  # events from here: some before the periods billed
SPAN = 90 * 86400  # seconds: to mid-April, after the periods billed
FEB, MAR = Period(date(2026, 2, 1), date(2026, 2, 28)), Period(date(2026, 3, 1), date(2026, 3, 31))
METRICS = {
    "calls": Metric("calls", Aggregation.COUNT),
    "gb": Metric("gb", Aggregation.SUM, "v", group_by="region"),
    "peak": Metric("peak", Aggregation.MAX, "v"),
    "seats": Metric("seats", Aggregation.UNIQUE_COUNT, "user", group_by="region"),
    "level": Metric("level", Aggregation.LATEST, "v"),
    "storage": Metric("storage", Aggregation.WEIGHTED_SUM, "v", recurring=True),
    "gauge": Metric("gauge", Aggregation.WEIGHTED_SUM, "v", group_by="region"),
}
SUMMED = ["calls", "gauge", "gb", "storage"]
LIMITS = Limits(past=timedelta(days=3660))


def properties(code: str) -> st.SearchStrategy[dict[str, Any]]:
    value = st.integers(-500, 5000).map(lambda n: str(D(n) / 100))
    region = st.sampled_from(["eu", "us"])
    if code == "calls":
        return st.just({})
    if code == "seats":
        return st.fixed_dictionaries({"user": st.sampled_from(["ann", "bob", 7]), "region": region})
    return st.fixed_dictionaries({"v": value, "region": region})


@st.composite
def usage_event(draw: st.DrawFn) -> tuple[str, datetime, dict[str, Any]]:
    code = draw(st.sampled_from(sorted(METRICS)))
    seconds = draw(st.integers(0, SPAN))
    # Events often fall at midnight or just before it, at the top of an hour, or together.
    seconds = draw(
        st.sampled_from(
            [seconds, seconds - seconds % 86400, seconds - seconds % 86400 - 1, 40 * 86400]
        )
    )
    return code, START + timedelta(seconds=max(seconds, 0)), draw(properties(code))


def customer(factory: sessionmaker[Session]) -> int:
    tag = uuid.uuid4().hex[:10]
    with transaction(factory) as session:
        row = contracts.upsert_customer(
            session, name=tag, country="US", currency="USD", system="test", external_id=tag
        )
        return row.id


def arrive(
    factory: sessionmaker[Session], who: int, events: list, data: st.DataObject | None
) -> None:
    """The events of customer ``who``, all at once, or (with ``data``) some sent again, all in
    any order, in batches of any size."""
    tag = uuid.uuid4().hex[:10]
    elements = [
        {
            "transaction_id": f"{tag}-{n}",
            "customer": str(who),
            "metric": code,
            "timestamp": when.isoformat(),
            "properties": props,
        }
        for n, (code, when, props) in enumerate(events)
    ]
    if data is None:
        ingest_batch(factory, METRICS, elements, NOW, LIMITS)
        return
    again = data.draw(st.lists(st.sampled_from(elements), max_size=8)) if elements else []
    arrival = data.draw(st.permutations(elements + again))
    cuts = sorted(data.draw(st.sets(st.integers(0, len(arrival)), max_size=4)))
    for start, end in zip([0, *cuts], [*cuts, len(arrival)], strict=True):
        ingest_batch(factory, METRICS, arrival[start:end], NOW, LIMITS)


def price(metric: str) -> MeteredPrice:
    return MeteredPrice(metric, currency("USD"), MeteredModel.PER_UNIT, D("0.1"))


def split(period: Period, day: int) -> list[Period]:
    """``period`` cut before its ``day``-th day (a change taking effect then)."""
    change = period.start + timedelta(days=day)
    return [Period(period.start, change - ONE_DAY), Period(change, period.end)]


_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_SETTINGS
@given(
    events=st.lists(usage_event(), max_size=40),
    february=st.integers(1, 27),
    march=st.integers(1, 30),
    data=st.data(),
)
def test_daily_aggregates_bill_what_the_hourly_ones_do_whatever_the_batching(
    factory: sessionmaker[Session], events: list, february: int, march: int, data: st.DataObject
) -> None:
    """Two billing periods, each cut by a change: every aggregation measures the same quantity
    of every group in every part from the daily aggregates as from the hourly ones, whether
    the events came in batches (some twice) or at once."""
    batched, at_once = customer(factory), customer(factory)
    arrive(factory, batched, events, data)
    arrive(factory, at_once, events, None)
    parts = {FEB: split(FEB, february), MAR: split(MAR, march)}
    window = Window(window_of(FEB).start, window_of(MAR).end)
    cuts = {window_of(part).start for pieces in parts.values() for part in pieces}
    codes = sorted(METRICS)
    distinct = ["seats"]
    recurring = ["storage"]

    with reading(factory) as session:
        hourly = batch_usage(
            session, {batched: window}, codes, distinct=distinct, recurring=recurring
        )[batched]
        daily = batch_usage(
            session,
            {batched: window, at_once: window},
            codes,
            distinct=distinct,
            recurring=recurring,
            summed=SUMMED,
            cuts={batched: cuts, at_once: cuts},
            by_day=True,
        )

    for code in codes:
        metric = METRICS[code]
        for period, pieces in parts.items():
            for part in pieces:
                by_hours = Meter(METRICS, hourly.hours, hourly.levels).measured(
                    metric, period, part
                )
                for who in (batched, at_once):
                    meter = Meter(METRICS, daily[who].hours, daily[who].levels)
                    assert meter.measured(metric, period, part) == by_hours, (code, part, who)


def test_a_billing_batch_reads_the_daily_aggregates_only(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    who = customer(factory)
    arrive(
        factory,
        who,
        [
            ("peak", datetime(2026, 3, day, hour, tzinfo=UTC), {"v": str(day + hour)})
            for day in range(1, 29)
            for hour in range(24)
        ]
        + [
            ("seats", datetime(2026, 3, day, 9, tzinfo=UTC), {"user": "ann", "region": "eu"})
            for day in range(1, 29)
        ],
        None,
    )
    march = window_of(MAR)

    with reading(factory) as session, counting(engine) as statements:
        found = batch_usage(
            session,
            {who: march},
            ["peak", "seats"],
            distinct=["seats"],
            cuts={who: [march.start, march.end]},
            by_day=True,
        )[who]

    assert statements.touching("usage_hourly") == []
    assert len(statements.touching("usage_daily")) == 2  # maxima, then distinct values
    assert len(found.hours["peak"]) == 28  # one a day, not one an hour
    assert len(found.hours["seats"]) == 1  # one a value met in the segment
    meter = Meter(METRICS, found.hours, found.levels)
    assert [line.quantity for line in meter.lines(MAR, [(MAR, price("peak"))])] == [D(28 + 23)]
    assert [line.quantity for line in meter.lines(MAR, [(MAR, price("seats"))])] == [D(1)]


def test_a_window_cut_within_a_day_reads_the_hours(factory: sessionmaker[Session]) -> None:
    who = customer(factory)
    arrive(
        factory,
        who,
        [
            ("calls", datetime(2026, 3, 2, 8, tzinfo=UTC), {}),
            ("calls", datetime(2026, 3, 2, 15, tzinfo=UTC), {}),
        ],
        None,
    )
    noon = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC))

    with reading(factory) as session:
        found = batch_usage(session, {who: noon}, ["calls"], by_day=True)[who]

    assert [(hour.hour, hour.usage.events) for hour in found.hours["calls"]] == [
        (datetime(2026, 3, 2, 8, tzinfo=UTC), 1)
    ]


def _rows(engine: Engine) -> tuple[dict, dict, set, set]:
    """The daily aggregates (usage by key), the hourly ones merged by day in Python, and the
    distinct values of the days and of the hours."""
    with engine.connect() as connection:
        daily = {
            (row.customer_id, row.metric, row.group_value, row.day): usage_of(row)
            for row in connection.execute(select(DAILY))
        }
        merged: dict[tuple, Usage] = {}
        for row in connection.execute(select(HOURLY)):
            key = (row.customer_id, row.metric, row.group_value, row.hour.date())
            known = merged.get(key)
            merged[key] = usage_of(row) if known is None else known.merge(usage_of(row))
        days = {tuple(row) for row in connection.execute(select(DAY_VALUES))}
        hours = {(c, m, g, h.date(), v) for c, m, g, h, v in connection.execute(select(VALUES))}
    return daily, merged, days, hours


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(usage_event(), min_size=1, max_size=40), data=st.data())
def test_the_migration_fills_the_daily_aggregates_as_ingestion_keeps_them(
    factory: sessionmaker[Session], engine: Engine, events: list, data: st.DataObject
) -> None:
    arrive(factory, customer(factory), events, data)
    daily, merged, days, hours = _rows(engine)
    assert daily == merged and days == hours  # as the events arrived

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0022")
    upgrade(engine)

    assert current_revision(engine) == head_revision()
    assert _rows(engine) == (daily, merged, days, hours)  # as the migration fills them
