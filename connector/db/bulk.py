"""Set-based writes: many rows in one statement, with primary keys reserved beforehand.

SQLAlchemy's executemany spends most of its time building parameters row by row; the billing run
writes four rows or more per invoice and the pull five per deal, so they hand plain tuples to
the driver's executemany instead (one statement for the whole batch). Values are stored exactly
as the ORM types store them (checked by a test): on SQLite, decimals as text, dates as ISO text,
datetimes in UTC as ``YYYY-MM-DD HH:MM:SS.ffffff``, JSON as its text; on PostgreSQL, psycopg
adapts them natively (JSON goes as its text, cast by the statement).

:func:`upsert` writes rows that may already exist (bookkeeping keyed on its primary key or a
unique constraint) in one ``INSERT … ON CONFLICT DO UPDATE`` executemany, on SQLite and
PostgreSQL alike. With ``as_one=True`` PostgreSQL gets the rows as one JSON array instead, read
by one ``INSERT … SELECT`` (each value cast from the text psycopg would have sent: the values
stored are the same): an executemany there is still a statement executed per row, and psycopg
binds each row's parameters in Python.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    String,
    Table,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.types import TypeEngine

from connector.db.types import ExactDecimal, UTCDateTime

KEY, VALUE = "k_", "v_"  # bound names of an UPDATE's keys and values


@lru_cache(maxsize=64)  # a batch stamps its rows with one moment
def _utc_text(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _json_text(value: Any) -> str:
    return json.dumps(value)


def _converter(dialect: str, column_type: TypeEngine[Any]) -> Callable[[Any], Any] | None:
    """How a column's values are handed to the driver (None: as they are)."""
    if isinstance(column_type, JSON):
        return _json_text
    if dialect != "sqlite":
        return None
    if isinstance(column_type, ExactDecimal):
        return str
    if isinstance(column_type, UTCDateTime):
        return _utc_text
    if isinstance(column_type, Date):
        return date.isoformat
    if isinstance(column_type, Boolean):
        return int
    return None


def _column(name: str) -> str:
    """The column a bound name stands for (an UPDATE binds ``k_id``, ``v_revision``)."""
    for prefix in (KEY, VALUE):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def execute_many(
    session: Session, statement: ClauseElement, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run ``statement`` once for each of ``rows`` (dicts by bound name), as one executemany."""
    connection = session.connection()
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(rows[0]))
    assert isinstance(compiled, SQLCompiler)
    if compiled.positiontup is not None:  # SQLite: qmark placeholders, in this order
        order = list(compiled.positiontup)
    else:  # psycopg: named placeholders
        order = list(compiled.params)
    # Values the statement holds itself (a literal in an ON CONFLICT clause), as stored.
    fixed: dict[str, Any] = {}
    for name in order:
        if name in rows[0]:
            continue
        if _column(name) in table.c:
            raise ValueError(f"{table.name}.{_column(name)} is not given (no default is applied)")
        value = compiled.params[name]
        convert = _converter(dialect.name, compiled.binds[name].type)
        fixed[name] = value if convert is None or value is None else convert(value)
    # Column by column (one conversion function over a column is much cheaper than a
    # zip of converters over each row), then zipped into the rows the driver takes.
    columns: list[Iterable[Any]] = []
    for name in order:
        if name in fixed:
            columns.append(itertools.repeat(fixed[name], len(rows)))
            continue
        found = list(map(itemgetter(name), rows))
        convert = _converter(dialect.name, table.c[_column(name)].type)
        if convert is not None:
            found = [value if value is None else convert(value) for value in found]
        columns.append(found)
    tuples = list(zip(*columns, strict=True))
    values: list[Any] = (
        tuples
        if compiled.positiontup is not None
        else [dict(zip(order, found, strict=True)) for found in tuples]
    )
    connection.exec_driver_sql(compiled.string, values)


def bulk_insert(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, every column with a default given) into
    ``table``."""
    if rows:
        execute_many(session, insert(table).inline(), table, rows)


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    changes: Sequence[str] | Callable[[Any], Mapping[str, Any]],
    *,
    as_one: bool = False,
) -> None:
    """Insert ``rows`` (dicts with the same keys, every column given but the primary key when
    the database makes it; each ``keys`` once at most), and where a row with the same ``keys``
    exists, update it instead: with the new row's value of each column named in ``changes``,
    or with what ``changes(excluded)`` maps columns to (``excluded`` is the row that was
    refused; the table's columns are the stored row). Python-side ``onupdate`` defaults are not
    applied: give them in ``changes``. ``as_one``: one statement on PostgreSQL (no JSON
    column), rows inserted in their order."""
    if not rows:
        return
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(table).inline()
    excluded = statement.excluded
    set_ = (
        dict(changes(excluded)) if callable(changes) else {name: excluded[name] for name in changes}
    )
    if as_one and dialect is postgresql:
        session.execute(
            _from_json(statement, table, rows).on_conflict_do_update(
                index_elements=list(keys), set_=set_
            )
        )
        return
    execute_many(
        session,
        statement.on_conflict_do_update(index_elements=list(keys), set_=set_),
        table,
        rows,
    )


def _json_value(value: Any) -> Any:
    """A value as JSON holds it: the text psycopg would send for it, when JSON has no such
    type (a decimal's digits as given, a datetime in ISO 8601 with its offset)."""
    kind = type(value)
    if kind is Decimal:
        return str(value)
    if kind is datetime:
        if value.tzinfo is None:
            raise ValueError(f"datetime {value} has no timezone")
        return value.astimezone(UTC).isoformat()
    if kind is date:
        return value.isoformat()
    return value


def _from_json(statement: Any, table: Table, rows: Sequence[Mapping[str, Any]]) -> Any:
    """``statement`` (an INSERT into ``table``) taking ``rows`` from one JSON array of arrays,
    each value cast to its column's type (texts are taken as they are: a VARCHAR cast would
    cut a text too long instead of refusing it)."""
    names = list(rows[0])
    for name in names:
        if isinstance(table.c[name].type, JSON):
            raise ValueError(f"{table.name}.{name} is JSON: insert it with execute_many")
    array = [[_json_value(row[name]) for name in names] for row in rows]
    element = func.json_array_elements(bindparam("rows", array, type_=JSON)).table_valued("value")
    values = []
    for index, name in enumerate(names):
        found = element.c.value.op("->>")(literal_column(str(index)))
        column_type = table.c[name].type
        values.append(found if isinstance(column_type, String) else cast(found, column_type))
    return statement.from_select(names, select(*values).select_from(element))


def bulk_upsert(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    insert_only: Sequence[str] = (),
) -> None:
    """Insert ``rows``, or update the row with the same ``keys`` (a unique constraint) with
    every other value but ``insert_only``'s."""
    if rows:
        kept = set(keys) | set(insert_only)
        upsert(session, table, rows, keys, [name for name in rows[0] if name not in kept])


def bulk_update(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], *, keys: Sequence[str]
) -> None:
    """Set the values of ``rows`` (dicts with the same keys) on the rows they name by ``keys``."""
    if not rows:
        return
    statement = (
        sql_update(table)
        .where(and_(*(table.c[name] == bindparam(KEY + name) for name in keys)))
        .values({name: bindparam(VALUE + name) for name in rows[0] if name not in keys})
    )
    bound = [
        {(KEY if name in keys else VALUE) + name: value for name, value in row.items()}
        for row in rows
    ]
    execute_many(session, statement, table, bound)


def bulk_delete(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Delete the rows named by the values of ``rows`` (dicts with the same keys)."""
    if not rows:
        return
    statement = delete(table).where(
        and_(*(table.c[name] == bindparam(KEY + name) for name in rows[0]))
    )
    bound = [{KEY + name: value for name, value in row.items()} for row in rows]
    execute_many(session, statement, table, bound)


def reserve_ids(session: Session, table: Table, count: int) -> list[int]:
    """``count`` new primary keys for ``table`` (see :func:`reserve_many`)."""
    return reserve_many(session, {table: count}).get(table, [])


def reserve_many(session: Session, counts: Mapping[Table, int]) -> dict[Table, list[int]]:
    """New primary keys for several tables in one statement, so that rows (and rows that refer
    to them) can be inserted in one fast executemany without asking the database for each id
    back. SQLite runs one writer at a time (transactions begin IMMEDIATE), so the next ids
    follow the largest; PostgreSQL takes them from each table's sequence."""
    wanted = [(table, count) for table, count in counts.items() if count > 0]
    if not wanted:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        parts = [
            select(
                literal(index),
                func.nextval(func.pg_get_serial_sequence(table.name, "id")),
            ).select_from(func.generate_series(1, count))
            for index, (table, count) in enumerate(wanted)
        ]
        found: dict[Table, list[int]] = {table: [] for table, _ in wanted}
        for index, value in session.execute(union_all(*parts)):
            found[wanted[index][0]].append(value)
        return {table: sorted(ids) for table, ids in found.items()}
    last = session.execute(
        select(
            *(
                select(func.coalesce(func.max(table.c.id), 0)).scalar_subquery()
                for table, _ in wanted
            )
        )
    ).one()
    return {
        table: list(range(top + 1, top + 1 + count))
        for (table, count), top in zip(wanted, last, strict=True)
    }


def insert_new(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    *,
    as_one: bool = False,
) -> None:
    """Insert those of ``rows`` whose ``keys`` (a unique constraint) no stored row has yet
    (``as_one``: as :func:`upsert`'s)."""
    if not rows:
        return
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(table).inline()
    if as_one and dialect is postgresql:
        found = _from_json(statement, table, rows)
        session.execute(found.on_conflict_do_nothing(index_elements=list(keys)))
        return
    execute_many(session, statement.on_conflict_do_nothing(index_elements=list(keys)), table, rows)
