"""The org's records in SQLite: one table per object, validated writes, soft deletes.

Every write goes through :class:`Org`, which checks it as Salesforce does (unknown and read-only
fields, types, lengths, required fields, restricted picklists, lookups, unique external ids),
fills the system fields and lets :mod:`sandbox.salesforce.rules` derive what Salesforce derives.
Deleted records stay in their table with ``IsDeleted`` set, for ``queryAll`` and getDeleted.
Formula fields have no column: they are computed where a record is read (a query, a REST get),
on the org's date (:meth:`Org.today`, from its clock).

Calls that write many records at once (sObject Collections, Bulk API ingest) run as one
:meth:`Org.batch`: each record is checked and derived one by one exactly as a single write is,
with what the records look up read ahead in one query per object, and their inserts and updates
stored at the end with one ``executemany`` per object (see :mod:`sandbox.salesforce.staging`).

Field history: every write of an object that tracks fields records, as Salesforce does, one row
in its history object per tracked field whose value changed (a ``created`` row for a new
record), whatever the write (a client's, or one the org derives, such as an opportunity's
amount); formula fields change without a write and are not tracked. The rows are written with
the record: in a batch, with one more ``executemany`` per history object. A history object
refuses writes (CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY), and its rows go with their record when
it is deleted (``IsDeleted``, seen by ``queryAll``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sandbox.salesforce import rules, text
from sandbox.salesforce.auth import USER_ID
from sandbox.salesforce.errors import ApiError, bad_request, not_found
from sandbox.salesforce.ids import make_id, normalize_id, number_of
from sandbox.salesforce.schema import (
    HISTORY_CREATED,
    HISTORY_DATA_TYPES,
    HISTORY_PREFIX,
    Field,
    Schema,
    SObject,
)
from sandbox.salesforce.staging import Staged, match_key
from sandbox.salesforce.values import format_datetime, to_history, to_storage

Record = dict[str, Any]
SKIPPED_KEYS = frozenset({"attributes"})
# Values bound in one IN (...) list (SQLite allows 32,766 variables).
IN_CHUNK = 500


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


@dataclass(frozen=True)
class _Shape:
    """What every write of one object needs of its schema, worked out once."""

    blank: Record  # every stored field, null
    defaults: tuple[tuple[str, Any], ...]  # (field, stored value) given on create when not sent
    autonumbers: tuple[tuple[str, str], ...]  # (field, display format)
    required: tuple[str, ...]

    @classmethod
    def of(cls, schema: Schema, obj: SObject) -> _Shape:
        defaults: list[tuple[str, Any]] = []
        for name, spec in obj.fields.items():
            if spec.spec.default is not None:
                defaults.append((name, to_storage(spec, spec.spec.default)))
            elif spec.type == "boolean" and spec.writable:
                defaults.append((name, 0))
            elif spec.spec.currency and not spec.spec.derived:
                defaults.append((name, schema.corporate_currency))
        return cls(
            blank=dict.fromkeys(obj.stored_fields),
            defaults=tuple(defaults),
            autonumbers=tuple(
                (name, spec.spec.autonumber)
                for name, spec in obj.fields.items()
                if spec.spec.autonumber
            ),
            required=tuple(name for name, spec in obj.fields.items() if spec.spec.required),
        )


class _Connection(sqlite3.Connection):
    """A connection that tells ``on_statement`` of every statement it is sent (an
    ``executemany`` is one statement), so tests can count the org's own SQL."""

    on_statement: Callable[[str], None] | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if self.on_statement is not None:
            self.on_statement(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        if self.on_statement is not None:
            self.on_statement(sql)
        return super().executemany(sql, parameters)


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
        self.db: _Connection = sqlite3.connect(
            str(path) if path else ":memory:",
            check_same_thread=False,
            isolation_level=None,
            factory=_Connection,
        )
        self._depth = 0
        self._counters: dict[str, int] = {}
        self._batch: tuple[int, Staged] | None = None  # the thread running a batch, its writes
        self._shapes: dict[str, _Shape] = {}
        self._history_number = 0  # the number of the last history row's id
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
            # The bytes of each ContentVersion (sandbox/salesforce/files.py).
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS _content_body (Id TEXT PRIMARY KEY, data BLOB)"
            )
            for obj in self.schema.objects.values():
                table = quote(obj.name)
                stored = [(name, obj.fields[name]) for name in obj.stored_fields]
                columns = ", ".join(f"{quote(name)} {_column_type(spec)}" for name, spec in stored)
                self.db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
                existing = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
                for name, spec in stored:
                    if name not in existing:
                        self.db.execute(
                            f"ALTER TABLE {table} ADD COLUMN {quote(name)} {_column_type(spec)}"
                        )
                self.db.execute(
                    f"CREATE INDEX IF NOT EXISTS {quote('ix_' + obj.name + '_modstamp')} "
                    f"ON {table} ({quote(obj.modstamp)})"
                )
                for name, spec in stored:
                    if spec.type == "reference" or spec.spec.external_id:
                        self.db.execute(
                            f"CREATE INDEX IF NOT EXISTS {quote(f'ix_{obj.name}_{name}')} "
                            f"ON {table} ({quote(name)})"
                        )
            # History rows take their ids from one series, in memory: the rows of a write
            # go with it in one statement, with no counter to read or store. The ids are
            # fixed-width base 62 in ASCII order, so the largest is the last.
            for history in self.schema.histories:
                (last,) = self.db.execute(f"SELECT MAX(Id) FROM {quote(history.name)}").fetchone()
                if last:
                    self._history_number = max(self._history_number, number_of(last))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit; nested calls become savepoints, so an inner failure can roll back
        alone (per-record results) while the outer unit goes on."""
        with self.lock:
            staged = self._staged
            if staged is not None:  # in a batch nothing is written yet: undo staged writes
                mark = staged.mark()
                try:
                    yield
                except BaseException:
                    staged.rollback(mark)
                    raise
                return
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

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One atomic unit whose writes are staged in memory and written when it ends: its
        inserts with one statement per object, its updates with another. Inside it the org
        reads its own staged writes, and nested :meth:`transaction` calls roll back only
        theirs, as savepoints do. A batch inside a batch is a savepoint of the outer one."""
        with self.lock:
            if self._staged is not None:
                with self.transaction():
                    yield
                return
            with self.transaction():
                staged = Staged()
                self._batch = (threading.get_ident(), staged)
                try:
                    yield
                finally:
                    self._batch = None
                self._flush(staged)

    @property
    def _staged(self) -> Staged | None:
        """The running batch's writes, seen only by the thread running it."""
        batch = self._batch
        if batch is None or batch[0] != threading.get_ident():
            return None
        return batch[1]

    def _flush(self, staged: Staged) -> None:
        for name, table in staged.rows.items():
            columns = self.schema.objects[name].stored_fields
            inserted = [
                [record.get(column) for column in columns]
                for record_id, record in table.items()
                if (name, record_id) in staged.created
            ]
            if inserted:
                self.db.executemany(
                    f"INSERT INTO {quote(name)} ({', '.join(map(quote, columns))}) "
                    f"VALUES ({', '.join('?' for _ in columns)})",
                    inserted,
                )
            changed = {
                record_id: record
                for record_id, record in table.items()
                if (name, record_id) not in staged.created
            }
            # One statement sets every column that any of the records changed.
            kept = [
                column
                for column in columns
                if column != "Id"
                and any(
                    (original := staged.read.get((name, record_id))) is None
                    or original.get(column) != record.get(column)
                    for record_id, record in changed.items()
                )
            ]
            updated = [
                [*(record.get(column) for column in kept), record_id]
                for record_id, record in changed.items()
            ]
            if updated and kept:
                self.db.executemany(
                    f"UPDATE {quote(name)} SET {', '.join(f'{quote(c)} = ?' for c in kept)} "
                    "WHERE Id = ?",
                    updated,
                )
        for name, table in list(staged.rows.items()):
            history = self.schema.history_of(self.schema.objects[name])
            if history is None:
                continue
            deleted = [
                record_id
                for record_id, record in table.items()
                if record.get("IsDeleted")
                and not (staged.read.get((name, record_id)) or {}).get("IsDeleted")
            ]
            for start in range(0, len(deleted), IN_CHUNK):
                self._delete_history(history, deleted[start : start + IN_CHUNK])
        if staged.numbered:
            self.db.executemany(
                "INSERT INTO _counter (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                list(staged.numbered.items()),
            )

    def next_number(self, name: str) -> int:
        """The next number of a series (ids, auto-numbers). Never reused, even when the write
        that took it is rolled back: Salesforce never hands out an id twice."""
        with self.lock:
            staged = self._staged
            if staged is not None:
                if staged.counters is None:
                    staged.counters = {
                        str(key): int(value)
                        for key, value in self.db.execute("SELECT name, value FROM _counter")
                    }
                number = max(self._counters.get(name, 0), staged.counters.get(name, 0)) + 1
                self._counters[name] = staged.numbered[name] = number
                return number
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

    def today(self) -> date:
        """The org's date (UTC): TODAY in a query, ``TODAY()`` in a formula."""
        return self.clock().date()

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
        if self._staged is not None:
            found = self._peek(obj, record_id)
            return None if found is None else dict(found)
        return self._select_row(obj, record_id)

    def _peek(self, obj: SObject, record_id: str) -> Record | None:
        """The row, to read only: in a batch, the batch's own copy (not to be changed)."""
        staged = self._staged
        if staged is None:
            return self._select_row(obj, record_id)
        found = staged.staged(obj.name, record_id)
        if found is None:
            key = (obj.name, record_id)
            if key not in staged.read:
                staged.read[key] = self._select_row(obj, record_id)
            found = staged.read[key]
        return found

    def _select_row(self, obj: SObject, record_id: str, *, computed: bool = False) -> Record | None:
        sql = f"SELECT * FROM {quote(obj.name)} WHERE Id = ?"
        if computed and obj.formulas:
            today = self.today()
            formulas = ", ".join(
                f"{formula.sql(lambda name: f't0.{quote(name)}', today)} AS {quote(field)}"
                for field, formula in obj.formulas.items()
            )
            sql = f"SELECT t0.*, {formulas} FROM {quote(obj.name)} AS t0 WHERE t0.Id = ?"
        cursor = self.db.execute(sql, (record_id,))
        values = cursor.fetchone()
        if values is None:
            return None
        return dict(zip((column[0] for column in cursor.description), values, strict=True))

    def live_row(self, obj: SObject, record_id: str, *, computed: bool = False) -> Record:
        """The record, or NOT_FOUND / ENTITY_IS_DELETED as Salesforce answers for an id. With
        ``computed``, as a client reads it: with its formula fields (outside a batch)."""
        normalized = normalize_id(record_id)
        if normalized is None or not normalized.startswith(obj.key_prefix):
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {record_id}"
            )
        if computed:
            assert self._staged is None, "a batch reads records without their formulas"
            found = self._select_row(obj, normalized, computed=True)
        else:
            found = self.row(obj, normalized)
        if found is None:
            raise not_found()
        if found["IsDeleted"]:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return found

    def ids_where(self, obj: SObject, field_name: str, value: Any) -> list[str]:
        if self._staged is not None:
            return [str(row["Id"]) for row in self._staged_where(obj, field_name, value)]
        rows = self.db.execute(
            f"SELECT Id FROM {quote(obj.name)} WHERE {quote(field_name)} = ? AND IsDeleted = 0 "
            "ORDER BY Id",
            (value,),
        )
        return [row[0] for row in rows]

    def rows_where(self, obj: SObject, field_name: str, value: Any) -> list[Record]:
        if self._staged is not None:
            return [dict(row) for row in self._staged_where(obj, field_name, value)]
        cursor = self.db.execute(
            f"SELECT * FROM {quote(obj.name)} WHERE {quote(field_name)} = ? AND IsDeleted = 0 "
            "ORDER BY Id",
            (value,),
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor]

    def _staged_where(self, obj: SObject, field_name: str, value: Any) -> list[Record]:
        """The live rows whose ``field_name`` is ``value``, in a batch: the stored ones (read
        once per value) as the batch has left them, and those it created."""
        staged = self._staged
        assert staged is not None
        if value is None:
            return []
        key = match_key(obj.fields[field_name], value)
        if (obj.name, field_name, key) not in staged.where:
            self._read_where(obj, field_name, [value])
        table = staged.table(obj.name)
        found = {
            row["Id"]: row
            for row in staged.where[obj.name, field_name, key]
            if row["Id"] not in table
        }
        for row in staged.matching(obj, field_name, key):
            if not row["IsDeleted"]:
                found[row["Id"]] = row
        return [found[record_id] for record_id in sorted(found)]

    # -- reading ahead in a batch ------------------------------------------------------------
    def preload_ids(self, obj: SObject, ids: Iterable[str]) -> None:
        """In a batch, read the rows of ``ids`` with one query (per 500 ids)."""
        staged = self._staged
        if staged is None:
            return
        wanted = list(
            dict.fromkeys(
                record_id
                for record_id in ids
                if (obj.name, record_id) not in staged.read
                and staged.staged(obj.name, record_id) is None
            )
        )
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            cursor = self.db.execute(
                f"SELECT * FROM {quote(obj.name)} WHERE Id IN ({', '.join('?' for _ in chunk)})",
                chunk,
            )
            names = [column[0] for column in cursor.description]
            rows = (dict(zip(names, values, strict=True)) for values in cursor)
            found = {row["Id"]: row for row in rows}
            for record_id in chunk:
                staged.read[obj.name, record_id] = found.get(record_id)

    def preload_where(self, obj: SObject, field_name: str, values: Iterable[Any]) -> None:
        """In a batch, read the live rows whose ``field_name`` is one of ``values`` (stored
        form) with one query (per 500 values)."""
        staged = self._staged
        if staged is None:
            return
        spec = obj.fields[field_name]
        wanted: dict[Any, Any] = {}
        for value in values:
            if value is not None:
                key = match_key(spec, value)
                if (obj.name, field_name, key) not in staged.where:
                    wanted.setdefault(key, value)
        if wanted:
            self._read_where(obj, field_name, list(wanted.values()))

    def _read_where(self, obj: SObject, field_name: str, values: list[Any]) -> None:
        staged = self._staged
        assert staged is not None
        spec = obj.fields[field_name]
        for start in range(0, len(values), IN_CHUNK):
            chunk = values[start : start + IN_CHUNK]
            for value in chunk:
                staged.where[obj.name, field_name, match_key(spec, value)] = []
            cursor = self.db.execute(
                f"SELECT * FROM {quote(obj.name)} WHERE {quote(field_name)} "
                f"IN ({', '.join('?' for _ in chunk)}) AND IsDeleted = 0 ORDER BY Id",
                chunk,
            )
            names = [column[0] for column in cursor.description]
            for values_row in cursor:
                row = dict(zip(names, values_row, strict=True))
                staged.read.setdefault((obj.name, row["Id"]), row)
                key = match_key(spec, row[field_name])
                staged.where.setdefault((obj.name, field_name, key), []).append(row)

    def preload_records(self, obj: SObject, records: Iterable[Any]) -> None:
        """In a batch, read with one query per object what checking ``records`` (as sent)
        will look up: the records their lookups name, and the holders of their unique values.
        Fields are found by their exact names (others are simply read when checked)."""
        if self._staged is None:
            return
        looked_up = [
            spec
            for spec in obj.fields.values()
            if (spec.type == "reference" and spec.spec.reference_to) or spec.spec.unique
        ]
        references: dict[str, list[str]] = {}
        unique: dict[str, list[Any]] = {}
        for record in records:
            if not isinstance(record, Mapping):
                continue
            for spec in looked_up:
                value = record.get(spec.name)
                if value is None:
                    continue
                try:
                    converted = to_storage(spec, value)
                except ApiError:
                    continue
                if converted is None:
                    continue
                if spec.type == "reference":
                    named = self._target(spec, str(converted))
                    if named is not None:
                        references.setdefault(named.name, []).append(converted)
                if spec.spec.unique:
                    unique.setdefault(spec.name, []).append(converted)
        for target, ids in references.items():
            target_obj = self.schema.objects.get(target)
            if target_obj is not None:
                self.preload_ids(target_obj, ids)
        for field_name, values in unique.items():
            self.preload_where(obj, field_name, values)

    # -- writes ----------------------------------------------------------------------------
    def _convert(self, obj: SObject, values: Mapping[str, Any], *, creating: bool) -> Record:
        """The values sent, checked and in their stored form. A field the object does not have
        is INVALID_FIELD; fields the client may not set (system, derived, formula and
        auto-number fields, and create-only ones on update) are refused together, in one
        INVALID_FIELD_FOR_INSERT_UPDATE naming them all, as Salesforce refuses them."""
        fields: list[tuple[Field, Any]] = []
        read_only: list[str] = []
        for sent, given in values.items():
            if sent in SKIPPED_KEYS:
                continue
            key, value = sent, given
            lookup = obj.parent(sent) if isinstance(given, Mapping) else None
            if lookup is not None:  # a parent named by its external id: "Parent__r": {...}
                key, value = lookup.name, self._foreign_key(lookup, given)
            spec = obj.field(key)
            if spec is None:
                raise bad_request(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}"
                )
            if not (spec.writable if creating else spec.updateable):
                read_only.append(spec.name)
            fields.append((spec, value))
        if read_only:
            raise bad_request(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(read_only)}. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set.",
                read_only,
            )
        converted: Record = {}
        for spec, value in fields:
            stored = to_storage(spec, value)
            if stored is not None and spec.type == "picklist":
                stored = self._picklist_value(spec, stored)
            converted[spec.name] = stored
        return converted

    def _foreign_key(self, lookup: Field, reference: Mapping[str, Any]) -> str:
        """The id of the parent record a relationship names by one of its external ids
        (``{"Subscription_Id__c": "SUB-1"}``), as Salesforce resolves it on a write."""
        named = {key: item for key, item in reference.items() if key not in SKIPPED_KEYS}
        target = self.sobject(lookup.spec.targets[0])
        if len(named) != 1:
            raise bad_request(
                "INVALID_FIELD",
                f"A foreign key reference to {target.name} names one external id field",
                [lookup.name],
            )
        [(field_name, value)] = named.items()
        spec = target.field(field_name)
        if spec is None or not (spec.spec.external_id or spec.name == "Id"):
            raise bad_request(
                "INVALID_FIELD",
                f"Field name provided, {field_name} is not an External ID or indexed field for "
                f"{target.name}",
                [lookup.name],
            )
        matches = self.ids_where(target, spec.name, to_storage(spec, value))
        if not matches:
            raise bad_request(
                "INVALID_FIELD",
                f"Foreign key external ID: {value} not found for field {spec.name} in entity "
                f"{target.name}",
                [lookup.name],
            )
        if len(matches) > 1:
            raise bad_request(
                "INVALID_FIELD",
                f"More than 1 record found for External ID field: {spec.name}",
                [lookup.name],
            )
        return matches[0]

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

    def _shape(self, obj: SObject) -> _Shape:
        shape = self._shapes.get(obj.name)
        if shape is None:
            shape = self._shapes[obj.name] = _Shape.of(self.schema, obj)
        return shape

    def _check(self, obj: SObject, record: Record, changed: Record) -> None:
        missing = [name for name in self._shape(obj).required if record.get(name) is None]
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

    def _target(self, spec: Field, value: str) -> SObject | None:
        """The object a lookup's id names: by its key prefix among the lookup's targets."""
        for name in spec.spec.targets:
            target = self.schema.objects.get(name)
            if target is not None and value.startswith(target.key_prefix):
                return target
        return None

    def _check_reference(self, spec: Field, value: str) -> None:
        target = self._target(spec, value)
        if target is None:
            raise bad_request(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{spec.name}: id value of incorrect type: {value}",
                [spec.name],
            )
        found = self._peek(target, value)
        if found is None:
            raise bad_request(
                "INVALID_CROSS_REFERENCE_KEY",
                f"{spec.name}: invalid cross reference id",
                [spec.name],
            )
        if found["IsDeleted"]:
            raise bad_request("ENTITY_IS_DELETED", f"{spec.name}: entity is deleted", [spec.name])

    def _refuse_history(self, obj: SObject, done: str) -> None:
        """A field history object is written only by the org."""
        if obj.history_of is not None:
            raise bad_request(
                "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", f"entity type cannot be {done}: {obj.label}"
            )

    def create(self, name: str, values: Mapping[str, Any]) -> str:
        obj = self.sobject(name)
        self._refuse_history(obj, "inserted")
        with self.transaction():
            changed = self._convert(obj, values, creating=True)
            shape = self._shape(obj)
            record: Record = dict(shape.blank)
            for field_name, default in shape.defaults:
                if field_name not in changed:
                    changed[field_name] = default
            record.update(changed)
            record["Id"] = make_id(obj.key_prefix, self.next_number(obj.key_prefix))
            stamp = self.stamp()
            record.update(
                IsDeleted=0, CreatedDate=stamp, LastModifiedDate=stamp, SystemModstamp=stamp
            )
            if obj.text_name and record.get("Name") is None:
                record["Name"] = record["Id"]  # as Salesforce names a record sent without one
            for field_name, display_format in shape.autonumbers:
                record[field_name] = _autonumber(
                    display_format, self.next_number(f"{obj.name}.{field_name}")
                )
            rules.before_write(self, obj, record, None)
            self._check(obj, record, changed)
            if self._staged is not None:
                self._staged.put(obj, record, created=True)
            else:
                columns = list(record)
                self.db.execute(
                    f"INSERT INTO {quote(obj.name)} ({', '.join(map(quote, columns))}) "
                    f"VALUES ({', '.join('?' for _ in columns)})",
                    [record[column] for column in columns],
                )
            self._record_history(obj, record, None)
            rules.after_write(self, obj, record, None)
            return str(record["Id"])

    def update(self, name: str, record_id: str, values: Mapping[str, Any]) -> None:
        obj = self.sobject(name)
        self._refuse_history(obj, "updated")
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
        if self._staged is not None:
            # As the UPDATE below: only the changed columns, over what the record is now.
            current = self.row(obj, record["Id"])
            self._staged.put(obj, {**(current or record), **changes}, created=False)
        else:
            self.db.execute(
                f"UPDATE {quote(obj.name)} "
                f"SET {', '.join(f'{quote(key)} = ?' for key in changes)} WHERE Id = ?",
                [*changes.values(), record["Id"]],
            )
        self._record_history(obj, record, old)

    def _record_history(self, obj: SObject, record: Record, old: Record | None) -> None:
        """The field history of a write of ``record`` (``old``: the record before it, None for
        a new one): a ``created`` row, or a row per tracked field whose value changed, stamped
        as the record. In a batch they are staged with its other writes; otherwise inserted
        at once, with one statement."""
        history = self.schema.history_of(obj)
        if history is None:
            return
        changes: list[tuple[str, str, str | None, str | None]]
        if old is None:
            changes = [(HISTORY_CREATED, "Text", None, None)]
        else:
            changes = [
                (
                    spec.name,
                    HISTORY_DATA_TYPES[spec.type],
                    to_history(spec, old.get(spec.name)),
                    to_history(spec, record.get(spec.name)),
                )
                for spec in obj.tracked_fields
                if old.get(spec.name) != record.get(spec.name)
            ]
        if not changes:
            return
        parent = history.parent_field.name
        rows: list[Record] = []
        for field_name, data_type, old_value, new_value in changes:
            self._history_number += 1
            rows.append(
                {
                    "Id": make_id(HISTORY_PREFIX, self._history_number),
                    "IsDeleted": 0,
                    parent: record["Id"],
                    "CreatedById": USER_ID,
                    "CreatedDate": record["SystemModstamp"],
                    "Field": field_name,
                    "DataType": data_type,
                    "OldValue": old_value,
                    "NewValue": new_value,
                }
            )
        staged = self._staged
        if staged is not None:
            for row in rows:
                staged.put(history, row, created=True)
            return
        columns = history.stored_fields
        self.db.executemany(
            f"INSERT INTO {quote(history.name)} ({', '.join(map(quote, columns))}) "
            f"VALUES ({', '.join('?' for _ in columns)})",
            [[row[column] for column in columns] for row in rows],
        )

    def _delete_history(self, history: SObject, parent_ids: list[str]) -> None:
        """Mark deleted the history rows of deleted records, as Salesforce deletes them."""
        self.db.execute(
            f"UPDATE {quote(history.name)} SET IsDeleted = 1 "
            f"WHERE {quote(history.parent_field.name)} IN ({', '.join('?' for _ in parent_ids)})",
            parent_ids,
        )

    def history_holding(self, record_id: str) -> SObject | None:
        """The field history object that holds the row ``record_id`` (they share a prefix)."""
        for history in self.schema.histories:
            found = self.db.execute(
                f"SELECT 1 FROM {quote(history.name)} WHERE Id = ?", (record_id,)
            ).fetchone()
            if found:
                return history
        return None

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
        self._refuse_history(obj, "deleted")
        with self.transaction():
            record = self.live_row(obj, record_id)
            self._soft_delete(obj, record)

    def _soft_delete(self, obj: SObject, record: Record) -> None:
        self.save(obj, {**record, "IsDeleted": 1}, record)
        history = self.schema.history_of(obj)
        if history is not None and self._staged is None:  # a batch does it when it ends
            self._delete_history(history, [record["Id"]])
        for relation in obj.children.values():
            child = self.schema.objects[relation.child]
            if child.history_of is not None:
                continue
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
