"""The write-back builds and sends only what changed: marks made with each change, records due
again on the day a date-driven field changes, one upsert per call's answers, nothing lost to a
crash. Salesforce is a fake that keeps what it accepted, so that every test can check the
invariant that matters: after a write-back, Salesforce holds every record exactly as a full
rebuild (:func:`connector.sync.writeback.records`) shows it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any, cast

import pytest
from alembic import command
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import Frequency
from connector.billing.subscriptions import SubscriptionTerms
from connector.crm.client import SalesforceClient
from connector.db import outbox, staging, tables
from connector.db import writeback_queue as queue
from connector.db.engine import make_engine, session_factory, transaction
from connector.db.migrate import alembic_config, upgrade
from connector.db.types import utc_now
from connector.settings import SalesforceSettings, Settings
from connector.sync import contracts, sending, settlement, writeback
from connector.sync import writeback_shape as shapes
from connector.sync.billing_run import run_billing
from connector.sync.cycle import STAGES, Runtime, run_cycle
from connector.sync.rendering import render_new
from sandbox.salesforce.server import Sandbox
from tests import builders
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.email.smtp_server import smtp_server
from tests.statements import counting
from tests.sync.test_sending import mail_settings

SYSTEM = "salesforce"
FIRST = date(2026, 1, 1)  # deals start, are billed and written back
DUE = FIRST + timedelta(days=30)  # the first invoices' due date (30 days' terms)


def deal_id(number: int) -> str:
    return f"006{number:015d}"


def account_id(number: int) -> str:
    return f"001{number:015d}"


class LostAnswerError(Exception):
    """The connection died after Salesforce took the call: its answer is lost."""


@dataclass
class FakeSalesforce:
    """Takes sObject Collections calls as the org does: each record accepted (kept in
    ``org``) unless ``refuse`` names its key with a status code; ``crash_on`` loses the
    answer of that call after the org took it."""

    org: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    refuse: dict[str, str] = field(default_factory=dict)
    crash_on: int | None = None
    on_call: Callable[[], None] = lambda: None
    calls: int = 0
    sent: list[tuple[str, str]] = field(default_factory=list)
    multi_currency: bool = True
    described: int = 0

    def _take(self, obj: str, key_field: str, records: list[dict[str, Any]]) -> list[Any]:
        self.on_call()
        self.calls += 1
        answers: list[dict[str, Any]] = []
        for record in records:
            key = str(record[key_field])
            self.sent.append((obj, key))
            code = self.refuse.get(key)
            if code:
                answers.append({"success": False, "errors": [{"statusCode": code}]})
                continue
            fields = {name: value for name, value in record.items() if name != key_field}
            self.org[(obj, key)] = fields
            answers.append({"success": True})
        if self.calls == self.crash_on:
            raise LostAnswerError
        return answers

    def upsert_records(self, obj: str, key_field: str, records: list[dict[str, Any]]) -> Any:
        return self._take(obj, key_field, records)

    def update_records(self, obj: str, records: list[dict[str, Any]]) -> Any:
        return self._take(obj, "Id", records)

    def field_names(self, obj: str) -> frozenset[str]:
        self.calls += 1
        self.described += 1
        return frozenset({"Id", "Name", *(["CurrencyIsoCode"] if self.multi_currency else [])})

    def sent_of(self, obj: str) -> list[str]:
        return [key for sent_obj, key in self.sent if sent_obj == obj]


def write(
    factory: sessionmaker[Session], client: FakeSalesforce, as_of: date
) -> writeback.WritebackResult:
    return writeback.write_back(factory, cast(SalesforceClient, client), as_of)


def in_step(factory: sessionmaker[Session], client: FakeSalesforce, as_of: date) -> None:
    """Salesforce holds every record as a full rebuild shows it."""
    with factory() as session:
        for obj, _, key, fields in writeback.records(session, as_of):
            assert client.org.get((obj, key)) == fields, (obj, key)


def marked(factory: sessionmaker[Session]) -> set[tuple[str, str]]:
    """What the queue holds as due at once (a change was marked)."""
    table = tables.WritebackQueue
    with factory() as session:
        rows = session.execute(select(table.entity, table.key).where(table.due_on == queue.CHANGED))
        return {(entity, key) for entity, key in rows}


def open_deals(factory: sessionmaker[Session], count: int) -> list[int]:
    """``count`` accounts with a won deal each (ten seats at 10.00 a month from ``FIRST``), as
    the pull makes them; returns the subscription ids."""
    with transaction(factory) as session:
        seats = builders.price(session)
        ids = []
        for number in range(count):
            customer = contracts.upsert_customer(
                session,
                name=f"Customer {number}",
                country="US",
                currency="USD",
                system=SYSTEM,
                external_id=account_id(number),
            )
            row = contracts.create_subscription(
                session,
                customer=customer,
                name=f"Deal {number}",
                terms=SubscriptionTerms(FIRST, Frequency.MONTHLY),
                items=[builders.spec(session, seats, 10)],
                system=SYSTEM,
                external_id=deal_id(number),
            )
            ids.append(row.id)
    return ids


def invoice_of(factory: sessionmaker[Session], subscription_id: int) -> tables.Document:
    with factory() as session:
        return session.scalars(
            select(tables.Document)
            .where(tables.Document.subscription_id == subscription_id)
            .order_by(tables.Document.id)
        ).first() or pytest.fail(f"subscription {subscription_id} has no invoice")


@pytest.fixture
def three(factory: sessionmaker[Session], settings: Settings) -> tuple[list[int], FakeSalesforce]:
    """Three deals billed on ``FIRST`` and written back that day."""
    ids = open_deals(factory, 3)
    run_billing(factory, settings, FIRST)
    client = FakeSalesforce()
    first = write(factory, client, FIRST)
    assert first.sent == {
        "Billing_Subscription__c": 3,
        "Billing_Invoice__c": 3,
        "Account": 3,
        "Opportunity": 3,
    }
    assert marked(factory) == set()
    return ids, client


# -- statements ---------------------------------------------------------------------------------
def test_the_first_write_back_records_each_call_in_one_upsert(
    factory: sessionmaker[Session], settings: Settings, engine: Engine
) -> None:
    open_deals(factory, 450)
    run_billing(factory, settings, FIRST)
    client = FakeSalesforce()
    with counting(engine) as seen:
        before_call: list[int] = []
        client.on_call = lambda: before_call.append(len(seen))
        result = write(factory, client, FIRST)
        ends = [*before_call, len(seen)]

    assert result.sent == {
        "Billing_Subscription__c": 450,
        "Billing_Invoice__c": 450,
        "Account": 450,
        "Opportunity": 450,
    }
    assert result.built == 450 * 4
    # One describe (multi-currency?), then four objects, three calls of up to 200 each.
    assert (client.described, client.calls) == (1, 13)
    # The describe and the shape noted (8), then reading and building every record of four
    # kinds: a handful of queries per kind (the invoices' collections steps, disputes and
    # e-mails one each), not one per record.
    assert ends[0] <= 42, "\n".join(s[:120].replace("\n", " ") for s in seen.sql[: ends[0]])
    # Each call's answers: at most five statements (one upsert, the queue rows done).
    per_call = [after - before for before, after in pairwise(ends)]
    assert len(per_call) == 12 and max(per_call) <= 5, per_call
    upserts = [sql for sql in seen.touching("writeback_state") if sql.lstrip().startswith("INSERT")]
    assert len(upserts) == 12
    in_step(factory, client, FIRST)


def test_a_long_queue_is_built_a_window_at_a_time_and_sent_in_full_calls(
    factory: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_deals(factory, 450)
    run_billing(factory, settings, FIRST)
    monkeypatch.setattr(writeback, "CHUNK", 120)  # queue rows built together
    built: list[int] = []  # queue rows of each build
    build = writeback.Builder.build

    def counted(builder: writeback.Builder, queued: dict[tuple[str, str], int]) -> Any:
        built.append(len(queued))
        return build(builder, queued)

    monkeypatch.setattr(writeback.Builder, "build", counted)
    client = FakeSalesforce()

    result = write(factory, client, FIRST)

    assert result.sent == {
        "Billing_Subscription__c": 450,
        "Billing_Invoice__c": 450,
        "Account": 450,
        "Opportunity": 450,
    }
    assert result.built == 450 * 4 and max(built) == 120
    # One describe, and each object's records still go 200 to a call.
    assert (client.described, client.calls) == (1, 13)
    assert marked(factory) == set()
    in_step(factory, client, FIRST)


def test_a_crash_between_windows_loses_nothing_and_sends_nothing_twice(
    factory: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_deals(factory, 450)
    run_billing(factory, settings, FIRST)
    monkeypatch.setattr(writeback, "CHUNK", 120)
    crashing = FakeSalesforce(crash_on=5)  # after the describe, the second call of invoices

    with pytest.raises(LostAnswerError):
        write(factory, crashing, FIRST)

    again = FakeSalesforce(org=crashing.org)
    result = write(factory, again, FIRST)

    # Three calls were recorded (two of subscriptions, one of invoices); the fourth, whose
    # answer was lost, goes again with everything not sent yet.
    assert result.sent == {
        "Billing_Subscription__c": 50,
        "Billing_Invoice__c": 250,
        "Account": 450,
        "Opportunity": 450,
    }
    assert again.described == 0  # what the org has was noted before the crash
    assert marked(factory) == set()
    in_step(factory, again, FIRST)


def test_a_write_back_with_nothing_changed_builds_nothing(
    factory: sessionmaker[Session], engine: Engine, three: tuple[list[int], FakeSalesforce]
) -> None:
    _, client = three
    calls = client.calls
    for as_of in (FIRST, FIRST + timedelta(days=1), DUE):  # no date that changes anything
        with counting(engine) as seen:
            result = write(factory, client, as_of)
        assert (result.built, result.sent, client.calls) == (0, {}, calls)
        # Sqlite's BEGIN, the as-of date, the queue; and the new date once when it moves.
        assert len(seen) <= 4, seen.sql
        assert not seen.touching("documents") and not seen.touching("subscriptions")
    in_step(factory, client, DUE)


# -- marks: each change queues exactly the records it affects -----------------------------------
def test_a_payment_marks_its_invoice_alone(
    factory: sessionmaker[Session], three: tuple[list[int], FakeSalesforce]
) -> None:
    ids, client = three
    invoice = invoice_of(factory, ids[1])
    with transaction(factory) as session:
        settlement.record_payment(
            session,
            amount=invoice.total,
            received_on=FIRST + timedelta(days=5),
            invoice_number=invoice.number,
        )
    assert marked(factory) == {(queue.DOCUMENT, str(invoice.id))}

    result = write(factory, client, FIRST + timedelta(days=5))

    assert result.built == 2  # the invoice, and its account (nothing due any more)
    assert result.sent == {"Billing_Invoice__c": 1, "Account": 1}
    paid = client.org[("Billing_Invoice__c", invoice.number)]
    assert (paid["Status__c"], paid["Amount_Paid__c"], paid["Paid_Date__c"]) == (
        "Paid",
        100.0,
        (FIRST + timedelta(days=5)).isoformat(),
    )
    assert client.org[("Account", account_id(1))]["Balance_Due__c"] == 0.0
    assert marked(factory) == set()
    in_step(factory, client, FIRST + timedelta(days=5))


def test_the_e_mail_of_each_document_shows_on_its_invoice_record(
    factory: sessionmaker[Session],
    database_url: str,
    three: tuple[list[int], FakeSalesforce],
) -> None:
    ids, client = three
    invoices = [invoice_of(factory, i) for i in ids]
    shown = [client.org[("Billing_Invoice__c", doc.number)] for doc in invoices]
    assert {(r["Email_Status__c"], r["Email_Error__c"]) for r in shown} == {("Not Sent", None)}
    with transaction(factory) as session:
        session.execute(
            update(tables.Customer)
            .where(tables.Customer.id == invoices[0].customer_id)
            .values(billing_email="a@customer.example")
        )
    with smtp_server() as (recorder, port):
        recorder.answers["a@customer.example"] = "550 5.1.1 no such user"
        settings = mail_settings(database_url, port)
        render_new(Runtime(factory, settings))  # the send stage renders before it sends
        sending.send_messages(factory, settings)
    # The invoice records (their e-mail), and the new PDFs to attach as files.
    assert marked(factory) == {
        (entity, str(doc.id)) for doc in invoices for entity in (queue.DOCUMENT, queue.FILE)
    }

    result = write(factory, client, FIRST)

    assert result.sent == {"Billing_Invoice__c": 3}
    shown = [client.org[("Billing_Invoice__c", doc.number)] for doc in invoices]
    assert [(r["Email_Status__c"], r["Email_Error__c"]) for r in shown] == [
        ("Refused", "550 5.1.1 no such user"),
        ("No Address", sending.NO_ADDRESS),
        ("No Address", sending.NO_ADDRESS),
    ]
    in_step(factory, client, FIRST)


def test_a_cancellation_marks_its_subscription_alone(
    factory: sessionmaker[Session], three: tuple[list[int], FakeSalesforce]
) -> None:
    ids, client = three
    with transaction(factory) as session:
        contracts.cancel_subscription(session, ids[2], cancel_date=FIRST + timedelta(days=10))
    assert marked(factory) == {(queue.SUBSCRIPTION, str(ids[2]))}

    result = write(factory, client, FIRST + timedelta(days=15))

    assert result.sent == {"Billing_Subscription__c": 1, "Account": 1}
    assert client.org[("Billing_Subscription__c", f"SUB-{ids[2]}")]["Status__c"] == "Cancelled"
    assert client.org[("Account", account_id(2))] == {
        "MRR__c": 0.0,
        "Billing_Status__c": "Cancelled",
        "Balance_Due__c": 100.0,  # its first month, due on DUE
        "Overdue_Amount__c": 0.0,
        "Next_Invoice_Date__c": None,
    }
    in_step(factory, client, FIRST + timedelta(days=15))


def test_a_cancellation_to_come_is_sent_on_its_day(
    factory: sessionmaker[Session], three: tuple[list[int], FakeSalesforce]
) -> None:
    ids, client = three
    cancel = FIRST + timedelta(days=20)
    with transaction(factory) as session:
        contracts.cancel_subscription(session, ids[0], cancel_date=cancel)
    write(factory, client, FIRST + timedelta(days=1))  # still active: nothing to send
    assert write(factory, client, cancel - timedelta(days=1)).built == 0

    result = write(factory, client, cancel)

    assert result.sent == {"Billing_Subscription__c": 1, "Account": 1}
    in_step(factory, client, cancel)


def settle_deal(session: Session, deal: str, state: str, reason: str | None = None) -> None:
    """Stage the deal (as the pull does), settle it in ``state`` and store it."""
    [row], _ = staging.stage(
        session, SYSTEM, "Opportunity", [{"Id": deal}], modstamps=[None], deleted=[False]
    )
    staging.settle(row, state, reason, session=session)
    staging.save_staged(session, SYSTEM, [row])


def test_a_deal_error_marks_its_opportunity_alone(
    factory: sessionmaker[Session], three: tuple[list[int], FakeSalesforce]
) -> None:
    _, client = three
    deal = deal_id(1)
    with transaction(factory) as session:
        settle_deal(session, deal, staging.QUARANTINED, "won deal has no line items")
    assert marked(factory) == {(queue.DEAL, deal)}

    assert write(factory, client, FIRST).sent == {"Opportunity": 1}
    assert client.org[("Opportunity", deal)] == {
        "Billing_Sync_Status__c": "Error",
        "Billing_Sync_Error__c": "won deal has no line items",
    }

    with transaction(factory) as session:  # the same reason again: nothing to mark
        settle_deal(session, deal, staging.QUARANTINED, "won deal has no line items")
    assert marked(factory) == set()

    with transaction(factory) as session:  # fixed: the error is cleared
        settle_deal(session, deal, staging.APPLIED)
    assert marked(factory) == {(queue.DEAL, deal)}
    assert write(factory, client, FIRST).sent == {"Opportunity": 1}
    assert client.org[("Opportunity", deal)] == {
        "Billing_Sync_Status__c": "Synced",
        "Billing_Sync_Error__c": None,
    }
    in_step(factory, client, FIRST)


def test_a_document_accounting_refused_marks_its_deal(
    factory: sessionmaker[Session], three: tuple[list[int], FakeSalesforce]
) -> None:
    ids, client = three
    invoice = invoice_of(factory, ids[0])
    with transaction(factory) as session:
        outbox_id = session.scalar(
            select(tables.Outbox.id).where(
                tables.Outbox.document_type == "invoice", tables.Outbox.document_id == invoice.id
            )
        )
        assert outbox_id is not None
        outbox.record(session, "ledger", [outbox.Outcome(outbox_id, outbox.PARKED, error="no")])
    assert marked(factory) == {(queue.DEAL, deal_id(0))}

    assert write(factory, client, FIRST).sent == {"Opportunity": 1}
    assert client.org[("Opportunity", deal_id(0))] == {
        "Billing_Sync_Status__c": "Error",
        "Billing_Sync_Error__c": f"ledger refused {invoice.number}: no",
    }

    with transaction(factory) as session:  # fixed in accounting, put back in line
        assert outbox.retry_parked(session, "ledger") == 1
    assert marked(factory) == {(queue.DEAL, deal_id(0))}
    assert write(factory, client, FIRST).sent == {"Opportunity": 1}
    assert client.org[("Opportunity", deal_id(0))] == {
        "Billing_Sync_Status__c": "Synced",
        "Billing_Sync_Error__c": None,
    }
    in_step(factory, client, FIRST)


def test_the_billing_run_marks_what_it_issues_and_the_next_invoice_dates(
    factory: sessionmaker[Session], settings: Settings, three: tuple[list[int], FakeSalesforce]
) -> None:
    ids, client = three
    february = date(2026, 2, 1)
    run_billing(factory, settings, february)
    with factory() as session:
        issued = session.scalars(
            select(tables.Document.id).where(tables.Document.issue_date == february)
        ).all()
    assert marked(factory) == {(queue.SUBSCRIPTION, str(i)) for i in ids} | {
        (queue.DOCUMENT, str(i)) for i in issued
    }

    result = write(factory, client, february)

    # New invoices, next invoice dates, and the accounts whose January invoice fell due.
    assert result.sent == {"Billing_Subscription__c": 3, "Billing_Invoice__c": 3, "Account": 3}
    account = client.org[("Account", account_id(0))]
    assert (
        account["Balance_Due__c"],
        account["Overdue_Amount__c"],
        account["Next_Invoice_Date__c"],
    ) == (200.0, 100.0, "2026-03-01")
    invoice = client.org[("Billing_Invoice__c", invoice_of(factory, ids[0]).number)]
    assert {name: invoice[name] for name in ("Name", "Due_Date__c", "Tax__c")} == {
        "Name": invoice_of(factory, ids[0]).number,
        "Due_Date__c": DUE.isoformat(),
        "Tax__c": 0.0,
    }
    in_step(factory, client, february)


# -- the date ---------------------------------------------------------------------------------
def test_an_invoice_falling_due_sends_its_account_as_past_due(
    factory: sessionmaker[Session], three: tuple[list[int], FakeSalesforce]
) -> None:
    ids, client = three
    assert write(factory, client, DUE).built == 0  # due that day, not overdue yet

    result = write(factory, client, DUE + timedelta(days=1))

    assert result.built == 3 and result.sent == {"Account": 3}
    assert {
        (account["Billing_Status__c"], account["Balance_Due__c"], account["Overdue_Amount__c"])
        for n in range(3)
        if (account := client.org[("Account", account_id(n))])
    } == {("Past Due", 100.0, 100.0)}
    in_step(factory, client, DUE + timedelta(days=1))

    invoice = invoice_of(factory, ids[0])  # paid late: the account is active again
    with transaction(factory) as session:
        settlement.record_payment(
            session, amount=invoice.total, received_on=DUE, invoice_number=invoice.number
        )
    result = write(factory, client, DUE + timedelta(days=2))
    assert result.sent == {"Billing_Invoice__c": 1, "Account": 1}
    assert client.org[("Account", account_id(0))]["Billing_Status__c"] == "Active"
    in_step(factory, client, DUE + timedelta(days=2))


def test_an_earlier_as_of_date_builds_again_what_changes_with_the_date(
    factory: sessionmaker[Session], three: tuple[list[int], FakeSalesforce]
) -> None:
    _, client = three
    write(factory, client, DUE + timedelta(days=1))
    assert client.org[("Account", account_id(0))]["Billing_Status__c"] == "Past Due"

    result = write(factory, client, FIRST)

    assert result.sent == {"Account": 3}
    assert client.org[("Account", account_id(0))]["Billing_Status__c"] == "Active"
    in_step(factory, client, FIRST)


# -- failures -------------------------------------------------------------------------------------
def test_a_crash_after_salesforce_took_a_call_loses_nothing_and_sends_nothing_twice(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    open_deals(factory, 250)
    run_billing(factory, settings, FIRST)
    crashing = FakeSalesforce(crash_on=3)  # the describe, then the second call of subscriptions

    with pytest.raises(LostAnswerError):
        write(factory, crashing, FIRST)

    again = FakeSalesforce(org=crashing.org)
    result = write(factory, again, FIRST)

    # The first call was recorded; the second, whose answer was lost, goes again.
    assert len(again.sent_of("Billing_Subscription__c")) == 50
    assert result.sent == {
        "Billing_Subscription__c": 50,
        "Billing_Invoice__c": 250,
        "Account": 250,
        "Opportunity": 250,
    }
    assert again.described == 0  # the org's currencies were noted by the first
    assert marked(factory) == set()
    in_step(factory, again, FIRST)


def test_a_change_made_while_the_write_back_is_away_stays_queued(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    """A record marked again between its build and its answer (another generation) is built
    again by the next write-back, with the change."""
    ids = open_deals(factory, 1)
    run_billing(factory, settings, FIRST)
    invoice = invoice_of(factory, ids[0])

    def pay() -> None:
        if client.calls == 2:  # the describe, the subscriptions, then the invoices' call
            with transaction(factory) as session:
                settlement.record_payment(
                    session, amount=invoice.total, received_on=FIRST, invoice_number=invoice.number
                )

    client = FakeSalesforce()
    client.on_call = pay
    write(factory, client, FIRST)
    assert client.org[("Billing_Invoice__c", invoice.number)]["Status__c"] == "Open"
    assert marked(factory) == {(queue.DOCUMENT, str(invoice.id))}

    assert write(factory, client, FIRST).sent == {"Billing_Invoice__c": 1, "Account": 1}
    assert client.org[("Billing_Invoice__c", invoice.number)]["Status__c"] == "Paid"
    in_step(factory, client, FIRST)


def test_a_retryable_refusal_goes_again_and_a_final_one_waits_for_a_change(
    factory: sessionmaker[Session], three: tuple[list[int], FakeSalesforce], settings: Settings
) -> None:
    ids, client = three
    invoice = invoice_of(factory, ids[0])
    with transaction(factory) as session:
        contracts.cancel_subscription(session, ids[1], cancel_date=FIRST)
        settlement.record_payment(
            session, amount=Decimal("1.00"), received_on=FIRST, invoice_number=invoice.number
        )
    client.refuse = {f"SUB-{ids[1]}": "UNABLE_TO_LOCK_ROW", invoice.number: "INVALID_FIELD"}

    first = write(factory, client, FIRST)
    assert set(first.failed) == {
        f"Billing_Subscription__c SUB-{ids[1]}",
        f"Billing_Invoice__c {invoice.number}",
    }
    client.refuse = {}
    again = write(factory, client, FIRST)
    assert again.sent == {"Billing_Subscription__c": 1}  # the lock is gone; the other waits
    assert write(factory, client, FIRST).built == 0

    with transaction(factory) as session:  # the refused invoice changes: it goes again
        settlement.record_payment(
            session, amount=Decimal("2.00"), received_on=FIRST, invoice_number=invoice.number
        )
    assert write(factory, client, FIRST).sent == {"Billing_Invoice__c": 1, "Account": 1}
    in_step(factory, client, FIRST)


# -- in a cycle -------------------------------------------------------------------------------
@pytest.mark.sandbox(seed="demo")
def test_a_cycle_with_nothing_changed_writes_back_in_a_few_statements(
    factory: sessionmaker[Session],
    engine: Engine,
    ledger_settings: Settings,
    salesforce_sandbox: Sandbox,
) -> None:
    salesforce = SalesforceSettings(
        instance_url=salesforce_sandbox.instance_url,
        session_id=salesforce_sandbox.session_id,
        ca_file=str(salesforce_sandbox.ca_file),
        backoff_initial_seconds=0.001,
    )
    runtime = Runtime(factory, ledger_settings.model_copy(update={"salesforce": salesforce}))
    as_of = date(2026, 1, 31)
    first = run_cycle(factory, runtime.settings, as_of, runtime=runtime)
    assert first.errors == {} and first.stages["writeback"]["sent"]
    for stage in STAGES[:-1]:  # a cycle in which nothing changed, up to the write-back
        runtime.run(stage, as_of)

    with counting(engine) as seen:
        run = runtime.run("writeback", as_of)

    assert run.ok and run.api_calls == 0
    assert run.summary() == {
        "built": 0,
        "sent": {},
        "unchanged": 0,
        "failed": {},
        "api_calls": 0,
    }
    # The write-back's own four (BEGIN, the as-of date, the queue, the subscriptions whose usage
    # accrues: none here), then the run's record.
    assert len(seen) <= 7, seen.sql
    assert not seen.touching("documents") and not seen.touching("writeback_state")


# -- the upgrade ------------------------------------------------------------------------------
@pytest.fixture
def own_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's backend for this test alone (migrated up and down)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'upgraded.db'}"
        return
    admin = request.config.getoption("--postgres-url")
    url = create_postgres_database(admin)
    yield url
    drop_postgres_database(admin, url)


def test_the_upgrade_queues_every_record_salesforce_shows_once(
    own_database: str, settings: Settings
) -> None:
    engine = make_engine(own_database)
    upgrade(engine)
    factory = session_factory(engine)
    ids = open_deals(factory, 2)
    with transaction(factory) as session:  # a deal waiting, one withdrawn, a customer of ours
        for number, state in ((7, staging.QUARANTINED), (8, staging.IGNORED)):
            settle_deal(session, deal_id(number), state, "waits")
        builders.subscription(
            session,
            builders.customer(session, "IMPORTED"),
            [builders.spec(session, builders.price(session, "OTHER"))],
            start=FIRST,
        )
    run_billing(factory, settings.model_copy(update={"database_url": own_database}), FIRST)
    with transaction(factory) as session:  # as a database before the queue holds it
        session.execute(delete(tables.WritebackQueue))
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0010")

    upgrade(engine)

    with factory() as session:
        rows = session.execute(
            select(
                tables.WritebackQueue.entity,
                tables.WritebackQueue.key,
                tables.WritebackQueue.due_on,
                tables.WritebackQueue.generation,
            )
        ).all()
        invoices = session.scalars(
            select(tables.Document.id).where(tables.Document.subscription_id.in_(ids))
        ).all()
        customers = {
            customer_id
            for customer_id in session.scalars(
                select(tables.ExternalId.entity_id).where(
                    tables.ExternalId.system == SYSTEM, tables.ExternalId.entity == "customers"
                )
            )
        }
    assert {(entity, key) for entity, key, _, _ in rows} == (
        {(queue.SUBSCRIPTION, str(i)) for i in ids}
        | {(queue.DOCUMENT, str(i)) for i in invoices}
        | {(queue.CUSTOMER, str(i)) for i in customers}
        | {(queue.DEAL, deal_id(n)) for n in (0, 1, 7)}
    )
    assert {(due_on, generation) for _, _, due_on, generation in rows} == {(queue.CHANGED, 0)}
    client = FakeSalesforce()
    result = write(factory, client, FIRST)
    assert result.sent == {
        "Billing_Subscription__c": 2,
        "Billing_Invoice__c": 2,
        "Account": 2,
        "Opportunity": 3,  # the two billed deals and the one waiting
    }
    in_step(factory, client, FIRST)
    engine.dispose()


# -- what the org takes -----------------------------------------------------------------------
def test_a_single_currency_org_gets_no_currency_code_and_is_described_once_a_day(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    open_deals(factory, 2)
    run_billing(factory, settings, FIRST)
    client = FakeSalesforce(multi_currency=False)

    first = write(factory, client, FIRST)

    assert first.failed == {} and client.described == 1
    sent = [fields for (obj, _), fields in client.org.items() if obj != "Opportunity"]
    assert len(sent) == 6 and not [f for f in sent if "CurrencyIsoCode" in f]
    assert [f["Currency__c"] for f in sent if "Currency__c" in f] == ["USD", "USD"]

    assert write(factory, client, DUE + timedelta(days=1)).sent == {"Account": 2}
    assert client.described == 1  # noted for a day

    with transaction(factory) as session:  # a day later, the admin turned multi-currency on
        session.execute(
            update(tables.SyncCursor)
            .where(tables.SyncCursor.name == shapes.SINGLE_CURRENCY)
            .values(position=utc_now() - timedelta(days=1, seconds=1))
        )
    client.multi_currency = True

    again = write(factory, client, DUE + timedelta(days=1))

    assert client.described == 2
    # Every record is built again and sent with its currency (the deals carry none).
    assert again.sent == {"Billing_Subscription__c": 2, "Billing_Invoice__c": 2}
    assert {fields.get("CurrencyIsoCode") for (obj, _), fields in client.org.items()} == {
        "USD",
        None,
    }
    assert write(factory, client, DUE + timedelta(days=1)).built == 0
    assert client.described == 2  # multi-currency cannot be turned off: never asked again
    in_step(factory, client, DUE + timedelta(days=1))


def test_the_org_is_described_while_no_transaction_holds_the_database(
    factory: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    open_deals(factory, 1)
    run_billing(factory, settings, FIRST)
    held: list[int] = []

    class Watching(FakeSalesforce):
        def field_names(self, obj: str) -> frozenset[str]:
            held.append(engine.pool.checkedout())  # a transaction open holds a connection
            return super().field_names(obj)

    client = Watching(multi_currency=False)
    writeback.write_back(factory, cast(SalesforceClient, client), FIRST)

    assert held == [0]
    assert client.org and client.described == 1


@pytest.mark.parametrize("before", ["another shape", "no shape noted"])
def test_records_of_another_shape_are_all_built_again_and_only_differences_sent(
    factory: sessionmaker[Session], three: tuple[list[int], FakeSalesforce], before: str
) -> None:
    _, client = three
    invoice_key = next(key for obj, key in client.org if obj == "Billing_Invoice__c")
    del client.org[("Billing_Invoice__c", invoice_key)]["Due_Date__c"]  # as an older version
    with transaction(factory) as session:
        shape = tables.SyncCursor.name.like(f"{shapes.SHAPE_CURSOR}%")
        if before == "another shape":
            session.execute(update(tables.SyncCursor).where(shape).values(name="writeback:shape:1"))
        else:
            session.execute(delete(tables.SyncCursor).where(shape))
        with session.no_autoflush:  # what that version sent is what it hashed
            state = session.get(tables.WritebackState, ("Billing_Invoice__c", invoice_key))
            assert state is not None
            fields = client.org[("Billing_Invoice__c", invoice_key)]
            state.sent_hash = staging.payload_hash(fields)

    result = write(factory, client, FIRST)

    assert result.built == 12 and result.unchanged == 11
    assert result.sent == {"Billing_Invoice__c": 1}
    assert client.org[("Billing_Invoice__c", invoice_key)]["Due_Date__c"] == DUE.isoformat()
    assert write(factory, client, FIRST).built == 0
    in_step(factory, client, FIRST)
