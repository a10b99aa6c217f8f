"""A file's usage events made ready to store apart from the database, then stored (SQLite).

``connector usage import`` splits a batch's work in two, so that a second process can do the
first part while the first stores the previous batch (:mod:`connector.sync.usage_import`):

- :func:`ready` (no database): each event checked and read by its metric (:func:`prepare`,
  as the HTTP API's), its values rendered as SQLite stores them (the time as text, the
  properties as JSON), and its hourly aggregates folded per customer *as given* (the customer
  is not resolved yet);
- :func:`store_ready` (one transaction): the customers resolved; in the usual case (every
  customer known, no transaction id twice) the rows and the aggregates are written as they
  came, in a savepoint; when the unique key of transaction ids refuses them (an event already
  stored), the savepoint is rolled back and the events are read back from their values and
  stored by :func:`store_prepared`, the HTTP API's way, which answers each one.

The result is the same as :func:`store_prepared` on the same lines.
"""

from __future__ import annotations

import copyreg
import json
from array import array
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import compress, repeat
from operator import eq, itemgetter
from typing import Any, NamedTuple

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.usage import (
    Aggregation,
    Metric,
    Reading,
    Tallies,
    Tally,
    hour_of,
    reader_of,
)
from connector.db import usage as storage
from connector.db.engine import is_unique_violation
from connector.errors import InvalidInputError
from connector.sync.usage_events import (
    ACCEPTED,
    DEFAULT_LIMITS,
    DUPLICATE,
    MAX_TEXT,
    EventResult,
    Fields,
    Limits,
    Outcome,
    Prepared,
    moment,
    plain,
    prepare,
    refusal,
    retried,
    store_prepared,
    store_tallied,
)

Refusal = tuple[int, str | None, str]  # line number, transaction id, reason
GivenKey = tuple[str, str, str, datetime]  # customer as given, metric, group, hour
Line = tuple[int, Fields | EventResult]  # line number, and the event's fields or its refusal


class ReadyBatch(NamedTuple):
    """A batch of a file's lines, checked and rendered, its events in the order of the file.
    (A tuple of sequences: it crosses from one process to the other at little cost.)"""

    lines: int  # lines read
    now: datetime  # the time it was checked against, and is received at
    refusals: list[Refusal]  # the lines refused so far, in the order of the file
    numbers: array[int]  # the line number of each event
    transaction_ids: Sequence[str]
    customers: Sequence[str]  # as given
    metrics: Sequence[str]
    times: Sequence[str]  # as SQLite stores them
    properties: Sequence[str]  # as SQLite stores them
    tallies: dict[GivenKey, Tally]  # the events' aggregates, were they all stored
    unique: bool  # no transaction id twice


def ready(
    metrics: Mapping[str, Metric],
    lines: Sequence[tuple[int, Fields | EventResult]],
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
) -> ReadyBatch:
    """The batch of ``lines`` (line number, and the event's fields or its refusal) checked,
    rendered and folded, with no database."""
    prepared = prepare(metrics, [item for _, item in lines], now, limits)
    refusals = [
        (lines[index][0], answer.transaction_id, answer.reason or "refused")
        for index, answer in enumerate(prepared.answers)
        if answer is not None
    ]
    events = prepared.events
    if not events:
        return ReadyBatch(len(lines), now, refusals, array("q"), [], [], [], [], [], {}, True)
    indexes, transaction_ids, given, codes, times, hours, values, readings = zip(
        *events, strict=True
    )
    customers = list(map({name: name for name in given}.__getitem__, given))  # one object a name
    texts = {at: storage._utc_text(at) for at in set(times)}  # bursts of the same second
    tallies: Tallies[GivenKey] = Tallies(lambda key: metrics[key[1]].aggregation)
    for customer, code, at, hour, reading in zip(
        customers, codes, times, hours, readings, strict=True
    ):
        if reading is not None:
            tallies[(customer, code, reading[0], hour)].add(reading, at)
    return ReadyBatch(
        len(lines),
        now,
        refusals,
        array("q", [lines[index][0] for index in indexes]),
        list(transaction_ids),
        customers,
        list(codes),
        list(map(texts.__getitem__, times)),
        list(map(storage.properties_text, values)),
        dict(tallies),  # a plain dictionary crosses to the other process
        len(set(transaction_ids)) == len(transaction_ids),
    )


class CsvLayout(NamedTuple):
    """The columns of a CSV file of events, from its header."""

    width: int
    fields: tuple[int, int, int, int]  # transaction_id, customer, metric, timestamp
    extra: tuple[tuple[int, str], ...]  # the other named columns: the properties

    def fields_of(self, row: Sequence[str]) -> Fields:
        """A row's event (an empty cell is no property)."""
        tx, customer, metric, timestamp = self.fields
        properties = {name: row[index] for index, name in self.extra if row[index]}
        return (row[tx], row[customer], row[metric], row[timestamp], properties)


class CsvRows(NamedTuple):
    """A batch of a CSV file's rows as read (blank lines too), with their line numbers."""

    layout: CsvLayout
    numbers: Sequence[int]
    rows: list[list[str]]

    def lines(self) -> list[Line]:
        """Each row's event, or its refusal (a row of another width); blank lines are none."""
        width, found = self.layout.width, []
        for number, row in zip(self.numbers, self.rows, strict=True):
            if len(row) == width:
                found.append((number, self.layout.fields_of(row)))
            elif row:
                reason = f"{len(row)} columns where the header has {width}"
                found.append((number, refusal(None, reason)))
        return found


def ready_rows(
    metrics: Mapping[str, Metric], batch: CsvRows, now: datetime, limits: Limits = DEFAULT_LIMITS
) -> ReadyBatch:
    """:func:`ready` of a batch of CSV rows. The usual batch (every row a valid event) is made
    ready column by column: each distinct customer, metric, timestamp and set of properties
    is checked, read and rendered once, and the aggregates are folded a metric at a time. Any
    other batch is made ready line by line, by :func:`ready`, which answers each line."""
    made = _ready_columns(metrics, batch, now, limits)
    return made if made is not None else ready(metrics, batch.lines(), now, limits)


def _ready_columns(
    metrics: Mapping[str, Metric], batch: CsvRows, now: datetime, limits: Limits
) -> ReadyBatch | None:
    """The batch made ready by columns; None when a row is not a valid event (or a line is
    blank), so that :func:`ready` answers each."""
    layout, rows = batch.layout, batch.rows
    count = len(rows)
    if not count or set(map(len, rows)) != {layout.width}:
        return None
    columns = list(zip(*rows, strict=True))
    transaction_ids, given, codes, stamps = (columns[index] for index in layout.fields)
    lengths = set(map(len, transaction_ids))
    if min(lengths) == 0 or max(lengths) > MAX_TEXT:
        return None
    if tuple(map(str.strip, transaction_ids)) != transaction_ids:
        return None
    customers = {name: name for name in set(given)}  # one object a name: it crosses cheaper
    if not all(map(plain, customers)):
        return None
    named = set(codes)
    known = {code: code for code in named if code in metrics}
    if len(known) != len(named):
        return None
    earliest, latest = now - limits.past, now + limits.future
    times: dict[str, tuple[datetime, datetime, str]] = {}  # time, hour, as stored
    for stamp in set(stamps):
        if not stamp:
            return None
        try:
            at, hour = moment(stamp)
        except InvalidInputError:
            return None
        if at > latest or at < earliest:
            return None
        times[stamp] = (at, hour, storage._utc_text(at))
    # What each metric reads of each set of properties (None: the event counts for nothing),
    # the metric the event is tallied in, and the properties as stored.
    names = [name for _, name in layout.extra]
    pairs = list(zip(codes, *(columns[index] for index, _ in layout.extra), strict=True))
    readers = {code: reader_of(metrics[code]) for code in known}
    read: dict[tuple[str, ...], tuple[Reading | None, str | None, str | None, str]] = {}
    for pair in set(pairs):
        properties = {name: value for name, value in zip(names, pair[1:], strict=True) if value}
        try:
            reading = readers[pair[0]](properties)
        except InvalidInputError:
            return None
        text = storage.properties_text(properties)
        read[pair] = (
            (reading, reading[0], known[pair[0]], text)
            if reading is not None
            else (None, None, None, text)
        )
    readings, groups, tallied, rendered = zip(*map(read.__getitem__, pairs), strict=True)
    given_customers = list(map(customers.__getitem__, given))
    ats, hours, texts = zip(*map(times.__getitem__, stamps), strict=True)
    keys = list(zip(given_customers, tallied, groups, hours, strict=True))
    tallies: Tallies[GivenKey] = Tallies(lambda key: metrics[key[1]].aggregation)
    for code in set(tallied) - {None}:
        chosen = list(map(eq, tallied, repeat(code)))
        tallies.add_all(
            list(compress(keys, chosen)),
            list(compress(readings, chosen)),
            list(compress(ats, chosen)),
        )
    return ReadyBatch(
        count,
        now,
        [],
        array("q", batch.numbers),
        transaction_ids,
        given_customers,
        list(map(known.__getitem__, codes)),
        texts,
        rendered,
        dict(tallies),
        len(set(transaction_ids)) == count,
    )


TallyState = tuple[
    Aggregation, int, Decimal, Decimal | None, datetime | None, Decimal | None, Decimal, set[str]
]


def _tally(state: TallyState) -> Tally:
    """A tally of a ready batch, as it crossed from the other process."""
    tally = Tally(state[0])
    (_, tally.events, tally.total, tally.maximum) = state[:4]
    (tally.latest_at, tally.latest_value, tally.weighted, tally.distinct) = state[4:]
    return tally


def _crossing(tally: Tally) -> tuple[Any, tuple[TallyState]]:
    """How a tally is pickled: its values as a tuple (a batch can hold one per event), not the
    dictionary of its attributes."""
    state: TallyState = (
        tally.aggregation,
        tally.events,
        tally.total,
        tally.maximum,
        tally.latest_at,
        tally.latest_value,
        tally.weighted,
        tally.distinct,
    )
    return _tally, (state,)


copyreg.pickle(Tally, _crossing)


class Stored(NamedTuple):
    accepted: int
    duplicates: int
    refusals: list[Refusal]  # all the batch's, in the order of the file


def store_ready(
    factory: sessionmaker[Session], metrics: Mapping[str, Metric], batch: ReadyBatch
) -> Stored:
    """Store a ready batch in a transaction of its own (tried again as :func:`ingest_batch`)."""
    if not batch.transaction_ids:
        return Stored(0, 0, batch.refusals)
    return retried(factory, lambda session: _store(session, metrics, batch))


def _store(session: Session, metrics: Mapping[str, Metric], batch: ReadyBatch) -> Stored:
    """The usual case first, on the hope that no event is a duplicate: the batch's events
    inserted as they came, in a savepoint, then its aggregates added; when a transaction id
    was stored already (the unique key refuses it), the savepoint is rolled back, nothing
    else done yet, and each event is answered (:func:`_store_each`)."""
    given = set(batch.customers)
    customers = storage.customer_ids(session, given)
    if (
        batch.unique
        and len(customers) == len(given)
        and len(set(customers.values())) == len(given)  # not two names of one customer
    ):
        received = storage._utc_text(batch.now.astimezone(UTC))
        rows = list(
            zip(
                batch.transaction_ids,
                map(customers.__getitem__, batch.customers),
                batch.metrics,
                batch.times,
                batch.properties,
                repeat(received),
                strict=False,
            )
        )
        tallies = {
            (customers[customer], code, group, hour): tally
            for (customer, code, group, hour), tally in batch.tallies.items()
        }
        storage.savepoints_in_memory(session)

        def insert() -> None:  # the aggregates are added after it, out of the savepoint
            with session.begin_nested():
                storage.insert_rendered(session, rows)

        try:
            store_tallied(session, tallies, insert)
            return Stored(len(rows), 0, batch.refusals)
        except IntegrityError as error:
            if not is_unique_violation(error):
                raise
    known = storage.known_transactions(session, batch.transaction_ids)
    return _store_each(session, metrics, batch, known)


def _store_each(
    session: Session, metrics: Mapping[str, Metric], batch: ReadyBatch, known: set[str]
) -> Stored:
    """The events of a batch with duplicates or customers unknown, each answered: those
    already stored are duplicates, the others are read back from their values and stored by
    :func:`store_prepared`."""
    count = len(batch.transaction_ids)
    answers: list[EventResult | None] = [None] * count
    events = []
    readers = {code: reader_of(metric) for code, metric in metrics.items()}
    for index, (tx, customer, code, text, values) in enumerate(
        zip(
            batch.transaction_ids,
            batch.customers,
            batch.metrics,
            batch.times,
            batch.properties,
            strict=True,
        )
    ):
        if tx in known:
            answers[index] = EventResult(tx, DUPLICATE)
            continue
        at = datetime.fromisoformat(text).replace(tzinfo=UTC)
        properties = json.loads(values)
        reading = readers[code](properties)  # read when the batch was made ready: it reads
        events.append((index, tx, customer, code, at, hour_of(at), properties, reading))
    results = store_prepared(session, metrics, Prepared(answers, events), batch.now)
    outcomes = [result.outcome for result in results]
    refusals = batch.refusals + [
        (batch.numbers[index], result.transaction_id, result.reason or "refused")
        for index, result in enumerate(results)
        if result.outcome is Outcome.REFUSED
    ]
    refusals.sort(key=itemgetter(0))
    return Stored(outcomes.count(ACCEPTED), outcomes.count(DUPLICATE), refusals)
