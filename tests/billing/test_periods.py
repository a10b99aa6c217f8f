"""Frequencies, month arithmetic and billing periods."""

from datetime import date
from fractions import Fraction

import pytest

from connector.billing.periods import (
    Frequency,
    Period,
    Schedule,
    add_months,
    days_between,
)
from connector.errors import InvalidInputError


def starts(schedule: Schedule, count: int) -> list[date]:
    return [schedule.start_of(i) for i in range(count)]


def test_jan_31_anchor_in_leap_year_2024() -> None:
    schedule = Schedule(date(2024, 1, 31), Frequency.MONTHLY)
    assert starts(schedule, 6) == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
        date(2024, 5, 31),
        date(2024, 6, 30),
    ]
    # Periods end the day before the next starts.
    assert schedule.period(0) == Period(date(2024, 1, 31), date(2024, 2, 28))
    assert schedule.period(1) == Period(date(2024, 2, 29), date(2024, 3, 30))
    assert schedule.period(2) == Period(date(2024, 3, 31), date(2024, 4, 29))
    assert schedule.period(3) == Period(date(2024, 4, 30), date(2024, 5, 30))
    assert [schedule.period(i).days for i in range(4)] == [29, 31, 30, 31]


def test_jan_31_anchor_in_common_year_2026() -> None:
    schedule = Schedule(date(2026, 1, 31), Frequency.MONTHLY)
    assert starts(schedule, 5) == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
    ]
    assert schedule.period(0) == Period(date(2026, 1, 31), date(2026, 2, 27))
    assert schedule.period(1) == Period(date(2026, 2, 28), date(2026, 3, 30))
    assert [schedule.period(i).days for i in range(4)] == [28, 31, 30, 31]


def test_month_end_anchor_never_drifts_over_years() -> None:
    schedule = Schedule(date(2024, 1, 31), Frequency.MONTHLY)
    # 13 months on: Feb 2025 (28 days); 24 months on: Jan 31 2026; 49 months on: Feb 29 2028.
    assert schedule.start_of(13) == date(2025, 2, 28)
    assert schedule.start_of(14) == date(2025, 3, 31)
    assert schedule.start_of(24) == date(2026, 1, 31)
    assert schedule.start_of(49) == date(2028, 2, 29)


def test_quarterly_anchor_on_the_30th() -> None:
    schedule = Schedule(date(2023, 11, 30), Frequency.QUARTERLY)
    assert starts(schedule, 5) == [
        date(2023, 11, 30),
        date(2024, 2, 29),
        date(2024, 5, 30),
        date(2024, 8, 30),
        date(2024, 11, 30),
    ]
    assert schedule.period(0) == Period(date(2023, 11, 30), date(2024, 2, 28))


def test_semi_annual_and_annual_anchors() -> None:
    semi = Schedule(date(2023, 8, 31), Frequency.SEMI_ANNUAL)
    assert starts(semi, 3) == [date(2023, 8, 31), date(2024, 2, 29), date(2024, 8, 31)]
    annual = Schedule(date(2024, 2, 29), Frequency.ANNUAL)
    assert starts(annual, 5) == [
        date(2024, 2, 29),
        date(2025, 2, 28),
        date(2026, 2, 28),
        date(2027, 2, 28),
        date(2028, 2, 29),
    ]
    assert annual.period(0) == Period(date(2024, 2, 29), date(2025, 2, 27))
    assert annual.period(0).days == 365


def test_weekly_and_biweekly_periods() -> None:
    weekly = Schedule(date(2025, 1, 1), Frequency.WEEKLY)
    assert weekly.period(0) == Period(date(2025, 1, 1), date(2025, 1, 7))
    assert weekly.period(1) == Period(date(2025, 1, 8), date(2025, 1, 14))
    assert weekly.period(52) == Period(date(2025, 12, 31), date(2026, 1, 6))
    biweekly = Schedule(date(2025, 1, 1), Frequency.BIWEEKLY)
    assert biweekly.period(2) == Period(date(2025, 1, 29), date(2025, 2, 11))
    assert biweekly.period(2).days == 14


@pytest.mark.parametrize(
    ("anchor", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2025, 1, 31), 1, date(2025, 2, 28)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 2, 29), 48, date(2028, 2, 29)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
        (date(2024, 5, 31), -12, date(2023, 5, 31)),
        (date(2024, 12, 15), 1, date(2025, 1, 15)),
        (date(2024, 1, 15), 0, date(2024, 1, 15)),
    ],
)
def test_add_months(anchor: date, months: int, expected: date) -> None:
    assert add_months(anchor, months) == expected


@pytest.mark.parametrize(
    ("day", "index"),
    [
        (date(2024, 1, 30), -1),
        (date(2024, 1, 31), 0),
        (date(2024, 2, 28), 0),
        (date(2024, 2, 29), 1),
        (date(2024, 3, 1), 1),
        (date(2024, 3, 30), 1),
        (date(2024, 3, 31), 2),
        (date(2025, 2, 27), 12),
        (date(2025, 2, 28), 13),
    ],
)
def test_index_of_month_end_anchor(day: date, index: int) -> None:
    schedule = Schedule(date(2024, 1, 31), Frequency.MONTHLY)
    assert schedule.index_of(day) == index
    assert day in schedule.period(index)


def test_index_of_weekly() -> None:
    schedule = Schedule(date(2025, 1, 1), Frequency.WEEKLY)
    assert schedule.index_of(date(2025, 1, 7)) == 0
    assert schedule.index_of(date(2025, 1, 8)) == 1
    assert schedule.index_of(date(2024, 12, 31)) == -1


def test_periods_from() -> None:
    schedule = Schedule(date(2024, 1, 31), Frequency.MONTHLY)
    produced = schedule.periods_from(2)
    assert next(produced) == (2, Period(date(2024, 3, 31), date(2024, 4, 29)))
    assert next(produced) == (3, Period(date(2024, 4, 30), date(2024, 5, 30)))


def test_period_is_inclusive() -> None:
    period = Period(date(2024, 2, 1), date(2024, 2, 29))
    assert period.days == 29
    assert date(2024, 2, 1) in period
    assert date(2024, 2, 29) in period
    assert date(2024, 3, 1) not in period
    assert "2024-02-10" not in period
    assert period.days_from(date(2024, 2, 20)) == 10  # Feb 20..29
    assert period.days_from(date(2024, 1, 1)) == 29
    assert period.days_from(date(2024, 3, 1)) == 0
    assert str(period) == "2024-02-01..2024-02-29"
    assert Period(date(2024, 2, 1), date(2024, 2, 1)).days == 1


def test_period_intersect() -> None:
    period = Period(date(2024, 2, 1), date(2024, 2, 29))
    assert period.intersect(date(2024, 2, 10), None) == Period(date(2024, 2, 10), date(2024, 2, 29))
    assert period.intersect(date(2024, 1, 1), date(2024, 2, 5)) == Period(
        date(2024, 2, 1), date(2024, 2, 5)
    )
    assert period.intersect(date(2024, 3, 1), None) is None
    assert period.intersect(date(2024, 1, 1), date(2024, 1, 31)) is None


def test_period_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="before it starts"):
        Period(date(2024, 2, 2), date(2024, 2, 1))


def test_days_between() -> None:
    assert days_between(date(2024, 2, 1), date(2024, 2, 29)) == 29
    assert days_between(date(2024, 2, 1), date(2024, 2, 1)) == 1
    assert days_between(date(2024, 2, 2), date(2024, 2, 1)) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("weekly", Frequency.WEEKLY),
        ("Bi-Weekly", Frequency.BIWEEKLY),
        ("Monthly", Frequency.MONTHLY),
        ("QUARTERLY", Frequency.QUARTERLY),
        ("Semi-Annual", Frequency.SEMI_ANNUAL),
        ("semi annual", Frequency.SEMI_ANNUAL),
        ("semiannual", Frequency.SEMI_ANNUAL),
        ("yearly", Frequency.ANNUAL),
        (" annual ", Frequency.ANNUAL),
    ],
)
def test_frequency_parse(text: str, expected: Frequency) -> None:
    assert Frequency.parse(text) is expected


@pytest.mark.parametrize("text", ["daily", "", "fortnightly", "monthly-ish"])
def test_unsupported_frequency_is_refused(text: str) -> None:
    with pytest.raises(InvalidInputError, match="unsupported billing frequency"):
        Frequency.parse(text)


@pytest.mark.parametrize(
    ("frequency", "months", "days", "per_year", "factor"),
    [
        (Frequency.WEEKLY, None, 7, 52, Fraction(52, 12)),
        (Frequency.BIWEEKLY, None, 14, 26, Fraction(26, 12)),
        (Frequency.MONTHLY, 1, None, 12, Fraction(1)),
        (Frequency.QUARTERLY, 3, None, 4, Fraction(1, 3)),
        (Frequency.SEMI_ANNUAL, 6, None, 2, Fraction(1, 6)),
        (Frequency.ANNUAL, 12, None, 1, Fraction(1, 12)),
    ],
)
def test_frequency_lengths(
    frequency: Frequency, months: int | None, days: int | None, per_year: int, factor: Fraction
) -> None:
    assert frequency.months == months
    assert frequency.days == days
    assert frequency.per_year == per_year
    assert frequency.monthly_factor == factor


def test_frequency_labels() -> None:
    assert [f.label for f in Frequency] == [
        "Weekly",
        "Biweekly",
        "Monthly",
        "Quarterly",
        "Semi-Annual",
        "Annual",
    ]
