"""Tax on Xero documents: the billing core's tax expressed as Xero's line taxes, and the
mapping's TaxTypes checked against the organisation's own tax rates (``GET /TaxRates``).

The billing core taxes a document once per rate (the rate applied to the sum of the rate's
lines, rounded once). Xero taxes each line and rounds each to cents, whatever the currency
("Xero calculates tax on a per line basis, rounding to two decimal places, and then sums the tax
totals of each line", "Rounding in Xero",
https://developer.xero.com/documentation/guides/how-to-guides/rounding-in-xero), so the two
may differ by a few cents (GBP: 6.69 against Xero's 6.68) or, for a currency without minor
units, by a fraction (JPY: 4,333 against Xero's 4,332.90).

So that Xero's totals equal ours, every line carries its ``TaxAmount``: Xero's own per-line tax,
except that the difference for each rate goes on that rate's largest line. A ``TaxAmount`` other
than Xero's calculation is a tax adjustment, which Xero takes on tax-exclusive invoices and
credit notes (``LineItem.TaxAmount`` in the official OpenAPI description: "This value can be
overriden if the calculated <TaxAmount> is not correct"; Xero Central, "Adjust the tax amount on
unpaid transactions", https://help.xero.com/int/Tax-Adjustments: tax-exclusive transactions
only, reported in an Adjusted section of the sales tax audit report). A rounding line on a
rounding account would match the total but not the tax, so it is not used. One adjusted line per
rate keeps the adjustments as few as they can be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from connector.accounting.chart import XeroChart
from connector.errors import ConfigError, InvalidInputError
from connector.yamlfile import load_yaml

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def xero_line_tax(amount: Decimal, rate: Decimal) -> Decimal:
    """The tax Xero computes for a tax-exclusive line: ``rate`` percent, half up to cents."""
    return (amount * rate / HUNDRED).quantize(CENT, ROUND_HALF_UP)


def line_taxes(amounts: Sequence[Decimal], rate: Decimal, tax: Decimal) -> list[Decimal]:
    """The ``TaxAmount`` of each line of one rate, so that they add up to ``tax`` (the billing
    core's tax at that rate): Xero's own tax for each, the difference on the largest line."""
    taxes = [xero_line_tax(amount, rate) for amount in amounts]
    difference = tax - sum(taxes, Decimal(0))
    if difference and taxes:
        largest = max(range(len(amounts)), key=lambda i: abs(amounts[i]))  # the first of equals
        taxes[largest] += difference
    return taxes


# -- the organisation's tax rates ---------------------------------------------------------------
@dataclass(frozen=True)
class OrganisationTaxRate:
    tax_type: str
    name: str
    rate: Decimal  # EffectiveRate
    active: bool
    on_sales: bool  # CanApplyToRevenue

    @classmethod
    def of(cls, element: Mapping[str, Any]) -> OrganisationTaxRate:
        return cls(
            str(element.get("TaxType") or ""),
            str(element.get("Name") or ""),
            Decimal(str(element.get("EffectiveRate") or 0)),
            element.get("Status") == "ACTIVE",
            bool(element.get("CanApplyToRevenue")),
        )

    def describe(self) -> str:
        return f"{self.tax_type} ({self.name}, {self.rate.normalize():f}%)"


def organisation_tax_rates(body: Mapping[str, Any]) -> dict[str, OrganisationTaxRate]:
    """The answer of ``GET /TaxRates`` by TaxType."""
    rates = [OrganisationTaxRate.of(element) for element in body.get("TaxRates") or []]
    return {rate.tax_type: rate for rate in rates}


@dataclass(frozen=True)
class MappingProblem:
    country: str | None  # None: the entry for every country
    rate: Decimal
    tax_type: str
    why: str

    def __str__(self) -> str:
        country = self.country or "every country"
        rate = f"{self.rate.normalize():f}%"
        return f"xero.tax_types: {country} {rate} = {self.tax_type}: {self.why}"

    @property
    def location(self) -> tuple[str, ...]:
        rate = f"{self.rate.normalize():f}"
        if self.country:
            return ("xero", "tax_types", self.country, rate)
        return ("xero", "tax_types", rate)


def mapping_problems(
    chart: XeroChart, rates: Mapping[str, OrganisationTaxRate]
) -> list[MappingProblem]:
    """What is wrong with each TaxType the mapping names: one the organisation does not have
    (or has archived), one sales cannot use, or one whose rate is not the rate it is mapped to
    (Xero would compute another tax, and the line's tax would be adjusted by the difference)."""
    problems = []
    for country, rate, tax_type in chart.tax_type_entries():
        found = rates.get(tax_type)
        percent = f"{rate.normalize():f}%"
        if found is None or not found.active:
            usable = [
                r.describe() for r in rates.values() if r.active and r.on_sales and r.rate == rate
            ]
            hint = (
                f"its tax rates at {percent}: {', '.join(usable)}"
                if usable
                else f"it has no tax rate at {percent}"
            )
            why = f"the Xero organisation has no tax rate {tax_type} ({hint})"
        elif not found.on_sales:
            why = f"{found.describe()} cannot be used on sales in Xero"
        elif found.rate != rate:
            why = f"that is {found.describe()}, not {percent}"
        else:
            continue
        problems.append(MappingProblem(country, rate, tax_type, why))
    return problems


def check_mapping(
    chart: XeroChart, rates: Mapping[str, OrganisationTaxRate], mapping_file: Path
) -> None:
    """Raise a configuration error naming the mapping file (and the entry's line) and each
    TaxType the organisation cannot take."""
    problems = mapping_problems(chart, rates)
    if not problems:
        return
    try:
        document = load_yaml(mapping_file)
        where = [document.where(problem.location) for problem in problems]
    except InvalidInputError:
        where = [str(mapping_file)] * len(problems)
    raise ConfigError(
        "\n".join(f"{at}: {problem}" for at, problem in zip(where, problems, strict=True))
    )
