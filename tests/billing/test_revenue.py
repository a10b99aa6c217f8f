"""Revenue recognition: ratable schedules rounded once, and credits that stop revenue with the
service."""

from datetime import date
from decimal import Decimal

from connector.billing.periods import ONE_DAY, Period
from connector.billing.revenue import (
    CreditSchedule,
    EndingLine,
    RevenueSchedule,
    Schedule,
    credit_schedule,
    ending_schedule,
    month_end,
)

from .helpers import BHD, EUR, JPY, USD

D = Decimal


def schedule(amount: str, start: date, end: date, cur=USD) -> RevenueSchedule:
    return RevenueSchedule(D(amount), cur, Period(start, end))


def test_recognized_so_far_is_the_exact_share_of_the_days_rounded_once() -> None:
    jan = schedule("100.00", date(2025, 1, 1), date(2025, 1, 31))
    assert jan.recognized_through(date(2024, 12, 31)) == D("0")
    assert jan.recognized_through(date(2025, 1, 1)) == D("3.23")  # 100 / 31 = 3.2258...
    assert jan.recognized_through(date(2025, 1, 30)) == D("96.77")  # 100 × 30 / 31 = 96.774...
    assert jan.recognized_through(date(2025, 1, 31)) == D("100.00")
    assert jan.recognized_through(date(2025, 6, 1)) == D("100.00")
    assert jan.recognized_between(date(2025, 1, 31), date(2025, 1, 31)) == D("3.23")
    # 100 × 12 / 31 = 38.709... -> 38.71, less 100 × 9 / 31 = 29.032... -> 29.03
    assert jan.recognized_between(date(2025, 1, 10), date(2025, 1, 12)) == D("9.68")
    assert jan.recognized_between(date(2025, 1, 12), date(2025, 1, 10)) == D("0")
    assert jan.deferred_after(date(2025, 1, 15)) == D("51.61")  # 100.00 - 48.39
    assert jan.deferred_after(date(2024, 12, 31)) == D("100.00")
    assert jan.deferred_after(date(2025, 1, 31)) == D("0.00")


def test_by_month_across_months() -> None:
    # Jan 15..Apr 14 2025 = 17 + 28 + 31 + 14 = 90 days of 300.00: 3.333... a day
    quarter = schedule("300.00", date(2025, 1, 15), date(2025, 4, 14))
    months = list(quarter.by_month())
    assert [amount for _, amount in months] == [
        D("56.67"),  # through Jan 31: 17 days, 56.666...
        D("93.33"),  # through Feb 28: 45 days, 150.00
        D("103.33"),  # through Mar 31: 76 days, 253.333... -> 253.33
        D("46.67"),  # the rest: 300.00 - 253.33
    ]
    assert [day for day, _ in months[:3]] == [
        date(2025, 1, 31),
        date(2025, 2, 28),
        date(2025, 3, 31),
    ]
    assert list(quarter.by_month(through=date(2025, 3, 15))) == [
        (date(2025, 1, 31), D("56.67")),
        (date(2025, 2, 28), D("93.33")),
        (date(2025, 3, 15), D("50.00")),  # through Mar 15: 60 days, 200.00
    ]
    assert list(quarter.by_month(through=date(2025, 1, 14))) == []
    # Through the last day of service: the last month is complete.
    assert list(quarter.by_month(through=date(2025, 4, 30)))[-1] == (
        date(2025, 4, 30),
        D("46.67"),
    )


def test_annual_line_recognized_monthly() -> None:
    # Apr 1 2024..Mar 31 2025 = 365 days of 1200.00
    year = schedule("1200.00", date(2024, 4, 1), date(2025, 3, 31))
    months = list(year.by_month())
    assert len(months) == 12
    assert months[0] == (date(2024, 4, 30), D("98.63"))  # 1200 × 30 / 365 = 98.630...
    assert months[1] == (date(2024, 5, 31), D("101.92"))  # 200.547... -> 200.55, less 98.63
    assert months[10] == (date(2025, 2, 28), D("92.05"))  # 1098.08 - 1006.03
    assert months[11] == (date(2025, 3, 31), D("101.92"))  # 1200.00 - 1098.08
    assert sum(amount for _, amount in months) == D("1200.00")


def test_leap_february() -> None:
    feb = schedule("290.00", date(2024, 2, 1), date(2024, 2, 29))
    assert list(feb.by_month()) == [(date(2024, 2, 29), D("290.00"))]
    assert feb.recognized_through(date(2024, 2, 28)) == D("280.00")


def test_negative_line_reverses_revenue_with_the_same_rule() -> None:
    credit = schedule("-100.00", date(2025, 3, 1), date(2025, 3, 3))
    assert credit.recognized_through(date(2025, 3, 1)) == D("-33.33")
    assert credit.recognized_through(date(2025, 3, 2)) == D("-66.67")  # half away from zero
    assert credit.recognized_through(date(2025, 3, 3)) == D("-100.00")
    assert credit.deferred_after(date(2025, 3, 1)) == D("-66.67")


def test_minor_units_of_each_currency() -> None:
    yen = schedule("1000", date(2025, 3, 1), date(2025, 3, 3), JPY)
    assert yen.recognized_through(date(2025, 3, 2)) == D("667")  # 666.66...
    assert yen.recognized_between(date(2025, 3, 3), date(2025, 3, 3)) == D("333")
    dinar = schedule("1.000", date(2025, 3, 1), date(2025, 3, 3), BHD)
    assert dinar.recognized_through(date(2025, 3, 1)) == D("0.333")
    assert dinar.recognized_between(date(2025, 3, 3), date(2025, 3, 3)) == D("0.333")
    # 10 JPY over 31 days: a yen whenever the exact share passes the next half yen.
    small = schedule("10", date(2025, 1, 1), date(2025, 1, 31), JPY)
    assert small.recognized_through(date(2025, 1, 1)) == D("0")  # 0.32
    assert small.recognized_through(date(2025, 1, 2)) == D("1")  # 0.645...
    assert small.recognized_through(date(2025, 1, 30)) == D("10")  # 9.677...
    assert list(small.by_month()) == [(date(2025, 1, 31), D("10"))]


def _cancelled_annual() -> tuple[RevenueSchedule, CreditSchedule]:
    """1,200.00 a year from 2028-01-01 (366 days), cancelled from 2028-03-01: the credit of
    the 306 unused days is 1,200 × 306 / 366 = 1,003.278... -> 1,003.28."""
    service = Period(date(2028, 1, 1), date(2028, 12, 31))
    invoice = RevenueSchedule(D("1200.00"), USD, service)
    credit = credit_schedule(
        (D("1200.00"), service), [(D("1003.28"), Period(date(2028, 3, 1), service.end))], USD
    )
    return invoice, credit


def test_a_cancellation_stops_revenue_on_the_last_day_of_service() -> None:
    invoice, credit = _cancelled_annual()
    assert credit.group.last_day_of_service() == date(2028, 2, 29)

    def net(day: date) -> Decimal:
        return invoice.recognized_through(day) + credit.recognized_through(day)

    # Through the cancellation: 1,200 × 60 / 366 = 196.721... (the billed 1,200.00 - 1,003.28)
    assert net(date(2028, 2, 29)) == D("196.72")
    assert net(date(2028, 2, 28)) == D("193.44")  # 1,200 × 59 / 366 = 193.442...
    day = date(2028, 3, 1)
    while day <= date(2029, 1, 31):  # nothing after, to the cent, on any day
        assert net(day) == D("196.72"), day
        day += ONE_DAY
    # The credit takes back exactly what the invoice recognizes after the cancellation.
    assert credit.recognized_through(date(2028, 2, 29)) == D("0.00")
    assert credit.recognized_through(date(2028, 3, 31)) == D("-101.64")  # 298.36 - 196.72
    assert credit.recognized_through(date(2028, 12, 31)) == D("-1003.28")
    assert credit.amount == D("-1003.28")


def test_a_downgrade_then_a_cancellation() -> None:
    # 300.00 for March (31 days); downgraded to 150.00 from Mar 11 (credit 150 × 21 / 31 =
    # 101.61), then cancelled from Mar 21 (credit of the 11 days left at 150.00: 53.23).
    march = Period(date(2026, 3, 1), date(2026, 3, 31))
    invoice = (D("300.00"), march)
    downgrade = (D("101.61"), Period(date(2026, 3, 11), march.end))
    cancel = (D("53.23"), Period(date(2026, 3, 21), march.end))
    first = credit_schedule(invoice, [downgrade], USD)
    second = credit_schedule(invoice, [downgrade, cancel], USD)
    assert first.group.last_day_of_service() == march.end  # service goes on at 150.00
    assert second.group.last_day_of_service() == date(2026, 3, 20)
    alone = RevenueSchedule(*invoice[:1], USD, march)

    def net(day: date) -> Decimal:
        return sum((s.recognized_through(day) for s in (alone, first, second)), start=D(0))

    # 10 days at 300.00 + 10 days at 150.00 = 96.774... + 48.387... = 145.16
    assert net(date(2026, 3, 20)) == D("145.16") == D("300.00") - D("101.61") - D("53.23")
    assert net(date(2026, 3, 10)) == D("96.77")
    assert net(date(2026, 3, 15)) == D("120.97")  # 96.774... + 5 × 4.838... = 120.967...
    assert {net(date(2026, 3, d)) for d in range(21, 32)} == {D("145.16")}
    assert second.recognized_through(march.end) == D("-53.23")


def test_one_time_line_is_recognized_on_its_service_date() -> None:
    setup = schedule("250.00", date(2025, 1, 10), date(2025, 1, 10))
    assert setup.recognized_through(date(2025, 1, 9)) == D("0")
    assert setup.recognized_through(date(2025, 1, 10)) == D("250.00")
    assert [amount for _, amount in setup.by_month()] == [D("250.00")]


def test_by_month_labels_every_month_with_its_last_day() -> None:
    # Also the last month of service when service ends before the month does.
    quarter = schedule("300.00", date(2025, 1, 15), date(2025, 4, 14))
    assert list(quarter.by_month()) == [
        (date(2025, 1, 31), D("56.67")),
        (date(2025, 2, 28), D("93.33")),
        (date(2025, 3, 31), D("103.33")),
        (date(2025, 4, 30), D("46.67")),
    ]
    setup = schedule("250.00", date(2025, 1, 10), date(2025, 1, 10))
    assert list(setup.by_month()) == [(date(2025, 1, 31), D("250.00"))]


def test_month_end() -> None:
    assert month_end(date(2024, 2, 10)) == date(2024, 2, 29)
    assert month_end(date(2025, 2, 1)) == date(2025, 2, 28)
    assert month_end(date(2025, 12, 31)) == date(2025, 12, 31)


def test_a_cancellation_credited_over_an_upgrade_and_its_plan_stops_revenue_with_the_service() -> (
    None
):
    # An annual plan of 291 JPY from Jan 6, one more seat from Mar 31 billed on its own invoice
    # (224 JPY), cancelled from Apr 30. The cancellation's credit, 400 JPY for two seats, is
    # taken newest line first: all 224 of the upgrade (whose first 30 days were served) and
    # 176 of the plan (which has 200.1 left). Line by line, the upgrade would take back its
    # served days and the plan recognize 24 JPY after the cancellation; together they stop.
    year = Period(date(2026, 1, 6), date(2027, 1, 5))
    upgrade = Period(date(2026, 3, 31), date(2027, 1, 5))
    cancelled = Period(date(2026, 4, 30), date(2027, 1, 5))
    plan_line, upgrade_line = (D(291), year), (D(224), upgrade)
    schedules = [
        RevenueSchedule(D(291), JPY, year),
        RevenueSchedule(D(224), JPY, upgrade),
        credit_schedule(plan_line, [(D(176), cancelled)], JPY, [upgrade_line]),
        credit_schedule(plan_line, [(D(176), cancelled), (D(224), cancelled)], JPY, [upgrade_line]),
    ]

    def net(day: date) -> Decimal:
        return sum((s.recognized_through(day) for s in schedules), D(0))

    last_day = date(2026, 4, 29)
    assert [s.amount for s in schedules] == [D(291), D(224), D(-176), D(-224)]
    assert net(last_day) == D(291) + D(224) - D(176) - D(224) == D(115)
    assert net(date(2026, 3, 30)) == D(67)  # 291 × 84 / 365 = 66.97: the plan alone
    day = last_day
    while day <= date(2027, 1, 31):
        day += ONE_DAY
        assert net(day) == D(115), day  # nothing after the last day of service
    # The credits take back nothing before the cancellation.
    assert schedules[2].recognized_through(last_day) == D(0)
    assert schedules[3].recognized_through(last_day) == D(0)
    # By month: the plan's and the upgrade's April, nothing from May on.
    months: dict[date, Decimal] = {}
    for s in schedules:
        for end, amount in s.by_month():
            months[end] = months.get(end, D(0)) + amount
    assert {end: amount for end, amount in months.items() if amount} == {
        date(2026, 1, 31): D(21),
        date(2026, 2, 28): D(22),
        date(2026, 3, 31): D(26),
        date(2026, 4, 30): D(46),
    }


def _by_month(*schedules: Schedule) -> dict[date, Decimal]:
    months: dict[date, Decimal] = {}
    for s in schedules:
        for end, amount in s.by_month():
            months[end] = months.get(end, D(0)) + amount
    return months


# 350.00 EUR a quarter from Jun 23, 2026: Jun 23..Sep 22, 92 days.
QUARTER = Period(date(2026, 6, 23), date(2026, 9, 22))
FROM_JUL_31 = Period(date(2026, 7, 31), QUARTER.end)


def test_an_upgrade_and_a_cancellation_credited_as_one_line_stop_revenue_with_the_service() -> None:
    # Two seats from Jul 31 (+350 × 54 / 92 = 205.43) and none from Aug 24 (-700 × 30 / 92 =
    # -228.26), billed together: one credit of 22.83 over Jul 31..Sep 22. Its amount alone
    # does not say where service stopped: on its own, the credit would take back 22.83 evenly
    # over its days and the invoice go on recognizing through Sep 22.
    invoice = RevenueSchedule(D("350.00"), EUR, QUARTER)
    ordinary = credit_schedule((D("350.00"), QUARTER), [(D("22.83"), FROM_JUL_31)], EUR)
    assert _by_month(invoice, ordinary)[date(2026, 9, 30)] == D("74.39")
    last_day = date(2026, 8, 23)
    credit = ending_schedule(invoice, ordinary, (D("-22.83"), FROM_JUL_31), last_day, EUR)
    assert isinstance(credit, EndingLine)
    assert credit.amount == D("-22.83")

    def net(day: date) -> Decimal:
        return invoice.recognized_through(day) + credit.recognized_through(day)

    # Through Jul 30 the invoice alone: 350 × 38 / 92 = 144.565... -> 144.57. From Jul 31 the
    # 182.60 left of the quarter's 327.17 over the 24 days to Aug 23, 7.608... a day (two
    # seats: 700 / 92 = 7.608...).
    assert net(date(2026, 7, 30)) == D("144.57")
    assert credit.recognized_through(date(2026, 7, 30)) == D("0.00")
    assert net(date(2026, 7, 31)) == D("152.18")  # 144.57 + 182.60 / 24
    assert net(date(2026, 8, 11)) == D("235.87")  # 12 days of 24: 144.57 + 182.60 / 2
    assert net(last_day) == D("327.17") == D("350.00") - D("22.83")
    day = last_day
    while day <= date(2026, 12, 31):  # nothing after the last day of service
        assert net(day) == D("327.17"), day
        day += ONE_DAY
    assert list(credit.by_month()) == [
        (date(2026, 7, 31), D("3.81")),  # 152.18 - the invoice's 148.37 (39 days)
        (date(2026, 8, 31), D("57.06")),  # 327.17 - 266.30 (70 days), less July's 3.81
        (date(2026, 9, 30), D("-83.70")),  # the invoice's September, taken back
    ]
    assert _by_month(invoice, credit) == {
        date(2026, 6, 30): D("30.43"),
        date(2026, 7, 31): D("121.75"),
        date(2026, 8, 31): D("174.99"),
        date(2026, 9, 30): D("0.00"),
    }


def test_an_upgrade_and_a_cancellation_invoiced_as_one_line_stop_revenue_with_the_service() -> None:
    # Three seats from Jul 31 (+700 × 54 / 92 = 410.87), none from Sep 1 (-1,050 × 22 / 92 =
    # -251.09): one invoice line of 159.78 over Jul 31..Sep 22. The line completes the
    # quarter's 509.78 by Aug 31 and then takes back the first invoice's September.
    invoice = RevenueSchedule(D("350.00"), EUR, QUARTER)
    alone = RevenueSchedule(D("159.78"), EUR, FROM_JUL_31)
    assert _by_month(invoice, alone)[date(2026, 9, 30)] == D("148.80")
    last_day = date(2026, 8, 31)
    line = ending_schedule(invoice, alone, (D("159.78"), FROM_JUL_31), last_day, EUR)
    assert isinstance(line, EndingLine)
    # 144.57 through Jul 30, then the 365.21 left over 32 days: 11.412... a day (three seats:
    # 1,050 / 92 = 11.413...).
    assert list(line.by_month()) == [
        (date(2026, 7, 31), D("7.61")),  # 155.98 - 148.37
        (date(2026, 8, 31), D("235.87")),  # 509.78 - 266.30, less July's 7.61
        (date(2026, 9, 30), D("-83.70")),
    ]
    assert _by_month(invoice, line) == {
        date(2026, 6, 30): D("30.43"),
        date(2026, 7, 31): D("125.55"),
        date(2026, 8, 31): D("353.80"),
        date(2026, 9, 30): D("0.00"),
    }
    assert line.recognized_through(QUARTER.end) == D("159.78")


def test_a_cancellation_credited_on_its_own_keeps_its_schedule() -> None:
    # The credit of the days after the last one already stops the invoice's revenue there.
    invoice, credit = _cancelled_annual()
    line = (D("-1003.28"), Period(date(2028, 3, 1), date(2028, 12, 31)))
    assert ending_schedule(invoice, credit, line, date(2028, 2, 29), USD) is credit


def test_the_only_line_of_a_period_completes_it_on_the_last_day_of_service() -> None:
    # 193.97 billed over 2026 (a plan emptied from Mar 1 before its first invoice), then
    # cancelled from Jun 1: nothing else was billed, so nothing comes before it. Its 193.97 is
    # recognized evenly from Jan 1 through May 31 (151 days).
    year = Period(date(2026, 1, 1), date(2026, 12, 31))
    alone = RevenueSchedule(D("193.97"), USD, year)
    nothing = RevenueSchedule(D(0), USD, year)
    line = ending_schedule(nothing, alone, (D("193.97"), year), date(2026, 5, 31), USD)
    assert isinstance(line, EndingLine)
    assert line.recognized_through(date(2026, 1, 31)) == D("39.82")  # 193.97 × 31 / 151
    assert line.recognized_through(date(2026, 5, 30)) == D("192.69")  # 193.97 × 150 / 151
    assert [end for end, _ in line.by_month()] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
    ]
    assert line.recognized_through(date(2026, 5, 31)) == D("193.97")
