"""``connector usage import FILE``: usage events from a CSV or JSON Lines file, streamed.

The file is read line by line and stored in batches, each in a transaction of its own, so the
memory stays flat whatever the size and an interrupted import can be run again (the events
already stored are duplicates). A line that cannot be read, or an event refused, is reported
with its line number; the others are imported.

- CSV: a header, then one event a row. The columns ``transaction_id``, ``customer``, ``metric``
  and ``timestamp`` are the event's; every other column is a property (an empty cell is none).
- JSON Lines (``.jsonl``, ``.ndjson``): one event object a line, as the HTTP API takes them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.orm import Session, sessionmaker

from connector.billing.usage import Metric
from connector.errors import InvalidInputError
from connector.sync.usage_events import DEFAULT_LIMITS, EventResult, Limits, Outcome, ingest_batch

Format = Literal["csv", "jsonl"]
COLUMNS = ("transaction_id", "customer", "metric", "timestamp")
SHOWN = 1000  # refusals kept for the summary; all are counted
Line = tuple[int, Any]  # line number, and the event's dict or the reason it is unreadable


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


class Unreadable(str):
    """The reason a line holds no event."""


def _csv_lines(handle: Any) -> Iterator[Line]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return
    names = [name.strip() for name in header]
    missing = [name for name in COLUMNS if name not in names]
    if missing:
        raise InvalidInputError(f"line 1: the header has no {', '.join(missing)} column")
    tx, customer, metric, timestamp = (names.index(name) for name in COLUMNS)
    extra = [(index, name) for index, name in enumerate(names) if name not in COLUMNS and name]
    width = len(names)
    start = reader.line_num + 1  # a quoted value may hold line breaks: a row's first line
    for row in reader:
        line, start = start, reader.line_num + 1
        if len(row) != width:
            if row:
                reason = f"{len(row)} columns where the header has {width}"
                yield line, Unreadable(reason)
            continue
        yield (
            line,
            {
                "transaction_id": row[tx],
                "customer": row[customer],
                "metric": row[metric],
                "timestamp": row[timestamp],
                "properties": {name: row[index] for index, name in extra if row[index]},
            },
        )


def _json_lines(handle: Any) -> Iterator[Line]:
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            yield number, json.loads(text)
        except json.JSONDecodeError as error:
            yield number, Unreadable(f"not JSON: {error.msg} (column {error.colno})")


def import_events(
    factory: sessionmaker[Session],
    metrics: Mapping[str, Metric],
    path: Path,
    *,
    file_format: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    batch_size: int = 5000,
    on_refused: Callable[[int, str | None, str], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ImportSummary:
    """Import the events of ``path``; ``on_refused(line, transaction_id, reason)`` is called
    for each line refused, as the import goes."""
    kind = format_of(path, file_format)
    summary = ImportSummary()

    def refuse(line: int, transaction_id: str | None, reason: str) -> None:
        summary.refuse(line, transaction_id, reason)
        if on_refused is not None:
            on_refused(line, transaction_id, reason)

    def flush(batch: list[Line]) -> None:
        """Store a batch's events; report its refusals in the order of the file."""
        events = [event for _, event in batch if not isinstance(event, Unreadable)]
        results = iter(ingest_batch(factory, metrics, events, clock(), limits) if events else [])
        for number, event in batch:
            if isinstance(event, Unreadable):
                refuse(number, None, str(event))
                continue
            result: EventResult = next(results)
            if result.outcome is Outcome.ACCEPTED:
                summary.accepted += 1
            elif result.outcome is Outcome.DUPLICATE:
                summary.duplicates += 1
            else:
                refuse(number, result.transaction_id, result.reason or "refused")

    with path.open(encoding="utf-8", newline="" if kind == "csv" else None) as handle:
        lines = _csv_lines(handle) if kind == "csv" else _json_lines(handle)
        batch: list[Line] = []
        for line in lines:
            summary.lines += 1
            batch.append(line)
            if len(batch) >= batch_size:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
    return summary
