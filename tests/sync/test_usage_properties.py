"""Property: what a customer's usage is billed is the priced aggregate of its distinct events,
whatever the order, duplication and batching of their arrival (through the usage a
subscription's metered items price, as ``connector usage show`` gives it)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.metered import MeteredModel, MeteredPrice, price_usage
from connector.billing.money import currency
from connector.billing.pricing import Tier
from connector.billing.usage import Aggregation, Metric
from connector.billing.usage_periods import Window
from connector.db.engine import reading, transaction
from connector.sync import contracts
from connector.sync.usage_events import Limits, Outcome, ingest_batch
from connector.sync.usage_report import month_of, usage_report
from tests import builders

D = Decimal
USD = currency("USD")
MARCH = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
NOW = datetime(2026, 4, 1, tzinfo=UTC)
METRICS = {
    "calls": Metric("calls", Aggregation.COUNT),
    "gb": Metric("gb", Aggregation.SUM, "v", group_by="region"),
    "peak": Metric("peak", Aggregation.MAX, "v"),
    "seats": Metric("seats", Aggregation.UNIQUE_COUNT, "user"),
    "level": Metric("level", Aggregation.LATEST, "v"),
    "storage": Metric("storage", Aggregation.WEIGHTED_SUM, "v"),
}
TIERS = (Tier(1, 3, D("1.10")), Tier(4, 10, D("0.55")), Tier(11, None, D("0.25")))
PRICES = {
    "calls": MeteredPrice(
        "calls",
        USD,
        MeteredModel.PACKAGE,
        package_size=3,
        package_amount=D("0.70"),
        free_units=D(2),
    ),
    "gb": MeteredPrice("gb", USD, MeteredModel.PER_UNIT, unit_amount=D("0.333")),
    "peak": MeteredPrice("peak", USD, MeteredModel.PER_UNIT, unit_amount=D("1.5")),
    "seats": MeteredPrice("seats", USD, MeteredModel.TIERED, tiers=TIERS, minimum=D(5)),
    "level": MeteredPrice("level", USD, MeteredModel.PER_UNIT, unit_amount=D("0.01")),
    "storage": MeteredPrice("storage", USD, MeteredModel.VOLUME, tiers=TIERS),
}


def properties(code: str) -> st.SearchStrategy[dict[str, Any]]:
    value = st.integers(0, 5000).map(lambda n: str(D(n) / 100))
    if code == "calls":
        return st.just({})
    if code == "gb":
        return st.fixed_dictionaries({"v": value, "region": st.sampled_from(["eu", "us"])})
    if code == "seats":
        return st.fixed_dictionaries({"user": st.sampled_from(["ann", "bob", "cy", 7, "7"])})
    return st.fixed_dictionaries({"v": value})


@st.composite
def usage_event(draw: st.DrawFn) -> tuple[str, datetime, dict[str, Any]]:
    code = draw(st.sampled_from(sorted(METRICS)))
    seconds = draw(st.integers(0, 31 * 86400 - 1))
    # Events often share an hour, or a timestamp, with others.
    seconds = draw(st.sampled_from([seconds, seconds - seconds % 3600, 7200]))
    return code, MARCH.start + timedelta(seconds=seconds), draw(properties(code))


def expected_total(events: list[tuple[str, datetime, dict[str, Any]]]) -> Decimal:
    """The priced aggregate of the distinct events, computed from them directly."""
    total = D(0)
    for code, metric in METRICS.items():
        mine = [(when, props) for c, when, props in events if c == code]
        if code == "gb":
            quantities = {}
            for _when, props in mine:
                quantities[props["region"]] = quantities.get(props["region"], D(0)) + D(props["v"])
        elif not mine:
            quantities = {}
        elif code == "calls":
            quantities = {"": D(len(mine))}
        elif code == "peak":
            quantities = {"": max(D(p["v"]) for _, p in mine)}
        elif code == "seats":
            quantities = {"": D(len({str(p["user"]) for _, p in mine}))}
        elif code == "level":
            quantities = {"": max((when, D(p["v"])) for when, p in mine)[1]}
        else:
            seconds = (MARCH.end - MARCH.start).total_seconds()
            integral = sum(D(p["v"]) * D((MARCH.end - when).total_seconds()) for when, p in mine)
            quantities = {"": integral / D(seconds)}
        total += price_usage(metric, PRICES[code], quantities, MARCH, MARCH).total
    return total


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=st.lists(usage_event(), max_size=40),
    data=st.data(),
)
def test_the_billed_usage_is_the_priced_aggregate_of_the_distinct_events(
    factory: sessionmaker[Session], events: list, data: st.DataObject
) -> None:
    tag = uuid.uuid4().hex[:10]
    with transaction(factory) as session:
        customer = contracts.upsert_customer(
            session, name=tag, country="US", currency="USD", system="test", external_id=tag
        )
        items = [
            builders.spec(session, builders.metered_price(session, code.upper(), terms=price))
            for code, price in PRICES.items()
        ]
        builders.subscription(session, customer, items, start=date(2026, 3, 1))
    elements = [
        {
            "transaction_id": f"{tag}-{n}",
            "customer": str(customer.id),
            "metric": code,
            "timestamp": when.isoformat(),
            "properties": props,
        }
        for n, (code, when, props) in enumerate(events)
    ]
    # Arrival: some events sent again, all in any order, in batches of any size.
    again = data.draw(st.lists(st.sampled_from(elements), max_size=15)) if elements else []
    arrival = data.draw(st.permutations(elements + again))
    cuts = sorted(data.draw(st.sets(st.integers(0, len(arrival)), max_size=4)))
    outcomes = []
    for start, end in zip([0, *cuts], [*cuts, len(arrival)], strict=True):
        found = ingest_batch(factory, METRICS, arrival[start:end], NOW, Limits())
        outcomes.extend(result.outcome for result in found)

    assert outcomes.count(Outcome.ACCEPTED) == len(elements)
    assert outcomes.count(Outcome.DUPLICATE) == len(again)
    with reading(factory) as session:
        report = usage_report(session, METRICS, str(customer.id), NOW, month_of(date(2026, 3, 1)))
    assert report.total == expected_total(events)
