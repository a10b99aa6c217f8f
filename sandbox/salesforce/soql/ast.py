"""The parsed form of a SOQL query: what the parser produces and the compiler reads.

Names keep the spelling the client used; the compiler resolves them against the schema,
case-insensitively, as Salesforce does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field, possibly through parent relationships: ``Account.Owner.Name``."""

    path: tuple[str, ...]

    @property
    def text(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class RelativeDate:
    """A date literal such as ``TODAY``, ``THIS_MONTH`` or ``LAST_N_DAYS:30``.

    ``name`` is upper case; ``n`` is set for the ``_N_`` forms.
    """

    name: str
    n: int | None = None

    @property
    def text(self) -> str:
        return self.name if self.n is None else f"{self.name}:{self.n}"


#: A literal value: strings, integers, decimals, booleans, NULL (None), dates, aware UTC
#: datetimes, and relative date literals.
Value = str | int | Decimal | bool | None | date | datetime | RelativeDate


@dataclass(frozen=True, slots=True)
class Comparison:
    """``field op value``; ``op`` is one of ``= != < <= > >= LIKE`` (``<>`` becomes ``!=``)."""

    field: FieldRef
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class InList:
    """``field IN (v1, v2)`` or ``field NOT IN (...)``."""

    field: FieldRef
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class SemiJoin:
    """``field IN (SELECT OtherField FROM Object WHERE ...)`` (or ``NOT IN``)."""

    field: FieldRef
    query: Query
    negated: bool = False


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition


Condition = Comparison | InList | SemiJoin | And | Or | Not


@dataclass(frozen=True, slots=True)
class Count:
    """``COUNT()`` (``field`` None) or ``COUNT(field) [alias]``."""

    field: FieldRef | None = None
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class SubQuery:
    """A child relationship subquery in the field list: ``(SELECT Id FROM OpportunityLineItems)``.

    ``query.sobject`` holds the child relationship name as written.
    """

    query: Query


SelectItem = FieldRef | Count | SubQuery


@dataclass(frozen=True, slots=True)
class OrderItem:
    """``field [ASC|DESC] [NULLS FIRST|LAST]``; ``nulls_last`` None when not written."""

    field: FieldRef
    descending: bool = False
    nulls_last: bool | None = None


@dataclass(frozen=True, slots=True)
class Query:
    fields: tuple[SelectItem, ...]
    sobject: str
    where: Condition | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
