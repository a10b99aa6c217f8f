"""Usage events stored by COPY on PostgreSQL: the same values as rows inserted the ORM's way, in
the same partitions; a transaction id another writer holds is a duplicate once it commits."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.usage import Aggregation, Metric
from connector.db import bulk, tables, usage_copy, usage_partitions
from connector.db import usage as storage
from connector.db.engine import is_unique_violation, reading, transaction
from connector.sync import contracts
from connector.sync.usage_events import EventResult, Limits, Outcome, ingest, ingest_batch

RECEIVED = datetime(2026, 4, 2, 9, 30, 1, 654321, tzinfo=UTC)
PROPERTIES: list[dict[str, Any]] = [
    {"name": "Zoë — 東京 🙂", "note": 'a "quoted"\ttab\nline \\ slash'},
    {"gb": 0.1, "tiny": 1e-07, "big": 12345678901234567890, "price": "10.50", "exact": 2.5},
    {"nested": {"list": [1, 2.25, None, True, "ü"]}, "empty": {}},
    {},
]
TIMES = [
    datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC),  # March
    datetime(2026, 4, 1, 0, 0, 0, 1, tzinfo=UTC),  # April
    datetime(2026, 4, 1, 12, 0, 0, 500000, tzinfo=UTC),
    datetime(2019, 6, 15, 8, 0, 0, 123, tzinfo=UTC),  # no partition: the default one
]


@pytest.fixture
def customer_id(backend: str, factory: sessionmaker[Session]) -> int:
    if backend != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    with transaction(factory) as session:
        return contracts.upsert_customer(
            session, name="Acme", country="US", currency="USD", system="salesforce",
            external_id="001000000000001AAA",
        ).id  # fmt: skip


def rows(prefix: str, customer_id: int) -> list[storage.NewEvent]:
    return [
        (f"{prefix}-{n}", customer_id, f"metric-{n}", at, properties)
        for n, (at, properties) in enumerate(zip(TIMES, PROPERTIES, strict=True))
    ]


def stored(engine: Engine, prefix: str) -> list[tuple[Any, ...]]:
    """Each event of ``prefix`` as the ORM reads it back, with its JSON's stored text, the
    table that holds it, and its transaction id's row."""
    with engine.connect() as connection:
        raw = dict(
            connection.execute(
                text(
                    "SELECT transaction_id, properties::text || ' @ ' || tableoid::regclass::text "
                    "FROM usage_events WHERE transaction_id LIKE :prefix"
                ),
                {"prefix": f"{prefix}-%"},
            ).all()
        )
    with Session(engine) as session:
        events = session.scalars(
            select(tables.UsageEvent)
            .where(tables.UsageEvent.transaction_id.like(f"{prefix}-%"))
            .order_by(tables.UsageEvent.transaction_id)
        ).all()
        ids = dict(
            session.execute(
                select(tables.UsageEventId.transaction_id, tables.UsageEventId.occurred_at).where(
                    tables.UsageEventId.transaction_id.like(f"{prefix}-%")
                )
            ).all()
        )
        return [
            (
                event.transaction_id.removeprefix(prefix),
                event.customer_id,
                event.metric,
                event.occurred_at,
                event.properties,
                event.received_at,
                raw[event.transaction_id],
                ids[event.transaction_id],
            )
            for event in events
        ]


def test_copied_events_read_back_exactly_like_events_inserted_the_orm_way(
    engine: Engine, factory: sessionmaker[Session], customer_id: int
) -> None:
    usage_partitions.ensure(engine, TIMES[:3])
    with transaction(factory) as session:
        old = rows("old", customer_id)
        bulk.bulk_insert(
            session, storage.IDS, [{"transaction_id": e[0], "occurred_at": e[3]} for e in old]
        )
        names = ("transaction_id", "customer_id", "metric", "occurred_at", "properties")
        bulk.bulk_insert(
            session,
            storage.EVENTS,
            [{**dict(zip(names, e, strict=True)), "received_at": RECEIVED} for e in old],
        )
        storage.insert_events(session, rows("new", customer_id), RECEIVED)

    new = stored(engine, "new")
    assert new == stored(engine, "old")
    assert [(row[3], row[4], row[5], row[7]) for row in new] == [
        (at, properties, RECEIVED, at) for at, properties in zip(TIMES, PROPERTIES, strict=True)
    ]
    assert [row[6].rsplit(" @ ", 1)[1] for row in new] == [
        "usage_events_2026_03",
        "usage_events_2026_04",
        "usage_events_2026_04",
        "usage_events_default",
    ]
    assert new[1][6] == (
        '{"gb": 0.1, "tiny": 1e-07, "big": 12345678901234567890, "price": "10.50", '
        '"exact": 2.5} @ usage_events_2026_04'
    )
    assert new[0][4]["name"] == "Zoë — 東京 🙂"


def test_a_transaction_id_already_copied_fails_as_a_unique_violation(
    engine: Engine, factory: sessionmaker[Session], customer_id: int
) -> None:
    usage_partitions.ensure(engine, TIMES[:3])
    with transaction(factory) as session:
        storage.insert_events(session, rows("dup", customer_id)[:1], RECEIVED)
    with pytest.raises(IntegrityError) as raised, transaction(factory) as session:
        usage_copy.copy_events(session, rows("dup", customer_id)[:1], RECEIVED, str)

    assert is_unique_violation(raised.value)


def test_a_writer_meeting_an_uncommitted_transaction_id_stores_it_as_a_duplicate(
    engine: Engine,
    factory: sessionmaker[Session],
    customer_id: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A holds ``race`` uncommitted; B's COPY of it waits on A's key, fails as a unique
    violation once A commits, and B's batch, tried again, answers a duplicate."""
    metrics = {"api_calls": Metric("api_calls", Aggregation.COUNT)}
    event = {"transaction_id": "race", "customer": "001000000000001AAA", "metric": "api_calls",
             "timestamp": "2026-04-02T10:00:00Z", "properties": {}}  # fmt: skip
    now = datetime(2026, 4, 2, 12, tzinfo=UTC)
    limits = Limits(timedelta(minutes=5), timedelta(days=30))
    usage_partitions.ensure(engine, [now])
    found: list[list[EventResult]] = []
    failures: list[BaseException] = []
    caplog.set_level(logging.INFO, logger="connector.sync.usage_events")

    with transaction(factory) as holder:
        assert [r.outcome for r in ingest(holder, metrics, [event], now, limits)] == [
            Outcome.ACCEPTED
        ]

        def write() -> None:
            try:
                found.append(ingest_batch(factory, metrics, [event], now, limits))
            except BaseException as error:
                failures.append(error)

        writer = threading.Thread(target=write)
        writer.start()
        _wait_for_a_lock_wait(engine, failures)
    writer.join(30)

    assert [r.outcome for r in found[0]] == [Outcome.DUPLICATE]
    assert "a usage batch raced another writer; trying it again" in caplog.messages
    with reading(factory) as session:
        assert session.scalars(select(tables.UsageEvent.transaction_id)).all() == ["race"]
        hourly = session.scalars(select(tables.UsageHourly.events)).all()
    assert hourly == [1]


def _wait_for_a_lock_wait(engine: Engine, failures: list[BaseException]) -> None:
    """Until another connection of this database waits on a lock (the writer's COPY)."""
    deadline = time.monotonic() + 30
    with engine.connect() as connection:
        while time.monotonic() < deadline and not failures:
            waiting = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
            if waiting:
                return
            connection.rollback()  # the activity seen is a snapshot taken once a transaction
            time.sleep(0.02)
    raise AssertionError(f"the writer never waited on the transaction id held: {failures}")
