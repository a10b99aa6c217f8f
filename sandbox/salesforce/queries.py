"""Run SOQL against the org and page the results as the REST API does.

A query's matching ids are fixed when it runs (a snapshot, like a Salesforce query cursor);
each page then reads the current values of its records. A result larger than the page size
answers ``done: false`` with a ``nextRecordsUrl`` of the form
``/services/data/v59.0/query/01g5g0000000001AAA-2000``.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sandbox.salesforce.errors import bad_request
from sandbox.salesforce.files import check_link_query
from sandbox.salesforce.ids import make_id
from sandbox.salesforce.soql import ast
from sandbox.salesforce.soql.compiler import ChildPlan, Plan, compile_query
from sandbox.salesforce.soql.parser import SoqlError, parse
from sandbox.salesforce.store import Org

DEFAULT_BATCH = 2000
MIN_BATCH = 200
CURSOR_LIFETIME = 2 * 24 * 3600
MAX_CURSORS = 200
#: SQLite's limit on bound parameters is far above this; pages are read in chunks of it.
CHUNK = 2000


@dataclass
class Cursor:
    plan: Plan
    ids: list[str]
    endpoint: str
    created: float


def batch_size(options: str | None) -> int:
    """The page size asked for by a ``Sforce-Query-Options: batchSize=N`` header."""
    if not options:
        return DEFAULT_BATCH
    for part in options.split(","):
        key, _, value = part.partition("=")
        if key.strip().lower() == "batchsize":
            try:
                size = int(value.strip())
            except ValueError:
                raise bad_request(
                    "INVALID_QUERY_OPTIONS", f"batchSize must be a number: {value}"
                ) from None
            return min(max(size, MIN_BATCH), DEFAULT_BATCH)
    return DEFAULT_BATCH


def parse_soql(text: str) -> ast.Query:
    try:
        return parse(text)
    except SoqlError as error:
        raise bad_request("MALFORMED_QUERY", str(error)) from None


class QueryService:
    def __init__(self, org: Org) -> None:
        self.org = org
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()

    def plan(self, text: str, include_deleted: bool) -> Plan:
        query = parse_soql(text)
        check_link_query(query)
        return compile_query(self.org.schema, query, self.org.today(), include_deleted, root=None)

    def matching_ids(self, plan: Plan) -> list[str]:
        sql = plan.ids_sql
        params = list(plan.params)
        if plan.limit is not None or plan.offset is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if plan.limit is None else plan.limit, plan.offset or 0]
        return [row[0] for row in self.org.db.execute(sql, params)]

    def run(
        self, text: str, *, include_deleted: bool, version: str, page_size: int = DEFAULT_BATCH
    ) -> dict[str, Any]:
        plan = self.plan(text, include_deleted)
        with self.org.lock:
            if plan.counts:
                row = self.org.db.execute(plan.count_sql, plan.params).fetchone()
                record: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
                record.update({alias: row[index] for index, (alias, _) in enumerate(plan.counts)})
                return {"totalSize": 1, "done": True, "records": [record]}
            ids = self.matching_ids(plan)
            if plan.count_only:
                return {"totalSize": len(ids), "done": True, "records": []}
            endpoint = "queryAll" if include_deleted else "query"
            cursor = Cursor(plan, ids, endpoint, time.monotonic())
            return self._page(cursor, None, 0, version, page_size)

    def more(self, locator: str, version: str, page_size: int = DEFAULT_BATCH) -> dict[str, Any]:
        cursor_id, _, position = locator.rpartition("-")
        cursor = self.cursors.get(cursor_id)
        if (
            cursor is None
            or not position.isdigit()
            or time.monotonic() - cursor.created > CURSOR_LIFETIME
        ):
            raise bad_request("INVALID_QUERY_LOCATOR", "invalid query locator")
        self.cursors.move_to_end(cursor_id)
        with self.org.lock:
            page = self._page(cursor, cursor_id, int(position), version, page_size)
        if page["done"]:
            self.cursors.pop(cursor_id, None)  # read to the end: its ids need not stay
        return page

    def _page(
        self, cursor: Cursor, cursor_id: str | None, start: int, version: str, size: int
    ) -> dict[str, Any]:
        page_ids = cursor.ids[start : start + size]
        records = list(self.render_rows(cursor.plan, page_ids, version))
        result: dict[str, Any] = {"totalSize": len(cursor.ids), "done": True}
        end = start + len(page_ids)
        if end < len(cursor.ids):
            if cursor_id is None:
                cursor_id = self._keep(cursor)
            result["done"] = False
            result["nextRecordsUrl"] = (
                f"/services/data/v{version}/{cursor.endpoint}/{cursor_id}-{end}"
            )
        result["records"] = records
        return result

    def _keep(self, cursor: Cursor) -> str:
        cursor_id = make_id("01g", self.org.next_number("query-locator"))
        self.cursors[cursor_id] = cursor
        while len(self.cursors) > MAX_CURSORS:
            self.cursors.popitem(last=False)
        return cursor_id

    def rows(self, plan: Plan, ids: list[str]) -> Iterator[tuple[Any, ...]]:
        """The selected columns of the records ``ids``, in that order."""
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            fetched = {row[0]: row for row in self.org.db.execute(plan.rows_sql(len(chunk)), chunk)}
            yield from (fetched[record_id] for record_id in chunk if record_id in fetched)

    def render_rows(self, plan: Plan, ids: list[str], version: str) -> Iterator[dict[str, Any]]:
        rows = list(self.rows(plan, ids))
        children = {
            name: self._children(child, [row[0] for row in rows], version)
            for name, child in plan.children
        }
        render = Renderer(plan, version)
        for row in rows:
            record = render(row)
            for name, by_parent in children.items():
                record[name] = by_parent.get(row[0])
            yield record

    def _children(
        self, child: ChildPlan, parent_ids: list[str], version: str
    ) -> dict[str, dict[str, Any]]:
        grouped: dict[str, list[tuple[Any, ...]]] = {}
        for start in range(0, len(parent_ids), CHUNK):
            chunk = parent_ids[start : start + CHUNK]
            sql = child.plan.children_sql(child.parent_field, len(chunk))
            for row in self.org.db.execute(sql, [*child.plan.params, *chunk]):
                grouped.setdefault(row[0], []).append(row[1:])
        render = Renderer(child.plan, version)
        result = {}
        for parent_id, rows in grouped.items():
            offset = child.offset or 0
            kept = rows[offset : None if child.limit is None else offset + child.limit]
            if kept:
                records = [render(row) for row in kept]
                result[parent_id] = {"totalSize": len(records), "done": True, "records": records}
        return result


_KINDS = {"boolean": 1, "anyType": 2}


class Renderer:
    """Turns a row of a plan into a REST record, with nested parents and attributes."""

    def __init__(self, plan: Plan, version: str) -> None:
        self.plan = plan
        self.base = f"/services/data/v{version}/sobjects/"
        # (name, index, kind): kind 1 a checkbox (0/1 read as false/true), 2 an anyType value
        # (a history's OldValue and NewValue, kept as JSON text), 0 anything else.
        self.flat = [
            (column.field.name, column.index, _KINDS.get(column.field.type, 0))
            for column in plan.columns
            if not column.relationships
        ]
        self.nested = [column for column in plan.columns if column.relationships]
        self.type_name = plan.sobject.name

    def __call__(self, row: tuple[Any, ...]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "attributes": {"type": self.type_name, "url": f"{self.base}{self.type_name}/{row[0]}"}
        }
        for name, index, kind in self.flat:
            value = row[index]
            if kind and value is not None:
                value = bool(value) if kind == 1 else json.loads(value)
            record[name] = value
        if self.nested:
            self._nest(record, row)
        return record

    def _nest(self, record: dict[str, Any], row: tuple[Any, ...]) -> None:
        parents: dict[tuple[str, ...], dict[str, Any] | None] = {(): record}
        for column in self.nested:
            names = column.relationships
            for depth in range(1, len(names) + 1):
                key = names[:depth]
                if key in parents:
                    continue
                holder = parents[key[:-1]]
                parent_id = row[self.plan.join_ids[key]]
                if holder is None or parent_id is None:
                    parents[key] = None
                    if holder is not None:
                        holder[names[depth - 1]] = None
                    continue
                parent_type = column.objects[depth - 1].name
                parents[key] = holder[names[depth - 1]] = {
                    "attributes": {
                        "type": parent_type,
                        "url": f"{self.base}{parent_type}/{parent_id}",
                    }
                }
            target = parents[names]
            if target is not None:
                value = row[column.index]
                is_boolean = column.field.type == "boolean"
                target[column.field.name] = (
                    bool(value) if is_boolean and value is not None else value
                )
