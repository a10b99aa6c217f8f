"""Database engines and sessions: SQLite by default, PostgreSQL by URL (psycopg 3).

SQLite runs in WAL mode with foreign keys on; every transaction starts with ``BEGIN IMMEDIATE``
so that two writers queue on the busy timeout instead of failing half-way. A database file the
connector creates (and so its ``-wal`` and ``-journal`` files) is its owner's alone (0600, in
folders of 0700). PostgreSQL URLs may be written ``postgresql://``; they are driven by
psycopg 3.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connector import private_files
from connector.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(raw: str) -> URL:
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            "database URL is not valid (expected sqlite:///path or postgresql://user@host/db)"
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"unsupported database {url.get_backend_name()!r}: use SQLite or PostgreSQL"
        )
    return url


def display_url(raw: str) -> str:
    """The URL with any password masked, for messages."""
    try:
        return normalize_url(raw).render_as_string(hide_password=True)
    except ConfigError:
        return "<invalid database URL>"


def make_engine(raw_url: str, **options: Any) -> Engine:
    url = normalize_url(raw_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **options)
    return create_engine(url, pool_pre_ping=True, **options)


def _sqlite_engine(url: URL, **options: Any) -> Engine:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        # made owner-only before SQLite opens it: its -wal and -journal files take its mode
        private_files.create_empty(Path(database).expanduser())
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below own the transaction boundaries.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if database and database != ":memory:":
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_unique_violation(error: IntegrityError) -> bool:
    """True when a unique constraint refused the write (a concurrent writer got there first)."""
    if getattr(error.orig, "sqlstate", None) == "23505":  # PostgreSQL unique_violation
        return True
    return "UNIQUE constraint failed" in str(error.orig)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits together, or not at all."""
    with factory() as session, session.begin():
        yield session
