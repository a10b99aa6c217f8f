"""What people see in Salesforce after a cycle, read the way they read it: the invoice records'
fields and their status history, the formula ``Days_Overdue__c`` as the org computes it, the
shipped list views' filters, the deals' sync status; and a single-currency org taking every
record the write-back sends.

Each test fills an empty sandbox org through the REST API, runs the real cycle
(:func:`connector.sync.cycle.run_cycle`) and compares what Salesforce shows with what the
billing core holds. The list views are read from the metadata the connector ships
(``config/salesforce``): their filters become the WHERE clause of a SOQL query, as a list view
filters.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from simple_salesforce import Salesforce
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.settings import SalesforceSettings, Settings
from connector.sync import settlement
from connector.sync.cycle import STAGES, CycleResult, run_cycle
from sandbox.salesforce.calls import Call, Reply
from sandbox.salesforce.schema import default_schema
from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import connect

ROOT = Path(__file__).resolve().parents[2]
OBJECTS = ROOT / "config" / "salesforce" / "force-app" / "main" / "default" / "objects"
MAPPING = ROOT / "mappings" / "salesforce.yaml"
METADATA = "{http://soap.sforce.com/2006/04/metadata}"
MARCH_START, MARCH_PAID, APRIL_15 = date(2026, 3, 1), date(2026, 3, 10), date(2026, 4, 15)
SEAT, SEATS = 50, 10
NO_ITEMS = "won deal has no line items"
INVOICE_FIELDS = (
    "Id, Name, Document_Number__c, Opportunity__c, Due_Date__c, Amount_Paid__c, Paid_Date__c, "
    "Tax__c, Total__c, Balance_Due__c, Status__c, Days_Overdue__c"
)
# ListView filter operations as SOQL operators (a comma-separated value of `equals` is any of).
OPERATORS = {
    "equals": "=",
    "notEqual": "!=",
    "lessThan": "<",
    "greaterThan": ">",
    "lessOrEqual": "<=",
    "greaterOrEqual": ">=",
}


# -- the connector against the sandbox --------------------------------------------------------
def settings_for(ledger_settings: Settings, sandbox: Sandbox, mapping: Path = MAPPING) -> Settings:
    salesforce = SalesforceSettings(
        instance_url=sandbox.instance_url,
        session_id=SecretStr(sandbox.session_id),
        ca_file=str(sandbox.ca_file),
        backoff_initial_seconds=0.001,
        mapping_file=str(mapping),
    )
    return ledger_settings.model_copy(update={"salesforce": salesforce})


def cycle(factory: sessionmaker[Session], settings: Settings, as_of: date) -> CycleResult:
    result = run_cycle(factory, settings, as_of)
    assert result.errors == {}
    assert set(result.stages) == set(STAGES)
    assert result.stages["writeback"]["failed"] == {}
    assert result.stages["push"]["parked"] == {}
    return result


class Crm:
    """The org as a Salesforce user fills it and reads it."""

    def __init__(
        self, sf: Salesforce, *, country: str = "United States", currency: str | None = "USD"
    ) -> None:
        self.sf = sf
        self.currency = {"CurrencyIsoCode": currency} if currency else {}
        self.book = sf.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")["records"][0][
            "Id"
        ]
        product = sf.Product2.create(
            {
                "Name": "Seats",
                "ProductCode": "SEATS",
                "Billing_Type__c": "Recurring",
                "IsActive": True,
            }
        )["id"]
        self.entry = sf.PricebookEntry.create(
            {
                "Pricebook2Id": self.book,
                "Product2Id": product,
                "UnitPrice": SEAT,
                "IsActive": True,
                **self.currency,
            }
        )["id"]
        self.account = sf.Account.create(
            {"Name": "Delta Freight", "BillingCountry": country, **self.currency}
        )["id"]

    def deal(self, name: str, seats: int | None = SEATS) -> str:
        deal = self.sf.Opportunity.create(
            {
                "Name": name,
                "AccountId": self.account,
                "StageName": "Closed Won",
                "CloseDate": "2026-02-20",
                "Pricebook2Id": self.book,
                "Service_Start_Date__c": MARCH_START.isoformat(),
                "Term_Months__c": 12,
                "Billing_Frequency__c": "Monthly",
                "Trial_Days__c": 0,
                **self.currency,
            }
        )["id"]
        if seats:
            self.sf.OpportunityLineItem.create(
                {"OpportunityId": deal, "PricebookEntryId": self.entry, "Quantity": seats}
            )
        return str(deal)

    def query(self, soql: str) -> list[dict[str, Any]]:
        rows = self.sf.query_all(soql)["records"]
        return [{k: v for k, v in row.items() if k != "attributes"} for row in rows]

    def invoices(self, where: str = "") -> dict[str, dict[str, Any]]:
        """Billing_Invoice__c records by name."""
        soql = f"SELECT {INVOICE_FIELDS} FROM Billing_Invoice__c {where}"
        return {row["Name"]: row for row in self.query(soql)}


def number(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def documents(factory: sessionmaker[Session]) -> dict[str, tables.Document]:
    with factory() as session:
        rows = session.scalars(select(tables.Document).where(tables.Document.kind == "invoice"))
        return {row.number: row for row in rows}


def list_view(obj: str, name: str) -> str:
    """The SOQL of a shipped list view: its object's records that pass its filters (a number
    field's value as a number, any other's quoted)."""
    root = ET.parse(OBJECTS / obj / "listViews" / f"{name}.listView-meta.xml").getroot()
    assert root.findtext(f"{METADATA}filterScope") == "Everything"
    assert root.find(f"{METADATA}booleanFilter") is None  # the filters are ANDed
    conditions = []
    for item in root.iter(f"{METADATA}filters"):
        field = item.findtext(f"{METADATA}field") or ""
        operation = item.findtext(f"{METADATA}operation") or ""
        values = (item.findtext(f"{METADATA}value") or "").split(",")
        spec = default_schema().objects[obj].field(field)
        assert spec is not None, f"{name} filters on {field}, which {obj} does not have"
        literals = [value if spec.is_number else f"'{value}'" for value in values]
        if operation == "equals" and len(literals) > 1:
            conditions.append(f"{field} IN ({', '.join(literals)})")
        else:
            (literal,) = literals
            conditions.append(f"{field} {OPERATORS[operation]} {literal}")
    return f"SELECT Id, Name FROM {obj} WHERE {' AND '.join(conditions)}"


def org_date(sandbox: Sandbox, day: date) -> None:
    """Set the org's clock (``TODAY`` and ``TODAY()``) to noon of ``day``, UTC."""
    moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    sandbox.org.clock = lambda: moment


# -- the invoices, their days overdue and the list views --------------------------------------
def test_what_salesforce_shows_of_invoices_payments_and_deals(
    factory: sessionmaker[Session],
    ledger_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
) -> None:
    settings = settings_for(ledger_settings, salesforce_sandbox)
    crm = Crm(sf, country="United Kingdom", currency="GBP")  # taxed at 20% in the test settings
    paying, late, empty = (
        crm.deal("Delta - paying"),
        crm.deal("Delta - late"),
        crm.deal("Delta - no products", seats=None),
    )

    cycle(factory, settings, MARCH_START)

    # One invoice per deal with products, shown as the billing core holds it.
    billed = documents(factory)
    shown = crm.invoices()
    assert set(shown) == set(billed) and len(billed) == 2
    for name, row in shown.items():
        doc = billed[name]
        assert row["Document_Number__c"] == name == doc.number
        assert row["Due_Date__c"] == doc.due_date.isoformat() == "2026-03-31"
        assert number(row["Amount_Paid__c"]) == doc.amount_paid == 0
        assert row["Paid_Date__c"] is None
        assert number(row["Tax__c"]) == doc.tax_total == SEAT * SEATS * Decimal("0.2")
        assert number(row["Total__c"]) == doc.total == SEAT * SEATS * Decimal("1.2")
        assert row["Status__c"] == "Open"
    by_deal = {row["Opportunity__c"]: name for name, row in shown.items()}
    assert set(by_deal) == {paying, late}

    # The deal without products says why it is not billed; the others are in sync.
    deals = {
        row["Id"]: row
        for row in crm.query(
            "SELECT Id, Billing_Sync_Status__c, Billing_Sync_Error__c FROM Opportunity"
        )
    }
    assert (deals[empty]["Billing_Sync_Status__c"], deals[empty]["Billing_Sync_Error__c"]) == (
        "Error",
        NO_ITEMS,
    )
    for deal in (paying, late):
        assert (deals[deal]["Billing_Sync_Status__c"], deals[deal]["Billing_Sync_Error__c"]) == (
            "Synced",
            None,
        )
    waiting = crm.query(list_view("Opportunity", "Deals_waiting_for_billing"))
    assert [row["Id"] for row in waiting] == [empty]

    # The customer pays one invoice in full; the next cycle, in April, shows it paid.
    paid_number = by_deal[paying]
    with factory.begin() as session:
        settlement.record_payment(
            session,
            amount=billed[paid_number].total,
            received_on=MARCH_PAID,
            invoice_number=paid_number,
            reference="wire-0310",
        )
    cycle(factory, settings, APRIL_15)

    billed = documents(factory)
    late_number = by_deal[late]
    org_date(salesforce_sandbox, APRIL_15)  # what people read on April 15
    shown = crm.invoices()
    assert set(shown) == set(billed) and len(billed) == 4  # and the April invoices
    paid, unpaid = shown[paid_number], shown[late_number]
    assert number(paid["Amount_Paid__c"]) == billed[paid_number].amount_paid == 600
    with factory() as session:
        received = session.scalar(
            select(tables.Payment.received_on).where(
                tables.Payment.invoice_id == billed[paid_number].id
            )
        )
    assert paid["Paid_Date__c"] == received.isoformat() == MARCH_PAID.isoformat()
    assert (number(paid["Balance_Due__c"]), paid["Status__c"]) == (0, "Paid")
    # The invoice's history (its tracked status) shows the write-back marking it paid.
    history = crm.query(
        "SELECT Field, OldValue, NewValue FROM Billing_Invoice__History "
        f"WHERE ParentId = '{paid['Id']}' ORDER BY CreatedDate"
    )
    assert history == [
        {"Field": "created", "OldValue": None, "NewValue": None},
        {"Field": "Status__c", "OldValue": "Open", "NewValue": "Paid"},
    ]
    assert number(unpaid["Amount_Paid__c"]) == billed[late_number].amount_paid == 0
    assert unpaid["Paid_Date__c"] is None
    for name, row in shown.items():
        assert row["Name"] == row["Document_Number__c"]
        assert row["Due_Date__c"] == billed[name].due_date.isoformat()

    # Days overdue: the days since the due date for the unpaid March invoice, 0 for the paid
    # one and for the April ones (not yet due), in a query and in a record's page alike.
    overdue_days = (APRIL_15 - billed[late_number].due_date).days
    assert overdue_days == 15
    assert {name: row["Days_Overdue__c"] for name, row in shown.items()} == {
        name: (float(overdue_days) if name == late_number else 0.0) for name in billed
    }
    assert sf.Billing_Invoice__c.get(unpaid["Id"])["Days_Overdue__c"] == overdue_days
    assert sf.Billing_Invoice__c.get(paid["Id"])["Days_Overdue__c"] == 0

    # The shipped list views, filtered as Salesforce filters them.
    overdue_view = list_view("Billing_Invoice__c", "Overdue_invoices")
    assert overdue_view == ("SELECT Id, Name FROM Billing_Invoice__c WHERE Days_Overdue__c > 0")
    assert [row["Name"] for row in crm.query(overdue_view)] == [late_number]
    open_view = crm.query(list_view("Billing_Invoice__c", "Open_invoices"))
    assert sorted(row["Name"] for row in open_view) == sorted(
        name for name, doc in billed.items() if doc.total - doc.amount_paid > 0
    )
    assert paid_number not in {row["Name"] for row in open_view}

    # A day later the same invoice is a day more overdue, with nothing written.
    org_date(salesforce_sandbox, date(2026, 4, 16))
    assert crm.invoices("WHERE Days_Overdue__c > 15")[late_number]["Days_Overdue__c"] == 16


# -- a single-currency org --------------------------------------------------------------------
def single_currency_mapping(folder: Path) -> Path:
    """The repository's mapping with empty ``currency:`` entries, as its comments say to for
    an org without multi-currency."""
    text = MAPPING.read_text(encoding="utf-8")
    lines = [
        line.split("currency:")[0] + 'currency: ""'
        if line.lstrip().startswith("currency:")
        else line
        for line in text.splitlines()
    ]
    assert sum(line.strip() == 'currency: ""' for line in lines) == 2
    path = folder / "salesforce.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.sandbox(multi_currency=False)
def test_a_single_currency_org_takes_every_record_the_write_back_sends(
    factory: sessionmaker[Session],
    ledger_settings: Settings,
    salesforce_sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sf = connect(salesforce_sandbox)
    described: list[str] = []
    rest = salesforce_sandbox.app.rest
    describe = rest.describe

    def counted(call: Call, name: str) -> Reply:
        described.append(name)
        return describe(call, name)

    monkeypatch.setattr(rest, "describe", counted)
    mapping = single_currency_mapping(tmp_path)
    settings = settings_for(ledger_settings, salesforce_sandbox, mapping)
    crm = Crm(sf, currency=None)
    deals = [crm.deal("Delta - one"), crm.deal("Delta - two", seats=3)]
    empty = crm.deal("Delta - no products", seats=None)

    first = cycle(factory, settings, MARCH_START)
    second = cycle(factory, settings, date(2026, 4, 1))

    # Whether the org has multi-currency was read once, from the invoice object's describe,
    # and kept: the second cycle asked nothing.
    assert described.count("Billing_Invoice__c") == 1

    for result in (first, second):
        assert result.stages["writeback"]["sent"]  # something was written each time
    billed = documents(factory)
    assert len(billed) == 4
    assert {doc.currency for doc in billed.values()} == {"USD"}  # billing.default_currency
    shown = crm.invoices()
    assert set(shown) == set(billed)
    for name, row in shown.items():
        assert number(row["Total__c"]) == billed[name].total
        assert row["Opportunity__c"] in deals
    subscriptions = crm.query("SELECT Opportunity__c, Status__c FROM Billing_Subscription__c")
    assert sorted(row["Opportunity__c"] for row in subscriptions) == sorted(deals)
    account = sf.Account.get(crm.account)
    # April 1: the March invoices, due March 31, are unpaid.
    assert (number(account["MRR__c"]), account["Billing_Status__c"]) == (
        SEAT * (SEATS + 3),
        "Past Due",
    )
    assert number(account["Overdue_Amount__c"]) == SEAT * (SEATS + 3)
    assert sf.Opportunity.get(empty)["Billing_Sync_Error__c"] == NO_ITEMS
    # No record anywhere carries a currency: no object has the field.
    for obj in ("Account", "Opportunity", "Billing_Invoice__c", "Billing_Subscription__c"):
        fields = {field["name"] for field in sf.restful(f"sobjects/{obj}/describe")["fields"]}
        assert "CurrencyIsoCode" not in fields
