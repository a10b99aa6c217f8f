"""The write-back's queue: marks written once per transaction, with it or not at all; rows
settled only by the generation that was built; the as-of date followed."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db import writeback_queue as queue
from connector.db.engine import transaction
from tests import builders
from tests.statements import counting

DAY = date(2026, 3, 1)


def rows(factory: sessionmaker[Session]) -> dict[tuple[str, str], tuple[date, int]]:
    table = tables.WritebackQueue
    with factory() as session:
        found = session.execute(select(table.entity, table.key, table.due_on, table.generation))
        return {(entity, key): (due_on, generation) for entity, key, due_on, generation in found}


def test_marks_are_written_in_one_statement_when_the_transaction_commits(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    with counting(engine) as seen, transaction(factory) as session:
        queue.mark(session, queue.DOCUMENT, [3, 1])
        for key in ("006A", "006B"):
            with session.begin_nested():  # as the pull applies each record
                queue.mark(session, queue.DEAL, [key])
        queue.mark(session, queue.DOCUMENT, [1])
        assert not seen.touching("writeback_queue")  # nothing written before the commit

    assert len(seen.touching("writeback_queue")) == 1
    assert rows(factory) == {
        (queue.DOCUMENT, "1"): (queue.CHANGED, 0),
        (queue.DOCUMENT, "3"): (queue.CHANGED, 0),
        (queue.DEAL, "006A"): (queue.CHANGED, 0),
        (queue.DEAL, "006B"): (queue.CHANGED, 0),
    }


def test_a_transaction_that_rolls_back_marks_nothing(factory: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError), transaction(factory) as session:
        queue.mark(session, queue.SUBSCRIPTION, [7])
        raise RuntimeError("the change fails")
    with transaction(factory) as session:  # the same session class, a later transaction
        queue.mark(session, queue.SUBSCRIPTION, [8])

    assert set(rows(factory)) == {(queue.SUBSCRIPTION, "8")}


def test_a_row_marked_again_while_it_was_built_stays_due(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        queue.mark(session, queue.CUSTOMER, [1, 2, 3])
    with factory() as session:
        built = queue.due(session, DAY)
    with transaction(factory) as session:  # a change to customer 2 meanwhile
        queue.mark(session, queue.CUSTOMER, [2])

    with transaction(factory) as session:
        queue.settle(
            session,
            [
                (entity, key, generation, date(2026, 4, 1) if key == "1" else None)
                for (entity, key), generation in built.items()
            ],
        )

    assert rows(factory) == {
        (queue.CUSTOMER, "1"): (date(2026, 4, 1), 0),  # due again the day it changes
        (queue.CUSTOMER, "2"): (queue.CHANGED, 1),
    }
    with factory() as session:
        assert set(queue.due(session, DAY)) == {(queue.CUSTOMER, "2")}
        assert set(queue.due(session, date(2026, 4, 1))) == {
            (queue.CUSTOMER, "1"),
            (queue.CUSTOMER, "2"),
        }


def test_an_earlier_as_of_date_queues_every_subscription_and_account(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        customer = builders.customer(session, "C1")
        session.add_all(
            [
                tables.ExternalId(
                    entity="customers", entity_id=customer.id, system="salesforce", external_id="A"
                ),
                tables.ExternalId(
                    entity="subscriptions", entity_id=5, system="salesforce", external_id="D"
                ),
            ]
        )
    with transaction(factory) as session:
        queue.follow_date(session, DAY)
        queue.follow_date(session, date(2026, 3, 2))  # later: nothing to build again
    with transaction(factory) as session:
        session.execute(tables.table_of(tables.WritebackQueue).delete())
    assert rows(factory) == {}

    with transaction(factory) as session:
        queue.follow_date(session, DAY)

    assert rows(factory) == {
        (queue.CUSTOMER, str(customer.id)): (queue.CHANGED, 0),
        (queue.SUBSCRIPTION, "5"): (queue.CHANGED, 0),
    }


def test_depth_counts_what_is_due_per_entity_and_what_is_due_later(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        queue.mark(session, queue.DOCUMENT, [1, 2, 3])
        queue.mark(session, queue.DEAL, ["006A"])
        queue.mark(session, queue.SUBSCRIPTION, [7, 8])
    with transaction(factory) as session:
        queue.settle(
            session,
            [(queue.SUBSCRIPTION, "7", 0, date(2026, 4, 1)), (queue.SUBSCRIPTION, "8", 0, DAY)],
        )
    with factory() as session:
        assert queue.depth(session, DAY) == {
            "document": 3,
            "deal": 1,
            "subscription": 1,
            "later": 1,
        }
        assert queue.depth(session, date(2026, 4, 1)) == {
            "document": 3,
            "deal": 1,
            "subscription": 2,
        }
