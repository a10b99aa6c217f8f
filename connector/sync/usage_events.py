"""Usage events in: a batch of events, each accepted, acknowledged as a duplicate, or refused
with its reason, the rest of the batch going on.

An event is ``{transaction_id, customer, metric, timestamp, properties}``: ``customer`` is our
customer id or the customer's Salesforce Account Id; ``timestamp`` ISO 8601 with a time zone
(``2026-03-01T12:00:00Z``) or Unix seconds. Its ``transaction_id`` makes it count once: the same
id again (in the batch, or already stored) is a duplicate, acknowledged and not counted. An
event dated later than now (beyond the clock skew allowed) or too long ago is refused.

:func:`ingest` takes a batch of dicts, as the HTTP API and ``connector usage import`` hand
them over, and answers one :class:`EventResult` per element, in order. The accepted events and
their hourly aggregates are stored in the caller's transaction, a few statements per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple, TypeGuard

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.usage import EPOCH, Metric, Reading, Tally
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
        return _parse_text(value)
    if isinstance(value, str):
        return _parse_text(str(value))
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return _unix(repr(value) if isinstance(value, float) else str(value), value)
    raise InvalidInputError(f"timestamp must be a text or a number, not {value!r}")


@lru_cache(maxsize=4096)  # events come in bursts of the same second
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
    return at if at.tzinfo is UTC else at.astimezone(UTC)


def _unix(text: str, value: Any) -> datetime:
    try:
        microseconds = int((Decimal(text) * 1_000_000).to_integral_value())
        return EPOCH + timedelta(microseconds=microseconds)
    except (InvalidOperation, OverflowError):
        raise InvalidInputError(f"timestamp {value!r} is not a time") from None


def _plain(value: Any) -> TypeGuard[str]:
    """A text :func:`_text` takes as it is (checked at once, for the usual case)."""
    return (
        type(value) is str
        and 0 < len(value) <= MAX_TEXT
        and not value[0].isspace()
        and not value[-1].isspace()
    )


def _text(value: Any, name: str) -> str:
    """A field that must be a non-empty text (or an integer), of 255 characters at most."""
    if type(value) is str and 0 < len(value) <= MAX_TEXT and value.strip() == value:
        return value  # the usual case, at once
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            f"{name} is missing" if value in (None, "") else f"{name} {value!r} is not a text"
        )
    if len(value) > MAX_TEXT:
        raise InvalidInputError(f"{name} is longer than {MAX_TEXT} characters")
    return value.strip()


# A valid event: its index in the batch, transaction id, customer, metric, time, properties,
# and reading (None when the metric's filters leave it out). A tuple: batches are large.
_Event = tuple[int, str, str, Metric, datetime, dict[str, Any], Reading | None]


def _parse(
    index: int,
    element: Any,
    metrics: Mapping[str, Metric],
    earliest: datetime,
    latest: datetime,
) -> _Event:
    if not isinstance(element, Mapping):
        raise InvalidInputError(f"an event must be an object ({EXPECTED}), not {element!r}")
    if not FIELDS.issuperset(element):
        unknown = sorted(str(key) for key in element if key not in FIELDS)
        raise InvalidInputError(f"unknown field {unknown[0]!r} (expected {EXPECTED})")
    get = element.get
    given = get("transaction_id"), get("customer"), get("metric")
    transaction_id: str
    customer: str
    code: str
    if _plain(given[0]) and _plain(given[1]) and _plain(given[2]):  # the usual case
        transaction_id, customer, code = given[0], given[1], given[2]
    else:
        transaction_id = _text(given[0], "transaction_id")
        customer = _text(given[1], "customer")
        code = _text(given[2], "metric")
    metric = metrics.get(code)
    if metric is None:
        raise InvalidInputError(f"unknown metric {code!r}")
    stamp = get("timestamp")
    if stamp is None or stamp == "":
        raise InvalidInputError("timestamp is missing")
    at = parse_timestamp(stamp)
    if at > latest:
        raise InvalidInputError(f"timestamp {at.isoformat()} is in the future")
    if at < earliest:
        raise InvalidInputError(f"timestamp {at.isoformat()} is older than {earliest:%Y-%m-%d}")
    properties = get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        raise InvalidInputError(f"properties must be an object, not {properties!r}")
    return (index, transaction_id, customer, metric, at, properties, metric.read(properties))


def _transaction_id(element: Any) -> str | None:
    value = element.get("transaction_id") if isinstance(element, Mapping) else None
    return value if isinstance(value, str) else None


def ingest(
    session: Session,
    metrics: Mapping[str, Metric],
    elements: Sequence[Any],
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
) -> list[EventResult]:
    """Store the events of ``elements`` that are new and valid; one result per element."""
    results: list[EventResult | None] = [None] * len(elements)
    earliest, latest = now - limits.past, now + limits.future
    parsed: list[_Event] = []
    for index, element in enumerate(elements):
        try:
            parsed.append(_parse(index, element, metrics, earliest, latest))
        except InvalidInputError as error:
            results[index] = EventResult(_transaction_id(element), Outcome.REFUSED, str(error))
    customers = storage.customer_ids(session, {event[2] for event in parsed})
    known = storage.known_transactions(session, [event[1] for event in parsed])
    rows: list[storage.NewEvent] = []
    tallies: dict[storage.HourKey, Tally] = {}  # by customer, metric, group, hour
    for index, transaction_id, customer, metric, at, properties, reading in parsed:
        customer_id = customers.get(customer)
        if transaction_id in known:
            results[index] = EventResult(transaction_id, Outcome.DUPLICATE)
            continue
        if customer_id is None:
            reason = f"unknown customer {customer!r}"
            results[index] = EventResult(transaction_id, Outcome.REFUSED, reason)
            continue
        known.add(transaction_id)
        results[index] = EventResult(transaction_id, Outcome.ACCEPTED)
        rows.append((transaction_id, customer_id, metric.code, at, properties))
        if reading is not None:
            key = (
                customer_id,
                metric.code,
                reading[0],
                at.replace(minute=0, second=0, microsecond=0),
            )
            tally = tallies.get(key)
            if tally is None:
                tally = tallies[key] = Tally(metric.aggregation)
            tally.add(reading, at)
    values = {(*key, value) for key, tally in tallies.items() for value in tally.distinct}
    first_day: dict[int, date] = {}  # the day of each customer's earliest event measured
    for customer_id, _, _, hour in tallies:
        day = hour.date()
        if customer_id not in first_day or day < first_day[customer_id]:
            first_day[customer_id] = day
    late.lock_usage(session, first_day, exclusive=False)
    storage.store(session, rows, now, tallies, values)
    late.mark_late(session, first_day)
    return [result for result in results if result is not None]


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
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with transaction(factory) as session:
                return ingest(session, metrics, elements, now, limits)
        except (IntegrityError, OperationalError) as error:
            if not _raced(error) or attempt == ATTEMPTS:
                raise
            log.info("a usage batch raced another writer; trying it again")
    raise AssertionError("unreachable")  # pragma: no cover
