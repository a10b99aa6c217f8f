"""The org's records in SQLite: one table per object, validated writes, soft deletes.

Every write goes through :class:`Org`, which checks it as Salesforce does (unknown and read-only
fields, types, lengths, required fields, restricted picklists, lookups, unique external ids),
fills the system fields and lets :mod:`sandbox.salesforce.rules` derive what Salesforce derives.
Deleted records stay in their table with ``IsDeleted`` set, for ``queryAll`` and getDeleted.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.salesforce import rules, text
from sandbox.salesforce.errors import ApiError, bad_request, not_found
from sandbox.salesforce.ids import make_id, normalize_id
from sandbox.salesforce.schema import Field, Schema, SObject
from sandbox.salesforce.values import format_datetime, to_storage

Record = dict[str, Any]
SKIPPED_KEYS = frozenset({"attributes"})


def _column_type(spec: Field) -> str:
    if spec.name == "Id":
        return "TEXT PRIMARY KEY"
    if spec.type in ("id", "reference"):
        return "TEXT"
    if spec.is_text:
        return "TEXT COLLATE SF_NOCASE"
    if spec.type in ("boolean", "int"):
        return "INTEGER"
    if spec.is_number:
        return "REAL"
    return "TEXT"


def quote(name: str) -> str:
    return f'"{name}"'


class Org:
    """A Salesforce org's data: thread-safe, one SQLite connection guarded by a lock."""

    def __init__(
        self,
        schema: Schema,
        path: Path | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.schema = schema
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lock = threading.RLock()
        self.db = sqlite3.connect(
            str(path) if path else ":memory:", check_same_thread=False, isolation_level=None
        )
        self._depth = 0
        self._counters: dict[str, int] = {}
        self.db.create_collation("SF_NOCASE", text.compare)
        self.db.create_function("sf_like", 2, text.like, deterministic=True)
        if path:
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._create_tables()
        rules.initialize(self)

    # -- storage ---------------------------------------------------------------------------
    def _create_tables(self) -> None:
        with self.transaction():
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS _counter (name TEXT PRIMARY KEY, value INTEGER)"
            )
            self.db.execute("CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY, value TEXT)")
            for obj in self.schema.objects.values():
                table = quote(obj.name)
                columns = ", ".join(
                    f"{quote(name)} {_column_type(spec)}" for name, spec in obj.fields.items()
                )
                self.db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
                existing = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
                for name, spec in obj.fields.items():
                    if name not in existing:
                        self.db.execute(
                            f"ALTER TABLE {table} ADD COLUMN {quote(name)} {_column_type(spec)}"
                        )
                self.db.execute(
                    f"CREATE INDEX IF NOT EXISTS {quote('ix_' + obj.name + '_modstamp')} "
                    f'ON {table} ("SystemModstamp")'
                )
                for name, spec in obj.fields.items():
                    if spec.type == "reference" or spec.spec.external_id:
                        self.db.execute(
                            f"CREATE INDEX IF NOT EXISTS {quote(f'ix_{obj.name}_{name}')} "
                            f"ON {table} ({quote(name)})"
                        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit; nested calls become savepoints, so an inner failure can roll back
        alone (per-record results) while the outer unit goes on."""
        with self.lock:
            name = f"sp{self._depth}"
            self.db.execute("BEGIN IMMEDIATE" if self._depth == 0 else f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self.db.execute("ROLLBACK")
                else:
                    self.db.execute(f"ROLLBACK TO {name}")
                    self.db.execute(f"RELEASE {name}")
                raise
            self._depth -= 1
            self.db.execute("COMMIT" if self._depth == 0 else f"RELEASE {name}")

    def next_number(self, name: str) -> int:
        """The next number of a series (ids, auto-numbers). Never reused, even when the write
        that took it is rolled back: Salesforce never hands out an id twice."""
        with self.lock:
            row = self.db.execute("SELECT value FROM _counter WHERE name = ?", (name,)).fetchone()
            number = max(self._counters.get(name, 0), int(row[0]) if row else 0) + 1
            self._counters[name] = number
            self.db.execute(
                "INSERT INTO _counter (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, number),
            )
            return number

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM _meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO _meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def stamp(self) -> str:
        return format_datetime(self.clock())

    # -- lookups ---------------------------------------------------------------------------
    def sobject(self, name: str) -> SObject:
        obj = self.schema.get(name)
        if obj is None:
            raise bad_request(
                "INVALID_TYPE",
                f"sObject type '{name}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name.",
            )
        return obj

    def row(self, obj: SObject, record_id: str) -> Record | None:
        cursor = self.db.execute(f"SELECT * FROM {quote(obj.name)} WHERE Id = ?", (record_id,))
        values = cursor.fetchone()
        if values is None:
            return None
        return dict(zip((column[0] for column in cursor.description), values, strict=True))

    def live_row(self, obj: SObject, record_id: str) -> Record:
        """The record, or NOT_FOUND / ENTITY_IS_DELETED as Salesforce answers for an id."""
        normalized = normalize_id(record_id)
        if normalized is None or not normalized.startswith(obj.key_prefix):
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {record_id}"
            )
        found = self.row(obj, normalized)
        if found is None:
            raise not_found()
        if found["IsDeleted"]:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return found

    def ids_where(self, obj: SObject, field_name: str, value: Any) -> list[str]:
        rows = self.db.execute(
            f"SELECT Id FROM {quote(obj.name)} WHERE {quote(field_name)} = ? AND IsDeleted = 0 "
            "ORDER BY Id",
            (value,),
        )
        return [row[0] for row in rows]

    def rows_where(self, obj: SObject, field_name: str, value: Any) -> list[Record]:
        cursor = self.db.execute(
            f"SELECT * FROM {quote(obj.name)} WHERE {quote(field_name)} = ? AND IsDeleted = 0 "
            "ORDER BY Id",
            (value,),
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor]

    # -- writes ----------------------------------------------------------------------------
    def _convert(self, obj: SObject, values: Mapping[str, Any], *, creating: bool) -> Record:
        converted: Record = {}
        for key, value in values.items():
            if key in SKIPPED_KEYS:
                continue
            spec = obj.field(key)
            if spec is None:
                raise bad_request(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", [key]
                )
            if not (spec.writable if creating else spec.updateable):
                raise bad_request(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {spec.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [spec.name],
                )
            stored = to_storage(spec, value)
            if stored is not None and spec.type == "picklist":
                stored = self._picklist_value(spec, stored)
            converted[spec.name] = stored
        return converted

    def _picklist_value(self, spec: Field, value: str) -> str:
        allowed = self.schema.picklist_values(spec)
        match = next((item for item in allowed if item.lower() == value.lower()), None)
        if match is not None:
            return match
        if spec.spec.restricted or spec.spec.currency or spec.spec.stages:
            raise bad_request(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{spec.name}: bad value for restricted picklist field: {value}",
                [spec.name],
            )
        return value

    def _check(self, obj: SObject, record: Record, changed: Record) -> None:
        missing = [
            name
            for name, spec in obj.fields.items()
            if spec.spec.required and record.get(name) is None
        ]
        if missing:
            raise bad_request(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        for name, value in changed.items():
            spec = obj.fields[name]
            if value is None:
                continue
            if spec.type == "reference":
                self._check_reference(spec, value)
            if spec.spec.unique:
                clash = [
                    other for other in self.ids_where(obj, name, value) if other != record.get("Id")
                ]
                if clash:
                    raise bad_request(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {name} duplicates value on record with id: "
                        f"{clash[0]}",
                        [name],
                    )

    def _check_reference(self, spec: Field, value: str) -> None:
        target = self.schema.objects[spec.spec.reference_to or ""]
        if not value.startswith(target.key_prefix):
            raise bad_request(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{spec.name}: id value of incorrect type: {value}",
                [spec.name],
            )
        found = self.row(target, value)
        if found is None:
            raise bad_request(
                "INVALID_CROSS_REFERENCE_KEY",
                f"{spec.name}: invalid cross reference id",
                [spec.name],
            )
        if found["IsDeleted"]:
            raise bad_request("ENTITY_IS_DELETED", f"{spec.name}: entity is deleted", [spec.name])

    def create(self, name: str, values: Mapping[str, Any]) -> str:
        obj = self.sobject(name)
        with self.transaction():
            changed = self._convert(obj, values, creating=True)
            record: Record = {field_name: None for field_name in obj.fields}
            for field_name, spec in obj.fields.items():
                if field_name not in changed and spec.spec.default is not None:
                    changed[field_name] = to_storage(spec, spec.spec.default)
                elif field_name not in changed and spec.type == "boolean" and spec.writable:
                    changed[field_name] = 0
                elif field_name not in changed and spec.spec.currency and not spec.spec.derived:
                    changed[field_name] = self.schema.corporate_currency
            record.update(changed)
            record["Id"] = make_id(obj.key_prefix, self.next_number(obj.key_prefix))
            stamp = self.stamp()
            record.update(
                IsDeleted=0, CreatedDate=stamp, LastModifiedDate=stamp, SystemModstamp=stamp
            )
            if obj.text_name and record.get("Name") is None:
                record["Name"] = record["Id"]  # as Salesforce names a record sent without one
            for field_name, spec in obj.fields.items():
                if spec.spec.autonumber:
                    record[field_name] = _autonumber(
                        spec.spec.autonumber, self.next_number(f"{obj.name}.{field_name}")
                    )
            rules.before_write(self, obj, record, None)
            self._check(obj, record, changed)
            columns = list(record)
            self.db.execute(
                f"INSERT INTO {quote(obj.name)} ({', '.join(map(quote, columns))}) "
                f"VALUES ({', '.join('?' for _ in columns)})",
                [record[column] for column in columns],
            )
            rules.after_write(self, obj, record, None)
            return str(record["Id"])

    def update(self, name: str, record_id: str, values: Mapping[str, Any]) -> None:
        obj = self.sobject(name)
        with self.transaction():
            old = self.live_row(obj, record_id)
            changed = self._convert(obj, values, creating=False)
            changed.pop("Id", None)
            record = {**old, **changed}
            rules.before_write(self, obj, record, old)
            self._check(obj, record, changed)
            self.save(obj, record, old)
            rules.after_write(self, obj, record, old)

    def save(self, obj: SObject, record: Record, old: Record) -> None:
        """Store the changed columns of ``record`` and stamp it as modified."""
        stamp = self.stamp()
        record["LastModifiedDate"] = record["SystemModstamp"] = stamp
        changes = {key: value for key, value in record.items() if old.get(key) != value}
        changes.update(LastModifiedDate=stamp, SystemModstamp=stamp)
        self.db.execute(
            f"UPDATE {quote(obj.name)} SET {', '.join(f'{quote(key)} = ?' for key in changes)} "
            "WHERE Id = ?",
            [*changes.values(), record["Id"]],
        )

    def upsert(
        self, name: str, field_name: str, value: str, values: Mapping[str, Any]
    ) -> tuple[str, bool]:
        """Create or update the record whose external id ``field_name`` is ``value``."""
        obj = self.sobject(name)
        spec = obj.field(field_name)
        if spec is None or not (spec.spec.external_id or spec.name == "Id"):
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {field_name}"
            )
        with self.transaction():
            if spec.name == "Id":
                body = {key: item for key, item in values.items() if key.lower() != "id"}
                if value:
                    self.update(obj.name, value, body)
                    return normalize_id(value) or value, False
                return self.create(obj.name, body), True
            sent = next((key for key in values if key.lower() == spec.name.lower()), None)
            if sent is not None and str(values[sent]) != value:
                raise bad_request(
                    "INVALID_FIELD",
                    f"The value of {spec.name} in the request body does not match the value "
                    "in the URL",
                    [spec.name],
                )
            matches = self.ids_where(obj, spec.name, to_storage(spec, value))
            if len(matches) > 1:
                raise ApiError(300, "MULTIPLE_CHOICES", "; ".join(matches), [spec.name])
            body = {key: item for key, item in values.items() if key != sent}
            if matches:
                self.update(obj.name, matches[0], body)
                return matches[0], False
            return self.create(obj.name, {**body, spec.name: value}), True

    def delete(self, name: str, record_id: str) -> None:
        obj = self.sobject(name)
        with self.transaction():
            record = self.live_row(obj, record_id)
            self._soft_delete(obj, record)

    def _soft_delete(self, obj: SObject, record: Record) -> None:
        self.save(obj, {**record, "IsDeleted": 1}, record)
        for relation in obj.children.values():
            child = self.schema.objects[relation.child]
            for row in self.rows_where(child, relation.field, record["Id"]):
                if relation.cascade_delete:
                    self._soft_delete(child, row)
                else:
                    self.save(child, {**row, relation.field: None}, row)
        rules.after_delete(self, obj, record)


def _autonumber(display_format: str, number: int) -> str:
    start, end = display_format.index("{"), display_format.index("}")
    width = end - start - 1
    return f"{display_format[:start]}{number:0{width}d}{display_format[end + 1 :]}"
