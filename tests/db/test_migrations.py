from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from connector.db.engine import make_engine
from connector.db.migrate import (
    alembic_config,
    current_revision,
    ensure_schema,
    head_revision,
    upgrade,
)
from connector.db.tables import Base
from connector.db.usage_partitions import include_name

# as connector/db/migrations/env.py compares: the partitions of usage_events are that table's
COMPARE = {"compare_type": True, "include_name": include_name}


def test_migrations_create_exactly_the_tables_of_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts=COMPARE)
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
    assert current_revision(engine) == head_revision()


def test_upgrading_a_current_schema_changes_nothing(engine: Engine) -> None:
    before = sorted(inspect(engine).get_table_names())
    upgrade(engine)
    ensure_schema(engine)
    assert sorted(inspect(engine).get_table_names()) == before
    assert "charges" in before and "alembic_version" in before


def test_a_new_database_is_migrated_on_start(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'new.db'}")
    assert current_revision(engine) is None
    ensure_schema(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_tax_jurisdictions_migration_fills_existing_tax_lines_from_the_customers_country(
    tmp_path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0007")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO customers (id, name, country, currency, created_at, updated_at) "
                "VALUES (1, 'Dupont', 'FR', 'EUR', :now, :now), "
                "(2, 'Windsor', 'GB', 'GBP', :now, :now)"
            ),
            {"now": "2026-01-01 00:00:00.000000"},
        )
        for doc_id, customer_id, currency in ((1, 1, "EUR"), (2, 2, "GBP")):
            connection.execute(
                text(
                    "INSERT INTO documents (id, kind, number, customer_id, currency, issue_date, "
                    "due_date, period_start, period_end, subtotal, tax_total, total, amount_paid, "
                    "amount_credited, status, created_at) VALUES (:id, 'invoice', :number, "
                    ":customer, :currency, '2026-01-01', '2026-01-31', '2026-01-01', "
                    "'2026-01-31', '100.00', '20.00', '120.00', '0', '0', 'open', :now)"
                ),
                {
                    "id": doc_id,
                    "number": f"INV-{doc_id}",
                    "customer": customer_id,
                    "currency": currency,
                    "now": "2026-01-01 00:00:00.000000",
                },
            )
            connection.execute(
                text(
                    "INSERT INTO document_taxes (document_id, rate, taxable, tax) "
                    "VALUES (:id, '20', '100.00', '20.00')"
                ),
                {"id": doc_id},
            )

    upgrade(engine)

    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT document_id, jurisdiction, reverse_charge FROM document_taxes "
                "ORDER BY document_id"
            )
        ).all()
        notes = connection.execute(text("SELECT tax_note FROM documents")).scalars().all()
        regions = connection.execute(text("SELECT region FROM customers")).scalars().all()
    assert [tuple(row) for row in rows] == [(1, "FR", 0), (2, "GB", 0)]
    assert notes == [None, None]
    assert regions == [None, None]
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts=COMPARE)
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_tax_jurisdictions_migration_downgrades(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    upgrade(engine)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0007")
    columns = {
        table: {column["name"] for column in inspect(engine).get_columns(table)}
        for table in ("customers", "documents", "document_taxes")
    }
    assert "region" not in columns["customers"]
    assert "tax_note" not in columns["documents"]
    assert {"jurisdiction", "reverse_charge"}.isdisjoint(columns["document_taxes"])
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()
