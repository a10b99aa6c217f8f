"""Tax in the billing run, then in the ledger: each tax line names its jurisdiction (a country,
or a region with rates of its own), EU business customers with a valid VAT id of another member
state are reverse-charged, and an invalid VAT id is taxed normally and reported."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from beancount import loader
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.vat import NOTE
from connector.db import tables
from connector.db.engine import transaction
from connector.settings import Settings, load_settings
from connector.sync import contracts
from connector.sync.billing_run import run_billing
from connector.sync.push import push
from connector.sync.status import TaxIdWarning, status
from tests import builders
from tests.conftest import ACCOUNTING_MAPPING

D = Decimal
JAN = date(2026, 1, 1)
VALID_FR = "FR40303265045"
INVALID_FR = "FR40303265046"  # a check digit off
VALID_DE = "DE136695976"


@pytest.fixture
def tax_settings(database_url: str, tmp_path: Path) -> Settings:
    """A seller in Germany, taxing France, the UK, Germany and California."""
    return load_settings(
        None,
        database_url=database_url,
        ledger={"path": tmp_path / "ledger.beancount"},
        accounting={"mapping_file": str(ACCOUNTING_MAPPING)},
        tax={
            "rates": {"FR": "20", "GB": "20", "DE": "19", "US-CA": "7.25"},
            "home_country": "DE",
        },
    )


def customer(
    factory: sessionmaker[Session],
    ref: str,
    country: str,
    currency: str,
    *,
    tax_id: str | None = None,
    region: str | None = None,
) -> int:
    """A customer billed 100.00 a month (in its currency) from January; its subscription id."""
    with transaction(factory) as session:
        row = contracts.upsert_customer(
            session,
            name=f"Customer {ref}",
            country=country,
            currency=currency,
            tax_id=tax_id,
            region=region,
            system="test",
            external_id=ref,
        )
        price = builders.price(session, f"SEATS-{ref}", currency=currency, unit_amount="100.00")
        return builders.subscription(session, row, [builders.spec(session, price, 1)], start=JAN).id


def taxes(factory: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    """(number, jurisdiction, rate, taxable, tax, reverse charge, note) of every tax line."""
    doc, tax = tables.Document, tables.DocumentTax
    with factory() as session:
        rows = session.execute(
            select(
                doc.number,
                tax.jurisdiction,
                tax.rate,
                tax.taxable,
                tax.tax,
                tax.reverse_charge,
                doc.tax_note,
            )
            .join(doc, doc.id == tax.document_id)
            .order_by(doc.kind, doc.number)
        )
        return [tuple(row) for row in rows]


def ledger_balances(settings: Settings) -> dict[tuple[str, str], Decimal]:
    entries, errors, _ = loader.load_file(str(settings.ledger.path))
    assert [error.message for error in errors] == []
    sums: dict[tuple[str, str], Decimal] = {}
    for entry in entries:
        for posting in getattr(entry, "postings", ()):
            key = (posting.account, posting.units.currency)
            sums[key] = sums.get(key, D(0)) + posting.units.number
    return sums


def tax_accounts(settings: Settings) -> dict[tuple[str, str], Decimal]:
    return {k: v for k, v in ledger_balances(settings).items() if "SalesTax" in k[0]}


def test_french_and_british_vat_at_20_percent_are_kept_apart(
    factory: sessionmaker[Session], tax_settings: Settings
) -> None:
    customer(factory, "FR1", "France", "EUR")  # no VAT id: a consumer
    customer(factory, "GB1", "GB", "GBP", tax_id="GB980780684")  # not in the EU
    customer(factory, "FR2", "FR", "USD")  # French, billed in dollars

    run_billing(factory, tax_settings, JAN)
    push(factory, tax_settings)

    assert taxes(factory) == [
        ("INV-000001", "FR", D("20"), D("100.00"), D("20.00"), False, None),
        ("INV-000002", "GB", D("20"), D("100.00"), D("20.00"), False, None),
        ("INV-000003", "FR", D("20"), D("100.00"), D("20.00"), False, None),
    ]
    assert tax_accounts(tax_settings) == {
        ("Liabilities:SalesTax:FR:20", "EUR"): D("-20.00"),
        ("Liabilities:SalesTax:GB:20", "GBP"): D("-20.00"),
        ("Liabilities:SalesTax:FR:20:USD", "USD"): D("-20.00"),
    }


def test_an_eu_business_with_a_valid_vat_id_is_reverse_charged(
    factory: sessionmaker[Session], tax_settings: Settings
) -> None:
    customer(factory, "FR1", "France", "EUR", tax_id="FR 40 303 265 045")

    run_billing(factory, tax_settings, JAN)
    push(factory, tax_settings)

    assert taxes(factory) == [("INV-000001", "FR", D("0"), D("100.00"), D("0.00"), True, NOTE)]
    assert builders.documents(factory) == [("INV-000001", "invoice", JAN, D("100.00"), D("100.00"))]
    # nothing is owed to France: no tax account, no posting; the customer owes 100.00
    assert tax_accounts(tax_settings) == {}
    assert ledger_balances(tax_settings)[("Assets:AccountsReceivable:Customer-FR1-1", "EUR")] == D(
        "100.00"
    )
    with transaction(factory) as session:
        assert status(session, JAN, home_country="DE").tax_ids == []


def test_a_customer_in_the_sellers_own_member_state_pays_its_vat(
    factory: sessionmaker[Session], tax_settings: Settings
) -> None:
    customer(factory, "DE1", "Germany", "EUR", tax_id=VALID_DE)

    run_billing(factory, tax_settings, JAN)

    assert taxes(factory) == [("INV-000001", "DE", D("19"), D("100.00"), D("19.00"), False, None)]
    with transaction(factory) as session:
        assert status(session, JAN, home_country="DE").tax_ids == []


def test_an_invalid_vat_id_is_taxed_normally_and_reported(
    factory: sessionmaker[Session], tax_settings: Settings
) -> None:
    customer(factory, "FR1", "France", "EUR", tax_id=INVALID_FR)

    run_billing(factory, tax_settings, JAN)
    push(factory, tax_settings)

    assert taxes(factory) == [("INV-000001", "FR", D("20"), D("100.00"), D("20.00"), False, None)]
    assert tax_accounts(tax_settings) == {("Liabilities:SalesTax:FR:20", "EUR"): D("-20.00")}
    with transaction(factory) as session:
        report = status(session, JAN, home_country="DE")
    assert report.tax_ids == [
        TaxIdWarning(
            1,
            "Customer FR1",
            "FR",
            INVALID_FR,
            f"VAT id '{INVALID_FR}' is not a valid FR VAT number: taxed at the normal rate",
        )
    ]
    assert report.to_dict()["tax_ids"] == [
        {
            "customer_id": 1,
            "customer": "Customer FR1",
            "country": "FR",
            "tax_id": INVALID_FR,
            "warning": f"VAT id '{INVALID_FR}' is not a valid FR VAT number: taxed at the normal "
            "rate",
        }
    ]


def test_a_us_region_with_its_own_rate(
    factory: sessionmaker[Session], tax_settings: Settings
) -> None:
    customer(factory, "CA1", "United States", "USD", region="California")
    customer(factory, "OR1", "US", "USD", region="OR")  # no rate for Oregon: the country's, none
    lost = customer(factory, "XX1", "US", "USD")  # where in the US?

    result = run_billing(factory, tax_settings, JAN)
    push(factory, tax_settings)

    with factory() as session:
        regions = session.execute(
            select(tables.Customer.name, tables.Customer.region).order_by(tables.Customer.id)
        ).all()
    assert [tuple(row) for row in regions] == [
        ("Customer CA1", "US-CA"),
        ("Customer OR1", "US-OR"),
        ("Customer XX1", None),
    ]
    assert taxes(factory) == [
        ("INV-000001", "US-CA", D("7.25"), D("100.00"), D("7.25"), False, None),
        ("INV-000002", "US", D("0"), D("100.00"), D("0.00"), False, None),
    ]
    assert result.failed == {
        lost: "customer in US has no region (state or province), needed because tax rates are "
        "set for regions of US"
    }
    assert tax_accounts(tax_settings) == {("Liabilities:SalesTax:US-CA:7-25", "USD"): D("-7.25")}


def test_a_credit_note_follows_its_invoice_not_the_customers_new_vat_id(
    factory: sessionmaker[Session], tax_settings: Settings
) -> None:
    subscription = customer(factory, "FR1", "France", "EUR", tax_id=VALID_FR)
    run_billing(factory, tax_settings, JAN)
    with transaction(factory) as session:
        contracts.upsert_customer(
            session,
            name="Customer FR1",
            country="FR",
            currency="EUR",
            tax_id=None,  # the VAT id was removed in the CRM since
            system="test",
            external_id="FR1",
        )
        contracts.cancel_subscription(session, subscription, cancel_date=date(2026, 1, 17))

    run_billing(factory, tax_settings, date(2026, 1, 17))
    push(factory, tax_settings)

    # Jan 17..31: 15 of 31 days of 100.00 credited, reverse-charged like the invoice
    assert taxes(factory) == [
        ("CN-000001", "FR", D("0"), D("48.39"), D("0.00"), True, NOTE),
        ("INV-000001", "FR", D("0"), D("100.00"), D("0.00"), True, NOTE),
    ]
    assert tax_accounts(tax_settings) == {}
