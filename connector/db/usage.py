"""Storage of usage: events, and their running aggregates per customer, metric, group and
hour, and per UTC day.

Each batch costs a handful of statements whatever its size: one to resolve its customers, one
to find the transaction ids already stored, one executemany of the new events (on SQLite,
their transaction ids then copied from them by one statement), one upsert of the hourly
aggregates and one of the daily ones (adding to the stored ones in SQL, exactly:
:mod:`connector.db.exact`) and one insert of the new distinct values of each, in the caller's
transaction. The daily aggregates are the hourly ones merged (the same rules: they are
associative), so a window of whole days measures the same from either.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, String, Table, bindparam, case, cast, func, select
from sqlalchemy.orm import Session

from connector.billing.usage import ZERO, Aggregation, HourlyUsage, Tally, Usage
from connector.billing.usage_periods import Window
from connector.db import bulk, exact, usage_partitions
from connector.db.tables import (
    Customer,
    ExternalId,
    UsageDaily,
    UsageDailyValue,
    UsageEvent,
    UsageEventId,
    UsageHourly,
    UsageHourlyValue,
)
from connector.db.tables import table_of as _table

SALESFORCE = "salesforce"
CHUNK = 10_000  # values looked up by one statement at most
EVENTS, IDS = _table(UsageEvent), _table(UsageEventId)
HOURLY, VALUES = _table(UsageHourly), _table(UsageHourlyValue)
DAILY, DAY_VALUES = _table(UsageDaily), _table(UsageDailyValue)
HourKey = tuple[int, str, str, datetime]  # customer id, metric, group, hour
DayKey = tuple[int, str, str, date]  # customer id, metric, group, UTC day
HOUR_KEY = ("customer_id", "metric", "group_value", "hour")
DAY_KEY = ("customer_id", "metric", "group_value", "day")
SUMMED = (Aggregation.SUM, Aggregation.WEIGHTED_SUM)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _among(session: Session, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values`` with one bound parameter whatever their number: a JSON array (a
    statement with thousands of parameters costs more to build than to run, and psycopg
    writes an array of thousands of texts element by element, in Python)."""
    if exact.is_sqlite(session):
        each = func.json_each(json.dumps(list(values))).table_valued("value")
        return column.in_(select(each.c.value))
    given = bindparam("among", list(values), type_=JSON, unique=True)
    value = func.json_array_elements_text(given).table_valued("value").c.value
    return column.in_(
        select(value if isinstance(column.type, String) else cast(value, column.type))
    )


def customer_ids(session: Session, keys: Iterable[str]) -> dict[str, int]:
    """Our customer id for each key that names one: a Salesforce Account Id, or our id."""
    wanted = sorted(set(keys))
    found: dict[str, int] = {}
    for chunk in _chunks(wanted):
        rows = session.execute(
            select(ExternalId.external_id, ExternalId.entity_id).where(
                ExternalId.system == SALESFORCE,
                ExternalId.entity == Customer.__tablename__,
                _among(session, ExternalId.external_id, chunk),
            )
        )
        found.update({key: entity_id for key, entity_id in rows})
    numbers = {int(key): key for key in wanted if key not in found and key.isdigit()}
    for chunk in _chunks(sorted(numbers)):
        for (number,) in session.execute(
            select(Customer.id).where(_among(session, Customer.id, chunk))
        ):
            found[numbers[number]] = number
    return found


def known_transactions(session: Session, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` are the transaction ids of stored events."""
    known: set[str] = set()
    for chunk in _chunks(ids):
        known.update(
            session.scalars(
                select(UsageEventId.transaction_id).where(
                    _among(session, UsageEventId.transaction_id, chunk)
                )
            )
        )
    return known


# An event to insert: transaction id, customer id, metric, time, properties.
NewEvent = tuple[str, int, str, datetime, dict[str, Any]]
INSERT_EVENTS = (
    "INSERT INTO usage_events (transaction_id, customer_id, metric, occurred_at, properties, "
    "received_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_ENCODER = (  # json.dumps with its defaults, made once (json.dumps makes one each call)
    c_make_encoder(
        None,
        json.JSONEncoder().default,
        encode_basestring_ascii,
        None,
        ": ",
        ", ",
        False,
        False,
        True,
    )
    if c_make_encoder is not None
    else None
)


def _json(value: dict[str, Any]) -> str:
    """``json.dumps(value)``, faster."""
    if _ENCODER is None:
        return json.dumps(value)  # pragma: no cover - Python without its C accelerator
    return "".join(_ENCODER(value, 0))


def properties_text(properties: dict[str, Any]) -> str:
    """An event's properties as SQLite stores them (JSON)."""
    return _json(properties) if properties else "{}"


def _utc_text(at: datetime) -> str:
    """A UTC datetime as SQLite stores it (as :mod:`connector.db.bulk` does, faster)."""
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031 - the fastest way
        at.year,
        at.month,
        at.day,
        at.hour,
        at.minute,
        at.second,
        at.microsecond,
    )


def insert_events(session: Session, events: Sequence[NewEvent], received_at: datetime) -> None:
    """Insert new events and their transaction ids, one executemany each. SQLite is handed its
    text values at once (the hot path of an import); PostgreSQL takes them by ``COPY``
    (:mod:`connector.db.usage_copy`), after the monthly partitions they need are made."""
    if not events:
        return
    events = sorted(events, key=itemgetter(0))  # two writers lock in the same order
    if not exact.is_sqlite(session):
        from connector.db import usage_copy  # noqa: PLC0415 - psycopg, PostgreSQL's alone

        bind: Any = session.get_bind()
        usage_partitions.ensure(bind.engine, {event[3] for event in events})
        usage_copy.copy_events(session, events, received_at.astimezone(UTC), _json)
        return
    received = _utc_text(received_at.astimezone(UTC))
    texts: dict[datetime, str] = {}  # events come in bursts of the same second
    values = [
        (
            tx,
            customer,
            metric,
            texts.get(at) or texts.setdefault(at, _utc_text(at)),
            properties_text(properties),
            received,
        )
        for tx, customer, metric, at, properties in events
    ]
    insert_rendered(session, values)


# An event to insert on SQLite, as its values are stored: transaction id, customer id, metric,
# time (:func:`_utc_text`), properties (:func:`properties_text`), time received.
Rendered = tuple[str, int, str, str, str, str]


# A new event's id is one more than the largest (SQLite's rowid): the rows of an executemany
# are the last ones.
COPY_IDS = (
    "INSERT INTO usage_event_ids (transaction_id, occurred_at) SELECT transaction_id, "
    "occurred_at FROM usage_events WHERE id > (SELECT max(id) FROM usage_events) - ? "
    "ORDER BY transaction_id"
)


def insert_rendered(session: Session, rows: Sequence[Rendered]) -> None:
    """Insert new events given by their SQLite values, one executemany, and their transaction
    ids, copied from them by one statement."""
    connection = session.connection()
    connection.exec_driver_sql(INSERT_EVENTS, rows)
    connection.exec_driver_sql(COPY_IDS, (len(rows),))


def savepoints_in_memory(session: Session) -> None:
    """Have SQLite keep what rolling back to a savepoint needs (the pages changed since) in
    memory, not in a temporary file: a batch written in a savepoint then costs no more file
    writes than without (the pages of a unique key of random ids are many). Only temporary
    storage moves: durability is as configured."""
    session.connection().exec_driver_sql("PRAGMA temp_store=MEMORY")


def store(
    session: Session,
    events: Sequence[NewEvent],
    received_at: datetime,
    hourly: Mapping[HourKey, Tally],
    values: Iterable[tuple[int, str, str, datetime, str]],
) -> None:
    """Insert new events (whose times are UTC) and add their aggregates to the stored ones:
    by hour, and by day (the batch's hours merged per day: as many as its hour keys, not its
    events), one upsert each; their new distinct values likewise."""
    insert_events(session, events, received_at)
    store_aggregates(session, hourly, values)


def store_aggregates(
    session: Session,
    hourly: Mapping[HourKey, Tally],
    values: Iterable[tuple[int, str, str, datetime, str]],
) -> None:
    """Add a batch's aggregates to the stored ones (:func:`store`, its events inserted)."""
    if hourly:
        exact.prepare(session)
        hours = sorted(hourly.items(), key=_first)
        rows = [_aggregate_row(HOUR_KEY, key, tally.aggregation, tally) for key, tally in hours]
        bulk.upsert(session, HOURLY, rows, HOUR_KEY, _adding(session, HOURLY), as_one=True)
        days: dict[DayKey, tuple[Aggregation, Usage]] = {}
        for (customer, metric, group, hour), tally in hours:
            day = (customer, metric, group, hour.date())
            known = days.get(day)
            usage = tally.usage()
            days[day] = (tally.aggregation, usage if known is None else known[1].merge(usage))
        daily = [_aggregate_row(DAY_KEY, key, *found) for key, found in days.items()]
        bulk.upsert(session, DAILY, daily, DAY_KEY, _adding(session, DAILY), as_one=True)
    met = sorted(values)
    names = (*HOUR_KEY, "value")
    bulk.insert_new(
        session,
        VALUES,
        [dict(zip(names, row, strict=True)) for row in met],
        list(names),
        as_one=True,
    )
    names = (*DAY_KEY, "value")
    by_day = sorted({(c, m, g, h.date(), v) for c, m, g, h, v in met})
    bulk.insert_new(
        session,
        DAY_VALUES,
        [dict(zip(names, row, strict=True)) for row in by_day],
        list(names),
        as_one=True,
    )


def _aggregate_row(
    names: Sequence[str], key: HourKey | DayKey, aggregation: Aggregation, usage: Tally | Usage
) -> dict[str, Any]:
    """The row of an hour's or a day's aggregate: its key's columns ``names``, its values."""
    return {
        **dict(zip(names, key, strict=True)),
        "events": usage.events,
        "total": usage.total if aggregation in SUMMED else None,
        "maximum": usage.maximum,
        "latest_at": usage.latest_at,
        "latest_value": usage.latest_value,
        "weighted": usage.weighted if aggregation is Aggregation.WEIGHTED_SUM else None,
    }


def _first(item: tuple[HourKey, Tally]) -> HourKey:
    return item[0]


def _adding(session: Session, table: Table = HOURLY) -> Any:
    """How a stored aggregate (of ``table``: hourly or daily) takes in a batch's
    (``excluded``): counts, sums and Σ v×t add up, the maximum is the larger, the latest is the
    later (on a tie, the larger value)."""
    stored = table.c

    def changes(excluded: Any) -> dict[str, Any]:
        later = (stored.latest_at.is_(None)) | (excluded.latest_at > stored.latest_at)
        return {
            "events": stored.events + excluded.events,
            "total": exact.add(session, stored.total, excluded.total),
            "maximum": exact.greatest(session, stored.maximum, excluded.maximum),
            "latest_value": case(
                (excluded.latest_at.is_(None), stored.latest_value),
                (later, excluded.latest_value),
                (excluded.latest_at < stored.latest_at, stored.latest_value),
                else_=exact.greatest(session, stored.latest_value, excluded.latest_value),
            ),
            "latest_at": case((later, excluded.latest_at), else_=stored.latest_at),
            "weighted": exact.add(session, stored.weighted, excluded.weighted),
        }

    return changes


def hourly_usage(
    session: Session, customer_id: int, period: Window, parts: Sequence[Window] | None = None
) -> dict[str, list[HourlyUsage]]:
    """A customer's hourly aggregates in ``period``, by metric. The distinct values of unique
    counts come once for each part (default: the whole period), at the first hour they were
    met in it: merged over a part, they are that part's distinct values."""
    found: dict[str, list[HourlyUsage]] = {}
    rows = session.execute(
        select(HOURLY).where(
            HOURLY.c.customer_id == customer_id,
            HOURLY.c.hour >= period.start,
            HOURLY.c.hour < period.end,
        )
    )
    for row in rows:
        found.setdefault(row.metric, []).append(
            HourlyUsage(row.group_value, row.hour, usage_of(row))
        )
    for window in parts or [period]:
        first = func.min(VALUES.c.hour)
        distinct = session.execute(
            select(VALUES.c.metric, VALUES.c.group_value, VALUES.c.value, first)
            .where(
                VALUES.c.customer_id == customer_id,
                VALUES.c.hour >= window.start,
                VALUES.c.hour < window.end,
            )
            .group_by(VALUES.c.metric, VALUES.c.group_value, VALUES.c.value)
        )
        for metric, group, value, hour in distinct:
            usage = Usage(distinct=frozenset((value,)))
            found.setdefault(metric, []).append(HourlyUsage(group, _aware(hour), usage))
    return found


def usage_of(row: Any) -> Usage:
    """The usage an hourly aggregate row holds."""
    return Usage(
        row.events,
        row.total if row.total is not None else ZERO,
        row.maximum,
        row.latest_at,
        row.latest_value,
        row.weighted if row.weighted is not None else ZERO,
    )


def _aware(value: Any) -> datetime:
    """An aggregate's MIN(hour) as a UTC datetime, however the driver returns it."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def levels_before(
    session: Session, customer_id: int, metrics: Sequence[str], before: datetime
) -> dict[str, dict[str, Decimal]]:
    """The level every event before ``before`` left, per metric and group (the opening of a
    recurring weighted sum)."""
    if not metrics:
        return {}
    exact.prepare(session)
    rows = session.execute(
        select(HOURLY.c.metric, HOURLY.c.group_value, exact.total(session, HOURLY.c.total))
        .where(
            HOURLY.c.customer_id == customer_id,
            HOURLY.c.metric.in_(metrics),
            HOURLY.c.hour < before,
        )
        .group_by(HOURLY.c.metric, HOURLY.c.group_value)
    )
    levels: dict[str, dict[str, Decimal]] = {}
    for metric, group, level in rows:
        if level is not None:
            levels.setdefault(metric, {})[group] = level
    return levels
