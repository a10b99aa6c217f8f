"""Parse SOQL text into the AST of :mod:`sandbox.salesforce.soql.ast`.

``parse`` accepts the SOQL that data connectors send (see grammar.lark) and raises
:class:`SoqlError`, whose message the sandbox returns with errorCode MALFORMED_QUERY, for
syntax errors, malformed literals and constructs the sandbox does not support.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from importlib.resources import files
from typing import Any, cast

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from connector.errors import ConnectorError
from sandbox.salesforce.soql import ast, dates

_UNSUPPORTED = "is not supported by the sandbox"


class SoqlError(ConnectorError):
    """The query is malformed or uses SOQL the sandbox does not support (MALFORMED_QUERY)."""


@lru_cache(maxsize=512)
def parse(text: str) -> ast.Query:
    """Parse one SOQL query; raise SoqlError with a client-facing message if it is not valid.

    Connectors repeat their queries, and the AST is immutable, so results are cached.
    """
    try:
        return cast(ast.Query, _PARSER.parse(text))
    except UnexpectedToken as error:
        token = error.token
        if token.type == "$END":
            line, column = token.end_line or 1, token.end_column or 1
            raise SoqlError(f"unexpected token: <EOF> at Row:{line}:Column:{column}") from error
        where = f"Row:{token.line}:Column:{token.column}"
        raise SoqlError(f"unexpected token: '{token}' at {where}") from error
    except UnexpectedCharacters as error:
        where = f"Row:{error.line}:Column:{error.column}"
        if error.char == "'":
            raise SoqlError(f"unterminated string literal at {where}") from error
        raise SoqlError(f"unexpected token: '{error.char}' at {where}") from error
    except UnexpectedInput as error:  # pragma: no cover - LALR raises only the two above
        raise SoqlError(f"malformed query at Row:{error.line}:Column:{error.column}") from error


# ---- literals ---------------------------------------------------------------------------

# LIKE's wildcards stay escaped (\% and \_): the compiler must tell them from % and _.
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_ESCAPES |= {"%": "\\%", "_": "\\_"}

_DATETIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:Z|([+-])(\d\d):?(\d\d))",
    re.ASCII,
)


def _string(token: Token) -> str:
    body = token[1:-1]
    if "\\" not in body:
        return body
    parts: list[str] = []
    start = 0
    while (slash := body.find("\\", start)) >= 0:
        parts.append(body[start:slash])
        char = body[slash + 1]  # the grammar guarantees a character after a backslash
        if char not in _ESCAPES:
            raise SoqlError(
                f"Invalid string literal {token}. "
                f"Illegal character sequence '\\{char}' in string literal."
            )
        parts.append(_ESCAPES[char])
        start = slash + 2
    parts.append(body[start:])
    return "".join(parts)


def _number(token: Token) -> int | Decimal:
    return Decimal(token) if "." in token else int(token)


def _date(token: Token) -> date:
    try:
        return date.fromisoformat(token)
    except ValueError:
        raise SoqlError(f"invalid date literal: {token}") from None


def _datetime(token: Token) -> datetime:
    match = _DATETIME.fullmatch(token)
    if match is None:
        raise SoqlError(f"invalid datetime literal: {token}")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    offset = timedelta(hours=int(off_h), minutes=int(off_m)) if sign else timedelta()
    try:
        if offset >= timedelta(hours=24) or (sign and int(off_m) >= 60):
            raise ValueError(token)
        zone = timezone(-offset if sign == "-" else offset)
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, zone
        )
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise SoqlError(f"invalid datetime literal: {token}") from None


def _relative_date(token: Token) -> ast.RelativeDate:
    name, colon, number = token.partition(":")
    name = name.upper()
    text = f"{name}{colon}{number}"
    if name in dates.FISCAL_NAMES:
        raise SoqlError(f"fiscal date literal {text} {_UNSUPPORTED}")
    if colon and name in dates.NAMES_WITH_N:
        return ast.RelativeDate(name, int(number))
    if not colon and name in dates.NAMES:
        return ast.RelativeDate(name)
    if name in dates.NAMES_WITH_N:
        raise SoqlError(f"date literal {name} needs a number: {name}:n")
    if name in dates.NAMES:
        raise SoqlError(f"date literal {name} takes no number: {text}")
    raise SoqlError(f"unknown date literal: {token}")


_LITERALS: dict[str, Callable[[Token], ast.Value]] = {
    "STRING": _string,
    "NUMBER": _number,
    "DATE": _date,
    "DATETIME": _datetime,
    "TRUE": lambda _: True,
    "FALSE": lambda _: False,
    "NULL": lambda _: None,
    "NAME": _relative_date,
    "DATE_N": _relative_date,
}


def _literal(token: Token) -> ast.Value:
    return _LITERALS[token.type](token)


def _non_negative(token: Token, clause: str) -> int:
    if not token.isdigit():
        raise SoqlError(f"{clause} must be a non-negative integer, not {token}")
    return int(token)


# ---- functions --------------------------------------------------------------------------

_AGGREGATES = frozenset({"SUM", "AVG", "MIN", "MAX", "COUNT_DISTINCT"})
_DATE_FUNCTIONS = frozenset(
    {"CALENDAR_MONTH", "CALENDAR_QUARTER", "CALENDAR_YEAR", "DAY_ONLY", "HOUR_IN_DAY"}
    | {"DAY_IN_MONTH", "DAY_IN_WEEK", "DAY_IN_YEAR", "WEEK_IN_MONTH", "WEEK_IN_YEAR"}
    | {"FISCAL_MONTH", "FISCAL_QUARTER", "FISCAL_YEAR"}
)
#: Other functions Salesforce has, spelled as its documentation does.
_FUNCTIONS = {f.upper(): f for f in ("toLabel", "convertCurrency", "convertTimezone", "FORMAT")}
#: WITH clauses spelled in full and upper case (others keep the client's spelling).
_WITH = {"DATA": "DATA CATEGORY", "SECURITY_ENFORCED": "SECURITY_ENFORCED"}
_WITH |= {"USER_MODE": "USER_MODE", "SYSTEM_MODE": "SYSTEM_MODE"}


def _call(name: str, args: list[Any]) -> ast.Count:
    """``COUNT()`` or ``COUNT(field)``; any other function is not supported."""
    upper = name.upper()
    if upper == "COUNT":
        if not args:
            return ast.Count()
        if len(args) == 1 and isinstance(args[0], ast.FieldRef):
            return ast.Count(args[0])
        raise SoqlError("COUNT takes at most one field: COUNT() or COUNT(field)")
    if upper == "FIELDS":
        inner = args[0].text.upper() if len(args) == 1 and isinstance(args[0], ast.FieldRef) else ""
        raise SoqlError(f"FIELDS({inner}) {_UNSUPPORTED}")
    if upper in _AGGREGATES:
        raise SoqlError(f"aggregate function {upper}() {_UNSUPPORTED}")
    if upper in _DATE_FUNCTIONS:
        raise SoqlError(f"date function {upper}() {_UNSUPPORTED}")
    raise SoqlError(f"function {_FUNCTIONS.get(upper, name)}() {_UNSUPPORTED}")


def _field(operand: ast.FieldRef | ast.Count, clause: str) -> ast.FieldRef:
    if isinstance(operand, ast.Count):
        inner = operand.field.text if operand.field else ""
        raise SoqlError(f"COUNT({inner}) cannot be used in {clause}")
    return operand


@dataclass(frozen=True, slots=True)
class _Group:
    """A condition written in parentheses (only while parsing: AND and OR may mix only
    through parentheses, as in Salesforce)."""

    condition: ast.Condition


def _unwrap(item: Any) -> Any:
    return item.condition if isinstance(item, _Group) else item


def _flatten(kind: type[ast.And | ast.Or], items: list[Any]) -> tuple[ast.Condition, ...]:
    other = "AND" if kind is ast.Or else "OR"
    if any(isinstance(item, (ast.And, ast.Or)) and not isinstance(item, kind) for item in items):
        raise SoqlError(f"mixing AND and OR needs parentheses around the {other} conditions")
    flat: list[ast.Condition] = []
    for item in map(_unwrap, items):
        if isinstance(item, kind):
            flat.extend(item.items)
        else:
            flat.append(item)
    return tuple(flat)


# ---- tree to AST ------------------------------------------------------------------------


class _ToAst(Transformer[Token, ast.Query]):
    """Builds the AST while the LALR parser reduces (it is passed to Lark as ``transformer``).

    Each method gets the children of one rule (see grammar.lark); ``None`` stands for an
    optional part that was not written.
    """

    def query(self, children: list[Any]) -> ast.Query:
        fields, sobject, where, order_by, limit, offset = children
        return ast.Query(fields, sobject, _unwrap(where), order_by or (), limit, offset)

    def select_list(self, items: list[ast.SelectItem]) -> tuple[ast.SelectItem, ...]:
        if len(items) > 1 and any(isinstance(i, ast.Count) and i.field is None for i in items):
            raise SoqlError("COUNT() must be the only item in the field list")
        return tuple(items)

    def field_item(self, children: list[Any]) -> ast.FieldRef:
        field, alias = children
        if alias is not None:
            raise SoqlError(f"field alias {alias} {_UNSUPPORTED} (only COUNT(field) takes one)")
        return cast(ast.FieldRef, field)

    def call_item(self, children: list[Any]) -> ast.Count:
        count, alias = children
        return ast.Count(count.field, None if alias is None else str(alias))

    def subquery(self, children: list[ast.Query]) -> ast.SubQuery:
        return ast.SubQuery(children[0])

    def field_ref(self, names: list[Token]) -> ast.FieldRef:
        return ast.FieldRef(tuple(str(name) for name in names))

    def call(self, children: list[Any]) -> ast.Count:
        return _call(str(children[0]), children[1:])

    def typeof_head(self, _: list[Any]) -> None:
        raise SoqlError(f"TYPEOF {_UNSUPPORTED}")

    def sobject(self, children: list[Token | None]) -> str:
        name, alias = children
        if alias is not None:
            raise SoqlError(f"object alias {alias} {_UNSUPPORTED} (FROM {name} {alias})")
        return str(name)

    def using_head(self, _: list[Any]) -> None:
        raise SoqlError(f"USING SCOPE {_UNSUPPORTED}")

    def with_head(self, children: list[Token]) -> None:
        name = str(children[0])
        raise SoqlError(f"WITH {_WITH.get(name.upper(), name)} {_UNSUPPORTED}")

    def group_by_head(self, _: list[Any]) -> None:
        raise SoqlError(f"GROUP BY {_UNSUPPORTED}")

    def having_head(self, _: list[Any]) -> None:
        raise SoqlError(f"HAVING {_UNSUPPORTED}")

    def for_clause(self, children: list[Token]) -> None:
        raise SoqlError(f"FOR {children[0].upper()} {_UNSUPPORTED}")

    def update_clause(self, children: list[Token]) -> None:
        raise SoqlError(f"UPDATE {children[1].upper()} {_UNSUPPORTED}")

    def or_(self, items: list[ast.Condition]) -> ast.Or:
        return ast.Or(_flatten(ast.Or, items))

    def and_(self, items: list[ast.Condition]) -> ast.And:
        return ast.And(_flatten(ast.And, items))

    def not_(self, children: list[Any]) -> ast.Not:
        return ast.Not(_unwrap(children[1]))

    def group(self, children: list[Any]) -> _Group:
        return _Group(_unwrap(children[0]))

    def comparison(self, children: list[Any]) -> ast.Comparison:
        operand, op, value = children
        operator = "LIKE" if op.type == "LIKE" else "!=" if op == "<>" else str(op)
        return ast.Comparison(_field(operand, "WHERE"), operator, _literal(value))

    def in_list(self, children: list[Any]) -> ast.InList:
        operand, negated, *values = children
        field = _field(operand, "WHERE")
        return ast.InList(field, tuple(_literal(v) for v in values), negated is not None)

    def semi_join(self, children: list[Any]) -> ast.SemiJoin:
        operand, negated, query = children
        return ast.SemiJoin(_field(operand, "WHERE"), query, negated is not None)

    def includes(self, children: list[Any]) -> None:
        raise SoqlError(f"{children[1].upper()} {_UNSUPPORTED}")

    def order_by(self, items: list[ast.OrderItem]) -> tuple[ast.OrderItem, ...]:
        return tuple(items)

    def order_item(self, children: list[Any]) -> ast.OrderItem:
        operand, direction, nulls = children
        return ast.OrderItem(
            _field(operand, "ORDER BY"),
            descending=direction is not None and direction.type == "DESC",
            nulls_last=None if nulls is None else nulls.type == "LAST",
        )

    def limit(self, children: list[Token]) -> int:
        return _non_negative(children[0], "LIMIT")

    def offset(self, children: list[Token]) -> int:
        return _non_negative(children[0], "OFFSET")


_GRAMMAR = files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
# Built once. The transformer makes the AST as the parser reduces, without a parse tree; lark's
# default maybe_placeholders=True turns each [optional] part that is absent into None.
_PARSER = Lark(_GRAMMAR, parser="lalr", lexer="contextual", transformer=_ToAst(), start="query")
