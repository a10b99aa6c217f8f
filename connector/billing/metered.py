"""Metered prices: what a measured quantity costs, and the minimum commitment of a period.

A metered price belongs to a metric and a currency. Its model turns the billable quantity (the
quantity measured less the ``free_units``, never below 0) into an amount:

- ``per_unit``: ``unit_amount × quantity``;
- ``tiered`` (graduated): each unit priced by the tier it falls in, each tier reached adding
  its flat amount;
- ``volume``: every unit priced by the one tier the whole quantity falls in, plus its flat
  amount;
- ``package``: ``package_amount`` per block of ``package_size`` units, a started block counting
  in full (1,001 units at 1,000 a block are two blocks).

Tiers are the billing core's (:mod:`connector.billing.pricing`): ``1–10, 11–50, 51+``. Metered
quantities may have fractions (a time-weighted 10.5 GB): in graduated tiers the fraction falls
in the tier it reaches (10 units in ``1–10`` and 0.5 in ``11+``), and a volume quantity above
a tier's last unit is priced by the next tier.

Each group of a metric (a region) is priced on its own, with its own free units and tiers. A
``minimum`` is the least the metric bills in a period: when its charges add up to less, the
shortfall is a line of its own. For a part of a period (a subscription changed or ended), the
minimum is prorated by the part's share of the period's time. Amounts are exact until each line
is rounded, once, to the currency's minor unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from functools import lru_cache

from connector.billing.money import ZERO, Currency, Rounding, prorate, require_decimal, round_money
from connector.billing.pricing import Tier, validate_tiers
from connector.billing.usage import MICROSECOND, Aggregation, Metric
from connector.billing.usage_periods import Window
from connector.errors import InvalidInputError


class MeteredModel(StrEnum):
    PER_UNIT = "per_unit"
    TIERED = "tiered"
    VOLUME = "volume"
    PACKAGE = "package"


@dataclass(frozen=True, slots=True)
class MeteredPrice:
    metric: str
    currency: Currency
    model: MeteredModel
    unit_amount: Decimal | None = None
    tiers: tuple[Tier, ...] = ()
    package_size: int | None = None
    package_amount: Decimal | None = None
    free_units: Decimal = ZERO
    minimum: Decimal | None = None  # the least billed per period

    @property
    def label(self) -> str:
        return f"metered price of {self.metric} in {self.currency}"

    def __post_init__(self) -> None:
        where = self.label
        for name in ("unit_amount", "package_amount", "free_units", "minimum"):
            value = getattr(self, name)
            if value is not None:
                require_decimal(value, name.replace("_", " "))
                if value < 0:
                    raise InvalidInputError(f"{name} cannot be negative", where=where)
        wants = {
            MeteredModel.PER_UNIT: ("unit_amount",),
            MeteredModel.PACKAGE: ("package_size", "package_amount"),
        }.get(self.model, ())
        for name in wants:
            if getattr(self, name) is None:
                raise InvalidInputError(f"a {self.model} price needs {name}", where=where)
        if self.model is MeteredModel.PACKAGE and (self.package_size or 0) < 1:
            raise InvalidInputError("package_size must be a whole number above 0", where=where)
        if self.model in (MeteredModel.TIERED, MeteredModel.VOLUME):
            validate_tiers(self.tiers, where)
        elif self.tiers:
            raise InvalidInputError(f"a {self.model} price takes no tiers", where=where)

    def billable(self, quantity: Decimal) -> Decimal:
        """The quantity that is charged: less the free units, never below 0."""
        return max(ZERO, quantity - self.free_units)

    def amount_for(self, quantity: Decimal) -> Decimal:
        """The amount of a measured ``quantity``, at full precision (not rounded)."""
        if quantity < 0:
            raise InvalidInputError(f"quantity {quantity} is negative", where=self.label)
        units = self.billable(quantity)
        if units == 0:
            return ZERO
        if self.model is MeteredModel.PER_UNIT:
            return units * self.unit_amount  # type: ignore[operator]
        if self.model is MeteredModel.PACKAGE:
            blocks = (units / self.package_size).to_integral_value(ROUND_CEILING)  # type: ignore[operator]
            return blocks * self.package_amount  # type: ignore[operator]
        if self.model is MeteredModel.TIERED:
            total = ZERO
            for tier in self.tiers:
                inside = tier.units_of(units)
                if inside > 0:
                    total += inside * tier.unit_amount + tier.flat_amount
            return total
        for tier in self.tiers:
            if tier.last_unit is None or units <= tier.last_unit:
                return units * tier.unit_amount + tier.flat_amount
        raise AssertionError("validated tiers always end open-ended")  # pragma: no cover


@lru_cache(maxsize=4096)  # a billing run's lines share a few periods
def _span(window: Window) -> str:
    """A window as its lines show it (in UTC: equal windows read the same)."""
    start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
    return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True, slots=True)
class UsageCharge:
    """The usage of one group of a metric in a window, priced."""

    metric: str
    name: str
    aggregation: Aggregation
    group: str
    window: Window
    quantity: Decimal  # as measured
    billable: Decimal  # less the free units
    amount: Decimal  # rounded

    @property
    def description(self) -> str:
        group = f" [{self.group}]" if self.group else ""
        return f"{self.name}{group} ({self.aggregation}) × {self.quantity:f}, {_span(self.window)}"


@dataclass(frozen=True, slots=True)
class Shortfall:
    """What a metric's charges of a window miss of its (prorated) minimum commitment."""

    metric: str
    name: str
    window: Window
    minimum: Decimal  # rounded, prorated for a part of a period
    charged: Decimal
    amount: Decimal

    @property
    def description(self) -> str:
        return (
            f"{self.name}: minimum commitment {self.minimum:f}, {self.charged:f} used, "
            f"{_span(self.window)}"
        )


@dataclass(frozen=True, slots=True)
class PricedUsage:
    charges: tuple[UsageCharge, ...]
    shortfall: Shortfall | None

    @property
    def total(self) -> Decimal:
        shortfall = self.shortfall.amount if self.shortfall is not None else ZERO
        return sum((charge.amount for charge in self.charges), ZERO) + shortfall


def price_usage(
    metric: Metric,
    price: MeteredPrice,
    quantities: Mapping[str, Decimal],
    window: Window,
    period: Window,
    *,
    rounding: Rounding = Rounding.HALF_UP,
) -> PricedUsage:
    """The charges of a metric's quantities by group (:func:`~connector.billing.usage.measure`)
    in ``window``, a part of ``period`` or the whole of it, and the shortfall of its minimum."""
    if price.metric != metric.code:
        raise InvalidInputError(f"the price is for {price.metric}, not {metric.code}")
    charges = tuple(
        UsageCharge(
            metric.code,
            metric.label,
            metric.aggregation,
            group,
            window,
            quantity,
            price.billable(quantity),
            round_money(price.amount_for(quantity), price.currency, rounding),
        )
        for group, quantity in sorted(quantities.items())
    )
    shortfall = None
    if price.minimum is not None:
        share = (window.end - window.start) // MICROSECOND
        whole = (period.end - period.start) // MICROSECOND
        minimum = prorate(price.minimum, share, whole, price.currency, rounding)
        charged = sum((charge.amount for charge in charges), ZERO)
        if charged < minimum:
            shortfall = Shortfall(
                metric.code, metric.label, window, minimum, charged, minimum - charged
            )
    return PricedUsage(charges, shortfall)
