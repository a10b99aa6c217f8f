"""The chart of accounts (``mappings/accounting.yaml``): loaded and checked with clear errors."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, field_validator

from connector.accounting.base import JOURNAL_INVOICED, JOURNAL_UNBILLED, RevenueAmount
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

    def revenue_account(self, recurring: bool, product: str | None, family: str | None) -> str:
        return _revenue(self, self.accounts, recurring, product, family)


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
