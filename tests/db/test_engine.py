from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from connector.db.engine import display_url, make_engine, normalize_url
from connector.errors import ConfigError
from tests.conftest import tree_modes


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text("INSERT INTO contracts (customer_id, name, created_at) VALUES (999, 'x', :now)"),
            {"now": "2026-01-01 00:00:00"},
        )


def test_postgresql_urls_use_psycopg_3() -> None:
    assert normalize_url("postgresql://u:p@db/billing").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@db/billing").drivername == "postgresql+psycopg"


def test_passwords_are_masked_in_displayed_urls() -> None:
    assert display_url("postgresql://billing:s3cret@db:5432/prod") == (
        "postgresql+psycopg://billing:***@db:5432/prod"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("not a url", "database URL is not valid"),
    ],
)
def test_unsupported_or_malformed_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        normalize_url(url)


@pytest.mark.usefixtures("open_umask")
def test_a_new_sqlite_database_and_its_wal_files_are_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "var" / "data" / "connector.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
        assert tree_modes(tmp_path / "var") == {
            "var": 0o700,
            "var/data": 0o700,
            "var/data/connector.db": 0o600,
            "var/data/connector.db-shm": 0o600,
            "var/data/connector.db-wal": 0o600,
        }
    engine.dispose()


@pytest.mark.usefixtures("open_umask")
def test_the_rollback_journal_of_a_database_the_connector_made_is_owner_only(
    tmp_path: Path,
) -> None:
    database = tmp_path / "connector.db"
    make_engine(f"sqlite:///{database}").dispose()  # creates the file, before any connection
    raw = sqlite3.connect(database, isolation_level=None)
    raw.execute("PRAGMA journal_mode=DELETE")
    raw.execute("CREATE TABLE t (x INTEGER)")
    raw.execute("BEGIN IMMEDIATE")
    raw.execute("INSERT INTO t VALUES (1)")
    journal = tmp_path / "connector.db-journal"
    assert journal.stat().st_mode & 0o777 == 0o600
    raw.execute("COMMIT")
    raw.close()
    assert database.stat().st_mode & 0o777 == 0o600


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    database = tmp_path / "connector.db"
    sqlite3.connect(database).close()
    os.chmod(database, 0o640)
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    engine.dispose()
    assert database.stat().st_mode & 0o777 == 0o640
