"""The usage a billing run reads for a batch of customers: their hourly aggregates of some
metrics in a time range, and the levels earlier events left (recurring weighted sums), with
one query per table whatever the number of customers and events."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.billing.usage import HourlyUsage, Usage
from connector.billing.usage_periods import Window
from connector.db import exact
from connector.db.usage import HOURLY, VALUES, _among, _aware, usage_of


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
) -> dict[int, CustomerUsage]:
    """Per customer id, its aggregates of ``metrics`` in its window of ``windows``; the distinct
    values of the ``distinct`` metrics (unique counts) with them, each at every hour it was met;
    for the ``recurring`` metrics, the level left by the events before the earliest window (the
    aggregates from there to a customer's window are among its hours)."""
    found: dict[int, CustomerUsage] = {customer: CustomerUsage() for customer in windows}
    if not windows or not metrics:
        return found
    customers = sorted(windows)
    start = min(window.start for window in windows.values())
    end = max(window.end for window in windows.values())
    codes = sorted(set(metrics))

    def inside(customer: int, hour: datetime) -> bool:
        # hours before a customer's own window are kept: they move a weighted sum's level
        return hour < windows[customer].end

    rows = session.execute(
        select(HOURLY).where(
            _among(session, HOURLY.c.customer_id, customers),
            HOURLY.c.metric.in_(codes),
            HOURLY.c.hour >= start,
            HOURLY.c.hour < end,
        )
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
