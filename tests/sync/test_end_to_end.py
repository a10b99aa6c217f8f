"""End to end through the full cycle against the local Salesforce sandbox.

Each test starts from an empty sandbox org, creates its own accounts, products and deals through
the REST API (simple-salesforce, as a Salesforce user would), then runs the real cycle
(:func:`connector.sync.cycle.run_cycle`: pull, bill, revenue close, push to the Beancount
ledger, payments read back from the ledger, write-back) at explicit as-of dates. What is
checked, with amounts worked out by hand below:

- the documents in the ledger (loaded with Beancount's own loader, each document once);
- what the write-back shows in Salesforce: ``Billing_Invoice__c``, ``Billing_Subscription__c``,
  ``Account.MRR__c`` / ``Billing_Status__c`` and ``Opportunity.Billing_Sync_Error__c``.

Prices are per seat per month (the mapping: ``UnitPrice`` is the price of one unit for one
billing period). Tax: the test settings tax GB at 20% and the United States not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from beancount import loader
from beancount.core import data
from pydantic import SecretStr
from simple_salesforce import Salesforce
from simple_salesforce.api import SFType
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting.beancount_plugin import unique_document_ids
from connector.billing.tax import country_code
from connector.db import tables
from connector.settings import SalesforceSettings, Settings
from connector.sync.cycle import STAGES, CycleResult, run_cycle
from sandbox.salesforce.server import Sandbox

D = Decimal
CENT = D("0.01")
ROOT = Path(__file__).resolve().parents[2]
RECEIVABLE = "Assets:AccountsReceivable"
DEFERRED = "Liabilities:DeferredRevenue"
UPGRADE = "Existing Customer - Upgrade"
DOWNGRADE = "Existing Customer - Downgrade"
PAYMENT_TERMS = 30  # days, the default billing.payment_terms_days

MARCH_START, MARCH_END = date(2026, 3, 1), date(2026, 3, 31)
MARCH_DAYS = 31
SEAT = D("50.00")  # per seat, per month
SEATS = 10
MONTHLY = SEATS * SEAT  # 500.00

INVOICE_FIELDS = (
    "Document_Number__c, Type__c, Opportunity__c, Account__c, Document_Date__c, "
    "Period_Start__c, Period_End__c, Total__c, Balance_Due__c, Status__c, Currency__c, "
    "CurrencyIsoCode"
)
SUBSCRIPTION_FIELDS = (
    "Subscription_Id__c, Opportunity__c, Account__c, Status__c, MRR__c, Next_Invoice_Date__c, "
    "CurrencyIsoCode"
)


@dataclass(frozen=True)
class Market:
    """Where a customer is: its billing country, its currency and the tax rate the test
    settings give that country."""

    country: str
    currency: str
    tax_rate: Decimal

    @property
    def tax_account(self) -> str:
        """Where its tax is payable: its country's account for the rate."""
        return f"Liabilities:SalesTax:{country_code(self.country)}:{self.tax_rate}"


MARKETS = [
    pytest.param(Market("United States", "USD", D(0)), id="US-untaxed"),
    pytest.param(Market("United Kingdom", "GBP", D(20)), id="GB-20pct"),
]


# -- money, worked out by hand ----------------------------------------------------------------
def cents(amount: Decimal) -> Decimal:
    """Rounded to the cent, half up (the billing core's default rounding)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def days_from(day: date, period_end: date) -> int:
    """Days from ``day`` through ``period_end``, both counted."""
    return (period_end - day).days + 1


def money(value: Any) -> Decimal | None:
    """A currency field as Salesforce returns it (a JSON number) as an exact amount; not
    rounded, so that a fraction of a cent written back would show."""
    return None if value is None else D(str(value))


# -- settings ---------------------------------------------------------------------------------
@pytest.fixture
def cycle_settings(ledger_settings: Settings, salesforce_sandbox: Sandbox) -> Settings:
    """The connector pointed at the sandbox, the repository's mapping and chart, a ledger in
    ``tmp_path`` and the test tax rates (GB 20%, no US rate)."""
    salesforce = SalesforceSettings(
        instance_url=salesforce_sandbox.instance_url,
        session_id=SecretStr(salesforce_sandbox.session_id),
        ca_file=str(salesforce_sandbox.ca_file),
        backoff_initial_seconds=0.001,
        mapping_file=str(ROOT / "mappings" / "salesforce.yaml"),
    )
    return ledger_settings.model_copy(update={"salesforce": salesforce})


def cycle(factory: sessionmaker[Session], settings: Settings, as_of: date) -> CycleResult:
    result = run_cycle(factory, settings, as_of)
    assert result.errors == {}
    assert set(result.stages) == set(STAGES)
    assert result.stages["writeback"]["failed"] == {}
    assert result.stages["push"]["parked"] == {}
    return result


# -- the CRM, as a Salesforce user fills it ---------------------------------------------------
@dataclass
class Crm:
    sf: Salesforce

    def sobject(self, name: str) -> SFType:
        """``sf.Account`` and the like, typed."""
        return cast(SFType, getattr(self.sf, name))

    @property
    def standard_book(self) -> str:
        found = self.sf.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")
        return str(found["records"][0]["Id"])

    def account(self, name: str, country: str, currency: str) -> str:
        values = {"Name": name, "BillingCountry": country, "CurrencyIsoCode": currency}
        return str(self.sobject("Account").create(values)["id"])

    def seats_product(self, currency: str, price: Decimal = SEAT) -> str:
        """A recurring per-seat product with its standard price; returns the price book entry."""
        product = self.sobject("Product2").create(
            {
                "Name": "Seats",
                "ProductCode": "SEATS",
                "Family": "Platform",
                "Billing_Type__c": "Recurring",
                "IsActive": True,
            }
        )["id"]
        entry = self.sobject("PricebookEntry").create(
            {
                "Pricebook2Id": self.standard_book,
                "Product2Id": product,
                "UnitPrice": float(price),
                "IsActive": True,
                "CurrencyIsoCode": currency,
            }
        )
        return str(entry["id"])

    def deal(
        self,
        account: str,
        name: str,
        *,
        currency: str,
        start: date,
        stage: str = "Closed Won",
        **extra: Any,
    ) -> str:
        values = {
            "Name": name,
            "AccountId": account,
            "StageName": stage,
            "CloseDate": date(2026, 2, 20).isoformat(),
            "CurrencyIsoCode": currency,
            "Pricebook2Id": self.standard_book,
            "Service_Start_Date__c": start.isoformat(),
            "Term_Months__c": 12,
            "Billing_Frequency__c": "Monthly",
            "Auto_Renew__c": True,
            "Trial_Days__c": 0,
            **extra,
        }
        return str(self.sobject("Opportunity").create(values)["id"])

    def line(self, deal: str, entry: str, quantity: int, price: Decimal = SEAT) -> str:
        values = {
            "OpportunityId": deal,
            "PricebookEntryId": entry,
            "Quantity": quantity,
            "UnitPrice": float(price),
        }
        return str(self.sobject("OpportunityLineItem").create(values)["id"])

    # -- what the write-back shows --------------------------------------------------------
    def _rows(self, soql: str) -> list[dict[str, Any]]:
        rows = self.sf.query_all(soql)["records"]
        return [{k: v for k, v in row.items() if k != "attributes"} for row in rows]

    def invoices(self, deal: str) -> dict[str, dict[str, Any]]:
        """The deal's ``Billing_Invoice__c`` records by document number, amounts exact."""
        rows = self._rows(
            f"SELECT {INVOICE_FIELDS} FROM Billing_Invoice__c WHERE Opportunity__c = '{deal}'"
        )
        found = {}
        for row in rows:
            row["Total__c"] = money(row["Total__c"])
            row["Balance_Due__c"] = money(row["Balance_Due__c"])
            found[row.pop("Document_Number__c")] = row
        return found

    def subscriptions(self, deal: str) -> list[dict[str, Any]]:
        rows = self._rows(
            f"SELECT {SUBSCRIPTION_FIELDS} FROM Billing_Subscription__c "
            f"WHERE Opportunity__c = '{deal}'"
        )
        for row in rows:
            row["MRR__c"] = money(row["MRR__c"])
            assert str(row.pop("Subscription_Id__c")).startswith("SUB-")
        return rows

    def count(self, obj: str) -> int:
        return int(self.sf.query(f"SELECT COUNT() FROM {obj}")["totalSize"])

    def account_billing(self, account: str) -> tuple[Decimal | None, str | None]:
        row = self.sobject("Account").get(account)
        return money(row["MRR__c"]), row["Billing_Status__c"]

    def sync_error(self, deal: str) -> str | None:
        value = self.sobject("Opportunity").get(deal)["Billing_Sync_Error__c"]
        return None if value is None else str(value)


@pytest.fixture
def crm(sf: Salesforce) -> Crm:
    return Crm(sf)


def invoice_row(
    *,
    deal: str,
    account: str,
    issued: date,
    total: Decimal,
    due: Decimal,
    status: str,
    currency: str = "USD",
    kind: str = "Invoice",
    period: tuple[date, date] = (MARCH_START, MARCH_END),
) -> dict[str, Any]:
    return {
        "Type__c": kind,
        "Opportunity__c": deal,
        "Account__c": account,
        "Document_Date__c": issued.isoformat(),
        "Period_Start__c": period[0].isoformat(),
        "Period_End__c": period[1].isoformat(),
        "Total__c": total,
        "Balance_Due__c": due,
        "Status__c": status,
        "Currency__c": currency,
        "CurrencyIsoCode": currency,
    }


def subscription_row(
    *,
    deal: str,
    account: str,
    status: str,
    mrr: Decimal,
    next_invoice: date | None,
    currency: str = "USD",
) -> dict[str, Any]:
    return {
        "Opportunity__c": deal,
        "Account__c": account,
        "Status__c": status,
        "MRR__c": mrr,
        "Next_Invoice_Date__c": next_invoice.isoformat() if next_invoice else None,
        "CurrencyIsoCode": currency,
    }


# -- the ledger -------------------------------------------------------------------------------
def ledger_entries(path: Path) -> list[Any]:
    entries, errors, _ = loader.load_file(str(path))
    _, duplicates = unique_document_ids(entries, {})  # what connector ledger check looks for
    assert [error.message for error in [*errors, *duplicates]] == []
    return entries


def transactions(entries: list[Any]) -> list[data.Transaction]:
    return [entry for entry in entries if isinstance(entry, data.Transaction)]


def document(entries: list[Any], document_type: str, number: str) -> data.Transaction:
    """The one transaction of the connector's document ``number``."""
    found = [
        t
        for t in transactions(entries)
        if t.meta.get("document_type") == document_type and number in t.links
    ]
    assert len(found) == 1, f"{document_type} {number}: {found}"
    return found[0]


def postings(entry: data.Transaction) -> dict[str, tuple[Decimal, str]]:
    """Account → (amount, currency) of a transaction, customer receivables under one key."""
    result: dict[str, tuple[Decimal, str]] = {}
    for posting in entry.postings:
        account = RECEIVABLE if posting.account.startswith(RECEIVABLE + ":") else posting.account
        assert account not in result
        result[account] = units(posting)
    return result


def units(posting: data.Posting) -> tuple[Decimal, str]:
    """A posting's amount and currency (the loader fills in any left blank)."""
    amount = posting.units
    assert amount is not None and isinstance(amount.number, Decimal)
    return amount.number, str(amount.currency)


def receivable_account(entry: data.Transaction) -> str:
    (account,) = [p.account for p in entry.postings if p.account.startswith(RECEIVABLE + ":")]
    return str(account)


def balance(entries: list[Any], account: str) -> Decimal:
    return sum(
        (units(p)[0] for t in transactions(entries) for p in t.postings if p.account == account),
        D(0),
    )


def ledger_documents(path: Path) -> list[tuple[str, frozenset[str]]]:
    return [
        (str(t.meta["document_type"]), frozenset(t.links))
        for t in transactions(ledger_entries(path))
        if "document_type" in t.meta
    ]


def append(path: Path, text: str) -> None:
    """Add ``text`` at the end of the main ledger file, as finance would by hand."""
    path.write_text(path.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")


def document_id(factory: sessionmaker[Session], number: str) -> str:
    with factory() as session:
        found = session.scalar(select(tables.Document.id).where(tables.Document.number == number))
    assert found is not None
    return str(found)


# -- 1. a won deal is invoiced --------------------------------------------------------------------
@pytest.mark.parametrize("market", MARKETS)
def test_a_won_deal_becomes_an_invoice_in_the_ledger_and_in_salesforce(
    factory: sessionmaker[Session],
    cycle_settings: Settings,
    crm: Crm,
    market: Market,
) -> None:
    country, currency, tax_rate = market.country, market.currency, market.tax_rate
    account = crm.account("Acme Analytics", country, currency)
    entry = crm.seats_product(currency)
    deal = crm.deal(account, "Acme - 10 seats", currency=currency, start=MARCH_START)
    crm.line(deal, entry, SEATS)

    first = cycle(factory, cycle_settings, MARCH_START)

    # 10 seats × 50.00 for March 1..31, billed in advance on March 1; tax on top.
    tax = cents(MONTHLY * tax_rate / 100)
    total = MONTHLY + tax
    assert first.clean
    assert first.stages["bill"]["invoices"] == 1
    assert first.stages["bill"]["invoiced"] == {currency: str(total)}

    entries = ledger_entries(cycle_settings.ledger.path)
    invoice = document(entries, "invoice", "INV-000001")
    assert invoice.date == MARCH_START
    assert invoice.meta["document_id"] == document_id(factory, "INV-000001")
    assert invoice.meta["due"] == MARCH_START + timedelta(days=PAYMENT_TERMS)  # March 31
    expected = {RECEIVABLE: (total, currency), DEFERRED: (-MONTHLY, currency)}
    if tax:
        expected[market.tax_account] = (-tax, currency)
    assert postings(invoice) == expected

    assert crm.invoices(deal) == {
        "INV-000001": invoice_row(
            deal=deal,
            account=account,
            issued=MARCH_START,
            total=total,
            due=total,
            status="Open",
            currency=currency,
        )
    }
    assert crm.subscriptions(deal) == [
        subscription_row(
            deal=deal,
            account=account,
            status="Active",
            mrr=MONTHLY,  # recurring revenue, before tax
            next_invoice=date(2026, 4, 1),
            currency=currency,
        )
    ]
    assert crm.account_billing(account) == (MONTHLY, "Active")
    assert crm.sync_error(deal) is None

    # Nothing changed: nothing billed, posted or written again.
    again = cycle(factory, cycle_settings, MARCH_START)
    assert again.stages["bill"]["invoices"] == 0
    assert again.stages["push"]["posted"] == 0
    assert again.stages["writeback"]["sent"] == {}
    assert crm.count("Billing_Invoice__c") == 1
    assert crm.count("Billing_Subscription__c") == 1


# -- 2. an upgrade or a downgrade mid-period is prorated ----------------------------------------
@pytest.mark.parametrize("market", MARKETS)
@pytest.mark.parametrize("amended", [(UPGRADE, 15), (DOWNGRADE, 6)], ids=["up", "down"])
def test_an_amendment_mid_period_is_prorated(
    factory: sessionmaker[Session],
    cycle_settings: Settings,
    crm: Crm,
    amended: tuple[str, int],
    market: Market,
) -> None:
    kind, seats = amended  # the amending deal's type and its new seat count
    currency, tax_rate = market.currency, market.tax_rate
    account = crm.account("Beacon Labs", market.country, currency)
    entry = crm.seats_product(currency)
    deal = crm.deal(account, "Beacon - 10 seats", currency=currency, start=MARCH_START)
    crm.line(deal, entry, SEATS)
    cycle(factory, cycle_settings, MARCH_START)  # INV-000001: 500.00 (+ tax) for March
    invoiced = MONTHLY + cents(MONTHLY * tax_rate / 100)

    # A new Closed Won deal amends the first from March 16 with its whole new item set.
    effective = date(2026, 3, 16)
    amendment = crm.deal(
        account,
        f"Beacon - {seats} seats",
        currency=currency,
        start=effective,
        Type=kind,
        Amends_Opportunity__c=deal,
    )
    crm.line(amendment, entry, seats)
    result = cycle(factory, cycle_settings, effective)

    # (new − old monthly amount) × days left in March (16..31 = 16) / days in March (31).
    remaining = days_from(effective, MARCH_END)
    assert remaining == 16
    new_monthly = seats * SEAT
    change = cents((new_monthly - MONTHLY) * remaining / MARCH_DAYS)
    assert change == (D("129.03") if kind == UPGRADE else D("-103.23"))  # 250×16/31, −200×16/31
    tax = cents(abs(change) * tax_rate / 100)  # GB: 25.806 -> 25.81; 20.646 -> 20.65
    assert result.clean

    entries = ledger_entries(cycle_settings.ledger.path)
    first = invoice_row(
        deal=deal,
        account=account,
        issued=MARCH_START,
        total=invoiced,
        due=invoiced,
        status="Open",
        currency=currency,
    )
    if change > 0:
        total = change + tax
        assert (result.stages["bill"]["invoices"], result.stages["bill"]["credit_notes"]) == (1, 0)
        assert result.stages["bill"]["invoiced"] == {currency: str(total)}
        upgrade = document(entries, "invoice", "INV-000002")
        assert upgrade.date == effective
        lines = {RECEIVABLE: (total, currency), DEFERRED: (-change, currency)}
        if tax:
            lines[market.tax_account] = (-tax, currency)
        assert postings(upgrade) == lines
        expected = {
            "INV-000001": first,
            "INV-000002": invoice_row(
                deal=deal,  # the subscription's deal, not the amending one
                account=account,
                issued=effective,
                total=total,
                due=total,
                status="Open",
                currency=currency,
            ),
        }
    else:
        total = -change + tax
        assert (result.stages["bill"]["invoices"], result.stages["bill"]["credit_notes"]) == (0, 1)
        assert result.stages["bill"]["credited"] == {currency: str(total)}
        note = document(entries, "credit_note", "CN-000001")
        assert note.date == effective
        assert note.links == {"CN-000001", "INV-000001"}
        lines = postings(note)
        assert lines[RECEIVABLE] == (-total, currency)
        if tax:
            assert lines[market.tax_account] == (tax, currency)
        assert sum((amount for amount, _ in lines.values()), D(0)) == 0
        expected = {
            # The credit note reduces what INV-000001 still owes.
            "INV-000001": {
                **first,
                "Balance_Due__c": invoiced - total,
                "Status__c": "Partially Paid",
            },
            "CN-000001": invoice_row(
                deal=deal,
                account=account,
                issued=effective,
                total=total,
                due=D("0.00"),
                status="Applied",
                currency=currency,
                kind="Credit Note",
            ),
        }
    assert crm.invoices(deal) == expected
    assert crm.invoices(amendment) == {}
    receivable = receivable_account(document(entries, "invoice", "INV-000001"))
    assert balance(entries, receivable) == invoiced + (total if change > 0 else -total)

    assert crm.subscriptions(deal) == [
        subscription_row(
            deal=deal,
            account=account,
            status="Active",
            mrr=new_monthly,
            next_invoice=date(2026, 4, 1),
            currency=currency,
        )
    ]
    assert crm.count("Billing_Subscription__c") == 1
    assert crm.account_billing(account) == (new_monthly, "Active")
    assert crm.sync_error(amendment) is None

    # April is billed at the new seat count, whole.
    april = cycle(factory, cycle_settings, date(2026, 4, 1))
    april_total = new_monthly + cents(new_monthly * tax_rate / 100)
    assert april.stages["bill"]["invoiced"] == {currency: str(april_total)}
    number = "INV-000003" if change > 0 else "INV-000002"
    assert crm.invoices(deal)[number] == invoice_row(
        deal=deal,
        account=account,
        issued=date(2026, 4, 1),
        total=april_total,
        due=april_total,
        status="Open",
        currency=currency,
        period=(date(2026, 4, 1), date(2026, 4, 30)),
    )


# -- 3. a cancellation mid-period is credited -------------------------------------------------
@pytest.mark.parametrize("market", MARKETS)
def test_a_cancellation_mid_period_gives_a_prorated_credit_note(
    factory: sessionmaker[Session],
    cycle_settings: Settings,
    crm: Crm,
    market: Market,
) -> None:
    country, currency, tax_rate = market.country, market.currency, market.tax_rate
    account = crm.account("Cedar Foods", country, currency)
    entry = crm.seats_product(currency)
    deal = crm.deal(account, "Cedar - 10 seats", currency=currency, start=MARCH_START)
    crm.line(deal, entry, SEATS)
    cycle(factory, cycle_settings, MARCH_START)  # INV-000001: 500.00 (+ tax) for March
    tax = cents(MONTHLY * tax_rate / 100)
    invoiced = MONTHLY + tax

    # Cancelled from March 21 (the first day without service): March 21..31 are unused.
    cancelled = date(2026, 3, 21)
    crm.sobject("Opportunity").update(deal, {"Cancellation_Date__c": cancelled.isoformat()})
    result = cycle(factory, cycle_settings, cancelled)

    unused = days_from(cancelled, MARCH_END)
    assert unused == 11
    credit = cents(MONTHLY * unused / MARCH_DAYS)
    assert credit == D("177.42")  # 500.00 × 11/31 = 177.419…
    credit_tax = cents(credit * tax_rate / 100)  # GB: 35.484 -> 35.48
    credited = credit + credit_tax
    owed = invoiced - credited  # US: 322.58; GB: 600.00 - 212.90 = 387.10
    assert result.clean
    assert result.stages["bill"]["credit_notes"] == 1
    assert result.stages["bill"]["credited"] == {currency: str(credited)}

    entries = ledger_entries(cycle_settings.ledger.path)
    note = document(entries, "credit_note", "CN-000001")
    assert note.date == cancelled
    assert note.meta["document_id"] == document_id(factory, "CN-000001")
    assert note.links == {"CN-000001", "INV-000001"}
    lines = postings(note)
    assert lines[RECEIVABLE] == (-credited, currency)
    if credit_tax:
        assert lines[market.tax_account] == (credit_tax, currency)
    assert sum((amount for amount, _ in lines.values()), D(0)) == 0
    receivable = receivable_account(note)
    assert balance(entries, receivable) == owed

    assert crm.invoices(deal) == {
        "INV-000001": invoice_row(
            deal=deal,
            account=account,
            issued=MARCH_START,
            total=invoiced,
            due=owed,
            status="Partially Paid",
            currency=currency,
        ),
        "CN-000001": invoice_row(
            deal=deal,
            account=account,
            issued=cancelled,
            total=credited,
            due=D("0.00"),
            status="Applied",
            currency=currency,
            kind="Credit Note",
        ),
    }
    assert crm.subscriptions(deal) == [
        subscription_row(
            deal=deal,
            account=account,
            status="Cancelled",
            mrr=D("0.00"),
            next_invoice=None,
            currency=currency,
        )
    ]
    assert crm.account_billing(account) == (D("0.00"), "Cancelled")

    # Nothing more is billed for a cancelled subscription; what is still owed on INV-000001
    # fell due on March 31.
    april = cycle(factory, cycle_settings, date(2026, 4, 1))
    assert (april.stages["bill"]["invoices"], april.stages["bill"]["credit_notes"]) == (0, 0)
    assert set(crm.invoices(deal)) == {"INV-000001", "CN-000001"}
    assert crm.account_billing(account) == (D("0.00"), "Past Due")
    # March is closed: revenue holds exactly the 20 days served, nothing stays deferred.
    entries = ledger_entries(cycle_settings.ledger.path)
    assert balance(entries, "Income:Subscriptions") == -(MONTHLY - credit)  # -322.58
    assert balance(entries, DEFERRED) == 0
    assert balance(entries, receivable) == owed
    if tax:
        assert balance(entries, market.tax_account) == -(tax - credit_tax)


# -- 4. a payment recorded in the ledger shows in Salesforce ---------------------------------
def pay(path: Path, day: date, amount: Decimal | None, receivable: str, what: str) -> None:
    """Finance records money received for INV-000001 in the main ledger file; without an
    amount, the receivable posting is left for Beancount to fill in."""
    bank = f"{amount} USD" if amount is not None else f"{MONTHLY} USD"
    credit = f"        -{amount} USD" if amount is not None else ""
    append(
        path,
        f'{day.isoformat()} * "Bank transfer" "Delta Freight pays {what}" ^INV-000001\n'
        f"  Assets:Bank:USD      {bank}\n"
        f"  {receivable}{credit}\n",
    )


@pytest.mark.parametrize(
    "payments",
    [
        [(date(2026, 3, 10), None)],  # the whole 500.00, the receivable posting filled in
        [(date(2026, 3, 10), D("200.00")), (date(2026, 3, 20), D("300.00"))],
    ],
    ids=["in-full", "in-two-parts"],
)
def test_a_payment_recorded_in_the_ledger_marks_the_invoice_paid_in_salesforce(
    factory: sessionmaker[Session],
    cycle_settings: Settings,
    crm: Crm,
    payments: list[tuple[date, Decimal | None]],
) -> None:
    account = crm.account("Delta Freight", "United States", "USD")
    entry = crm.seats_product("USD")
    deal = crm.deal(account, "Delta - 10 seats", currency="USD", start=MARCH_START)
    crm.line(deal, entry, SEATS)
    cycle(factory, cycle_settings, MARCH_START)  # INV-000001: 500.00 for March
    path = cycle_settings.ledger.path
    receivable = receivable_account(document(ledger_entries(path), "invoice", "INV-000001"))
    first = invoice_row(
        deal=deal, account=account, issued=MARCH_START, total=MONTHLY, due=MONTHLY, status="Open"
    )

    paid = D(0)
    for known, (day, amount) in enumerate(payments):
        pay(path, day, amount, receivable, f"INV-000001 ({known + 1})")
        result = cycle(factory, cycle_settings, day)

        paid += amount if amount is not None else MONTHLY
        assert result.stages["payments"] == {
            "recorded": 1,
            "known": known,
            "refused": {},
            "stopped": None,
            "reconciled": 0,
        }
        due = MONTHLY - paid
        status = "Paid" if due == 0 else "Partially Paid"
        assert crm.invoices(deal) == {
            "INV-000001": {**first, "Balance_Due__c": due, "Status__c": status}
        }
    assert paid == MONTHLY
    assert crm.account_billing(account) == (MONTHLY, "Active")

    # Read again, the payments change nothing; and they came from the ledger, so they are not
    # posted back to it: only finance's transactions pay.
    again = cycle(factory, cycle_settings, payments[-1][0])
    assert again.stages["payments"] == {
        "recorded": 0,
        "known": len(payments),
        "refused": {},
        "stopped": None,
        "reconciled": 0,
    }
    assert again.stages["writeback"]["sent"] == {}
    entries = ledger_entries(path)
    assert balance(entries, receivable) == 0
    assert balance(entries, "Assets:Bank:USD") == MONTHLY
    banked = [
        t for t in transactions(entries) if any(p.account == "Assets:Bank:USD" for p in t.postings)
    ]
    assert [(t.date, "document_type" in t.meta) for t in banked] == [
        (day, False) for day, _ in payments
    ]
    with factory() as session:
        recorded = session.execute(
            select(tables.Payment.amount, tables.Payment.received_on).order_by(tables.Payment.id)
        ).all()
    assert [tuple(row) for row in recorded] == [
        (amount if amount is not None else MONTHLY, day) for day, amount in payments
    ]


# -- 5. a deal that cannot bill says why, until it is fixed ----------------------------------
def test_a_deal_that_cannot_bill_shows_why_until_it_is_fixed(
    factory: sessionmaker[Session], cycle_settings: Settings, crm: Crm
) -> None:
    account = crm.account("Ember Robotics", "United States", "USD")
    entry = crm.seats_product("USD")
    deal = crm.deal(account, "Ember - no products yet", currency="USD", start=MARCH_START)

    waiting = cycle(factory, cycle_settings, MARCH_START)

    assert waiting.stages["pull"]["quarantined"] == 1
    assert not waiting.clean
    assert crm.sync_error(deal) == "won deal has no line items"
    assert crm.invoices(deal) == {}
    assert crm.count("Billing_Invoice__c") == 0
    assert crm.count("Billing_Subscription__c") == 0
    assert crm.account_billing(account) == (D("0.00"), "Not Billed")
    assert ledger_documents(cycle_settings.ledger.path) == []

    # Sales adds the products; the next cycle bills the deal and clears the reason.
    crm.line(deal, entry, SEATS)
    fixed = cycle(factory, cycle_settings, date(2026, 3, 2))

    assert fixed.stages["pull"]["quarantined"] == 0
    assert fixed.clean
    assert crm.sync_error(deal) is None
    assert crm.invoices(deal) == {
        "INV-000001": invoice_row(
            deal=deal,
            account=account,
            issued=date(2026, 3, 2),
            total=MONTHLY,
            due=MONTHLY,
            status="Open",
        )
    }
    assert crm.subscriptions(deal) == [
        subscription_row(
            deal=deal, account=account, status="Active", mrr=MONTHLY, next_invoice=date(2026, 4, 1)
        )
    ]
    assert crm.account_billing(account) == (MONTHLY, "Active")
    invoice = document(ledger_entries(cycle_settings.ledger.path), "invoice", "INV-000001")
    assert postings(invoice) == {RECEIVABLE: (MONTHLY, "USD"), DEFERRED: (-MONTHLY, "USD")}


# -- 6. editing an older upgrade deal bills nothing -------------------------------------------
def test_renaming_an_earlier_upgrade_deal_leaves_a_later_upgrade_in_place(
    factory: sessionmaker[Session], cycle_settings: Settings, crm: Crm
) -> None:
    """Two upgrades of one deal (15 seats from March 16, 20 seats from April 1), both billed;
    then sales renames the first upgrade deal. Its line items, service start and the deal it
    amends are unchanged, so nothing owed changes: no document, MRR still 20 × 50.00."""
    account = crm.account("Falcon Media", "United States", "USD")
    entry = crm.seats_product("USD")
    deal = crm.deal(account, "Falcon - 10 seats", currency="USD", start=MARCH_START)
    crm.line(deal, entry, SEATS)
    cycle(factory, cycle_settings, MARCH_START)  # INV-000001: 500.00
    first = crm.deal(
        account,
        "Falcon - 15 seats",
        currency="USD",
        start=date(2026, 3, 16),
        Type=UPGRADE,
        Amends_Opportunity__c=deal,
    )
    crm.line(first, entry, 15)
    cycle(factory, cycle_settings, date(2026, 3, 16))  # INV-000002: 129.03
    second = crm.deal(
        account,
        "Falcon - 20 seats",
        currency="USD",
        start=date(2026, 4, 1),
        Type=UPGRADE,
        Amends_Opportunity__c=deal,
    )
    crm.line(second, entry, 20)
    cycle(factory, cycle_settings, date(2026, 4, 1))  # INV-000003: April at 20 seats
    april_total = 20 * SEAT  # 1000.00
    april = invoice_row(
        deal=deal,
        account=account,
        issued=date(2026, 4, 1),
        total=april_total,
        due=april_total,
        status="Open",
        period=(date(2026, 4, 1), date(2026, 4, 30)),
    )
    before = crm.invoices(deal)
    assert set(before) == {"INV-000001", "INV-000002", "INV-000003"}
    assert before["INV-000003"] == april
    assert crm.subscriptions(deal)[0]["MRR__c"] == april_total

    crm.sobject("Opportunity").update(first, {"Name": "Falcon - 15 seats (countersigned)"})
    result = cycle(factory, cycle_settings, date(2026, 4, 2))

    assert result.stages["bill"]["credit_notes"] == 0
    assert result.stages["bill"]["invoices"] == 0
    assert crm.invoices(deal) == before
    assert crm.subscriptions(deal) == [
        subscription_row(
            deal=deal,
            account=account,
            status="Active",
            mrr=april_total,
            next_invoice=date(2026, 5, 1),
        )
    ]
    # March's invoice (due March 31) is unpaid on April 2: the account is past due.
    assert crm.account_billing(account) == (april_total, "Past Due")

    # Changing the first upgrade's seats now would undo the second: it waits for review, and
    # sales see why on the deal.
    (item,) = crm.sf.query(f"SELECT Id FROM OpportunityLineItem WHERE OpportunityId = '{first}'")[
        "records"
    ]
    crm.sobject("OpportunityLineItem").update(item["Id"], {"Quantity": 16})
    held = cycle(factory, cycle_settings, date(2026, 4, 3))

    assert held.stages["pull"]["held"] == 1
    assert (held.stages["bill"]["invoices"], held.stages["bill"]["credit_notes"]) == (0, 0)
    assert crm.invoices(deal) == before
    assert crm.subscriptions(deal)[0]["MRR__c"] == april_total
    assert crm.sync_error(first) == (
        "upgrade or downgrade changed after a later one was applied; review"
    )
