"""The chart of accounts (``mappings/accounting.yaml``): loaded and checked with clear errors."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, field_validator

from connector.accounting.base import JOURNAL_INVOICED, JOURNAL_UNBILLED, RevenueAmount
from connector.billing.money import currency
from connector.billing.tax import country_code
from connector.errors import ConfigError, InvalidInputError
from connector.yamlfile import load_yaml

ROOTS = ("Assets", "Liabilities", "Equity", "Income", "Expenses")
COMPONENT = re.compile(r"^[A-Z0-9][A-Za-z0-9-]*$")


def check_account(name: str) -> str:
    parts = name.split(":")
    if parts[0] not in ROOTS:
        raise ValueError(f"{name!r} must start with one of {', '.join(ROOTS)}")
    if len(parts) < 2 or not all(COMPONENT.match(part) for part in parts[1:]):
        raise ValueError(
            f"{name!r} is not an account name (Root:Component, each component starting with a "
            "capital letter or a digit, then letters, digits or dashes)"
        )
    return name


class Accounts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    receivable: str = "Assets:AccountsReceivable"
    unbilled_receivable: str = "Assets:UnbilledReceivable"
    deferred_revenue: str = "Liabilities:DeferredRevenue"
    recurring_revenue: str = "Income:Subscriptions"
    one_time_revenue: str = "Income:OneTime"
    sales_tax: str = "Liabilities:SalesTax"
    bank: str = "Assets:Bank"
    customer_credit: str = "Liabilities:CustomerCredit"

    check_names = field_validator("*")(lambda cls, value: check_account(value))


AccountName = Annotated[str, AfterValidator(check_account)]
AccountCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10)]


class XeroAccounts(BaseModel):
    """Xero account codes (the organisation's chart: Settings > Chart of accounts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deferred_revenue: AccountCode = "835"
    unbilled_receivable: AccountCode = "615"
    recurring_revenue: AccountCode = "200"
    one_time_revenue: AccountCode = "260"
    bank: AccountCode = "090"


ANY_COUNTRY = "*"
TaxTypeCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
DEFAULT_TAX_TYPES: dict[str, dict[Decimal, str]] = {  # the demo organisation's (the fake Xero)
    ANY_COUNTRY: {Decimal(0): "NONE"},
    "GB": {Decimal(20): "TAX002"},
    "DE": {Decimal(19): "TAX003", Decimal(7): "TAX004"},
    "FR": {Decimal(20): "TAX005"},
    "JP": {Decimal(10): "TAX006", Decimal(8): "TAX007"},
}


class XeroChart(BaseModel):
    """Where documents land in Xero: account codes, and the organisation's TaxType for each
    country and tax rate.

    ``tax_types`` maps a rate (percent) to a TaxType for every country (``0: NONE``), and a
    country (ISO 3166 alpha-2) to its own rates (``DE: {19: TAX003, 7: TAX004}``); a country's
    own entry wins over a rate alone. A rate's TaxType is never guessed from the organisation's
    tax rates: two jurisdictions may share a rate (UK and French VAT at 20 %), and tax must be
    reported in the jurisdiction it is owed to.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: XeroAccounts = XeroAccounts()
    revenue_by_product: dict[str, AccountCode] = {}
    revenue_by_family: dict[str, AccountCode] = {}
    tax_types: dict[str, dict[Decimal, TaxTypeCode]] = DEFAULT_TAX_TYPES

    def revenue_account(self, recurring: bool, product: str | None, family: str | None) -> str:
        return _revenue(self, self.accounts, recurring, product, family)

    def tax_type(self, rate: Decimal, country: str | None = None) -> str | None:
        """The TaxType of ``rate`` for a customer in ``country``: the country's own, else the
        one for every country, else None."""
        if country and (found := self.tax_types.get(country.upper(), {}).get(rate)):
            return found
        return self.tax_types.get(ANY_COUNTRY, {}).get(rate)

    def tax_type_entries(self) -> list[tuple[str | None, Decimal, str]]:
        """Every (country or None for every country, rate, TaxType) of the mapping."""
        return [
            (None if country == ANY_COUNTRY else country, rate, tax_type)
            for country, rates in sorted(self.tax_types.items())
            for rate, tax_type in sorted(rates.items())
        ]

    @field_validator("tax_types", mode="before")
    @classmethod
    def _by_country(cls, value: Any) -> Any:
        """``{rate: code, COUNTRY: {rate: code}}`` as written, grouped by country."""
        if not isinstance(value, dict):
            return value
        grouped: dict[str, dict[Any, Any]] = {}
        for key, entry in value.items():
            if isinstance(entry, dict):
                grouped.setdefault(_country(key), {}).update(entry)
            elif isinstance(key, str) and key.strip().isalpha():
                raise ValueError(
                    f"{key}: give the TaxType of each of its rates ({key}: {{19: TAX003}})"
                )
            else:
                grouped.setdefault(ANY_COUNTRY, {})[key] = entry
        return grouped

    @field_validator("tax_types")
    @classmethod
    def _percentages(cls, value: dict[str, dict[Decimal, str]]) -> dict[str, dict[Decimal, str]]:
        for country, rates in value.items():
            for rate in rates:
                if not (rate.is_finite() and 0 <= rate <= 100):
                    where = "" if country == ANY_COUNTRY else f"{country}: "
                    raise ValueError(f"{where}tax rate {rate} is not a percentage from 0 to 100")
        return value


def _country(key: Any) -> str:
    try:
        return country_code(str(key))
    except InvalidInputError:
        raise ValueError(
            f"{key!r} is neither a tax rate nor a country (ISO 3166 alpha-2, such as DE)"
        ) from None


class Chart(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: Accounts = Accounts()
    revenue_by_product: dict[str, AccountName] = {}
    revenue_by_family: dict[str, AccountName] = {}
    open_date: date = date(2000, 1, 1)
    xero: XeroChart = XeroChart()
    bank_by_currency: dict[str, AccountName] = {}

    def revenue_account(self, recurring: bool, product: str | None, family: str | None) -> str:
        return _revenue(self, self.accounts, recurring, product, family)

    def bank_account(self, currency: str) -> str:
        """Where payments in ``currency`` are received: its own account, ``Assets:Bank:USD``
        unless ``bank_by_currency`` names another."""
        return self.bank_by_currency.get(currency) or f"{self.accounts.bank}:{currency}"

    def holds_one_currency(self, account: str) -> bool:
        """Tax payable and bank accounts hold one currency each (their ``open`` says which)."""
        return (
            account.startswith((f"{self.accounts.sales_tax}:", f"{self.accounts.bank}:"))
            or account in self.bank_by_currency.values()
        )

    @field_validator("bank_by_currency")
    @classmethod
    def _one_account_per_currency(cls, value: dict[str, str]) -> dict[str, str]:
        checked: dict[str, str] = {}
        for code, account in value.items():
            try:
                known = currency(code).code
            except InvalidInputError as error:
                raise ValueError(str(error)) from None
            other = next((c for c, a in checked.items() if a == account), None)
            if other is not None:
                raise ValueError(
                    f"{other} and {known} both name {account}: each currency needs its own "
                    "bank account"
                )
            checked[known] = account
        return checked


def _revenue(
    chart: Chart | XeroChart,
    accounts: Accounts | XeroAccounts,
    recurring: bool,
    product: str | None,
    family: str | None,
) -> str:
    """The revenue account of a line: by product code, else by product family, else the
    recurring or one-time revenue account."""
    if product and product in chart.revenue_by_product:
        return chart.revenue_by_product[product]
    if family and family in chart.revenue_by_family:
        return chart.revenue_by_family[family]
    return accounts.recurring_revenue if recurring else accounts.one_time_revenue


def journal_accounts(chart: Chart | XeroChart, kind: str, part: RevenueAmount) -> tuple[str, str]:
    """``(debited, credited)`` accounts of one amount of a revenue journal of ``kind``."""
    accounts = chart.accounts
    revenue = chart.revenue_account(part.recurring, part.product_code, part.product_family)
    if kind == JOURNAL_UNBILLED:
        return accounts.unbilled_receivable, revenue
    if kind == JOURNAL_INVOICED:
        return accounts.deferred_revenue, accounts.unbilled_receivable
    return accounts.deferred_revenue, revenue


def load_chart(path: Path) -> Chart:
    """The chart in ``path``; a missing, unreadable or invalid file is a configuration error
    that names the file and line."""
    try:
        document = load_yaml(path)
        if document.data is None:  # an empty file: the defaults
            return Chart()
        return document.validate(Chart)
    except InvalidInputError as error:
        raise ConfigError(str(error)) from None
