"""Exact decimal arithmetic inside SQL statements, on both databases.

PostgreSQL keeps decimals as ``NUMERIC`` and adds them exactly. SQLite keeps them as text
(:class:`~connector.db.types.ExactDecimal`), and its own arithmetic would turn them into
binary floats: :func:`prepare` gives the connection ``exact_add``, ``exact_max`` (scalar),
``exact_sum`` and ``exact_largest`` (aggregate) functions that compute with
:class:`~decimal.Decimal`. Statements use :func:`add`, :func:`greatest` and :func:`total`,
which choose the database's way (``exact_sum`` and ``exact_largest`` serve a migration's raw
SQL). A total read back is not added up in SQL on SQLite: the database joins the group's
values as text (``group_concat``, no Python call per row), and the result adds them up.
"""

from __future__ import annotations

from decimal import Decimal
from functools import reduce
from operator import add as _plus
from typing import Any

from sqlalchemy import Dialect, Numeric, String, func, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator


def _add(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return b if a is None else a
    return str(Decimal(a) + Decimal(b))


def _max(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return b if a is None else a
    return a if Decimal(a) >= Decimal(b) else b


class _Sum:
    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total = Decimal(value) if self.total is None else self.total + Decimal(value)

    def finalize(self) -> str | None:
        return None if self.total is None else str(self.total)


class _Largest:
    def __init__(self) -> None:
        self.found: str | None = None

    def step(self, value: str | None) -> None:
        self.found = _max(self.found, value)

    def finalize(self) -> str | None:
        return self.found


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def prepare(session: Session) -> None:
    """Make the exact functions available to the session's connection (on SQLite)."""
    if is_sqlite(session):
        register(session.connection().connection.driver_connection)


def register(connection: Any) -> None:
    """Give a ``sqlite3`` connection the exact functions (a migration's, say)."""
    connection.create_function("exact_add", 2, _add, deterministic=True)
    connection.create_function("exact_max", 2, _max, deterministic=True)
    connection.create_aggregate("exact_sum", 1, _Sum)
    connection.create_aggregate("exact_largest", 1, _Largest)


def add(session: Session, a: Any, b: Any) -> ColumnElement[Any]:
    """``a + b``, where either may be NULL (then the other)."""
    if is_sqlite(session):
        return func.exact_add(a, b, type_=a.type)
    number = Numeric()
    return func.coalesce(type_coerce(a, number) + type_coerce(b, number), a, b)


def greatest(session: Session, a: Any, b: Any) -> ColumnElement[Any]:
    """The larger of ``a`` and ``b`` (NULLs ignored)."""
    if is_sqlite(session):
        return func.exact_max(a, b, type_=a.type)
    return func.greatest(a, b)


class _Joined(TypeDecorator[Decimal]):
    """The values of a group joined by commas (SQLite's ``group_concat``), read as their exact
    sum: added in the order the database met them, as ``exact_sum`` does, with one call per
    group instead of one per value (its cost, over the hundreds of thousands of daily
    aggregates a billing run adds up)."""

    impl = String
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return reduce(_plus, map(Decimal, str(value).split(",")))


def total(session: Session, column: Any) -> ColumnElement[Any]:
    """``SUM(column)`` read back, exactly (NULL when every value is). On SQLite the values are
    joined by the database and added up as the result is read: the expression is a result of
    the statement, not an operand of more SQL."""
    if is_sqlite(session):
        return func.group_concat(column, ",", type_=_Joined())
    return func.sum(column, type_=column.type)
