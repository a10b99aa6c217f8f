"""The chart of accounts (``mappings/accounting.yaml``): loaded and checked with clear errors."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator

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


class Chart(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: Accounts = Accounts()
    revenue_by_product: dict[str, AccountName] = {}
    revenue_by_family: dict[str, AccountName] = {}
    open_date: date = date(2000, 1, 1)

    def revenue_account(self, recurring: bool, product: str | None, family: str | None) -> str:
        if product and product in self.revenue_by_product:
            return self.revenue_by_product[product]
        if family and family in self.revenue_by_family:
            return self.revenue_by_family[family]
        return self.accounts.recurring_revenue if recurring else self.accounts.one_time_revenue


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
