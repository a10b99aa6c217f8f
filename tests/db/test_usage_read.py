"""The usage a billing batch reads: aggregates of many customers in their windows, distinct
values, and the levels earlier events left, with one query per table."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.metered import MeteredModel, MeteredPrice
from connector.billing.money import currency
from connector.billing.periods import Period
from connector.billing.usage import Aggregation, Metric, Usage
from connector.billing.usage_billing import Meter, window_of
from connector.billing.usage_periods import Window
from connector.db import usage_read
from connector.db.engine import reading, transaction
from connector.db.usage_read import batch_usage
from connector.sync import contracts
from connector.sync.usage_events import Limits, ingest_batch
from tests.statements import counting

D = Decimal
METRICS = {
    "seats": Metric("seats", Aggregation.UNIQUE_COUNT, "user"),
    "storage": Metric("storage", Aggregation.WEIGHTED_SUM, "gb", recurring=True),
}
MARCH = Period(date(2026, 3, 1), date(2026, 3, 31))


def customer(factory: sessionmaker[Session], ref: str) -> int:
    with transaction(factory) as session:
        row = contracts.upsert_customer(
            session, name=ref, country="US", currency="USD", system="test", external_id=ref
        )
        return row.id


def store(factory: sessionmaker[Session], who: int, events: list[tuple[str, str, dict]]) -> None:
    elements = [
        {
            "transaction_id": f"{who}-{n}",
            "customer": str(who),
            "metric": metric,
            "timestamp": at,
            "properties": properties,
        }
        for n, (metric, at, properties) in enumerate(events)
    ]
    now = datetime(2026, 4, 1, tzinfo=UTC)
    ingest_batch(factory, METRICS, elements, now, Limits(past=timedelta(days=3660)))


def test_a_batch_reads_each_customer_in_its_window_with_one_query_per_table(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    a, b = customer(factory, "A"), customer(factory, "B")
    store(
        factory,
        a,
        [
            ("storage", "2026-01-10T00:00:00Z", {"gb": 10}),  # before the window: a level
            ("storage", "2026-03-16T12:00:00Z", {"gb": 20}),
            ("seats", "2026-03-02T09:00:00Z", {"user": "ann"}),
            ("seats", "2026-03-03T09:00:00Z", {"user": "ann"}),
            ("seats", "2026-03-03T10:00:00Z", {"user": "bob"}),
            ("seats", "2026-04-02T10:00:00Z", {"user": "cy"}),  # after the window
        ],
    )
    store(factory, b, [("seats", "2026-02-10T09:00:00Z", {"user": "dee"})])
    march = window_of(MARCH)

    with reading(factory) as session, counting(engine) as statements:
        found = batch_usage(
            session,
            {a: march, b: Window(march.start - timedelta(days=28), march.end)},
            ["seats", "storage"],
            distinct=["seats"],
            recurring=["storage"],
        )

    # the aggregates, the distinct values, the levels before: whatever the customers and events
    assert len(statements) == len(statements.touching("usage_hourly")) == 3
    assert found[a].levels == {"storage": {"": D(10)}}
    assert {u.usage.distinct for u in found[b].hours["seats"] if u.usage.distinct} == {
        frozenset({"dee"})
    }
    meter = Meter(METRICS, found[a].hours, found[a].levels)
    seats = meter.lines(MARCH, [(MARCH, _price("seats"))])
    storage = meter.lines(MARCH, [(MARCH, _price("storage"))])
    assert [(line.quantity, line.amount) for line in seats] == [(D(2), D("2.00"))]
    # 10 GB all month, 20 more for the last 15.5 days of 31: 10 + 20 × 15.5 / 31 = 20
    assert [(line.quantity, line.amount) for line in storage] == [(D(20), D("20.00"))]


def _price(metric: str) -> MeteredPrice:
    return MeteredPrice(metric, currency("USD"), MeteredModel.PER_UNIT, D(1))


SUMMABLE = {
    "storage": METRICS["storage"],
    "gb": Metric("gb", Aggregation.SUM, "gb", group_by="region"),
    "calls": Metric("calls", Aggregation.COUNT),
}


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(sorted(SUMMABLE)),
            st.integers(0, 75 * 24 * 60 - 1),  # minutes from February 1 to mid-April
            st.integers(0, 60),
            st.sampled_from(["eu", "us"]),
        ),
        max_size=40,
    ),
    cut=st.integers(2, 30),
)
def test_sums_added_up_by_segment_measure_what_the_hours_do(
    factory: sessionmaker[Session], events: list, cut: int
) -> None:
    """The database's sums over the segments between cuts (a change on March ``cut``) give
    every part of March the quantities its hours give, weighted sums and groups included."""
    who = customer(factory, f"P{uuid.uuid4().hex[:8]}")
    start = datetime(2026, 2, 1, tzinfo=UTC)
    elements = [
        {
            "transaction_id": f"{who}-{n}",
            "customer": str(who),
            "metric": metric,
            "timestamp": (start + timedelta(minutes=minute)).isoformat(),
            "properties": {"gb": value, "region": region},
        }
        for n, (metric, minute, value, region) in enumerate(events)
    ]
    now = datetime(2026, 4, 20, tzinfo=UTC)
    ingest_batch(factory, SUMMABLE, elements, now, Limits(past=timedelta(days=3660)))
    change = date(2026, 3, cut)
    parts = [Period(MARCH.start, change - timedelta(days=1)), Period(change, MARCH.end)]
    march = window_of(MARCH)
    codes = sorted(SUMMABLE)

    with reading(factory) as session:
        hourly = batch_usage(session, {who: march}, codes, recurring=["storage"])[who]
        summed = batch_usage(
            session,
            {who: march},
            codes,
            recurring=["storage"],
            summed=codes,
            cuts={who: [window_of(p).start for p in parts]},
        )[who]

    for code in codes:
        priced = [(part, _price(code)) for part in parts]
        by_hours = Meter(SUMMABLE, hourly.hours, hourly.levels).lines(MARCH, priced)
        by_segments = Meter(SUMMABLE, summed.hours, summed.levels).lines(MARCH, priced)
        assert by_segments == by_hours
    assert sum(len(h) for h in summed.hours.values()) <= 3 * 2 * 2  # metrics × groups × parts


def test_segments_read_as_ranges_or_joined_to_their_list_add_up_alike(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segments of a few distinct days are read as ranges of the aggregates' key (SQLite),
    many as a join to their list: both give every customer the same sums."""
    who = [customer(factory, f"R{uuid.uuid4().hex[:8]}") for _ in range(3)]
    start = datetime(2026, 2, 1, tzinfo=UTC)
    elements = [
        {
            "transaction_id": f"{c}-{n}",
            "customer": str(c),
            "metric": ("storage", "gb", "calls")[n % 3],
            "timestamp": (start + timedelta(hours=7 * n + c)).isoformat(),
            "properties": {"gb": f"{n % 5}.{c % 10}5", "region": ("eu", "us")[n % 2]},
        }
        for c in who
        for n in range(300)
    ]
    now = datetime(2026, 4, 20, tzinfo=UTC)
    ingest_batch(factory, SUMMABLE, elements, now, Limits(past=timedelta(days=3660)))
    march = window_of(MARCH)
    windows = {
        who[0]: march,
        who[1]: march,
        who[2]: Window(march.start - timedelta(days=14), march.end - timedelta(days=16)),
    }
    cuts = {who[1]: [datetime(2026, 3, 10, tzinfo=UTC)], who[2]: [march.start]}
    codes = sorted(SUMMABLE)

    def read() -> dict[int, dict[str, set[tuple[str, datetime, Usage]]]]:
        with reading(factory) as session:
            found = batch_usage(
                session, windows, codes, summed=codes, cuts=cuts, by_day=True, recurring=["storage"]
            )
        return {
            c: {
                metric: {(h.group, h.hour, h.usage) for h in hours}
                for metric, hours in u.hours.items()
            }
            for c, u in found.items()
        }

    as_ranges = read()
    monkeypatch.setattr(usage_read, "MAX_BOUNDS", 0)
    joined = read()

    assert as_ranges == joined
    # from the batch's first day (the levels of weighted sums), cut where the parts begin
    assert {h[1] for h in as_ranges[who[1]]["gb"]} == {
        datetime(2026, 2, 15, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 10, tzinfo=UTC),
    }
    in_march = [
        e
        for e in elements
        if e["customer"] == str(who[0])
        and e["metric"] == "calls"
        and e["timestamp"] >= "2026-03"
        and e["timestamp"] < "2026-04"
    ]
    calls = [h for h in as_ranges[who[0]]["calls"] if h[1] == march.start]
    assert [h[2].events for h in calls] == [len(in_march)] and len(in_march) > 30
