"""The pull against the Salesforce sandbox over HTTPS, on SQLite and PostgreSQL.

Each test builds its org by hand (accounts, products with their standard price book entries,
won deals with line items and the custom fields), pulls, and checks the exact customers,
subscriptions and items, then the exact invoices and credit notes a billing run issues. Amounts
are worked out in the tests from the prices and dates: the billing core bills periods in
advance and prorates a change by ``days from the change through the period end / days in the
period``, rounded once to the currency's minor unit.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.cli import app
from connector.crm.client import SalesforceClient
from connector.db import staging, tables
from connector.db.engine import make_engine, session_factory
from connector.errors import CrmError
from connector.settings import Settings, load_settings
from connector.sync import crm_pull
from connector.sync.billing_run import run_billing
from connector.sync.crm_pull import PullResult
from connector.sync.status import status
from connector.sync.usage_events import ingest_batch
from connector.sync.usage_mapping import usage_mapping_of
from sandbox.salesforce.faults import FaultRule
from sandbox.salesforce.rules import standard_pricebook
from sandbox.salesforce.server import Sandbox
from tests.conftest import TEST_TAX_RATES

D = Decimal
MAPPING_FILE = Path(__file__).resolve().parents[2] / "mappings" / "salesforce.yaml"
SYSTEM = "salesforce"
UPGRADE, DOWNGRADE = "Existing Customer - Upgrade", "Existing Customer - Downgrade"
WON, REOPENED = "Closed Won", "Negotiation/Review"
PULL_DAY = date(2026, 6, 30)  # the business date of the pulls (only term changes use it)
HELD_HINT = "cancel its subscription in the connector or win the deal again"


# -- the org -------------------------------------------------------------------------------------
@dataclass
class Crm:
    """Writes to the sandbox org directly, as users of Salesforce would."""

    sandbox: Sandbox
    book: str = ""
    currencies: dict[str, str] = field(default_factory=dict)  # account id: currency
    entries: dict[tuple[str, str], str] = field(default_factory=dict)  # (code, currency): id

    def __post_init__(self) -> None:
        self.org = self.sandbox.org
        self.book = standard_pricebook(self.org)

    def account(self, name: str, country: str | None, currency: str, **fields: Any) -> str:
        account_id = self.org.create(
            "Account",
            {"Name": name, "BillingCountry": country, "CurrencyIsoCode": currency, **fields},
        )
        self.currencies[account_id] = currency
        return account_id

    def product(
        self,
        code: str | None,
        name: str,
        billing_type: str,
        family: str,
        prices: dict[str, str],
        **fields: Any,
    ) -> str:
        product_id = self.org.create(
            "Product2",
            {
                "Name": name,
                "ProductCode": code,
                "Family": family,
                "IsActive": True,
                "Billing_Type__c": billing_type,
                **fields,
            },
        )
        for currency, price in prices.items():
            self.entries[(code or name, currency)] = self.org.create(
                "PricebookEntry",
                {
                    "Pricebook2Id": self.book,
                    "Product2Id": product_id,
                    "UnitPrice": price,
                    "IsActive": True,
                    "CurrencyIsoCode": currency,
                },
            )
        return product_id

    def deal(
        self,
        account: str,
        name: str,
        *items: tuple[Any, ...],
        stage: str = WON,
        close: str = "2025-12-15",
        currency: str | None = None,
        **fields: Any,
    ) -> str:
        """A deal with its line items: (code, quantity, unit price[, discount[, service date]])."""
        deal_id = self.org.create(
            "Opportunity",
            {
                "Name": name,
                "AccountId": account,
                "StageName": stage,
                "CloseDate": close,
                "CurrencyIsoCode": currency or self.currencies[account],
                "Pricebook2Id": self.book,
                **fields,
            },
        )
        for entry in items:
            self.line(deal_id, *entry, currency=currency or self.currencies[account])
        return deal_id

    def line(  # noqa: PLR0917 - the fields of a line item, in order
        self,
        deal_id: str,
        code: str,
        quantity: str,
        price: str,
        discount: str | None = None,
        service_date: str | None = None,
        *,
        currency: str,
    ) -> str:
        return self.org.create(
            "OpportunityLineItem",
            {
                "OpportunityId": deal_id,
                "PricebookEntryId": self.entries[(code, currency)],
                "Quantity": quantity,
                "UnitPrice": price,
                "Discount": discount,
                "ServiceDate": service_date,
            },
        )

    def lines_of(self, deal_id: str) -> list[str]:
        return self.org.ids_where(
            self.org.schema.objects["OpportunityLineItem"], "OpportunityId", deal_id
        )


@pytest.fixture
def crm(salesforce_sandbox: Sandbox) -> Crm:
    """An org with a small catalog priced in USD, EUR and JPY."""
    org = Crm(salesforce_sandbox)
    prices = {"USD": "45", "EUR": "42", "JPY": "6750"}
    org.product("PRO", "Professional Edition", "Recurring", "Platform", prices)
    org.product("SUP", "Premium Support", "Recurring", "Support", prices)
    org.product(
        "ONBOARD",
        "Onboarding Package",
        "One-Time",
        "Services",
        {"USD": "2500", "EUR": "2300", "JPY": "375000"},
    )
    return org


@pytest.fixture
def acme(crm: Crm) -> str:
    return crm.account("Acme Inc.", "United States", "USD")


@pytest.fixture
def berlin(crm: Crm) -> str:
    return crm.account("Berlin GmbH", "Germany", "EUR", Tax_Id__c="DE123456789")


@pytest.fixture
def tokyo(crm: Crm) -> str:
    return crm.account("Tokyo K.K.", "JP", "JPY")


def salesforce_settings(sandbox: Sandbox, **extra: Any) -> dict[str, Any]:
    return {
        "login_url": sandbox.instance_url,
        "ca_file": str(sandbox.ca_file),
        "instance_url": sandbox.instance_url,
        "session_id": sandbox.session_id,
        "backoff_initial_seconds": 0.001,
        "backoff_max_seconds": 0.01,
        "lookback_minutes": 10,
        "mapping_file": str(MAPPING_FILE),
        **extra,
    }


def make_settings(database_url: str, sandbox: Sandbox, tmp_path: Path, **extra: Any) -> Settings:
    return load_settings(
        None,
        database_url=database_url,
        ledger={"path": tmp_path / "ledger.beancount"},
        tax={"rates": TEST_TAX_RATES},
        salesforce=salesforce_settings(sandbox, **extra),
    )


@pytest.fixture
def pull_settings(database_url: str, salesforce_sandbox: Sandbox, tmp_path: Path) -> Settings:
    return make_settings(database_url, salesforce_sandbox, tmp_path)


@pytest.fixture
def clean_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[sessionmaker[Session]]:
    """A second database (SQLite) for a clean pull to compare with."""
    path = tmp_path / "clean.db"
    shutil.copy(request.getfixturevalue("sqlite_template"), path)
    engine: Engine = make_engine(f"sqlite:///{path}")
    yield session_factory(engine)
    engine.dispose()


def pull(factory: sessionmaker[Session], settings: Settings, **options: Any) -> PullResult:
    return crm_pull.pull(factory, settings, as_of=PULL_DAY, **options)


# -- what the billing core holds ---------------------------------------------------------------
def external_ids(session: Session, entity: str) -> dict[int, str]:
    rows = session.execute(
        select(tables.ExternalId.entity_id, tables.ExternalId.external_id).where(
            tables.ExternalId.entity == entity, tables.ExternalId.system == SYSTEM
        )
    )
    return {entity_id: external_id for entity_id, external_id in rows}


def customers(factory: sessionmaker[Session]) -> dict[str, tuple[Any, ...]]:
    """Account id: (name, country, currency, tax id)."""
    with factory() as session:
        ids = external_ids(session, "customers")
        return {
            ids[row.id]: (row.name, row.country, row.currency, row.tax_id)
            for row in session.scalars(select(tables.Customer))
        }


def subscriptions(factory: sessionmaker[Session]) -> dict[str, tuple[Any, ...]]:
    """Deal id: (account id, contract name, currency, start, frequency, term months, trial days,
    auto renew, cancel date)."""
    with factory() as session:
        deals = external_ids(session, "subscriptions")
        accounts = external_ids(session, "customers")
        rows = session.execute(
            select(tables.Subscription, tables.Contract.name).join(
                tables.Contract, tables.Contract.id == tables.Subscription.contract_id
            )
        )
        return {
            deals[row.id]: (
                accounts[row.customer_id],
                name,
                row.currency,
                row.start_date,
                row.frequency,
                row.term_months,
                row.trial_days,
                row.auto_renew,
                row.cancel_date,
            )
            for row, name in rows
        }


def items(factory: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """Deal id: [(item key, product code, kind, service date, effective date, quantity, unit
    price, currency, discount)], one entry per item version."""
    with factory() as session:
        deals = external_ids(session, "subscriptions")
        rows = session.execute(
            select(
                tables.SubscriptionItem.subscription_id,
                tables.SubscriptionItem.item_key,
                tables.Product.code,
                tables.SubscriptionItem.kind,
                tables.SubscriptionItem.service_date,
                tables.ItemVersion.effective_date,
                tables.ItemVersion.quantity,
                tables.Price.unit_amount,
                tables.Price.currency,
                tables.ItemVersion.discount_percent,
            )
            .join(tables.Product, tables.Product.id == tables.SubscriptionItem.product_id)
            .join(tables.ItemVersion, tables.ItemVersion.item_id == tables.SubscriptionItem.id)
            .join(tables.Price, tables.Price.id == tables.ItemVersion.price_id)
            .order_by(
                tables.SubscriptionItem.subscription_id,
                tables.SubscriptionItem.item_key,
                tables.ItemVersion.effective_date,
            )
        )
        found: dict[str, list[tuple[Any, ...]]] = {}
        for subscription_id, *rest in rows:
            found.setdefault(deals[subscription_id], []).append(tuple(rest))
        return found


def documents(factory: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    """(number, deal id, currency, issue date, period start, period end, subtotal, tax, total),
    invoices first, in number order."""
    with factory() as session:
        deals = external_ids(session, "subscriptions")
        rows = session.scalars(
            select(tables.Document).order_by(tables.Document.kind.desc(), tables.Document.number)
        )
        return [
            (
                row.number,
                deals.get(row.subscription_id or 0),
                row.currency,
                row.issue_date,
                row.period_start,
                row.period_end,
                row.subtotal,
                row.tax_total,
                row.total,
            )
            for row in rows
        ]


def document_lines(factory: sessionmaker[Session], number: str) -> list[tuple[Any, ...]]:
    """(item key, description, service start, service end, amount) of a document's lines."""
    with factory() as session:
        rows = session.execute(
            select(
                tables.SubscriptionItem.item_key,
                tables.DocumentLine.description,
                tables.DocumentLine.service_start,
                tables.DocumentLine.service_end,
                tables.DocumentLine.amount,
            )
            .join(tables.Document, tables.Document.id == tables.DocumentLine.document_id)
            .join(
                tables.SubscriptionItem,
                tables.SubscriptionItem.id == tables.DocumentLine.subscription_item_id,
            )
            .where(tables.Document.number == number)
            .order_by(tables.DocumentLine.id)
        )
        return [tuple(row) for row in rows]


def staged(factory: sessionmaker[Session]) -> dict[str, tuple[str, str | None]]:
    """Record id: (state, reason) of every staged record."""
    with factory() as session:
        return {
            row.record_id: (row.state, row.reason)
            for row in session.scalars(select(tables.CrmRecord))
        }


def billing_state(factory: sessionmaker[Session]) -> dict[str, Any]:
    """Everything the pull and the billing run decided, without ids and timestamps: records
    are named by their Salesforce ids, documents by their numbers."""
    with factory() as session:
        deals = external_ids(session, "subscriptions")
        accounts = external_ids(session, "customers")
        numbers = dict(session.execute(select(tables.Document.id, tables.Document.number)).all())
        item_keys = {
            row.id: (deals[row.subscription_id], row.item_key)
            for row in session.scalars(select(tables.SubscriptionItem))
        }
        products = dict(session.execute(select(tables.Product.id, tables.Product.code)).all())
        prices = {
            row.id: (products[row.product_id], row.currency, row.kind, row.model, row.unit_amount)
            for row in session.scalars(select(tables.Price))
        }
        amendments = {
            row.id: (deals[row.subscription_id], row.kind, row.effective_date, row.revision)
            for row in session.scalars(select(tables.Amendment))
        }
        return {
            "customers": sorted(
                (accounts[row.id], row.name, row.country, row.currency, row.tax_id)
                for row in session.scalars(select(tables.Customer))
            ),
            "products": sorted(
                (row.code, row.name, row.family, row.tax_code)
                for row in session.scalars(select(tables.Product))
            ),
            "prices": sorted(prices.values(), key=repr),
            "subscriptions": sorted(
                (
                    deals[row.id],
                    accounts[row.customer_id],
                    row.currency,
                    row.frequency,
                    row.start_date,
                    row.trial_days,
                    row.term_months,
                    row.auto_renew,
                    row.term_count,
                    row.cancel_date,
                    row.revision,
                    row.billed_until,
                    row.billed_as_of,
                    row.reconcile_from,
                    row.next_billing_date,
                    row.billing_error,
                )
                for row in session.scalars(select(tables.Subscription))
            ),
            "amendments": sorted(
                (*amendments[row.id], row.reference)
                for row in session.scalars(select(tables.Amendment))
            ),
            "items": sorted(
                (*item_keys[row.id], products[row.product_id], row.kind, row.service_date)
                for row in session.scalars(select(tables.SubscriptionItem))
            ),
            "item_versions": sorted(
                (
                    *item_keys[row.item_id],
                    row.effective_date,
                    prices[row.price_id],
                    row.quantity,
                    row.discount_percent,
                    amendments.get(row.amendment_id or 0),
                )
                for row in session.scalars(select(tables.ItemVersion))
            ),
            "charges": sorted(
                (*item_keys[row.subscription_item_id], row.period_start, row.revision, row.amount)
                for row in session.scalars(select(tables.Charge))
            ),
            "documents": sorted(
                (
                    row.number,
                    row.kind,
                    accounts[row.customer_id],
                    deals.get(row.subscription_id or 0),
                    numbers.get(row.invoice_id or 0),
                    row.currency,
                    row.issue_date,
                    row.due_date,
                    row.period_start,
                    row.period_end,
                    row.subtotal,
                    row.tax_total,
                    row.total,
                    row.amount_paid,
                    row.amount_credited,
                    row.unapplied,
                    row.status,
                )
                for row in session.scalars(select(tables.Document))
            ),
            "document_lines": sorted(
                (
                    (
                        numbers[row.document_id],
                        item_keys.get(row.subscription_item_id or 0),
                        products[row.product_id],
                        row.kind,
                        row.description,
                        row.quantity,
                        row.discount_percent,
                        row.service_start,
                        row.service_end,
                        row.amount,
                        row.tax_rate,
                        row.credited_amount,
                    )
                    for row in session.scalars(select(tables.DocumentLine))
                ),
                key=repr,
            ),
            "document_taxes": sorted(
                (numbers[row.document_id], row.rate, row.taxable, row.tax)
                for row in session.scalars(select(tables.DocumentTax))
            ),
            "crm_records": sorted(
                (
                    row.object,
                    row.record_id,
                    row.state,
                    row.reason,
                    row.deleted,
                    row.payload_hash,
                    row.applied_hash,
                )
                for row in session.scalars(select(tables.CrmRecord))
            ),
            # Where each cursor stands depends on when the pull ran (the org's time then).
            "cursors": sorted(staging.cursors(session, f"{SYSTEM}:")),
        }


def invoice(  # noqa: PLR0917 - the columns of a document row, in order
    number: str,
    deal: str,
    currency: str,
    issued: date,
    period: tuple[date, date],
    subtotal: str,
    tax: str = "0",
) -> tuple[Any, ...]:
    """A document as :func:`documents` shows it; ``tax`` in the currency's minor unit."""
    exponent = 0 if currency == "JPY" else 2
    quantum = D(1).scaleb(-exponent)
    amounts = (D(subtotal), D(tax))
    return (
        number,
        deal,
        currency,
        issued,
        *period,
        amounts[0].quantize(quantum),
        amounts[1].quantize(quantum),
        (amounts[0] + amounts[1]).quantize(quantum),
    )


def share(amount: str, days: int, period_days: int, currency: str = "USD") -> Decimal:
    """``amount × days / period_days`` rounded half up to the minor unit, worked out here."""
    quantum = D(1) if currency == "JPY" else D("0.01")
    return (D(amount) * days / period_days).quantize(quantum, rounding="ROUND_HALF_UP")


def days(first: date, last: date) -> int:
    return (last - first).days + 1


# -- every mapping rule, billed --------------------------------------------------------------------
def test_first_pull_maps_every_rule_and_bills_exactly(  # noqa: PLR0917 - fixtures
    crm: Crm,
    acme: str,
    berlin: str,
    tokyo: str,
    factory: sessionmaker[Session],
    pull_settings: Settings,
) -> None:
    monthly = crm.deal(
        acme,
        "Acme - Monthly",
        ("PRO", "10", "45.00"),
        Service_Start_Date__c="2026-01-01",
        Billing_Frequency__c="Monthly",
        Term_Months__c=12,
    )
    annual = crm.deal(
        berlin,
        "Berlin - Annual with trial",
        ("PRO", "5", "100.00"),
        Service_Start_Date__c="2026-01-01",
        Billing_Frequency__c="Annual",
        Trial_Days__c=14,
        Auto_Renew__c=False,
        Term_Months__c=24,
    )
    onboarding = crm.deal(  # no service start (CloseDate), no frequency (Monthly)
        tokyo,
        "Tokyo - Onboarding",
        ("PRO", "3", "5000"),
        ("ONBOARD", "1", "300000", None, "2026-02-10"),
        close="2026-02-01",
    )
    discounted = crm.deal(
        acme,
        "Acme - Support",
        ("SUP", "4", "25.00", "15"),
        Service_Start_Date__c="2026-02-15",
        Billing_Frequency__c="Quarterly",
    )

    result = pull(factory, pull_settings)

    assert (result.fetched, result.applied, result.quarantined, result.held) == (
        {"Account": 3, "Opportunity": 4},
        7,
        0,
        0,
    )
    assert (result.ignored, result.unchanged, result.stopped) == (0, 0, None)
    assert customers(factory) == {
        acme: ("Acme Inc.", "US", "USD", None),
        berlin: ("Berlin GmbH", "DE", "EUR", "DE123456789"),
        tokyo: ("Tokyo K.K.", "JP", "JPY", None),
    }
    assert subscriptions(factory) == {
        monthly: (acme, "Acme - Monthly", "USD", date(2026, 1, 1), "monthly", 12, 0, True, None),
        annual: (
            berlin,
            "Berlin - Annual with trial",
            "EUR",
            date(2026, 1, 1),
            "annual",
            24,
            14,
            False,
            None,
        ),
        onboarding: (
            tokyo,
            "Tokyo - Onboarding",
            "JPY",
            date(2026, 2, 1),
            "monthly",
            12,
            0,
            True,
            None,
        ),
        discounted: (
            acme,
            "Acme - Support",
            "USD",
            date(2026, 2, 15),
            "quarterly",
            12,
            0,
            True,
            None,
        ),
    }
    assert items(factory) == {
        monthly: [("PRO", "PRO", "recurring", None, date(2026, 1, 1), D(10), D(45), "USD", D(0))],
        annual: [("PRO", "PRO", "recurring", None, date(2026, 1, 1), D(5), D(100), "EUR", D(0))],
        onboarding: [
            (
                "ONBOARD",
                "ONBOARD",
                "one_time",
                date(2026, 2, 10),
                date(2026, 2, 1),
                D(1),
                D(300000),
                "JPY",
                D(0),
            ),
            ("PRO", "PRO", "recurring", None, date(2026, 2, 1), D(3), D(5000), "JPY", D(0)),
        ],
        discounted: [
            ("SUP", "SUP", "recurring", None, date(2026, 2, 15), D(4), D(25), "USD", D(15))
        ],
    }

    billed = run_billing(factory, pull_settings, date(2026, 3, 1))

    assert billed.failed == {}
    march = date(2026, 3, 1)
    # Monthly, billed in advance: 10 × 45.00 for January, February and March (US: no tax).
    # Annual after a 14-day trial: billing starts 2026-01-15; 5 × 100.00 plus 19% VAT.
    # JPY monthly from the CloseDate; the one-time onboarding rides on February's invoice;
    # 10% tax. Quarterly support: 4 × 25.00 = 100.00 less 15% = 85.00.
    assert documents(factory) == [
        invoice("INV-000001", monthly, "USD", march, (date(2026, 1, 1), date(2026, 1, 31)), "450"),
        invoice("INV-000002", monthly, "USD", march, (date(2026, 2, 1), date(2026, 2, 28)), "450"),
        invoice("INV-000003", monthly, "USD", march, (date(2026, 3, 1), date(2026, 3, 31)), "450"),
        invoice(
            "INV-000004",
            annual,
            "EUR",
            march,
            (date(2026, 1, 15), date(2027, 1, 14)),
            "500",
            "95",
        ),
        invoice(
            "INV-000005",
            onboarding,
            "JPY",
            march,
            (date(2026, 2, 1), date(2026, 2, 28)),
            "315000",
            "31500",
        ),
        invoice(
            "INV-000006",
            onboarding,
            "JPY",
            march,
            (date(2026, 3, 1), date(2026, 3, 31)),
            "15000",
            "1500",
        ),
        invoice(
            "INV-000007", discounted, "USD", march, (date(2026, 2, 15), date(2026, 5, 14)), "85"
        ),
    ]
    assert document_lines(factory, "INV-000005") == [
        (
            "PRO",
            "Professional Edition × 3, 2026-02-01..2026-02-28",
            date(2026, 2, 1),
            date(2026, 2, 28),
            D(15000),
        ),
        (
            "ONBOARD",
            "Onboarding Package × 1",
            date(2026, 2, 10),
            date(2026, 2, 10),
            D(300000),
        ),
    ]
    assert [line[1] for line in document_lines(factory, "INV-000007")] == [
        "Premium Support × 4, 2026-02-15..2026-05-14 (discount 15%)"
    ]
    assert (billed.invoices, billed.credit_notes) == (7, 0)
    assert dict(billed.invoiced) == {"USD": D("1435.00"), "EUR": D("595.00"), "JPY": D(363000)}


def test_cancellation_date_credits_the_unused_days(
    crm: Crm, berlin: str, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    deal = crm.deal(
        berlin, "Berlin - Monthly", ("PRO", "10", "30.00"), Service_Start_Date__c="2026-01-01"
    )
    pull(factory, pull_settings)
    run_billing(factory, pull_settings, date(2026, 3, 1))
    assert [doc[0] for doc in documents(factory)] == ["INV-000001", "INV-000002", "INV-000003"]

    crm.org.update("Opportunity", deal, {"Cancellation_Date__c": "2026-03-11"})
    result = pull(factory, pull_settings)
    assert (result.applied, result.quarantined, result.held) == (1, 0, 0)
    assert subscriptions(factory)[deal][-1] == date(2026, 3, 11)  # the first day without service

    billed = run_billing(factory, pull_settings, date(2026, 3, 11))

    # March (31 days) was billed in advance; service ends on 2026-03-10, so 11..31 March
    # (21 days) of 10 × 30.00 come back, with the 19% VAT charged on them.
    credit = share("300.00", days(date(2026, 3, 11), date(2026, 3, 31)), 31, "EUR")
    assert credit == D("203.23")
    march = (date(2026, 3, 1), date(2026, 3, 31))
    assert (billed.invoices, billed.credit_notes) == (0, 1)
    assert documents(factory)[2:] == [
        invoice("INV-000003", deal, "EUR", date(2026, 3, 1), march, "300", "57"),
        invoice("CN-000001", deal, "EUR", date(2026, 3, 11), march, "203.23", "38.61"),
    ]
    assert document_lines(factory, "CN-000001") == [
        (
            "PRO",
            "Professional Edition: unused time 2026-03-11..2026-03-31",
            date(2026, 3, 11),
            date(2026, 3, 31),
            D("203.23"),
        )
    ]
    assert run_billing(factory, pull_settings, date(2026, 6, 1)).invoices == 0


@pytest.fixture
def base_deal(crm: Crm, acme: str, factory: sessionmaker[Session], pull_settings: Settings) -> str:
    """10 × PRO at 30.00 a month from 2026-01-01, pulled and billed through February."""
    deal = crm.deal(
        acme, "Acme - Platform", ("PRO", "10", "30.00"), Service_Start_Date__c="2026-01-01"
    )
    pull(factory, pull_settings)
    run_billing(factory, pull_settings, date(2026, 2, 1))
    return deal


def test_upgrade_mid_period_is_prorated(
    crm: Crm, acme: str, base_deal: str, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    upgrade = crm.deal(
        acme,
        "Acme - Upgrade",
        ("PRO", "15", "30.00"),
        ("SUP", "5", "10.00"),
        close="2026-02-10",
        Type=UPGRADE,
        Amends_Opportunity__c=base_deal,
        Service_Start_Date__c="2026-02-15",
    )

    result = pull(factory, pull_settings)

    assert (result.applied, result.quarantined, result.held) == (1, 0, 0)
    assert upgrade not in subscriptions(factory)  # it changes the deal it amends
    assert items(factory)[base_deal] == [
        ("PRO", "PRO", "recurring", None, date(2026, 1, 1), D(10), D(30), "USD", D(0)),
        ("PRO", "PRO", "recurring", None, date(2026, 2, 15), D(15), D(30), "USD", D(0)),
        ("SUP", "SUP", "recurring", None, date(2026, 2, 15), D(5), D(10), "USD", D(0)),
    ]
    assert staged(factory)[upgrade] == ("applied", None)

    billed = run_billing(factory, pull_settings, date(2026, 2, 15))

    # February has 28 days; from the 15th through the 28th (14 days) the deal is 5 more seats
    # (+150.00 a month) and 5 support units (+50.00 a month).
    feb = (date(2026, 2, 1), date(2026, 2, 28))
    left = days(date(2026, 2, 15), date(2026, 2, 28))
    assert (share("150.00", left, 28), share("50.00", left, 28)) == (D("75.00"), D("25.00"))
    assert (billed.invoices, billed.credit_notes) == (1, 0)
    assert documents(factory)[2:] == [
        invoice("INV-000003", base_deal, "USD", date(2026, 2, 15), feb, "100.00")
    ]
    assert [line[0::4] for line in document_lines(factory, "INV-000003")] == [
        ("PRO", D("75.00")),
        ("SUP", D("25.00")),
    ]

    run_billing(factory, pull_settings, date(2026, 3, 1))
    march = (date(2026, 3, 1), date(2026, 3, 31))
    assert documents(factory)[3:] == [
        invoice("INV-000004", base_deal, "USD", date(2026, 3, 1), march, "500.00")
    ]
    # Pulled again unchanged, the upgrade is not applied twice.
    again = pull(factory, pull_settings)
    assert (again.applied, again.unchanged) == (0, 3)
    assert run_billing(factory, pull_settings, date(2026, 3, 1)).invoices == 0


def test_downgrade_mid_period_is_credited(
    crm: Crm, acme: str, base_deal: str, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    downgrade = crm.deal(
        acme,
        "Acme - Downgrade",
        ("PRO", "4", "30.00"),
        close="2026-02-10",
        Type=DOWNGRADE,
        Amends_Opportunity__c=base_deal,
        Service_Start_Date__c="2026-02-15",
    )

    result = pull(factory, pull_settings)

    assert (result.applied, result.quarantined, result.held) == (1, 0, 0)
    assert staged(factory)[downgrade] == ("applied", None)
    billed = run_billing(factory, pull_settings, date(2026, 3, 1))

    # 6 seats fewer (-180.00 a month) for 15..28 February: 14 of 28 days credited.
    feb = (date(2026, 2, 1), date(2026, 2, 28))
    assert share("180.00", days(date(2026, 2, 15), date(2026, 2, 28)), 28) == D("90.00")
    assert (billed.invoices, billed.credit_notes) == (1, 1)
    assert documents(factory)[1:] == [
        invoice("INV-000002", base_deal, "USD", date(2026, 2, 1), feb, "300.00"),
        invoice(
            "INV-000003",
            base_deal,
            "USD",
            date(2026, 3, 1),
            (date(2026, 3, 1), date(2026, 3, 31)),
            "120.00",
        ),
        invoice("CN-000001", base_deal, "USD", date(2026, 3, 1), feb, "90.00"),
    ]


# -- incremental runs ----------------------------------------------------------------------------
def test_pull_with_nothing_changed_applies_nothing_and_costs_at_most_two_calls(  # noqa: PLR0917 - fixtures
    crm: Crm,
    acme: str,
    berlin: str,
    factory: sessionmaker[Session],
    pull_settings: Settings,
    salesforce_sandbox: Sandbox,
) -> None:
    crm.deal(acme, "Acme - Platform", ("PRO", "10", "30.00"), ("SUP", "10", "9.00"))
    crm.deal(berlin, "Berlin - Platform", ("PRO", "5", "28.00"))
    first = pull(factory, pull_settings)
    # One Composite call carries the first (and only) page of the accounts and the deals.
    assert (first.applied, first.api_calls) == (4, 1)
    before = billing_state(factory)
    used = salesforce_sandbox.usage.used

    second = pull(factory, pull_settings)

    # Everything is read again (the lookback window covers it) and found unchanged.
    assert (second.applied, second.unchanged, second.quarantined, second.held) == (0, 4, 0, 0)
    assert (second.ignored, second.stopped) == (0, None)
    assert billing_state(factory) == before  # staged records and cursors included
    # Only queries: "a cycle in which nothing changed costs at most 2 API calls in all".
    # One Composite call: accounts, deals and line items changed since the cursors.
    assert salesforce_sandbox.usage.used - used == second.api_calls == 1


def test_changed_line_item_quantity_is_billed_as_a_change(
    crm: Crm, base_deal: str, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    [line] = crm.lines_of(base_deal)
    crm.org.update("OpportunityLineItem", line, {"Quantity": 12})

    result = pull(factory, pull_settings)

    assert (result.applied, result.unchanged, result.quarantined) == (1, 1, 0)
    # The deal's line items are its item set from its service start: two more seats since
    # 2026-01-01, so January and February (already billed) each owe 2 × 30.00 more.
    assert items(factory)[base_deal] == [
        ("PRO", "PRO", "recurring", None, date(2026, 1, 1), D(12), D(30), "USD", D(0))
    ]
    billed = run_billing(factory, pull_settings, date(2026, 2, 10))
    assert (billed.invoices, billed.credit_notes) == (2, 0)
    issued = date(2026, 2, 10)
    assert documents(factory)[2:] == [
        invoice(
            "INV-000003", base_deal, "USD", issued, (date(2026, 1, 1), date(2026, 1, 31)), "60"
        ),
        invoice(
            "INV-000004", base_deal, "USD", issued, (date(2026, 2, 1), date(2026, 2, 28)), "60"
        ),
    ]
    # The same version of the deal, read again, is not applied again.
    again = pull(factory, pull_settings)
    assert (again.applied, again.unchanged) == (0, 2)
    assert run_billing(factory, pull_settings, date(2026, 2, 10)).invoices == 0


def test_deleted_line_item_leaves_the_item_set(
    crm: Crm, acme: str, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    deal = crm.deal(
        acme,
        "Acme - Two products",
        ("PRO", "10", "30.00"),
        ("SUP", "2", "9.00"),
        Service_Start_Date__c="2026-01-01",
    )
    pull(factory, pull_settings)
    support = next(
        line
        for line in crm.lines_of(deal)
        if crm.org.row(crm.org.schema.objects["OpportunityLineItem"], line)["ProductCode"] == "SUP"
    )
    crm.org.delete("OpportunityLineItem", support)

    result = pull(factory, pull_settings)

    # queryAll returns deleted rows too; a deleted line item is not one of the deal's items.
    assert (result.applied, result.quarantined) == (1, 0)
    assert items(factory)[deal] == [
        ("PRO", "PRO", "recurring", None, date(2026, 1, 1), D(10), D(30), "USD", D(0)),
        ("SUP", "SUP", "recurring", None, date(2026, 1, 1), D(0), D(9), "USD", D(0)),
    ]


def test_billing_state_becomes_the_customers_region_and_its_tax(
    crm: Crm,
    factory: sessionmaker[Session],
    database_url: str,
    salesforce_sandbox: Sandbox,
    tmp_path: Path,
) -> None:
    settings = load_settings(
        None,
        database_url=database_url,
        ledger={"path": tmp_path / "ledger.beancount"},
        tax={"rates": {"US-CA": "7.25"}},
        salesforce=salesforce_settings(salesforce_sandbox),
    )
    golden = crm.account("Golden Gate LLC", "United States", "USD", BillingState="California")
    beaver = crm.account("Beaver Works", "US", "USD", BillingState="OR")
    london = crm.account("Thames Ltd", "United Kingdom", "USD", BillingState="Greater London")
    for account in (golden, beaver, london):
        crm.deal(account, f"{account} - PRO", ("PRO", "1", "100.00"), close="2026-08-01")

    pull(factory, settings)
    run_billing(factory, settings, date(2026, 8, 1))

    with factory() as session:
        ids = external_ids(session, "customers")
        regions = {ids[row.id]: row.region for row in session.scalars(select(tables.Customer))}
        taxes = {
            ids[customer_id]: (jurisdiction, rate, tax)
            for customer_id, jurisdiction, rate, tax in session.execute(
                select(
                    tables.Document.customer_id,
                    tables.DocumentTax.jurisdiction,
                    tables.DocumentTax.rate,
                    tables.DocumentTax.tax,
                ).join(tables.Document, tables.Document.id == tables.DocumentTax.document_id)
            )
        }
    assert regions == {golden: "US-CA", beaver: "US-OR", london: None}
    assert taxes == {
        golden: ("US-CA", D("7.25"), D("7.25")),
        beaver: ("US", D("0"), D("0.00")),
        london: ("GB", D("0"), D("0.00")),
    }


def test_the_billing_address_is_pulled_for_documents(
    crm: Crm, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    tokyo = crm.account(
        "Tokyo K.K.",
        "JP",
        "JPY",
        BillingStreet="丸の内1-9-2\nグラントウキョウ 12F",
        BillingCity="千代田区",
        BillingState="東京都",
        BillingPostalCode="100-6690",
    )
    bare = crm.account("Acme Inc.", "United States", "USD")
    pull(factory, pull_settings)
    with factory() as session:
        ids = external_ids(session, "customers")
        rows = {
            ids[row.id]: (
                row.address_street,
                row.address_city,
                row.address_state,
                row.address_postal_code,
                row.language,
            )
            for row in session.scalars(select(tables.Customer))
        }
    assert rows == {
        tokyo: ("丸の内1-9-2\nグラントウキョウ 12F", "千代田区", "東京都", "100-6690", None),
        bare: (None, None, None, None, None),
    }


def test_the_accounts_billing_email_is_the_customers_billing_address(
    crm: Crm, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    with_address = crm.account("Mail Ltd", "US", "USD", Billing_Email__c="ap@mail.example")
    without = crm.account("Quiet Ltd", "US", "USD")
    for account in (with_address, without):
        crm.deal(account, f"{account} - PRO", ("PRO", "1", "100.00"), close="2026-08-01")

    def addresses() -> dict[str, str | None]:
        with factory() as session:
            ids = external_ids(session, "customers")
            return {
                ids[row.id]: row.billing_email for row in session.scalars(select(tables.Customer))
            }

    pull(factory, pull_settings)
    assert addresses() == {with_address: "ap@mail.example", without: None}
    crm.org.update("Account", without, {"Billing_Email__c": "ap@quiet.example"})
    crm.org.update("Account", with_address, {"Billing_Email__c": None})
    pull(factory, pull_settings)
    assert addresses() == {with_address: None, without: "ap@quiet.example"}


def test_withdrawn_deal_never_billed_is_dropped(
    crm: Crm, acme: str, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    deleted = crm.deal(acme, "Acme - Deleted", ("PRO", "10", "30.00"), close="2026-08-01")
    reopened = crm.deal(acme, "Acme - Reopened", ("PRO", "5", "30.00"), close="2026-08-01")
    kept = crm.deal(acme, "Acme - Kept", ("SUP", "5", "9.00"), close="2026-08-01")
    pull(factory, pull_settings)
    assert set(subscriptions(factory)) == {deleted, reopened, kept}

    crm.org.delete("Opportunity", deleted)
    crm.org.update("Opportunity", reopened, {"StageName": REOPENED})
    result = pull(factory, pull_settings)

    assert (result.applied, result.ignored, result.held, result.quarantined) == (0, 2, 0, 0)
    assert set(subscriptions(factory)) == {kept}
    assert staged(factory)[deleted] == (
        "ignored",
        "was deleted in Salesforce; its subscription was dropped before any billing",
    )
    assert staged(factory)[reopened] == (
        "ignored",
        "is not won; its subscription was dropped before any billing",
    )
    with factory() as session:  # no contract, item or link is left behind
        assert session.scalars(select(tables.Contract.name)).all() == ["Acme - Kept"]
        assert len(session.scalars(select(tables.SubscriptionItem)).all()) == 1
        assert len(external_ids(session, "subscriptions")) == 1
    billed = run_billing(factory, pull_settings, date(2026, 8, 1))
    assert [doc[:2] for doc in documents(factory)] == [("INV-000001", kept)]
    assert billed.invoiced == {"USD": D("45.00")}

    # Won again, the reopened deal comes back as a new subscription.
    crm.org.update("Opportunity", reopened, {"StageName": WON})
    assert pull(factory, pull_settings).applied == 1
    assert set(subscriptions(factory)) == {kept, reopened}


def test_withdrawn_deal_already_billed_is_held_and_its_invoices_kept(
    crm: Crm, acme: str, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    deleted = crm.deal(acme, "Acme - Deleted", ("PRO", "10", "30.00"), close="2026-01-01")
    reopened = crm.deal(acme, "Acme - Reopened", ("PRO", "5", "30.00"), close="2026-01-01")
    pull(factory, pull_settings)
    run_billing(factory, pull_settings, date(2026, 1, 1))
    invoices = documents(factory)
    before = subscriptions(factory)
    january = (date(2026, 1, 1), date(2026, 1, 31))
    assert invoices == [
        invoice("INV-000001", deleted, "USD", date(2026, 1, 1), january, "300"),
        invoice("INV-000002", reopened, "USD", date(2026, 1, 1), january, "150"),
    ]

    crm.org.delete("Opportunity", deleted)
    crm.org.update("Opportunity", reopened, {"StageName": REOPENED})
    result = pull(factory, pull_settings)

    assert (result.applied, result.held, result.ignored, result.quarantined) == (0, 2, 0, 0)
    assert staged(factory)[deleted] == (
        "held",
        f"deal was deleted in Salesforce after INV-000001 was issued; {HELD_HINT}",
    )
    assert staged(factory)[reopened] == (
        "held",
        f"deal is not won after INV-000002 was issued; {HELD_HINT}",
    )
    assert subscriptions(factory) == before  # never reversed silently
    billed = run_billing(factory, pull_settings, date(2026, 1, 1))
    assert (billed.invoices, billed.credit_notes) == (0, 0)
    assert documents(factory) == invoices
    with factory() as session:
        assert session.scalars(select(tables.Document.status)).all() == ["open", "open"]

    # A held record stays held (and counted) while it does not change; won again, it is
    # applied again.
    assert pull(factory, pull_settings).held == 2
    crm.org.update("Opportunity", reopened, {"StageName": WON})
    again = pull(factory, pull_settings)
    assert (again.applied, again.held) == (1, 1)
    assert staged(factory)[reopened] == ("applied", None)
    assert subscriptions(factory) == before


# -- quarantine ----------------------------------------------------------------------------------
def test_won_deal_without_line_items_waits_until_one_is_added(
    crm: Crm, acme: str, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    empty = crm.deal(acme, "Acme - Empty", Service_Start_Date__c="2026-01-01")

    result = pull(factory, pull_settings)

    assert (result.applied, result.quarantined) == (1, 1)  # the account, then the deal
    assert staged(factory)[empty] == ("quarantined", "won deal has no line items")
    assert subscriptions(factory) == {}

    crm.line(empty, "PRO", "2", "30.00", currency="USD")
    fixed = pull(factory, pull_settings)

    assert (fixed.applied, fixed.quarantined, fixed.unchanged) == (1, 0, 1)
    assert staged(factory)[empty] == ("applied", None)
    assert items(factory) == {
        empty: [("PRO", "PRO", "recurring", None, date(2026, 1, 1), D(2), D(30), "USD", D(0))]
    }
    run_billing(factory, pull_settings, date(2026, 1, 1))
    assert documents(factory) == [
        invoice(
            "INV-000001",
            empty,
            "USD",
            date(2026, 1, 1),
            (date(2026, 1, 1), date(2026, 1, 31)),
            "60",
        )
    ]


def test_account_without_country_holds_its_deals_until_fixed(
    crm: Crm, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    paris = crm.account("Paris SAS", None, "EUR")
    first = crm.deal(paris, "Paris - Platform", ("PRO", "10", "40.00"), close="2026-01-01")
    second = crm.deal(paris, "Paris - Support", ("SUP", "10", "8.00"), close="2026-01-01")

    result = pull(factory, pull_settings)

    assert (result.applied, result.quarantined) == (0, 3)
    waiting = f"account {paris} is quarantined: account has no BillingCountry (needed for tax)"
    assert staged(factory) == {
        paris: ("quarantined", "account has no BillingCountry (needed for tax)"),
        first: ("quarantined", waiting),
        second: ("quarantined", waiting),
    }
    assert (customers(factory), subscriptions(factory)) == ({}, {})

    crm.org.update("Account", paris, {"BillingCountry": "France"})
    fixed = pull(factory, pull_settings)

    # The account is applied as it is read; its deals, unchanged, when the quarantine is
    # retried at the end of the run.
    assert (fixed.applied, fixed.quarantined) == (3, 0)
    assert set(staged(factory).values()) == {("applied", None)}
    assert customers(factory) == {paris: ("Paris SAS", "FR", "EUR", None)}
    assert set(subscriptions(factory)) == {first, second}
    run_billing(factory, pull_settings, date(2026, 1, 1))
    assert [doc[:3] + doc[6:] for doc in documents(factory)] == [
        ("INV-000001", first, "EUR", D("400.00"), D("0.00"), D("400.00")),
        ("INV-000002", second, "EUR", D("80.00"), D("0.00"), D("80.00")),
    ]


def test_bad_deals_are_quarantined_and_the_rest_of_the_batch_goes_on(
    crm: Crm, acme: str, berlin: str, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    crm.product(None, "Custom Work", "One-Time", "Services", {"USD": "100"})
    before = crm.deal(acme, "Acme - Before", ("PRO", "1", "30.00"), close="2026-01-01")
    prospect = crm.deal(acme, "Acme - Prospect", ("PRO", "1", "30.00"), stage="Prospecting")
    pointing_nowhere = crm.deal(
        acme,
        "Acme - Upgrade of an open deal",
        ("PRO", "2", "30.00"),
        close="2026-01-01",
        Type=UPGRADE,
        Amends_Opportunity__c=prospect,
    )
    no_product = crm.deal(acme, "Acme - Custom", ("Custom Work", "1", "100.00"))
    negative = crm.deal(acme, "Acme - Negative", ("PRO", "-3", "30.00"))
    free_discount = crm.deal(berlin, "Berlin - Discount", ("PRO", "1", "30.00", "120"))
    wrong_currency = crm.deal(berlin, "Berlin - In dollars", ("PRO", "1", "30.00"), currency="USD")
    after = crm.deal(berlin, "Berlin - After", ("SUP", "1", "8.00"), close="2026-01-01")

    result = pull(factory, pull_settings)

    assert (result.applied, result.quarantined, result.ignored, result.held) == (4, 5, 1, 0)
    [custom_line] = crm.lines_of(no_product)
    [negative_line] = crm.lines_of(negative)
    [discount_line] = crm.lines_of(free_discount)
    assert staged(factory) == {
        acme: ("applied", None),
        berlin: ("applied", None),
        before: ("applied", None),
        prospect: ("ignored", "is not won"),
        pointing_nowhere: (
            "quarantined",
            f"amends deal {prospect}, which has no subscription (yet)",
        ),
        no_product: (
            "quarantined",
            f"line item {custom_line} has no product (ProductCode is empty)",
        ),
        negative: ("quarantined", f"line item {negative_line} quantity -3.0 must be positive"),
        free_discount: (
            "quarantined",
            f"line item {discount_line} discount 120.0% must be between 0 and 100",
        ),
        wrong_currency: ("quarantined", "deal currency USD differs from the account's EUR"),
        after: ("applied", None),
    }
    assert set(subscriptions(factory)) == {before, after}

    # Fixed in Salesforce, each is retried as it changes.
    crm.org.update("OpportunityLineItem", negative_line, {"Quantity": 3})
    crm.org.update("Opportunity", prospect, {"StageName": WON, "CloseDate": "2026-01-01"})
    fixed = pull(factory, pull_settings)
    assert staged(factory)[negative] == ("applied", None)
    assert staged(factory)[prospect] == ("applied", None)
    # The upgrade, read before the deal it amends, is applied when the quarantine is retried.
    assert staged(factory)[pointing_nowhere] == ("applied", None)
    # Effective on the day the deal starts, the upgrade's 2 seats replace the deal's 1.
    assert items(factory)[prospect] == [
        ("PRO", "PRO", "recurring", None, date(2026, 1, 1), D(2), D(30), "USD", D(0))
    ]
    still = [no_product, free_discount, wrong_currency]
    assert [staged(factory)[deal][0] for deal in still] == ["quarantined"] * 3
    assert set(subscriptions(factory)) == {before, after, negative, prospect}
    # Each record is counted once, in the state the run left it in: 3 applied, 3 waiting.
    assert (fixed.applied, fixed.quarantined) == (3, 3)


# -- connector status ----------------------------------------------------------------------------
runner = CliRunner()


@pytest.fixture
def cli_env(
    database_url: str,
    salesforce_sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> dict[str, str]:
    """The settings as environment variables, under the names the issue fixes."""
    for name in list(os.environ):
        if name.startswith("CONNECTOR_") and name != "CONNECTOR_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return {
        "CONNECTOR_DATABASE_URL": database_url,
        "CONNECTOR_TAX__RATES": json.dumps(TEST_TAX_RATES),
        "CONNECTOR_SALESFORCE__LOGIN_URL": salesforce_sandbox.instance_url,
        "CONNECTOR_SALESFORCE__INSTANCE_URL": salesforce_sandbox.instance_url,
        "CONNECTOR_SALESFORCE__SESSION_ID": salesforce_sandbox.session_id,
        "CONNECTOR_SALESFORCE__CA_FILE": str(salesforce_sandbox.ca_file),
        "CONNECTOR_SALESFORCE__MAPPING_FILE": str(MAPPING_FILE),
    }


def cli(env: dict[str, str], *args: str) -> tuple[int, Any]:
    result = runner.invoke(app, list(args), env=env)
    try:
        return result.exit_code, json.loads(result.stdout)
    except ValueError:
        raise AssertionError(result.output) from None


def modstamp(crm: Crm, obj: str, *record_ids: str) -> str:
    """The newest SystemModstamp of the records, as the status shows cursors."""
    rows = [crm.org.row(crm.org.schema.objects[obj], record_id) for record_id in record_ids]
    newest = max(str(row["SystemModstamp"]) for row in rows if row)
    parsed = crm_pull.parse_modstamp(newest)
    assert parsed is not None
    return parsed.isoformat()


def test_status_lists_quarantined_and_held_records_with_reasons_and_the_cursors(
    crm: Crm,
    acme: str,
    factory: sessionmaker[Session],
    cli_env: dict[str, str],
    salesforce_sandbox: Sandbox,
) -> None:
    billed = crm.deal(acme, "Acme - Billed", ("PRO", "10", "30.00"), close="2026-01-01")
    empty = crm.deal(acme, "Acme - Empty", close="2026-01-01")
    code, first = cli(cli_env, "pull", "--as-of", "2026-01-01", "--json")
    assert code == 1  # a record is quarantined
    assert first == {
        "fetched": {"Account": 1, "Opportunity": 2},
        "applied": 2,
        "unchanged": 0,
        "quarantined": 1,
        "held": 0,
        "ignored": 0,
        "api_calls": 1,
        "stopped": None,
    }
    assert cli(cli_env, "bill", "--as-of", "2026-01-01", "--json")[0] == 0
    crm.org.update("Opportunity", billed, {"StageName": REOPENED})
    code, second = cli(cli_env, "pull", "--as-of", "2026-01-02", "--json")
    assert (code, second["held"], second["applied"]) == (1, 1, 0)

    code, report = cli(cli_env, "status", "--json")

    assert code == 1  # records wait for a fix and a review
    assert report["records"] == {"applied": 1, "quarantined": 1, "held": 1}
    assert [
        {key: entry[key] for key in ("object", "record_id", "name", "state", "reason")}
        for entry in report["quarantined"]
    ] == [
        {
            "object": "Opportunity",
            "record_id": empty,
            "name": "Acme - Empty",
            "state": "quarantined",
            "reason": "won deal has no line items",
        }
    ]
    assert report["quarantined"][0]["modstamp"] == modstamp(crm, "Opportunity", empty)
    assert [
        {key: entry[key] for key in ("object", "record_id", "name", "state", "reason")}
        for entry in report["held"]
    ] == [
        {
            "object": "Opportunity",
            "record_id": billed,
            "name": "Acme - Billed",
            "state": "held",
            "reason": f"deal is not won after INV-000001 was issued; {HELD_HINT}",
        }
    ]
    # Each cursor stands where the pull read through: at or past the newest change it read
    # (the org's time when it read), and never past the org's time now.
    cursors = {name: datetime.fromisoformat(at) for name, at in report["cursors"].items()}
    org_now = crm.org.clock()
    assert datetime.fromisoformat(modstamp(crm, "Account", acme)) <= cursors["Account"] <= org_now
    newest_deal = datetime.fromisoformat(modstamp(crm, "Opportunity", billed, empty))
    assert newest_deal <= cursors["Opportunity"] <= org_now
    assert set(cursors) == {"Account", "Opportunity", "OpportunityLineItem"}
    assert cursors["OpportunityLineItem"] <= cursors["Opportunity"]
    # The same through the function the command calls.
    with factory() as session:
        found = status(session, datetime.now(UTC).date())
    assert [(r.record_id, r.state) for r in found.waiting] == [
        (empty, "quarantined"),
        (billed, "held"),
    ]
    usage = report["api_usage"]
    # Every call the pulls made is on record for the daily budget, and the org's own count
    # from the last answer (Sforce-Limit-Info).
    assert (usage["connector_calls"], usage["org_used"], usage["org_limit"]) == (
        first["api_calls"] + second["api_calls"],
        salesforce_sandbox.usage.used,
        15_000,
    )


def test_records_waiting_from_earlier_pulls_are_counted_and_keep_the_exit_code_1(
    crm: Crm, acme: str, cli_env: dict[str, str]
) -> None:
    """A deal quarantined an hour ago and one held since then are outside the next pull's
    window (its cursor less the lookback): they are still counted, and the pull exits 1."""
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    crm.org.clock = lambda: an_hour_ago
    billed = crm.deal(acme, "Acme - Billed", ("PRO", "10", "30.00"), close="2026-01-01")
    empty = crm.deal(acme, "Acme - Empty", close="2026-01-01")
    code, first = cli(cli_env, "pull", "--as-of", "2026-01-01", "--json")
    assert (code, first["applied"], first["quarantined"], first["held"]) == (1, 2, 1, 0)
    assert cli(cli_env, "bill", "--as-of", "2026-01-01", "--json")[0] == 0
    crm.org.update("Opportunity", billed, {"StageName": REOPENED})
    code, second = cli(cli_env, "pull", "--as-of", "2026-01-02", "--json")
    assert (code, second["applied"], second["quarantined"], second["held"]) == (1, 0, 1, 1)

    crm.org.clock = lambda: datetime.now(UTC)  # a new deal moves the cursor past the two
    crm.deal(acme, "Acme - New", ("SUP", "1", "8.00"), close="2026-01-02")
    assert cli(cli_env, "pull", "--as-of", "2026-01-02", "--json")[1]["applied"] == 1

    code, fourth = cli(cli_env, "pull", "--as-of", "2026-01-02", "--json")

    assert fourth["fetched"] == {"Account": 1, "Opportunity": 1}  # the two are not read again
    assert (code, fourth["applied"], fourth["quarantined"], fourth["held"]) == (1, 0, 1, 1)
    code, report = cli(cli_env, "status", "--json")
    assert report["records"] == {"applied": 2, "quarantined": 1, "held": 1}
    assert [entry["record_id"] for entry in report["quarantined"] + report["held"]] == [
        empty,
        billed,
    ]


def test_a_waiting_record_is_logged_once_per_change_with_its_fields(
    crm: Crm,
    acme: str,
    factory: sessionmaker[Session],
    pull_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Read again by every pull (it is inside the lookback window), a quarantined deal is
    logged when it is quarantined and when its reason changes, not at every pull; each pull
    logs one line counting what waits."""
    caplog.set_level(logging.INFO, logger="connector.sync.crm_pull")
    empty = crm.deal(acme, "Acme - Empty", close="2026-01-01")

    def lines() -> list[tuple[str, dict[str, Any]]]:
        found = [
            (record.levelname, record.fields)  # type: ignore[attr-defined]
            for record in caplog.records
            if record.name == "connector.sync.crm_pull"
        ]
        caplog.clear()
        return found

    pull(factory, pull_settings)
    pull(factory, pull_settings)
    pull(factory, pull_settings)
    waiting = {
        "object": "Opportunity",
        "record_id": empty,
        "state": "quarantined",
        "reason": "won deal has no line items",
    }
    count = {"waiting": 1, "quarantined": 1, "held": 0}
    assert lines() == [
        ("WARNING", waiting),
        ("WARNING", {**count, "changed": 1}),
        ("WARNING", {**count, "changed": 0}),
        ("WARNING", {**count, "changed": 0}),
    ]

    line = crm.line(empty, "PRO", "-3", "30.00", currency="USD")
    pull(factory, pull_settings)
    pull(factory, pull_settings)
    assert lines() == [
        ("WARNING", {**waiting, "reason": f"line item {line} quantity -3.0 must be positive"}),
        ("WARNING", {**count, "changed": 1}),
        ("WARNING", {**count, "changed": 0}),
    ]

    crm.org.update("OpportunityLineItem", line, {"Quantity": 3})
    pull(factory, pull_settings)
    assert lines() == [
        ("INFO", {**waiting, "state": "applied", "reason": None}),
        ("INFO", {"waiting": 0, "quarantined": 0, "held": 0, "changed": 1}),
    ]


# -- the API limit and faults --------------------------------------------------------------------
def test_request_limit_exceeded_ends_the_pull_and_the_next_one_completes(  # noqa: PLR0917 - fixtures
    crm: Crm,
    acme: str,
    berlin: str,
    factory: sessionmaker[Session],
    clean_factory: sessionmaker[Session],
    database_url: str,
    salesforce_sandbox: Sandbox,
    tmp_path: Path,
) -> None:
    settings = make_settings(database_url, salesforce_sandbox, tmp_path, page_size=200)
    target = crm.deal(acme, "Acme - Target", ("PRO", "10", "30.00"), close="2026-01-01")
    upgrade = crm.deal(
        acme,
        "Acme - Upgrade",
        ("PRO", "12", "30.00"),
        close="2026-01-10",
        Type=UPGRADE,
        Amends_Opportunity__c=target,
        Service_Start_Date__c="2026-01-15",
    )
    for number in range(205):
        account, price = (acme, "30.00") if number % 2 else (berlin, "28.00")
        crm.deal(
            account,
            f"Deal {number:03d}",
            ("PRO", str(1 + number % 7), price),
            close="2026-01-01",
        )
    crm.org.update("Opportunity", target, {"Description": "read last"})
    limited: list[str] = []

    def limit_after_first_page(obj: str, count: int) -> None:
        if obj == "Opportunity" and not limited:
            limited.append(obj)
            salesforce_sandbox.faults.add(FaultRule(kind="request_limit", count=1))

    stopped = pull(factory, settings, on_page=limit_after_first_page)

    assert stopped.stopped == (
        "query_more: Salesforce answered 403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."
    )
    assert stopped.fetched == {"Account": 2, "Opportunity": 200}
    assert (stopped.applied, stopped.quarantined) == (201, 1)  # 2 accounts, 199 deals
    assert staged(factory)[upgrade] == (
        "quarantined",
        f"amends deal {target}, which has no subscription (yet)",
    )
    assert target not in staged(factory)  # on the page the limit stopped
    with factory() as session:  # what was read is saved, with its cursor
        assert len(session.scalars(select(tables.Subscription.id)).all()) == 199
        cursor = staging.cursor(session, f"{SYSTEM}:Opportunity")
    assert cursor is not None
    assert cursor.isoformat() < modstamp(crm, "Opportunity", target)

    resumed = pull(factory, settings)
    clean = pull(clean_factory, settings)

    assert (resumed.stopped, clean.stopped) == (None, None)
    assert clean.fetched == {"Account": 2, "Opportunity": 207}
    assert staged(factory)[upgrade] == ("applied", None)
    for database in (factory, clean_factory):
        run_billing(database, settings, date(2026, 2, 1))
    state = billing_state(factory)
    assert len(state["subscriptions"]) == 206
    assert len(state["documents"]) == 206 * 2  # January and February
    # January for the target: 10 × 30.00, and 2 more seats from the 15th (17 of 31 days).
    assert share("60.00", days(date(2026, 1, 15), date(2026, 1, 31)), 31) == D("32.90")
    assert [doc[10:13] for doc in state["documents"] if doc[3] == target] == [
        (D("332.90"), D("0.00"), D("332.90")),
        (D("360.00"), D("0.00"), D("360.00")),
    ]
    assert state == billing_state(clean_factory)


FAULTS = [
    pytest.param(FaultRule(kind="503", rate=0.3), id="503"),
    pytest.param(FaultRule(kind="500", rate=0.3), id="500"),
    pytest.param(FaultRule(kind="lock_row", rate=0.3), id="lock_row"),
    pytest.param(FaultRule(kind="expired_session", rate=0.3), id="expired_session"),
    pytest.param(FaultRule(kind="drop", rate=0.3), id="drop_before"),
    pytest.param(FaultRule(kind="drop", rate=0.3, when="after"), id="drop_after"),
    pytest.param(FaultRule(kind="slow", rate=0.3, delay=1.0), id="slow"),
    pytest.param(FaultRule(kind="request_limit", rate=0.3), id="request_limit"),
]


# With fault seed 22, the faults' draws begin 0.96, 0.14, 0.02, 1.00, 0.18, 0.12, 0.65, 0.35: at a
# rate of 0.3 the first faulty pull reads the first page of every object in one Composite call,
# then fails (twice, or stops) on the second page of deals; a later pull completes.
@pytest.mark.sandbox(seed="demo", fault_seed=22)
@pytest.mark.parametrize("rule", FAULTS)
def test_faults_end_in_the_same_billing_state_as_a_clean_pull(  # noqa: PLR0917 - fixtures
    rule: FaultRule,
    crm: Crm,
    acme: str,
    factory: sessionmaker[Session],
    clean_factory: sessionmaker[Session],
    database_url: str,
    salesforce_sandbox: Sandbox,
    tmp_path: Path,
) -> None:
    # The demo org's 200 deals and a few more: two pages of deals, so that a fault can fall
    # between pages too.
    for number in range(5):
        crm.deal(acme, f"Extra {number}", ("PRO", "3", "30.00"), close="2026-03-01")
    # Two tries a call: a fault often outlasts the retries and ends the pull midway, and the
    # next cycle has to pick up from there. A slow answer is one that outlasts the timeout.
    settings = make_settings(
        database_url,
        salesforce_sandbox,
        tmp_path,
        page_size=200,
        max_attempts=2,
        max_relogins=1,
        timeout_seconds=0.75 if rule.kind == "slow" else 60,
    )
    clean = pull(clean_factory, settings)
    assert clean.stopped is None
    assert clean.fetched == {"Account": 51, "Opportunity": 205}

    salesforce_sandbox.faults.add(rule)
    outcomes: list[str] = []
    for _ in range(40):
        client = SalesforceClient(settings.salesforce)
        try:
            result = pull(factory, settings, client=client)
        except CrmError as error:
            outcomes.append(f"failed: {error}")
            continue
        finally:
            outcomes.extend(
                ["retried"] * client.retries + ["logged in again"] * (client.logins - 1)
            )
        if result.stopped is None:
            break
        outcomes.append(f"stopped: {result.stopped}")
    else:
        pytest.fail(f"no pull completed: {outcomes}")
    salesforce_sandbox.faults.clear()
    assert outcomes[0].startswith(("failed: query_more: ", "stopped: query_more: ")), outcomes

    as_of = date(2026, 9, 30)
    for database in (factory, clean_factory):
        assert run_billing(database, settings, as_of).failed == {}
    state = billing_state(factory)
    assert len(state["documents"]) > 300
    assert state == billing_state(clean_factory)


# -- Bulk API 2.0 ---------------------------------------------------------------------------------


@pytest.mark.sandbox(seed="demo")
def test_many_changed_rows_are_read_with_bulk_jobs_to_the_same_state(  # noqa: PLR0917 - fixtures
    crm: Crm,
    acme: str,
    factory: sessionmaker[Session],
    clean_factory: sessionmaker[Session],
    database_url: str,
    salesforce_sandbox: Sandbox,
    tmp_path: Path,
) -> None:
    # 250 more deals (one of them amended later) and their items: the demo org's 200 deals and
    # these fill more than one 200-row page, so a threshold of 100 rows switches to Bulk API 2.0.
    for number in range(250):
        crm.deal(
            acme, f"Bulk {number}", ("PRO", str(1 + number % 4), "30.00"), ("SUP", "1", "9.00")
        )
    paged = make_settings(database_url, salesforce_sandbox, tmp_path, page_size=200)
    bulk = make_settings(
        database_url,
        salesforce_sandbox,
        tmp_path,
        page_size=200,
        bulk_threshold=100,
        bulk_poll_seconds=0.01,
        bulk_page_size=1000,
    )

    by_pages = pull(clean_factory, paged)
    by_bulk = pull(factory, bulk)

    assert by_bulk.fetched == by_pages.fetched == {"Account": 51, "Opportunity": 450}
    assert (by_bulk.applied, by_bulk.quarantined) == (by_pages.applied, by_pages.quarantined)
    # Paged: one Composite call, then one more page of deals. Bulk: one Composite call, then for
    # the deals a job over their line items and a job over the deals, each created, checked
    # and read (at least three calls a job).
    assert by_pages.api_calls == 3
    assert by_bulk.api_calls >= 7
    jobs = {job.object for job in salesforce_sandbox.app.bulk.jobs.values()}
    assert jobs == {"Opportunity", "OpportunityLineItem"}
    for database in (factory, clean_factory):
        assert run_billing(database, paged, date(2026, 3, 31)).failed == {}
    billed, expected = billing_state(factory), billing_state(clean_factory)
    assert len(expected["documents"]) > 400
    # Everything billing decided is the same, down to the hashes of the staged payloads that
    # name each applied version of a deal in its amendments' references.
    assert billed == expected


# A record staged from a Bulk API 2.0 job (CSV text) and the same record staged from a REST
# query (JSON) are the same payload with the same hash: a pull that read everything in bulk and
# then reads some records again through REST (the look-back window at the end of the run, or a
# deal the write-back touched) finds them unchanged.
def staged_payloads(factory: sessionmaker[Session]) -> dict[tuple[str, str], tuple[Any, str]]:
    """(object, record id): (payload, payload hash) of every staged record."""
    row = tables.CrmRecord
    with factory() as session:
        return {
            (obj, record_id): (payload, digest)
            for obj, record_id, payload, digest in session.execute(
                select(row.object, row.record_id, row.payload, row.payload_hash)
            )
        }


def read_again(factory: sessionmaker[Session]) -> None:
    """The next pull reads every record again (as one that a write-back touched)."""
    with factory.begin() as session:
        session.execute(delete(tables.SyncCursor))


def bulk_settings(database_url: str, sandbox: Sandbox, tmp_path: Path) -> Settings:
    return make_settings(
        database_url,
        sandbox,
        tmp_path,
        page_size=200,
        bulk_threshold=100,
        bulk_poll_seconds=0.01,
        bulk_page_size=1000,
    )


def every_kind_of_value(crm: Crm, acme: str, berlin: str, tokyo: str) -> list[str]:
    """Accounts, deals and line items with values of every kind the pull reads: decimals with
    and without a fraction, whole numbers, dates, booleans both ways, nulls, picklists,
    currencies, lookups (set, empty, and a parent with empty fields), a deal without items and
    a deleted one; enough accounts (with the demo org's) to be read in bulk too."""
    for number in range(150):
        crm.account(
            f"Bulk account {number}",
            ("United States", "DE", "Japan")[number % 3],
            ("USD", "EUR", "JPY")[number % 3],
            BillingState="CA" if number % 3 == 0 and number % 2 else None,
            Tax_Id__c=f"DE{100000000 + number}" if number % 3 == 1 else None,
        )
    bare = crm.org.create(
        "Product2", {"Name": "Bare", "ProductCode": None, "IsActive": False, "Family": None}
    )
    for currency, price in {"USD": "0.5", "EUR": "0.45", "JPY": "75"}.items():
        crm.entries[("Bare", currency)] = crm.org.create(
            "PricebookEntry",
            {
                "Pricebook2Id": crm.book,
                "Product2Id": bare,
                "UnitPrice": price,
                "IsActive": True,
                "CurrencyIsoCode": currency,
            },
        )
    base = crm.deal(
        acme,
        "Acme - Base",
        ("PRO", "10", "30.00"),
        ("SUP", "2.5", "9.99", "12.5", "2026-02-01"),
        ("ONBOARD", "1", "2500", "0", None),
        ("Bare", "3", "0.10"),
        Service_Start_Date__c="2026-01-01",
        Term_Months__c=24,
        Billing_Frequency__c="Quarterly",
        Auto_Renew__c=False,
        Trial_Days__c=14,
        Cancellation_Date__c="2027-06-30",
    )
    made = [
        base,
        crm.deal(
            acme,
            "Acme - Upgrade",
            ("PRO", "12", "30.00", "5"),
            close="2026-03-15",
            Type=UPGRADE,
            Amends_Opportunity__c=base,
            Service_Start_Date__c="2026-04-01",
            Auto_Renew__c=True,
        ),
        crm.deal(berlin, "Berlin - Annual", ("PRO", "100", "42.00", "33.3333"), stage="Closed Won"),
        crm.deal(tokyo, "Tokyo - Yen", ("PRO", "7", "6750"), ("ONBOARD", "1", "375000")),
        crm.deal(acme, "Acme - Open", ("PRO", "1", "45.00"), stage="Prospecting"),
        crm.deal(acme, "Acme - No items", Billing_Frequency__c="Monthly"),
        crm.deal(acme, "Acme - Big", ("PRO", "123456", "1234567.89", "0.01")),
    ]
    gone = crm.deal(acme, "Acme - Deleted", ("PRO", "1", "45.00"))
    crm.org.delete("Opportunity", gone)
    return [*made, gone]


@pytest.mark.sandbox(seed="demo")
def test_bulk_and_rest_stage_the_same_payloads(  # noqa: PLR0917 - fixtures
    crm: Crm,
    acme: str,
    berlin: str,
    tokyo: str,
    factory: sessionmaker[Session],
    clean_factory: sessionmaker[Session],
    database_url: str,
    salesforce_sandbox: Sandbox,
    tmp_path: Path,
) -> None:
    deals = every_kind_of_value(crm, acme, berlin, tokyo)
    paged = make_settings(database_url, salesforce_sandbox, tmp_path, page_size=200)
    bulk = bulk_settings(database_url, salesforce_sandbox, tmp_path)

    by_bulk = pull(factory, bulk)
    by_pages = pull(clean_factory, paged)

    jobs = {job.object for job in salesforce_sandbox.app.bulk.jobs.values()}
    assert jobs == {"Account", "Opportunity", "OpportunityLineItem"}
    assert by_bulk.fetched == by_pages.fetched
    from_bulk, from_rest = staged_payloads(factory), staged_payloads(clean_factory)
    assert set(from_bulk) == set(from_rest)
    assert {("Opportunity", deal) for deal in deals} <= set(from_bulk)
    differing = sorted(key for key in from_rest if from_bulk[key] != from_rest[key])
    assert differing == [], (
        f"{len(differing)} records differ, e.g. {differing[0]}: "
        f"bulk {from_bulk[differing[0]][0]} rest {from_rest[differing[0]][0]}"
        if differing
        else ""
    )

    # The same database read again from the start through REST finds every record unchanged
    # (those waiting for a fix are tried again).
    read_again(factory)
    again = pull(factory, paged)
    assert again.fetched == by_bulk.fetched
    assert (again.applied, again.quarantined) == (0, by_bulk.quarantined)
    assert again.unchanged == sum(by_bulk.fetched.values()) - by_bulk.quarantined
    assert staged_payloads(factory) == from_bulk


def waiting_ids(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return [row.record_id for row in staging.in_state(session, SYSTEM, staging.QUARANTINED)]


def staged_before(record: dict[str, Any]) -> dict[str, Any]:
    """A record as earlier versions staged it: as it came, REST's JSON or Bulk's CSV text."""
    staged: dict[str, Any] = json.loads(json.dumps(record, default=str))
    return staged


@pytest.mark.sandbox(seed="demo")
def test_records_staged_in_an_earlier_form_are_unchanged(  # noqa: PLR0917 - fixtures
    crm: Crm,
    acme: str,
    berlin: str,
    tokyo: str,
    factory: sessionmaker[Session],
    clean_factory: sessionmaker[Session],
    database_url: str,
    salesforce_sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    every_kind_of_value(crm, acme, berlin, tokyo)
    paged = make_settings(database_url, salesforce_sandbox, tmp_path, page_size=200)
    bulk = bulk_settings(database_url, salesforce_sandbox, tmp_path)
    with monkeypatch.context() as earlier:
        earlier.setattr(staging, "staged_form", staged_before)
        by_rest = pull(factory, paged)
        by_bulk = pull(clean_factory, bulk)
    before = {database: staged_payloads(database) for database in (factory, clean_factory)}
    assert any(payload.get("attributes") for payload, _ in before[factory].values())
    assert all(
        "attributes" not in payload and payload["IsDeleted"] in ("true", "false")
        for payload, _ in before[clean_factory].values()
    )

    # Read again through either API after the upgrade: nothing is applied again, and only the
    # records waiting for a fix (tried again on every read) are staged anew; the others keep
    # their earlier form until they change.
    for database, first in ((factory, by_rest), (clean_factory, by_bulk)):
        for settings in (paged, bulk):
            read_again(database)
            again = pull(database, settings)
            assert (again.applied, again.quarantined) == (0, first.quarantined)
            assert again.unchanged == sum(first.fetched.values()) - first.quarantined
        stored = staged_payloads(database)
        restaged = {key[1] for key, row in stored.items() if before[database][key] != row}
        assert restaged == set(waiting_ids(database))


# -- the cursor and the org's time ----------------------------------------------------------
T0 = datetime(2026, 6, 30, 12, 0, 0, 250_000, tzinfo=UTC)


class OrgClock:
    """The sandbox org's clock, set by the test: what it stamps and what its answers' Date
    headers say."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def at(self, **delta: float) -> None:
        self.moment = T0 + timedelta(**delta)


@pytest.fixture
def org_clock(salesforce_sandbox: Sandbox) -> OrgClock:
    """Request it before the fixtures that write to the org, so that they write on it."""
    clock = OrgClock(T0)
    salesforce_sandbox.org.clock = clock
    return clock


def positions(factory: sessionmaker[Session]) -> dict[str, datetime | None]:
    with factory() as session:
        return staging.cursors(session, f"{SYSTEM}:")


def renewals(factory: sessionmaker[Session]) -> dict[str, bool]:
    """Deal id: whether its subscription renews itself."""
    return {deal: row[7] for deal, row in subscriptions(factory).items()}


def test_records_stamped_after_the_org_time_never_carry_the_cursor_past_it(
    org_clock: OrgClock,
    crm: Crm,
    acme: str,
    factory: sessionmaker[Session],
    pull_settings: Settings,
) -> None:
    base = crm.deal(acme, "Acme - Platform", ("PRO", "10", "30.00"))
    org_clock.at(days=30)  # data loaded today with stamps a month ahead
    ahead = crm.deal(acme, "Acme - Loaded ahead", ("SUP", "2", "9.00"))
    org_clock.at(minutes=1)  # the org's time

    first = pull(factory, pull_settings)

    assert (first.applied, first.quarantined) == (3, 0)
    # Each object read through the org's time (its Date header, to the second), the deal
    # stamped ahead included.
    org_time = datetime(2026, 6, 30, 12, 1, tzinfo=UTC)
    assert positions(factory) == {
        "Account": org_time,
        "Opportunity": org_time,
        "OpportunityLineItem": org_time,
    }

    org_clock.at(minutes=5)
    crm.org.update("Opportunity", base, {"Auto_Renew__c": False})
    org_clock.at(minutes=6)
    second = pull(factory, pull_settings)

    # The change made after the load is found; the deal stamped ahead is read again, unchanged.
    assert (second.applied, second.unchanged, second.quarantined) == (1, 2, 0)
    assert renewals(factory) == {base: False, ahead: True}
    assert positions(factory) == dict.fromkeys(
        ("Account", "Opportunity", "OpportunityLineItem"), datetime(2026, 6, 30, 12, 6, tzinfo=UTC)
    )


def test_a_cursor_left_past_the_org_time_is_put_back_before_the_run_reads(  # noqa: PLR0917 - fixtures
    org_clock: OrgClock,
    crm: Crm,
    acme: str,
    factory: sessionmaker[Session],
    pull_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    deal = crm.deal(acme, "Acme - Platform", ("PRO", "10", "30.00"))
    pull(factory, pull_settings)
    with factory.begin() as session:  # where an earlier version left it
        staging.move_cursor(session, f"{SYSTEM}:Opportunity", T0 + timedelta(days=30))
    org_clock.at(minutes=5)
    crm.org.update("Opportunity", deal, {"Auto_Renew__c": False})
    org_clock.at(minutes=6)

    with caplog.at_level("WARNING", logger="connector.sync.crm_pull"):
        result = pull(factory, pull_settings)

    # One Composite call found the cursor ahead; a second one read from the org's time.
    assert (result.applied, result.api_calls) == (1, 2)
    assert renewals(factory) == {deal: False}
    org_time = datetime(2026, 6, 30, 12, 6, tzinfo=UTC)
    assert positions(factory)["Opportunity"] == org_time
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "cursor salesforce:Opportunity stood at 2026-07-30T12:00:00.250000+00:00, past the "
        "org's time 2026-06-30T12:06:00+00:00; it reads from there again"
    ]


def test_an_org_whose_clock_runs_ahead_moves_the_cursor_by_its_own_time(
    org_clock: OrgClock,
    crm: Crm,
    acme: str,
    factory: sessionmaker[Session],
    pull_settings: Settings,
) -> None:
    # The org's clock, its stamps and its Date headers are far ahead of the connector's clock.
    skewed = datetime(2099, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)
    org_clock.moment = skewed
    deal = crm.deal(acme, "Acme - Platform", ("PRO", "10", "30.00"))
    org_clock.moment = skewed + timedelta(minutes=1)

    pull(factory, pull_settings)

    # The org's time when it answered (its Date header, to the second), not the connector's.
    assert positions(factory)["Opportunity"] == datetime(2099, 1, 1, 0, 1, tzinfo=UTC)
    org_clock.moment = skewed + timedelta(minutes=2)
    crm.org.update("Opportunity", deal, {"Auto_Renew__c": False})
    assert pull(factory, pull_settings).applied == 1
    assert renewals(factory) == {deal: False}


def test_a_quiet_org_is_read_again_only_within_the_lookback_of_the_last_read(
    org_clock: OrgClock,
    crm: Crm,
    acme: str,
    factory: sessionmaker[Session],
    pull_settings: Settings,
) -> None:
    """A pull that read everything moves its cursors to the org's time, and the next reads
    start a lookback (10 minutes) before that time, not before the newest change: after a
    burst of changes (the write-back touches every record) a quiet org is read again until
    one pull has read it a lookback after the burst, then not at all."""
    for number in range(3):
        crm.deal(acme, f"Acme - {number}", ("PRO", "1", "30.00"))
    org_clock.at(minutes=1)
    assert pull(factory, pull_settings).applied == 4  # the account and its three deals

    org_clock.at(minutes=12)  # from 11:51, the last read's time less the lookback
    again = pull(factory, pull_settings)
    assert (again.fetched, again.unchanged, again.applied) == (
        {"Account": 1, "Opportunity": 3},
        4,
        0,
    )

    org_clock.at(minutes=13)  # from 12:02: nothing is stamped since
    quiet = pull(factory, pull_settings)
    assert (quiet.fetched, quiet.unchanged, quiet.api_calls) == (
        {"Account": 0, "Opportunity": 0},
        0,
        1,
    )
    assert positions(factory) == dict.fromkeys(
        ("Account", "Opportunity", "OpportunityLineItem"), datetime(2026, 6, 30, 12, 13, tzinfo=UTC)
    )

    deal = min(renewals(factory))
    org_clock.at(minutes=14)
    crm.org.update("Opportunity", deal, {"Auto_Renew__c": False})
    org_clock.at(minutes=15)
    assert pull(factory, pull_settings).applied == 1  # a change is found as ever
    assert renewals(factory)[deal] is False


# -- metered products ---------------------------------------------------------------------------
def metered_prices(factory: sessionmaker[Session]) -> list[tuple[object, ...]]:
    with factory() as session:
        rows = session.execute(
            select(
                tables.Product.code,
                tables.SubscriptionItem.kind,
                tables.Price.currency,
                tables.Price.metric,
                tables.Price.model,
                tables.Price.unit_amount,
                tables.Price.package_size,
                tables.Price.package_amount,
                tables.Price.free_units,
            )
            .join(tables.Product, tables.Product.id == tables.SubscriptionItem.product_id)
            .join(tables.ItemVersion, tables.ItemVersion.item_id == tables.SubscriptionItem.id)
            .join(tables.Price, tables.Price.id == tables.ItemVersion.price_id)
            .where(tables.SubscriptionItem.kind == "metered")
            .order_by(tables.Price.currency)
        )
        return [tuple(row) for row in rows]


def test_a_line_item_of_a_metered_product_becomes_a_metered_price(
    crm: Crm, acme: str, berlin: str, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    crm.product(
        "API",
        "API Calls",
        "Recurring",
        "Platform",
        {"USD": "0", "EUR": "0.05"},
        Billing_Metric__c="api_calls",
    )
    crm.deal(
        acme, "Acme", ("PRO", "10", "30.00"), ("API", "1", "0"), Service_Start_Date__c="2026-01-01"
    )
    crm.deal(berlin, "Berlin", ("API", "1", "0.05"), Service_Start_Date__c="2026-01-01")

    result = pull(factory, pull_settings)

    assert (result.applied, result.quarantined, result.held) == (4, 0, 0)
    assert metered_prices(factory) == [
        # no EUR price of api_calls in usage.yaml: the line's unit price, per call
        ("API", "metered", "EUR", "api_calls", "per_unit", D("0.05"), None, None, D(0)),
        # usage.yaml's USD price of api_calls: 0.50 per 1,000 calls beyond 10,000
        ("API", "metered", "USD", "api_calls", "package", None, 1000, D("0.50"), D(10000)),
    ]
    customer = next(iter(crm.currencies))  # Acme: 12,500 calls in January
    with factory() as session:
        acme_id = session.scalar(
            select(tables.ExternalId.entity_id).where(tables.ExternalId.external_id == customer)
        )
    events = [
        {
            "transaction_id": f"c{n}",
            "customer": str(acme_id),
            "metric": "api_calls",
            "timestamp": "2026-01-20T10:00:00Z",
            "properties": {},
        }
        for n in range(12_500)
    ]
    ingest_batch(
        factory,
        usage_mapping_of(pull_settings).metrics,
        events,
        datetime(2026, 1, 21, tzinfo=UTC),
    )
    run_billing(factory, pull_settings, date(2026, 1, 1))
    run_billing(factory, pull_settings, date(2026, 2, 1))

    lines = document_lines(factory, "INV-000002")  # February: the fee, and January's calls
    assert [(line[0], line[4]) for line in lines] == [("PRO", D("300.00")), ("API", D("1.50"))]


def test_a_product_naming_an_unknown_metric_holds_the_deal_with_the_reason(
    crm: Crm, acme: str, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    crm.product(
        "CALLS", "Calls", "Recurring", "Platform", {"USD": "0.01"}, Billing_Metric__c="api_call"
    )
    bad = crm.deal(acme, "Acme", ("CALLS", "1", "0.01"), Service_Start_Date__c="2026-01-01")
    good = crm.deal(acme, "Acme 2", ("PRO", "1", "30.00"), Service_Start_Date__c="2026-01-01")

    result = pull(factory, pull_settings)

    assert (result.applied, result.quarantined) == (2, 1)
    state, reason = staged(factory)[bad]
    assert state == "quarantined"
    assert reason is not None and reason.endswith(
        "(CALLS) names the metric 'api_call', which the usage mapping does not define (its "
        "metrics: api_calls, bandwidth_gb, seats, storage_gb)"
    )
    assert staged(factory)[good] == ("applied", None)
