from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from connector.db.engine import display_url, make_engine, normalize_url
from connector.errors import ConfigError


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
