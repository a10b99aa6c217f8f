"""Usage events by month: partitions made on demand (PostgreSQL), the transaction ids' own table,
the default partition, and the migration that moves existing events."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.usage import Aggregation, Metric
from connector.db import tables, usage_partitions
from connector.db.engine import make_engine, reading, session_factory, transaction
from connector.db.migrate import current_revision, head_revision, upgrade
from connector.db.tables import Base
from connector.sync import contracts
from connector.sync.usage_events import Limits, Outcome, ingest_batch
from tests.conftest import create_postgres_database, drop_postgres_database

NOW = datetime(2023, 12, 20, 12, 0, tzinfo=UTC)
METRICS = {"api_calls": Metric("api_calls", Aggregation.COUNT)}
LIMITS = Limits(timedelta(minutes=5), timedelta(days=400))


@pytest.fixture
def customer_id(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        return contracts.upsert_customer(
            session, name="Acme", country="US", currency="USD", system="salesforce",
            external_id="001000000000001AAA",
        ).id  # fmt: skip


def event(tx: str, when: str) -> dict[str, object]:
    return {"transaction_id": tx, "customer": "001000000000001AAA", "metric": "api_calls",
            "timestamp": when, "properties": {}}  # fmt: skip


def placed(engine: Engine) -> list[tuple[str, str]]:
    """Each event's transaction id and the table that holds it."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT transaction_id, tableoid::regclass::text FROM usage_events ORDER BY 1")
        )
        return [(tx, table) for tx, table in rows]


def ids(factory: sessionmaker[Session]) -> list[tuple[str, datetime]]:
    with reading(factory) as session:
        rows = session.execute(
            select(tables.UsageEventId.transaction_id, tables.UsageEventId.occurred_at).order_by(
                tables.UsageEventId.transaction_id
            )
        )
        return [(tx, at) for tx, at in rows]


def test_events_of_three_months_land_in_three_partitions(
    backend: str, engine: Engine, factory: sessionmaker[Session], customer_id: int
) -> None:
    events = [
        event("a", "2023-01-31T23:59:59.999999Z"),
        event("b", "2023-02-01T00:00:00Z"),
        event("c", "2023-03-15T09:00:00+09:00"),
    ]
    results = ingest_batch(factory, METRICS, events, NOW, LIMITS)

    assert [result.outcome for result in results] == [Outcome.ACCEPTED] * 3
    assert ids(factory) == [
        ("a", datetime(2023, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("b", datetime(2023, 2, 1, tzinfo=UTC)),
        ("c", datetime(2023, 3, 15, tzinfo=UTC)),
    ]
    if backend == "postgresql":
        assert placed(engine) == [
            ("a", "usage_events_2023_01"),
            ("b", "usage_events_2023_02"),
            ("c", "usage_events_2023_03"),
        ]


def test_a_transaction_id_seen_in_another_month_is_a_duplicate(
    engine: Engine, factory: sessionmaker[Session], customer_id: int
) -> None:
    first = ingest_batch(factory, METRICS, [event("x", "2023-04-02T10:00:00Z")], NOW, LIMITS)
    again = ingest_batch(factory, METRICS, [event("x", "2023-05-02T10:00:00Z")], NOW, LIMITS)

    assert [r.outcome for r in first + again] == [Outcome.ACCEPTED, Outcome.DUPLICATE]
    with reading(factory) as session:
        stored = session.execute(select(tables.UsageEvent.occurred_at)).scalars().all()
    assert stored == [datetime(2023, 4, 2, 10, tzinfo=UTC)]
    assert ids(factory) == [("x", datetime(2023, 4, 2, 10, tzinfo=UTC))]


def test_the_default_partition_takes_a_month_without_one_until_it_is_made(
    backend: str, engine: Engine, factory: sessionmaker[Session], customer_id: int
) -> None:
    if backend != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS usage_events_2023_07"))
        connection.execute(
            text(
                "INSERT INTO usage_events (transaction_id, customer_id, metric, occurred_at, "
                "properties, received_at) VALUES ('early', :customer, 'api_calls', "
                "'2023-07-04 08:00:00+00', '{}', '2023-07-04 08:00:00+00')"
            ),
            {"customer": customer_id},
        )
    assert placed(engine) == [("early", "usage_events_default")]

    results = ingest_batch(factory, METRICS, [event("later", "2023-07-05T08:00:00Z")], NOW, LIMITS)

    assert [r.outcome for r in results] == [Outcome.ACCEPTED]
    assert placed(engine) == [
        ("early", "usage_events_2023_07"),
        ("later", "usage_events_2023_07"),
    ]


def test_two_writers_make_a_new_month_once(
    backend: str, engine: Engine, factory: sessionmaker[Session], customer_id: int
) -> None:
    if backend != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS usage_events_2023_08"))
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def write(name: str) -> None:
        other = make_engine(engine.url.render_as_string(hide_password=False))
        try:
            barrier.wait()
            usage_partitions.ensure(other, [datetime(2023, 8, 9, tzinfo=UTC)])
        except BaseException as error:
            failures.append(error)
        finally:
            other.dispose()

    threads = [threading.Thread(target=write, args=(name,)) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    with engine.connect() as connection:
        assert (2023, 8) in usage_partitions.existing(connection)


def _events_before_partitioning(engine: Engine) -> None:
    """A customer and three events of two months, stored as revision 0020 stored them."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO customers (id, name, country, currency, created_at, updated_at) "
                "VALUES (1, 'Acme', 'US', 'USD', :now, :now)"
            ),
            {"now": datetime(2026, 1, 1, tzinfo=UTC)},
        )
        for tx, at in (
            ("t1", datetime(2026, 1, 5, 10, tzinfo=UTC)),
            ("t2", datetime(2026, 1, 31, 23, tzinfo=UTC)),
            ("t3", datetime(2026, 2, 1, 0, 30, tzinfo=UTC)),
        ):
            connection.execute(
                text(
                    "INSERT INTO usage_events (transaction_id, customer_id, metric, "
                    "occurred_at, properties, received_at) VALUES (:tx, 1, 'api_calls', "
                    ":at, '{\"n\": 1}', :at)"
                ),
                {
                    "tx": tx,
                    "at": at
                    if engine.dialect.name == "postgresql"
                    else f"{at:%Y-%m-%d %H:%M:%S.%f}",
                },
            )


def _check_migrated(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "include_name": usage_partitions.include_name},
        )
        assert compare_metadata(context, Base.metadata) == []
    factory = session_factory(engine)
    with reading(factory) as session:
        events = session.execute(
            select(tables.UsageEvent.id, tables.UsageEvent.transaction_id).order_by(
                tables.UsageEvent.id
            )
        ).all()
    assert [tuple(row) for row in events] == [(1, "t1"), (2, "t2"), (3, "t3")]
    assert ids(factory) == [
        ("t1", datetime(2026, 1, 5, 10, tzinfo=UTC)),
        ("t2", datetime(2026, 1, 31, 23, tzinfo=UTC)),
        ("t3", datetime(2026, 2, 1, 0, 30, tzinfo=UTC)),
    ]
    results = ingest_batch(
        factory,
        METRICS,
        [{**event("t1", "2026-02-03T00:00:00Z"), "customer": "1"}, {
            **event("t4", "2026-02-03T00:00:00Z"), "customer": "1"}],
        datetime(2026, 2, 10, tzinfo=UTC),
        LIMITS,
    )  # fmt: skip
    assert [r.outcome for r in results] == [Outcome.DUPLICATE, Outcome.ACCEPTED]
    with reading(factory) as session:
        new_id = session.scalar(
            select(tables.UsageEvent.id).where(tables.UsageEvent.transaction_id == "t4")
        )
    assert new_id == 4  # the ids go on from the same sequence


def test_the_migration_keeps_the_events_of_a_sqlite_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0020")
    _events_before_partitioning(engine)

    upgrade(engine)

    _check_migrated(engine)
    engine.dispose()


def test_the_migration_moves_postgresql_events_into_their_months(
    request: pytest.FixtureRequest,
) -> None:
    admin_url = request.config.getoption("--postgres-url")
    if not admin_url:
        pytest.skip("no PostgreSQL server given")
    url = create_postgres_database(admin_url)
    engine = make_engine(url)
    try:
        upgrade(engine, "0020")
        _events_before_partitioning(engine)

        upgrade(engine)

        _check_migrated(engine)
        assert placed(engine) == [
            ("t1", "usage_events_2026_01"),
            ("t2", "usage_events_2026_01"),
            ("t3", "usage_events_2026_02"),
            ("t4", "usage_events_2026_02"),
        ]
    finally:
        engine.dispose()
        drop_postgres_database(admin_url, url)
