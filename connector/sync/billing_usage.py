"""The usage a batch of the billing run bills: for every subscription with metered items, the
daily aggregates of its customer over the periods whose usage falls due (periods and their
parts are whole days), read for the whole batch with one query per table
(:mod:`connector.db.usage_read`): O(subscriptions), not O(events) nor O(hours used)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from connector.billing.money import Rounding
from connector.billing.subscriptions import Subscription
from connector.billing.usage import Aggregation, Metric
from connector.billing.usage_billing import (
    Meter,
    item_parts,
    metered_items,
    usage_periods,
    window_of,
)
from connector.billing.usage_periods import Window
from connector.db.usage_read import batch_usage
from connector.errors import ConnectorError
from connector.settings import Settings
from connector.sync.usage_mapping import usage_mapping_of

# Aggregations whose hours add up (count, sum, weighted sum): the database adds them up.
SUMMED = (Aggregation.COUNT, Aggregation.SUM, Aggregation.WEIGHTED_SUM)


def load_metrics(settings: Settings) -> dict[str, Metric]:
    """The billable metrics of the usage mapping (raises what is wrong with it), read again
    only when the file changed: every batch of a run asks for them."""
    return usage_mapping_of(settings).metrics


def batch_meters(
    session: Session,
    settings: Settings,
    as_of: date,
    rows: list[Any],
    subscriptions: Mapping[int, Subscription],
    *,
    failures: dict[int, str],
) -> dict[int, Meter]:
    """A meter per subscription id of ``rows`` whose usage falls due by ``as_of``; one whose
    usage cannot be measured (the mapping missing or invalid) gets its reason in
    ``failures``."""
    windows: dict[int, Window] = {}  # by subscription
    cuts: dict[int, set[datetime]] = defaultdict(set)  # by customer: where parts begin and end
    codes: set[str] = set()
    for row in rows:
        subscription = subscriptions.get(row.id)
        if subscription is None:
            continue
        due = [
            period
            for period in usage_periods(subscription, as_of, row.billed_as_of, row.reconcile_from)
            if period.due_by(as_of)
        ]
        if not due:
            continue
        first, last = window_of(due[0].period), window_of(due[-1].period)
        windows[row.id] = Window(first.start, last.end)
        cut = cuts[row.customer_id]
        for period in due:
            cut.update(_bounds(window_of(period.period)))
            for item in metered_items(subscription):
                for part, _ in item_parts(item, period.served) if period.served else ():
                    cut.update(_bounds(window_of(part)))
        codes.update(
            version.price.metered.metric
            for item in metered_items(subscription)
            for version in item.versions
            if version.price.metered is not None
        )
    if not windows:
        return {}
    try:
        metrics = load_metrics(settings)
    except ConnectorError as error:
        for subscription_id in windows:
            failures[subscription_id] = f"its usage cannot be measured: {error}"
        return {}
    by_customer: dict[int, Window] = {}
    for subscription_id, window in windows.items():
        customer = subscriptions[subscription_id].customer_id
        assert customer is not None
        known = by_customer.get(customer)
        by_customer[customer] = (
            window
            if known is None
            else Window(min(known.start, window.start), max(known.end, window.end))
        )
    meters = read_meters(
        session, metrics, by_customer, codes, rounding=settings.tax.rounding, cuts=cuts
    )
    return {
        subscription_id: meters[subscriptions[subscription_id].customer_id]  # type: ignore[index]
        for subscription_id in windows
    }


def read_meters(
    session: Session,
    metrics: Mapping[str, Metric],
    windows: Mapping[int, Window],
    codes: Collection[str],
    *,
    rounding: Rounding,
    until: datetime | None = None,
    cuts: Mapping[int, Collection[datetime]] | None = None,
) -> dict[int, Meter]:
    """A meter per customer id of ``windows`` holding its usage of the metrics ``codes`` in its
    window (one query per table for them all), measuring up to ``until`` when given. With the
    ``cuts`` of each customer's parts, the hours of summable metrics are added up by the
    database between them (:func:`~connector.db.usage_read.batch_usage`). Without ``until``
    (an instant within a day), windows and cuts of whole days are read from the daily
    aggregates."""
    used = [metrics[code] for code in sorted(set(codes)) if code in metrics]
    usage = batch_usage(
        session,
        windows,
        [metric.code for metric in used],
        distinct=[m.code for m in used if m.aggregation is Aggregation.UNIQUE_COUNT],
        recurring=[m.code for m in used if m.recurring],
        summed=[m.code for m in used if m.aggregation in SUMMED] if cuts is not None else (),
        cuts=cuts,
        by_day=until is None,
    )
    return {
        customer: Meter(metrics, found.hours, found.levels, rounding, until)
        for customer, found in usage.items()
    }


def _bounds(window: Window) -> tuple[datetime, datetime]:
    return window.start, window.end
