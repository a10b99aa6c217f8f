"""The chart of accounts (``mappings/accounting.yaml``): loaded and checked with clear errors."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, field_validator

from connector.billing.money import currency
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
    deferred_revenue: str = "Liabilities:DeferredRevenue"
    recurring_revenue: str = "Income:Subscriptions"
    one_time_revenue: str = "Income:OneTime"
    sales_tax: str = "Liabilities:SalesTax"
    bank: str = "Assets:Bank"

    check_names = field_validator("*")(lambda cls, value: check_account(value))


AccountName = Annotated[str, AfterValidator(check_account)]
AccountCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10)]


class XeroAccounts(BaseModel):
    """Xero account codes (the organisation's chart: Settings > Chart of accounts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deferred_revenue: AccountCode = "835"
    recurring_revenue: AccountCode = "200"
    one_time_revenue: AccountCode = "260"
    bank: AccountCode = "090"


class XeroChart(BaseModel):
    """Where documents land in Xero: account codes, and the TaxType of each tax rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: XeroAccounts = XeroAccounts()
    revenue_by_product: dict[str, AccountCode] = {}
    revenue_by_family: dict[str, AccountCode] = {}
    tax_types: dict[Decimal, str] = {
        Decimal(0): "NONE",
        Decimal(10): "OUTPUT",
        Decimal(20): "OUTPUT2",
    }

    def revenue_account(self, recurring: bool, product: str | None, family: str | None) -> str:
        return _revenue(self, self.accounts, recurring, product, family)

    def tax_type(self, rate: Decimal) -> str | None:
        return self.tax_types.get(rate.normalize()) or self.tax_types.get(rate)

    @field_validator("tax_types")
    @classmethod
    def _normalized(cls, value: dict[Decimal, str]) -> dict[Decimal, str]:
        return {rate.normalize(): tax_type for rate, tax_type in value.items()}


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
