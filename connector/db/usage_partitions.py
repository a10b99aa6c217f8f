"""Monthly partitions of ``usage_events`` on PostgreSQL, made as events of a new month arrive.

The table is partitioned by RANGE on ``occurred_at``: ``usage_events_YYYY_MM`` holds the events
of one UTC month, ``usage_events_default`` any other. :func:`ensure` makes the partitions a
batch needs before it is stored, in a short transaction of its own, under an advisory lock, with
``CREATE TABLE IF NOT EXISTS``: two writers meeting a new month make it once. When the lock or
the parent table cannot be had at once (a long transaction holds it), nothing waits: the
events go to the default partition, and the month's partition, when it is made later, takes
them out of it. Nothing is ever refused for lack of a partition.

SQLite keeps a plain table: :func:`ensure` does nothing there.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)
TABLE = "usage_events"
DEFAULT = f"{TABLE}_default"
LOCK = 0x75736167  # the advisory lock of partition making ("usag")
LOCK_TIMEOUT = "2s"
Month = tuple[int, int]  # year, month

_made: weakref.WeakKeyDictionary[Engine, set[Month]] = weakref.WeakKeyDictionary()


def month_of(at: datetime) -> Month:
    return (at.year, at.month) if at.tzinfo in (None, UTC) else month_of(at.astimezone(UTC))


def name_of(month: Month) -> str:
    return f"{TABLE}_{month[0]:04d}_{month[1]:02d}"


def bounds_of(month: Month) -> tuple[str, str]:
    """The first moment of the month and of the next, as PostgreSQL literals (UTC)."""
    year, number = month
    after = (year + 1, 1) if number == 12 else (year, number + 1)
    return (
        f"{year:04d}-{number:02d}-01 00:00:00+00",
        f"{after[0]:04d}-{after[1]:02d}-01 00:00:00+00",
    )


def is_partition(name: str | None) -> bool:
    """Whether a table name is one of a usage events partition's (not a table of the models)."""
    if name is None or not name.startswith(TABLE + "_"):
        return False
    tail = name[len(TABLE) + 1 :]
    return name == DEFAULT or (
        len(tail) == 7 and tail[4] == "_" and tail.replace("_", "").isdigit()
    )


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name``: the partitions are part of ``usage_events``, not tables of
    their own to compare with the models."""
    return not (type_ == "table" and is_partition(name))


def existing(connection: Connection) -> set[Month]:
    """The months that have a partition."""
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:parent)"
        ),
        {"parent": TABLE},
    ).scalars()
    found: set[Month] = set()
    for name in rows:
        if is_partition(name) and name != DEFAULT:
            found.add((int(name[-7:-3]), int(name[-2:])))
    return found


def create(connection: Connection, month: Month) -> None:
    """Make ``month``'s partition (if it is not there), taking its events out of the default
    partition: a partition cannot be attached while the default one holds rows of its range."""
    name = name_of(month)
    start, end = bounds_of(month)
    stray = connection.execute(
        text(f"SELECT 1 FROM {DEFAULT} WHERE occurred_at >= :start AND occurred_at < :end LIMIT 1"),  # noqa: S608 - fixed names
        {"start": start, "end": end},
    ).first()
    if stray is None:
        connection.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {TABLE} "
                f"FOR VALUES FROM ('{start}') TO ('{end}')"
            )
        )
        return
    connection.execute(
        text(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    connection.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT} WHERE occurred_at >= :start "  # noqa: S608 - fixed names
            f"AND occurred_at < :end RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        ),
        {"start": start, "end": end},
    )
    connection.execute(
        text(
            f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ('{start}') TO ('{end}')"
        )
    )


def create_all(connection: Connection, months: Iterable[Month]) -> None:
    """Make the partitions of ``months`` that are missing, in the connection's transaction,
    under the advisory lock (held until it ends)."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK})
    have = existing(connection)
    for month in sorted(set(months) - have):
        create(connection, month)


def ensure(engine: Engine, times: Iterable[datetime]) -> None:
    """Make the monthly partitions the events at ``times`` go to (PostgreSQL), in a transaction
    of its own; when it cannot be done at once, the default partition takes them meanwhile."""
    if engine.dialect.name != "postgresql":
        return
    made = _made.setdefault(engine, set())
    months = {month_of(at) for at in times} - made
    if not months:
        return
    try:
        with engine.begin() as connection:
            have = existing(connection)
            if months - have:
                connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                create_all(connection, months)
                have = existing(connection)
    except OperationalError as error:  # the lock was held too long: the default takes them
        log.warning("usage event partitions not made now (%s)", error.orig)
        return
    made.update(months & have)
