"""Writing what a :class:`~connector.db.workset.Workset` changed: ids reserved for its new
rows in one statement, then one statement per table and kind of change (rows of discarded
subscriptions deleted, new rows inserted, changed rows updated, stale item versions deleted)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from connector.db import tables, workset_events, writeback_queue
from connector.db.bulk import bulk_delete, bulk_insert, bulk_update, reserve_many
from connector.db.catalog import metered_columns, tiers_to_json
from connector.db.types import utc_now
from connector.db.workset_rows import (
    CHANGING_COLUMNS,
    CustomerRow,
    Held,
    ItemRow,
    ProductRow,
    values,
)

if TYPE_CHECKING:
    from connector.db.workset import Workset

CUSTOMERS = tables.Customer.__tablename__
SUBSCRIPTIONS = tables.Subscription.__tablename__
Real = Callable[[int | None], int | None]
Alive = dict[int, Held]


def write(work: Workset) -> None:
    """Write what the batch changed: ids reserved for new rows in one statement, then one
    statement per table and kind of change."""
    now = utc_now()
    alive = {i: held for i, held in work.subscriptions.items() if held is not None}
    new_subscriptions = {i: held for i, held in alive.items() if i < 0}
    new_amendments = [
        row for i, rows in work.amendment_rows.items() if i in alive for row in rows if row.id < 0
    ]
    new_items = [
        (i, key, item)
        for i, held in alive.items()
        for key, item in held.items.items()
        if item.id < 0
    ]
    new_customers = [row for i, row in work.customers.items() if i < 0]
    new_products = [row for row in work.products.values() if row.id < 0]
    provisional = {
        tables.table_of(tables.Customer): [row.id for row in new_customers],
        tables.table_of(tables.Product): [row.id for row in new_products],
        tables.table_of(tables.Price): list(work.new_prices),
        tables.table_of(tables.Contract): [
            held.row.contract_id for held in new_subscriptions.values()
        ],
        tables.table_of(tables.Subscription): list(new_subscriptions),
        tables.table_of(tables.Amendment): [row.id for row in new_amendments],
        tables.table_of(tables.SubscriptionItem): [item.id for _, _, item in new_items],
    }
    reserved = reserve_many(work.session, {table: len(ids) for table, ids in provisional.items()})
    ids: dict[int, int] = {}
    for table, old in provisional.items():
        ids.update(zip(old, reserved.get(table, []), strict=True))

    def real(value: int | None) -> int | None:
        return None if value is None else ids.get(value, value)

    _discard_stored(work)
    _write_catalog(work, real, new_products, now)
    _write_customers(work, real, new_customers, now)
    _write_subscriptions(work, real, new_subscriptions, now)
    bulk_insert(
        work.session,
        tables.table_of(tables.Amendment),
        [
            {
                "id": real(row.id),
                "subscription_id": real(row.subscription_id),
                "kind": row.kind,
                "effective_date": row.effective_date,
                "revision": row.revision,
                "reference": row.reference,
                "created_at": now,
            }
            for row in new_amendments
        ],
    )
    _write_items(work, real, alive, new_items)
    links = [
        (CUSTOMERS, external_id, customer_id)
        for external_id, customer_id in work.customer_ids.items()
        if customer_id is not None and customer_id < 0
    ] + [
        (SUBSCRIPTIONS, external_id, subscription_id)
        for external_id, subscription_id in work.subscription_ids.items()
        if subscription_id is not None and subscription_id in new_subscriptions
    ]
    bulk_insert(
        work.session,
        tables.table_of(tables.ExternalId),
        [
            {
                "entity": entity,
                "entity_id": real(entity_id),
                "system": work.system,
                "external_id": external_id,
            }
            for entity, external_id, entity_id in links
        ],
    )
    _mark(work, real, new_customers, alive)
    workset_events.emit_changes(work, real, new_customers, alive)


def _mark(work: Workset, real: Real, new_customers: list[CustomerRow], alive: Alive) -> None:
    """Queue for the write-back what the batch made or changed, as the changes made one by
    one in storage queue it (:mod:`connector.sync.contracts`): a new customer (its account), a
    subscription made or changed (its record), the customer of one discarded (its MRR)."""

    def key(provisional: int) -> int:
        found = real(provisional)
        assert found is not None
        return found

    writeback_queue.mark(
        work.session, writeback_queue.CUSTOMER, [key(row.id) for row in new_customers]
    )
    writeback_queue.mark(
        work.session,
        writeback_queue.SUBSCRIPTION,
        [
            key(i)
            for i, held in alive.items()
            if i < 0 or held.row != work.stored_subscriptions[i].row
        ],
    )
    writeback_queue.mark(
        work.session,
        writeback_queue.CUSTOMER,
        [key(customer_id) for customer_id in work.discarded.values()],
    )


def _discard_stored(work: Workset) -> None:
    gone = [held for i, held in work.stored_subscriptions.items() if work.subscriptions[i] is None]
    if not gone:
        return
    ids = sorted(held.row.id for held in gone)
    item = tables.SubscriptionItem
    items = select(item.id).where(item.subscription_id.in_(ids))
    execute = work.session.execute
    execute(delete(tables.ItemVersion).where(tables.ItemVersion.item_id.in_(items)))
    execute(delete(item).where(item.subscription_id.in_(ids)))
    execute(delete(tables.Amendment).where(tables.Amendment.subscription_id.in_(ids)))
    execute(
        delete(tables.ExternalId).where(
            tables.ExternalId.entity == SUBSCRIPTIONS, tables.ExternalId.entity_id.in_(ids)
        )
    )
    execute(delete(tables.Subscription).where(tables.Subscription.id.in_(ids)))
    execute(
        delete(tables.Contract).where(
            tables.Contract.id.in_(sorted(held.row.contract_id for held in gone))
        )
    )


def _write_catalog(work: Workset, real: Real, new: list[ProductRow], now: datetime) -> None:
    product_table = tables.table_of(tables.Product)
    bulk_insert(
        work.session,
        product_table,
        [
            {
                "id": real(row.id),
                "code": row.code,
                "name": row.name,
                "family": row.family,
                "tax_code": row.tax_code,
                "created_at": now,
            }
            for row in new
        ],
    )
    bulk_update(
        work.session,
        product_table,
        [
            {"id": row.id, "name": row.name, "family": row.family, "tax_code": row.tax_code}
            for code, row in work.products.items()
            if row.id > 0 and row != work.stored_products[code]
        ],
        keys=["id"],
    )
    bulk_insert(
        work.session,
        tables.table_of(tables.Price),
        [
            {
                "id": real(price.id),
                "product_id": real(price.product.id),
                "lookup_key": None,
                "currency": price.currency.code,
                "kind": price.kind.value,
                "model": price.model.value,
                "unit_amount": price.unit_amount,
                "flat_amount": price.flat_amount,
                "tiers": tiers_to_json(price.tiers) if price.tiers else None,
                **metered_columns(price.metered),
                "created_at": now,
            }
            for price in work.new_prices.values()
        ],
    )


def _write_customers(work: Workset, real: Real, new: list[CustomerRow], now: datetime) -> None:
    table = tables.table_of(tables.Customer)
    bulk_insert(
        work.session,
        table,
        [
            {
                **values(row),
                "id": real(row.id),
                "created_at": now,
                "updated_at": now,
            }
            for row in new
        ],
    )
    bulk_update(
        work.session,
        table,
        [
            {**values(row), "updated_at": now}
            for i, row in work.customers.items()
            if i > 0 and row != work.stored_customers[i]
        ],
        keys=["id"],
    )


def _write_subscriptions(
    work: Workset,
    real: Real,
    new: dict[int, Held],
    now: datetime,
) -> None:
    bulk_insert(
        work.session,
        tables.table_of(tables.Contract),
        [
            {
                "id": real(held.row.contract_id),
                "customer_id": real(held.row.customer_id),
                "name": work.contracts[held.row.contract_id][1],
                "created_at": now,
            }
            for held in new.values()
        ],
    )
    table = tables.table_of(tables.Subscription)
    bulk_insert(
        work.session,
        table,
        [
            {
                **values(held.row),
                "id": real(held.row.id),
                "contract_id": real(held.row.contract_id),
                "customer_id": real(held.row.customer_id),
                "billing_error": None,
                "created_at": now,
                "updated_at": now,
            }
            for held in new.values()
        ],
    )
    changed = []
    for i, before in work.stored_subscriptions.items():
        held = work.subscriptions[i]
        if held is not None and held.row != before.row:
            columns = values(held.row)
            changed.append(
                {
                    "id": i,
                    **{name: columns[name] for name in CHANGING_COLUMNS},
                    "updated_at": now,
                }
            )
    bulk_update(work.session, table, changed, keys=["id"])


def _write_items(
    work: Workset,
    real: Real,
    alive: dict[int, Held],
    new: list[tuple[int, str, ItemRow]],
) -> None:
    bulk_insert(
        work.session,
        tables.table_of(tables.SubscriptionItem),
        [
            {
                "id": real(item.id),
                "subscription_id": real(subscription_id),
                "item_key": key,
                "product_id": real(item.product_id),
                "kind": item.kind,
                "service_date": item.service_date,
            }
            for subscription_id, key, item in new
        ],
    )
    changed_items: list[dict[str, Any]] = []
    stale: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    for i, held in alive.items():
        before = work.stored_subscriptions.get(i)
        old_items = before.items if before else {}
        old_versions = before.versions if before else {}
        changed_items.extend(
            {"id": item.id, "service_date": item.service_date}
            for key, item in held.items.items()
            if item.id > 0 and item != old_items[key]
        )
        stale.extend(
            {"item_id": item_id, "effective_date": day}
            for (item_id, day), version in old_versions.items()
            if held.versions.get((item_id, day)) != version
        )
        added.extend(
            {
                "item_id": real(item_id),
                "effective_date": day,
                "price_id": real(version.price_id),
                "quantity": version.quantity,
                "discount_percent": version.discount_percent,
                "amendment_id": real(version.amendment_id),
            }
            for (item_id, day), version in held.versions.items()
            if old_versions.get((item_id, day)) != version
        )
    bulk_update(work.session, tables.table_of(tables.SubscriptionItem), changed_items, keys=["id"])
    versions = tables.table_of(tables.ItemVersion)
    bulk_delete(work.session, versions, stale)
    bulk_insert(work.session, versions, added)
