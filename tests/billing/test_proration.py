"""Proration by days: what one item owes for one period."""

from datetime import date
from decimal import Decimal

from connector.billing.periods import Frequency, Period
from connector.billing.pricing import ChargeKind
from connector.billing.proration import due_in_period, due_once, version_amount
from connector.billing.subscriptions import ItemSpec, ItemVersion, Subscription, SubscriptionItem

from .helpers import JPY, flat, per_unit, spec, subscribe

D = Decimal
START = date(2025, 4, 1)
APRIL = Period(date(2025, 4, 1), date(2025, 4, 30))  # 30 days


def monthly(*changes: tuple[date, str], unit: str = "100.00", cur=None) -> Subscription:
    """Item "a" at ``unit`` × 1 from April 1, then the given (date, quantity) changes."""
    kwargs = {} if cur is None else {"cur": cur}
    price = per_unit(unit, **kwargs)
    subscription = subscribe(START, Frequency.MONTHLY, [spec("a", price)], **kwargs)
    for day, quantity in changes:
        subscription = subscription.with_items(day, [spec("a", price, quantity)])
    return subscription


def test_full_period() -> None:
    item = monthly().item("a")
    assert due_in_period(item, APRIL, START, None) == D("100.00")


def test_service_starting_inside_the_period() -> None:
    item = monthly().item("a")
    # Apr 11..30 = 20 of 30 days: 100.00 × 20 / 30 = 66.666... -> 66.67
    assert due_in_period(item, APRIL, date(2025, 4, 11), None) == D("66.67")


def test_increase_is_charged_for_the_rest_of_the_period() -> None:
    item = monthly((date(2025, 4, 16), "3")).item("a")
    # 100.00 + (300.00 - 100.00) × 15 / 30 (Apr 16..30) = 100.00 + 100.00
    assert due_in_period(item, APRIL, START, None) == D("200.00")


def test_decrease_credits_the_unused_days() -> None:
    item = monthly((START, "3"), (date(2025, 4, 21), "1")).item("a")
    # 300.00 + (100.00 - 300.00) × 10 / 30 (Apr 21..30) = 300.00 - 66.67
    assert due_in_period(item, APRIL, START, None) == D("233.33")


def test_service_ending_inside_the_period() -> None:
    item = monthly().item("a")
    # Service through Apr 20: 100.00 - 100.00 × 10 / 30 (Apr 21..30) = 100.00 - 33.33
    assert due_in_period(item, APRIL, START, date(2025, 4, 20)) == D("66.67")


def test_several_events_in_one_period_are_each_rounded_once() -> None:
    item = monthly((date(2025, 4, 11), "2"), (date(2025, 4, 21), "4")).item("a")
    # 100.00
    # + (200 - 100) × 20 / 30 = 66.666... -> 66.67  (Apr 11..30)
    # + (400 - 200) × 10 / 30 = 66.666... -> 66.67  (Apr 21..30)
    # - 400 × 5 / 30          = 66.666... -> 66.67  (Apr 26..30 unused)
    assert due_in_period(item, APRIL, START, date(2025, 4, 25)) == D("166.67")


def test_change_after_service_ended_is_ignored() -> None:
    item = monthly((date(2025, 4, 25), "9")).item("a")
    # Service through Apr 20; the change on Apr 25 is never served.
    assert due_in_period(item, APRIL, START, date(2025, 4, 20)) == D("66.67")


def test_period_outside_service_owes_nothing() -> None:
    item = monthly().item("a")
    assert due_in_period(item, APRIL, START, date(2025, 3, 31)) == D("0")
    assert due_in_period(item, APRIL, date(2025, 5, 1), None) == D("0")


def test_item_added_mid_period() -> None:
    subscription = monthly().with_items(
        date(2025, 4, 16), [spec("a", per_unit("100.00")), spec("b", flat("45.00"))]
    )
    # b: 0 until Apr 15, then 45.00 × 15 / 30 = 22.50
    assert due_in_period(subscription.item("b"), APRIL, START, None) == D("22.50")
    assert due_in_period(subscription.item("a"), APRIL, START, None) == D("100.00")


def test_price_change_with_the_same_amount_owes_the_same() -> None:
    subscription = monthly().with_items(date(2025, 4, 10), [spec("a", per_unit("50.00"), "2")])
    assert len(subscription.item("a").versions) == 2
    assert due_in_period(subscription.item("a"), APRIL, START, None) == D("100.00")


def test_jpy_proration_rounds_half_up() -> None:
    subscription = subscribe(START, Frequency.MONTHLY, [spec("a", per_unit("1000", JPY))], cur=JPY)
    subscription = subscription.with_items(
        date(2025, 4, 16), [spec("a", per_unit("1000", JPY)), spec("b", per_unit("1001", JPY))]
    )
    # b: 1001 × 15 / 30 = 500.5 -> 501 JPY
    assert due_in_period(subscription.item("b"), APRIL, START, None) == D("501")
    # a cancelled from Apr 16: 1000 - 1000 × 15 / 30 = 500
    assert due_in_period(subscription.item("a"), APRIL, START, date(2025, 4, 15)) == D("500")


def test_due_once() -> None:
    setup = flat("250.00", kind=ChargeKind.ONE_TIME, code="SETUP")
    subscription = subscribe(START, Frequency.MONTHLY, []).with_items(
        START, [ItemSpec("setup", setup, D(1), service_date=date(2025, 4, 10))]
    )
    item = subscription.item("setup")
    assert item.charge_date == date(2025, 4, 10)
    assert due_once(item, START, None) == D("250.00")
    assert due_once(item, START, date(2025, 4, 10)) == D("250.00")
    assert due_once(item, START, date(2025, 4, 9)) == D("0")
    assert due_once(item, date(2025, 4, 11), None) == D("0")


def test_version_amount() -> None:
    item = monthly((date(2025, 4, 16), "3")).item("a")
    assert version_amount(None) == D("0")
    assert version_amount(item.versions[1]) == D("300.00")


def test_what_is_due_never_goes_below_zero() -> None:
    # 0.01 a unit: one unit from Mar 18 (14/31 of 0.01 → 0.00), a second from Mar 22 (10/31 of
    # 0.01 → 0.00), service ends Mar 22 (Mar 23–31 unused: 9/31 of 0.02 → 0.01): the events add up to
    # -0.01, but nothing is owed below zero.
    sms = per_unit("0.01", code="SMS")
    item = SubscriptionItem(
        "SMS",
        sms.product,
        ChargeKind.RECURRING,
        (
            ItemVersion(date(2026, 3, 18), sms, D(1)),
            ItemVersion(date(2026, 3, 22), sms, D(2)),
        ),
    )
    march = Period(date(2026, 3, 1), date(2026, 3, 31))
    assert due_in_period(item, march, date(2026, 3, 1), date(2026, 3, 22)) == D("0")
