from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from connector.db.engine import make_engine
from connector.db.migrate import current_revision, ensure_schema, head_revision, upgrade
from connector.db.tables import Base


def test_migrations_create_exactly_the_tables_of_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
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
