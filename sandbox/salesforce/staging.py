"""Writes held in memory for one batch of records, and the rows the batch has read.

A batch (an sObject Collections call, a slice of a Bulk API ingest job) runs the org's
ordinary per-record code, but its inserts and updates land here instead of in SQLite: later
records of the batch read them back (a record created by the batch is found by its external
id, a record updated twice is updated from its first update), a record that fails rolls back
only its own writes (a mark in the journal, as a savepoint would), and at the end the batch
writes every insert with one ``executemany`` and every update with another.

Rows read from SQLite are kept for the batch (SQLite does not change under it: the batch holds
the org's lock and is the only writer), so many records can be looked up with one query before
they are processed: by id (:meth:`Staged.read`) or by a field's values (:meth:`Staged.where`).
"""

from __future__ import annotations

from typing import Any

from sandbox.salesforce.schema import Field, SObject

Record = dict[str, Any]


def match_key(spec: Field, value: Any) -> Any:
    """What SQL's ``=`` compares for the column: text folded as the ``SF_NOCASE`` collation
    folds it, ids and other values as they are."""
    if isinstance(value, str) and spec.is_text and spec.type not in ("id", "reference"):
        return value.casefold()
    return value


def _coercions(obj: SObject) -> list[tuple[str, bool]]:
    """The numeric columns of ``obj``: (name, True) for REAL, (name, False) for INTEGER."""
    return [
        (name, spec.is_number and spec.type != "int")
        for name, spec in obj.fields.items()
        if spec.type in ("boolean", "int") or spec.is_number
    ]


def stored(columns: list[tuple[str, bool]], record: Record) -> Record:
    """``record`` as SQLite would give it back: whole numbers in REAL columns as floats,
    whole floats and booleans in INTEGER columns as ints."""
    for name, real in columns:
        value = record.get(name)
        if value is None or isinstance(value, str):
            continue
        if real:
            if isinstance(value, int):
                record[name] = float(value)
        elif isinstance(value, bool) or (isinstance(value, float) and value.is_integer()):
            record[name] = int(value)
    return record


class Staged:
    """The writes of one batch (by object, in the order they were first made) and its reads."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Record]] = {}
        self.created: set[tuple[str, str]] = set()
        self.read: dict[tuple[str, str], Record | None] = {}
        self.where: dict[tuple[str, str, Any], list[Record]] = {}
        self.counters: dict[str, int] | None = None
        self.numbered: dict[str, int] = {}
        self._objects: dict[str, SObject] = {}
        self._numeric: dict[str, list[tuple[str, bool]]] = {}
        self._journal: list[tuple[str, str, Record | None, bool]] = []
        self._indexes: dict[tuple[str, str], dict[Any, set[str]]] = {}

    # -- writes ----------------------------------------------------------------------------
    def put(self, obj: SObject, record: Record, *, created: bool) -> None:
        """Stage ``record`` (all its columns) as inserted (``created``) or updated."""
        record_id = str(record["Id"])
        self._objects[obj.name] = obj
        table = self.rows.setdefault(obj.name, {})
        previous = table.get(record_id)
        was_created = (obj.name, record_id) in self.created
        self._journal.append((obj.name, record_id, previous, was_created))
        if previous is not None:
            self._unindex(obj.name, record_id, previous)
        numeric = self._numeric.get(obj.name)
        if numeric is None:
            numeric = self._numeric[obj.name] = _coercions(obj)
        record = table[record_id] = stored(numeric, dict(record))
        self._index(obj.name, record_id, record)
        if created:
            self.created.add((obj.name, record_id))

    def mark(self) -> int:
        return len(self._journal)

    def rollback(self, mark: int) -> None:
        """Undo every write staged since ``mark``, latest first."""
        while len(self._journal) > mark:
            name, record_id, previous, was_created = self._journal.pop()
            table = self.rows[name]
            self._unindex(name, record_id, table[record_id])
            if previous is None:
                del table[record_id]
            else:
                table[record_id] = previous
                self._index(name, record_id, previous)
            if not was_created:
                self.created.discard((name, record_id))

    # -- reads -----------------------------------------------------------------------------
    def staged(self, name: str, record_id: str) -> Record | None:
        """The record as the batch left it, or None when the batch has not written it."""
        return self.rows.get(name, {}).get(record_id)

    def table(self, name: str) -> dict[str, Record]:
        return self.rows.get(name, {})

    def matching(self, obj: SObject, field_name: str, key: Any) -> list[Record]:
        """The staged records of ``obj`` whose ``field_name`` matches ``key`` (deleted too)."""
        table = self.rows.get(obj.name, {})
        index = self._indexes.get((obj.name, field_name))
        if index is None:
            self._objects[obj.name] = obj
            index = self._indexes[obj.name, field_name] = {}
            spec = obj.fields[field_name]
            for record_id, record in table.items():
                index.setdefault(match_key(spec, record.get(field_name)), set()).add(record_id)
        return [table[record_id] for record_id in sorted(index.get(key, ()))]

    # -- indexes of staged records by field (built when a field is first looked up) --------
    def _index(self, name: str, record_id: str, record: Record) -> None:
        for (index_name, field_name), index in self._indexes.items():
            if index_name == name:
                spec = self._objects[name].fields[field_name]
                index.setdefault(match_key(spec, record.get(field_name)), set()).add(record_id)

    def _unindex(self, name: str, record_id: str, record: Record) -> None:
        for (index_name, field_name), index in self._indexes.items():
            if index_name == name:
                spec = self._objects[name].fields[field_name]
                index.get(match_key(spec, record.get(field_name)), set()).discard(record_id)
