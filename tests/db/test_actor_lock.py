"""The actor lock: one holder per database at a time, released however the holder ends.

The tests on ``database_url`` run on SQLite (an flock on ``<db>.lock``) and, with a PostgreSQL
server configured, on PostgreSQL (a session advisory lock on a dedicated connection).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from connector.db.actor_lock import (
    ADVISORY_KEY,
    ActorLock,
    FileLock,
    NoLock,
    PostgresLock,
    actor_lock,
)
from connector.db.engine import make_engine
from tests.conftest import create_postgres_database, drop_postgres_database

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from connector.db.actor_lock import actor_lock
from connector.db.engine import make_engine

lock = actor_lock(make_engine(sys.argv[1]))
print("locked" if lock.try_acquire() else "refused", flush=True)
time.sleep(600)
"""


@pytest.fixture
def engines(database_url: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one database: two would-be actors (as in two processes)."""
    first, second = make_engine(database_url), make_engine(database_url)
    yield first, second
    first.dispose()
    second.dispose()


def _acquired_within(lock: ActorLock, seconds: float) -> bool:
    """Try until ``seconds`` have passed: the server may take a moment to notice a dead
    client (PostgreSQL); the kernel releases an flock at once."""
    deadline = time.monotonic() + seconds
    while True:
        if lock.try_acquire():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_the_lock_of_each_backend(database_url: str, engines: tuple[Engine, Engine]) -> None:
    lock = actor_lock(engines[0])
    if database_url.startswith("sqlite"):
        database = Path(database_url.removeprefix("sqlite:///"))
        assert isinstance(lock, FileLock)
        assert lock.path == database.with_name(database.name + ".lock")
        assert lock.description == f"file lock {lock.path}"
    else:
        assert isinstance(lock, PostgresLock)
        assert lock.description == (
            f"PostgreSQL advisory lock {ADVISORY_KEY} on {engines[0].url.database}"
        )


def test_one_holder_at_a_time(engines: tuple[Engine, Engine]) -> None:
    first, second = actor_lock(engines[0]), actor_lock(engines[1])
    assert (first.still_held(), second.still_held()) == (False, False)

    assert first.try_acquire() is True
    assert first.try_acquire() is True  # held already: still ours
    assert second.try_acquire() is False
    assert (first.still_held(), second.still_held()) == (True, False)

    first.release()
    assert first.still_held() is False
    assert second.try_acquire() is True
    assert first.try_acquire() is False
    assert (first.still_held(), second.still_held()) == (False, True)

    second.release()
    second.release()  # releasing a lock not held is harmless
    first.release()
    assert first.try_acquire() is True
    first.release()


def test_a_lock_held_by_a_killed_process_is_free(
    database_url: str, engines: tuple[Engine, Engine]
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, database_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline().strip()
        assert line == "locked", holder.stderr.read() if holder.poll() is not None else line
        lock = actor_lock(engines[0])
        assert lock.try_acquire() is False
        assert lock.still_held() is False

        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=30) == -signal.SIGKILL

        assert _acquired_within(lock, 10)
        assert lock.still_held() is True
        assert actor_lock(engines[1]).try_acquire() is False
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
        if holder.stderr is not None:
            holder.stderr.close()


# SQLite


def test_the_lock_file_names_its_holder_and_is_shared_by_every_url_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    absolute = make_engine(f"sqlite:///{tmp_path / 'connector.db'}")
    relative = make_engine("sqlite:///connector.db")
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    held = actor_lock(absolute)
    assert isinstance(held, FileLock)
    assert held.path == tmp_path / "connector.db.lock"

    assert held.try_acquire() is True
    assert held.path.read_text() == f"{os.getpid()}\n"
    assert actor_lock(relative).try_acquire() is False  # the same file, named differently
    other_lock = actor_lock(other)
    assert other_lock.try_acquire() is True  # another database: another lock
    other_lock.release()
    held.release()
    for engine in (absolute, relative, other):
        engine.dispose()


def test_a_removed_lock_file_is_no_longer_held(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'connector.db'}")
    lock = actor_lock(engine)
    assert lock.try_acquire() is True
    assert isinstance(lock, FileLock)

    lock.path.unlink()  # someone cleaned up: a new process would lock a new file

    assert lock.still_held() is False
    newcomer = actor_lock(engine)
    assert newcomer.try_acquire() is True
    lock.release()
    newcomer.release()
    engine.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_a_database_in_memory_needs_no_lock(url: str) -> None:
    engine = make_engine(url)
    first, second = actor_lock(engine), actor_lock(engine)
    assert isinstance(first, NoLock)
    assert first.description == "no lock (a database in memory)"
    assert (first.try_acquire(), second.try_acquire()) == (True, True)
    assert first.still_held() is True
    first.release()
    assert first.still_held() is True
    engine.dispose()


# PostgreSQL


def _backend_pid_holding_the_lock(admin: Engine) -> int | None:
    with admin.connect() as connection:
        pid: int | None = connection.scalar(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1"
            ),
            {"high": (ADVISORY_KEY >> 32) & 0xFFFFFFFF, "low": ADVISORY_KEY & 0xFFFFFFFF},
        )
    return pid


def test_a_terminated_connection_loses_the_advisory_lock(postgres_database: str) -> None:
    holder_engine, other_engine = make_engine(postgres_database), make_engine(postgres_database)
    admin = make_engine(postgres_database, isolation_level="AUTOCOMMIT")
    try:
        holder, other = actor_lock(holder_engine), actor_lock(other_engine)
        assert holder.try_acquire() is True
        pid = _backend_pid_holding_the_lock(admin)
        assert pid is not None
        assert holder.still_held() is True

        with admin.connect() as connection:
            assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        assert _acquired_within(other, 10)  # the server released it with the session
        assert holder.still_held() is False
        holder.release()  # the connection is gone: nothing to give up, and no error
        assert holder.still_held() is False
        assert other.still_held() is True
        assert holder.try_acquire() is False  # a fresh connection, and the lock is taken

        other.release()
        assert _backend_pid_holding_the_lock(admin) is None
        assert holder.try_acquire() is True
        holder.release()
    finally:
        for engine in (holder_engine, other_engine, admin):
            engine.dispose()


def test_the_advisory_lock_is_per_database(
    postgres_database: str, request: pytest.FixtureRequest
) -> None:
    admin_url = request.config.getoption("--postgres-url")
    elsewhere = create_postgres_database(admin_url)
    here, there = make_engine(postgres_database), make_engine(elsewhere)
    try:
        mine, theirs = actor_lock(here), actor_lock(there)
        assert mine.try_acquire() is True
        assert theirs.try_acquire() is True  # another database on the same server
        assert actor_lock(here).try_acquire() is False
        mine.release()
        theirs.release()
    finally:
        here.dispose()
        there.dispose()
        drop_postgres_database(admin_url, elsewhere)
