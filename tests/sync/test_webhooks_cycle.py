"""Webhook events from a real cycle: the demo Salesforce org pulled, billed and pushed, and the
cycle's own webhooks stage delivering every event it wrote to a receiver that verifies each
with the ``standardwebhooks`` library."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.settings import SalesforceSettings, Settings
from connector.sync.cycle import run_cycle
from sandbox.salesforce.server import Sandbox
from tests.statements import counting
from tests.sync.test_webhooks import add
from tests.webhook_receiver import receiving


@pytest.fixture
def cycle_settings(ledger_settings: Settings, salesforce_sandbox: Sandbox) -> Settings:
    salesforce = SalesforceSettings(
        instance_url=salesforce_sandbox.instance_url,
        session_id=salesforce_sandbox.session_id,
        ca_file=str(salesforce_sandbox.ca_file),
        backoff_initial_seconds=0.001,
    )
    return ledger_settings.model_copy(update={"salesforce": salesforce})


def _count(session: Session, table: type[tables.Base], *where: object) -> int:
    return session.scalar(select(func.count()).select_from(table).where(*where)) or 0  # type: ignore[arg-type]


@pytest.mark.sandbox(seed="demo")
def test_a_cycle_announces_what_it_changed(
    factory: sessionmaker[Session], cycle_settings: Settings, engine: Engine
) -> None:
    with receiving() as receiver:
        receiver.secret = add(factory, cycle_settings, receiver.url)
        with counting(engine) as seen:
            first = run_cycle(factory, cycle_settings, date(2026, 1, 31))
        again = run_cycle(factory, cycle_settings, date(2026, 1, 31))

    got = receiver.delivered()
    with factory() as session:
        customers = _count(session, tables.Customer)
        subscriptions = _count(session, tables.Subscription)
        invoices = _count(session, tables.Document, tables.Document.kind == "invoice")
        credit_notes = _count(session, tables.Document, tables.Document.kind == "credit_note")
        waiting = _count(
            session, tables.CrmRecord, tables.CrmRecord.state.in_(["quarantined", "held"])
        )
        events = _count(session, tables.WebhookEvent)
    assert first.errors == {}
    assert receiver.refused == 0
    types = Counter(item.type for item in got)
    assert customers and subscriptions and invoices and waiting
    assert types["customer.created"] == customers
    assert types["subscription.created"] == subscriptions
    assert types["invoice.created"] == invoices
    assert types["credit_note.created"] == credit_notes
    assert types["record.waiting"] == waiting == first.stages["pull"]["quarantined"]
    assert len(got) == events == first.stages["webhooks"]["delivered"]
    assert first.stages["webhooks"]["events"] == events
    assert len({item.webhook_id for item in got}) == events  # each once
    inserts = [
        seen.rows[index]
        for index, sql in enumerate(seen.sql)
        if sql.startswith("INSERT INTO webhook_events")
    ]
    # One insert a batch: the accounts' page (its customers, then its records waiting), the
    # deals' page (their subscriptions, then their records waiting), the billing run's batch.
    assert inserts == [customers, 1, subscriptions, 2, invoices]
    assert sum(inserts) == events
    assert again.stages["webhooks"] == {
        "events": 0,
        "delivered": 0,
        "retrying": 0,
        "failed": 0,
        "disabled": [],
    }
    # A customer's events reach the receiver in the order they were written.
    customer_of = {
        item.payload["data"]["id"]: [] for item in got if item.type == "customer.created"
    }
    for item in got:
        data = item.payload["data"]
        owner = data["id"] if item.type == "customer.created" else data.get("customer_id")
        if owner in customer_of:
            customer_of[owner].append(item.type)
    assert all(kinds[0] == "customer.created" for kinds in customer_of.values())
