"""The collections schedule over a simulated quarter, end to end against the sandbox org.

Four customers, each with an annual deal starting on January 1st (one invoice, due January
31st). The real cycle runs every day from January 1st to April 2nd (92 cycles), the org's clock
moving with it. Delta pays before the due date; Bravo pays after the first reminder; Cargo
disputes its invoice after the friendly note, the dispute is resolved on March 10th and Cargo
pays on March 20th; Acme never pays. The test checks the exact steps on the exact days (none
after payment, none while disputed), the Tasks the escalations create in Salesforce (on the
invoice record, for the account's owner), the reminders logged, the e-mails a real SMTP server
receives on each day (each invoice when it is issued, each reminder on its day, with its PDF),
and every change of the accounts' Billing_Status__c, day by day, from the org's field history.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from simple_salesforce import Salesforce
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.settings import EmailSettings, SalesforceSettings, Settings
from connector.sync import disputes, settlement
from connector.sync.cycle import run_cycle
from sandbox.salesforce.server import Sandbox
from tests.email.smtp_server import Received, smtp_server

START, END = date(2026, 1, 1), date(2026, 4, 2)  # a quarter: 92 days, a cycle each
D = date


def _settings(ledger_settings: Settings, sandbox: Sandbox, smtp_port: int) -> Settings:
    salesforce = SalesforceSettings(
        instance_url=sandbox.instance_url,
        session_id=SecretStr(sandbox.session_id),
        ca_file=str(sandbox.ca_file),
        backoff_initial_seconds=0.001,
    )
    email = EmailSettings.model_validate(
        {
            "enabled": True,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "starttls": False,
            "from": "Billing <billing@seller.example>",
        }
    )
    return ledger_settings.model_copy(update={"salesforce": salesforce, "email": email})


def _fill(sf: Salesforce) -> dict[str, dict[str, str]]:
    """Owners, four accounts and an annual deal of each; their ids by account name."""
    book = sf.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")["records"][0]["Id"]
    product = sf.Product2.create(
        {
            "Name": "Platform",
            "ProductCode": "PLAT",
            "Billing_Type__c": "Recurring",
            "IsActive": True,
        }
    )["id"]
    entry = sf.PricebookEntry.create(
        {
            "Pricebook2Id": book,
            "Product2Id": product,
            "UnitPrice": 1200,
            "IsActive": True,
            "CurrencyIsoCode": "USD",
        }
    )["id"]
    owners = {
        name: sf.User.create({"Username": f"{name.lower()}@example.com", "LastName": name})["id"]
        for name in ("Ann", "Bob")
    }
    found: dict[str, dict[str, str]] = {}
    for name, owner in (("Acme", "Ann"), ("Bravo", "Bob"), ("Cargo", "Ann"), ("Delta", "Bob")):
        account = sf.Account.create(
            {
                "Name": name,
                "BillingCountry": "United States",
                "CurrencyIsoCode": "USD",
                "OwnerId": owners[owner],
                "Billing_Email__c": f"ap@{name.lower()}.example",
            }
        )["id"]
        deal = sf.Opportunity.create(
            {
                "Name": f"{name} platform",
                "AccountId": account,
                "StageName": "Closed Won",
                "CloseDate": "2025-12-20",
                "Pricebook2Id": book,
                "Service_Start_Date__c": START.isoformat(),
                "Term_Months__c": 12,
                "Billing_Frequency__c": "Annual",
                "CurrencyIsoCode": "USD",
            }
        )["id"]
        sf.OpportunityLineItem.create(
            {"OpportunityId": deal, "PricebookEntryId": entry, "Quantity": 1}
        )
        found[name] = {"account": account, "owner": owners[owner]}
    return found


def _described(received: Received) -> tuple[str, str, str]:
    """(to, document number, kind of message) of a message received, its PDF checked."""
    message = received.message
    (attachment,) = list(message.iter_attachments())
    number = attachment.get_filename().removesuffix(".pdf")
    with_kind = message["Message-ID"].strip("<>").split("@")[0]  # number.vN.kind.id
    kind = with_kind.split(".")[2].replace("reminder-", "reminder:", 1)
    assert attachment.get_content().startswith(b"%PDF-")
    return message["To"], number, kind.replace("-", "_") if ":" in kind else kind


def _invoice_of(factory: sessionmaker[Session], account: str) -> tables.Document:
    with factory() as session:
        customer = session.scalar(
            select(tables.ExternalId.entity_id).where(
                tables.ExternalId.entity == "customers", tables.ExternalId.external_id == account
            )
        )
        return session.scalars(
            select(tables.Document).where(tables.Document.customer_id == customer)
        ).one()


def _pay(factory: sessionmaker[Session], number: str, day: date) -> None:
    with factory.begin() as session:
        invoice = session.scalars(
            select(tables.Document).where(tables.Document.number == number)
        ).one()
        settlement.record_payment(
            session, amount=invoice.total, received_on=day, invoice_number=number
        )


def _query(sf: Salesforce, soql: str) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in row.items() if k != "attributes"} for row in sf.query_all(soql)["records"]
    ]


def test_the_dunning_schedule_over_a_quarter(
    factory: sessionmaker[Session],
    ledger_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
) -> None:
    crm = _fill(sf)
    numbers: dict[str, str] = {}
    mails: list[tuple[date, str, str, str]] = []  # (day, to, document, kind of message)
    day = START
    with smtp_server() as (recorder, port):
        settings = _settings(ledger_settings, salesforce_sandbox, port)
        while day <= END:
            moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
            salesforce_sandbox.org.clock = lambda moment=moment: moment
            if day == START + timedelta(days=1):
                numbers = {
                    name: _invoice_of(factory, ids["account"]).number for name, ids in crm.items()
                }
            _happen(factory, day, numbers)
            result = run_cycle(factory, settings, day)
            assert result.errors == {}, (day, result.errors)
            assert result.stages["writeback"]["failed"] == {}, day
            for received in recorder.received[len(mails) :]:
                mails.append((day, *_described(received)))
            day += timedelta(days=1)

    acme, bravo, cargo, delta = (numbers[n] for n in ("Acme", "Bravo", "Cargo", "Delta"))
    with factory() as session:
        recorded = session.execute(
            select(
                tables.Document.number,
                tables.DunningStep.step,
                tables.DunningStep.reached_on,
                tables.DunningStep.state,
            )
            .join(tables.Document, tables.Document.id == tables.DunningStep.document_id)
            .order_by(tables.Document.number, tables.DunningStep.id)
        ).all()
    # Each step once, on its day; none after payment, none while disputed, none for Delta.
    assert [tuple(row) for row in recorded] == [
        (acme, "friendly", D(2026, 1, 28), "taken"),
        (acme, "reminder_1", D(2026, 2, 3), "taken"),
        (acme, "reminder_2", D(2026, 2, 10), "taken"),
        (acme, "past_due", D(2026, 2, 10), "taken"),
        (acme, "final_notice", D(2026, 3, 2), "taken"),
        (acme, "collections", D(2026, 3, 2), "taken"),
        (bravo, "friendly", D(2026, 1, 28), "taken"),
        (bravo, "reminder_1", D(2026, 2, 3), "taken"),
        (cargo, "friendly", D(2026, 1, 28), "taken"),
        # Disputed from February 2nd to March 10th: the steps that came meanwhile are passed
        # over, the latest of each action taken the day the dispute is resolved.
        (cargo, "reminder_1", D(2026, 3, 10), "skipped"),
        (cargo, "reminder_2", D(2026, 3, 10), "skipped"),
        (cargo, "past_due", D(2026, 3, 10), "skipped"),
        (cargo, "final_notice", D(2026, 3, 10), "taken"),
        (cargo, "collections", D(2026, 3, 10), "taken"),
    ]
    assert sorted(numbers.values()) == [acme, bravo, cargo, delta]

    # What the customers received, on which day: each invoice the day it is issued, then each
    # reminder taken, on its day, in its template; nothing after payment or while disputed.
    document = "document"
    assert mails == [
        (START, "ap@acme.example", acme, document),
        (START, "ap@bravo.example", bravo, document),
        (START, "ap@cargo.example", cargo, document),
        (START, "ap@delta.example", delta, document),
        (D(2026, 1, 28), "ap@acme.example", acme, "reminder:friendly"),
        (D(2026, 1, 28), "ap@bravo.example", bravo, "reminder:friendly"),
        (D(2026, 1, 28), "ap@cargo.example", cargo, "reminder:friendly"),
        (D(2026, 2, 3), "ap@acme.example", acme, "reminder:reminder_1"),
        (D(2026, 2, 3), "ap@bravo.example", bravo, "reminder:reminder_1"),
        (D(2026, 2, 10), "ap@acme.example", acme, "reminder:reminder_2"),
        (D(2026, 3, 2), "ap@acme.example", acme, "reminder:final_notice"),
        (D(2026, 3, 10), "ap@cargo.example", cargo, "reminder:final_notice"),
    ]
    subjects = [received.message["Subject"] for received in recorder.received]
    assert subjects[4:6] == [
        f"Invoice {acme} is due on 2026-01-31",
        f"Invoice {bravo} is due on 2026-01-31",
    ]
    assert subjects[-1] == f"Final notice: invoice {cargo}"

    # The Tasks in Salesforce: on the invoice record, for the account's owner.
    invoice_ids = {
        row["Name"]: row["Id"] for row in _query(sf, "SELECT Id, Name FROM Billing_Invoice__c")
    }
    tasks = _query(
        sf,
        "SELECT Connector_Key__c, Subject, ActivityDate, WhatId, OwnerId, AccountId, Status, "
        "Priority, Type FROM Task ORDER BY Connector_Key__c",
    )
    ann, bob = crm["Acme"]["owner"], crm["Bravo"]["owner"]

    def task(row: tuple[str, str, str, str, str, str, bool]) -> dict[str, Any]:
        number, step, subject, on, owner, account, escalation = row
        return {
            "Connector_Key__c": f"{number}:{step}",
            "Subject": subject,
            "ActivityDate": on,
            "WhatId": invoice_ids[number],
            "OwnerId": owner,
            "AccountId": crm[account]["account"],
            "Status": "Not Started" if escalation else "Completed",
            "Priority": "High" if escalation else "Normal",
            "Type": "Other" if escalation else "Email",
        }

    expected = [
        (acme, "collections", f"Collections: {acme} 30 days overdue", "2026-03-05", ann, "Acme", True),
        (acme, "final_notice", f"Reminder: {acme} 30 days overdue", "2026-03-02", ann, "Acme", False),
        (acme, "friendly", f"Reminder: {acme} due in 3 days", "2026-01-28", ann, "Acme", False),
        (acme, "past_due", f"Collections: {acme} 10 days overdue", "2026-02-13", ann, "Acme", True),
        (acme, "reminder_1", f"Reminder: {acme} 3 days overdue", "2026-02-03", ann, "Acme", False),
        (acme, "reminder_2", f"Reminder: {acme} 10 days overdue", "2026-02-10", ann, "Acme", False),
        (bravo, "friendly", f"Reminder: {bravo} due in 3 days", "2026-01-28", bob, "Bravo", False),
        (bravo, "reminder_1", f"Reminder: {bravo} 3 days overdue", "2026-02-03", bob, "Bravo", False),
        (cargo, "collections", f"Collections: {cargo} 38 days overdue", "2026-03-13", ann, "Cargo", True),
        (cargo, "final_notice", f"Reminder: {cargo} 38 days overdue", "2026-03-10", ann, "Cargo", False),
        (cargo, "friendly", f"Reminder: {cargo} due in 3 days", "2026-01-28", ann, "Cargo", False),
    ]  # fmt: skip
    assert tasks == sorted(map(task, expected), key=lambda row: row["Connector_Key__c"])

    # Every change of the accounts' billing status, on the day it was written.
    history = _query(
        sf,
        "SELECT AccountId, CreatedDate, OldValue, NewValue FROM AccountHistory "
        "WHERE Field = 'Billing_Status__c' ORDER BY CreatedDate",
    )
    names = {ids["account"]: name for name, ids in crm.items()}
    changes = sorted(
        (names[row["AccountId"]], row["CreatedDate"][:10], row["OldValue"], row["NewValue"])
        for row in history
    )
    assert changes == [
        ("Acme", "2026-01-01", None, "Active"),
        ("Acme", "2026-02-01", "Active", "Past Due"),
        ("Acme", "2026-03-02", "Past Due", "Collections"),
        ("Bravo", "2026-01-01", None, "Active"),
        ("Bravo", "2026-02-01", "Active", "Past Due"),
        ("Bravo", "2026-02-05", "Past Due", "Active"),
        ("Cargo", "2026-01-01", None, "Active"),
        ("Cargo", "2026-02-01", "Active", "Past Due"),
        ("Cargo", "2026-03-10", "Past Due", "Collections"),
        ("Cargo", "2026-03-20", "Collections", "Active"),
        ("Delta", "2026-01-01", None, "Active"),
    ]

    # The invoices show their latest step, last reminder and (no longer) dispute.
    shown = {
        row["Name"]: row
        for row in _query(
            sf,
            "SELECT Name, Dunning_Step__c, Last_Reminder_Date__c, Disputed__c, "
            "Dispute_Reason__c FROM Billing_Invoice__c",
        )
    }
    assert {n: (r["Dunning_Step__c"], r["Last_Reminder_Date__c"]) for n, r in shown.items()} == {
        acme: ("collections", "2026-03-02"),
        bravo: ("reminder_1", "2026-02-03"),
        cargo: ("collections", "2026-03-10"),
        delta: (None, None),
    }
    assert {(r["Disputed__c"], r["Dispute_Reason__c"]) for r in shown.values()} == {(False, None)}


def _happen(factory: sessionmaker[Session], day: date, numbers: dict[str, str]) -> None:
    """What the customers do on ``day``, before that day's cycle."""
    if day in (D(2026, 1, 20), D(2026, 2, 5), D(2026, 3, 20)):
        payer = {D(2026, 1, 20): "Delta", D(2026, 2, 5): "Bravo", D(2026, 3, 20): "Cargo"}[day]
        _pay(factory, numbers[payer], day)
    elif day == D(2026, 2, 2):
        _dispute(factory, numbers["Cargo"])
    elif day == D(2026, 3, 10):
        _resolve(factory, numbers["Cargo"])


def _dispute(factory: sessionmaker[Session], number: str) -> None:
    with factory.begin() as session:
        disputes.open_dispute(session, number, "the second seat was never delivered")


def _resolve(factory: sessionmaker[Session], number: str) -> None:
    with factory.begin() as session:
        disputes.resolve_dispute(session, number)
