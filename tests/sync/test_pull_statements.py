"""How many SQL statements the pull sends, against the Salesforce sandbox, on SQLite and
PostgreSQL: a page of up to 2,000 records costs a bounded number of statements whatever it holds
(new deals, changes to existing deals, deals that cannot be applied), and a pull that finds
nothing new a small number that does not grow with the org.

The org is generated: 2,050 won deals of three line items on 205 accounts (a full page of 2,000
deals and a second one), stamped by a clock the test sets. Each page is applied in a transaction
of its own; the statements are counted per transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.settings import Settings, load_settings
from connector.sync import crm_pull
from connector.sync.crm_pull import PullResult
from sandbox.salesforce.rules import standard_pricebook
from sandbox.salesforce.server import Sandbox
from tests.conftest import TEST_TAX_RATES
from tests.statements import Statements, counting

MAPPING_FILE = Path(__file__).resolve().parents[2] / "mappings" / "salesforce.yaml"
T0 = datetime(2026, 1, 20, 9, 0, 0, tzinfo=UTC)
DEALS, ACCOUNTS = 2_050, 205
PAGE = 2_000  # records per page (the default page size)
PER_PAGE = 30  # statements a page of up to 2,000 records may cost
IDLE = 20  # statements a pull that finds nothing new may cost (on SQLite, 7 of them BEGIN)
PRODUCTS = (("SEATS", "Seats", "25"), ("API", "API calls", "5"), ("SUP", "Support", "100"))
UPGRADE = "Existing Customer - Upgrade"


@dataclass
class Org:
    """The generated org, on a clock the test sets, which ticks a second at each reading (each
    record written, each answer given): the records of a pull's lookback window are only the
    last ones written."""

    sandbox: Sandbox
    moment: datetime = T0
    entries: dict[str, str] = field(default_factory=dict)  # product code: price book entry
    accounts: list[str] = field(default_factory=list)
    deals: list[str] = field(default_factory=list)
    lines: dict[str, list[str]] = field(default_factory=dict)  # deal: its line items

    def __post_init__(self) -> None:
        self.org = self.sandbox.org
        self.org.clock = self.tick
        self.book = standard_pricebook(self.org)

    def tick(self) -> datetime:
        self.moment += timedelta(seconds=1)
        return self.moment

    def wait(self, **delta: float) -> None:
        self.moment += timedelta(**delta)

    def account(self, name: str, country: str | None = "US", currency: str = "USD") -> str:
        account = self.org.create(
            "Account", {"Name": name, "BillingCountry": country, "CurrencyIsoCode": currency}
        )
        self.accounts.append(account)
        return account

    def deal(self, account: str, name: str, *quantities: int, **fields: Any) -> str:
        deal = self.org.create(
            "Opportunity",
            {
                "Name": name,
                "AccountId": account,
                "StageName": "Closed Won",
                "CloseDate": "2026-01-15",
                "Service_Start_Date__c": "2026-02-01",
                "Billing_Frequency__c": "Monthly",
                "CurrencyIsoCode": "USD",
                "Pricebook2Id": self.book,
                **fields,
            },
        )
        self.lines[deal] = [
            self.org.create(
                "OpportunityLineItem",
                {"OpportunityId": deal, "PricebookEntryId": entry, "Quantity": quantity},
            )
            for entry, quantity in zip(self.entries.values(), quantities, strict=False)
        ]
        return deal

    def generate(self) -> None:
        with self.org.transaction():
            for code, name, price in PRODUCTS:
                product = self.org.create(
                    "Product2", {"Name": name, "ProductCode": code, "IsActive": True}
                )
                self.entries[code] = self.org.create(
                    "PricebookEntry",
                    {
                        "Pricebook2Id": self.book,
                        "Product2Id": product,
                        "UnitPrice": price,
                        "IsActive": True,
                    },
                )
            for n in range(ACCOUNTS):
                self.account(f"Account {n:04d}")
            for n in range(DEALS):
                self.deals.append(
                    self.deal(self.accounts[n % ACCOUNTS], f"Deal {n:05d}", 1 + n % 7, 2, 1)
                )


@pytest.fixture
def org(salesforce_sandbox: Sandbox) -> Org:
    generated = Org(salesforce_sandbox)
    generated.generate()
    return generated


@pytest.fixture
def pull_settings(database_url: str, salesforce_sandbox: Sandbox, tmp_path: Path) -> Settings:
    return load_settings(
        None,
        database_url=database_url,
        ledger={"path": tmp_path / "ledger.beancount"},
        tax={"rates": TEST_TAX_RATES},
        salesforce={
            "login_url": salesforce_sandbox.instance_url,
            "ca_file": str(salesforce_sandbox.ca_file),
            "instance_url": salesforce_sandbox.instance_url,
            "session_id": salesforce_sandbox.session_id,
            "mapping_file": str(MAPPING_FILE),
        },
    )


@dataclass
class Counted:
    """The statements of a pull, and how many each of its transactions sent."""

    result: PullResult
    statements: Statements
    transactions: list[int]

    @property
    def pages(self) -> list[int]:
        """Statements of each transaction that applied records (wrote staged rows)."""
        return [
            count
            for count, sql in zip(self.transactions, self._transaction_sql(), strict=True)
            if any(
                statement.lstrip().upper().startswith("INSERT INTO CRM_RECORDS")
                for statement in sql
            )
        ]

    def _transaction_sql(self) -> list[list[str]]:
        found, start = [], 0
        for count in self.transactions:
            found.append(self.statements.sql[start : start + count])
            start += count
        return found


@contextmanager
def per_transaction(engine: Engine) -> Iterator[tuple[Statements, list[int]]]:
    """Every statement sent, and how many each transaction sent (up to its commit)."""
    transactions: list[int] = []
    with counting(engine) as seen:
        done = [0]

        def committed(_connection: Any) -> None:
            transactions.append(len(seen) - done[0])
            done[0] = len(seen)

        event.listen(engine, "commit", committed)
        try:
            yield seen, transactions
        finally:
            event.remove(engine, "commit", committed)
            if len(seen) > done[0]:
                transactions.append(len(seen) - done[0])


def pull(engine: Engine, factory: sessionmaker[Session], settings: Settings) -> Counted:
    with per_transaction(engine) as (seen, transactions):
        result = crm_pull.pull(factory, settings, as_of=date(2026, 1, 31))
    return Counted(result, seen, transactions)


def count(factory: sessionmaker[Session], model: type[tables.Base]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_first_pull_costs_a_few_statements_a_page_and_an_idle_pull_a_few_in_all(
    org: Org, engine: Engine, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    first = pull(engine, factory, pull_settings)

    assert first.result.fetched == {"Account": ACCOUNTS, "Opportunity": DEALS}
    assert (first.result.applied, first.result.quarantined) == (ACCOUNTS + DEALS, 0)
    assert count(factory, tables.ItemVersion) == 3 * DEALS
    # The accounts' page, then two pages of deals (2,000 and 50): each within the bound, the
    # page of 2,000 as cheap as the page of 50 (but for the products and prices it makes).
    assert len(first.pages) == 3, first.transactions
    assert max(first.pages) <= PER_PAGE, first.pages
    assert abs(first.pages[1] - first.pages[2]) <= 2, first.pages
    assert len(first.statements) <= PER_PAGE * 3 + IDLE

    # Nothing changed since: what is stamped a lookback before the first pull's time is read
    # again, unchanged; a pull after that reads nothing.
    org.wait(hours=1)
    idle = pull(engine, factory, pull_settings)
    assert idle.result.applied == 0
    assert 0 < idle.result.unchanged < PAGE
    assert len(idle.statements) <= IDLE, idle.statements.by_verb()
    assert idle.statements.touching("subscriptions") == []
    org.wait(hours=1)
    quiet = pull(engine, factory, pull_settings)
    assert quiet.result.fetched == {"Account": 0, "Opportunity": 0}
    assert len(quiet.statements) < len(idle.statements)

    # The org grows by half; a quiet pull after it costs the same.
    with org.org.transaction():
        for n in range(DEALS // 2):
            org.deal(org.accounts[n % ACCOUNTS], f"More {n:05d}", 3, 1, 1)
    org.wait(hours=1)
    grown = pull(engine, factory, pull_settings)
    assert grown.result.applied == DEALS // 2
    assert max(grown.pages) <= PER_PAGE
    org.wait(hours=1)
    assert len(pull(engine, factory, pull_settings).statements) == len(quiet.statements)


CHANGES: list[dict[str, Any]] = [
    {"Cancellation_Date__c": "2026-12-01"},
    {"Term_Months__c": 24, "Auto_Renew__c": False},
    {"Service_Start_Date__c": "2026-03-01"},
]


def change_every_deal(org: Org) -> tuple[list[str], set[str]]:
    """A new quantity on one line item of each deal; and on the deal: a cancellation, a new
    term without renewal, or a new start, in turn. A deal in fifty is lost or deleted instead.
    Then an upgrade of every tenth deal, as a deal of its own. Returns the upgrades and the
    deals withdrawn."""
    withdrawn = set()
    with org.org.transaction():
        for n, deal in enumerate(org.deals):
            if n % 50 == 5:
                org.org.update("Opportunity", deal, {"StageName": "Closed Lost"})
                withdrawn.add(deal)
            elif n % 50 == 35:
                org.org.delete("Opportunity", deal)
                withdrawn.add(deal)
            else:
                org.org.update("OpportunityLineItem", org.lines[deal][0], {"Quantity": 10 + n % 5})
                org.org.update("Opportunity", deal, CHANGES[n % 3])
        upgrades = [
            org.deal(
                org.accounts[n % ACCOUNTS],
                f"Upgrade {n:05d}",
                20,
                4,
                Type=UPGRADE,
                Amends_Opportunity__c=org.deals[n],
                Service_Start_Date__c="2026-06-01",
            )
            for n in range(0, DEALS, 10)
        ]
    return upgrades, withdrawn


def test_a_page_of_changes_to_existing_deals_costs_a_few_statements(
    org: Org, engine: Engine, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    pull(engine, factory, pull_settings)
    org.wait(hours=1)
    upgrades, withdrawn = change_every_deal(org)
    org.wait(minutes=1)

    changed = pull(engine, factory, pull_settings)

    # The accounts, read through an hour ago, are not read again.
    assert changed.result.fetched == {"Account": 0, "Opportunity": DEALS + len(upgrades)}
    assert changed.result.unchanged == 0
    assert (changed.result.applied, changed.result.ignored) == (
        DEALS - len(withdrawn) + len(upgrades),
        len(withdrawn),
    )
    assert changed.result.quarantined == 0
    # Every deal's new item set, and its cancellation or new terms (a new start is no
    # amendment); every upgrade. The deals withdrawn before any billing are dropped.
    kept = [n for n, deal in enumerate(org.deals) if deal not in withdrawn]
    amendments = sum(1 + (n % 3 != 2) for n in kept) + len(upgrades)
    assert count(factory, tables.Amendment) == amendments
    assert count(factory, tables.Subscription) == DEALS - len(withdrawn)
    assert len(changed.pages) == 2, changed.transactions
    assert max(changed.pages) <= PER_PAGE, changed.pages
    with factory() as session:
        rescheduled = session.scalar(
            select(func.count())
            .select_from(tables.Subscription)
            .where(tables.Subscription.start_date == date(2026, 3, 1))
        )
    assert rescheduled == sum(n % 3 == 2 for n in kept)


def test_a_page_with_records_that_cannot_be_applied_costs_a_few_statements(
    org: Org, engine: Engine, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    nowhere = org.account("Nowhere Ltd", country=None)  # quarantined: no country
    euros = org.account("Euro GmbH", "DE", "EUR")
    with org.org.transaction():
        bad = [
            org.deal(nowhere, "Waits for its account", 1, 1, 1),
            org.deal(org.accounts[0], "No line items"),
            org.deal(euros, "In dollars", 1, 1, 1),
            org.deal(org.accounts[2], "Amends nothing", 2, Type=UPGRADE, Amends_Opportunity__c=""),
            org.deal(org.accounts[3], "Backdated", 1, Service_Start_Date__c="2020-01-01"),
        ]

    result = pull(engine, factory, pull_settings)

    assert result.result.applied == ACCOUNTS + 1 + DEALS
    assert (result.result.quarantined, result.result.held) == (5, 1)
    assert len(result.pages) == 4, result.transactions  # the retry of the quarantined ones too
    assert max(result.pages) <= PER_PAGE, result.pages
    with factory() as session:
        reasons = dict(
            session.execute(
                select(tables.CrmRecord.record_id, tables.CrmRecord.reason).where(
                    tables.CrmRecord.record_id.in_([nowhere, *bad])
                )
            ).all()
        )
    assert reasons[bad[0]] == (
        f"account {nowhere} is quarantined: account has no BillingCountry (needed for tax)"
    )
    assert reasons[bad[1]] == "won deal has no line items"
    assert reasons[bad[2]] == "deal currency USD differs from the account's EUR"
    assert reasons[bad[3]] == (
        "deal of type 'Existing Customer - Upgrade' names no deal it amends (Amends_Opportunity__c)"
    )
    assert "service start 2020-01-01" in str(reasons[bad[4]])


REFUSE_SQLITE = """
CREATE TRIGGER refuse_contract BEFORE INSERT ON contracts
WHEN NEW.name = 'Refused'
BEGIN SELECT RAISE(ABORT, 'contract refused'); END
"""
REFUSE_POSTGRESQL = (
    """
CREATE FUNCTION refuse_contract() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name = 'Refused' THEN
        RAISE EXCEPTION 'contract refused' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$
""",
    """
CREATE TRIGGER refuse_contract BEFORE INSERT ON contracts
FOR EACH ROW EXECUTE FUNCTION refuse_contract()
""",
)


def test_a_page_the_database_refuses_is_applied_record_by_record(
    org: Org, engine: Engine, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    refused = org.deal(org.accounts[0], "Refused", 1, 1, 1)
    with engine.begin() as connection:
        statements = [REFUSE_SQLITE] if engine.dialect.name == "sqlite" else list(REFUSE_POSTGRESQL)
        for statement in statements:
            connection.execute(text(statement))

    result = pull(engine, factory, pull_settings)

    # The record the database refuses waits alone; the others of its page are applied.
    assert (result.result.applied, result.result.quarantined) == (ACCOUNTS + DEALS, 1)
    with factory() as session:
        reason = session.scalar(
            select(tables.CrmRecord.reason).where(tables.CrmRecord.record_id == refused)
        )
    assert reason is not None
    assert reason.startswith("the database refused it: ") and "contract refused" in reason
    assert count(factory, tables.Subscription) == DEALS
    # The refused page (the second page of deals: 51 records) was applied record by record, at
    # a dozen statements a record (its savepoint, its reads and writes); the others, and the
    # retry of the refused record at the end of the run, as before.
    *others, refused_page, retry = result.pages
    assert max(others) <= PER_PAGE < refused_page <= 15 * (DEALS + 1 - PAGE), result.pages
    assert retry <= PER_PAGE


def test_a_bulk_page_is_applied_two_thousand_records_at_a_time(
    org: Org, engine: Engine, factory: sessionmaker[Session], pull_settings: Settings
) -> None:
    bulk = pull_settings.model_copy(
        update={
            "salesforce": pull_settings.salesforce.model_copy(
                update={"bulk_threshold": 100, "bulk_poll_seconds": 0.01}
            )
        }
    )

    result = pull(engine, factory, bulk)

    assert (result.result.applied, result.result.quarantined) == (ACCOUNTS + DEALS, 0)
    assert count(factory, tables.ItemVersion) == 3 * DEALS
    # The accounts' page; then the deals, one page of Bulk results applied in one transaction,
    # as two batches of up to 2,000 records, each as cheap as a page.
    accounts, deals = result.pages
    assert accounts <= PER_PAGE and deals <= 2 * PER_PAGE, result.pages
    staged_batches = [
        sql for sql in result.statements.sql if sql.startswith("INSERT INTO crm_records")
    ]
    assert len(staged_batches) == 3
