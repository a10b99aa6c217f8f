"""REST resources under ``/services/data/vNN.0/``: sObjects, describe, query, limits,
getUpdated and getDeleted."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sandbox.salesforce import describe, files
from sandbox.salesforce.calls import Call, Reply
from sandbox.salesforce.errors import ApiError, bad_request, not_found
from sandbox.salesforce.queries import QueryService, batch_size
from sandbox.salesforce.schema import SObject
from sandbox.salesforce.store import Org, quote
from sandbox.salesforce.values import format_datetime, parse_datetime, to_json, to_storage

UPDATED_DAYS = 30
DELETED_DAYS = 15


def record_url(version: str, obj: str, record_id: str) -> str:
    return f"/services/data/v{version}/sobjects/{obj}/{record_id}"


def render_record(version: str, obj: SObject, row: dict[str, Any], names: list[str]) -> dict:
    record: dict[str, Any] = {
        "attributes": {"type": obj.name, "url": record_url(version, obj.name, row["Id"])}
    }
    for name in names:
        spec = obj.fields[name]
        record[name] = to_json(spec, row[name])
    return record


def selected_fields(obj: SObject, fields: str | None) -> list[str]:
    if not fields:
        return list(obj.fields)
    names = []
    for name in fields.split(","):
        spec = obj.field(name.strip())
        if spec is None:
            raise bad_request(
                "INVALID_FIELD", f"No such column '{name.strip()}' on entity '{obj.name}'"
            )
        names.append(spec.name)
    return names


class Rest:
    def __init__(self, org: Org, queries: QueryService) -> None:
        self.org = org
        self.queries = queries

    def sobject(self, name: str) -> SObject:
        obj = self.org.schema.get(name)
        if obj is None:
            raise not_found()
        return obj

    # -- records ---------------------------------------------------------------------------
    def create(self, call: Call, name: str) -> Reply:
        obj = self.sobject(name)
        if obj.name == files.VERSION:
            return files.insert_version(self.org, call)
        if obj.name == files.DOCUMENT:
            raise files.refuse_document_insert()
        body = call.json()
        if not isinstance(body, dict):
            raise bad_request("JSON_PARSER_ERROR", "The request body must be a JSON object")
        record_id = self.org.create(obj.name, body)
        return Reply(201, {"id": record_id, "success": True, "errors": []})

    def retrieve(self, call: Call, name: str, record_id: str) -> Reply:
        obj = self.sobject(name)
        with self.org.lock:
            row = self.org.live_row(obj, record_id, computed=True)
        return Reply(
            body=render_record(
                call.version, obj, row, selected_fields(obj, call.args.get("fields"))
            )
        )

    def update(self, call: Call, name: str, record_id: str) -> Reply:
        obj = self.sobject(name)
        body = call.json()
        if not isinstance(body, dict):
            raise bad_request("JSON_PARSER_ERROR", "The request body must be a JSON object")
        self.org.update(obj.name, record_id, body)
        return Reply(204)

    def delete(self, call: Call, name: str, record_id: str) -> Reply:
        self.org.delete(self.sobject(name).name, record_id)
        return Reply(204)

    def by_external_id(self, call: Call, name: str, field_name: str, value: str) -> Reply:
        obj = self.sobject(name)
        if call.method in ("PATCH", "POST"):
            body = call.json() or {}
            if not isinstance(body, dict):
                raise bad_request("JSON_PARSER_ERROR", "The request body must be a JSON object")
            try:
                record_id, created = self.org.upsert(obj.name, field_name, value, body)
            except ApiError as error:
                if error.status == 300:
                    urls = [
                        record_url(call.version, obj.name, item)
                        for item in error.message.split("; ")
                    ]
                    return Reply(300, urls)
                raise
            return Reply(
                201 if created else 200,
                {"id": record_id, "success": True, "errors": [], "created": created},
            )
        spec = obj.field(field_name)
        if spec is None or not (spec.spec.external_id or spec.name == "Id"):
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {field_name}"
            )
        with self.org.lock:
            ids = self.org.ids_where(obj, spec.name, to_storage(spec, value))
            if not ids:
                raise not_found()
            if len(ids) > 1:
                return Reply(300, [record_url(call.version, obj.name, item) for item in ids])
            if call.method == "DELETE":
                self.org.delete(obj.name, ids[0])
                return Reply(204)
            row = self.org.live_row(obj, ids[0], computed=True)
        return Reply(
            body=render_record(
                call.version, obj, row, selected_fields(obj, call.args.get("fields"))
            )
        )

    # -- describe --------------------------------------------------------------------------
    def global_describe(self, call: Call) -> Reply:
        return Reply(body=describe.global_describe(call.version, self.org.schema))

    def object_info(self, call: Call, name: str) -> Reply:
        obj = self.sobject(name)
        return Reply(
            body={"objectDescribe": describe.object_summary(call.version, obj), "recentItems": []}
        )

    def describe(self, call: Call, name: str) -> Reply:
        obj = self.sobject(name)
        return Reply(body=describe.describe_object(call.version, self.org.schema, obj))

    # -- query -----------------------------------------------------------------------------
    def query(self, call: Call, include_deleted: bool) -> Reply:
        text = call.args.get("q")
        if not text:
            raise bad_request("MALFORMED_QUERY", "A query string (q) is required")
        size = batch_size(call.header("Sforce-Query-Options"))
        return Reply(
            body=self.queries.run(
                text, include_deleted=include_deleted, version=call.version, page_size=size
            )
        )

    def query_more(self, call: Call, locator: str) -> Reply:
        size = batch_size(call.header("Sforce-Query-Options"))
        return Reply(body=self.queries.more(locator, call.version, size))

    # -- replication -----------------------------------------------------------------------
    def _window(self, call: Call, days: int) -> tuple[datetime, datetime]:
        try:
            start = parse_datetime(call.args["start"])
            end = parse_datetime(call.args["end"])
        except KeyError as missing:
            raise bad_request("MISSING_ARGUMENT", f"{missing.args[0]} is required") from None
        except ValueError as error:
            raise bad_request("INVALID_REPLICATION_DATE", f"invalid date: {error}") from None
        now = self.org.clock()
        start, end = (
            start.replace(second=0, microsecond=0),
            min(end, now).replace(second=0, microsecond=0),
        )
        if start > end:
            raise bad_request(
                "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate"
            )
        if start < now - timedelta(days=days):
            raise bad_request(
                "INVALID_REPLICATION_DATE", f"startDate cannot be more than {days} days ago"
            )
        return start, end

    def updated(self, call: Call, name: str) -> Reply:
        obj = self.sobject(name)
        start, end = self._window(call, UPDATED_DAYS)
        with self.org.lock:
            stamp = quote(obj.modstamp)  # a history row's CreatedDate: it never changes
            rows = self.org.db.execute(
                f"SELECT Id FROM {quote(obj.name)} WHERE IsDeleted = 0 AND {stamp} >= ? "
                f"AND {stamp} < ? ORDER BY {stamp}, Id",
                (format_datetime(start), format_datetime(end)),
            ).fetchall()
        return Reply(
            body={"ids": [row[0] for row in rows], "latestDateCovered": format_datetime(end)}
        )

    def deleted(self, call: Call, name: str) -> Reply:
        obj = self.sobject(name)
        start, end = self._window(call, DELETED_DAYS)
        with self.org.lock:
            stamp = quote(obj.modstamp)
            rows = self.org.db.execute(
                f"SELECT Id, {stamp} FROM {quote(obj.name)} WHERE IsDeleted = 1 "
                f"AND {stamp} >= ? AND {stamp} < ? ORDER BY {stamp}, Id",
                (format_datetime(start), format_datetime(end)),
            ).fetchall()
        earliest = self.org.clock() - timedelta(days=DELETED_DAYS)
        return Reply(
            body={
                "deletedRecords": [{"id": row[0], "deletedDate": row[1]} for row in rows],
                "earliestDateAvailable": format_datetime(earliest.replace(second=0, microsecond=0)),
                "latestDateCovered": format_datetime(end),
            }
        )
