"""The chart of accounts (``mappings/accounting.yaml``): the shipped default, every error naming
the file, the line and the key, and which revenue account a line lands on."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from connector.accounting.chart import Accounts, Chart, check_account, load_chart
from connector.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "mappings" / "accounting.yaml"

ROOTS_MESSAGE = "must start with one of Assets, Liabilities, Equity, Income, Expenses"
NAME_MESSAGE = (
    "is not an account name (Root:Component, each component starting with a capital letter or "
    "a digit, then letters, digits or dashes)"
)

VALID = """\
accounts:
  receivable: Assets:AccountsReceivable
  deferred_revenue: Liabilities:DeferredRevenue
  recurring_revenue: Income:Subscriptions
  one_time_revenue: Income:OneTime
  sales_tax: Liabilities:SalesTax
  bank: Assets:Bank
revenue_by_product:
  ONBOARDING: Income:Services
revenue_by_family:
  Support: Income:Support
open_date: 2000-01-01
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accounting.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_chart(path)
    return str(caught.value)


# -- the default file ----------------------------------------------------------------------


def test_default_chart_has_the_documented_accounts() -> None:
    chart = load_chart(DEFAULT)
    assert chart.accounts == Accounts(
        receivable="Assets:AccountsReceivable",
        deferred_revenue="Liabilities:DeferredRevenue",
        recurring_revenue="Income:Subscriptions",
        one_time_revenue="Income:OneTime",
        sales_tax="Liabilities:SalesTax",
        bank="Assets:Bank",
    )
    assert chart.revenue_by_product == {}
    assert chart.revenue_by_family == {}
    assert chart.open_date == date(2000, 1, 1)
    assert chart == Chart()


def test_custom_chart_loads_its_revenue_accounts(tmp_path: Path) -> None:
    chart = load_chart(_write(tmp_path, VALID.replace("2000-01-01", "2019-07-01")))
    assert chart.revenue_by_product == {"ONBOARDING": "Income:Services"}
    assert chart.revenue_by_family == {"Support": "Income:Support"}
    assert chart.open_date == date(2019, 7, 1)


def test_missing_sections_take_the_defaults(tmp_path: Path) -> None:
    chart = load_chart(_write(tmp_path, "accounts:\n  bank: Assets:Bank:Checking\n"))
    assert chart == Chart(accounts=Accounts(bank="Assets:Bank:Checking"))


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Bank", f"'Bank' {ROOTS_MESSAGE}"),
        ("Revenue:Subscriptions", f"'Revenue:Subscriptions' {ROOTS_MESSAGE}"),
        ("assets:Bank", f"'assets:Bank' {ROOTS_MESSAGE}"),
        ("Assets", f"'Assets' {NAME_MESSAGE}"),
        ("Assets:bank", f"'Assets:bank' {NAME_MESSAGE}"),
        ("Assets:Bank Account", f"'Assets:Bank Account' {NAME_MESSAGE}"),
        ("Assets:Bank:", f"'Assets:Bank:' {NAME_MESSAGE}"),
        ("Assets::Bank", f"'Assets::Bank' {NAME_MESSAGE}"),
        ("Assets:Bank_Main", f"'Assets:Bank_Main' {NAME_MESSAGE}"),
        ("Assets:-Bank", f"'Assets:-Bank' {NAME_MESSAGE}"),
    ],
)
def test_bad_account_name_names_file_line_and_key(tmp_path: Path, name: str, message: str) -> None:
    path = _write(tmp_path, VALID.replace("bank: Assets:Bank", f'bank: "{name}"'))
    assert _error(path) == f"{path}:7: accounts.bank: {message}"


@pytest.mark.parametrize("name", ["Assets:Bank", "Assets:1010", "Assets:Bank-2:EUR", "Income:X"])
def test_good_account_names(name: str) -> None:
    assert check_account(name) == name


def test_every_bad_account_is_reported(tmp_path: Path) -> None:
    text = VALID.replace("receivable: Assets:AccountsReceivable", "receivable: Receivables")
    text = text.replace("sales_tax: Liabilities:SalesTax", "sales_tax: Liabilities:sales-tax")
    path = _write(tmp_path, text)
    assert _error(path) == "\n".join(
        [
            f"{path}:2: accounts.receivable: 'Receivables' {ROOTS_MESSAGE}",
            f"{path}:6: accounts.sales_tax: 'Liabilities:sales-tax' {NAME_MESSAGE}",
        ]
    )


def test_unknown_account_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        VALID.replace("  bank: Assets:Bank\n", "  bank: Assets:Bank\n  cash: Assets:Cash\n"),
    )
    assert _error(path) == f"{path}:8: accounts.cash: Extra inputs are not permitted"


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID + "currency: USD\n")
    assert _error(path) == f"{path}:13: currency: Extra inputs are not permitted"


def test_misspelt_section(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace("revenue_by_family:", "revenue_by_familly:"))
    assert _error(path) == f"{path}:10: revenue_by_familly: Extra inputs are not permitted"


def test_bad_revenue_by_product_account_names_its_entry(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        VALID.replace("  ONBOARDING: Income:Services\n", "  ONBOARDING: Income:services\n"),
    )
    assert _error(path) == (
        f"{path}:9: revenue_by_product.ONBOARDING: 'Income:services' {NAME_MESSAGE}"
    )


def test_every_bad_revenue_by_product_entry_is_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        VALID.replace(
            "  ONBOARDING: Income:Services\n",
            "  ONBOARDING: Income:Services\n  TRAINING: Services\n  AUDIT: Income:audit\n",
        ),
    )
    assert _error(path) == "\n".join(
        [
            f"{path}:10: revenue_by_product.TRAINING: 'Services' {ROOTS_MESSAGE}",
            f"{path}:11: revenue_by_product.AUDIT: 'Income:audit' {NAME_MESSAGE}",
        ]
    )


def test_bad_revenue_by_family_account_names_its_entry(tmp_path: Path) -> None:
    path = _write(
        tmp_path, VALID.replace("Support: Income:Support", "Support: Expenses:Support Desk")
    )
    assert _error(path) == (
        f"{path}:11: revenue_by_family.Support: 'Expenses:Support Desk' {NAME_MESSAGE}"
    )


def test_revenue_account_must_be_text(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace("ONBOARDING: Income:Services", "ONBOARDING: 42"))
    assert _error(path) == (
        f"{path}:9: revenue_by_product.ONBOARDING: Input should be a valid string"
    )


def test_bad_open_date(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace("open_date: 2000-01-01", "open_date: someday"))
    assert _error(path) == (
        f"{path}:12: open_date: Input should be a valid date or datetime, input is too short"
    )


def test_malformed_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, "accounts:\n  bank: [Assets:Bank\n")
    message = _error(path)
    assert message.startswith(f"{path}:3: not valid YAML: ")


def test_file_must_be_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "- Assets:Bank\n")
    assert _error(path) == f"{path}:1: the file must hold a mapping of sections"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    assert _error(path) == f"cannot read {path}: No such file or directory"


# -- revenue_account -----------------------------------------------------------------------

CHART = Chart(
    revenue_by_product={"ONBOARDING": "Income:Services", "PRO": "Income:Pro"},
    revenue_by_family={"Support": "Income:Support", "Platform": "Income:Platform"},
)


@pytest.mark.parametrize(
    ("recurring", "product", "family", "account"),
    [
        # the product code wins over its family, recurring or not
        (True, "PRO", "Platform", "Income:Pro"),
        (False, "PRO", "Platform", "Income:Pro"),
        (False, "ONBOARDING", "Support", "Income:Services"),
        # then the family
        (True, "BASIC", "Platform", "Income:Platform"),
        (False, "HOTLINE", "Support", "Income:Support"),
        # then the default of the line's kind
        (True, "BASIC", "Other", "Income:Subscriptions"),
        (False, "BASIC", "Other", "Income:OneTime"),
        (True, "BASIC", None, "Income:Subscriptions"),
        (False, None, None, "Income:OneTime"),
        (True, None, "Support", "Income:Support"),
        # names are matched exactly
        (True, "pro", "platform", "Income:Subscriptions"),
        (False, "", "", "Income:OneTime"),
    ],
)
def test_revenue_account_precedence(
    recurring: bool, product: str | None, family: str | None, account: str
) -> None:
    assert CHART.revenue_account(recurring, product, family) == account


def test_revenue_account_uses_the_configured_defaults() -> None:
    chart = Chart(
        accounts=Accounts(recurring_revenue="Income:Recurring:SaaS", one_time_revenue="Income:Fees")
    )
    assert chart.revenue_account(True, "PRO", "Platform") == "Income:Recurring:SaaS"
    assert chart.revenue_account(False, "PRO", "Platform") == "Income:Fees"


# -- Xero tax types by country and rate ---------------------------------------------------------
def test_xero_tax_types_by_country_and_rate(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "xero:\n  tax_types:\n    0: NONE\n    7.25: TAX001\n    Germany: {19: TAX003}\n"
        "    fr: {'20': TAX005, 0: TAX008}\n",
    )
    xero = load_chart(path).xero
    assert xero.tax_types == {
        "*": {Decimal(0): "NONE", Decimal("7.25"): "TAX001"},
        "DE": {Decimal(19): "TAX003"},
        "FR": {Decimal(20): "TAX005", Decimal(0): "TAX008"},
    }
    assert xero.tax_type(Decimal("19.00"), "DE") == "TAX003"
    assert xero.tax_type(Decimal(0), "FR") == "TAX008"  # the country's own wins
    assert xero.tax_type(Decimal(0), "US") == "NONE"
    assert xero.tax_type(Decimal("7.25"), "DE") == "TAX001"
    assert xero.tax_type(Decimal(19), "FR") is None


def test_the_old_form_of_xero_tax_types_still_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, "xero:\n  tax_types:\n    0: NONE\n    20: OUTPUT2\n")
    assert load_chart(path).xero.tax_type(Decimal(20), "GB") == "OUTPUT2"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "XX: {19: TAX003}",
            "'XX' is neither a tax rate nor a country (ISO 3166 alpha-2, such as DE)",
        ),
        ("DE: TAX003", "DE: give the TaxType of each of its rates (DE: {19: TAX003})"),
        ("120: TAX003", "tax rate 120 is not a percentage from 0 to 100"),
    ],
)
def test_a_bad_xero_tax_type_entry_names_file_line_and_key(
    tmp_path: Path, entry: str, message: str
) -> None:
    path = _write(tmp_path, f"xero:\n  tax_types:\n    0: NONE\n    {entry}\n")
    assert _error(path) == f"{path}:2: xero.tax_types: {message}"


# -- bank accounts per currency --------------------------------------------------------------


def test_bank_accounts_per_currency_from_the_file(tmp_path: Path) -> None:
    chart = load_chart(
        _write(
            tmp_path, VALID + "bank_by_currency:\n  eur: Assets:Sparkasse\n  USD: Assets:Chase\n"
        )
    )
    assert chart.bank_by_currency == {"EUR": "Assets:Sparkasse", "USD": "Assets:Chase"}
    assert chart.bank_account("EUR") == "Assets:Sparkasse"
    assert chart.bank_account("GBP") == "Assets:Bank:GBP"
    assert chart.holds_one_currency("Assets:Sparkasse")
    assert chart.holds_one_currency("Assets:Bank:GBP")
    assert chart.holds_one_currency("Liabilities:SalesTax:FR:20")
    assert not chart.holds_one_currency("Assets:Bank")
    assert not chart.holds_one_currency("Income:Subscriptions")


def test_two_currencies_in_one_bank_account_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID + "bank_by_currency:\n  EUR: Assets:Wise\n  USD: Assets:Wise\n")
    assert _error(path) == (
        f"{path}:13: bank_by_currency: EUR and USD both name Assets:Wise: each currency needs "
        "its own bank account"
    )


def test_bank_account_of_an_unknown_currency_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID + "bank_by_currency:\n  XYZ: Assets:Bank:Xyz\n")
    assert _error(path) == (
        f"{path}:13: bank_by_currency: unknown currency 'XYZ' (not in ISO 4217)"
    )
