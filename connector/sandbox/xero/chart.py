"""The organisation's settings: chart of accounts, tax rates and enabled currencies."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

DEFAULT_ACCOUNTS: dict[str, str] = {
    "090": "BANK",
    "200": "REVENUE",
    "260": "REVENUE",
    "610": "CURRENT",
    "615": "CURRENT",
    "820": "CURRLIAB",
    "835": "CURRLIAB",
}
DEFAULT_ACCOUNT_NAMES: dict[str, str] = {
    "090": "Business Bank Account",
    "200": "Sales",
    "260": "Other Revenue",
    "610": "Accounts Receivable",
    "615": "Accrued Revenue",
    "820": "Sales Tax",
    "835": "Revenue Received in Advance",
}
DEFAULT_TAX_RATES: dict[str, Decimal] = {
    "NONE": Decimal(0),
    "TAX001": Decimal(0),
    "OUTPUT": Decimal(10),
    "OUTPUT2": Decimal(20),
    "OUTPUT5": Decimal(5),
    "RROUTPUT": Decimal(5),
    "ZERORATEDOUTPUT": Decimal(0),
    "EXEMPTOUTPUT": Decimal(0),
}
DEFAULT_TAX_RATE_NAMES: dict[str, str] = {
    "NONE": "No Tax",
    "TAX001": "Tax Exempt",
    "OUTPUT": "Sales Tax 10%",
    "OUTPUT2": "Sales Tax 20%",
    "OUTPUT5": "Sales Tax 5%",
    "RROUTPUT": "Reduced Rate Sales Tax",
    "ZERORATEDOUTPUT": "Zero Rated Sales",
    "EXEMPTOUTPUT": "Exempt Sales",
}
DEFAULT_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "AUD")
ACCOUNT_CLASSES = {
    "BANK": "ASSET",
    "CURRENT": "ASSET",
    "FIXED": "ASSET",
    "INVENTORY": "ASSET",
    "NONCURRENT": "ASSET",
    "PREPAYMENT": "ASSET",
    "CURRLIAB": "LIABILITY",
    "LIABILITY": "LIABILITY",
    "TERMLIAB": "LIABILITY",
    "EQUITY": "EQUITY",
    "REVENUE": "REVENUE",
    "SALES": "REVENUE",
    "OTHERINCOME": "REVENUE",
}


@dataclass(frozen=True)
class Account:
    code: str
    type: str
    name: str
    account_id: str

    def summary(self) -> dict[str, Any]:
        return {"AccountID": self.account_id, "Code": self.code, "Name": self.name}

    def as_xero(self, currency: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "AccountID": self.account_id,
            "Code": self.code,
            "Name": self.name,
            "Status": "ACTIVE",
            "Type": self.type,
            "Class": ACCOUNT_CLASSES.get(self.type, "EXPENSE"),
            "TaxType": "NONE",
            "EnablePaymentsToAccount": self.type == "BANK",
        }
        if self.type == "BANK":
            body.update(BankAccountType="BANK", CurrencyCode=currency)
        return body


class Chart:
    """What the organisation accepts on documents: accounts, tax types and currencies."""

    def __init__(
        self,
        *,
        tenant_id: str,
        accounts: Mapping[str, str],
        account_names: Mapping[str, str],
        tax_rates: Mapping[str, Decimal | int | str],
        currencies: Iterable[str],
        base_currency: str,
    ) -> None:
        namespace = uuid.UUID(tenant_id)
        self.accounts = {
            code: Account(
                code,
                kind,
                account_names.get(code, f"Account {code}"),
                str(uuid.uuid5(namespace, f"account:{code}")),
            )
            for code, kind in accounts.items()
        }
        self.tax_rates = {name: Decimal(rate) for name, rate in tax_rates.items()}
        self.currencies = tuple(currencies)
        self.base_currency = base_currency
        if base_currency not in self.currencies:
            raise ValueError(f"the base currency {base_currency} is not among the currencies")

    def account(self, code: str) -> Account | None:
        return self.accounts.get(code)

    def first_bank_account(self) -> Account:
        for account in self.accounts.values():
            if account.type == "BANK":
                return account
        raise LookupError("the chart of accounts has no BANK account")

    def accounts_json(self) -> list[dict[str, Any]]:
        return [account.as_xero(self.base_currency) for account in self.accounts.values()]

    def tax_rates_json(self) -> list[dict[str, Any]]:
        return [
            {
                "Name": DEFAULT_TAX_RATE_NAMES.get(tax_type, tax_type),
                "TaxType": tax_type,
                "Status": "ACTIVE",
                "ReportTaxType": "OUTPUT" if rate else "NONE",
                "CanApplyToRevenue": True,
                "DisplayTaxRate": rate,
                "EffectiveRate": rate,
            }
            for tax_type, rate in self.tax_rates.items()
        ]

    def currencies_json(self) -> list[dict[str, str]]:
        return [{"Code": code, "Description": code} for code in self.currencies]
