"""The usage a billing run reads for a batch of customers: their hourly aggregates of some
metrics in a time range, and the levels earlier events left (recurring weighted sums), with
one query per table whatever the number of customers and events."""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Integer, and_, bindparam, column, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from connector.billing.usage import ZERO, HourlyUsage, Usage
from connector.billing.usage_periods import Window
from connector.db import exact
from connector.db.usage import HOURLY, VALUES, _among, _aware, _utc_text, usage_of


@dataclass
class CustomerUsage:
    """One customer's aggregates by metric, and levels by metric and group before them."""

    hours: dict[str, list[HourlyUsage]] = field(default_factory=dict)
    levels: dict[str, dict[str, Decimal]] = field(default_factory=dict)


def batch_usage(
    session: Session,
    windows: Mapping[int, Window],
    metrics: Collection[str],
    *,
    distinct: Collection[str] = (),
    recurring: Collection[str] = (),
    summed: Collection[str] = (),
    cuts: Mapping[int, Collection[datetime]] | None = None,
) -> dict[int, CustomerUsage]:
    """Per customer id, its aggregates of ``metrics`` in its window of ``windows``; the distinct
    values of the ``distinct`` metrics (unique counts) with them, each at every hour it was met;
    for the ``recurring`` metrics, the level left by the events before the earliest window (the
    aggregates from there to a customer's window are among its hours).

    The ``summed`` metrics (those whose hours add up: counts, sums, weighted sums) are added
    up in the database instead, over the segments of a customer's window between its ``cuts``
    (the bounds of its periods and of their parts): an aggregate per segment, dated at its
    start, measures exactly what its hours would, and the rows read do not grow with the
    hours used."""
    found: dict[int, CustomerUsage] = {customer: CustomerUsage() for customer in windows}
    if not windows or not metrics:
        return found
    customers = sorted(windows)
    start = min(window.start for window in windows.values())
    end = max(window.end for window in windows.values())
    summed = sorted(set(summed) & set(metrics))
    codes = sorted(set(metrics) - set(summed))
    if summed:
        _add_segments(session, found, windows, start=start, cuts=cuts or {}, metrics=summed)
    if not codes and not distinct and not recurring:
        return found

    def inside(customer: int, hour: datetime) -> bool:
        # hours before a customer's own window are kept: they move a weighted sum's level
        return hour < windows[customer].end

    rows = (
        session.execute(
            select(HOURLY).where(
                _among(session, HOURLY.c.customer_id, customers),
                HOURLY.c.metric.in_(codes),
                HOURLY.c.hour >= start,
                HOURLY.c.hour < end,
            )
        )
        if codes
        else ()
    )
    for row in rows:
        hour = _aware(row.hour)
        if not inside(row.customer_id, hour):
            continue
        hours = found[row.customer_id].hours.setdefault(row.metric, [])
        hours.append(HourlyUsage(row.group_value, hour, usage_of(row)))
    if distinct:
        values = session.execute(
            select(
                VALUES.c.customer_id,
                VALUES.c.metric,
                VALUES.c.group_value,
                VALUES.c.hour,
                VALUES.c.value,
            ).where(
                _among(session, VALUES.c.customer_id, customers),
                VALUES.c.metric.in_(sorted(set(distinct))),
                VALUES.c.hour >= start,
                VALUES.c.hour < end,
            )
        )
        for customer, metric, group, at, value in values:
            hour = _aware(at)
            if inside(customer, hour):
                usage = Usage(distinct=frozenset((value,)))
                found[customer].hours.setdefault(metric, []).append(HourlyUsage(group, hour, usage))
    if recurring:
        exact.prepare(session)
        levels = session.execute(
            select(
                HOURLY.c.customer_id,
                HOURLY.c.metric,
                HOURLY.c.group_value,
                exact.total(session, HOURLY.c.total),
            )
            .where(
                _among(session, HOURLY.c.customer_id, customers),
                HOURLY.c.metric.in_(sorted(set(recurring))),
                HOURLY.c.hour < start,
            )
            .group_by(HOURLY.c.customer_id, HOURLY.c.metric, HOURLY.c.group_value)
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


def _add_segments(
    session: Session,
    found: dict[int, CustomerUsage],
    windows: Mapping[int, Window],
    *,
    start: datetime,
    cuts: Mapping[int, Collection[datetime]],
    metrics: Sequence[str],
) -> None:
    """The aggregates of ``metrics`` per customer segment, added up by the database (one
    query), into ``found`` as hours dated at their segment's start."""
    segments = segments_of(windows, start, cuts)
    exact.prepare(session)
    if exact.is_sqlite(session):
        each = func.json_each(
            json.dumps([[c, _utc_text(a), _utc_text(b)] for c, a, b in segments])
        ).table_valued("value")
        customer = func.json_extract(each.c.value, "$[0]")
        begins = func.json_extract(each.c.value, "$[1]")
        ends = func.json_extract(each.c.value, "$[2]")
        source: Any = each
    else:
        source = (
            func.jsonb_to_recordset(
                bindparam(
                    "segments",
                    [{"c": c, "a": a.isoformat(), "b": b.isoformat()} for c, a, b in segments],
                    type_=JSONB,
                )
            )
            .table_valued(
                column("c", Integer),
                column("a", DateTime(timezone=True)),
                column("b", DateTime(timezone=True)),
            )
            .render_derived(with_types=True)
        )
        customer, begins, ends = source.c.c, source.c.a, source.c.b
    rows = session.execute(
        select(
            customer.label("customer"),
            HOURLY.c.metric,
            HOURLY.c.group_value,
            begins.label("begins"),
            func.sum(HOURLY.c.events).label("events"),
            exact.total(session, HOURLY.c.total).label("total"),
            exact.total(session, HOURLY.c.weighted).label("weighted"),
        )
        .select_from(source)
        .join(
            HOURLY,
            and_(
                HOURLY.c.customer_id == customer,
                HOURLY.c.hour >= begins,
                HOURLY.c.hour < ends,
            ),
        )
        .where(HOURLY.c.metric.in_(metrics))
        .group_by(customer, HOURLY.c.metric, HOURLY.c.group_value, begins)
    )
    for row in rows:
        usage = Usage(
            int(row.events),
            _decimal(row.total),
            weighted=_decimal(row.weighted),
        )
        hour = _aware(row.begins)
        hours = found[int(row.customer)].hours.setdefault(row.metric, [])
        hours.append(HourlyUsage(row.group_value, hour, usage))


def _decimal(value: Any) -> Decimal:
    return ZERO if value is None else value if isinstance(value, Decimal) else Decimal(value)
