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


@dataclass(frozen=True)
class TaxRate:
    """One of the organisation's tax rates (``GET /TaxRates``), as Xero describes it: a name, its
    components (their rates add up to the effective rate; none is compound here), the report
    type, and whether sales (revenue accounts) and purchases may use it."""

    name: str
    components: tuple[tuple[str, Decimal], ...]
    report_tax_type: str = "OUTPUT"
    revenue: bool = True
    expenses: bool = False
    status: str = "ACTIVE"

    @property
    def rate(self) -> Decimal:
        """``EffectiveRate``: the percentage Xero computes a line's tax with."""
        return sum((rate for _, rate in self.components), Decimal(0))

    @classmethod
    def plain(cls, tax_type: str, rate: Decimal | int | str) -> TaxRate:
        return cls(tax_type, (("Tax", Decimal(rate)),))

    def as_xero(self, tax_type: str) -> dict[str, Any]:
        four = Decimal("0.0001")
        return {
            "Name": self.name,
            "TaxType": tax_type,
            "TaxComponents": [
                {
                    "Name": name,
                    "Rate": rate.quantize(four),
                    "IsCompound": False,
                    "IsNonRecoverable": False,
                }
                for name, rate in self.components
            ],
            "Status": self.status,
            "ReportTaxType": self.report_tax_type,
            "CanApplyToAssets": True,
            "CanApplyToEquity": True,
            "CanApplyToExpenses": self.expenses,
            "CanApplyToLiabilities": True,
            "CanApplyToRevenue": self.revenue,
            "DisplayTaxRate": self.rate.quantize(four),
            "EffectiveRate": self.rate.quantize(four),
        }


def _components(*parts: tuple[str, str]) -> tuple[tuple[str, Decimal], ...]:
    return tuple((name, Decimal(rate)) for name, rate in parts)


# A US organisation (Xero's US edition: NONE, INPUT, OUTPUT and GSTONIMPORTS are its own tax
# types) that sells software abroad and has added, as Xero numbers added rates (TAX001, ...),
# the sales taxes it charges: California's, UK VAT, German and French VAT (EU OSS), and Japan's
# consumption tax (national and local parts), with an EU reverse-charge rate at 0 %.
DEFAULT_TAX_RATES: dict[str, TaxRate] = {
    "NONE": TaxRate("Tax Exempt", _components(("Tax", "0")), "NONE", expenses=True),
    "INPUT": TaxRate(
        "Tax on Purchases", _components(("Tax", "0")), "INPUT", revenue=False, expenses=True
    ),
    "OUTPUT": TaxRate("Tax on Sales", _components(("Tax", "0"))),
    "GSTONIMPORTS": TaxRate(
        "Sales Tax on Imports", _components(("Tax", "0")), "GSTONIMPORTS", revenue=False
    ),
    "TAX001": TaxRate("California Sales Tax", _components(("State", "6"), ("Local", "1.25"))),
    "TAX002": TaxRate("UK VAT 20%", _components(("VAT", "20"))),
    "TAX003": TaxRate("Germany VAT 19%", _components(("USt", "19"))),
    "TAX004": TaxRate("Germany VAT 7%", _components(("USt", "7"))),
    "TAX005": TaxRate("France VAT 20%", _components(("TVA", "20"))),
    "TAX006": TaxRate(
        "Japan Consumption Tax 10%", _components(("National", "7.8"), ("Local", "2.2"))
    ),
    "TAX007": TaxRate(
        "Japan Consumption Tax 8% (reduced)", _components(("National", "6.24"), ("Local", "1.76"))
    ),
    "TAX008": TaxRate("EU Reverse Charge", _components(("VAT", "0")), "NONE"),
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
        tax_rates: Mapping[str, TaxRate | Decimal | int | str],
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
        self.tax_rates = {
            tax_type: rate if isinstance(rate, TaxRate) else TaxRate.plain(tax_type, rate)
            for tax_type, rate in tax_rates.items()
        }
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

    def tax_rate(self, tax_type: str) -> TaxRate | None:
        """An active tax rate of the organisation."""
        found = self.tax_rates.get(tax_type)
        return found if found is not None and found.status == "ACTIVE" else None

    def tax_rates_json(self) -> list[dict[str, Any]]:
        return [rate.as_xero(tax_type) for tax_type, rate in self.tax_rates.items()]

    def currencies_json(self) -> list[dict[str, str]]:
        return [{"Code": code, "Description": code} for code in self.currencies]
