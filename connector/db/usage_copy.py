"""New usage events into PostgreSQL by ``COPY``: the transaction ids into ``usage_event_ids``,
the events into ``usage_events`` (the server routes each to its month's partition), two
statements per batch, in the session's transaction.

An ``INSERT`` executemany costs the server a statement per row (psycopg 3 pipelines them, but
each is still planned, executed and answered alone); ``COPY`` streams the rows into one
statement. Rows go in binary, as psycopg would bind them: the values stored are those the ORM
types store (checked by a test): times as ``timestamptz`` (UTC), properties as the text of
``json.dumps`` (a ``json`` column keeps its text as given).

A transaction id another writer stored meanwhile fails the ``COPY`` as it would fail an
``INSERT``: the error is raised as SQLAlchemy's (an :class:`~sqlalchemy.exc.IntegrityError`
for a unique violation), so that the batch's caller tries it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

IDS = "COPY usage_event_ids (transaction_id, occurred_at) FROM STDIN (FORMAT BINARY)"
EVENTS = (
    "COPY usage_events (transaction_id, customer_id, metric, occurred_at, properties, "
    "received_at) FROM STDIN (FORMAT BINARY)"
)
ID_TYPES = ("text", "timestamptz")
# varchar and json are received as text is, in binary: json_recv takes the text of the JSON
EVENT_TYPES = ("text", "int4", "text", "timestamptz", "text", "timestamptz")
# An event to copy: transaction id, customer id, metric, time (UTC), properties.
Row = tuple[str, int, str, datetime, Any]


def copy_events(
    session: Session,
    rows: Sequence[Row],
    received_at: datetime,
    json_text: Callable[[Any], str],
) -> None:
    """COPY ``rows`` (in the order given: two writers lock the same ids in the same order)
    and their transaction ids, in the session's transaction; ``json_text`` turns properties
    into their JSON text."""
    if not rows:
        return
    raw: Any = session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        _copy(cursor, IDS, ID_TYPES, ((row[0], row[3]) for row in rows))
        _copy(
            cursor,
            EVENTS,
            EVENT_TYPES,
            (
                (tx, customer, metric, at, json_text(properties), received_at)
                for tx, customer, metric, at, properties in rows
            ),
        )


def _copy(
    cursor: psycopg.Cursor[Any], statement: str, types: Sequence[str], rows: Iterable[Any]
) -> None:
    """One COPY; the driver's error raised as SQLAlchemy would raise it."""
    try:
        with cursor.copy(statement) as copy:
            copy.set_types(types)
            write = copy.write_row
            for row in rows:
                write(row)
    except psycopg.Error as error:
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error
