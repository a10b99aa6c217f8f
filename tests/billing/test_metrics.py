"""Subscription metrics: MRR, ARR, ARPU, movements, churn, LTV, retention."""

from datetime import date
from decimal import Decimal

import pytest

from connector.billing.metrics import MrrMovements, compute_metrics
from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind
from connector.billing.subscriptions import Subscription

from .helpers import EUR, JPY, USD, flat, per_unit, spec, subscribe

D = Decimal


def sub(
    customer: int, start: date, frequency: Frequency, amount: str, **kwargs: object
) -> Subscription:
    return subscribe(
        start, frequency, [spec("a", per_unit(amount))], customer_id=customer, **kwargs
    )


def test_weekly_mrr_is_normalized_to_a_month() -> None:
    weekly = sub(1, date(2025, 1, 1), Frequency.WEEKLY, "100.00")
    metrics = compute_metrics([weekly], USD, date(2025, 3, 1))
    assert metrics.mrr == D("433.33")  # 100.00 × 52 / 12 = 433.333...
    assert metrics.arr == D("5200.00")  # 100.00 × 52, not 12 × 433.33
    assert metrics.active_customers == 1
    assert metrics.arpu == D("433.33")
    assert metrics.since == date(2025, 2, 1)  # one month earlier by default
    assert metrics.mrr_at_start == D("433.33")
    assert metrics.movements.net == D("0")
    assert metrics.churned_customers == 0
    assert metrics.logo_churn == D("0")
    assert metrics.revenue_churn == D("0")
    assert metrics.net_revenue_retention == D("1")
    assert metrics.ltv is None  # no churn: no LTV


@pytest.mark.parametrize(
    ("frequency", "mrr", "arr"),
    [
        (Frequency.WEEKLY, "433.33", "5200.00"),  # × 52 / 12; ARR × 52
        (Frequency.BIWEEKLY, "216.67", "2600.00"),  # × 26 / 12 = 216.666...
        (Frequency.MONTHLY, "100.00", "1200.00"),
        (Frequency.QUARTERLY, "33.33", "400.00"),  # / 3
        (Frequency.SEMI_ANNUAL, "16.67", "200.00"),  # / 6 = 16.666...
        (Frequency.ANNUAL, "8.33", "100.00"),  # / 12 = 8.333...
    ],
)
def test_mrr_per_frequency(frequency: Frequency, mrr: str, arr: str) -> None:
    subscription = sub(1, date(2025, 1, 1), frequency, "100.00")
    metrics = compute_metrics([subscription], USD, date(2025, 6, 1))
    assert metrics.mrr == D(mrr)
    assert metrics.arr == D(arr)  # from the exact MRR, not 12 × the rounded one


def test_totals_over_customers() -> None:
    subs = [
        sub(i, date(2025, 1, 1), frequency, "100.00")
        for i, frequency in enumerate(Frequency, start=1)
    ]
    metrics = compute_metrics(subs, USD, date(2025, 6, 1))
    # 433.333... + 216.666... + 100 + 33.333... + 16.666... + 8.333... = 808.333...
    assert metrics.mrr == D("808.33")
    assert metrics.arr == D("9700.00")  # 100 × (52 + 26 + 12 + 4 + 2 + 1)
    assert metrics.active_customers == 6
    assert metrics.arpu == D("134.72")  # 808.333... / 6 = 134.7222...


def test_mrr_applies_discounts_and_excludes_trials_one_time_and_other_currencies() -> None:
    discounted = subscribe(
        date(2025, 1, 1),
        Frequency.MONTHLY,
        [
            spec("a", per_unit("80.00"), "2", "25"),
            spec("setup", flat("999.00", kind=ChargeKind.ONE_TIME, code="SETUP")),
        ],
        customer_id=1,
    )
    trial = sub(2, date(2025, 5, 20), Frequency.MONTHLY, "50.00", trial_days=30)
    euros = subscribe(
        date(2025, 1, 1),
        Frequency.MONTHLY,
        [spec("a", per_unit("70.00", EUR))],
        cur=EUR,
        customer_id=3,
    )
    cancelled = sub(4, date(2025, 1, 1), Frequency.MONTHLY, "40.00").with_terms(
        cancel_date=date(2025, 6, 1)
    )
    subs = [discounted, trial, euros, cancelled]
    # 160.00 - 25 % = 120.00; the trial, the setup fee, EUR and the cancelled one count 0.
    metrics = compute_metrics(subs, USD, date(2025, 6, 1))
    assert metrics.mrr == D("120.00")
    assert metrics.active_customers == 1
    assert compute_metrics(subs, EUR, date(2025, 6, 1)).mrr == D("70.00")


def test_mrr_is_summed_exactly_and_rounded_once() -> None:
    subs = [
        sub(1, date(2025, 1, 1), Frequency.WEEKLY, "10.00"),
        sub(1, date(2025, 1, 1), Frequency.WEEKLY, "10.00"),
    ]
    # 2 × 10.00 × 52 / 12 = 86.666... -> 86.67 (not 2 × 43.33 = 86.66)
    metrics = compute_metrics(subs, USD, date(2025, 2, 1))
    assert metrics.mrr == D("86.67")
    assert metrics.active_customers == 1
    # Two customers: the same, never 43.33 + 43.33.
    other = sub(2, date(2025, 1, 1), Frequency.WEEKLY, "10.00")
    both = compute_metrics([subs[0], other], USD, date(2025, 2, 1))
    assert both.mrr == D("86.67")
    assert both.arr == D("1040.00")  # 2 × 10.00 × 52
    assert both.arpu == D("43.33")


def test_three_quarterly_customers_make_one_hundred_a_month() -> None:
    subs = [sub(i, date(2026, 1, 1), Frequency.QUARTERLY, "100.00") for i in (1, 2, 3)]
    metrics = compute_metrics(subs, USD, date(2026, 2, 15))
    assert metrics.mrr == D("100.00")  # not 3 × 33.33 = 99.99
    assert metrics.arr == D("1200.00")  # not 12 × 99.99 = 1199.88


def test_arr_comes_from_the_exact_mrr() -> None:
    metrics = compute_metrics(
        [sub(1, date(2026, 1, 1), Frequency.QUARTERLY, "950.00")], USD, date(2026, 2, 15)
    )
    assert metrics.mrr == D("316.67")  # 316.666...
    assert metrics.arr == D("3800.00")  # not 12 × 316.67 = 3800.04


def test_a_currency_without_minor_units_is_rounded_once_to_whole_yen() -> None:
    subs = [
        subscribe(
            date(2026, 1, 1),
            Frequency.QUARTERLY,
            [spec("a", per_unit("10000", JPY))],
            cur=JPY,
            customer_id=i,
        )
        for i in (1, 2)
    ]
    metrics = compute_metrics(subs, JPY, date(2026, 2, 15))
    assert metrics.mrr == D("6667")  # 20,000 / 3 = 6,666.67; not 2 × 3,333
    assert metrics.arr == D("80000")  # not 12 × 6,666 = 79,992
    assert metrics.arpu == D("3333")


def test_movements_add_up_to_the_rounded_change_of_mrr() -> None:
    # Three customers of 100.00 a quarter (33.333... each) at the start: 100.00 in all.
    # One churns, one expands to 110.00 a quarter, a new one joins at 10.00 a quarter.
    subs = [
        sub(1, date(2026, 1, 1), Frequency.QUARTERLY, "100.00").with_terms(
            cancel_date=date(2026, 2, 10)
        ),
        sub(2, date(2026, 1, 1), Frequency.QUARTERLY, "100.00").with_items(
            date(2026, 2, 10), [spec("a", per_unit("110.00"))]
        ),
        sub(3, date(2026, 1, 1), Frequency.QUARTERLY, "100.00"),
        sub(4, date(2026, 2, 10), Frequency.QUARTERLY, "10.00"),
    ]
    metrics = compute_metrics(subs, USD, date(2026, 2, 20), date(2026, 1, 20))
    assert metrics.mrr_at_start == D("100.00")
    assert metrics.mrr == D("73.33")  # (110 + 100 + 10) / 3 = 73.333...
    # exact: churn 33.333..., expansion 3.333..., new 3.333...: rounded down (in the
    # direction of each), 3.33 + 3.33 - 33.34 = -26.68; the missing cent goes to the largest
    # remainder (churn, 0.666... of a cent): 3.33 + 3.33 - 33.33 = -26.67 = 73.33 - 100.00
    assert metrics.movements == MrrMovements(
        new=D("3.33"), expansion=D("3.33"), contraction=D("0.00"), churn=D("33.33")
    )
    assert metrics.movements.net == metrics.mrr - metrics.mrr_at_start


def movements_book() -> list[Subscription]:
    return [
        # 1 expands from 100.00 to 200.00 on Mar 10
        sub(1, date(2025, 1, 1), Frequency.MONTHLY, "100.00").with_items(
            date(2025, 3, 10), [spec("a", per_unit("100.00"), "2")]
        ),
        # 2 contracts from 1200.00 a year (100.00) to half of it (50.00)
        sub(2, date(2025, 1, 1), Frequency.ANNUAL, "1200.00").with_items(
            date(2025, 3, 10), [spec("a", per_unit("1200.00"), "1", "50")]
        ),
        # 3 churns: 300.00 a quarter (100.00), cancelled from Mar 5
        sub(3, date(2025, 1, 1), Frequency.QUARTERLY, "300.00").with_terms(
            cancel_date=date(2025, 3, 5)
        ),
        # 4 is new: 50.00 from Mar 1
        sub(4, date(2025, 3, 1), Frequency.MONTHLY, "50.00"),
        # 5 comes back: revenue in 2024, none at the start, 70.00 from Mar 3
        sub(5, date(2024, 1, 1), Frequency.MONTHLY, "80.00").with_terms(
            cancel_date=date(2024, 6, 1)
        ),
        sub(5, date(2025, 3, 3), Frequency.MONTHLY, "70.00"),
        # 6 is still in its trial
        sub(6, date(2025, 3, 1), Frequency.MONTHLY, "70.00", trial_days=30),
    ]


def test_movements_churn_retention_and_ltv() -> None:
    metrics = compute_metrics(movements_book(), USD, date(2025, 3, 15), date(2025, 2, 15))
    assert metrics.mrr_at_start == D("300.00")  # customers 1, 2, 3 at 100.00
    assert metrics.customers_at_start == 3
    assert metrics.mrr == D("370.00")  # 200 + 50 + 50 + 70
    assert metrics.arr == D("4440.00")
    assert metrics.active_customers == 4
    assert metrics.arpu == D("92.50")
    assert metrics.movements == MrrMovements(
        new=D("50.00"),
        expansion=D("100.00"),
        contraction=D("50.00"),
        churn=D("100.00"),
        reactivation=D("70.00"),
    )
    # 50 + 70 + 100 - 50 - 100 = 70 = 370 - 300
    assert metrics.movements.net == D("70.00") == metrics.mrr - metrics.mrr_at_start
    assert metrics.churned_customers == 1
    assert metrics.logo_churn == D("0.3333")  # 1 / 3
    assert metrics.revenue_churn == D("0.5000")  # (100 + 50) / 300
    assert metrics.net_revenue_retention == D("0.8333")  # (300 + 100 - 50 - 100) / 300
    assert metrics.ltv == D("185.00")  # 92.50 / 0.5


def test_default_since_is_one_month_earlier() -> None:
    explicit = compute_metrics(movements_book(), USD, date(2025, 3, 15), date(2025, 2, 15))
    assert compute_metrics(movements_book(), USD, date(2025, 3, 15)) == explicit


def test_ltv_over_a_longer_window_uses_monthly_churn() -> None:
    metrics = compute_metrics(movements_book(), USD, date(2025, 3, 15), date(2025, 1, 15))
    assert metrics.revenue_churn == D("0.5000")
    # 59 days = 59 / 30.436875 months; monthly churn = 0.5 / that;
    # LTV = 92.50 × 59 / (0.5 × 30.436875) = 5457.5 / 15.2184375 = 358.611...
    assert metrics.ltv == D("358.61")


def test_no_customers() -> None:
    metrics = compute_metrics([], USD, date(2025, 3, 15))
    assert metrics.mrr == D("0")
    assert metrics.arr == D("0")
    assert metrics.active_customers == 0
    assert metrics.arpu is None
    assert metrics.logo_churn is None
    assert metrics.revenue_churn is None
    assert metrics.net_revenue_retention is None
    assert metrics.ltv is None
