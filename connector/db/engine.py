"""Database engines and sessions: SQLite by default, PostgreSQL by URL (psycopg 3).

SQLite runs in WAL mode with foreign keys on; every transaction starts with ``BEGIN IMMEDIATE``
so that two writers queue instead of failing half-way. A database another connection holds
locked is waited for, up to ``lock_timeout`` seconds: by SQLite's busy handler, and with
exponential backoff where SQLite gives up at once (switching a database in rollback-journal
mode to WAL while another connection writes to it). A database file the connector creates (and
so its ``-wal`` and ``-journal`` files) is its owner's alone (0600, in folders of 0700).
PostgreSQL URLs may be written ``postgresql://``; they are driven by psycopg 3.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connector import private_files
from connector.errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_LOCK_TIMEOUT_SECONDS = 30.0
SQLITE_BUSY, SQLITE_LOCKED = 5, 6  # primary result codes: the database is locked
BACKOFF_FIRST_SECONDS, BACKOFF_MAX_SECONDS = 0.05, 2.0


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


READ_ONLY = "connector_read_only"  # an execution option: a transaction that only reads


def make_engine(
    raw_url: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS, **options: Any
) -> Engine:
    """An engine on ``raw_url``; on SQLite, a locked database is waited for up to
    ``lock_timeout`` seconds."""
    url = normalize_url(raw_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, lock_timeout, **options)
    return create_engine(url, pool_pre_ping=True, **options)


def _sqlite_engine(url: URL, lock_timeout: float, **options: Any) -> Engine:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        try:
            # made owner-only before SQLite opens it: its -wal and -journal files take its mode
            private_files.create_empty(path)
        except OSError as error:
            raise ConfigError(
                f"cannot create {path.parent}, the directory of the database "
                f"{url.render_as_string()}: {error.strerror or error}"
            ) from None
    engine = create_engine(url, connect_args={"timeout": lock_timeout}, **options)
    name = f"the database {url.render_as_string()}"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below own the transaction boundaries.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
        if database and database != ":memory:":
            patiently(lambda: cursor.execute("PRAGMA journal_mode=WAL"), name, lock_timeout)
            cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = "DEFERRED" if connection.get_execution_options().get(READ_ONLY) else "IMMEDIATE"
        patiently(lambda: connection.exec_driver_sql(f"BEGIN {mode}"), name, lock_timeout)

    return engine


def is_locked(error: BaseException) -> bool:
    """True when SQLite refused because another connection holds the database locked."""
    code = getattr(getattr(error, "orig", error), "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)


def patiently(step: Callable[[], T], name: str, timeout: float) -> T:
    """``step()``, tried again while the database is locked, with exponential backoff and
    jitter, until ``timeout`` seconds have passed since the first try; then the refusal."""
    deadline = time.monotonic() + timeout
    delay = BACKOFF_FIRST_SECONDS
    warned = False
    while True:
        try:
            return step()
        except Exception as error:
            left = deadline - time.monotonic()
            if not is_locked(error) or left <= 0:
                raise
            if not warned:
                log.warning("%s is locked by another connection; waiting up to %g s", name, timeout)
                warned = True
            time.sleep(min(left, delay * random.uniform(0.5, 1.0)))  # noqa: S311 - jitter
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)


def sqlite_file(raw_url: str) -> Path | None:
    """The file of a SQLite database URL; None for PostgreSQL and in-memory databases."""
    url = normalize_url(raw_url)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return Path(database.removeprefix("file:").split("?", 1)[0])
    return Path(database).expanduser()


def is_unique_violation(error: IntegrityError) -> bool:
    """True when a unique constraint refused the write (a concurrent writer got there first)."""
    if getattr(error.orig, "sqlstate", None) == "23505":  # PostgreSQL unique_violation
        return True
    return "UNIQUE constraint failed" in str(error.orig)


def is_deadlock(error: DBAPIError) -> bool:
    """True when PostgreSQL broke a deadlock by rolling this transaction back: it can be tried
    again."""
    return getattr(error.orig, "sqlstate", None) == "40P01"


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits together, or not at all."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that only reads, rolled back at the end. On SQLite its transaction is
    deferred: a snapshot that neither waits for a writer nor holds one up (every other
    transaction takes the write lock at its start)."""
    with factory() as session:
        session.connection(execution_options={READ_ONLY: True})
        try:
            yield session
        finally:
            session.rollback()
