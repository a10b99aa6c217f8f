"""The database's refusals as a person reads them; real SQLite errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from connector.db.engine import make_engine
from connector.db.failures import DatabaseRefusedError, database_failure


def test_a_database_that_cannot_grow_is_refused_as_a_full_disk(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'small.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (body TEXT)"))
    with pytest.raises(DBAPIError) as raised, engine.begin() as connection:
        connection.execute(text("PRAGMA max_page_count = 3"))  # as if the disk were full
        connection.execute(text("INSERT INTO notes VALUES (:body)"), {"body": "x" * 100_000})
    engine.dispose()

    failure = database_failure(raised.value, "sqlite:///small.db", lock_timeout=30)

    assert isinstance(failure, DatabaseRefusedError)
    assert str(failure) == (
        "the database sqlite:///small.db cannot grow: the disk is full (database or disk is "
        "full); nothing of this transaction was kept"
    )


def test_a_constraint_is_a_bug_to_report_not_a_refusal_to_explain(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(IntegrityError) as raised, engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        connection.execute(text("INSERT INTO t VALUES (1), (1)"))
    engine.dispose()

    assert database_failure(raised.value, "sqlite:///c.db", lock_timeout=30) is None
