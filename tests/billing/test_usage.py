"""Billable metrics: readings, hourly aggregates and what a window of them measures."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.billing.usage import Aggregation, HourlyUsage, Metric, Tallies, fold, hour_of
from connector.billing.usage_periods import Window, measure
from connector.errors import InvalidInputError

D = Decimal
JAN = Window(datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC))
MARCH = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))


def at(day: int, hour: int = 0, minute: int = 0, month: int = 3, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def hours(metric: Metric, events: list[tuple[dict, datetime]]) -> list[HourlyUsage]:
    readings = [(reading, when) for props, when in events if (reading := metric.read(props))]
    return [
        HourlyUsage(group, hour, usage) for (group, hour), usage in fold(metric, readings).items()
    ]


def quantities(metric: Metric, events: list[tuple[dict, datetime]], period: Window = MARCH) -> dict:
    (found,) = measure(metric, hours(metric, events), period)
    return found


def test_count_counts_the_events() -> None:
    metric = Metric("api_calls", Aggregation.COUNT)
    events = [({}, at(1, 10, 5)), ({}, at(1, 10, 59)), ({"x": 1}, at(20, 23, 59))]

    assert quantities(metric, events) == {"": D(3)}


def test_sum_adds_the_field_exactly() -> None:
    metric = Metric("gb", Aggregation.SUM, "gb")
    events = [
        ({"gb": "1.5"}, at(1)),
        ({"gb": 2.25}, at(2)),
        ({"gb": D("-0.75")}, at(3)),
        ({"gb": 1}, at(3)),
    ]

    assert quantities(metric, events) == {"": D("4.00")}


def test_max_is_the_largest_value_of_the_period() -> None:
    metric = Metric("cpus", Aggregation.MAX, "cpus")
    events = [({"cpus": 3}, at(1)), ({"cpus": "7.5"}, at(9, 4)), ({"cpus": 2}, at(9, 4, 30))]

    assert quantities(metric, events) == {"": D("7.5")}


def test_unique_count_counts_distinct_values_across_hours() -> None:
    metric = Metric("seats", Aggregation.UNIQUE_COUNT, "user")
    events = [
        ({"user": "u1"}, at(1, 10)),
        ({"user": "u2"}, at(1, 10, 30)),
        ({"user": "u1"}, at(5, 8)),
        ({"user": 3}, at(6)),
        ({"user": "3"}, at(7)),  # the same value as text
    ]

    assert quantities(metric, events) == {"": D(3)}


def test_latest_is_the_value_of_the_latest_event_whatever_the_order() -> None:
    metric = Metric("balance", Aggregation.LATEST, "value")
    events = [({"value": 5}, at(2, 10)), ({"value": 2}, at(2, 12, 30)), ({"value": 9}, at(2, 11))]

    assert quantities(metric, events) == {"": D(2)}
    tie = [({"value": 4}, at(3, 9)), ({"value": 6}, at(3, 9))]
    assert quantities(metric, tie) == quantities(metric, tie[::-1]) == {"": D(6)}


def test_weighted_sum_follows_lagos_example() -> None:
    # 10 for one day (January 16 to 17), then 30 for the 15 days left: (10 + 450) / 31
    metric = Metric("storage", Aggregation.WEIGHTED_SUM, "gb")
    events = [({"gb": 10}, at(16, month=1, year=2027)), ({"gb": 20}, at(17, month=1, year=2027))]

    assert quantities(metric, events, JAN) == {"": D(460) / D(31)}
    assert D(460) / D(31) == D("14.83870967741935483870967742")


def test_weighted_sum_weights_each_value_by_the_second() -> None:
    metric = Metric("storage", Aggregation.WEIGHTED_SUM, "gb")
    # 10 GB from March 1, 4 GB less from March 16 12:00: 10 for 15.5 days, 6 for 15.5 days
    events = [({"gb": 10}, at(1)), ({"gb": -4}, at(16, 12))]

    assert quantities(metric, events) == {"": D(8)}
    late = [({"gb": 31}, at(31, 23, 59))]  # 31 GB for the last minute of a 31-day month
    assert quantities(metric, late) == {"": D(31 * 60) / D(31 * 86400)}


def test_a_recurring_weighted_sum_carries_its_level_and_a_metered_one_does_not() -> None:
    recurring = Metric("storage", Aggregation.WEIGHTED_SUM, "gb", recurring=True)
    metered = Metric("storage", Aggregation.WEIGHTED_SUM, "gb")
    events = [({"gb": 10}, at(16, 12))]  # half of March

    assert measure(recurring, hours(recurring, events), MARCH, carried={"": D(5)}) == [
        {"": D(10)}  # 5 all month, and 10 for half of it
    ]
    assert measure(metered, hours(metered, events), MARCH, carried={"": D(5)}) == [{"": D(5)}]
    assert measure(recurring, [], MARCH, carried={"": D(5)}) == [{"": D(5)}]


def test_filters_leave_events_out_and_groups_charge_values_apart() -> None:
    metric = Metric(
        "bandwidth",
        Aggregation.SUM,
        "gb",
        filters=(("direction", frozenset({"egress"})), ("billable", frozenset({"true"}))),
        group_by="region",
    )
    events = [
        ({"gb": 5, "region": "eu", "direction": "egress", "billable": True}, at(1)),
        ({"gb": 7, "region": "us", "direction": "egress", "billable": "true"}, at(2)),
        ({"gb": 1, "region": "eu", "direction": "egress", "billable": "true"}, at(3)),
        ({"gb": 100, "region": "eu", "direction": "ingress", "billable": True}, at(4)),
        ({"gb": 100, "region": "eu", "direction": "egress", "billable": False}, at(5)),
    ]

    assert quantities(metric, events) == {"eu": D(6), "us": D(7)}
    assert metric.read({"direction": "ingress"}) is None  # left out, not refused


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"region": "eu"}, "property 'gb' (the metric's field) is missing"),
        ({"gb": 1}, "property 'region' (the metric's group) is missing"),
        ({"gb": "ten", "region": "eu"}, "property 'gb' 'ten' is not a number"),
        ({"gb": True, "region": "eu"}, "property 'gb' must be a number, not True"),
        ({"gb": "NaN", "region": "eu"}, "property 'gb' 'NaN' is not a finite number"),
        ({"gb": [1], "region": "eu"}, "property 'gb' must be a number, not [1]"),
        (
            {"gb": "9e999999", "region": "eu"},
            "property 'gb' '9e999999' is too large (at most 18 digits before the point)",
        ),
        (
            {"gb": -1e18, "region": "eu"},
            "property 'gb' -1e+18 is too large (at most 18 digits before the point)",
        ),
    ],
)
def test_an_event_the_metric_cannot_read_is_refused_with_the_reason(properties, message) -> None:
    metric = Metric("bandwidth", Aggregation.SUM, "gb", group_by="region")

    with pytest.raises(InvalidInputError) as error:
        metric.read(properties)
    assert str(error.value) == message


def test_a_metric_is_checked_when_it_is_made() -> None:
    with pytest.raises(InvalidInputError, match="a count aggregates no field"):
        Metric("calls", Aggregation.COUNT, "x")
    with pytest.raises(InvalidInputError, match="a sum needs a field"):
        Metric("gb", Aggregation.SUM)
    with pytest.raises(InvalidInputError, match="only a weighted_sum can be recurring"):
        Metric("gb", Aggregation.SUM, "gb", recurring=True)


def test_a_period_split_at_an_upgrade_gives_each_part_its_exact_usage() -> None:
    cut = at(11)  # upgraded on March 11
    parts = [Window(MARCH.start, cut), Window(cut, MARCH.end)]
    calls = Metric("api_calls", Aggregation.COUNT)
    call_events = [({}, at(10, 23, 59)), ({}, at(11, 0, 0)), ({}, at(11, 0, 1)), ({}, at(2))]
    storage = Metric("storage", Aggregation.WEIGHTED_SUM, "gb")
    storage_events = [({"gb": 10}, at(1)), ({"gb": 20}, at(21))]
    seats = Metric("seats", Aggregation.UNIQUE_COUNT, "user")
    seat_events = [({"user": "a"}, at(1)), ({"user": "b"}, at(12)), ({"user": "a"}, at(30))]

    assert measure(calls, hours(calls, call_events), MARCH, parts) == [{"": D(2)}, {"": D(2)}]
    # 10 GB for the 10 days before the cut; after it, 10 GB for 10 days and 30 for 11
    first, second = measure(storage, hours(storage, storage_events), MARCH, parts)
    assert first == {"": D(100) / D(31)}
    assert second == {"": D(100 + 330) / D(31)}
    assert first[""] + second[""] == D(530) / D(31)  # the whole period's
    assert measure(seats, hours(seats, seat_events), MARCH, parts) == [{"": D(1)}, {"": D(2)}]


def test_a_weighted_level_runs_through_a_part_without_events() -> None:
    metric = Metric("storage", Aggregation.WEIGHTED_SUM, "gb")
    parts = [Window(MARCH.start, at(11)), Window(at(11), MARCH.end)]

    assert measure(metric, hours(metric, [({"gb": 31}, at(1))]), MARCH, parts) == [
        {"": D(10)},
        {"": D(21)},
    ]


def test_usage_is_cut_on_whole_hours_only() -> None:
    with pytest.raises(InvalidInputError, match="cut on whole UTC hours only, not at 2026-03-11T"):
        Window(MARCH.start, at(11, 10, 30))
    with pytest.raises(InvalidInputError, match="has no time zone"):
        Window(datetime(2026, 3, 1), datetime(2026, 3, 2))  # noqa: DTZ001
    metric = Metric("api_calls", Aggregation.COUNT)
    with pytest.raises(InvalidInputError, match="outside the period"):
        measure(metric, [], MARCH, [Window(at(1, month=2), at(2))])
    with pytest.raises(InvalidInputError, match="overlap or are out of order"):
        measure(metric, [], MARCH, [Window(at(5), at(9)), Window(at(8), at(10))])


def test_hours_outside_the_period_are_not_counted() -> None:
    metric = Metric("api_calls", Aggregation.COUNT)
    events = [({}, at(28, 23, month=2)), ({}, at(1)), ({}, at(1, month=4))]

    assert quantities(metric, events) == {"": D(1)}


def test_aggregates_are_the_same_whatever_the_order_and_grouping_of_arrival() -> None:
    rng = random.Random(7)
    metric = Metric("gb", Aggregation.WEIGHTED_SUM, "gb", group_by="region")
    events = [
        (
            {"gb": str(D(rng.randint(-500, 500)) / 100), "region": rng.choice("ab")},
            MARCH.start + timedelta(seconds=rng.randint(0, 31 * 86400 - 1)),
        )
        for _ in range(300)
    ]
    expected = quantities(metric, events)

    for _ in range(5):
        rng.shuffle(events)
        assert quantities(metric, events) == expected


# Values met often (so that equal values of other exponents meet), and any others.
VALUES = st.sampled_from(
    [D("1E+2"), D("100"), D("2.5"), D("2.50"), D("-0"), D("0"), D("0.000001"), D("-3")]
) | st.decimals(allow_nan=False, allow_infinity=False).filter(lambda value: abs(value) < 10**12)


@settings(max_examples=150, deadline=None)
@given(
    aggregation=st.sampled_from(list(Aggregation)),
    events=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),  # the key
            VALUES,
            st.sampled_from(["u1", "u2", "u3"]),
            st.integers(0, 7200 * 1_000_000),  # microseconds into the day
        ),
        max_size=40,
    ),
    before=st.lists(st.tuples(st.sampled_from(["a", "b"]), VALUES), max_size=3),
)
def test_adding_many_events_at_once_gives_each_tally_what_adding_them_in_turn_gives(
    aggregation: Aggregation, events: list, before: list
) -> None:
    """The same values, down to their exponents (the text stored), whatever the keys."""
    day = datetime(2026, 3, 2, tzinfo=UTC)
    one_by_one: Tallies[str] = Tallies(lambda _: aggregation)
    at_once: Tallies[str] = Tallies(lambda _: aggregation)
    for key, value in before:  # tallies that had events already
        for tallies in (one_by_one, at_once):
            tallies[key].add(("", value, "u0"), day)
    readings = [("", value, distinct) for _, value, distinct, _ in events]
    times = [day + timedelta(microseconds=micros) for *_, micros in events]
    keys = [key for key, *_ in events]
    for key, reading, when in zip(keys, readings, times, strict=True):
        one_by_one[key].add(reading, when)

    at_once.add_all(keys, readings, times)

    assert {key: repr(tally.usage()) for key, tally in at_once.items()} == {
        key: repr(tally.usage()) for key, tally in one_by_one.items()
    }


def test_the_largest_number_an_event_may_measure_has_18_digits_before_the_point() -> None:
    metric = Metric("bandwidth", Aggregation.SUM, "gb")

    assert metric.read({"gb": "999999999999999999.5"}) == ("", D("999999999999999999.5"), None)
    assert metric.read({"gb": "-0.000001"}) == ("", D("-0.000001"), None)
    assert metric.read({"gb": "0E+5"}) == ("", D("0E+5"), None)


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 3, 2, 10, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York"), fold=1),
        datetime(2026, 3, 2, 10, 45, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ],
)
def test_the_hour_of_a_time_is_its_start_in_its_own_zone(at: datetime) -> None:
    hour = hour_of(at)

    assert (hour.minute, hour.second, hour.microsecond) == (0, 0, 0)
    assert (hour.date(), hour.hour, hour.tzinfo, hour.fold) == (
        at.date(),
        at.hour,
        at.tzinfo,
        at.fold,
    )
    assert hour.astimezone(UTC) == at.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
