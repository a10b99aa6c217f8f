"""Which subscriptions meter which metric: a metered price measures the usage of its whole
customer, so two subscriptions of one customer metering the same metric over the same days
would both bill it. The billing run holds such subscriptions, with the reason, rather than
bill a customer's usage twice."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, distinct, func, select
from sqlalchemy.orm import Session

from connector.billing.pricing import ChargeKind
from connector.db import tables
from connector.db.subscriptions import terms_from_row
from connector.db.usage import _among as among

SUBSCRIPTIONS = tables.table_of(tables.Subscription)
ITEMS = tables.table_of(tables.SubscriptionItem)
VERSIONS = tables.table_of(tables.ItemVersion)
PRICES = tables.table_of(tables.Price)


@dataclass(frozen=True, slots=True)
class Metering:
    subscription_id: int
    metric: str
    start: date  # first day of service
    end: date | None  # last day of service, None while it goes on

    def overlaps(self, other: Metering) -> bool:
        return (self.end is None or other.start <= self.end) and (
            other.end is None or self.start <= other.end
        )


def shared_metrics(session: Session, customer_ids: Iterable[int]) -> dict[int, str]:
    """For each subscription of the given customers that meters a metric another of the
    customer's subscriptions meters over some of the same days: why it cannot be billed (one
    query: only the rows of the metrics metered twice are read)."""
    wanted = sorted(set(customer_ids))
    if not wanted:
        return {}
    subscriptions, item, version, price = SUBSCRIPTIONS.c, ITEMS.c, VERSIONS.c, PRICES.c

    def metered(*columns: Any) -> Select[Any]:
        """``columns`` of the metered prices of the customers' subscriptions."""
        return (
            select(*columns)
            .select_from(SUBSCRIPTIONS)
            .join(ITEMS, item.subscription_id == subscriptions.id)
            .join(VERSIONS, version.item_id == item.id)
            .join(PRICES, price.id == version.price_id)
            .where(
                among(session, subscriptions.customer_id, wanted),
                price.kind == ChargeKind.METERED.value,
                price.metric.is_not(None),
            )
        )

    # only a metric several subscriptions of a customer meter can be shared: the others are
    # left in the database (a customer has one subscription, mostly)
    several = (
        metered(subscriptions.customer_id, price.metric)
        .group_by(subscriptions.customer_id, price.metric)
        .having(func.count(distinct(subscriptions.id)) > 1)
        .subquery()
    )
    rows = session.execute(
        metered(
            subscriptions.id,
            subscriptions.customer_id,
            subscriptions.start_date,
            subscriptions.frequency,
            subscriptions.term_months,
            subscriptions.auto_renew,
            subscriptions.trial_days,
            subscriptions.cancel_date,
            subscriptions.term_count,
            price.metric,
        )
        .join(
            several,
            and_(
                several.c.customer_id == subscriptions.customer_id,
                several.c.metric == price.metric,
            ),
        )
        .distinct()
    ).all()
    by_metric: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for row in rows:
        by_metric[(row.customer_id, row.metric)].append(row)
    meterings = {  # only a metric several subscriptions of a customer meter can be shared
        key: [_metering(row) for row in found] for key, found in by_metric.items() if len(found) > 1
    }
    reasons: dict[int, str] = {}
    for (customer_id, metric), each in sorted(meterings.items()):
        for one in each:
            others = sorted(
                o.subscription_id
                for o in each
                if o.subscription_id != one.subscription_id and one.overlaps(o)
            )
            if others and one.subscription_id not in reasons:
                names = ", ".join(str(o) for o in others)
                reasons[one.subscription_id] = (
                    f"metric {metric!r} is metered by subscription {names} of customer "
                    f"{customer_id} too, over some of the same days: its usage would be billed "
                    "twice (end one of them before the other starts, or meter another metric)"
                )
    return reasons


def _metering(row: Any) -> Metering:
    terms = terms_from_row(row)
    return Metering(row.id, row.metric, terms.billing_start, terms.service_end)
