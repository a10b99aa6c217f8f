"""Subscriptions in storage: loading them as domain objects and saving their changes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
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

    @property
    def id(self) -> int: ...

    @property
    def customer_id(self) -> int: ...

    @property
    def currency(self) -> str: ...

    @property
    def frequency(self) -> str: ...

    @property
    def start_date(self) -> date: ...

    @property
    def term_months(self) -> int: ...

    @property
    def auto_renew(self) -> bool: ...

    @property
    def term_count(self) -> int: ...

    @property
    def trial_days(self) -> int: ...

    @property
    def cancel_date(self) -> date | None: ...

    @property
    def revision(self) -> int: ...


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
    if not rows:
        return {}
    stored = load_items(session, [row.id for row in rows])
    return build_subscriptions(session, rows, stored, cache, failures)


@dataclass(frozen=True)
class StoredItems:
    """The item rows of some subscriptions (by subscription id, in id order) and their version
    rows (by item id, in date order)."""

    items: dict[int, list[Any]]
    versions: dict[int, list[Any]]


def load_items(session: Session, ids: Sequence[int]) -> StoredItems:
    """The items and item versions of the subscriptions ``ids`` (two queries)."""
    if not ids:
        return StoredItems({}, {})
    # Core columns: rows read as they are, not through the ORM's loading
    items_table = tables.table_of(tables.SubscriptionItem)
    item, version = items_table.c, tables.table_of(tables.ItemVersion).c
    item_rows = session.execute(
        select(
            item.id,
            item.subscription_id,
            item.item_key,
            item.product_id,
            item.kind,
            item.service_date,
        )
        .where(item.subscription_id.in_(ids))
        .order_by(item.id)
    ).all()
    version_rows = session.execute(
        select(
            version.item_id,
            version.effective_date,
            version.price_id,
            version.quantity,
            version.discount_percent,
            version.amendment_id,
        )
        .join(items_table, item.id == version.item_id)
        .where(item.subscription_id.in_(ids))
        .order_by(version.item_id, version.effective_date)
    ).all()
    items: dict[int, list[Any]] = defaultdict(list)
    for i in item_rows:
        items[i.subscription_id].append(i)
    versions: dict[int, list[Any]] = defaultdict(list)
    for v in version_rows:
        versions[v.item_id].append(v)
    return StoredItems(dict(items), dict(versions))


def build_subscriptions(
    session: Session,
    rows: Sequence[StoredSubscription],
    stored: StoredItems,
    cache: PriceCache,
    failures: dict[int, str] | None = None,
) -> dict[int, domain.Subscription]:
    """Domain subscriptions of ``rows`` from their loaded items (prices and products missing
    from ``cache`` are loaded); see :func:`load_subscriptions` for ``failures``."""
    cache.load_prices(
        session, {v.price_id for versions in stored.versions.values() for v in versions}
    )
    cache.load_products(session, {i.product_id for items in stored.items.values() for i in items})
    loaded = {}
    for row in rows:
        try:
            loaded[row.id] = _subscription(
                row, stored.items.get(row.id, []), stored.versions, cache
            )
        except ConnectorError as error:
            if failures is None:
                raise
            failures[row.id] = str(error)
    return loaded


def _subscription(
    row: StoredSubscription,
    item_rows: list[Row[Any]],
    versions: dict[int, list[Row[Any]]],
    cache: PriceCache,
) -> domain.Subscription:
    items = tuple(
        domain.SubscriptionItem(
            key=i.item_key,
            product=cache.products[i.product_id],
            kind=ChargeKind(i.kind),
            versions=tuple(
                domain.ItemVersion(
                    v.effective_date, cache.price(v.price_id), v.quantity, v.discount_percent
                )
                for v in versions.get(i.id, ())
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


@dataclass(frozen=True)
class ItemChange:
    """What saving an item of a changed subscription writes: the item (its row made when new,
    its service date set otherwise), its versions dated ``stale`` deleted, ``added`` inserted."""

    item: domain.SubscriptionItem
    stale: frozenset[date]
    added: tuple[domain.ItemVersion, ...]


def item_changes(
    before: domain.Subscription | None, after: domain.Subscription
) -> list[ItemChange]:
    """The items of ``after`` whose versions or service date differ from ``before``'s."""
    existing = {} if before is None else {item.key: item for item in before.items}
    changes = []
    for item in after.items:
        old = existing.get(item.key)
        if (
            old is not None
            and old.versions == item.versions
            and old.service_date == item.service_date
        ):
            continue
        old_versions = set(old.versions) if old is not None else set()
        new_versions = set(item.versions)
        changes.append(
            ItemChange(
                item,
                frozenset(v.effective_date for v in old_versions - new_versions),
                tuple(sorted(new_versions - old_versions, key=lambda v: v.effective_date)),
            )
        )
    return changes


def save_items(
    session: Session,
    row: tables.Subscription,
    before: domain.Subscription | None,
    after: domain.Subscription,
    amendment_id: int | None,
) -> None:
    """Write the item versions of ``after`` that differ from ``before``."""
    item_ids: dict[str, int] = {
        key: item_id
        for key, item_id in session.execute(
            select(tables.SubscriptionItem.item_key, tables.SubscriptionItem.id).where(
                tables.SubscriptionItem.subscription_id == row.id
            )
        )
    }
    for change in item_changes(before, after):
        item = change.item
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
        if change.stale:
            session.execute(
                delete(tables.ItemVersion).where(
                    tables.ItemVersion.item_id == item_id,
                    tables.ItemVersion.effective_date.in_(change.stale),
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
            for v in change.added
        )
    session.flush()


def earliest(*days: date | None) -> date | None:
    present = [d for d in days if d is not None]
    return min(present) if present else None
