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
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.usage import EPOCH, Metric, Reading, Tally, hour_of
from connector.db import usage as storage
from connector.db.engine import is_unique_violation, transaction
from connector.errors import InvalidInputError

log = logging.getLogger(__name__)
FIELDS = frozenset({"transaction_id", "customer", "metric", "timestamp", "properties"})
EXPECTED = "transaction_id, customer, metric, timestamp, properties"
MAX_TEXT = 255
ATTEMPTS = 3  # a batch racing another writer of the same transaction id is tried again


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class EventResult:
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


def parse_timestamp(value: Any) -> datetime:
    """An ISO 8601 date and time with a time zone, or Unix seconds, as a UTC datetime."""
    if isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return _unix(text, value)
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInputError(
                f"timestamp {value!r} is neither ISO 8601 (2026-03-01T12:00:00Z) nor Unix seconds"
            ) from None
        if at.tzinfo is None:
            raise InvalidInputError(f"timestamp {value!r} has no time zone (add Z or +00:00)")
        return at if at.tzinfo is UTC else at.astimezone(UTC)
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return _unix(repr(value) if isinstance(value, float) else str(value), value)
    raise InvalidInputError(f"timestamp must be a text or a number, not {value!r}")


def _unix(text: str, value: Any) -> datetime:
    try:
        microseconds = int((Decimal(text) * 1_000_000).to_integral_value())
        return EPOCH + timedelta(microseconds=microseconds)
    except (InvalidOperation, OverflowError):
        raise InvalidInputError(f"timestamp {value!r} is not a time") from None


def _text(element: Mapping[str, Any], name: str) -> str:
    value = element.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            f"{name} is missing" if value in (None, "") else f"{name} {value!r} is not a text"
        )
    if len(value) > MAX_TEXT:
        raise InvalidInputError(f"{name} is longer than {MAX_TEXT} characters")
    return value.strip()


@dataclass(frozen=True, slots=True)
class _Event:
    index: int
    transaction_id: str
    customer: str
    metric: Metric
    at: datetime
    properties: dict[str, Any]
    reading: Reading | None  # None: the metric's filters leave it out


def _parse(
    index: int,
    element: Any,
    metrics: Mapping[str, Metric],
    earliest: datetime,
    latest: datetime,
) -> _Event:
    if not isinstance(element, Mapping):
        raise InvalidInputError(f"an event must be an object ({EXPECTED}), not {element!r}")
    unknown = element.keys() - FIELDS
    if unknown:
        raise InvalidInputError(f"unknown field {sorted(unknown)[0]!r} (expected {EXPECTED})")
    transaction_id = _text(element, "transaction_id")
    customer = _text(element, "customer")
    code = _text(element, "metric")
    metric = metrics.get(code)
    if metric is None:
        raise InvalidInputError(f"unknown metric {code!r}")
    if element.get("timestamp") in (None, ""):
        raise InvalidInputError("timestamp is missing")
    at = parse_timestamp(element["timestamp"])
    if at > latest:
        raise InvalidInputError(f"timestamp {at.isoformat()} is in the future")
    if at < earliest:
        raise InvalidInputError(f"timestamp {at.isoformat()} is older than {earliest:%Y-%m-%d}")
    properties = element.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        raise InvalidInputError(f"properties must be an object, not {properties!r}")
    return _Event(index, transaction_id, customer, metric, at, properties, metric.read(properties))


def _transaction_id(element: Any) -> str | None:
    value = element.get("transaction_id") if isinstance(element, Mapping) else None
    return value if isinstance(value, str) else None


def ingest(
    session: Session,
    metrics: Mapping[str, Metric],
    elements: Sequence[Any],
    now: datetime,
    limits: Limits = Limits(),
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
    customers = storage.customer_ids(session, {event.customer for event in parsed})
    known = storage.known_transactions(session, [event.transaction_id for event in parsed])
    rows: list[dict[str, Any]] = []
    tallies: dict[storage.HourKey, Tally] = {}
    for event in parsed:
        transaction_id = event.transaction_id
        customer_id = customers.get(event.customer)
        if transaction_id in known:
            results[event.index] = EventResult(transaction_id, Outcome.DUPLICATE)
            continue
        if customer_id is None:
            reason = f"unknown customer {event.customer!r}"
            results[event.index] = EventResult(transaction_id, Outcome.REFUSED, reason)
            continue
        known.add(transaction_id)
        results[event.index] = EventResult(transaction_id, Outcome.ACCEPTED)
        rows.append(
            {
                "transaction_id": transaction_id,
                "customer_id": customer_id,
                "metric": event.metric.code,
                "occurred_at": event.at,
                "properties": event.properties,
                "received_at": now,
            }
        )
        if event.reading is not None:
            key = (customer_id, event.metric.code, event.reading[0], hour_of(event.at))
            tally = tallies.get(key)
            if tally is None:
                tally = tallies[key] = Tally(event.metric.aggregation)
            tally.add(event.reading, event.at)
    values = {(*key, value) for key, tally in tallies.items() for value in tally.distinct}
    storage.store(session, rows, {key: tally.usage() for key, tally in tallies.items()}, values)
    return [result for result in results if result is not None]


def ingest_batch(
    factory: sessionmaker[Session],
    metrics: Mapping[str, Metric],
    elements: Sequence[Any],
    now: datetime,
    limits: Limits = Limits(),
) -> list[EventResult]:
    """:func:`ingest` in a transaction of its own. When another writer stores one of the same
    transaction ids meanwhile (PostgreSQL), the batch is rolled back and tried again: that
    event is then a duplicate."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with transaction(factory) as session:
                return ingest(session, metrics, elements, now, limits)
        except IntegrityError as error:
            if not is_unique_violation(error) or attempt == ATTEMPTS:
                raise
            log.info("a usage batch raced another writer; trying it again")
    raise AssertionError("unreachable")  # pragma: no cover
