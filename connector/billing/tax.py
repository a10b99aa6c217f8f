"""Sales tax: a rate per jurisdiction (a customer's country, or its region where the table has
rates for the region) and optionally per product tax code, computed per document per rate and
rounded once per rate. Every tax line names its jurisdiction, so that the books never guess."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
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


def region_code(country: str, value: str) -> str:
    """An ISO 3166-2 code (``US-CA``) for a region of ``country`` given as a code (``CA``,
    ``US-CA``) or an English name (``California``)."""
    text = (value or "").strip()
    if not text:
        raise InvalidInputError("region is empty")
    code = text.upper() if "-" in text else f"{country}-{text.upper()}"
    found = pycountry.subdivisions.get(code=code)
    if found is not None and found.country_code == country:
        return str(found.code)
    for subdivision in pycountry.subdivisions.get(country_code=country) or ():
        if subdivision.name.casefold() == text.casefold():
            return str(subdivision.code)
    raise InvalidInputError(
        f"unknown region {value!r} of {country} (expected an ISO 3166-2 code such as "
        f"{country}-XX, or its name)"
    )


def jurisdiction_code(value: str) -> str:
    """A tax jurisdiction: a country (``DE``, ``Germany``) or a region (``US-CA``)."""
    text = (value or "").strip()
    if "-" in text[2:3]:
        country, _, region = text.partition("-")
        return region_code(country_code(country), region)
    return country_code(text)


def _percent(value: Decimal, where: str) -> Decimal:
    if not ZERO <= value <= HUNDRED:
        raise InvalidInputError(f"tax rate {value}% is not between 0 and 100", where=where)
    return value


@dataclass(frozen=True, slots=True)
class TaxTable:
    """Rates in percent. ``rates`` maps a jurisdiction, a country (``DE``) or a region
    (``US-CA``), to its standard rate; ``code_rates`` maps a product tax code to rates per
    jurisdiction that replace the standard one (a reduced rate, an exemption at 0). A region
    named anywhere in the table is a jurisdiction of its own, whose rates replace its
    country's; a jurisdiction without a rate is not taxed."""

    rates: Mapping[str, Decimal] = field(default_factory=dict)
    code_rates: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        rates: Mapping[str, Decimal],
        code_rates: Mapping[str, Mapping[str, Decimal]] | None = None,
    ) -> TaxTable:
        """Validates jurisdictions and percentages, naming the entry at fault."""
        checked = {
            jurisdiction_code(place): _percent(rate, f"tax rate for {place}")
            for place, rate in rates.items()
        }
        checked_codes = {
            code: {
                jurisdiction_code(place): _percent(rate, f"tax rate {code} for {place}")
                for place, rate in by_place.items()
            }
            for code, by_place in (code_rates or {}).items()
        }
        return cls(checked, checked_codes)

    def _places(self) -> set[str]:
        places = set(self.rates)
        for by_place in self.code_rates.values():
            places.update(by_place)
        return places

    def jurisdiction(self, country: str, region: str | None = None) -> str:
        """Where a customer in ``country`` (and ``region``, an ISO 3166-2 code) is taxed: its
        region when the table has rates for it, else its country. A customer without a region
        in a country whose regions have rates cannot be taxed: that is an error."""
        places = self._places()
        if region and region in places:
            return region
        if not region and any(place.startswith(f"{country}-") for place in places):
            raise InvalidInputError(
                f"customer in {country} has no region (state or province), needed because "
                f"tax rates are set for regions of {country}"
            )
        return country

    def rate_for(self, jurisdiction: str, tax_code: str | None = None) -> Decimal:
        if tax_code is not None:
            by_place = self.code_rates.get(tax_code)
            if by_place is not None and jurisdiction in by_place:
                return by_place[jurisdiction]
        return self.rates.get(jurisdiction, ZERO)


@dataclass(frozen=True, slots=True)
class TaxLine:
    """Tax of one rate of a document, in ``jurisdiction``; a reverse-charged line has rate 0
    (the customer accounts for the tax)."""

    rate: Decimal
    taxable: Decimal
    tax: Decimal
    jurisdiction: str = ""
    reverse_charge: bool = False


@dataclass(frozen=True, slots=True)
class CreditedTax:
    """One rate of an invoice: what it taxed, and what credit notes already took back."""

    invoice_taxable: Decimal
    invoice_tax: Decimal
    credited_taxable: Decimal = ZERO
    credited_tax: Decimal = ZERO
    jurisdiction: str = ""
    reverse_charge: bool = False


def credit_tax(
    amounts: Iterable[tuple[Decimal, Decimal]],
    history: Mapping[Decimal, CreditedTax],
    currency: Currency,
    rounding: Rounding,
    *,
    jurisdiction: str = "",
    reverse_charge: bool = False,
) -> tuple[TaxLine, ...]:
    """Tax of a credit note per rate, computed on everything credited so far against the invoice
    so that roundings never add up: once a line is fully credited, exactly its invoice's tax has
    been taken back, and never more. The credit note is taxed where its invoice was."""
    lines = tax_by_rate(
        amounts, currency, rounding, jurisdiction=jurisdiction, reverse_charge=reverse_charge
    )
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
        result.append(replace(line, tax=max(tax, ZERO)))
    return tuple(result)


def tax_by_rate(
    amounts: Iterable[tuple[Decimal, Decimal]],
    currency: Currency,
    rounding: Rounding,
    *,
    jurisdiction: str = "",
    reverse_charge: bool = False,
) -> tuple[TaxLine, ...]:
    """Tax per rate for ``(amount, rate)`` pairs: amounts of a rate are summed, then taxed and
    rounded once. Rates of 0 are listed too, so a document shows what was not taxed."""
    taxable: dict[Decimal, Decimal] = {}
    for amount, rate in amounts:
        taxable[rate] = taxable.get(rate, ZERO) + amount
    return tuple(
        TaxLine(
            rate,
            base,
            round_money(base * rate / HUNDRED, currency, rounding),
            jurisdiction,
            reverse_charge,
        )
        for rate, base in sorted(taxable.items())
    )
