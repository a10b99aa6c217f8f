"""The values of a formula in SQL: their kinds, where they are computed, and the literals and
operators that combine them, with Salesforce's messages for what they refuse (see
:mod:`sandbox.salesforce.formula.sql`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Kinds of values, named as Salesforce's messages name them.
NUMBER, TEXT, PICKLIST, DATE, DATETIME, BOOLEAN, NULL = (
    "Number",
    "Text",
    "Picklist",
    "Date",
    "DateTime",
    "Boolean",
    "Null",
)
_DATETIME_FORMAT = "'%Y-%m-%dT%H:%M:%f+0000'"  # the stored form of a datetime (UTC)


@dataclass(frozen=True, slots=True)
class Env:
    """Where a formula is computed: ``column`` gives the SQL of one of the record's stored
    fields, ``today`` is the SQL literal of ``TODAY()``."""

    column: Callable[[str], str]
    today: str


Render = Callable[[Env], str]


@dataclass(frozen=True, slots=True)
class Expr:
    kind: str
    render: Render


def text_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class UntranslatableError(Exception):
    """Why a formula cannot be translated (FormulaError once its field is named)."""


def parameter_type(function: str, expected: str, received: str) -> UntranslatableError:
    return UntranslatableError(
        f"Incorrect parameter type for function '{function}()'. "
        f"Expected {expected}, received {received}"
    )


def operator_type(op: str, expected: str, received: str) -> UntranslatableError:
    return UntranslatableError(
        f"Incorrect parameter type for operator '{op}'. Expected {expected}, received {received}"
    )


def literal(value: object) -> Expr:
    if value is None:
        return Expr(NULL, lambda env: "NULL")
    if isinstance(value, bool):
        sql = "1" if value else "0"
        return Expr(BOOLEAN, lambda env: sql)
    if isinstance(value, str):
        sql = text_literal(value)
        return Expr(TEXT, lambda env: sql)
    sql = str(value)
    return Expr(NUMBER, lambda env: sql)


def same(function: str, first: Expr, second: Expr) -> str:
    """The kind of a value that is one of ``first`` and ``second``."""
    if first.kind == NULL:
        return second.kind
    if second.kind in (NULL, first.kind):
        return first.kind
    raise parameter_type(function, first.kind, second.kind)


def comparison(op: str, left: Expr, right: Expr) -> Expr:
    if NULL in (left.kind, right.kind):
        if op not in ("=", "!="):
            raise operator_type(op, "a value", NULL)
        other = right if left.kind == NULL else left
        test = "IS NOT NULL" if op == "!=" else "IS NULL"
        return Expr(BOOLEAN, lambda env: f"({other.render(env)} {test})")
    if left.kind != right.kind:
        raise operator_type(op, left.kind, right.kind)
    if left.kind == BOOLEAN and op not in ("=", "!="):
        raise operator_type(op, f"{NUMBER}, {TEXT}, {DATE}, {DATETIME}", BOOLEAN)
    collate = " COLLATE BINARY" if left.kind == TEXT else ""
    return Expr(
        BOOLEAN,
        lambda env: f"COALESCE({left.render(env)} {op} {right.render(env)}{collate}, 0)",
    )


def _julian(expr: Expr, env: Env) -> str:
    """The Julian day of a date or a stored datetime (``2024-01-31T10:00:00.000+0000``)."""
    sql = expr.render(env)
    return f"julianday(substr({sql}, 1, 23))" if expr.kind == DATETIME else f"julianday({sql})"


def arithmetic(op: str, left: Expr, right: Expr) -> Expr:
    kinds = (left.kind, right.kind)
    if kinds == (NUMBER, NUMBER):
        if op == "/":
            return Expr(
                NUMBER, lambda env: f"(CAST({left.render(env)} AS REAL) / {right.render(env)})"
            )
        return Expr(NUMBER, lambda env: f"({left.render(env)} {op} {right.render(env)})")
    if op == "+" and kinds in ((NUMBER, DATE), (NUMBER, DATETIME)):
        left, right = right, left
        kinds = (left.kind, right.kind)
    if op in ("+", "-") and kinds in ((DATE, NUMBER), (DATETIME, NUMBER)):
        moment = left
        if moment.kind == DATE:
            return Expr(
                DATE, lambda env: f"date({_julian(moment, env)} {op} ({right.render(env)}))"
            )
        return Expr(
            DATETIME,
            lambda env: (
                f"strftime({_DATETIME_FORMAT}, {_julian(moment, env)} {op} ({right.render(env)}))"
            ),
        )
    if op == "-" and kinds in ((DATE, DATE), (DATETIME, DATETIME)):
        return Expr(NUMBER, lambda env: f"({_julian(left, env)} - {_julian(right, env)})")
    if op in ("*", "/"):
        raise operator_type(op, NUMBER, (left if left.kind != NUMBER else right).kind)
    if left.kind in (DATE, DATETIME):
        expected = NUMBER if op == "+" else f"{NUMBER}, {left.kind}"
        raise operator_type(op, expected, right.kind)
    if left.kind == NUMBER:
        expected = f"{NUMBER}, {DATE}, {DATETIME}" if op == "+" else NUMBER
        raise operator_type(op, expected, right.kind)
    raise operator_type(op, f"{NUMBER}, {DATE}, {DATETIME}", left.kind)
