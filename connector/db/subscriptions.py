"""Subscriptions in storage: loading them as domain objects and saving their changes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Row, delete, select
from sqlalchemy.orm import Session

from connector.billing import subscriptions as domain
from connector.billing.money import currency as currency_of
from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind
from connector.db import tables
from connector.db.catalog import PriceCache
from connector.errors import ConnectorError, NotFoundError


class StoredSubscription(Protocol):
    """A subscription as storage holds it: an ORM object or a plain row of its columns."""

    id: int
    customer_id: int
    currency: str
    frequency: str
    start_date: date
    term_months: int
    auto_renew: bool
    term_count: int
    trial_days: int
    cancel_date: date | None
    revision: int


def terms_from_row(row: StoredSubscription) -> domain.SubscriptionTerms:
    return domain.SubscriptionTerms(
        start_date=row.start_date,
        frequency=Frequency(row.frequency),
        term_months=row.term_months,
        auto_renew=row.auto_renew,
        trial_days=row.trial_days,
        cancel_date=row.cancel_date,
        term_count=row.term_count,
    )


def load_subscriptions(
    session: Session,
    rows: Sequence[StoredSubscription],
    cache: PriceCache,
    failures: dict[int, str] | None = None,
) -> dict[int, domain.Subscription]:
    """Domain subscriptions, with items and versions, for subscription rows (three queries).

    A subscription whose stored records break a rule of the core raises, or, when ``failures``
    is given, is left out and its reason put there, so that one bad record cannot stop others.
    """
    ids = [row.id for row in rows]
    if not ids:
        return {}
    item_rows = session.execute(
        select(
            tables.SubscriptionItem.id,
            tables.SubscriptionItem.subscription_id,
            tables.SubscriptionItem.item_key,
            tables.SubscriptionItem.product_id,
            tables.SubscriptionItem.kind,
            tables.SubscriptionItem.service_date,
        )
        .where(tables.SubscriptionItem.subscription_id.in_(ids))
        .order_by(tables.SubscriptionItem.id)
    ).all()
    version_rows = session.execute(
        select(
            tables.ItemVersion.item_id,
            tables.ItemVersion.effective_date,
            tables.ItemVersion.price_id,
            tables.ItemVersion.quantity,
            tables.ItemVersion.discount_percent,
        )
        .join(tables.SubscriptionItem, tables.SubscriptionItem.id == tables.ItemVersion.item_id)
        .where(tables.SubscriptionItem.subscription_id.in_(ids))
        .order_by(tables.ItemVersion.item_id, tables.ItemVersion.effective_date)
    ).all()
    cache.load_prices(session, {v.price_id for v in version_rows})
    cache.load_products(session, {i.product_id for i in item_rows})

    versions: dict[int, list[tuple[date, int, Decimal, Decimal]]] = defaultdict(list)
    for v in version_rows:
        versions[v.item_id].append((v.effective_date, v.price_id, v.quantity, v.discount_percent))
    items: dict[int, list[Any]] = defaultdict(list)
    for i in item_rows:
        items[i.subscription_id].append(i)
    loaded = {}
    for row in rows:
        try:
            loaded[row.id] = _subscription(row, items[row.id], versions, cache)
        except ConnectorError as error:
            if failures is None:
                raise
            failures[row.id] = str(error)
    return loaded


def _subscription(
    row: StoredSubscription,
    item_rows: list[Row[Any]],
    versions: dict[int, list[tuple[date, int, Decimal, Decimal]]],
    cache: PriceCache,
) -> domain.Subscription:
    items = tuple(
        domain.SubscriptionItem(
            key=i.item_key,
            product=cache.products[i.product_id],
            kind=ChargeKind(i.kind),
            versions=tuple(
                domain.ItemVersion(day, cache.price(price_id), quantity, discount)
                for day, price_id, quantity, discount in versions[i.id]
            ),
            service_date=i.service_date,
            id=i.id,
        )
        for i in item_rows
    )
    return domain.Subscription(
        currency=currency_of(row.currency),
        terms=terms_from_row(row),
        items=items,
        id=row.id,
        customer_id=row.customer_id,
        revision=row.revision,
    )


def get_subscription(
    session: Session, subscription_id: int, *, for_update: bool = False
) -> tables.Subscription:
    query = select(tables.Subscription).where(tables.Subscription.id == subscription_id)
    if for_update:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise NotFoundError(f"unknown subscription {subscription_id}")
    return row


def save_items(
    session: Session,
    row: tables.Subscription,
    before: domain.Subscription | None,
    after: domain.Subscription,
    amendment_id: int | None,
) -> None:
    """Write the item versions of ``after`` that differ from ``before``."""
    existing = {} if before is None else {item.key: item for item in before.items}
    item_ids: dict[str, int] = {
        key: item_id
        for key, item_id in session.execute(
            select(tables.SubscriptionItem.item_key, tables.SubscriptionItem.id).where(
                tables.SubscriptionItem.subscription_id == row.id
            )
        )
    }
    for item in after.items:
        old = existing.get(item.key)
        if (
            old is not None
            and old.versions == item.versions
            and old.service_date == item.service_date
        ):
            continue
        item_id = item_ids.get(item.key)
        if item_id is None:
            item_row = tables.SubscriptionItem(
                subscription_id=row.id,
                item_key=item.key,
                product_id=item.product.id,
                kind=item.kind.value,
                service_date=item.service_date,
            )
            session.add(item_row)
            session.flush()
            item_id = item_row.id
        else:
            session.get_one(tables.SubscriptionItem, item_id).service_date = item.service_date
        old_versions = set(old.versions) if old is not None else set()
        new_versions = set(item.versions)
        stale = {v.effective_date for v in old_versions - new_versions}
        if stale:
            session.execute(
                delete(tables.ItemVersion).where(
                    tables.ItemVersion.item_id == item_id,
                    tables.ItemVersion.effective_date.in_(stale),
                )
            )
        session.add_all(
            tables.ItemVersion(
                item_id=item_id,
                effective_date=v.effective_date,
                price_id=v.price.id,
                quantity=v.quantity,
                discount_percent=v.discount_percent,
                amendment_id=amendment_id,
            )
            for v in sorted(new_versions - old_versions, key=lambda v: v.effective_date)
        )
    session.flush()


def earliest(*days: date | None) -> date | None:
    present = [d for d in days if d is not None]
    return min(present) if present else None
