"""The usage a billing run reads for a batch of customers: their aggregates of some metrics in
a time range (daily ones when it is whole days, as a billing run's periods are; hourly ones
otherwise), and the levels earlier events left (recurring weighted sums), with one query per
table whatever the number of customers and events."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    Integer,
    Table,
    and_,
    bindparam,
    column,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from connector.billing.usage import ZERO, HourlyUsage, Usage
from connector.billing.usage_periods import Window
from connector.db import exact
from connector.db.usage import (
    DAILY,
    DAY_VALUES,
    HOURLY,
    VALUES,
    _among,
    _aware,
    _utc_text,
    usage_of,
)


@dataclass
class CustomerUsage:
    """One customer's aggregates by metric, and levels by metric and group before them."""

    hours: dict[str, list[HourlyUsage]] = field(default_factory=dict)
    levels: dict[str, dict[str, Decimal]] = field(default_factory=dict)


@dataclass(frozen=True)
class Grain:
    """The aggregates read: hourly (:data:`HOURLY`, by ``hour``) or daily (by ``day``)."""

    table: Table
    values: Table
    column: str

    @property
    def daily(self) -> bool:
        return self.column == "day"

    def key(self, table: Table) -> Any:
        return table.c[self.column]

    def bound(self, at: datetime) -> datetime | date:
        """An instant (a whole day's when daily) as this grain's column holds it."""
        return at.astimezone(UTC).date() if self.daily else at

    def text(self, at: datetime) -> str:
        """:meth:`bound` as SQLite stores it."""
        return self.bound(at).isoformat() if self.daily else _utc_text(at.astimezone(UTC))


# SQLite: at most this many segments of distinct days in a batch are read as ranges of the
# aggregates' key, each its own part of one statement (more: joined to the list of segments)
MAX_BOUNDS = 64

HOURS = Grain(HOURLY, VALUES, "hour")
DAYS = Grain(DAILY, DAY_VALUES, "day")


def moment(value: Any) -> datetime:
    """An hour's or a day's start as a UTC datetime, however the driver returns it."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(), tzinfo=UTC)
    return _aware(value)


def on_days(windows: Mapping[int, Window], cuts: Mapping[int, Collection[datetime]]) -> bool:
    """Whether every window and cut begins and ends at midnight UTC (whole days)."""
    bounds = itertools.chain(
        (w.start for w in windows.values()),
        (w.end for w in windows.values()),
        itertools.chain.from_iterable(cuts.values()),
    )
    return all(at.astimezone(UTC).time() == time() for at in bounds)


def batch_usage(
    session: Session,
    windows: Mapping[int, Window],
    metrics: Collection[str],
    *,
    distinct: Collection[str] = (),
    recurring: Collection[str] = (),
    summed: Collection[str] = (),
    cuts: Mapping[int, Collection[datetime]] | None = None,
    by_day: bool = False,
) -> dict[int, CustomerUsage]:
    """Per customer id, its aggregates of ``metrics`` in its window of ``windows``; the distinct
    values of the ``distinct`` metrics (unique counts) with them, each at every hour it was met;
    for the ``recurring`` metrics, the level left by the events before the earliest window (the
    aggregates from there to a customer's window are among its hours).

    The ``summed`` metrics (those whose hours add up: counts, sums, weighted sums) are added
    up in the database instead, over the segments of a customer's window between its ``cuts``
    (the bounds of its periods and of their parts): an aggregate per segment, dated at its
    start, measures exactly what its hours would, and the rows read do not grow with the
    hours used.

    ``by_day``, when every window and cut is on whole days (a billing run's periods and parts):
    the daily aggregates are read instead of the hourly ones, a day's dated at its midnight,
    which measure the same (no cut falls inside a day); and with ``cuts``, the distinct values
    once per segment they were met in (without the unique counts' aggregates, which measure
    nothing more). The rows read then grow with the days of the windows at most (maxima,
    latest values), not with the hours used."""
    found: dict[int, CustomerUsage] = {customer: CustomerUsage() for customer in windows}
    if not windows or not metrics:
        return found
    grain = DAYS if by_day and on_days(windows, cuts or {}) else HOURS
    table = grain.table
    customers = sorted(windows)
    start = min(window.start for window in windows.values())
    end = max(window.end for window in windows.values())
    summed = sorted(set(summed) & set(metrics))
    by_segment = grain.daily and cuts is not None  # distinct values too
    codes = sorted(set(metrics) - set(summed) - (set(distinct) if by_segment else set()))
    if summed:
        _add_segments(session, found, windows, grain, start=start, cuts=cuts or {}, metrics=summed)
    if not codes and not distinct and not recurring:
        return found

    def inside(customer: int, hour: datetime) -> bool:
        # hours before a customer's own window are kept: they move a weighted sum's level
        return hour < windows[customer].end

    rows = (
        session.execute(
            select(table).where(
                _among(session, table.c.customer_id, customers),
                table.c.metric.in_(codes),
                grain.key(table) >= grain.bound(start),
                grain.key(table) < grain.bound(end),
            )
        )
        if codes
        else ()
    )
    for row in rows:
        hour = moment(row._mapping[grain.column])
        if not inside(row.customer_id, hour):
            continue
        hours = found[row.customer_id].hours.setdefault(row.metric, [])
        hours.append(HourlyUsage(row.group_value, hour, usage_of(row)))
    if distinct and by_segment:
        _add_distinct_segments(
            session, found, windows, grain, start=start, cuts=cuts or {}, metrics=sorted(distinct)
        )
    elif distinct:
        met = grain.values
        values = session.execute(
            select(
                met.c.customer_id,
                met.c.metric,
                met.c.group_value,
                grain.key(met),
                met.c.value,
            ).where(
                _among(session, met.c.customer_id, customers),
                met.c.metric.in_(sorted(set(distinct))),
                grain.key(met) >= grain.bound(start),
                grain.key(met) < grain.bound(end),
            )
        )
        for customer, metric, group, at, value in values:
            hour = moment(at)
            if inside(customer, hour):
                usage = Usage(distinct=frozenset((value,)))
                found[customer].hours.setdefault(metric, []).append(HourlyUsage(group, hour, usage))
    if recurring:
        exact.prepare(session)
        levels = session.execute(
            select(
                table.c.customer_id,
                table.c.metric,
                table.c.group_value,
                exact.total(session, table.c.total),
            )
            .where(
                _among(session, table.c.customer_id, customers),
                table.c.metric.in_(sorted(set(recurring))),
                grain.key(table) < grain.bound(start),
            )
            .group_by(table.c.customer_id, table.c.metric, table.c.group_value)
        )
        for customer, metric, group, level in levels:
            if level is not None:
                found[customer].levels.setdefault(metric, {})[group] = level
    return found


def segments_of(
    windows: Mapping[int, Window], start: datetime, cuts: Mapping[int, Collection[datetime]]
) -> list[tuple[int, datetime, datetime]]:
    """``(customer, start, end)`` of the segments between each customer's cuts, from the
    batch's ``start`` (the hours before a customer's window move a weighted sum's level) to the
    end of its window."""
    found: list[tuple[int, datetime, datetime]] = []
    for customer, window in sorted(windows.items()):
        bounds = sorted(
            {start, window.start, window.end}
            | {at for at in cuts.get(customer, ()) if start < at < window.end}
        )
        found.extend((customer, a, b) for a, b in itertools.pairwise(bounds))
    return found


def _segments(
    session: Session, grain: Grain, segments: Sequence[tuple[int, datetime, datetime]]
) -> tuple[Any, Any, Any, Any]:
    """The segments as a table of the statement: ``(source, customer, begins, ends)``, bounds
    as the grain's column holds them (one bound parameter whatever their number)."""
    if exact.is_sqlite(session):
        each = func.json_each(
            json.dumps([[c, grain.text(a), grain.text(b)] for c, a, b in segments])
        ).table_valued("value")
        found = (  # taken apart once, not at every aggregate joined
            select(
                func.json_extract(each.c.value, "$[0]").label("c"),
                func.json_extract(each.c.value, "$[1]").label("a"),
                func.json_extract(each.c.value, "$[2]").label("b"),
            )
            .cte("segments")
            .prefix_with("MATERIALIZED")
        )
        return found, found.c.c, found.c.a, found.c.b
    kind = Date() if grain.daily else DateTime(timezone=True)
    source = (
        func.jsonb_to_recordset(
            bindparam(
                "segments",
                [
                    {"c": c, "a": grain.bound(a).isoformat(), "b": grain.bound(b).isoformat()}
                    for c, a, b in segments
                ],
                type_=JSONB,
            )
        )
        .table_valued(column("c", Integer), column("a", kind), column("b", kind))
        .render_derived(with_types=True)
    )
    return source, source.c.c, source.c.a, source.c.b


def _add_segments(
    session: Session,
    found: dict[int, CustomerUsage],
    windows: Mapping[int, Window],
    grain: Grain,
    *,
    start: datetime,
    cuts: Mapping[int, Collection[datetime]],
    metrics: Sequence[str],
) -> None:
    """The aggregates of ``metrics`` per customer segment, added up by the database (one
    query), into ``found`` as hours dated at their segment's start."""
    table = grain.table
    exact.prepare(session)
    segments = segments_of(windows, start, cuts)
    sums = (
        func.sum(table.c.events).label("events"),
        exact.total(session, table.c.total).label("total"),
        exact.total(session, table.c.weighted).label("weighted"),
    )
    by_bounds: dict[tuple[datetime, datetime], list[int]] = defaultdict(list)
    for customer_id, begins, ends in segments:
        by_bounds[(begins, ends)].append(customer_id)
    if exact.is_sqlite(session) and len(by_bounds) <= MAX_BOUNDS:
        # The segments of the same days, each a range of the table's key: SQLite adds up
        # the rows as it reads them in key order, where a join would sort them all first.
        statement: Any = union_all(
            *(
                select(
                    table.c.customer_id.label("customer"),
                    table.c.metric,
                    table.c.group_value,
                    literal(grain.text(begins)).label("begins"),
                    *sums,
                )
                .where(
                    _among(session, table.c.customer_id, customers),
                    table.c.metric.in_(metrics),
                    grain.key(table) >= grain.bound(begins),
                    grain.key(table) < grain.bound(ends),
                )
                .group_by(table.c.customer_id, table.c.metric, table.c.group_value)
                for (begins, ends), customers in by_bounds.items()
            )
        )
    else:
        source, customer, begins_at, ends_at = _segments(session, grain, segments)
        statement = (
            select(
                customer.label("customer"),
                table.c.metric,
                table.c.group_value,
                begins_at.label("begins"),
                *sums,
            )
            .select_from(source)
            .join(
                table,
                and_(
                    table.c.customer_id == customer,
                    grain.key(table) >= begins_at,
                    grain.key(table) < ends_at,
                ),
            )
            .where(table.c.metric.in_(metrics))
            .group_by(customer, table.c.metric, table.c.group_value, begins_at)
        )
    starts: dict[Any, datetime] = {}  # the segments of a batch begin on a few days
    for who, metric, group, begins, events, total, weighted in session.execute(statement):
        usage = Usage(int(events), _decimal(total), weighted=_decimal(weighted))
        hour = starts.get(begins) or starts.setdefault(begins, moment(begins))
        hours = found[int(who)].hours.setdefault(metric, [])
        hours.append(HourlyUsage(group, hour, usage))


def _add_distinct_segments(
    session: Session,
    found: dict[int, CustomerUsage],
    windows: Mapping[int, Window],
    grain: Grain,
    *,
    start: datetime,
    cuts: Mapping[int, Collection[datetime]],
    metrics: Sequence[str],
) -> None:
    """The distinct values of ``metrics`` met in each customer segment, each once (one
    query), into ``found`` dated at their segment's start: merged over a part, they are the
    part's distinct values."""
    met = grain.values
    source, customer, begins, ends = _segments(session, grain, segments_of(windows, start, cuts))
    rows = session.execute(
        select(customer.label("customer"), met.c.metric, met.c.group_value, begins, met.c.value)
        .distinct()
        .select_from(source)
        .join(
            met,
            and_(
                met.c.customer_id == customer,
                grain.key(met) >= begins,
                grain.key(met) < ends,
            ),
        )
        .where(met.c.metric.in_(metrics))
    )
    for who, metric, group, at, value in rows:
        usage = Usage(distinct=frozenset((value,)))
        hours = found[int(who)].hours.setdefault(metric, [])
        hours.append(HourlyUsage(group, moment(at), usage))


def _decimal(value: Any) -> Decimal:
    return ZERO if value is None else value if isinstance(value, Decimal) else Decimal(value)
