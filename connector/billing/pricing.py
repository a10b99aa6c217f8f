"""Products and prices.

A price belongs to a product and a currency and is either recurring (an amount per billing
period, whatever the subscription's frequency) or one-time. Its pricing model turns a quantity
into an amount:

- ``flat``: one fixed amount per period, whatever the quantity (nothing when the quantity is 0);
- ``per_unit``: ``unit_amount × quantity`` (fractional quantities allowed);
- ``tiered`` (graduated): each unit is priced by the tier it falls in, and each tier that is
  reached adds its flat amount;
- ``volume``: every unit is priced by the one tier the whole quantity falls in, plus that
  tier's flat amount.

Tiers count whole units from 1: ``1–10, 11–50, 51+``. Each tier starts right after the previous
one ends and the last is open-ended; a gap, an overlap or a closed last tier is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from connector.billing.money import ZERO, Currency, require_decimal
from connector.errors import InvalidInputError

if TYPE_CHECKING:
    from connector.billing.metered import MeteredPrice


class PricingModel(StrEnum):
    FLAT = "flat"
    PER_UNIT = "per_unit"
    TIERED = "tiered"
    VOLUME = "volume"
    PACKAGE = "package"  # metered prices only


class ChargeKind(StrEnum):
    RECURRING = "recurring"
    ONE_TIME = "one_time"
    METERED = "metered"  # usage of a metric, billed in arrears

    @classmethod
    def parse(cls, value: str) -> ChargeKind:
        key = str(value).strip().lower().replace("-", "_").replace(" ", "_")
        try:
            return cls(key)
        except ValueError:
            raise InvalidInputError(
                f"unknown billing type {value!r} (expected Recurring, One-Time or Metered)"
            ) from None


@dataclass(frozen=True, slots=True)
class Product:
    code: str
    name: str
    family: str | None = None
    tax_code: str | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        if not self.code or not self.code.strip():
            raise InvalidInputError("a product needs a code", where=f"product {self.name!r}")
        if not self.name or not self.name.strip():
            raise InvalidInputError("a product needs a name", where=f"product {self.code}")


@dataclass(frozen=True, slots=True)
class Tier:
    """Units ``first_unit`` through ``last_unit`` (inclusive; ``None`` = no upper bound)."""

    first_unit: int
    last_unit: int | None
    unit_amount: Decimal = ZERO
    flat_amount: Decimal = ZERO

    def __post_init__(self) -> None:
        require_decimal(self.unit_amount, "tier unit amount")
        require_decimal(self.flat_amount, "tier flat amount")

    def units_of(self, quantity: Decimal) -> Decimal:
        """How many of ``quantity`` units fall in this tier."""
        top = quantity if self.last_unit is None else min(quantity, Decimal(self.last_unit))
        return max(ZERO, top - self.first_unit + 1)

    def describe(self) -> str:
        upper = "" if self.last_unit is None else str(self.last_unit)
        return f"{self.first_unit}-{upper}" if upper else f"{self.first_unit}+"


def validate_tiers(tiers: Sequence[Tier], where: str) -> None:
    if not tiers:
        raise InvalidInputError("a tiered or volume price needs at least one tier", where=where)
    for number, tier in enumerate(tiers, start=1):
        label = f"{where}: tier {number} ({tier.describe()})"
        if tier.unit_amount < 0 or tier.flat_amount < 0:
            raise InvalidInputError("tier amounts cannot be negative", where=label)
        if tier.last_unit is not None and tier.last_unit < tier.first_unit:
            raise InvalidInputError("tier ends before it starts", where=label)
        if number == 1:
            if tier.first_unit != 1:
                raise InvalidInputError(
                    f"the first tier must start at unit 1, not {tier.first_unit}", where=label
                )
            continue
        previous = tiers[number - 2]
        if previous.last_unit is None:
            raise InvalidInputError(
                f"only the last tier may be open-ended, but tier {number - 1} is", where=label
            )
        expected = previous.last_unit + 1
        if tier.first_unit > expected:
            raise InvalidInputError(
                f"gap in tiers: units {expected}-{tier.first_unit - 1} are not priced",
                where=label,
            )
        if tier.first_unit < expected:
            raise InvalidInputError(
                f"tiers overlap: tier starts at {tier.first_unit} but tier {number - 1} "
                f"ends at {previous.last_unit}",
                where=label,
            )
    if tiers[-1].last_unit is not None:
        raise InvalidInputError(
            f"the last tier ends at {tiers[-1].last_unit}: it must be open-ended so that every "
            "quantity has a price",
            where=where,
        )


@dataclass(frozen=True, slots=True)
class Price:
    product: Product
    currency: Currency
    kind: ChargeKind
    model: PricingModel
    unit_amount: Decimal | None = None
    flat_amount: Decimal | None = None
    tiers: tuple[Tier, ...] = field(default_factory=tuple)
    id: int | None = None
    metered: MeteredPrice | None = None  # the terms of a metered price

    @classmethod
    def of_usage(cls, product: Product, metered: MeteredPrice, id: int | None = None) -> Price:
        """The metered price of ``product`` with the terms ``metered``."""
        return cls(
            product,
            metered.currency,
            ChargeKind.METERED,
            PricingModel(metered.model.value),
            metered.unit_amount,
            None,
            metered.tiers,
            id,
            metered,
        )

    @property
    def label(self) -> str:
        ref = f"price {self.id}" if self.id is not None else "price"
        return f"{ref} of {self.product.code} in {self.currency}"

    def __post_init__(self) -> None:
        where = self.label
        if self.kind is ChargeKind.METERED or self.metered is not None:
            self._check_metered(where)
            return
        if self.model is PricingModel.PACKAGE:
            raise InvalidInputError("package pricing is for metered prices only", where=where)
        for name in ("unit_amount", "flat_amount"):
            value = getattr(self, name)
            if value is not None and type(value) is not Decimal:
                raise InvalidInputError(
                    f"{name} must be a Decimal, not {type(value).__name__} {value!r}", where=where
                )
        if self.model is PricingModel.PER_UNIT:
            if self.unit_amount is None:
                raise InvalidInputError("a per-unit price needs a unit amount", where=where)
            if self.unit_amount < 0:
                raise InvalidInputError("the unit amount cannot be negative", where=where)
        elif self.model is PricingModel.FLAT:
            if self.flat_amount is None:
                raise InvalidInputError("a flat price needs a flat amount", where=where)
            if self.flat_amount < 0:
                raise InvalidInputError("the flat amount cannot be negative", where=where)
        else:
            validate_tiers(self.tiers, where)
        if self.model not in (PricingModel.TIERED, PricingModel.VOLUME) and self.tiers:
            raise InvalidInputError(f"a {self.model} price takes no tiers", where=where)

    def _check_metered(self, where: str) -> None:
        metered = self.metered
        if metered is None or self.kind is not ChargeKind.METERED:
            raise InvalidInputError(
                "a metered price needs its metric and terms, and only it has them", where=where
            )
        if (
            metered.currency != self.currency
            or metered.model.value != self.model.value
            or metered.unit_amount != self.unit_amount
            or metered.tiers != self.tiers
            or self.flat_amount is not None
        ):
            raise InvalidInputError("the price's terms differ from its metered terms", where=where)

    def amount_for(self, quantity: Decimal) -> Decimal:
        """The undiscounted amount for ``quantity`` units, at full precision (not rounded)."""
        if self.kind is ChargeKind.METERED:
            raise InvalidInputError(
                "a metered price is priced on usage, not on a quantity", where=self.label
            )
        if quantity < 0:
            raise InvalidInputError(f"quantity {quantity} is negative", where=self.label)
        if self.model is PricingModel.PER_UNIT:
            return self.unit_amount * quantity  # type: ignore[operator]
        if self.model is PricingModel.FLAT:
            return self.flat_amount if quantity > 0 else ZERO  # type: ignore[return-value]
        if quantity != quantity.to_integral_value():
            raise InvalidInputError(
                f"quantity {quantity} must be a whole number for {self.model} pricing",
                where=self.label,
            )
        if quantity == 0:
            return ZERO
        if self.model is PricingModel.TIERED:
            total = ZERO
            for tier in self.tiers:
                units = tier.units_of(quantity)
                if units > 0:
                    total += units * tier.unit_amount + tier.flat_amount
            return total
        for tier in self.tiers:
            if tier.last_unit is None or quantity <= tier.last_unit:
                return quantity * tier.unit_amount + tier.flat_amount
        raise AssertionError("validated tiers always end open-ended")  # pragma: no cover
