"""``connector usage import FILE``: usage events from a CSV or JSON Lines file, streamed.

The file is read line by line and stored in batches, each in a transaction of its own, so the
memory stays flat whatever the size and an interrupted import can be run again (the events
already stored are duplicates). A line that cannot be read, or an event refused, is reported
with its line number; the others are imported. A file that is not UTF-8 text stops the import
at the line at fault (the batches before it are stored).

On SQLite, a batch is made ready (read, checked, rendered and folded:
:mod:`connector.sync.usage_batches`) apart from its storing; for a file of ``PARALLEL_FROM``
bytes or more, a second process does that (:mod:`connector.sync.usage_worker`) while this
one stores the batch before, so the import takes two cores. Batches are stored in the order
of the file either way, with the same answers. On PostgreSQL a batch is prepared and stored
as the HTTP API's.

- CSV: a header, then one event a row. The columns ``transaction_id``, ``customer``, ``metric``
  and ``timestamp`` are the event's; every other column is a property (an empty cell is none).
- JSON Lines (``.jsonl``, ``.ndjson``): one event object a line, as the HTTP API takes them.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gc
import itertools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from connector.billing.usage import Metric
from connector.errors import InvalidInputError
from connector.sync.garbage import collection_paused
from connector.sync.usage_batches import (
    CsvLayout,
    CsvRows,
    Line,
    ReadyBatch,
    ready,
    ready_rows,
    store_ready,
)
from connector.sync.usage_events import (
    ACCEPTED,
    DEFAULT_LIMITS,
    DUPLICATE,
    EventResult,
    Limits,
    fields_of,
    prepare,
    refusal,
    store_prepared_batch,
    transaction_id_of,
)
from connector.sync.usage_worker import can_fork, cores, made_apart

Format = Literal["csv", "jsonl"]
COLUMNS = ("transaction_id", "customer", "metric", "timestamp")
SHOWN = 1000  # refusals kept for the summary; all are counted
# The garbage collector is paused during an import and run between batches instead: otherwise
# the many objects a batch makes (none in a cycle) start collections that walk every live
# object, over and over, for a quarter of the import's time. The objects of the batch done are
# collected after each batch, older ones every COLLECTIONS batches, all every 10 times that.
COLLECTIONS = 20
PARALLEL_FROM = 4 * 2**20  # bytes (some 50,000 events): a second process reads and checks
T = TypeVar("T")
Batch = CsvRows | list[Line]  # a CSV file's rows, or a JSON Lines file's events


@dataclass
class ImportSummary:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: int = 0
    refusals: list[tuple[int, str | None, str]] = field(default_factory=list)

    def refuse(self, line: int, transaction_id: str | None, reason: str) -> None:
        self.refused += 1
        if len(self.refusals) < SHOWN:
            self.refusals.append((line, transaction_id, reason))

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "refused": self.refused,
            "refusals": [
                {"line": line, "transaction_id": transaction_id, "reason": reason}
                for line, transaction_id, reason in self.refusals
            ],
        }


def format_of(path: Path, given: str | None) -> Format:
    name = (given or path.suffix.lstrip(".")).lower()
    if name == "csv":
        return "csv"
    if name in ("jsonl", "ndjson", "json"):
        return "jsonl"
    raise InvalidInputError(f"{path}: give --format csv or jsonl (the file name does not say)")


def _csv_batches(path: Path, handle: Any, size: int) -> Iterator[CsvRows]:
    """The file's rows by batches of ``size``, as read, with their line numbers."""
    reader = csv.reader(handle)
    try:
        header = _read(path, lambda: next(reader, None))
        if header is None:
            return
        names = [name.strip() for name in header]
        missing = [name for name in COLUMNS if name not in names]
        if missing:
            raise InvalidInputError(f"line 1: the header has no {', '.join(missing)} column")
        tx, customer, metric, timestamp = (names.index(name) for name in COLUMNS)
        extra = tuple(
            (index, name) for index, name in enumerate(names) if name not in COLUMNS and name
        )
        layout = CsvLayout(len(names), (tx, customer, metric, timestamp), extra)
        while True:
            first = reader.line_num + 1
            rows = _read(path, lambda: list(itertools.islice(reader, size)))
            if not rows:
                return
            yield CsvRows(layout, _line_numbers(first, rows, reader.line_num), rows)
    except csv.Error as error:
        raise InvalidInputError(f"line {reader.line_num}: {error}") from None


def _line_numbers(first: int, rows: list[list[str]], last: int) -> Sequence[int]:
    """The line each row starts on, ``rows`` being lines ``first`` to ``last``: one a row,
    unless a quoted value holds line breaks."""
    if last - first + 1 == len(rows):
        return range(first, last + 1)
    numbers, line = [], first
    for row in rows:
        numbers.append(line)
        line += 1 + sum(
            value.count("\n") + value.count("\r") - value.count("\r\n") for value in row
        )
    return numbers


def _json_lines(handle: Any) -> Iterator[Line]:
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            element = json.loads(text)
        except json.JSONDecodeError as error:
            yield number, refusal(None, f"not JSON: {error.msg} (column {error.colno})")
            continue
        try:
            yield number, fields_of(element)
        except InvalidInputError as error:
            yield number, refusal(transaction_id_of(element), str(error))


def _collect(batches: int) -> None:
    """Collect garbage after the given number of batches (see COLLECTIONS)."""
    if batches % COLLECTIONS:
        gc.collect(0)
    else:
        gc.collect(1 if batches % (COLLECTIONS * 10) else 2)


def _json_batches(path: Path, handle: Any, size: int) -> Iterator[list[Line]]:
    """The file's lines by batches of ``size``, each with its event's fields or refusal."""
    lines = _json_lines(handle)
    while batch := _read(path, lambda: list(itertools.islice(lines, size))):
        yield batch


def _read(path: Path, read: Callable[[], T]) -> T:
    """``read()``; a file that is not UTF-8 text stops with the line and byte at fault."""
    try:
        return read()
    except UnicodeDecodeError as error:
        raise InvalidInputError(f"{path}: {_not_utf8(path, error)}") from None


def _not_utf8(path: Path, error: UnicodeDecodeError) -> str:
    """Where the file is not UTF-8 text (read again to find it: the text is decoded ahead)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as found:
                byte, column = line[found.start], found.start + 1
                return f"line {number} is not UTF-8 text (byte 0x{byte:02x} at column {column})"
    return f"not UTF-8 text ({error.reason})"


def _is_sqlite(factory: sessionmaker[Session]) -> bool:
    bind = factory.kw.get("bind")
    return bind is not None and bind.dialect.name == "sqlite"


def _ready_batches(
    batches: Iterator[Batch],
    metrics: Mapping[str, Metric],
    limits: Limits,
    clock: Callable[[], datetime],
    *,
    collect: bool,
) -> Iterator[ReadyBatch]:
    """The file's batches made ready (in a second process: ``collect`` its garbage)."""
    for count, batch in enumerate(batches, start=1):
        if isinstance(batch, CsvRows):
            yield ready_rows(metrics, batch, clock(), limits)
        else:
            yield ready(metrics, batch, clock(), limits)
        del batch
        if collect:
            _collect(count)


def import_events(
    factory: sessionmaker[Session],
    metrics: Mapping[str, Metric],
    path: Path,
    *,
    file_format: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    batch_size: int = 20_000,
    on_refused: Callable[[int, str | None, str], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    parallel: bool | None = None,
) -> ImportSummary:
    """Import the events of ``path``; ``on_refused(line, transaction_id, reason)`` is called
    for each line refused, as the import goes. On SQLite the file is read and checked by a
    second process while this one stores (``parallel``; default: for files of
    ``PARALLEL_FROM`` bytes and more, on a machine of two cores or more, where the system can
    fork)."""
    kind = format_of(path, file_format)
    summary = ImportSummary()

    def refuse(line: int, transaction_id: str | None, reason: str) -> None:
        summary.refuse(line, transaction_id, reason)
        if on_refused is not None:
            on_refused(line, transaction_id, reason)

    with (
        collection_paused(),  # see COLLECTIONS
        path.open(encoding="utf-8", newline="" if kind == "csv" else None) as handle,
    ):
        batches: Iterator[Batch] = (
            _csv_batches(path, handle, batch_size)
            if kind == "csv"
            else _json_batches(path, handle, batch_size)
        )
        if not _is_sqlite(factory):
            _import_prepared(factory, metrics, batches, summary, refuse, limits=limits, clock=clock)
            return summary
        if parallel is None:
            parallel = path.stat().st_size >= PARALLEL_FROM and cores() > 1
        make = functools.partial(_ready_batches, batches, metrics, limits, clock)
        with (
            made_apart(lambda: make(collect=True), f"reading {path}")
            if parallel and can_fork()
            else contextlib.nullcontext(make(collect=False))
        ) as ready_batches:
            for count, batch in enumerate(ready_batches, start=1):
                summary.lines += batch.lines
                stored = store_ready(factory, metrics, batch)
                summary.accepted += stored.accepted
                summary.duplicates += stored.duplicates
                for refused in stored.refusals:
                    refuse(*refused)
                del batch, stored
                _collect(count)
    return summary


def _import_prepared(
    factory: sessionmaker[Session],
    metrics: Mapping[str, Metric],
    batches: Iterator[Batch],
    summary: ImportSummary,
    refuse: Callable[[int, str | None, str], None],
    *,
    limits: Limits,
    clock: Callable[[], datetime],
) -> None:
    """The import on PostgreSQL: each batch prepared, then stored as the HTTP API's."""

    def report(batch: list[Line], results: Sequence[EventResult]) -> None:
        """Count a batch's results; report its refusals in the order of the file."""
        outcomes = [result[1] for result in results]
        accepted, duplicates = outcomes.count(ACCEPTED), outcomes.count(DUPLICATE)
        summary.accepted += accepted
        summary.duplicates += duplicates
        if accepted + duplicates == len(outcomes):
            return
        for (number, _), (transaction_id, outcome, reason) in zip(batch, results, strict=True):
            if outcome is not ACCEPTED and outcome is not DUPLICATE:
                refuse(number, transaction_id, reason or "refused")

    for count, given in enumerate(batches, start=1):
        batch = given.lines() if isinstance(given, CsvRows) else given
        summary.lines += len(batch)
        now = clock()
        # Checked and read before the transaction: the database is locked the least.
        prepared = prepare(metrics, [item for _, item in batch], now, limits)
        if prepared.events:
            results = store_prepared_batch(factory, metrics, prepared, now)
        else:  # nothing to store: the refusals alone
            results = prepared.answers  # type: ignore[assignment]
        report(batch, results)
        del given, batch, prepared, results
        _collect(count)
