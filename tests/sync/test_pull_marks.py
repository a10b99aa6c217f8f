"""What the set-based pull queues for the write-back, against the Salesforce sandbox, on SQLite
and PostgreSQL: exactly what the same changes made one by one in storage queue (a new customer,
a subscription made or changed, the customer of one discarded, a deal whose state or reason
changed), written with the page."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db import writeback_queue as queue
from connector.db.engine import transaction
from connector.settings import Settings, load_settings
from connector.sync import crm_pull
from sandbox.salesforce.server import Sandbox
from tests.conftest import TEST_TAX_RATES
from tests.sync.test_pull_statements import MAPPING_FILE, Org

AS_OF = date(2026, 1, 31)


@pytest.fixture
def settings(database_url: str, salesforce_sandbox: Sandbox, tmp_path: Path) -> Settings:
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


def taken(factory: sessionmaker[Session]) -> set[tuple[str, str]]:
    """What the queue holds (due at once), emptied."""
    table = tables.WritebackQueue
    with transaction(factory) as session:
        rows = session.execute(select(table.entity, table.key).where(table.due_on == queue.CHANGED))
        found = {(entity, key) for entity, key in rows}
        session.execute(delete(table))
    return found


def ids(factory: sessionmaker[Session], entity: str) -> dict[str, str]:
    """External id: our id, of the linked ``entity`` (a table's name)."""
    link = tables.ExternalId
    with factory() as session:
        rows = session.execute(
            select(link.external_id, link.entity_id).where(link.entity == entity)
        )
        return {external_id: str(entity_id) for external_id, entity_id in rows}


def test_the_pull_marks_what_it_makes_and_changes(
    salesforce_sandbox: Sandbox, factory: sessionmaker[Session], settings: Settings
) -> None:
    org = Org(salesforce_sandbox)
    with org.org.transaction():
        for code, name, price in (("SEATS", "Seats", "25"), ("API", "API calls", "5")):
            product = org.org.create(
                "Product2", {"Name": name, "ProductCode": code, "IsActive": True}
            )
            org.entries[code] = org.org.create(
                "PricebookEntry",
                {
                    "Pricebook2Id": org.book,
                    "Product2Id": product,
                    "UnitPrice": price,
                    "IsActive": True,
                },
            )
        first, second = org.account("First"), org.account("Second")
        kept = org.deal(first, "Kept", 3, 1)
        dropped = org.deal(second, "Dropped", 2)
        empty = org.deal(first, "No lines")

    crm_pull.pull(factory, settings, as_of=AS_OF)

    customers = ids(factory, tables.Customer.__tablename__)
    subscriptions = ids(factory, tables.Subscription.__tablename__)
    assert set(subscriptions) == {kept, dropped}
    assert taken(factory) == {
        (queue.CUSTOMER, customers[first]),
        (queue.CUSTOMER, customers[second]),
        (queue.SUBSCRIPTION, subscriptions[kept]),
        (queue.SUBSCRIPTION, subscriptions[dropped]),
        (queue.DEAL, kept),  # staged, then applied
        (queue.DEAL, dropped),
        (queue.DEAL, empty),  # staged, then quarantined with its reason
    }

    org.wait(hours=1)
    with org.org.transaction():  # a new quantity on one deal, the other lost
        org.org.update("OpportunityLineItem", org.lines[kept][0], {"Quantity": 5})
        org.org.update("Opportunity", dropped, {"StageName": "Closed Lost"})
    crm_pull.pull(factory, settings, as_of=AS_OF)

    assert set(ids(factory, tables.Subscription.__tablename__)) == {kept}
    assert taken(factory) == {
        (queue.SUBSCRIPTION, subscriptions[kept]),  # its items changed
        (queue.CUSTOMER, customers[second]),  # its MRR without the subscription discarded
        (queue.DEAL, dropped),  # applied, then ignored
    }

    org.wait(hours=1)
    crm_pull.pull(factory, settings, as_of=AS_OF)  # nothing changed: nothing marked
    assert taken(factory) == set()
