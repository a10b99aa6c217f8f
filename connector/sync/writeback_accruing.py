"""The usage of the current period as it accrues, shown in Salesforce before it is billed: a
``Billing_Usage__c`` record per metered item of a deal's subscription in service, ``Accruing``,
under the key its billed record will have (built by :mod:`connector.sync.writeback_records`).

Its quantities and amount are what the period's usage comes to so far, priced as
``connector usage show`` prices it (:func:`~connector.sync.usage_report.priced_items`, the
billing run's pricing): measured up to the end of the write-back's as-of day, or to the next
whole hour of ``now`` when that is earlier. Every write-back measures them again; the records
whose fields did not change are not sent (the write-back compares hashes), so an idle
write-back makes no call.

The billed state wins: an item and period with a charge (billed, adjusted, voided) or whose
usage a run billed (``usage_billed_until`` past its start) is never shown accruing again; the
billed record replaces it under the same key. A period whose usage came to nothing bills
nothing: the accruing record sent for it is deleted once its usage fell due and was not billed
(the queue brings its key back on that day, :func:`stale_usage`).

A batch of subscriptions costs one query per table: the subscriptions, their items and
prices, the charges of their periods, and their customers' usage (the summable metrics added
up by the database; from the daily aggregates when measured to the end of a day).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import or_, select, tuple_
from sqlalchemy.orm import Session

from connector.billing.money import ZERO, Rounding
from connector.billing.periods import ONE_DAY, Period
from connector.billing.pricing import ChargeKind
from connector.billing.subscriptions import Subscription
from connector.billing.usage import HOUR, Metric, hour_of
from connector.billing.usage_billing import Meter, item_parts, metered_items, window_of
from connector.billing.usage_periods import Window
from connector.db import tables
from connector.db.writeback_queue import SYSTEM, usage_key
from connector.errors import BillingError, ConnectorError, InvalidInputError
from connector.settings import Settings
from connector.sync.billing_usage import read_meters
from connector.sync.usage_mapping import usage_mapping_of
from connector.sync.usage_report import current_period, priced_items
from connector.sync.writeback_usage import BilledUsage, parse_key

log = logging.getLogger(__name__)
ACCRUING = "Accruing"


@dataclass(frozen=True)
class AccruingOptions:
    """How the write-back measures the usage accruing: the metrics of the usage mapping, the
    rounding of amounts, and the moment it is measured to (None: the end of the as-of day)."""

    metrics: Mapping[str, Metric]
    rounding: Rounding = Rounding.HALF_UP
    now: datetime | None = None

    @classmethod
    def of(cls, settings: Settings, now: datetime | None = None) -> AccruingOptions | None:
        """The options ``settings`` name; None (logged) when the usage mapping cannot be read:
        the write-back then shows no accruing usage."""
        try:
            metrics = usage_mapping_of(settings).metrics
        except ConnectorError as error:
            log.warning("accruing usage is not written back: %s", error)
            return None
        return cls(metrics, settings.tax.rounding, now)

    def until(self, as_of: date) -> datetime:
        """The instant usage is measured to: the end of ``as_of``, or the next whole hour of
        ``now`` when earlier."""
        end = datetime.combine(as_of + ONE_DAY, time(), tzinfo=UTC)
        return end if self.now is None else min(end, hour_of(self.now) + HOUR)


@dataclass(frozen=True)
class _Current:
    row: Any
    subscription: Subscription
    period: Period
    served: Period


def accruing_usage(
    session: Session,
    options: AccruingOptions,
    rows: Sequence[Any],
    subscriptions: Mapping[int, Subscription],
    as_of: date,
) -> list[BilledUsage]:
    """The usage accruing of each metered item of these subscriptions in its current period
    as of ``as_of`` (module doc); items whose usage so far is nothing are left out."""
    current = []
    for row in rows:
        subscription = subscriptions.get(row.id)
        if subscription is None or not metered_items(subscription):
            continue
        days = current_period(subscription, as_of)
        if days is None:
            continue
        period, served = days
        if row.usage_billed_until is not None and period.start < row.usage_billed_until:
            continue  # billed already
        current.append(_Current(row, subscription, period, served))
    if not current:
        return []
    charged = _charged(
        session,
        [
            (item.id, c.period.start)
            for c in current
            for item in metered_items(c.subscription)
            if item.id is not None
        ],
    )
    until = options.until(as_of)
    windows: dict[int, Window] = {}
    cuts: dict[int, set[datetime]] = defaultdict(set)
    codes: set[str] = set()
    for c in current:
        customer, window = c.row.customer_id, window_of(c.period)
        known = windows.get(customer)
        windows[customer] = (
            window
            if known is None
            else Window(min(known.start, window.start), max(known.end, window.end))
        )
        cut = cuts[customer]
        cut.update((window.start, window.end, until))
        for item in metered_items(c.subscription):
            for part, price in item_parts(item, c.served):
                cut.update((window_of(part).start, window_of(part).end))
                codes.add(price.metric)
    daily = until.time() == time()  # whole days: read from the daily aggregates
    meters = read_meters(
        session,
        options.metrics,
        windows,
        codes,
        rounding=options.rounding,
        until=None if daily else until,
        cuts=cuts,
    )
    if daily:
        meters = {customer: replace(meter, until=until) for customer, meter in meters.items()}
    found: list[BilledUsage] = []
    for c in current:
        try:
            found.extend(_accrued(c, meters[c.row.customer_id], charged))
        except (InvalidInputError, BillingError) as error:  # the billing run reports it
            log.warning("subscription %s: its usage accruing is not shown: %s", c.row.id, error)
    return found


def _accrued(c: _Current, meter: Meter, charged: set[tuple[int, date]]) -> list[BilledUsage]:
    """The usage accruing of a subscription's metered items in its current period."""
    found = []
    for item, parts in priced_items(c.subscription, c.period, c.served, meter):
        assert item.id is not None
        if not parts or (item.id, c.period.start) in charged:
            continue
        charges = [charge for _, priced in parts for charge in priced.charges]
        quantity = sum((charge.quantity for charge in charges), ZERO)
        amount = sum((priced.total for _, priced in parts), ZERO)
        if not quantity and not amount:
            continue
        last, price = item_parts(item, c.served)[-1]
        found.append(
            BilledUsage(
                subscription_id=c.row.id,
                customer_id=c.row.customer_id,
                item_key=item.key,
                product=item.product.name,
                metric=price.metric,
                currency=c.row.currency,
                period=Period(c.period.start, last.end),
                quantity=quantity,
                billable=sum((charge.billable for charge in charges), ZERO),
                amount=amount,
                status=ACCRUING,
                invoice=None,
                adjustment=None,
                item_id=item.id,
            )
        )
    return found


def _charged(session: Session, pairs: Sequence[tuple[int, date]]) -> set[tuple[int, date]]:
    """Which (item id, period start) have a charge: their usage was billed (one query)."""
    charge = tables.Charge
    if not pairs:
        return set()
    return {
        (item_id, start)
        for item_id, start in session.execute(
            select(charge.subscription_item_id, charge.period_start)
            .where(tuple_(charge.subscription_item_id, charge.period_start).in_(pairs))
            .distinct()
        )
    }


@dataclass(frozen=True)
class Stale:
    """A usage record's key whose period is not billed: ``external_id`` of its record, and
    ``billed`` when its usage fell due and was billed as nothing (its record goes)."""

    external_id: str
    billed: bool


def stale_usage(session: Session, keys: Sequence[str]) -> dict[str, Stale]:
    """Of usage queue keys with no charge (an accruing record's, brought back on the day its
    usage fell due), their record's external id and whether the usage was billed meanwhile
    (one query)."""
    parsed = {key: found for key in keys if (found := parse_key(key)) is not None}
    if not parsed:
        return {}
    item, subscription = tables.SubscriptionItem, tables.Subscription
    rows = {
        row.id: row
        for row in session.execute(
            select(item.id, item.item_key, item.subscription_id, subscription.usage_billed_until)
            .join(subscription, subscription.id == item.subscription_id)
            .where(item.id.in_(sorted({item_id for item_id, _ in parsed.values()})))
        )
    }
    stale: dict[str, Stale] = {}
    for key, (item_id, start) in parsed.items():
        row = rows.get(item_id)
        if row is None:
            continue
        billed = row.usage_billed_until is not None and start < row.usage_billed_until
        external_id = f"SUB-{row.subscription_id}:{row.item_key}:{start.isoformat()}"
        stale[key] = Stale(external_id, billed)
    return stale


def reminder(usage: BilledUsage) -> tuple[str, date]:
    """The queue key of accruing usage and the day its usage falls due (its record is then
    built again: billed, or gone)."""
    assert usage.item_id is not None
    return usage_key(usage.item_id, usage.period.start), usage.period.end + ONE_DAY


def accruing_subscriptions(session: Session, as_of: date) -> list[tuple[str, int]]:
    """The subscriptions of deals with a metered item, not cancelled by ``as_of`` (one query),
    as the write-back lists its keys: ``(id, 0)``."""
    item, subscription, link = tables.SubscriptionItem, tables.Subscription, tables.ExternalId
    ids = session.scalars(
        select(subscription.id)
        .join(item, item.subscription_id == subscription.id)
        .join(
            link,
            (link.entity_id == subscription.id)
            & (link.entity == subscription.__tablename__)
            & (link.system == SYSTEM),
        )
        .where(
            item.kind == ChargeKind.METERED.value,
            or_(subscription.cancel_date.is_(None), subscription.cancel_date > as_of),
        )
        .distinct()
    )
    return [(str(subscription_id), 0) for subscription_id in sorted(ids)]
