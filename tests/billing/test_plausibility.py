"""Implausible dates and amounts: the exact problems found, at the limits and one step past."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from connector.billing.plausibility import (
    DatedItem,
    Limits,
    PricedItem,
    Problem,
    period_amount,
    problems,
    reason,
)
from connector.billing.pricing import ChargeKind, Price, PricingModel, Tier
from connector.billing.subscriptions import ItemSpec
from tests.billing.helpers import JPY, USD, product

D = Decimal
AS_OF = date(2026, 6, 30)
LIMITS = Limits(
    max_backdate_days=365,
    max_amount={"default": D(1_000_000), "JPY": D(150_000_000)},
    open_date=date(2000, 1, 1),
    open_date_source="mappings/accounting.yaml",
)


def seats(
    quantity: str, unit: str = "50.00", *, money=USD, discount: str = "0", one_time=False
) -> ItemSpec:
    kind = ChargeKind.ONE_TIME if one_time else ChargeKind.RECURRING
    price = Price(product(), money, kind, PricingModel.PER_UNIT, unit_amount=D(unit))
    return ItemSpec("PRO", price, D(quantity), D(discount))


def found(*dates: DatedItem, items: tuple[PricedItem, ...] = (), frequency="monthly"):
    return problems(dates, items, frequency=frequency, as_of=AS_OF, limits=LIMITS)


def test_a_service_start_in_1900_is_before_the_books_open_and_too_far_back() -> None:
    assert found(DatedItem("service start", date(1900, 1, 1))) == [
        Problem(
            "service start 1900-01-01 is before the books open on 2000-01-01 "
            "(open_date in mappings/accounting.yaml)",
            approvable=False,
        ),
        Problem(
            "service start 1900-01-01 is 46,201 days before 2026-06-30, more than "
            "billing.max_backdate_days (365)",
            approvable=True,
        ),
    ]


@pytest.mark.parametrize(
    ("day", "held"),
    [
        (date(2025, 6, 30), False),  # exactly 365 days back
        (date(2025, 6, 29), True),  # 366
        (date(2026, 12, 31), False),  # in the future
    ],
)
def test_the_backdate_limit_is_inclusive(day: date, held: bool) -> None:
    assert bool(found(DatedItem("service start", day))) is held


def test_the_open_date_itself_is_allowed_the_day_before_is_not() -> None:
    limits = Limits(10**4, {"default": D(1)}, date(2026, 1, 1))
    on_open = problems(
        [DatedItem("x", date(2026, 1, 1))], [], frequency="m", as_of=AS_OF, limits=limits
    )
    before = problems(
        [DatedItem("x", date(2025, 12, 31))], [], frequency="m", as_of=AS_OF, limits=limits
    )
    assert on_open == []
    assert before == [
        Problem(
            "x 2025-12-31 is before the books open on 2026-01-01 (open_date in the chart of "
            "accounts)",
            approvable=False,
        )
    ]


def test_a_quantity_of_1e15_bills_an_absurd_amount_a_month() -> None:
    item = PricedItem("line item 00k000000000001AAA (PRO)", seats("1E+15"), one_time=False)
    assert period_amount(item.spec) == D("50000000000000000.00")
    assert found(items=(item,)) == [
        Problem(
            "line item 00k000000000001AAA (PRO) bills 50,000,000,000,000,000.00 USD a monthly "
            "period, more than billing.max_amount (default: 1,000,000.00)",
            approvable=True,
        )
    ]


def test_the_ceiling_is_per_item_per_billing_period_after_discount() -> None:
    at_ceiling = PricedItem("a", seats("20000", "50.00"), False)  # 1,000,000.00
    over = PricedItem("b", seats("20000", "50.01"), False)  # 1,000,200.00
    discounted = PricedItem("c", seats("20000", "60.00", discount="20"), False)  # 960,000.00
    assert found(items=(at_ceiling, discounted)) == []
    assert [p.text for p in found(items=(over,), frequency="semi_annual")] == [
        "b bills 1,000,200.00 USD a semi-annual period, more than billing.max_amount "
        "(default: 1,000,000.00)"
    ]


def test_a_currency_has_its_own_ceiling_and_a_one_time_item_bills_once() -> None:
    yen = PricedItem("setup", seats("1", "150000001", money=JPY, one_time=True), True)
    fine = PricedItem("seats", seats("3000", "50000", money=JPY), False)  # 150,000,000
    assert [p.text for p in found(items=(yen, fine))] == [
        "setup bills 150,000,001 JPY once, more than billing.max_amount (JPY: 150,000,000)"
    ]


def test_a_tiered_price_is_judged_by_what_it_bills() -> None:
    tiers = (Tier(1, 10, D("100000.00")), Tier(11, None, D("1.00")))
    price = Price(product(), USD, ChargeKind.RECURRING, PricingModel.TIERED, tiers=tiers)
    spec = ItemSpec("PRO", price, D(1000))
    assert period_amount(spec) == D("1000990.00")  # 10 × 100,000 + 990 × 1
    assert len(found(items=(PricedItem("tiered", spec, False),))) == 1


def test_the_reason_says_what_a_person_can_do() -> None:
    approvable = [Problem("a", True), Problem("b", True)]
    assert reason(approvable, approve="approve it with X", fix="fix it there") == (
        "held for review: a; b; approve it with X, or fix it there"
    )
    assert reason([Problem("a", True), Problem("c", False)], approve="X", fix="fix it") == (
        "held: a; c; fix it (nothing may be dated before the books open)"
    )
