"""Tax on Xero documents: Xero's totals equal the billing core's to the cent (Xero taxes each
line and rounds it to cents; the core taxes each rate once), and the mapping's TaxTypes are
checked against the organisation's tax rates before anything is sent."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.accounting.base import Customer, Line, Tax
from connector.accounting.chart import XeroChart
from connector.accounting.xero import payloads
from connector.accounting.xero.tax import (
    OrganisationTaxRate,
    line_taxes,
    mapping_problems,
    xero_line_tax,
)
from connector.billing.money import Rounding, currency
from connector.billing.tax import tax_by_rate
from connector.cli import app
from connector.errors import ConfigError
from connector.sync.push import push
from sandbox.xero import contacts, documents
from sandbox.xero.chart import DEFAULT_TAX_RATES, Chart
from sandbox.xero.server import XeroSandbox
from sandbox.xero.store import XeroStore
from tests.accounting.documents import credit_note, invoice
from tests.accounting.xero.test_xero_faults import (
    ROWS,
    api_calls,
    bill_four_customers,
    counts,
    depth,
    new_target,
    settings_for,
)
from tests.conftest import TEST_TAX_RATES

D = Decimal
CHART = XeroChart()  # the shipped mapping's defaults: the fake organisation's tax types
TANAKA = Customer(3, "Tanaka K.K.", "JP", "JPY")
SMITH = Customer(4, "Smith Ltd", "GB", "GBP")


# -- Xero's rounding and the core's -----------------------------------------------------------
def test_xero_rounds_each_line_to_cents_whatever_the_currency() -> None:
    assert xero_line_tax(D("43329"), D("10")) == D("4332.90")
    assert xero_line_tax(D("16.72"), D("20")) == D("3.34")
    assert xero_line_tax(D("21.65"), D("10")) == D("2.17")  # 2.165: halves up
    assert xero_line_tax(D("-21.65"), D("10")) == D("-2.17")


def test_the_rounding_difference_of_a_rate_goes_on_its_largest_line() -> None:
    # JPY: the core's 4,333 (no minor unit) against Xero's 4,332.90.
    assert line_taxes([D("43329")], D("10"), D("4333")) == [D("4333")]
    # GBP: 33.44 at 20 % is 6.69 for the core, 3.34 + 3.34 = 6.68 for Xero.
    assert line_taxes([D("16.72"), D("16.72")], D("20"), D("6.69")) == [D("3.35"), D("3.34")]
    assert line_taxes([D("10.00"), D("16.72"), D("16.72")], D("20"), D("8.69")) == [
        D("2.00"),
        D("3.35"),
        D("3.34"),
    ]
    # No difference: every line keeps Xero's own tax (no adjustment at all).
    assert line_taxes([D("50.00"), D("30.00")], D("20"), D("16.00")) == [D("10.00"), D("6.00")]


def _store() -> tuple[XeroStore, str]:
    chart = Chart(
        tenant_id="b3d5a8f2-1c4e-4f7a-9d2b-6e8c0a1f3b57",
        accounts={"200": "REVENUE", "260": "REVENUE", "835": "CURRLIAB", "090": "BANK"},
        account_names={},
        tax_rates=DEFAULT_TAX_RATES,
        currencies=("USD", "EUR", "GBP", "JPY"),
        base_currency="USD",
    )
    store = XeroStore(chart)
    with store.transaction():
        contact = contacts.create_contact(store, {"Name": "Customer", "ContactNumber": "CUST-1"})
    return store, str(contact["ContactID"])


def _in_xero(body: dict[str, Any], *, credit: bool = False) -> dict[str, Any]:
    """The document as the fake Xero organisation saves it (totals as Xero computes them)."""
    store, contact_id = _store()
    body = {**body, "Contact": {"ContactID": contact_id}}
    with store.transaction():
        create = documents.create_credit_note if credit else documents.create_invoice
        return create(store, body)


def test_a_jpy_invoice_keeps_our_tax_of_4333_not_xeros_4332_90() -> None:
    doc = invoice(
        1,
        "INV-000001",
        TANAKA,
        date(2026, 3, 1),
        lines=[Line("PRO", None, True, D("43329"), tax_rate=D("10"))],
        taxes=[Tax(D("10"), D("4333"))],
        total="47662",
    )
    body = payloads.invoice(doc, "c-1", CHART)
    assert [(i["LineAmount"], i["TaxType"], i["TaxAmount"]) for i in body["LineItems"]] == [
        (D("43329"), "TAX006", D("4333"))
    ]
    saved = _in_xero(body)
    assert (saved["SubTotal"], saved["TotalTax"], saved["Total"]) == (
        D("43329.00"),
        D("4333.00"),
        D("47662.00"),
    )


def test_a_gbp_invoice_keeps_our_tax_of_6_69_not_xeros_6_68() -> None:
    lines = [Line(code, None, False, D("16.72"), tax_rate=D("20")) for code in ("A", "B")]
    doc = invoice(
        2,
        "INV-000002",
        SMITH,
        date(2026, 3, 1),
        lines=lines,
        taxes=[Tax(D("20"), D("6.69"))],
        total="40.13",
    )
    body = payloads.invoice(doc, "c-1", CHART)
    assert [(i["TaxType"], i["TaxAmount"]) for i in body["LineItems"]] == [
        ("TAX002", D("3.35")),  # an adjustment of one cent on the first of the equal lines
        ("TAX002", D("3.34")),  # Xero's own tax
    ]
    saved = _in_xero(body)
    assert (saved["TotalTax"], saved["Total"]) == (D("6.69"), D("40.13"))


# -- many documents: Xero's totals are ours ----------------------------------------------------
RATES_BY_COUNTRY = {"US": ["0"], "GB": ["20", "0"], "DE": ["19", "7"], "JP": ["10", "8"]}
CURRENCIES = ("USD", "EUR", "GBP", "JPY")


@st.composite
def documents_of(draw: st.DrawFn) -> tuple[Any, bool]:
    """An invoice or a credit note as the billing core makes it: 1 to 8 lines (amounts in the
    currency's minor unit, recurring or one-time, a credit note's recurring lines partly
    recognized) at the rates of its customer's country, taxed once per rate with the core's
    rounding."""
    code = draw(st.sampled_from(CURRENCIES))
    money = currency(code)
    country = draw(st.sampled_from(sorted(RATES_BY_COUNTRY)))
    customer = Customer(7, "Customer", country, code)
    unit = money.quantum
    credit = draw(st.booleans())
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        amount = draw(st.integers(1, 5_000_000)) * unit
        recurring = draw(st.booleans())
        recognized = D(0)
        if credit and recurring:
            recognized = draw(st.integers(0, int(amount / unit))) * unit
        rate = D(draw(st.sampled_from(RATES_BY_COUNTRY[country])))
        lines.append(Line("P", None, recurring, amount, recognized, tax_rate=rate))
    rounding = draw(st.sampled_from(list(Rounding)))
    taxes = tax_by_rate(((line.amount, line.tax_rate) for line in lines), money, rounding)
    total = sum((line.amount for line in lines), D(0)) + sum((t.tax for t in taxes), D(0))
    content: dict[str, Any] = {
        "lines": lines,
        "taxes": [Tax(t.rate, t.tax) for t in taxes],
        "total": str(total),
    }
    issued = date(2026, 3, 1)
    if credit:
        return credit_note(9, "CN-000009", "INV-000001", customer, issued, **content), True
    return invoice(9, "INV-000009", customer, issued, **content), False


@settings(max_examples=300, deadline=None)
@given(documents_of())
def test_xeros_totals_equal_the_billing_cores_for_any_document(case: tuple[Any, bool]) -> None:
    doc, credit = case
    build = payloads.credit_note if credit else payloads.invoice
    saved = _in_xero(build(doc, "c-1", CHART), credit=credit)
    assert saved["TotalTax"] == sum((t.amount for t in doc.taxes), D(0))
    assert saved["Total"] == doc.total
    adjusted = [  # lines whose tax is not Xero's own: at most one per rate
        item
        for item in saved["LineItems"]
        if item["TaxAmount"]
        != xero_line_tax(item["LineAmount"], DEFAULT_TAX_RATES[item["TaxType"]].rate)
    ]
    assert len({item["TaxType"] for item in adjusted}) == len(adjusted)


# -- the mapping against the organisation's tax rates ---------------------------------------------
def _rates() -> dict[str, OrganisationTaxRate]:
    return {
        code: OrganisationTaxRate.of(rate.as_xero(code)) for code, rate in DEFAULT_TAX_RATES.items()
    }


def test_the_shipped_mapping_fits_the_demo_organisation() -> None:
    assert mapping_problems(CHART, _rates()) == []
    # The demo bills the US, Canada, Ireland, the Netherlands, Spain (0 %), the UK, France (20 %),
    # Germany (19 %) and Japan (10 %).
    for country, rate, tax_type in [
        ("US", "0", "NONE"),
        ("IE", "0", "NONE"),
        ("GB", "20", "TAX002"),
        ("FR", "20", "TAX005"),
        ("DE", "19", "TAX003"),
        ("DE", "7", "TAX004"),
        ("JP", "10", "TAX006"),
    ]:
        assert CHART.tax_type(D(rate), country) == tax_type, (country, rate)
    assert CHART.tax_type(D("19"), "FR") is None


def test_each_tax_type_the_organisation_cannot_take_is_named() -> None:
    chart = XeroChart(
        tax_types={
            "0": "NONE",
            "DE": {"19": "OUTPUT2"},  # a UK code the organisation does not have
            "GB": {"20": "INPUT"},  # purchases only
            "FR": {"20": "TAX003"},  # Germany VAT 19%
            "JP": {"10": "TAX006"},
        }
    )
    assert [str(problem) for problem in mapping_problems(chart, _rates())] == [
        "xero.tax_types: DE 19% = OUTPUT2: the Xero organisation has no tax rate OUTPUT2 (its "
        "tax rates at 19%: TAX003 (Germany VAT 19%, 19%))",
        "xero.tax_types: FR 20% = TAX003: that is TAX003 (Germany VAT 19%, 19%), not 20%",
        "xero.tax_types: GB 20% = INPUT: INPUT (Tax on Purchases, 0%) cannot be used on sales "
        "in Xero",
    ]


def test_a_tax_type_the_organisation_lacks_stops_the_push_before_anything_is_sent(
    factory: sessionmaker[Session], database_url: str, tmp_path: Path, xero_sandbox: XeroSandbox
) -> None:
    settings = settings_for(database_url, tmp_path, xero_sandbox)
    mapping = Path(settings.accounting.mapping_file)
    document = yaml.safe_load(mapping.read_text())
    document["xero"]["tax_types"]["DE"] = {"19": "OUTPUT2"}  # the old default: a UK code
    mapping.write_text(yaml.safe_dump(document))
    line = next(
        number
        for number, text in enumerate(mapping.read_text().splitlines(), 1)
        if "'19': OUTPUT2" in text
    )
    bill_four_customers(factory, settings)

    with pytest.raises(ConfigError) as refused:
        push(factory, settings, new_target(settings, factory))

    assert str(refused.value) == (
        f"{mapping}:{line}: xero.tax_types: DE 19% = OUTPUT2: the Xero organisation has no tax "
        "rate OUTPUT2 (its tax rates at 19%: TAX003 (Germany VAT 19%, 19%))"
    )
    assert api_calls(xero_sandbox) == [("GET", "TaxRates", 200)]
    assert depth(factory) == {"waiting": ROWS, "parked": 0}

    document["xero"]["tax_types"]["DE"] = {"19": "TAX003"}
    mapping.write_text(yaml.safe_dump(document))
    assert counts(push(factory, settings, new_target(settings, factory))) == (ROWS, 0, {})


def test_connector_push_exits_2_naming_the_code_and_the_mapping_file(
    database_url: str,
    tmp_path: Path,
    xero_sandbox: XeroSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_for(database_url, tmp_path, xero_sandbox)
    mapping = Path(settings.accounting.mapping_file)
    document = yaml.safe_load(mapping.read_text())
    document["xero"]["tax_types"]["JP"] = {"10": "OUTPUT"}  # Tax on Sales, 0 %
    mapping.write_text(yaml.safe_dump(document))
    env = {
        "CONNECTOR_DATABASE_URL": database_url,
        "CONNECTOR_ACCOUNTING__TARGET": "xero",
        "CONNECTOR_ACCOUNTING__MAPPING_FILE": str(mapping),
        "CONNECTOR_TAX__RATES": json.dumps(TEST_TAX_RATES),
        **{
            f"CONNECTOR_XERO__{key.upper()}": str(value)
            for key, value in settings.xero.model_dump().items()
            if key in ("client_id", "tenant_id", "api_url", "token_url", "ca_file")
        },
        "CONNECTOR_XERO__CLIENT_SECRET": xero_sandbox.config.client_secret,
    }
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(app, ["push"], env=env)

    line = _line_of(mapping, "'10': OUTPUT")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().replace("\n", " ") == (
        f"configuration error: {mapping}:{line}: xero.tax_types: JP 10% = OUTPUT: that is OUTPUT "
        "(Tax on Sales, 0%), not 10%"
    )


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)
