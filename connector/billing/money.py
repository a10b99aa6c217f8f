"""Money: exact decimal amounts rounded to each currency's minor unit (ISO 4217).

Amounts are :class:`~decimal.Decimal`, never ``float``. Intermediate results (a unit price of
0.0125, a prorated fraction) keep full precision; an amount that is billed is rounded once, to the
currency's minor unit, with an explicit rounding mode.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from functools import cache

from iso4217 import Currency as _Iso4217

from connector.errors import InvalidInputError

ZERO = Decimal(0)
HUNDRED = Decimal(100)


class Rounding(StrEnum):
    """Rounding modes offered for billed amounts. All are symmetric around zero, so a charge
    and its exact reversal round to opposite amounts and always net to zero."""

    HALF_UP = "half_up"  # 0.005 -> 0.01, -0.005 -> -0.01 (away from zero on a tie)
    HALF_EVEN = "half_even"  # banker's rounding: 0.005 -> 0.00, 0.015 -> 0.02
    HALF_DOWN = "half_down"  # 0.005 -> 0.00

    @property
    def decimal_mode(self) -> str:
        return _DECIMAL_MODES[self]


_DECIMAL_MODES = {
    Rounding.HALF_UP: decimal.ROUND_HALF_UP,
    Rounding.HALF_EVEN: decimal.ROUND_HALF_EVEN,
    Rounding.HALF_DOWN: decimal.ROUND_HALF_DOWN,
}


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency with its number of minor-unit digits (JPY 0, USD 2, BHD 3)."""

    code: str
    exponent: int
    quantum: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "quantum", Decimal(1).scaleb(-self.exponent))

    def __str__(self) -> str:
        return self.code


@cache
def currency(code: str) -> Currency:
    """The currency for an ISO 4217 code; an unknown code or one without minor units (such as
    the gold unit XAU) is refused."""
    if not isinstance(code, str) or len(code.strip()) != 3:
        raise InvalidInputError(f"{code!r} is not a three-letter ISO 4217 currency code")
    normalized = code.strip().upper()
    try:
        iso = _Iso4217(normalized)
    except ValueError:
        raise InvalidInputError(f"unknown currency {normalized!r} (not in ISO 4217)") from None
    if iso.exponent is None:
        raise InvalidInputError(f"currency {normalized!r} has no minor unit and cannot be billed")
    return Currency(normalized, iso.exponent)


class Totals(dict[str, Decimal]):
    """Amounts per currency code, summed, never converted."""

    def add(self, code: str, amount: Decimal) -> None:
        self[code] = self.get(code, ZERO) + amount

    def merge(self, other: dict[str, Decimal]) -> None:
        for code, amount in other.items():
            self.add(code, amount)


def to_decimal(value: object, *, what: str = "amount") -> Decimal:
    """Parse an exact decimal from a ``Decimal``, ``int`` or decimal string. Floats are refused:
    they cannot hold most decimal amounts exactly."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{what} must be a number, not {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise InvalidInputError(f"{what} {value!r} is not a decimal number") from None
    elif isinstance(value, float):
        raise InvalidInputError(f"{what} {value!r} is a float; give it as a decimal string")
    else:
        raise InvalidInputError(f"{what} must be a decimal number, not {type(value).__name__}")
    if not result.is_finite():
        raise InvalidInputError(f"{what} {value!r} is not a finite number")
    return result


def require_decimal(value: object, what: str) -> None:
    """Refuse anything but a ``Decimal`` (floats above all) where the core keeps an amount."""
    if type(value) is not Decimal:
        raise InvalidInputError(f"{what} must be a Decimal, not {type(value).__name__} {value!r}")


def round_money(
    amount: Decimal, currency: Currency, rounding: Rounding = Rounding.HALF_UP
) -> Decimal:
    """Round to the currency's minor unit. Zero is always returned without a sign."""
    try:
        result = amount.quantize(currency.quantum, rounding=rounding.decimal_mode)
    except decimal.InvalidOperation:
        raise InvalidInputError(f"amount {amount} is too large to bill in {currency}") from None
    return result.copy_abs() if result.is_zero() else result


def prorate(
    amount: Decimal,
    days: int,
    period_days: int,
    currency: Currency,
    rounding: Rounding = Rounding.HALF_UP,
) -> Decimal:
    """``amount × days / period_days``, rounded once to the currency's minor unit."""
    if days == period_days:
        return round_money(amount, currency, rounding)
    return round_money(amount * days / period_days, currency, rounding)


def percent_of(
    amount: Decimal, percent: Decimal, currency: Currency, rounding: Rounding = Rounding.HALF_UP
) -> Decimal:
    """``amount × percent / 100``, rounded to the currency's minor unit."""
    return round_money(amount * percent / HUNDRED, currency, rounding)


def split_proportionally(
    total: Decimal, weights: Sequence[Decimal], currency: Currency
) -> list[Decimal]:
    """Split ``total`` over ``weights`` in minor units, proportionally, with the units that
    rounding leaves over going to the largest remainders (ties: the first): the parts always
    add up to ``total`` exactly. Zero weights everywhere put it all on the first part."""
    if not weights:
        return []
    units = int((total / currency.quantum).to_integral_value())
    whole = sum(weights, Decimal(0))
    if whole == 0:
        return [total] + [Decimal(0) * currency.quantum] * (len(weights) - 1)
    exact = [Decimal(units) * weight / whole for weight in weights]
    parts = [int(share.to_integral_value(rounding=decimal.ROUND_FLOOR)) for share in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[: units - sum(parts)]:
        parts[i] += 1
    return [Decimal(part) * currency.quantum for part in parts]
