"""Which subscriptions meter which metric: a metered price measures the usage of its whole
customer, so two subscriptions of one customer metering the same metric over the same days
would both bill it. The billing run holds such subscriptions, with the reason, rather than
bill a customer's usage twice."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.billing.pricing import ChargeKind
from connector.db import tables
from connector.db.subscriptions import terms_from_row
from connector.db.usage import _among as among


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
    query)."""
    wanted = sorted(set(customer_ids))
    if not wanted:
        return {}
    sub, item, version, price = (
        tables.Subscription,
        tables.SubscriptionItem,
        tables.ItemVersion,
        tables.Price,
    )
    rows = session.execute(
        select(sub, price.metric)
        .join(item, item.subscription_id == sub.id)
        .join(version, version.item_id == item.id)
        .join(price, price.id == version.price_id)
        .where(
            among(session, sub.customer_id, wanted),
            price.kind == ChargeKind.METERED.value,
            price.metric.is_not(None),
        )
        .distinct()
    ).all()
    by_metric: dict[tuple[int, str], list[Metering]] = defaultdict(list)
    for row, metric in rows:
        assert metric is not None  # where metric is not null
        terms = terms_from_row(row)
        found = Metering(row.id, metric, terms.billing_start, terms.service_end)
        by_metric[(row.customer_id, metric)].append(found)
    reasons: dict[int, str] = {}
    for (customer_id, metric), meterings in sorted(by_metric.items()):
        for one in meterings:
            others = sorted(
                o.subscription_id
                for o in meterings
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
