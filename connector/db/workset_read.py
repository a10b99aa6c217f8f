"""What a :class:`~connector.db.workset.Workset` reads: the stored rows a batch of records
touches, by external id and product code (one query per table), and the facts only some records
need (amendments, what was billed), read when the first of them asks, for the whole batch."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from connector.billing import pricing
from connector.db import tables
from connector.db.catalog import PriceCache, price_from_row
from connector.db.subscriptions import build_subscriptions, load_items
from connector.db.workset_rows import (
    SUBSCRIPTION_COLUMNS,
    AmendmentRow,
    CustomerRow,
    Held,
    ItemRow,
    ProductRow,
    SubscriptionRow,
    VersionRow,
)
from connector.errors import InvalidInputError

CUSTOMERS = tables.Customer.__tablename__
SUBSCRIPTIONS = tables.Subscription.__tablename__


class Stored:
    """The stored rows of a batch, as read; the working copy (:class:`Workset`) starts from
    them and changes its own copies."""

    def __init__(self, session: Session, system: str) -> None:
        self.session = session
        self.system = system
        self.cache = PriceCache()
        self.customer_ids: dict[str, int | None] = {}
        self.customers: dict[int, CustomerRow] = {}
        self.subscription_ids: dict[str, int | None] = {}
        self.subscriptions: dict[int, Held | None] = {}  # None: discarded
        self.amendment_rows: dict[int, tuple[AmendmentRow, ...]] = {}
        self.products: dict[str, ProductRow] = {}
        # (product id, currency, kind): ids of its per-unit prices without a lookup key
        self.price_ids: dict[tuple[int, str, str], tuple[int, ...]] = {}
        self.stored_customers: dict[int, CustomerRow] = {}
        self.stored_subscriptions: dict[int, Held] = {}
        self.stored_products: dict[str, ProductRow] = {}
        self._covered_customers: set[str] = set()
        self._covered_subscriptions: set[str] = set()
        self._covered_codes: set[str] = set()
        # what is read only when a record needs it, for every stored row of the batch at once
        self._amended: set[int] = set()  # subscriptions whose amendments are read
        self._documents: dict[int, str] = {}  # subscription id: its first document's number
        self._charged: set[int] = set()  # subscriptions with charges
        self._billing_read: set[int] = set()
        self._billed: set[int] = set()  # customers with documents
        self._billed_read: set[int] = set()
        self._customer_subscriptions: dict[int, set[int]] = {}
        self._customer_subscriptions_read: set[int] = set()

    def load(
        self,
        *,
        customers: Collection[str] = (),
        subscriptions: Collection[str] = (),
        product_codes: Collection[str] = (),
    ) -> None:
        """Read the customers and subscriptions known by these external ids, with the
        subscriptions' items and versions, and the products of these codes with their per-unit
        prices (one query each). What is asked for later is read then."""
        customers = set(customers) - self._covered_customers
        subscriptions = set(subscriptions) - self._covered_subscriptions
        product_codes = set(product_codes) - self._covered_codes
        self._covered_customers |= customers
        self._covered_subscriptions |= subscriptions
        self._covered_codes |= product_codes
        ext = tables.ExternalId
        if customers:
            table = tables.table_of(tables.Customer)
            for row in self.session.execute(
                select(ext.external_id, *table.c)
                .join(table, table.c.id == ext.entity_id)
                .where(
                    ext.system == self.system,
                    ext.entity == CUSTOMERS,
                    ext.external_id.in_(sorted(customers)),
                )
            ):
                customer = CustomerRow(
                    row.id,
                    row.name,
                    row.country,
                    row.currency,
                    row.tax_id,
                    row.region,
                    row.address_street,
                    row.address_city,
                    row.address_state,
                    row.address_postal_code,
                    row.language,
                    row.billing_email,
                )
                self.customer_ids[row.external_id] = customer.id
                self.customers[customer.id] = self.stored_customers[customer.id] = customer
        if product_codes:
            self._load_catalog(product_codes)
        if subscriptions:
            self._load_subscriptions(subscriptions)

    def _load_catalog(self, codes: Collection[str]) -> None:
        product_table = tables.table_of(tables.Product)
        found_ids = []
        for product in self.session.execute(
            select(*product_table.c).where(product_table.c.code.in_(sorted(codes)))
        ):
            found = ProductRow(
                product.id, product.code, product.name, product.family, product.tax_code
            )
            self.products[found.code] = self.stored_products[found.code] = found
            self.cache.products[found.id] = found.domain()
            found_ids.append(found.id)
        if not found_ids:
            return
        price_table = tables.table_of(tables.Price)
        prices = self.session.execute(
            select(*price_table.c)
            .where(
                price_table.c.product_id.in_(sorted(found_ids)),
                price_table.c.model == pricing.PricingModel.PER_UNIT.value,
                price_table.c.lookup_key.is_(None),
            )
            .order_by(price_table.c.id)
        )
        for price in prices:
            key = (price.product_id, price.currency, price.kind)
            self.price_ids[key] = (*self.price_ids.get(key, ()), price.id)
            try:
                self.cache.prices[price.id] = price_from_row(
                    price,  # type: ignore[arg-type]  # a row of the same columns
                    self.cache.products[price.product_id],
                )
            except InvalidInputError as error:
                self.cache.broken[price.id] = error

    def _load_subscriptions(self, external_ids: Collection[str]) -> None:
        ext = tables.ExternalId
        table = tables.table_of(tables.Subscription)
        rows = self.session.execute(
            select(ext.external_id, *(table.c[name] for name in SUBSCRIPTION_COLUMNS))
            .join(table, table.c.id == ext.entity_id)
            .where(
                ext.system == self.system,
                ext.entity == SUBSCRIPTIONS,
                ext.external_id.in_(sorted(external_ids)),
            )
            .with_for_update(of=table)
        ).all()
        found = [SubscriptionRow(*row[1:]) for row in rows]
        for external_id, row in zip((row.external_id for row in rows), found, strict=True):
            self.subscription_ids[external_id] = row.id
        if not found:
            return
        stored = load_items(self.session, [row.id for row in found])
        failures: dict[int, str] = {}
        loaded = build_subscriptions(self.session, found, stored, self.cache, failures)
        for row in found:
            items = {
                item.item_key: ItemRow(item.id, item.product_id, item.kind, item.service_date)
                for item in stored.items.get(row.id, [])
            }
            versions = {
                (item.id, v.effective_date): VersionRow(
                    v.price_id, v.quantity, v.discount_percent, v.amendment_id
                )
                for item in items.values()
                for v in stored.versions.get(item.id, [])
            }
            held = Held(row, loaded.get(row.id), failures.get(row.id), items, versions)
            self.subscriptions[row.id] = self.stored_subscriptions[row.id] = held

    def customer_billed(self, customer_id: int) -> bool:
        """Whether any document was issued to the customer."""
        if customer_id < 0:
            return False
        if customer_id not in self._billed_read:
            wanted = {customer_id, *self.stored_customers} - self._billed_read
            self._billed_read |= wanted
            self._billed.update(
                self.session.scalars(
                    select(tables.Document.customer_id)
                    .distinct()
                    .where(tables.Document.customer_id.in_(sorted(wanted)))
                )
            )
        return customer_id in self._billed

    def stored_subscriptions_of(self, customer_id: int) -> set[int]:
        """The ids of the customer's stored subscriptions (read for every stored customer of
        the batch at once)."""
        if customer_id < 0:
            return set()
        if customer_id not in self._customer_subscriptions_read:
            wanted = {customer_id, *self.stored_customers} - self._customer_subscriptions_read
            self._customer_subscriptions_read |= wanted
            table = tables.Subscription
            for owner, subscription_id in self.session.execute(
                select(table.customer_id, table.id).where(table.customer_id.in_(sorted(wanted)))
            ):
                self._customer_subscriptions.setdefault(owner, set()).add(subscription_id)
        return self._customer_subscriptions.get(customer_id, set())

    def read_amendments(self, subscription_id: int) -> None:
        """Read the amendments of the stored subscriptions of the batch (one query)."""
        if subscription_id > 0 and subscription_id not in self._amended:
            wanted = {subscription_id, *self.stored_subscriptions} - self._amended
            self._amended |= wanted
            table = tables.Amendment
            found: dict[int, list[AmendmentRow]] = {}
            for row in self.session.execute(
                select(
                    table.id,
                    table.subscription_id,
                    table.kind,
                    table.effective_date,
                    table.revision,
                    table.reference,
                )
                .where(table.subscription_id.in_(sorted(wanted)))
                .order_by(table.id)
            ):
                found.setdefault(row.subscription_id, []).append(AmendmentRow(*row))
            for owner, rows in found.items():
                self.amendment_rows[owner] = tuple(rows)

    def first_document(self, subscription_id: int) -> str | None:
        """The number of the first document issued for the subscription, if any."""
        self._read_billing(subscription_id)
        return self._documents.get(subscription_id)

    def charged(self, subscription_id: int) -> bool:
        """Whether a billing run charged any item of the subscription."""
        self._read_billing(subscription_id)
        return subscription_id in self._charged

    def _read_billing(self, subscription_id: int) -> None:
        """What was billed of the stored subscriptions of the batch (one query): the first
        document of each, and whether any of its items was charged."""
        if subscription_id < 0 or subscription_id in self._billing_read:
            return
        wanted = {subscription_id, *self.stored_subscriptions} - self._billing_read
        self._billing_read |= wanted
        sub, doc, item = tables.Subscription, tables.Document, tables.SubscriptionItem
        first_document = (
            select(doc.number)
            .where(doc.subscription_id == sub.id)
            .order_by(doc.id)
            .limit(1)
            .scalar_subquery()
        )
        charged = exists(
            select(tables.Charge.id)
            .join(item, item.id == tables.Charge.subscription_item_id)
            .where(item.subscription_id == sub.id)
        )
        for found, number, was_charged in self.session.execute(
            select(sub.id, first_document, charged).where(sub.id.in_(sorted(wanted)))
        ):
            if number is not None:
                self._documents[found] = number
            if was_charged:
                self._charged.add(found)
