"""Money: currencies, exact decimals, rounding to the minor unit."""

from decimal import Decimal

import pytest

from connector.billing.money import (
    Rounding,
    currency,
    percent_of,
    prorate,
    round_money,
    split_proportionally,
    to_decimal,
)
from connector.errors import InvalidInputError

D = Decimal


@pytest.mark.parametrize(
    ("code", "exponent", "quantum"),
    [
        ("JPY", 0, D("1")),
        ("USD", 2, D("0.01")),
        ("EUR", 2, D("0.01")),
        ("GBP", 2, D("0.01")),
        ("BHD", 3, D("0.001")),
    ],
)
def test_currency_minor_units(code: str, exponent: int, quantum: Decimal) -> None:
    cur = currency(code)
    assert cur.code == code
    assert cur.exponent == exponent
    assert cur.quantum == quantum
    assert str(cur) == code


def test_currency_code_is_normalized() -> None:
    assert currency(" usd ") == currency("USD")


@pytest.mark.parametrize("code", ["ABC", "XAU", "US", "DOLLAR", ""])
def test_unknown_or_unbillable_currency_is_refused(code: str) -> None:
    with pytest.raises(InvalidInputError):
        currency(code)


def test_unknown_currency_message_names_the_code() -> None:
    with pytest.raises(InvalidInputError, match="'ABC'"):
        currency("ABC")


def test_gold_has_no_minor_unit() -> None:
    with pytest.raises(InvalidInputError, match=r"XAU.*no minor unit"):
        currency("XAU")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (D("12.30"), D("12.30")),
        (7, D("7")),
        ("  19.99 ", D("19.99")),
        ("-0.005", D("-0.005")),
    ],
)
def test_to_decimal_accepts_exact_values(value: object, expected: Decimal) -> None:
    result = to_decimal(value)
    assert isinstance(result, Decimal)
    assert result == expected


@pytest.mark.parametrize("value", [0.1, 19.99, 1.0])
def test_floats_are_refused(value: float) -> None:
    with pytest.raises(InvalidInputError, match="float"):
        to_decimal(value, what="unit amount")


@pytest.mark.parametrize("value", [True, "abc", "NaN", "Infinity", None, [1]])
def test_non_numbers_are_refused(value: object) -> None:
    with pytest.raises(InvalidInputError):
        to_decimal(value)


@pytest.mark.parametrize(
    ("amount", "code", "expected"),
    [
        # JPY has no minor unit: 2.5 rounds half up to 3, 1234.49 down to 1234.
        ("2.5", "JPY", "3"),
        ("1234.49", "JPY", "1234"),
        ("-2.5", "JPY", "-3"),
        # USD / EUR / GBP: cents.
        ("0.005", "USD", "0.01"),
        ("-0.005", "USD", "-0.01"),
        ("10.004", "EUR", "10.00"),
        ("0.125", "GBP", "0.13"),
        # BHD: three decimals (fils).
        ("1.0005", "BHD", "1.001"),
        ("1.0004", "BHD", "1.000"),
    ],
)
def test_round_money_default_half_up(amount: str, code: str, expected: str) -> None:
    result = round_money(D(amount), currency(code))
    assert result == D(expected)
    assert str(result) == expected  # exactly the currency's number of decimals


@pytest.mark.parametrize(
    ("amount", "mode", "expected"),
    [
        ("0.005", Rounding.HALF_EVEN, "0.00"),
        ("0.015", Rounding.HALF_EVEN, "0.02"),
        ("0.005", Rounding.HALF_DOWN, "0.00"),
        ("0.0051", Rounding.HALF_DOWN, "0.01"),
        ("-0.015", Rounding.HALF_UP, "-0.02"),
    ],
)
def test_round_money_modes(amount: str, mode: Rounding, expected: str) -> None:
    assert round_money(D(amount), currency("USD"), mode) == D(expected)


def test_rounded_zero_has_no_sign() -> None:
    assert str(round_money(D("-0.004"), currency("USD"))) == "0.00"
    assert str(round_money(D("-0.4"), currency("JPY"))) == "0"


def test_prorate_jpy_rounds_half_up() -> None:
    # 1001 JPY × 15 / 30 = 500.5 -> 501 (half up), 1000 × 15 / 30 = 500 exactly.
    assert prorate(D("1001"), 15, 30, currency("JPY")) == D("501")
    assert prorate(D("1000"), 15, 30, currency("JPY")) == D("500")
    # Symmetric around zero: the reversal rounds to the opposite amount.
    assert prorate(D("-1001"), 15, 30, currency("JPY")) == D("-501")


def test_prorate_usd_rounds_once() -> None:
    # 100.00 × 16 / 31 = 51.6129... -> 51.61
    assert prorate(D("100.00"), 16, 31, currency("USD")) == D("51.61")
    # A whole period is the amount itself, rounded to the minor unit.
    assert prorate(D("99.999"), 31, 31, currency("USD")) == D("100.00")
    assert prorate(D("100.00"), 0, 31, currency("USD")) == D("0.00")


def test_prorate_bhd_three_decimals() -> None:
    # 10.000 BHD × 1 / 3 = 3.3333... -> 3.333
    assert prorate(D("10.000"), 1, 3, currency("BHD")) == D("3.333")


def test_percent_of() -> None:
    # 200.00 × 12.5 % = 25.00; 0.10 × 5 % = 0.005 -> 0.01 (half up); 1999 JPY × 15 % = 299.85 -> 300
    assert percent_of(D("200.00"), D("12.5"), currency("USD")) == D("25.00")
    assert percent_of(D("0.10"), D("5"), currency("USD")) == D("0.01")
    assert percent_of(D("1999"), D("15"), currency("JPY")) == D("300")
    assert percent_of(D("0.10"), D("5"), currency("USD"), Rounding.HALF_DOWN) == D("0.00")


def test_split_proportionally_adds_up_and_gives_leftover_units_to_the_largest_remainders() -> None:
    usd, jpy = currency("USD"), currency("JPY")
    three = [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]
    assert split_proportionally(Decimal("7.25"), three, usd) == [
        Decimal("2.42"),
        Decimal("2.41"),
        Decimal("2.42"),
    ]
    assert split_proportionally(Decimal("7"), [Decimal(1)] * 3, jpy) == [
        Decimal(3),
        Decimal(2),
        Decimal(2),
    ]
    assert split_proportionally(Decimal("1.00"), [Decimal(0), Decimal(0)], usd) == [
        Decimal("1.00"),
        Decimal("0.00"),
    ]
    assert split_proportionally(Decimal("5.00"), [], usd) == []
