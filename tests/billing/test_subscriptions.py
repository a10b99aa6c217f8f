"""Subscription terms, item versions and amendments."""

import re
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind
from connector.billing.subscriptions import (
    ItemSpec,
    ItemVersion,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
    SubscriptionTerms,
)
from connector.errors import InvalidInputError

from .helpers import EUR, JPY, USD, flat, per_unit, product, spec, subscribe

D = Decimal


def test_trial_moves_the_billing_start() -> None:
    terms = SubscriptionTerms(date(2025, 1, 1), Frequency.MONTHLY, trial_days=14)
    assert terms.billing_start == date(2025, 1, 15)
    assert terms.schedule.period(0).start == date(2025, 1, 15)
    assert terms.schedule.period(0).end == date(2025, 2, 14)


def test_term_end_without_renewal() -> None:
    terms = SubscriptionTerms(date(2024, 1, 31), Frequency.MONTHLY, term_months=1, auto_renew=False)
    # billing start + 1 month - 1 day = Feb 29 2024 - 1 day
    assert terms.first_term_end == date(2024, 2, 28)
    assert terms.service_end == date(2024, 2, 28)
    trial = SubscriptionTerms(
        date(2025, 1, 1), Frequency.QUARTERLY, term_months=12, auto_renew=False, trial_days=30
    )
    assert trial.service_end == date(2026, 1, 30)  # Jan 31 2025 + 12 months - 1 day


def test_auto_renewing_term_has_no_end() -> None:
    terms = SubscriptionTerms(date(2025, 1, 1), Frequency.MONTHLY, term_months=12)
    assert terms.service_end is None
    assert terms.term_end_after(date(2025, 6, 1)) == date(2025, 12, 31)
    assert terms.term_end_after(date(2026, 1, 1)) == date(2026, 12, 31)


def test_cancellation_date_is_the_first_day_without_service() -> None:
    terms = SubscriptionTerms(date(2025, 1, 1), Frequency.MONTHLY, cancel_date=date(2025, 3, 15))
    assert terms.service_end == date(2025, 3, 14)
    assert terms.is_billable_on(date(2025, 3, 14))
    assert not terms.is_billable_on(date(2025, 3, 15))
    # The earlier of the term end and the cancellation wins.
    short = SubscriptionTerms(
        date(2025, 1, 1),
        Frequency.MONTHLY,
        term_months=1,
        auto_renew=False,
        cancel_date=date(2025, 3, 15),
    )
    assert short.service_end == date(2025, 1, 31)


def test_status_on() -> None:
    terms = SubscriptionTerms(
        date(2025, 1, 1), Frequency.MONTHLY, trial_days=10, cancel_date=date(2025, 6, 1)
    )
    assert terms.status_on(date(2024, 12, 31)) is SubscriptionStatus.PENDING
    assert terms.status_on(date(2025, 1, 10)) is SubscriptionStatus.TRIALING
    assert terms.status_on(date(2025, 1, 11)) is SubscriptionStatus.ACTIVE
    assert terms.status_on(date(2025, 5, 31)) is SubscriptionStatus.ACTIVE
    assert terms.status_on(date(2025, 6, 1)) is SubscriptionStatus.CANCELED
    ended = SubscriptionTerms(date(2025, 1, 1), Frequency.MONTHLY, term_months=3, auto_renew=False)
    assert ended.status_on(date(2025, 3, 31)) is SubscriptionStatus.ACTIVE
    assert ended.status_on(date(2025, 4, 1)) is SubscriptionStatus.ENDED


def test_cancel_date_before_start_date_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="before the start date 2025-01-01"):
        SubscriptionTerms(date(2025, 1, 1), Frequency.MONTHLY, cancel_date=date(2024, 12, 31))
    subscription = subscribe(date(2025, 1, 1), Frequency.MONTHLY, [spec("a", per_unit("10"))])
    with pytest.raises(InvalidInputError, match="before the start date"):
        subscription.with_terms(cancel_date=date(2024, 12, 1))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"term_months": 0}, "term must be 1 to 1200 months, not 0"),
        ({"term_months": 99_999_999}, "term must be 1 to 1200 months, not 99999999"),
        ({"trial_days": -1}, "trial days must be 0 to 3660, not -1"),
        ({"trial_days": 99_999_999}, "trial days must be 0 to 3660, not 99999999"),
        ({"term_count": 0}, "term count must be at least 1, not 0"),
        (
            {"start_date": date(9999, 6, 1), "auto_renew": False},
            "a term of 12 months from 9999-06-01 ends beyond the last date the calendar holds",
        ),
    ],
)
def test_bad_terms_are_refused(changes: dict, message: str) -> None:
    fields = {"start_date": date(2025, 1, 1), "frequency": Frequency.MONTHLY, **changes}
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        SubscriptionTerms(**fields)


def test_renewal_turned_off_in_a_later_term_ends_with_that_term() -> None:
    terms = SubscriptionTerms(date(2025, 1, 1), Frequency.MONTHLY, auto_renew=False, term_count=2)
    assert terms.service_end == date(2026, 12, 31)
    assert terms.term_index(date(2025, 12, 31)) == 0
    assert terms.term_index(date(2026, 1, 1)) == 1
    assert terms.term_index(date(2024, 6, 1)) == 0


@pytest.mark.parametrize(
    ("price", "quantity", "discount", "expected"),
    [
        (per_unit("100.00"), "1", "0", "100.00"),
        (per_unit("100.00"), "1", "15", "85.00"),  # 100.00 - 15.00
        (per_unit("19.99"), "3", "10", "53.97"),  # 59.97 - round(5.997) = 59.97 - 6.00
        (per_unit("0.0125", JPY), "1000", "0", "13"),  # 12.5 -> 13 half up
        (flat("49.00"), "4", "100", "0.00"),
        (per_unit("33.33"), "0", "0", "0.00"),
    ],
)
def test_period_amount(price, quantity: str, discount: str, expected: str) -> None:
    version = ItemVersion(date(2025, 1, 1), price, D(quantity), D(discount))
    assert version.period_amount() == D(expected)


@pytest.mark.parametrize(
    ("price", "quantity", "discount", "expected"),
    [
        # The discount is a percentage of the subtotal as the invoice shows it (rounded), so a
        # reader can check it: gross 1.245 -> 1.25; 10 % of 1.25 = 0.125 -> 0.13; 1.25 - 0.13.
        (per_unit("1.245"), "1", "10", "1.12"),
        # JPY: gross 14.5 -> 15; 10 % of 15 = 1.5 -> 2; 15 - 2 = 13.
        (per_unit("14.5", JPY), "1", "10", "13"),
    ],
)
def test_discount_is_taken_from_the_rounded_subtotal(
    price, quantity: str, discount: str, expected: str
) -> None:
    version = ItemVersion(date(2025, 1, 1), price, D(quantity), D(discount))
    assert version.period_amount() == D(expected)


def test_item_version_refuses_bad_values() -> None:
    with pytest.raises(InvalidInputError, match="quantity -1 is negative"):
        ItemVersion(date(2025, 1, 1), per_unit("1"), D("-1"))
    with pytest.raises(InvalidInputError, match="not between 0 and 100"):
        ItemVersion(date(2025, 1, 1), per_unit("1"), D("1"), D("100.01"))
    with pytest.raises(InvalidInputError, match="not between 0 and 100"):
        ItemVersion(date(2025, 1, 1), per_unit("1"), D("1"), D("-5"))


def test_negative_quantity_in_an_amendment_is_refused() -> None:
    subscription = subscribe(date(2025, 1, 1), Frequency.MONTHLY, [spec("a", per_unit("10"))])
    with pytest.raises(InvalidInputError, match="negative"):
        subscription.with_items(date(2025, 2, 1), [spec("a", per_unit("10"), "-2")])


def test_with_items_builds_versions() -> None:
    start = date(2025, 1, 1)
    subscription = subscribe(start, Frequency.MONTHLY, [spec("a", per_unit("10"), "3")])
    amended = subscription.with_items(
        date(2025, 2, 10), [spec("a", per_unit("10"), "5", "20"), spec("b", flat("7"))]
    )
    a, b = amended.item("a"), amended.item("b")
    assert [(v.effective_date, v.quantity, v.discount_percent) for v in a.versions] == [
        (start, D("3"), D("0")),
        (date(2025, 2, 10), D("5"), D("20")),
    ]
    assert [(v.effective_date, v.quantity) for v in b.versions] == [(date(2025, 2, 10), D("1"))]
    assert a.version_at(date(2025, 2, 9)).quantity == D("3")
    assert a.version_at(date(2025, 2, 10)).quantity == D("5")
    assert b.version_at(date(2025, 2, 9)) is None
    # The original is untouched (immutable values).
    assert len(subscription.items) == 1


def test_removed_item_gets_a_zero_version() -> None:
    subscription = subscribe(
        date(2025, 1, 1),
        Frequency.MONTHLY,
        [spec("a", per_unit("10"), "3"), spec("b", flat("7"))],
    )
    amended = subscription.with_items(date(2025, 3, 1), [spec("a", per_unit("10"), "3")])
    assert [(v.effective_date, v.quantity) for v in amended.item("b").versions] == [
        (date(2025, 1, 1), D("1")),
        (date(2025, 3, 1), D("0")),
    ]
    assert amended.item("a") == subscription.item("a")


def test_same_item_set_changes_nothing() -> None:
    specs = [spec("a", per_unit("10"), "3"), spec("b", flat("7"), "1", "5")]
    subscription = subscribe(date(2025, 1, 1), Frequency.MONTHLY, specs)
    assert subscription.with_items(date(2025, 2, 15), specs) == subscription


def test_later_versions_are_superseded() -> None:
    start = date(2025, 1, 1)
    subscription = subscribe(start, Frequency.MONTHLY, [spec("a", per_unit("10"), "1")])
    planned = subscription.with_items(date(2025, 6, 1), [spec("a", per_unit("10"), "9")])
    replaced = planned.with_items(date(2025, 3, 1), [spec("a", per_unit("10"), "2")])
    assert [(v.effective_date, v.quantity) for v in replaced.item("a").versions] == [
        (start, D("1")),
        (date(2025, 3, 1), D("2")),
    ]
    # Going back to the original item set from before the planned change drops it.
    assert planned.with_items(date(2025, 6, 1), [spec("a", per_unit("10"), "1")]) == subscription


def test_amendment_refusals() -> None:
    subscription = subscribe(date(2025, 1, 1), Frequency.MONTHLY, [spec("a", per_unit("10"))])
    with pytest.raises(InvalidInputError, match="before the subscription starts"):
        subscription.with_items(date(2024, 12, 31), [])
    with pytest.raises(InvalidInputError, match="appears twice"):
        subscription.with_items(
            date(2025, 2, 1), [spec("a", per_unit("10")), spec("a", per_unit("20"))]
        )
    with pytest.raises(InvalidInputError, match="cannot change a recurring item"):
        subscription.with_items(
            date(2025, 2, 1), [spec("a", per_unit("10", kind=ChargeKind.ONE_TIME))]
        )
    with pytest.raises(InvalidInputError, match="price is in EUR"):
        subscription.with_items(date(2025, 2, 1), [spec("b", per_unit("10", EUR))])


def test_subscription_item_refusals() -> None:
    version = ItemVersion(date(2025, 1, 1), per_unit("10"), D("1"))
    with pytest.raises(InvalidInputError, match="at least one version"):
        SubscriptionItem("a", product(), ChargeKind.RECURRING, ())
    with pytest.raises(InvalidInputError, match="distinct, ordered dates"):
        SubscriptionItem("a", product(), ChargeKind.RECURRING, (version, version))
    with pytest.raises(InvalidInputError, match="cannot be used on an item of OTHER"):
        SubscriptionItem("a", product("OTHER"), ChargeKind.RECURRING, (version,))
    with pytest.raises(InvalidInputError, match="only one-time items take a service date"):
        SubscriptionItem("a", product(), ChargeKind.RECURRING, (version,), date(2025, 1, 5))
    terms = SubscriptionTerms(date(2025, 1, 1), Frequency.MONTHLY)
    with pytest.raises(InvalidInputError, match="service date 2024-12-01 is before"):
        Subscription(USD, terms).with_items(
            date(2025, 1, 1),
            [
                ItemSpec(
                    "setup",
                    flat("10", kind=ChargeKind.ONE_TIME),
                    D(1),
                    service_date=date(2024, 12, 1),
                )
            ],
        )


def test_weekly_mrr_is_normalized_to_a_month() -> None:
    subscription = subscribe(date(2025, 1, 1), Frequency.WEEKLY, [spec("a", per_unit("100.00"))])
    # 100.00 × 52 / 12 = 1300 / 3 = 433.33...
    assert subscription.monthly_recurring_revenue(date(2025, 2, 1)) == Fraction(1300, 3)


def test_mrr_excludes_trial_one_time_and_ended_service() -> None:
    setup = spec("setup", flat("500", kind=ChargeKind.ONE_TIME))
    subscription = subscribe(
        date(2025, 1, 1),
        Frequency.QUARTERLY,
        [spec("a", per_unit("300.00"), "1", "10"), setup],
        trial_days=14,
    ).with_terms(cancel_date=date(2025, 6, 1))
    assert subscription.monthly_recurring_revenue(date(2025, 1, 14)) == 0  # trial
    # (300.00 - 30.00) / 3 = 90
    assert subscription.monthly_recurring_revenue(date(2025, 1, 15)) == 90
    assert subscription.monthly_recurring_revenue(date(2025, 5, 31)) == 90
    assert subscription.monthly_recurring_revenue(date(2025, 6, 1)) == 0  # cancelled
    assert subscription.revenue_start() == date(2025, 1, 15)


def test_revenue_start_waits_for_a_priced_item() -> None:
    subscription = subscribe(
        date(2025, 1, 1), Frequency.MONTHLY, [spec("a", per_unit("10"), "0")]
    ).with_items(date(2025, 3, 10), [spec("a", per_unit("10"), "2")])
    assert subscription.revenue_start() == date(2025, 3, 10)
    assert subscribe(date(2025, 1, 1), Frequency.MONTHLY, []).revenue_start() is None


@pytest.mark.parametrize(("quantity", "discount"), [(1.5, D("0")), (D("1"), 12.5)])
def test_float_quantity_or_discount_is_refused(quantity: object, discount: object) -> None:
    with pytest.raises(InvalidInputError):
        ItemVersion(date(2025, 1, 1), per_unit("10"), quantity, discount)
