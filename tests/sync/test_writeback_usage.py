"""Usage written back as ``Billing_Usage__c`` records, against the sandbox org: one per metered
item and period, with its quantity, amount, period and status, shown on the deal and the
account; Accruing while the period runs (sent again only when it changed), the same record
Billed once invoiced and never Accruing again, again only when an adjustment changes it, 200 to
a call."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import Frequency
from connector.billing.subscriptions import SubscriptionTerms
from connector.crm.client import SalesforceClient
from connector.db import tables
from connector.db import writeback_queue as queue
from connector.db.engine import transaction
from connector.settings import SalesforceSettings, Settings
from connector.sync import contracts, writeback
from connector.sync.billing_run import run_billing
from connector.sync.usage_events import Limits, ingest_batch
from connector.sync.writeback_accruing import AccruingOptions
from sandbox.salesforce.server import Sandbox
from tests import builders
from tests.builders import documents
from tests.statements import counting
from tests.sync.test_billing_usage import FEB, JAN, MAR, METRICS
from tests.sync.test_late_usage import settings_with

D = Decimal
SYSTEM = "salesforce"
USAGE_FIELDS = (
    "Name, Usage_Key__c, Opportunity__c, Account__c, Subscription__c, Metric__c, Quantity__c, "
    "Billable_Quantity__c, Amount__c, Currency__c, CurrencyIsoCode, Period_Start__c, "
    "Period_End__c, Status__c, Invoice_Number__c, Adjustment_Number__c"
)


def client_for(sandbox: Sandbox) -> SalesforceClient:
    return SalesforceClient(
        SalesforceSettings(
            instance_url=sandbox.instance_url,
            session_id=sandbox.session_id,
            ca_file=str(sandbox.ca_file),
            backoff_initial_seconds=0.001,
        )
    )


def open_metered_deals(
    factory: sessionmaker[Session], sandbox: Sandbox, count: int
) -> list[tuple[str, str, int, int]]:
    """``count`` accounts with a won deal each in the org, billed from January 1: a fee of
    100.00 a month and API calls at 0.25 each beyond 2 free a month. Returns (account id,
    deal id, subscription id, customer id) of each."""
    org = sandbox.org
    found = []
    with transaction(factory) as session:
        plan = builders.price(session, "PLAN", unit_amount="100.00")
        api = builders.metered_price(session, unit_amount="0.25", free_units="2", key="api-1")
        for number in range(count):
            account = org.create("Account", {"Name": f"Metered {number}", "CurrencyIsoCode": "USD"})
            deal = org.create(
                "Opportunity",
                {
                    "Name": f"Metered deal {number}",
                    "AccountId": account,
                    "StageName": "Closed Won",
                    "CloseDate": "2025-12-15",
                    "CurrencyIsoCode": "USD",
                },
            )
            customer = contracts.upsert_customer(
                session,
                name=f"Metered {number}",
                country="US",
                currency="USD",
                system=SYSTEM,
                external_id=account,
            )
            row = contracts.create_subscription(
                session,
                customer=customer,
                name=f"Metered deal {number}",
                terms=SubscriptionTerms(JAN, Frequency.MONTHLY),
                items=[builders.spec(session, plan, 1), builders.spec(session, api, 1)],
                system=SYSTEM,
                external_id=deal,
            )
            found.append((account, deal, row.id, customer.id))
    return found


def calls(
    factory: sessionmaker[Session], customers: list[int], at: str, count: int, tag: str
) -> None:
    """``count`` API calls of each customer, a minute apart from ``at`` (UTC), in one batch."""
    start = datetime.fromisoformat(at).replace(tzinfo=UTC)
    events: list[Any] = [
        {
            "transaction_id": f"{tag}-{customer}-{n}",
            "customer": str(customer),
            "metric": "api_calls",
            "timestamp": (start + timedelta(minutes=n)).isoformat(),
            "properties": {},
        }
        for customer in customers
        for n in range(count)
    ]
    results = ingest_batch(
        factory, METRICS, events, start + timedelta(days=1), Limits(past=timedelta(days=3660))
    )
    assert all(result.outcome.value == "accepted" for result in results)


def usage_records(sf: Salesforce) -> list[dict[str, Any]]:
    rows = sf.query_all(f"SELECT {USAGE_FIELDS} FROM Billing_Usage__c ORDER BY Usage_Key__c")[
        "records"
    ]
    return [{k: v for k, v in row.items() if k != "attributes"} for row in rows]


def item_of(factory: sessionmaker[Session], subscription_id: int) -> tuple[int, str]:
    item = tables.SubscriptionItem
    with factory() as session:
        row = session.execute(
            select(item.id, item.item_key).where(
                item.subscription_id == subscription_id, item.kind == "metered"
            )
        ).one()
    return row.id, row.item_key


@pytest.fixture
def usage_settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_with(database_url, tmp_path)


def test_billed_usage_shows_on_the_deal_and_the_account_and_an_adjustment_updates_it(
    factory: sessionmaker[Session],
    usage_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
) -> None:
    [(account, deal, subscription_id, customer_id)] = open_metered_deals(
        factory, salesforce_sandbox, 1
    )
    item_id, item_key = item_of(factory, subscription_id)
    client = client_for(salesforce_sandbox)
    calls(factory, [customer_id], "2026-01-10T09:00", 5, "jan")
    run_billing(factory, usage_settings, JAN)
    assert writeback.write_back(factory, client, JAN).sent.get("Billing_Usage__c") is None

    run_billing(factory, usage_settings, FEB)  # January's 5 calls, 2 free: 3 × 0.25
    first = writeback.write_back(factory, client, FEB)

    assert first.failed == {}
    assert first.sent["Billing_Usage__c"] == 1
    key = f"SUB-{subscription_id}:{item_key}:2026-01-01"
    [subscription] = sf.query(
        f"SELECT Id FROM Billing_Subscription__c WHERE Subscription_Id__c = 'SUB-{subscription_id}'"
    )["records"]
    january = {
        "Name": "Api: usage 2026-01-01..2026-01-31",
        "Usage_Key__c": key,
        "Opportunity__c": deal,
        "Account__c": account,
        "Subscription__c": subscription["Id"],
        "Metric__c": "api_calls",
        "Quantity__c": 5.0,
        "Billable_Quantity__c": 3.0,
        "Amount__c": 0.75,
        "Currency__c": "USD",
        "CurrencyIsoCode": "USD",
        "Period_Start__c": "2026-01-01",
        "Period_End__c": "2026-01-31",
        "Status__c": "Billed",
        "Invoice_Number__c": "INV-000002",
        "Adjustment_Number__c": None,
    }
    assert usage_records(sf) == [january]
    parents = {
        "Opportunity": deal,
        "Account": account,
        "Billing_Subscription__c": subscription["Id"],
    }
    for parent, record_id in parents.items():  # the related lists
        shown = sf.query(
            f"SELECT Id, (SELECT Usage_Key__c FROM Billing_Usage__r) FROM {parent} "
            f"WHERE Id = '{record_id}'"
        )["records"][0]["Billing_Usage__r"]["records"]
        assert [row["Usage_Key__c"] for row in shown] == [key]

    # Nothing changed: nothing is built, no call.
    again = writeback.write_back(factory, client, FEB)
    assert (again.built, again.sent, again.api_calls) == (0, {}, 0)

    # Four of January's calls arrive late: billed again as an adjustment (4 × 0.25).
    calls(factory, [customer_id], "2026-01-20T10:00", 4, "late")
    run_billing(factory, usage_settings, date(2026, 2, 5))
    with factory() as session:
        assert queue.usage_key(item_id, JAN) in {
            key for _, key in queue.due(session, date(2026, 2, 5))
        }
    adjusted = writeback.write_back(factory, client, date(2026, 2, 5))

    assert adjusted.failed == {}
    assert adjusted.sent["Billing_Usage__c"] == 1
    assert usage_records(sf) == [
        {
            **january,
            "Quantity__c": 9.0,
            "Billable_Quantity__c": 7.0,
            "Amount__c": 1.75,
            "Status__c": "Adjusted",
            "Adjustment_Number__c": "INV-000003",
        }
    ]

    # February's usage, billed on March 1: a record of its own.
    calls(factory, [customer_id], "2026-02-10T09:00", 3, "feb")
    run_billing(factory, usage_settings, MAR)
    march = writeback.write_back(factory, client, MAR)
    assert march.sent["Billing_Usage__c"] == 1
    shown = usage_records(sf)
    assert [row["Usage_Key__c"] for row in shown] == [
        key,
        f"SUB-{subscription_id}:{item_key}:2026-02-01",
    ]
    assert shown[1] == {
        **january,
        "Name": "Api: usage 2026-02-01..2026-02-28",
        "Usage_Key__c": f"SUB-{subscription_id}:{item_key}:2026-02-01",
        "Quantity__c": 3.0,
        "Billable_Quantity__c": 1.0,
        "Amount__c": 0.25,
        "Period_Start__c": "2026-02-01",
        "Period_End__c": "2026-02-28",
        "Invoice_Number__c": "INV-000004",
    }


def test_usage_records_go_200_to_a_call(
    factory: sessionmaker[Session],
    usage_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deals = open_metered_deals(factory, salesforce_sandbox, 450)
    calls(factory, [customer for *_, customer in deals], "2026-01-10T09:00", 3, "jan")
    run_billing(factory, usage_settings, JAN)
    run_billing(factory, usage_settings, FEB)
    client = client_for(salesforce_sandbox)
    sizes: dict[str, list[int]] = {}
    upsert = client.upsert_records

    def counted(obj: str, key_field: str, records: list[dict[str, Any]]) -> Any:
        sizes.setdefault(obj, []).append(len(records))
        return upsert(obj, key_field, records)

    monkeypatch.setattr(client, "upsert_records", counted)

    result = writeback.write_back(factory, client, FEB)

    assert result.failed == {}
    assert result.sent["Billing_Usage__c"] == 450
    assert sizes["Billing_Usage__c"] == [200, 200, 50]
    assert sizes["Billing_Subscription__c"] == [200, 200, 50]  # sent before their usage
    assert (
        sf.query("SELECT COUNT() FROM Billing_Usage__c WHERE Amount__c = 0.25")["totalSize"] == 450
    )
    sizes.clear()
    again = writeback.write_back(factory, client, FEB)
    assert (again.sent, again.api_calls, sizes) == ({}, 0, {})


def test_a_usage_record_goes_after_the_subscription_record_it_names(
    factory: sessionmaker[Session],
    usage_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Usage records fill a call while their subscription's record waits for more to fill its
    own: it is sent first, so that Salesforce finds the subscription the usage names."""
    [(_, _, subscription_id, customer_id)] = open_metered_deals(factory, salesforce_sandbox, 1)
    for month in ("01", "02", "03"):
        calls(factory, [customer_id], f"2026-{month}-10T09:00", 3, month)
    for day in (JAN, FEB, MAR, date(2026, 4, 1)):
        run_billing(factory, usage_settings, day)
    monkeypatch.setattr(writeback, "CHUNK", 1)  # one record built at a time
    monkeypatch.setattr(writeback, "MAX_COLLECTION", 2)  # two to a call
    client = client_for(salesforce_sandbox)
    calls_made: list[str] = []
    upsert = client.upsert_records

    def counted(obj: str, key_field: str, records: list[dict[str, Any]]) -> Any:
        calls_made.append(obj)
        return upsert(obj, key_field, records)

    monkeypatch.setattr(client, "upsert_records", counted)

    result = writeback.write_back(factory, client, date(2026, 4, 1))

    assert result.failed == {}
    assert result.sent["Billing_Usage__c"] == 3
    first_usage = calls_made.index("Billing_Usage__c")
    assert calls_made[first_usage - 1] == "Billing_Subscription__c"
    assert calls_made.count("Billing_Subscription__c") == 1
    rows = sf.query("SELECT Subscription__r.Subscription_Id__c FROM Billing_Usage__c")["records"]
    assert [row["Subscription__r"]["Subscription_Id__c"] for row in rows] == [
        f"SUB-{subscription_id}"
    ] * 3


def test_usage_whose_invoice_was_voided_is_billed_again_on_the_corrected_invoice(
    factory: sessionmaker[Session],
    usage_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
) -> None:
    [(_, _, _, customer_id)] = open_metered_deals(factory, salesforce_sandbox, 1)
    calls(factory, [customer_id], "2026-01-10T09:00", 5, "jan")
    run_billing(factory, usage_settings, JAN)
    run_billing(factory, usage_settings, FEB)
    client = client_for(salesforce_sandbox)
    writeback.write_back(factory, client, FEB)
    with transaction(factory) as session:
        contracts.void_invoice(session, "INV-000002", "issued in error")

    # The void shows at once: January's usage billed on a void invoice, nothing owed for it.
    writeback.write_back(factory, client, FEB)
    [shown] = usage_records(sf)
    assert (shown["Amount__c"], shown["Status__c"], shown["Invoice_Number__c"]) == (
        0.0,
        "Void",
        "INV-000002",
    )

    # The run bills February's fee again and January's usage with it (INV-000003).
    run_billing(factory, usage_settings, date(2026, 2, 2))
    result = writeback.write_back(factory, client, date(2026, 2, 2))

    assert documents(factory)[-1] == (
        "INV-000003",
        "invoice",
        date(2026, 2, 2),
        D("100.75"),
        D("100.75"),
    )
    assert result.failed == {}
    assert result.sent["Billing_Usage__c"] == 1  # billed again
    [shown] = usage_records(sf)
    assert (
        shown["Quantity__c"],
        shown["Billable_Quantity__c"],
        shown["Amount__c"],
        shown["Status__c"],
        shown["Invoice_Number__c"],
        shown["Adjustment_Number__c"],
    ) == (5.0, 3.0, 0.75, "Billed", "INV-000003", None)


# -- usage accruing in the current period ------------------------------------------------------


def accruing(usage_settings: Settings) -> AccruingOptions:
    options = AccruingOptions.of(usage_settings)
    assert options is not None
    return options


def test_usage_accrues_in_salesforce_and_the_same_record_turns_billed(
    factory: sessionmaker[Session],
    usage_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
) -> None:
    [(account, deal, subscription_id, customer_id)] = open_metered_deals(
        factory, salesforce_sandbox, 1
    )
    _, item_key = item_of(factory, subscription_id)
    client = client_for(salesforce_sandbox)
    usage = accruing(usage_settings)
    run_billing(factory, usage_settings, JAN)  # January's fee, in advance
    writeback.write_back(factory, client, JAN, usage=usage)
    assert usage_records(sf) == []  # nothing used yet: no record

    # Five calls on January 10: 2 free, 3 × 0.25 so far.
    calls(factory, [customer_id], "2026-01-10T09:00", 5, "jan")
    mid = writeback.write_back(factory, client, date(2026, 1, 15), usage=usage)

    assert mid.failed == {}
    assert (mid.sent, mid.api_calls) == ({"Billing_Usage__c": 1}, 1)
    [subscription] = sf.query(
        f"SELECT Id FROM Billing_Subscription__c WHERE Subscription_Id__c = 'SUB-{subscription_id}'"
    )["records"]
    so_far = {
        "Name": "Api: usage 2026-01-01..2026-01-31",
        "Usage_Key__c": f"SUB-{subscription_id}:{item_key}:2026-01-01",
        "Opportunity__c": deal,
        "Account__c": account,
        "Subscription__c": subscription["Id"],
        "Metric__c": "api_calls",
        "Quantity__c": 5.0,
        "Billable_Quantity__c": 3.0,
        "Amount__c": 0.75,
        "Currency__c": "USD",
        "CurrencyIsoCode": "USD",
        "Period_Start__c": "2026-01-01",
        "Period_End__c": "2026-01-31",
        "Status__c": "Accruing",
        "Invoice_Number__c": None,
        "Adjustment_Number__c": None,
    }
    assert usage_records(sf) == [so_far]

    # Four more on January 20: the record is updated, in one call.
    calls(factory, [customer_id], "2026-01-20T10:00", 4, "more")
    more = writeback.write_back(factory, client, date(2026, 1, 21), usage=usage)
    assert (more.failed, more.sent, more.api_calls) == ({}, {"Billing_Usage__c": 1}, 1)
    grown = {**so_far, "Quantity__c": 9.0, "Billable_Quantity__c": 7.0, "Amount__c": 1.75}
    assert usage_records(sf) == [grown]

    # Nothing new: measured again, found as Salesforce holds it, no call.
    idle = writeback.write_back(factory, client, date(2026, 1, 21), usage=usage)
    assert (idle.sent, idle.unchanged, idle.api_calls) == ({}, 1, 0)

    # The run of February 1 bills January: the same record, Billed, with its invoice.
    run_billing(factory, usage_settings, FEB)
    billed = writeback.write_back(factory, client, FEB, usage=usage)
    assert billed.failed == {}
    assert billed.sent["Billing_Usage__c"] == 1
    billed_record = {**grown, "Status__c": "Billed", "Invoice_Number__c": "INV-000002"}
    assert usage_records(sf) == [billed_record]

    # A late write-back, as of a day of January, does not make it Accruing again.
    late_run = writeback.write_back(factory, client, date(2026, 1, 21), usage=usage)
    assert late_run.sent.get("Billing_Usage__c") is None
    assert usage_records(sf) == [billed_record]

    # A call of January arriving after its billing: January stays Billed until the run that
    # adjusts it, and no accruing record comes back for it.
    calls(factory, [customer_id], "2026-01-25T10:00", 1, "late")
    after = writeback.write_back(factory, client, date(2026, 2, 2), usage=usage)
    assert after.sent.get("Billing_Usage__c") is None
    assert usage_records(sf) == [billed_record]
    run_billing(factory, usage_settings, date(2026, 2, 5))
    adjusted = writeback.write_back(factory, client, date(2026, 2, 5), usage=usage)
    assert adjusted.sent["Billing_Usage__c"] == 1
    assert usage_records(sf) == [
        {
            **billed_record,
            "Quantity__c": 10.0,
            "Billable_Quantity__c": 8.0,
            "Amount__c": 2.0,
            "Status__c": "Adjusted",
            "Adjustment_Number__c": "INV-000003",
        }
    ]

    # February's usage accrues on a record of its own, beside January's.
    calls(factory, [customer_id], "2026-02-10T09:00", 3, "feb")
    february = writeback.write_back(factory, client, date(2026, 2, 11), usage=usage)
    assert february.sent == {"Billing_Usage__c": 1}
    shown = usage_records(sf)
    assert [row["Status__c"] for row in shown] == ["Adjusted", "Accruing"]
    assert shown[1] == {
        **so_far,
        "Name": "Api: usage 2026-02-01..2026-02-28",
        "Usage_Key__c": f"SUB-{subscription_id}:{item_key}:2026-02-01",
        "Quantity__c": 3.0,
        "Billable_Quantity__c": 1.0,
        "Amount__c": 0.25,
        "Period_Start__c": "2026-02-01",
        "Period_End__c": "2026-02-28",
    }


def test_usage_measured_to_the_hour_of_now(
    factory: sessionmaker[Session],
    usage_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
) -> None:
    """Within the as-of day, the usage is measured to the next whole hour of ``now``, as
    ``connector usage show`` measures it."""
    [(_, _, _, customer_id)] = open_metered_deals(factory, salesforce_sandbox, 1)
    calls(factory, [customer_id], "2026-01-15T09:00", 4, "morning")
    calls(factory, [customer_id], "2026-01-15T15:00", 6, "afternoon")
    client = client_for(salesforce_sandbox)
    options = accruing(usage_settings)
    noon = replace(options, now=datetime(2026, 1, 15, 12, 30, tzinfo=UTC))
    writeback.write_back(factory, client, date(2026, 1, 15), usage=noon)
    [shown] = usage_records(sf)
    assert (shown["Quantity__c"], shown["Amount__c"]) == (4.0, 0.5)

    writeback.write_back(factory, client, date(2026, 1, 15), usage=options)  # the whole day
    [shown] = usage_records(sf)
    assert (shown["Quantity__c"], shown["Amount__c"]) == (10.0, 2.0)


def test_usage_of_a_metric_the_mapping_lacks_shows_nothing_and_stops_nothing(
    factory: sessionmaker[Session],
    usage_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
) -> None:
    [(_, _, _, customer_id)] = open_metered_deals(factory, salesforce_sandbox, 1)
    calls(factory, [customer_id], "2026-01-10T09:00", 5, "jan")
    client = client_for(salesforce_sandbox)
    unknown = replace(accruing(usage_settings), metrics={})  # api_calls is not in it

    result = writeback.write_back(factory, client, date(2026, 1, 15), usage=unknown)

    assert result.failed == {}
    assert result.sent["Billing_Subscription__c"] == 1
    assert "Billing_Usage__c" not in result.sent
    assert usage_records(sf) == []
    fixed = writeback.write_back(factory, client, date(2026, 1, 15), usage=accruing(usage_settings))
    assert fixed.sent == {"Billing_Usage__c": 1}


def test_an_accruing_record_whose_period_billed_nothing_is_removed(
    factory: sessionmaker[Session],
    usage_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
) -> None:
    """Two calls, both free: shown accruing, then billed as nothing; the record goes, as a
    period that bills nothing shows none."""
    [(_, _, _, customer_id)] = open_metered_deals(factory, salesforce_sandbox, 1)
    client = client_for(salesforce_sandbox)
    usage = accruing(usage_settings)
    calls(factory, [customer_id], "2026-01-10T09:00", 2, "free")
    run_billing(factory, usage_settings, JAN)
    writeback.write_back(factory, client, date(2026, 1, 15), usage=usage)
    [shown] = usage_records(sf)
    assert (shown["Quantity__c"], shown["Billable_Quantity__c"], shown["Amount__c"]) == (
        2.0,
        0.0,
        0.0,
    )

    # On February 1, before the run bills January, the record waits for it: nothing sent.
    waiting = writeback.write_back(factory, client, FEB, usage=usage)
    assert (waiting.sent.get("Billing_Usage__c"), waiting.removed) == (None, {})
    assert len(usage_records(sf)) == 1

    run_billing(factory, usage_settings, FEB)  # February's fee; January's usage bills nothing
    nothing = writeback.write_back(factory, client, FEB, usage=usage)
    assert nothing.removed == {}  # looked at again the next day
    gone = writeback.write_back(factory, client, date(2026, 2, 2), usage=usage)

    assert gone.failed == {}
    assert gone.removed == {"Billing_Usage__c": 1}
    assert usage_records(sf) == []
    again = writeback.write_back(factory, client, date(2026, 2, 2), usage=usage)
    assert (again.sent, again.removed, again.api_calls) == ({}, {}, 0)
    with factory() as session:
        due = queue.due(session, date(2026, 12, 31))
        assert [key for key in due if key[0] == queue.USAGE] == []  # nothing left to look at


def test_accruing_records_go_200_to_a_call_with_reads_that_do_not_grow(
    factory: sessionmaker[Session],
    engine: Engine,
    usage_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
) -> None:
    deals = open_metered_deals(factory, salesforce_sandbox, 450)
    customers = [customer for *_, customer in deals]
    calls(factory, customers, "2026-01-10T09:00", 3, "jan")
    run_billing(factory, usage_settings, JAN)
    client = client_for(salesforce_sandbox)
    usage = accruing(usage_settings)
    writeback.write_back(factory, client, JAN, usage=usage)  # subscriptions, invoices, accounts
    sizes: dict[str, list[int]] = {}
    upsert = client.upsert_records

    def counted(obj: str, key_field: str, records: list[dict[str, Any]]) -> Any:
        sizes.setdefault(obj, []).append(len(records))
        return upsert(obj, key_field, records)

    client.upsert_records = counted  # type: ignore[method-assign]

    first = writeback.write_back(factory, client, date(2026, 1, 15), usage=usage)

    assert first.failed == {}
    assert first.sent == {"Billing_Usage__c": 450}
    assert sizes == {"Billing_Usage__c": [200, 200, 50]}
    assert (
        sf.query(
            "SELECT COUNT() FROM Billing_Usage__c WHERE Status__c = 'Accruing' AND Amount__c = 0.25"
        )["totalSize"]
        == 450
    )

    # A call more for 150 of them: only their records go, in one call.
    calls(factory, customers[:150], "2026-01-16T09:00", 1, "more")
    sizes.clear()
    with counting(engine) as changed:
        more = writeback.write_back(factory, client, date(2026, 1, 16), usage=usage)
    assert (more.sent, more.unchanged, sizes) == (
        {"Billing_Usage__c": 150},
        300,
        {"Billing_Usage__c": [150]},
    )

    sizes.clear()
    with counting(engine) as idle:
        again = writeback.write_back(factory, client, date(2026, 1, 16), usage=usage)
    assert (again.sent, again.api_calls, sizes) == ({}, 0, {})
    # Set-based: the 450 subscriptions are read with one query per table, the usage with one.
    assert len(idle.touching("usage_daily")) == 1
    assert idle.touching("usage_hourly") == []
    assert len(idle.touching("FROM charges")) == 1
    assert idle.by_verb()["INSERT"] == idle.by_verb()["UPDATE"] == 0
    assert len(changed) - len(idle) <= 6  # the call's answers recorded, its keys queued
