"""Pricing models and tier validation."""

from decimal import Decimal

import pytest

from connector.billing.pricing import ChargeKind, Price, PricingModel, Product, Tier
from connector.errors import InvalidInputError

from .helpers import USD, flat, per_unit, product, tiered

D = Decimal

# 1-10 at 10.00; 11-50 at 8.00 plus 5.00 once reached; 51+ at 6.00 plus 20.00 once reached.
TIERS = (
    Tier(1, 10, D("10.00")),
    Tier(11, 50, D("8.00"), D("5.00")),
    Tier(51, None, D("6.00"), D("20.00")),
)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0", "0"),
        ("1", "10.00"),
        ("10", "100.00"),  # 10 × 10
        ("11", "113.00"),  # 100 + 1 × 8 + 5
        ("50", "425.00"),  # 100 + 40 × 8 + 5
        ("51", "451.00"),  # 425 + 1 × 6 + 20
        ("60", "505.00"),  # 100 + 320 + 5 + 10 × 6 + 20
    ],
)
def test_tiered_graduated_crossing_tiers(quantity: str, expected: str) -> None:
    assert tiered(TIERS).amount_for(D(quantity)) == D(expected)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0", "0"),
        ("10", "100.00"),  # 10 × 10, no flat amount in tier 1
        ("11", "93.00"),  # all 11 units at 8 + 5
        ("50", "405.00"),  # 50 × 8 + 5
        ("60", "380.00"),  # all 60 units at 6 + 20
    ],
)
def test_volume_prices_every_unit_at_one_tier(quantity: str, expected: str) -> None:
    assert tiered(TIERS, PricingModel.VOLUME).amount_for(D(quantity)) == D(expected)


def test_tiered_with_a_flat_first_tier() -> None:
    # A platform fee of 49.00 for the first 5 seats, then 9.50 a seat.
    price = tiered((Tier(1, 5, D("0"), D("49.00")), Tier(6, None, D("9.50"))))
    assert price.amount_for(D("3")) == D("49.00")
    assert price.amount_for(D("5")) == D("49.00")
    assert price.amount_for(D("8")) == D("77.50")  # 49 + 3 × 9.50


def test_per_unit_keeps_full_precision() -> None:
    price = per_unit("0.0125")
    # 0.0125 × 2.5 = 0.03125: not rounded here (rounding happens once, when billed).
    assert price.amount_for(D("2.5")) == D("0.03125")
    assert price.amount_for(D("0")) == D("0")


def test_flat_ignores_quantity_but_not_zero() -> None:
    price = flat("49.00")
    assert price.amount_for(D("1")) == D("49.00")
    assert price.amount_for(D("7")) == D("49.00")
    assert price.amount_for(D("0")) == D("0")


@pytest.mark.parametrize(
    "price",
    [per_unit("10"), flat("10"), tiered(TIERS), tiered(TIERS, PricingModel.VOLUME)],
    ids=["per_unit", "flat", "tiered", "volume"],
)
def test_negative_quantity_is_refused(price: Price) -> None:
    with pytest.raises(InvalidInputError, match="quantity -1 is negative"):
        price.amount_for(D("-1"))


@pytest.mark.parametrize("model", [PricingModel.TIERED, PricingModel.VOLUME])
def test_tiered_and_volume_need_whole_quantities(model: PricingModel) -> None:
    price = tiered(TIERS, model)
    with pytest.raises(InvalidInputError, match="whole number"):
        price.amount_for(D("2.5"))
    # 3.0 is a whole number.
    assert price.amount_for(D("3.0")) == D("30.00")


def test_tier_table_with_a_gap_is_refused_naming_the_tier() -> None:
    tiers = (Tier(1, 10, D(1)), Tier(12, 50, D(1)), Tier(51, None, D(1)))
    with pytest.raises(InvalidInputError, match="gap in tiers: units 11-11") as info:
        tiered(tiers)
    assert info.value.where == "price of PRO in USD: tier 2 (12-50)"


def test_tier_table_with_an_overlap_is_refused_naming_the_tier() -> None:
    tiers = (Tier(1, 10, D(1)), Tier(11, 50, D(1)), Tier(40, None, D(1)))
    with pytest.raises(InvalidInputError, match="tiers overlap") as info:
        tiered(tiers)
    assert info.value.where == "price of PRO in USD: tier 3 (40+)"


def test_tier_table_not_starting_at_one_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="must start at unit 1, not 0") as info:
        tiered((Tier(0, 10, D(1)), Tier(11, None, D(1))))
    assert info.value.where == "price of PRO in USD: tier 1 (0-10)"


def test_tier_table_with_a_closed_last_tier_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="last tier ends at 50"):
        tiered((Tier(1, 10, D(1)), Tier(11, 50, D(1))), PricingModel.VOLUME)


def test_only_the_last_tier_may_be_open_ended() -> None:
    with pytest.raises(InvalidInputError, match="only the last tier may be open-ended") as info:
        tiered((Tier(1, None, D(1)), Tier(11, None, D(1))))
    assert info.value.where == "price of PRO in USD: tier 2 (11+)"


def test_tier_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="tier ends before it starts"):
        tiered((Tier(1, 10, D(1)), Tier(11, 5, D(1)), Tier(6, None, D(1))))


def test_negative_tier_amount_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="cannot be negative"):
        tiered((Tier(1, None, D("-1")),))


def test_empty_tier_table_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="at least one tier"):
        tiered(())


def test_price_needs_its_amount() -> None:
    pro = product()
    with pytest.raises(InvalidInputError, match="needs a unit amount"):
        Price(pro, USD, ChargeKind.RECURRING, PricingModel.PER_UNIT)
    with pytest.raises(InvalidInputError, match="needs a flat amount"):
        Price(pro, USD, ChargeKind.RECURRING, PricingModel.FLAT)
    with pytest.raises(InvalidInputError, match="cannot be negative"):
        Price(pro, USD, ChargeKind.RECURRING, PricingModel.PER_UNIT, unit_amount=D("-1"))
    with pytest.raises(InvalidInputError, match="cannot be negative"):
        Price(pro, USD, ChargeKind.RECURRING, PricingModel.FLAT, flat_amount=D("-0.01"))
    with pytest.raises(InvalidInputError, match="takes no tiers"):
        Price(
            pro,
            USD,
            ChargeKind.RECURRING,
            PricingModel.PER_UNIT,
            unit_amount=D(1),
            tiers=(Tier(1, None),),
        )


def test_product_needs_code_and_name() -> None:
    with pytest.raises(InvalidInputError, match="needs a code"):
        Product(" ", "Pro")
    with pytest.raises(InvalidInputError, match="needs a name"):
        Product("PRO", "")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Recurring", ChargeKind.RECURRING),
        ("One-Time", ChargeKind.ONE_TIME),
        ("one time", ChargeKind.ONE_TIME),
    ],
)
def test_charge_kind_parse(text: str, kind: ChargeKind) -> None:
    assert ChargeKind.parse(text) is kind


def test_unknown_charge_kind_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown billing type"):
        ChargeKind.parse("usage")


def test_tier_units_and_description() -> None:
    assert Tier(11, 50).units_of(D("60")) == D("40")
    assert Tier(11, 50).units_of(D("5")) == D("0")
    assert Tier(51, None).units_of(D("60")) == D("10")
    assert Tier(11, 50).describe() == "11-50"
    assert Tier(51, None).describe() == "51+"


@pytest.mark.parametrize(
    "build",
    [
        lambda: Price(
            product(), USD, ChargeKind.RECURRING, PricingModel.PER_UNIT, unit_amount=9.99
        ),
        lambda: Price(product(), USD, ChargeKind.RECURRING, PricingModel.FLAT, flat_amount=49.9),
        lambda: tiered((Tier(1, None, 1.5),)),
    ],
    ids=["unit_amount", "flat_amount", "tier_unit_amount"],
)
def test_float_amounts_are_refused(build) -> None:
    with pytest.raises(InvalidInputError):
        build()
