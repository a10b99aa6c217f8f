"""Metered prices: every model at its boundaries, free units, packages and minimums."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connector.billing.metered import MeteredModel, MeteredPrice, price_usage
from connector.billing.money import Rounding, currency
from connector.billing.pricing import Tier
from connector.billing.usage import Aggregation, Metric
from connector.billing.usage_periods import Window
from connector.errors import InvalidInputError

D = Decimal
USD, JPY = currency("USD"), currency("JPY")
APRIL = Window(datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
METRIC = Metric("units", Aggregation.SUM, "n", group_by="region", name="Units")
GRADUATED = (
    Tier(1, 1000, D("0.09")),
    Tier(1001, 10000, D("0.07")),
    Tier(10001, None, D("0.05")),
)


def amount(price: MeteredPrice, quantity: str, rounding: Rounding = Rounding.HALF_UP) -> Decimal:
    priced = price_usage(METRIC, price, {"": D(quantity)}, APRIL, APRIL, rounding=rounding)
    return priced.charges[0].amount


def test_per_unit_multiplies_and_rounds_once() -> None:
    price = MeteredPrice("units", USD, MeteredModel.PER_UNIT, unit_amount=D("0.10"))

    assert amount(price, "123.456") == D("12.35")
    assert amount(price, "0") == D("0.00")
    tiny = MeteredPrice("units", USD, MeteredModel.PER_UNIT, unit_amount=D("0.005"))
    assert amount(tiny, "1") == D("0.01")
    assert amount(tiny, "1", Rounding.HALF_EVEN) == D("0.00")
    assert amount(tiny, "3", Rounding.HALF_EVEN) == D("0.02")  # 0.015, rounded once


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("1", "0.09"),
        ("1000", "90.00"),
        ("1001", "90.07"),
        ("1000.5", "90.04"),  # 90 + 0.5 × 0.07 = 90.035
        ("10000", "720.00"),  # 90 + 9,000 × 0.07
        ("10001", "720.05"),
        ("25000", "1470.00"),  # 720 + 15,000 × 0.05
    ],
)
def test_graduated_tiers_price_each_unit_in_its_tier(quantity: str, expected: str) -> None:
    price = MeteredPrice("units", USD, MeteredModel.TIERED, tiers=GRADUATED)

    assert amount(price, quantity) == D(expected)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("1", "62.00"), ("10", "170.00"), ("10.5", "155.00"), ("11", "160.00"), ("50", "550.00")],
)
def test_volume_prices_every_unit_at_the_tier_the_whole_falls_in(quantity, expected) -> None:
    tiers = (Tier(1, 10, D(12), D(50)), Tier(11, None, D(10), D(50)))
    price = MeteredPrice("units", USD, MeteredModel.VOLUME, tiers=tiers)

    assert amount(price, quantity) == D(expected)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0", "0.00"),
        ("10000", "0.00"),  # all free
        ("10001", "0.50"),  # a started block counts in full
        ("11000", "0.50"),
        ("11000.01", "1.00"),
        ("11001", "1.00"),
        ("20000", "5.00"),
    ],
)
def test_packages_count_started_blocks_after_the_free_units(quantity, expected) -> None:
    price = MeteredPrice(
        "units",
        USD,
        MeteredModel.PACKAGE,
        package_size=1000,
        package_amount=D("0.50"),
        free_units=D(10000),
    )

    assert amount(price, quantity) == D(expected)


def test_free_units_come_off_before_tiers_and_never_go_below_zero() -> None:
    price = MeteredPrice("units", USD, MeteredModel.TIERED, tiers=GRADUATED, free_units=D(500))
    priced = price_usage(METRIC, price, {"": D(1600)}, APRIL, APRIL)

    assert (priced.charges[0].quantity, priced.charges[0].billable) == (D(1600), D(1100))
    assert priced.charges[0].amount == D("97.00")  # 1,000 × 0.09 + 100 × 0.07
    assert amount(price, "499.5") == D("0.00")


def test_each_group_is_priced_on_its_own() -> None:
    price = MeteredPrice("units", USD, MeteredModel.TIERED, tiers=GRADUATED, free_units=D(100))
    priced = price_usage(METRIC, price, {"us": D(1200), "eu": D(50)}, APRIL, APRIL)

    assert [(c.group, c.billable, c.amount) for c in priced.charges] == [
        ("eu", D(0), D("0.00")),
        ("us", D(1100), D("97.00")),
    ]
    assert (
        priced.charges[1].description
        == "Units [us] (sum) × 1200, 2026-04-01 00:00 – 2026-05-01 00:00 UTC"
    )
    assert priced.total == D("97.00")


def test_a_minimum_commitment_bills_its_shortfall_as_a_line_of_its_own() -> None:
    tiers = (Tier(1, 10, D(12)), Tier(11, None, D(10)))
    price = MeteredPrice("units", USD, MeteredModel.VOLUME, tiers=tiers, minimum=D(60))

    short = price_usage(METRIC, price, {"": D(3)}, APRIL, APRIL)
    assert [c.amount for c in short.charges] == [D("36.00")]
    assert short.shortfall is not None
    assert (short.shortfall.minimum, short.shortfall.charged, short.shortfall.amount) == (
        D("60.00"),
        D("36.00"),
        D("24.00"),
    )
    assert short.total == D("60.00")
    assert short.shortfall.description.startswith("Units: minimum commitment 60.00, 36.00 used")
    assert price_usage(METRIC, price, {"": D(6)}, APRIL, APRIL).shortfall is None  # 72 ≥ 60
    assert price_usage(METRIC, price, {"": D(5)}, APRIL, APRIL).shortfall is None  # exactly 60
    nothing = price_usage(METRIC, price, {}, APRIL, APRIL)
    assert (nothing.charges, nothing.total) == ((), D("60.00"))


def test_the_minimum_of_a_part_of_the_period_is_prorated_by_its_time() -> None:
    price = MeteredPrice("units", JPY, MeteredModel.PER_UNIT, unit_amount=D(1), minimum=D(10000))
    first = Window(APRIL.start, datetime(2026, 4, 11, tzinfo=UTC))  # 10 of 30 days

    priced = price_usage(METRIC, price, {"": D(1000)}, first, APRIL)
    assert priced.shortfall is not None
    assert (priced.shortfall.minimum, priced.shortfall.amount) == (D(3333), D(2333))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": MeteredModel.PER_UNIT}, "a per_unit price needs unit_amount"),
        ({"model": MeteredModel.PACKAGE, "package_amount": D(1)}, "needs package_size"),
        (
            {"model": MeteredModel.PACKAGE, "package_amount": D(1), "package_size": 0},
            "package_size must be a whole number above 0",
        ),
        ({"model": MeteredModel.TIERED}, "needs at least one tier"),
        (
            {"model": MeteredModel.TIERED, "tiers": (Tier(1, 10, D(1)), Tier(12, None, D(1)))},
            "gap in tiers: units 11-11 are not priced",
        ),
        (
            {"model": MeteredModel.PER_UNIT, "unit_amount": D(1), "free_units": D(-1)},
            "free_units cannot be negative",
        ),
        (
            {"model": MeteredModel.PER_UNIT, "unit_amount": D(1), "tiers": GRADUATED},
            "a per_unit price takes no tiers",
        ),
        ({"model": MeteredModel.PER_UNIT, "unit_amount": 0.1}, "must be a Decimal, not float"),
    ],
)
def test_a_metered_price_is_checked_when_it_is_made(changes: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        MeteredPrice("units", USD, **changes)


def test_a_price_prices_its_own_metric_only() -> None:
    price = MeteredPrice("other", USD, MeteredModel.PER_UNIT, unit_amount=D(1))

    with pytest.raises(InvalidInputError, match="the price is for other, not units"):
        price_usage(METRIC, price, {"": D(1)}, APRIL, APRIL)
