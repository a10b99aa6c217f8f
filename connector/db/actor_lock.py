"""One active scheduler per database.

``connector run`` acts only while it holds this lock; a second instance on the same database
stands by and tries again every few seconds. A one-off cycle or stage (``connector sync --once``,
``pull``, ``bill``, ``revenue close``, ``push``) takes it too, and stops at once when it is
held (:func:`acting_alone`). The lock dies with its holder, however it dies
(exit, crash, SIGKILL), so a standby takes over without anyone cleaning up:

- PostgreSQL: a session advisory lock, held by one dedicated connection (in autocommit, so it
  never sits idle in a transaction). The server releases it when that connection closes.
- SQLite: an exclusive ``flock`` on ``<database>.lock`` beside the database file. The kernel
  releases it when the process's file descriptor closes.
- SQLite in memory: nothing to share, so nothing to lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from connector.errors import InstanceActiveError, StorageError

LOCK_NAME = "connector.scheduler"
# Advisory locks are keyed by a bigint: a stable one derived from the name.
ADVISORY_KEY = int.from_bytes(hashlib.sha256(LOCK_NAME.encode()).digest()[:8], "big", signed=True)


class ActorLock(Protocol):
    description: str

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this process now holds it."""

    def still_held(self) -> bool:
        """True while the lock is certainly ours (the connection or file is still there)."""

    def release(self) -> None:
        """Give the lock up (safe to call when not held)."""


class PostgresLock:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.description = f"PostgreSQL advisory lock {ADVISORY_KEY} on {engine.url.database}"
        self._connection: Connection | None = None

    def try_acquire(self) -> bool:
        if self._connection is not None:
            return True
        try:
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as error:
            raise StorageError(
                f"cannot reach the database for the scheduler lock: {error}"
            ) from None
        try:
            taken = connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}
            )
        except SQLAlchemyError as error:
            connection.close()
            raise StorageError(f"cannot take the scheduler lock: {error}") from None
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def still_held(self) -> bool:
        if self._connection is None:
            return False
        try:
            held = self._connection.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid()"
                    " AND classid::bigint = :high AND objid::bigint = :low"
                ),
                {"high": (ADVISORY_KEY >> 32) & 0xFFFFFFFF, "low": ADVISORY_KEY & 0xFFFFFFFF},
            )
        except SQLAlchemyError:
            self._drop()
            return False
        return bool(held)

    def release(self) -> None:
        if self._connection is None:
            return
        with contextlib.suppress(SQLAlchemyError):  # gone: the lock went with the connection
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
        self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except SQLAlchemyError:
                connection.invalidate()


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"file lock {path}"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def still_held(self) -> bool:
        if self._fd is None:
            return False
        try:  # the file must still be the one we locked (not removed and made anew)
            return os.fstat(self._fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class NoLock:
    """A database in memory belongs to one process: there is no one to share it with."""

    description = "no lock (a database in memory)"

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        return None


def actor_lock(engine: Engine) -> ActorLock:
    """The lock that makes one scheduler active on ``engine``'s database."""
    backend = engine.url.get_backend_name()
    if backend == "postgresql":
        return PostgresLock(engine)
    database = engine.url.database
    if backend == "sqlite":
        if not database or database == ":memory:" or database.startswith("file:"):
            return NoLock()
        path = Path(database).expanduser().resolve()
        return FileLock(path.with_name(path.name + ".lock"))
    raise StorageError(f"no scheduler lock for {backend} databases (use PostgreSQL or SQLite)")


@contextlib.contextmanager
def acting_alone(engine: Engine) -> Iterator[ActorLock]:
    """Hold ``engine``'s actor lock while the block runs (a one-off cycle or stage acts on the
    database as ``connector run`` does: alone); raise :class:`InstanceActiveError` at once,
    having done nothing, when another instance holds it."""
    lock = actor_lock(engine)
    if not lock.try_acquire():
        raise InstanceActiveError(
            f"another instance of the connector is active on this database (it holds the "
            f"{lock.description}): nothing was done; run this again once it has finished"
        )
    try:
        yield lock
    finally:
        lock.release()
