"""Revenue recognition: daily ratable schedules, residue on the last day."""

from datetime import date
from decimal import Decimal

from connector.billing.periods import Period
from connector.billing.revenue import RevenueSchedule, month_end

from .helpers import BHD, JPY, USD

D = Decimal


def schedule(amount: str, start: date, end: date, cur=USD) -> RevenueSchedule:
    return RevenueSchedule(D(amount), cur, Period(start, end))


def test_daily_amount_is_truncated_and_the_last_day_takes_the_residue() -> None:
    jan = schedule("100.00", date(2025, 1, 1), date(2025, 1, 31))
    assert jan.daily == D("3.22")  # 100 / 31 = 3.2258... truncated
    assert jan.recognized_through(date(2024, 12, 31)) == D("0")
    assert jan.recognized_through(date(2025, 1, 1)) == D("3.22")
    assert jan.recognized_through(date(2025, 1, 30)) == D("96.60")  # 30 × 3.22
    assert jan.recognized_through(date(2025, 1, 31)) == D("100.00")  # last day: 3.40
    assert jan.recognized_through(date(2025, 6, 1)) == D("100.00")
    assert jan.recognized_between(date(2025, 1, 31), date(2025, 1, 31)) == D("3.40")
    assert jan.recognized_between(date(2025, 1, 10), date(2025, 1, 12)) == D("9.66")
    assert jan.recognized_between(date(2025, 1, 12), date(2025, 1, 10)) == D("0")
    assert jan.deferred_after(date(2025, 1, 15)) == D("51.70")  # 100.00 - 15 × 3.22
    assert jan.deferred_after(date(2024, 12, 31)) == D("100.00")
    assert jan.deferred_after(date(2025, 1, 31)) == D("0.00")


def test_by_month_across_months() -> None:
    # Jan 15..Apr 14 2025 = 17 + 28 + 31 + 14 = 90 days; 300.00 / 90 = 3.333... -> 3.33
    quarter = schedule("300.00", date(2025, 1, 15), date(2025, 4, 14))
    assert quarter.daily == D("3.33")
    months = list(quarter.by_month())
    assert [amount for _, amount in months] == [
        D("56.61"),  # Jan 15..31: 17 × 3.33
        D("93.24"),  # Feb: 28 × 3.33
        D("103.23"),  # Mar: 31 × 3.33
        D("46.92"),  # Apr 1..14: 300.00 - 253.08 (13 × 3.33 + the residue 3.63)
    ]
    assert [day for day, _ in months[:3]] == [
        date(2025, 1, 31),
        date(2025, 2, 28),
        date(2025, 3, 31),
    ]
    assert list(quarter.by_month(through=date(2025, 3, 15))) == [
        (date(2025, 1, 31), D("56.61")),
        (date(2025, 2, 28), D("93.24")),
        (date(2025, 3, 15), D("49.95")),  # 15 × 3.33
    ]
    assert list(quarter.by_month(through=date(2025, 1, 14))) == []
    # Through the last day of service: the last month is complete.
    assert list(quarter.by_month(through=date(2025, 4, 30)))[-1] == (
        date(2025, 4, 30),
        D("46.92"),
    )


def test_annual_line_recognized_monthly() -> None:
    # Apr 1 2024..Mar 31 2025 = 365 days; 1200.00 / 365 = 3.2876... -> 3.28
    year = schedule("1200.00", date(2024, 4, 1), date(2025, 3, 31))
    months = list(year.by_month())
    assert len(months) == 12
    assert months[0] == (date(2024, 4, 30), D("98.40"))  # 30 × 3.28
    assert months[1] == (date(2024, 5, 31), D("101.68"))  # 31 × 3.28
    assert months[10] == (date(2025, 2, 28), D("91.84"))  # 28 × 3.28
    assert months[11] == (date(2025, 3, 31), D("104.48"))  # 1200.00 - 334 × 3.28
    assert sum(amount for _, amount in months) == D("1200.00")


def test_leap_february() -> None:
    feb = schedule("290.00", date(2024, 2, 1), date(2024, 2, 29))
    assert feb.daily == D("10.00")
    assert list(feb.by_month()) == [(date(2024, 2, 29), D("290.00"))]
    assert feb.recognized_through(date(2024, 2, 28)) == D("280.00")


def test_negative_line_reverses_revenue_with_the_same_rule() -> None:
    credit = schedule("-100.00", date(2025, 3, 1), date(2025, 3, 3))
    assert credit.daily == D("-33.33")  # truncated towards zero
    assert credit.recognized_through(date(2025, 3, 2)) == D("-66.66")
    assert credit.recognized_through(date(2025, 3, 3)) == D("-100.00")  # last day: -33.34
    assert credit.deferred_after(date(2025, 3, 1)) == D("-66.67")


def test_minor_units_of_each_currency() -> None:
    yen = schedule("1000", date(2025, 3, 1), date(2025, 3, 3), JPY)
    assert yen.daily == D("333")
    assert yen.recognized_between(date(2025, 3, 3), date(2025, 3, 3)) == D("334")
    dinar = schedule("1.000", date(2025, 3, 1), date(2025, 3, 3), BHD)
    assert dinar.daily == D("0.333")
    assert dinar.recognized_between(date(2025, 3, 3), date(2025, 3, 3)) == D("0.334")
    # 10 JPY over 31 days: 0 a day, everything on the last day.
    small = schedule("10", date(2025, 1, 1), date(2025, 1, 31), JPY)
    assert small.daily == D("0")
    assert small.recognized_through(date(2025, 1, 30)) == D("0")
    assert list(small.by_month()) == [(date(2025, 1, 31), D("10"))]


def test_one_time_line_is_recognized_on_its_service_date() -> None:
    setup = schedule("250.00", date(2025, 1, 10), date(2025, 1, 10))
    assert setup.daily == D("250.00")
    assert setup.recognized_through(date(2025, 1, 9)) == D("0")
    assert setup.recognized_through(date(2025, 1, 10)) == D("250.00")
    assert [amount for _, amount in setup.by_month()] == [D("250.00")]


def test_by_month_labels_every_month_with_its_last_day() -> None:
    # Also the last month of service when service ends before the month does.
    quarter = schedule("300.00", date(2025, 1, 15), date(2025, 4, 14))
    assert list(quarter.by_month()) == [
        (date(2025, 1, 31), D("56.61")),
        (date(2025, 2, 28), D("93.24")),
        (date(2025, 3, 31), D("103.23")),
        (date(2025, 4, 30), D("46.92")),
    ]
    setup = schedule("250.00", date(2025, 1, 10), date(2025, 1, 10))
    assert list(setup.by_month()) == [(date(2025, 1, 31), D("250.00"))]


def test_month_end() -> None:
    assert month_end(date(2024, 2, 10)) == date(2024, 2, 29)
    assert month_end(date(2025, 2, 1)) == date(2025, 2, 28)
    assert month_end(date(2025, 12, 31)) == date(2025, 12, 31)
