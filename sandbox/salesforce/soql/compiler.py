"""Turn a parsed SOQL query into SQL over the org's tables.

Names resolve against the schema, case-insensitively; parent paths become LEFT JOINs; formula
fields become their SQL (:mod:`sandbox.salesforce.formula`) on the query's TODAY; literals
are checked against the field's type with Salesforce's messages; relative date literals become
day ranges (UTC). Nulls sort first ascending and last descending; the record id breaks ties so
that paging is stable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sandbox.salesforce.errors import ApiError, bad_request
from sandbox.salesforce.ids import normalize_id
from sandbox.salesforce.schema import Field, Schema, SObject
from sandbox.salesforce.soql import ast
from sandbox.salesforce.soql.dates import resolve
from sandbox.salesforce.store import quote
from sandbox.salesforce.values import format_datetime

MAX_OFFSET = 2000
TYPE_NAMES = {"boolean": "boolean", "date": "date", "datetime": "dateTime", "int": "integer"}


def malformed(message: str) -> ApiError:
    return bad_request("MALFORMED_QUERY", message)


@dataclass(frozen=True, slots=True)
class Column:
    """One selected field: the relationships leading to it, and where it sits in a row."""

    relationships: tuple[str, ...]
    objects: tuple[SObject, ...]
    field: Field
    index: int


@dataclass
class Plan:
    """A compiled query: its source, filter and order, the selected columns and its shape."""

    sobject: SObject
    alias: str
    source: str
    where: str
    order: str
    params: list[Any]
    selects: list[str] = field(default_factory=list)
    columns: list[Column] = field(default_factory=list)
    join_ids: dict[tuple[str, ...], int] = field(default_factory=dict)
    children: list[tuple[str, ChildPlan]] = field(default_factory=list)
    count_only: bool = False
    counts: list[tuple[str, str]] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None

    @property
    def ids_sql(self) -> str:
        return f"SELECT {self.alias}.Id FROM {self.source} WHERE {self.where} ORDER BY {self.order}"

    @property
    def count_sql(self) -> str:
        counted = ", ".join(sql for _, sql in self.counts) or "COUNT(*)"
        return f"SELECT {counted} FROM {self.source} WHERE {self.where}"

    def rows_sql(self, count: int) -> str:
        """The selected columns of ``count`` records given by id (first column: the id)."""
        marks = ", ".join("?" for _ in range(count))
        return (
            f"SELECT {', '.join(self.selects)} FROM {self.source} "
            f"WHERE {self.alias}.Id IN ({marks})"
        )

    def children_sql(self, parent_field: str, count: int) -> str:
        """Child rows of ``count`` parents, in the child query's order (first column: parent)."""
        marks = ", ".join("?" for _ in range(count))
        parent = f"{self.alias}.{quote(parent_field)}"
        return (
            f"SELECT {parent}, {', '.join(self.selects)} FROM {self.source} "
            f"WHERE {self.where} AND {parent} IN ({marks}) ORDER BY {self.order}"
        )


@dataclass
class ChildPlan:
    plan: Plan
    parent_field: str
    limit: int | None
    offset: int | None


class Compiler:
    def __init__(
        self, schema: Schema, root: SObject, today: date, include_deleted: bool, prefix: str = "t"
    ) -> None:
        self.schema = schema
        self.root = root
        self.today = today
        self.include_deleted = include_deleted
        self.prefix = prefix
        self.joins: dict[tuple[str, ...], tuple[str, SObject]] = {(): (f"{prefix}0", root)}
        self.join_sql: list[str] = []
        self.params: list[Any] = []

    # -- names -----------------------------------------------------------------------------
    def resolve(self, ref: ast.FieldRef) -> tuple[tuple[str, ...], tuple[SObject, ...], Field, str]:
        path = list(ref.path)
        if (
            len(path) > 1
            and path[0].lower() == self.root.name.lower()
            and (self.root.parent(path[0]) is None)
        ):
            path = path[1:]
        names: tuple[str, ...] = ()
        objects: tuple[SObject, ...] = ()
        alias, current = self.joins[()]
        for relationship in path[:-1]:
            lookup = current.parent(relationship)
            targets = lookup.spec.targets if lookup is not None else ()
            # A polymorphic lookup (Task.What) is not followed: the sandbox has no TYPEOF.
            if lookup is None or len(targets) != 1 or targets[0] not in self.schema.objects:
                raise bad_request(
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{relationship}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' after "
                    "the custom relationship name.",
                )
            parent = self.schema.objects[targets[0]]
            names = (*names, lookup.spec.relationship_name or relationship)
            objects = (*objects, parent)
            if names not in self.joins:
                parent_alias = f"{self.prefix}{len(self.joins)}"
                self.join_sql.append(
                    f"LEFT JOIN {quote(parent.name)} AS {parent_alias} "
                    f"ON {parent_alias}.Id = {alias}.{quote(lookup.name)}"
                )
                self.joins[names] = (parent_alias, parent)
            alias, current = self.joins[names]
        spec = current.field(path[-1])
        if spec is None:
            raise bad_request(
                "INVALID_FIELD",
                f"No such column '{path[-1]}' on entity '{current.name}'. If you are attempting "
                "to use a custom field, be sure to append the '__c' after the custom field name. "
                "Please reference your WSDL or the describe call for the appropriate names.",
            )
        formula = current.formulas.get(spec.name)
        if formula is not None:  # computed from the row's other fields, on the org's date
            return names, objects, spec, formula.sql(_columns_of(alias), self.today)
        return names, objects, spec, f"{alias}.{quote(spec.name)}"

    # -- conditions ------------------------------------------------------------------------
    def condition(self, node: ast.Condition) -> str:
        if isinstance(node, ast.And):
            return "(" + " AND ".join(self.condition(item) for item in node.items) + ")"
        if isinstance(node, ast.Or):
            return "(" + " OR ".join(self.condition(item) for item in node.items) + ")"
        if isinstance(node, ast.Not):
            return f"(NOT {self.condition(node.item)})"
        if isinstance(node, ast.InList):
            return self._in_list(node)
        if isinstance(node, ast.SemiJoin):
            return self._semi_join(node)
        return self._comparison(node)

    def filtered(self, ref: ast.FieldRef) -> tuple[Field, str]:
        """A field used in a condition: a Long Text Area or an ``anyType`` field (a history's
        OldValue and NewValue) cannot be (INVALID_FIELD)."""
        _, _, spec, column = self.resolve(ref)
        if spec.long_text or spec.type == "anyType":
            raise bad_request(
                "INVALID_FIELD", f"field '{spec.name}' can not be filtered in query call"
            )
        return spec, column

    def _comparison(self, node: ast.Comparison) -> str:
        spec, column = self.filtered(node.field)
        op, value = node.op, node.value
        if value is None:
            if op not in ("=", "!="):
                raise malformed(f"invalid operator on null value: {op} on {node.field.text}")
            if spec.type == "boolean":  # a checkbox is never null: null means false
                return f"{column} = {1 if op == '!=' else 0}"
            return f"{column} IS {'NOT ' if op == '!=' else ''}NULL"
        if isinstance(value, ast.RelativeDate):
            return self._date_range(spec, column, op, value)
        if op == "LIKE":
            if not spec.is_text:
                raise bad_request(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    f"invalid operator on field {spec.name}: LIKE",
                )
            self.params.append(self.literal(spec, value))
            return f"sf_like({column}, ?)"
        self.params.append(self.literal(spec, value))
        if op == "!=":
            return f"{column} IS NOT ?"
        return f"{column} {op} ?"

    def _date_range(self, spec: Field, column: str, op: str, value: ast.RelativeDate) -> str:
        if spec.type not in ("date", "datetime"):
            raise malformed(
                f"date literal {value.text} used on field {spec.name} of type {spec.type}"
            )
        start, end = resolve(value, self.today)
        low, high = (
            (start.isoformat(), end.isoformat())
            if spec.type == "date"
            else (
                format_datetime(datetime(start.year, start.month, start.day, tzinfo=UTC)),
                format_datetime(datetime(end.year, end.month, end.day, tzinfo=UTC)),
            )
        )
        forms = {
            "=": (f"({column} >= ? AND {column} < ?)", [low, high]),
            "!=": (f"({column} IS NULL OR {column} < ? OR {column} >= ?)", [low, high]),
            "<": (f"{column} < ?", [low]),
            "<=": (f"{column} < ?", [high]),
            ">": (f"{column} >= ?", [high]),
            ">=": (f"{column} >= ?", [low]),
        }
        if op not in forms:
            raise malformed(f"invalid operator {op} on date literal {value.text}")
        sql, params = forms[op]
        self.params.extend(params)
        return sql

    def _in_list(self, node: ast.InList) -> str:
        spec, column = self.filtered(node.field)
        values = [self.literal(spec, value) for value in node.values if value is not None]
        has_null = any(value is None for value in node.values)
        self.params.extend(values)
        marks = ", ".join("?" for _ in values)
        if not values:  # only nulls listed
            return f"{column} IS {'NOT ' if node.negated else ''}NULL"
        if node.negated:
            null_part = f" AND {column} IS NOT NULL" if has_null else f" OR {column} IS NULL"
            return f"({column} NOT IN ({marks}){null_part})"
        return f"({column} IN ({marks})" + (f" OR {column} IS NULL)" if has_null else ")")

    def _semi_join(self, node: ast.SemiJoin) -> str:
        spec, column = self.filtered(node.field)
        inner_obj = self.schema.get(node.query.sobject)
        if inner_obj is None:
            raise unknown_object(node.query.sobject)
        if len(node.query.fields) != 1 or not isinstance(node.query.fields[0], ast.FieldRef):
            raise malformed("a semi-join subquery must select exactly one field")
        inner = Compiler(
            self.schema, inner_obj, self.today, False, prefix=f"{self.prefix}s{len(self.params)}x"
        )
        _, _, inner_spec, inner_column = inner.resolve(node.query.fields[0])
        if inner_spec.type not in ("id", "reference") or spec.type not in ("id", "reference"):
            raise malformed("a semi-join must compare an id field with an id or lookup field")
        # NULLs never match, so NOT IN keeps rows whose value appears nowhere (SQL's NOT IN would
        # drop every row once the subquery yields a NULL).
        where = f"{inner.where_sql(node.query.where)} AND {inner_column} IS NOT NULL"
        self.params.extend(inner.params)
        sql = f"SELECT {inner_column} FROM {inner.from_sql()} WHERE {where}"
        return f"({column} {'NOT ' if node.negated else ''}IN ({sql}))"

    def literal(self, spec: Field, value: ast.Value) -> Any:
        if isinstance(value, ast.RelativeDate):
            raise malformed(f"date literal {value.text} is not allowed in a list")
        if spec.is_text:
            if not isinstance(value, str):
                raise self._type_mismatch(spec, "string", quoted=True)
            if spec.type in ("id", "reference"):
                normalized = normalize_id(value)
                if normalized is None:
                    raise bad_request("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}")
                return normalized
            return value
        if spec.type == "boolean":
            if not isinstance(value, bool):
                raise self._type_mismatch(spec, "boolean", quoted=False)
            return int(value)
        if spec.is_number:
            if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
                raise self._type_mismatch(spec, TYPE_NAMES.get(spec.type, "double"), quoted=False)
            return float(value)
        if spec.type == "date":
            if isinstance(value, datetime) or not isinstance(value, date):
                raise self._type_mismatch(spec, "date", quoted=False)
            return value.isoformat()
        if isinstance(value, datetime):
            return format_datetime(value)
        raise self._type_mismatch(spec, "dateTime", quoted=False)

    @staticmethod
    def _type_mismatch(spec: Field, type_name: str, *, quoted: bool) -> ApiError:
        how = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
        return malformed(
            f"value of filter criterion for field '{spec.name}' must be of type {type_name} "
            f"and {how}"
        )

    # -- whole queries ---------------------------------------------------------------------
    def from_sql(self) -> str:
        alias, obj = self.joins[()]
        return " ".join([f"{quote(obj.name)} AS {alias}", *self.join_sql])

    def where_sql(self, where: ast.Condition | None) -> str:
        alias = self.joins[()][0]
        parts = [] if self.include_deleted else [f"{alias}.IsDeleted = 0"]
        if where is not None:
            parts.append(self.condition(where))
        return " AND ".join(parts) or "1"

    def order_sql(self, items: tuple[ast.OrderItem, ...]) -> str:
        terms = []
        for item in items:
            _, _, spec, column = self.resolve(item.field)
            if spec.long_text:
                raise bad_request(
                    "INVALID_FIELD", f"field '{spec.name}' can not be sorted in a query call"
                )
            nulls_last = item.descending if item.nulls_last is None else item.nulls_last
            terms.append(
                f"{column} {'DESC' if item.descending else 'ASC'} "
                f"NULLS {'LAST' if nulls_last else 'FIRST'}"
            )
        terms.append(f"{self.joins[()][0]}.Id")
        return ", ".join(terms)


def _columns_of(alias: str) -> Callable[[str], str]:
    return lambda name: f"{alias}.{quote(name)}"


def unknown_object(name: str) -> ApiError:
    return bad_request(
        "INVALID_TYPE",
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, "
        "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names.",
    )


def compile_query(
    schema: Schema,
    query: ast.Query,
    today: date,
    include_deleted: bool,
    *,
    root: SObject | None = None,
    child: bool = False,
) -> Plan:
    """Compile ``query`` (for a child subquery, ``root`` is the child object)."""
    obj = root or schema.get(query.sobject)
    if obj is None:
        raise unknown_object(query.sobject)
    compiler = Compiler(schema, obj, today, include_deleted)
    if query.offset is not None and query.offset > MAX_OFFSET:
        raise bad_request(
            "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}"
        )
    alias = compiler.joins[()][0]
    selects: list[str] = [f"{alias}.Id"]
    columns: list[Column] = []
    join_ids: dict[tuple[str, ...], int] = {}
    children: list[tuple[str, ChildPlan]] = []
    counts: list[tuple[str, str]] = []
    count_only = False
    seen: set[str] = set()
    for item in query.fields:
        if isinstance(item, ast.Count):
            if item.field is None:
                count_only = True
                continue
            _, _, _, column = compiler.resolve(item.field)
            counts.append((item.alias or f"expr{len(counts)}", f"COUNT({column})"))
        elif isinstance(item, ast.SubQuery):
            if child:
                raise malformed("a child relationship subquery cannot contain another one")
            children.append(_child_plan(schema, obj, item.query, today, include_deleted))
        else:
            names, objects, spec, column = compiler.resolve(item)
            key = ".".join((*names, spec.name)).lower()
            if key in seen:
                raise malformed(f"duplicate field selected: {item.text}")
            seen.add(key)
            for depth in range(1, len(names) + 1):
                if names[:depth] not in join_ids:
                    join_ids[names[:depth]] = len(selects)
                    selects.append(f"{compiler.joins[names[:depth]][0]}.Id")
            columns.append(Column(names, objects, spec, len(selects)))
            selects.append(column)
    if (count_only or counts) and (columns or children or (count_only and counts)):
        raise malformed("COUNT() and aggregate functions cannot be mixed with other fields")
    if not (columns or children or count_only or counts):
        raise malformed("a query must select at least one field")
    where = compiler.where_sql(query.where)
    order = compiler.order_sql(query.order_by)
    return Plan(
        sobject=obj,
        alias=alias,
        source=compiler.from_sql(),
        where=where,
        order=order,
        params=compiler.params,
        selects=selects,
        columns=columns,
        join_ids=join_ids,
        children=children,
        count_only=count_only,
        counts=counts,
        limit=query.limit,
        offset=query.offset,
    )


def _child_plan(
    schema: Schema, parent: SObject, query: ast.Query, today: date, include_deleted: bool
) -> tuple[str, ChildPlan]:
    relation = parent.child(query.sobject)
    if relation is None:
        raise bad_request(
            "INVALID_TYPE",
            f"Didn't understand relationship '{query.sobject}' in FROM part of query call. If "
            "you are attempting to use a custom relationship, be sure to append the '__r' after "
            "the custom relationship name.",
        )
    child = schema.objects[relation.child]
    plan = compile_query(schema, query, today, include_deleted, root=child, child=True)
    return relation.name, ChildPlan(plan, relation.field, query.limit, query.offset)
