"""What a database's refusal means to the person who ran the command.

SQLAlchemy wraps what the driver says (``sqlite3.OperationalError: database is locked``,
``psycopg.OperationalError: connection failed: ...``) in an exception whose traceback means
nothing to a user. :func:`database_failure` turns the refusals that come from the database's
surroundings, not from a bug, into one of our errors naming the database and the cause:

- a :class:`~connector.errors.ConfigError` when the database cannot be reached or opened (a
  server that does not answer, a database that does not exist, a login refused, a SQLite file
  that cannot be opened): the settings must change;
- a :class:`DatabaseRefusedError` when it refused at run time: locked by another connection
  past the lock timeout, read-only, its disk full, or a file that is not a database.

Anything else (a constraint, malformed SQL) is a bug and is left as it is.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError, SQLAlchemyError

from connector.errors import ConfigError, ConnectorError, StorageError

# SQLite primary result codes (https://sqlite.org/rescode.html)
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY = 3, 5, 6, 8
SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN = 10, 11, 13, 14
SQLITE_AUTH, SQLITE_NOTADB = 23, 26

# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html)
PG_LOCKED = {"55P03", "40P01"}  # lock_not_available, deadlock_detected
PG_READ_ONLY = {"25006"}  # read_only_sql_transaction (a standby, or default_transaction_read_only)
PG_FULL = {"53100", "53200", "53400"}  # disk_full, out_of_memory, configuration_limit_exceeded
PG_CANNOT_CONNECT_CLASSES = ("08", "28", "3D")  # connection, authorization, catalog (no database)


class DatabaseRefusedError(StorageError):
    """The database refused at run time for a reason outside the connector (locked, read-only,
    disk full, not a database): the message says which and where."""


def database_failure(
    error: SQLAlchemyError, database: str, *, lock_timeout: float
) -> ConnectorError | None:
    """Our error for ``error`` raised by ``database`` (a URL with its password masked), or None
    when it is not a refusal of the database's surroundings."""
    if not isinstance(error, DBAPIError) or isinstance(error, IntegrityError | ProgrammingError):
        return None
    driver = error.orig
    said = " ".join(str(driver).split()) if driver is not None else str(error)
    code = getattr(driver, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _sqlite_failure(code & 0xFF, said, database, lock_timeout)
    state = getattr(driver, "sqlstate", None)
    never_connected = state is None and error.statement is None
    if never_connected or str(state or "").startswith(PG_CANNOT_CONNECT_CLASSES):
        return ConfigError(f"cannot connect to the database {database}: {said}")
    if state in PG_LOCKED:
        return DatabaseRefusedError(f"the database {database} is locked: {said}")
    if state in PG_READ_ONLY:
        return DatabaseRefusedError(f"the database {database} is read-only: {said}")
    if state in PG_FULL:
        return DatabaseRefusedError(f"the database {database} is out of room: {said}")
    if error.connection_invalidated:
        return DatabaseRefusedError(f"the connection to the database {database} was lost: {said}")
    return None


def _sqlite_failure(
    code: int, said: str, database: str, lock_timeout: float
) -> ConnectorError | None:
    if code in (SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_AUTH):
        return ConfigError(f"cannot open the database {database}: {said}")
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return DatabaseRefusedError(
            f"the database {database} is locked by another connection or process: gave up "
            f"after waiting {lock_timeout:g} s (database_lock_timeout_seconds); try again "
            "once it is done"
        )
    if code == SQLITE_READONLY:
        return DatabaseRefusedError(
            f"the database {database} is read-only ({said}): the user running the connector "
            "needs write access to the file and to its directory"
        )
    if code == SQLITE_FULL:
        return DatabaseRefusedError(
            f"the database {database} cannot grow: the disk is full ({said}); nothing of this "
            "transaction was kept"
        )
    if code == SQLITE_IOERR:
        return DatabaseRefusedError(
            f"the database {database} could not be written or read ({said}): the disk may be "
            "full, or a file size limit reached; nothing of this transaction was kept"
        )
    if code in (SQLITE_NOTADB, SQLITE_CORRUPT):
        return DatabaseRefusedError(
            f"{database} is not a usable SQLite database ({said}): check database_url "
            "(CONNECTOR_DATABASE_URL), or restore the file from a backup"
        )
    return None
