"""Usage events in: a batch of events, each accepted, acknowledged as a duplicate, or refused
with its reason, the rest of the batch going on.

An event is ``{transaction_id, customer, metric, timestamp, properties}``: ``customer`` is our
customer id or the customer's Salesforce Account Id; ``timestamp`` ISO 8601 with a time zone
(``2026-03-01T12:00:00Z``) or Unix seconds. Its ``transaction_id`` makes it count once: the same
id again (in the batch, or already stored) is a duplicate, acknowledged and not counted. An
event dated later than now (beyond the clock skew allowed) or too long ago is refused.

:func:`ingest` takes a batch of dicts, as the HTTP API hands them over, and answers one
:class:`EventResult` per element, in order. The accepted events and their hourly aggregates are
stored in the caller's transaction, a few statements per batch. It is :func:`prepare` (each
event checked and read by its metric, no database) then :func:`store_prepared` (customers
resolved, duplicates dropped, aggregates folded and stored): ``connector usage import`` calls
them apart, with each line's fields, so that a batch is prepared before its transaction begins.
This is the hot path of ingestion: the usual case is checked first and at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple, TypeGuard, TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.usage import EPOCH, Metric, Reading, Tallies, Tally, hour_of, reader_of
from connector.db import usage as storage
from connector.db import usage_late as late
from connector.db.engine import is_unique_violation, transaction
from connector.errors import InvalidInputError

log = logging.getLogger(__name__)
FIELDS = frozenset({"transaction_id", "customer", "metric", "timestamp", "properties"})
EXPECTED = "transaction_id, customer, metric, timestamp, properties"
MAX_TEXT = 255
ATTEMPTS = 3  # a batch racing another writer of the same transaction id is tried again
DEADLOCK, SERIALIZATION_FAILURE = "40P01", "40001"
T = TypeVar("T")


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


class EventResult(NamedTuple):
    transaction_id: str | None
    outcome: Outcome
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"transaction_id": self.transaction_id, "status": self.outcome}
        if self.reason is not None:
            found["reason"] = self.reason
        return found


@dataclass(frozen=True, slots=True)
class Limits:
    """How far from now an event may be dated."""

    future: timedelta = timedelta(minutes=5)
    past: timedelta = timedelta(days=400)

    @classmethod
    def of(cls, max_future_seconds: int, max_age_days: int) -> Limits:
        return cls(timedelta(seconds=max_future_seconds), timedelta(days=max_age_days))


DEFAULT_LIMITS = Limits()


def parse_timestamp(value: Any) -> datetime:
    """An ISO 8601 date and time with a time zone, or Unix seconds, as a UTC datetime."""
    if type(value) is str:
        return moment(value)[0]
    if isinstance(value, str):
        return moment(str(value))[0]
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return _unix(repr(value) if isinstance(value, float) else str(value), value)
    raise InvalidInputError(f"timestamp must be a text or a number, not {value!r}")


@lru_cache(maxsize=4096)  # events come in bursts of the same second
def moment(value: str) -> tuple[datetime, datetime]:
    """A timestamp given as text: its time (UTC), and the hour it falls in."""
    at = _parse_text(value)
    return at, hour_of(at)


def _parse_text(value: str) -> datetime:
    text = value.strip()
    if text.replace(".", "", 1).isdigit():
        return _unix(text, value)
    try:
        at = datetime.fromisoformat(text)  # 2026-03-01T12:00:00Z, +09:00, or a space
    except ValueError:
        raise InvalidInputError(
            f"timestamp {value!r} is neither ISO 8601 (2026-03-01T12:00:00Z) nor Unix seconds"
        ) from None
    if at.tzinfo is None:
        raise InvalidInputError(f"timestamp {value!r} has no time zone (add Z or +00:00)")
    try:
        return at if at.tzinfo is UTC else at.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00
        raise InvalidInputError(f"timestamp {value!r} is not a time") from None


def _unix(text: str, value: Any) -> datetime:
    try:
        microseconds = int((Decimal(text) * 1_000_000).to_integral_value())
        return EPOCH + timedelta(microseconds=microseconds)
    except (InvalidOperation, OverflowError):
        raise InvalidInputError(f"timestamp {value!r} is not a time") from None


def plain(value: Any) -> TypeGuard[str]:
    """A text :func:`_text` takes as it is (checked at once, for the usual case)."""
    return type(value) is str and 0 < len(value) <= MAX_TEXT and value.strip() == value


def _text(value: Any, name: str) -> str:
    """A field that must be a non-empty text (or an integer), of 255 characters at most."""
    if plain(value):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            f"{name} is missing" if value in (None, "") else f"{name} {value!r} is not a text"
        )
    if len(value) > MAX_TEXT:
        raise InvalidInputError(f"{name} is longer than {MAX_TEXT} characters")
    return value.strip()


# An event's fields as given: transaction id, customer, metric, timestamp, properties.
Fields = tuple[Any, Any, Any, Any, Any]


def fields_of(element: Any) -> Fields:
    """The fields of an event given as an object (the HTTP API, JSON Lines)."""
    if not isinstance(element, Mapping):
        raise InvalidInputError(f"an event must be an object ({EXPECTED}), not {element!r}")
    if not FIELDS.issuperset(element):
        unknown = sorted(str(key) for key in element if key not in FIELDS)
        raise InvalidInputError(f"unknown field {unknown[0]!r} (expected {EXPECTED})")
    get = element.get
    return (
        get("transaction_id"),
        get("customer"),
        get("metric"),
        get("timestamp"),
        get("properties"),
    )


def refusal(transaction_id: Any, reason: str) -> EventResult:
    """The answer to an event refused (with its transaction id, when it is a text)."""
    given = transaction_id if isinstance(transaction_id, str) else None
    return EventResult(given, Outcome.REFUSED, reason)


def transaction_id_of(element: Any) -> str | None:
    value = element.get("transaction_id") if isinstance(element, Mapping) else None
    return value if isinstance(value, str) else None


# A valid event: its index in the batch, transaction id, customer, metric code, time, hour,
# properties, and reading (None when the metric's filters leave it out). A tuple: batches are
# large.
_Event = tuple[int, str, str, str, datetime, datetime, dict[str, Any], Reading | None]


class Prepared(NamedTuple):
    """A batch checked and read, before the database is asked: the answers to the items
    refused (None for the others), and the valid events."""

    answers: list[EventResult | None]
    events: list[_Event]


def prepare(
    metrics: Mapping[str, Metric],
    items: Sequence[Fields | EventResult],
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
) -> Prepared:
    """Check each event of ``items`` and read it with its metric (no database: this can run
    while the previous batch is written). The checks of the usual case (plain texts, a
    timestamp already met, a metric's own reader) come first."""
    earliest, latest = now - limits.past, now + limits.future
    results: list[EventResult | None] = [None] * len(items)
    readers = {code: reader_of(metric) for code, metric in metrics.items()}
    checked: set[str] = set()  # customers already checked
    valid: list[_Event] = []
    append = valid.append
    for index, item in enumerate(items):
        if isinstance(item, EventResult):
            results[index] = item
            continue
        tx, customer, code, stamp, properties = item
        try:
            if not plain(tx):
                tx = _text(tx, "transaction_id")
            if type(customer) is not str or customer not in checked:
                customer = _text(customer, "customer")
                checked.add(customer)
            reader = readers.get(code) if type(code) is str else None
            if reader is None:
                code = _text(code, "metric")
                reader = readers.get(code)
                if reader is None:
                    raise InvalidInputError(f"unknown metric {code!r}")
            if type(stamp) is str and stamp:
                at, hour = moment(stamp)
            elif stamp is None or stamp == "":
                raise InvalidInputError("timestamp is missing")
            else:
                at = parse_timestamp(stamp)
                hour = hour_of(at)
            if at > latest:
                raise InvalidInputError(f"timestamp {at.isoformat()} is in the future")
            if at < earliest:
                raise InvalidInputError(
                    f"timestamp {at.isoformat()} is older than {earliest:%Y-%m-%d}"
                )
            if properties is None:
                properties = {}
            elif not isinstance(properties, dict):
                raise InvalidInputError(f"properties must be an object, not {properties!r}")
            append((index, tx, customer, code, at, hour, properties, reader(properties)))
        except InvalidInputError as error:
            results[index] = refusal(item[0], str(error))
    return Prepared(results, valid)


def ingest(
    session: Session,
    metrics: Mapping[str, Metric],
    elements: Sequence[Any],
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
) -> list[EventResult]:
    """Store the events of ``elements`` that are new and valid; one result per element."""
    items: list[Fields | EventResult] = []
    for element in elements:
        try:
            items.append(fields_of(element))
        except InvalidInputError as error:
            items.append(refusal(transaction_id_of(element), str(error)))
    return ingest_fields(session, metrics, items, now, limits)


_new = tuple.__new__  # an EventResult at C speed (NamedTuple's __new__ is Python)
ACCEPTED, DUPLICATE = Outcome.ACCEPTED, Outcome.DUPLICATE


def ingest_fields(
    session: Session,
    metrics: Mapping[str, Metric],
    items: Sequence[Fields | EventResult],
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
) -> list[EventResult]:
    """:func:`ingest` of events given by their fields (:func:`fields_of`, or a file's
    columns), or already answered (refused when read); one result per item, in order."""
    return store_prepared(session, metrics, prepare(metrics, items, now, limits), now)


def store_prepared(
    session: Session, metrics: Mapping[str, Metric], prepared: Prepared, now: datetime
) -> list[EventResult]:
    """Store the events of a prepared batch that are new and of known customers; one result
    per item of the batch."""
    results = list(prepared.answers)
    parsed = prepared.events
    customers = storage.customer_ids(session, {event[2] for event in parsed})
    known = storage.known_transactions(session, [event[1] for event in parsed])
    rows: list[storage.NewEvent] = []
    append = rows.append
    tallies: Tallies[storage.HourKey] = Tallies(lambda key: metrics[key[1]].aggregation)
    for index, transaction_id, customer, code, at, hour, properties, reading in parsed:
        if transaction_id in known:
            results[index] = _new(EventResult, (transaction_id, DUPLICATE, None))
            continue
        customer_id = customers.get(customer)
        if customer_id is None:
            reason = f"unknown customer {customer!r}"
            results[index] = EventResult(transaction_id, Outcome.REFUSED, reason)
            continue
        known.add(transaction_id)
        results[index] = _new(EventResult, (transaction_id, ACCEPTED, None))
        append((transaction_id, customer_id, code, at, properties))
        if reading is not None:
            tallies[(customer_id, code, reading[0], hour)].add(reading, at)
    store_tallied(session, tallies, lambda: storage.insert_events(session, rows, now))
    return results  # type: ignore[return-value]  # every item answered


def store_tallied(
    session: Session, tallies: Mapping[storage.HourKey, Tally], insert: Callable[[], None]
) -> None:
    """Store a batch's new events (``insert()``) and add their aggregates ``tallies`` to the
    stored ones; subscriptions whose usage was billed past their earliest day are marked."""
    values = {(*key, value) for key, tally in tallies.items() for value in tally.distinct}
    first_day: dict[int, date] = {}  # the day of each customer's earliest event measured
    for customer_id, _, _, hour in tallies:
        day = hour.date()
        if customer_id not in first_day or day < first_day[customer_id]:
            first_day[customer_id] = day
    late.lock_usage(session, first_day, exclusive=False)
    insert()
    storage.store_aggregates(session, tallies, values)
    late.mark_late(session, first_day)


def _raced(error: IntegrityError | OperationalError) -> bool:
    """True when the batch lost a race with another writer (the same transaction id stored
    meanwhile, or a deadlock PostgreSQL broke): it can be tried again."""
    if isinstance(error, IntegrityError):
        return is_unique_violation(error)
    return getattr(error.orig, "sqlstate", None) in (DEADLOCK, SERIALIZATION_FAILURE)


def ingest_batch(
    factory: sessionmaker[Session],
    metrics: Mapping[str, Metric],
    elements: Sequence[Any],
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
) -> list[EventResult]:
    """:func:`ingest` in a transaction of its own. When another writer stores one of the same
    transaction ids meanwhile (PostgreSQL), the batch is rolled back and tried again: that
    event is then a duplicate. Rows are written in key order, so that two writers lock them in
    the same order."""
    return retried(factory, lambda session: ingest(session, metrics, elements, now, limits))


def store_prepared_batch(
    factory: sessionmaker[Session],
    metrics: Mapping[str, Metric],
    prepared: Prepared,
    now: datetime,
) -> list[EventResult]:
    """:func:`store_prepared` in a transaction of its own, as :func:`ingest_batch`."""
    return retried(factory, lambda session: store_prepared(session, metrics, prepared, now))


def retried(factory: sessionmaker[Session], step: Callable[[Session], T]) -> T:
    """``step(session)`` in a transaction of its own, tried again when it raced another
    writer (:func:`ingest_batch`)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with transaction(factory) as session:
                return step(session)
        except (IntegrityError, OperationalError) as error:
            if not _raced(error) or attempt == ATTEMPTS:
                raise
            log.info("a usage batch raced another writer; trying it again")
    raise AssertionError("unreachable")  # pragma: no cover
