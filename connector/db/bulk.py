"""Set-based writes: a fast multi-row INSERT for hot paths, and an upsert of many rows.

SQLAlchemy's executemany spends most of its time building parameters row by row; the billing run
writes four rows or more per invoice, so it hands plain tuples to the driver's executemany
instead. Values are stored exactly as the ORM types store them (checked by a test): on SQLite,
decimals as text, dates as ISO text, datetimes in UTC as ``YYYY-MM-DD HH:MM:SS.ffffff``; on
PostgreSQL, psycopg adapts them natively. JSON values go through the dialect's own serializer.

:func:`upsert` writes rows that may already exist (bookkeeping keyed on its primary key) in one
``INSERT … ON CONFLICT DO UPDATE`` executemany, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Dialect, Insert, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from connector.db.types import ExactDecimal, UTCDateTime


@lru_cache(maxsize=64)  # a batch stamps its rows with one moment
def _utc_text(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_converter(column_type: TypeEngine[Any]) -> Callable[[Any], Any] | None:
    """How SQLite stores a column's values (None: as they are)."""
    if isinstance(column_type, ExactDecimal):
        return str
    if isinstance(column_type, UTCDateTime):
        return _utc_text
    if isinstance(column_type, Date):
        return date.isoformat
    if isinstance(column_type, Boolean):
        return int
    return None


def _json_converter(column_type: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """How the dialect sends a JSON column's values (None: not a JSON column)."""
    if not isinstance(column_type, JSON):
        return None
    return column_type.dialect_impl(dialect).bind_processor(dialect)


def _sqlite_rows(
    table: Table, order: Sequence[str], rows: Sequence[Mapping[str, Any]], dialect: Dialect
) -> list[tuple[Any, ...]]:
    values_of = itemgetter(*order)
    converters = [
        None
        if name not in table.c
        else _json_converter(table.c[name].type, dialect) or _sqlite_converter(table.c[name].type)
        for name in order
    ]
    if len(order) == 1:
        return (
            [(row[order[0]],) for row in rows]
            if converters[0] is None
            else [(converters[0](row[order[0]]),) for row in rows]
        )
    return [
        tuple(
            [
                value if convert is None or value is None else convert(value)
                for value, convert in zip(values_of(row), converters, strict=True)
            ]
        )
        for row in rows
    ]


def _execute_many(
    session: Session, table: Table, statement: Insert, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Send ``statement`` once for all ``rows`` (dicts with the same keys), their values
    converted as the ORM would store them, as one executemany of the driver."""
    columns = list(rows[0])
    connection = session.connection()
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, column_keys=columns)
    # Values the statement holds itself (a literal in an ON CONFLICT clause), as stored.
    fixed = {}
    for name, value in compiled.params.items():
        if name in table.c and name not in rows[0]:
            raise ValueError(f"{table.name}.{name} is not given (its default is not applied)")
        if name not in rows[0]:
            convert = (
                _sqlite_converter(compiled.binds[name].type) if dialect.name == "sqlite" else None
            )
            fixed[name] = value if convert is None or value is None else convert(value)
    if fixed:
        rows = [{**fixed, **row} for row in rows]
    if compiled.positiontup is not None:  # SQLite: qmark placeholders, in this order
        values: list[Any] = _sqlite_rows(table, compiled.positiontup, rows, dialect)
    else:  # psycopg: named placeholders; it adapts decimals and dates itself
        values = [dict(row) for row in rows]
        for name in columns:
            convert = _json_converter(table.c[name].type, dialect)
            if convert is not None:
                for row in values:
                    row[name] = convert(row[name])
    connection.exec_driver_sql(compiled.string, values)


def bulk_insert(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, every column given) into ``table``."""
    if rows:
        _execute_many(session, table, insert(table), rows)


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    changes: Sequence[str] | Callable[[Any], Mapping[str, Any]],
) -> None:
    """Insert ``rows`` (dicts with the same keys, every column given but the primary key when
    the database makes it; each ``keys`` once at most), and where a row with the same ``keys``
    exists, update it instead: with the new row's value of each column named in ``changes``,
    or with what ``changes(excluded)`` maps columns to (``excluded`` is the row that was
    refused; the table's columns are the stored row). Python-side ``onupdate`` defaults are not
    applied: give them in ``changes``."""
    if not rows:
        return
    dialect = session.connection().dialect.name
    statement = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)
    excluded = statement.excluded
    set_ = (
        dict(changes(excluded)) if callable(changes) else {name: excluded[name] for name in changes}
    )
    _execute_many(
        session, table, statement.on_conflict_do_update(index_elements=list(keys), set_=set_), rows
    )
