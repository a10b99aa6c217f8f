"""Sales tax: a rate per customer country (and optionally per product tax code), computed per
document per rate and rounded once per rate."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import pycountry

from connector.billing.money import HUNDRED, ZERO, Currency, Rounding, round_money
from connector.errors import InvalidInputError


def country_code(value: str) -> str:
    """An ISO 3166-1 alpha-2 code from a code or an English name ("DE", "Germany")."""
    text = (value or "").strip()
    if not text:
        raise InvalidInputError("country is empty")
    try:
        return pycountry.countries.lookup(text).alpha_2
    except LookupError:
        raise InvalidInputError(f"unknown country {value!r} (expected ISO 3166 code)") from None


def _percent(value: Decimal, where: str) -> Decimal:
    if not ZERO <= value <= HUNDRED:
        raise InvalidInputError(f"tax rate {value}% is not between 0 and 100", where=where)
    return value


@dataclass(frozen=True, slots=True)
class TaxTable:
    """Rates in percent. ``rates`` maps a country to its standard rate; ``code_rates`` maps a
    product tax code to rates per country that replace the standard one (a reduced rate, an
    exemption at 0). A country without a rate is not taxed."""

    rates: Mapping[str, Decimal] = field(default_factory=dict)
    code_rates: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        rates: Mapping[str, Decimal],
        code_rates: Mapping[str, Mapping[str, Decimal]] | None = None,
    ) -> TaxTable:
        """Validates countries and percentages, naming the entry at fault."""
        checked = {
            country_code(country): _percent(rate, f"tax rate for {country}")
            for country, rate in rates.items()
        }
        checked_codes = {
            code: {
                country_code(country): _percent(rate, f"tax rate {code} for {country}")
                for country, rate in by_country.items()
            }
            for code, by_country in (code_rates or {}).items()
        }
        return cls(checked, checked_codes)

    def rate_for(self, country: str, tax_code: str | None = None) -> Decimal:
        if tax_code is not None:
            by_country = self.code_rates.get(tax_code)
            if by_country is not None and country in by_country:
                return by_country[country]
        return self.rates.get(country, ZERO)


@dataclass(frozen=True, slots=True)
class TaxLine:
    rate: Decimal
    taxable: Decimal
    tax: Decimal


@dataclass(frozen=True, slots=True)
class CreditedTax:
    """One rate of an invoice: what it taxed, and what credit notes already took back."""

    invoice_taxable: Decimal
    invoice_tax: Decimal
    credited_taxable: Decimal = ZERO
    credited_tax: Decimal = ZERO


def credit_tax(
    amounts: Iterable[tuple[Decimal, Decimal]],
    history: Mapping[Decimal, CreditedTax],
    currency: Currency,
    rounding: Rounding,
) -> tuple[TaxLine, ...]:
    """Tax of a credit note per rate, computed on everything credited so far against the invoice
    so that roundings never add up: once a line is fully credited, exactly its invoice's tax has
    been taken back, and never more."""
    lines = tax_by_rate(amounts, currency, rounding)
    result = []
    for line in lines:
        past = history.get(line.rate)
        if past is None:
            result.append(line)
            continue
        cumulative = round_money(
            (past.credited_taxable + line.taxable) * line.rate / HUNDRED, currency, rounding
        )
        tax = min(cumulative, past.invoice_tax) - past.credited_tax
        result.append(TaxLine(line.rate, line.taxable, max(tax, ZERO)))
    return tuple(result)


def tax_by_rate(
    amounts: Iterable[tuple[Decimal, Decimal]], currency: Currency, rounding: Rounding
) -> tuple[TaxLine, ...]:
    """Tax per rate for ``(amount, rate)`` pairs: amounts of a rate are summed, then taxed and
    rounded once. Rates of 0 are listed too, so a document shows what was not taxed."""
    taxable: dict[Decimal, Decimal] = {}
    for amount, rate in amounts:
        taxable[rate] = taxable.get(rate, ZERO) + amount
    return tuple(
        TaxLine(rate, base, round_money(base * rate / HUNDRED, currency, rounding))
        for rate, base in sorted(taxable.items())
    )
