"""A working copy of the billing core for a batch of changes, read and written set-based.

A batch of CRM records (a page of a pull) touches some customers, subscriptions (with their
items, versions and amendments), products and prices. The working copy reads them with one
query per table, lets each record change them in memory (all of a record's changes, or none
when it fails: :meth:`Workset.atomic`), and writes the difference back with one statement per
table and kind of change: ids reserved beforehand for new rows, executemany for the rest.
New rows carry provisional (negative) ids until they are written.

What the records change is decided elsewhere (:mod:`connector.sync.deals`); this module only
keeps the rows as the database would hold them after each change, so that the next record of
the batch sees them exactly as it would have after a flush.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from connector.billing import pricing
from connector.billing import subscriptions as domain
from connector.db import tables
from connector.db.bulk import bulk_delete, bulk_insert, bulk_update, reserve_many
from connector.db.catalog import PriceCache, price_from_row, price_signature
from connector.db.subscriptions import build_subscriptions, item_changes, load_items
from connector.db.types import utc_now
from connector.errors import ConnectorError, InvalidInputError

CUSTOMERS = tables.Customer.__tablename__
SUBSCRIPTIONS = tables.Subscription.__tablename__
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class CustomerRow:
    id: int
    name: str
    country: str
    currency: str
    tax_id: str | None
    region: str | None


@dataclass(frozen=True, slots=True)
class ProductRow:
    id: int
    code: str
    name: str
    family: str | None
    tax_code: str | None

    def domain(self) -> pricing.Product:
        return pricing.Product(self.code, self.name, self.family, self.tax_code, self.id)


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    id: int
    contract_id: int
    customer_id: int
    currency: str
    frequency: str
    start_date: date
    trial_days: int
    term_months: int
    auto_renew: bool
    term_count: int
    cancel_date: date | None
    revision: int
    billed_until: date | None
    billed_as_of: date | None
    reconcile_from: date | None
    next_billing_date: date | None


SUBSCRIPTION_COLUMNS = tuple(f.name for f in fields(SubscriptionRow))
CHANGING_COLUMNS = SUBSCRIPTION_COLUMNS[4:]  # what a change may set: not the ids, the currency


@dataclass(frozen=True, slots=True)
class ItemRow:
    id: int
    product_id: int
    kind: str
    service_date: date | None


@dataclass(frozen=True, slots=True)
class VersionRow:
    price_id: int
    quantity: Decimal
    discount_percent: Decimal
    amendment_id: int | None


@dataclass(frozen=True, slots=True)
class AmendmentRow:
    id: int
    subscription_id: int
    kind: str
    effective_date: date
    revision: int
    reference: str | None


@dataclass(frozen=True, slots=True)
class Held:
    """A subscription as the working copy holds it: its row, its domain form (None with the
    ``error`` its stored records raise), its items by key and versions by (item id, date)."""

    row: SubscriptionRow
    subscription: domain.Subscription | None
    error: str | None
    items: dict[str, ItemRow]
    versions: dict[tuple[int, date], VersionRow]


class Workset:
    """See the module's description. Read with :meth:`load`, change through the methods below
    (inside :meth:`atomic`), then :meth:`write` once."""

    def __init__(self, session: Session, system: str) -> None:
        self.session = session
        self.system = system
        self.cache = PriceCache()
        self._customer_ids: dict[str, int | None] = {}
        self.customers: dict[int, CustomerRow] = {}
        self._subscription_ids: dict[str, int | None] = {}
        self.subscriptions: dict[int, Held | None] = {}  # None: discarded
        self.contracts: dict[int, tuple[int, str]] = {}  # new ones: customer id, name
        self._amendments: dict[int, tuple[AmendmentRow, ...]] = {}
        self.products: dict[str, ProductRow] = {}
        self._prices: dict[tuple[int, str, str], tuple[int, ...]] = {}
        self.new_prices: dict[int, pricing.Price] = {}
        self._initial_customers: dict[int, CustomerRow] = {}
        self._initial_subscriptions: dict[int, Held] = {}
        self._initial_products: dict[str, ProductRow] = {}
        self._covered_customers: set[str] = set()
        self._covered_subscriptions: set[str] = set()
        self._covered_codes: set[str] = set()
        self._next_id = 0
        self._journal: list[tuple[MutableMapping[Any, Any], Any, Any]] | None = None
        # what is read only when a record needs it, for every stored row of the batch at once
        self._amended: set[int] = set()  # subscriptions whose amendments are read
        self._documents: dict[int, str] = {}  # subscription id: its first document's number
        self._charged: set[int] = set()  # subscriptions with charges
        self._billing_read: set[int] = set()
        self._billed: set[int] = set()  # customers with documents
        self._billed_read: set[int] = set()
        self._customer_subscriptions: dict[int, set[int]] = {}
        self._customer_subscriptions_read: set[int] = set()

    # -- reading ---------------------------------------------------------------------------
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
                    row.id, row.name, row.country, row.currency, row.tax_id, row.region
                )
                self._customer_ids[row.external_id] = customer.id
                self.customers[customer.id] = self._initial_customers[customer.id] = customer
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
            self.products[found.code] = self._initial_products[found.code] = found
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
            self._prices[key] = (*self._prices.get(key, ()), price.id)
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
            self._subscription_ids[external_id] = row.id
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
            self.subscriptions[row.id] = self._initial_subscriptions[row.id] = held

    # -- a record's changes: all or none ---------------------------------------------------
    @contextmanager
    def atomic(self) -> Iterator[None]:
        """The changes made inside are undone when it raises."""
        assert self._journal is None, "a record's changes are not nested"
        self._journal = []
        try:
            yield
        except BaseException:
            for mapping, key, old in reversed(self._journal):
                if old is _MISSING:
                    mapping.pop(key, None)
                else:
                    mapping[key] = old
            raise
        finally:
            self._journal = None

    def _put(self, mapping: MutableMapping[Any, Any], key: Any, value: Any) -> None:
        if self._journal is not None:
            self._journal.append((mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value

    def _new_id(self) -> int:
        self._next_id -= 1
        return self._next_id

    # -- customers -------------------------------------------------------------------------
    def customer(self, external_id: str) -> CustomerRow | None:
        """The customer known by ``external_id``, if any."""
        self.load(customers=[external_id])
        customer_id = self._customer_ids.get(external_id)
        return None if customer_id is None else self.customers[customer_id]

    def add_customer(self, external_id: str, **values: Any) -> CustomerRow:
        row = CustomerRow(self._new_id(), **values)
        self._put(self.customers, row.id, row)
        self._put(self._customer_ids, external_id, row.id)
        return row

    def update_customer(self, customer_id: int, **values: Any) -> CustomerRow:
        row = replace(self.customers[customer_id], **values)
        self._put(self.customers, customer_id, row)
        return row

    def customer_billed(self, customer_id: int) -> bool:
        """Whether any document was issued to the customer."""
        if customer_id < 0:
            return False
        if customer_id not in self._billed_read:
            wanted = {customer_id, *self._initial_customers} - self._billed_read
            self._billed_read |= wanted
            self._billed.update(
                self.session.scalars(
                    select(tables.Document.customer_id)
                    .distinct()
                    .where(tables.Document.customer_id.in_(sorted(wanted)))
                )
            )
        return customer_id in self._billed

    def customer_has_subscriptions(self, customer_id: int) -> bool:
        """Whether the customer has a subscription (stored, or made in this batch)."""
        if any(
            held is not None and held.row.customer_id == customer_id
            for held in self.subscriptions.values()
        ):
            return True
        if customer_id < 0:
            return False
        if customer_id not in self._customer_subscriptions_read:
            wanted = {customer_id, *self._initial_customers} - self._customer_subscriptions_read
            self._customer_subscriptions_read |= wanted
            table = tables.Subscription
            for owner, subscription_id in self.session.execute(
                select(table.customer_id, table.id).where(table.customer_id.in_(sorted(wanted)))
            ):
                self._customer_subscriptions.setdefault(owner, set()).add(subscription_id)
        # the ones in the working copy were looked at above: alive, or discarded
        return any(
            subscription_id not in self.subscriptions
            for subscription_id in self._customer_subscriptions.get(customer_id, ())
        )

    # -- products and prices ---------------------------------------------------------------
    def product(self, code: str) -> ProductRow | None:
        self.load(product_codes=[code])
        return self.products.get(code)

    def save_product(self, product: pricing.Product) -> ProductRow:
        """The product of this code, made or updated to ``product``'s name, family and tax
        code."""
        found = self.product(product.code)
        row = ProductRow(
            found.id if found else self._new_id(),
            product.code,
            product.name,
            product.family,
            product.tax_code,
        )
        if row != found:
            self._put(self.products, row.code, row)
        return row

    def price(self, wanted: pricing.Price) -> pricing.Price:
        """The per-unit price without a lookup key of ``wanted``'s terms, made when there is
        none. A stored price of the same product, currency and kind whose terms are invalid
        raises, as when it is read."""
        assert wanted.product.id is not None
        key = (wanted.product.id, wanted.currency.code, wanted.kind.value)
        for price_id in self._prices.get(key, ()):
            price = self.cache.price(price_id)
            if price_signature(price) == price_signature(wanted):
                return price
        price = replace(wanted, id=self._new_id())
        self._put(self._prices, key, (*self._prices.get(key, ()), price.id))
        self._put(self.cache.prices, price.id, price)
        self._put(self.new_prices, price.id, price)
        return price

    # -- subscriptions ---------------------------------------------------------------------
    def subscription(self, external_id: str) -> SubscriptionRow | None:
        """The subscription known by ``external_id``, if any."""
        self.load(subscriptions=[external_id])
        subscription_id = self._subscription_ids.get(external_id)
        held = None if subscription_id is None else self.subscriptions.get(subscription_id)
        return None if held is None else held.row

    def _held(self, subscription_id: int) -> Held:
        held = self.subscriptions[subscription_id]
        assert held is not None, "a discarded subscription is not changed"
        return held

    def row(self, subscription_id: int) -> SubscriptionRow:
        """The subscription's row as it now stands."""
        return self._held(subscription_id).row

    def loaded(self, subscription_id: int) -> domain.Subscription:
        """The subscription's domain form; raises what its stored records break."""
        held = self._held(subscription_id)
        if held.subscription is None:
            raise ConnectorError(held.error or f"subscription {subscription_id} cannot be read")
        return held.subscription

    def amendments(self, subscription_id: int) -> tuple[AmendmentRow, ...]:
        """The subscription's amendments, in the order they were made."""
        if subscription_id > 0 and subscription_id not in self._amended:
            wanted = {subscription_id, *self._initial_subscriptions} - self._amended
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
                self._amendments[owner] = tuple(rows)
        return self._amendments.get(subscription_id, ())

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
        wanted = {subscription_id, *self._initial_subscriptions} - self._billing_read
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

    def add_subscription(
        self,
        external_id: str,
        *,
        customer_id: int,
        name: str,
        subscription: domain.Subscription,
        values: dict[str, Any],
    ) -> SubscriptionRow:
        """A contract named ``name`` with one subscription (``values``: its columns but the
        ids), its items and versions those of ``subscription``."""
        contract_id = self._new_id()
        self._put(self.contracts, contract_id, (customer_id, name))
        row = SubscriptionRow(
            id=self._new_id(), contract_id=contract_id, customer_id=customer_id, **values
        )
        held = self._with_items(Held(row, subscription, None, {}, {}), None, subscription, None)
        self._put(self.subscriptions, row.id, held)
        self._put(self._subscription_ids, external_id, row.id)
        self._put(self._amendments, row.id, ())
        return row

    def change_subscription(
        self,
        subscription_id: int,
        after: domain.Subscription,
        values: dict[str, Any],
        amendment: tuple[str, date, str | None] | None = None,
    ) -> None:
        """Make ``after`` the subscription, with ``values`` set on its row and, when given,
        an amendment ``(kind, effective date, reference)`` at its new revision."""
        held = self._held(subscription_id)
        before = self.loaded(subscription_id)
        row = replace(held.row, **values)
        amendment_id = None
        if amendment is not None:
            kind, effective, reference = amendment
            amendment_id = self._new_id()
            made = AmendmentRow(amendment_id, row.id, kind, effective, row.revision, reference)
            self._put(self._amendments, row.id, (*self.amendments(row.id), made))
        changed = self._with_items(
            replace(held, row=row, subscription=after), before, after, amendment_id
        )
        self._put(self.subscriptions, row.id, changed)

    def _with_items(
        self,
        held: Held,
        before: domain.Subscription | None,
        after: domain.Subscription,
        amendment_id: int | None,
    ) -> Held:
        """``held`` with the item and version rows saving ``after`` over ``before`` makes."""
        changes = item_changes(before, after)
        if not changes:
            return held
        items, versions = dict(held.items), dict(held.versions)
        for change in changes:
            item = change.item
            found = items.get(item.key)
            if found is None:
                assert item.product.id is not None
                found = ItemRow(self._new_id(), item.product.id, item.kind.value, item.service_date)
            else:
                found = replace(found, service_date=item.service_date)
            items[item.key] = found
            for day in change.stale:
                versions.pop((found.id, day), None)
            for version in change.added:
                assert version.price.id is not None
                versions[(found.id, version.effective_date)] = VersionRow(
                    version.price.id, version.quantity, version.discount_percent, amendment_id
                )
        return replace(held, items=items, versions=versions)

    def discard(self, subscription_id: int) -> None:
        """Remove the subscription with its contract, items, versions, amendments and links."""
        self._held(subscription_id)
        self._put(self.subscriptions, subscription_id, None)
        for external_id, found in list(self._subscription_ids.items()):
            if found == subscription_id:
                self._put(self._subscription_ids, external_id, None)

    # -- writing ---------------------------------------------------------------------------
    def write(self) -> None:
        """Write what the batch changed: ids reserved for new rows in one statement, then one
        statement per table and kind of change."""
        now = utc_now()
        alive = {i: held for i, held in self.subscriptions.items() if held is not None}
        new_subscriptions = {i: held for i, held in alive.items() if i < 0}
        new_amendments = [
            row for i, rows in self._amendments.items() if i in alive for row in rows if row.id < 0
        ]
        new_items = [
            (i, key, item)
            for i, held in alive.items()
            for key, item in held.items.items()
            if item.id < 0
        ]
        new_customers = [row for i, row in self.customers.items() if i < 0]
        new_products = [row for row in self.products.values() if row.id < 0]
        provisional = {
            tables.table_of(tables.Customer): [row.id for row in new_customers],
            tables.table_of(tables.Product): [row.id for row in new_products],
            tables.table_of(tables.Price): list(self.new_prices),
            tables.table_of(tables.Contract): [
                held.row.contract_id for held in new_subscriptions.values()
            ],
            tables.table_of(tables.Subscription): list(new_subscriptions),
            tables.table_of(tables.Amendment): [row.id for row in new_amendments],
            tables.table_of(tables.SubscriptionItem): [item.id for _, _, item in new_items],
        }
        reserved = reserve_many(
            self.session, {table: len(ids) for table, ids in provisional.items()}
        )
        ids: dict[int, int] = {}
        for table, old in provisional.items():
            ids.update(zip(old, reserved.get(table, []), strict=True))

        def real(value: int | None) -> int | None:
            return None if value is None else ids.get(value, value)

        self._discard_stored()
        self._write_catalog(real, new_products, now)
        self._write_customers(real, new_customers, now)
        self._write_subscriptions(real, new_subscriptions, now)
        bulk_insert(
            self.session,
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
        self._write_items(real, alive, new_items)
        links = [
            (CUSTOMERS, external_id, customer_id)
            for external_id, customer_id in self._customer_ids.items()
            if customer_id is not None and customer_id < 0
        ] + [
            (SUBSCRIPTIONS, external_id, subscription_id)
            for external_id, subscription_id in self._subscription_ids.items()
            if subscription_id is not None and subscription_id in new_subscriptions
        ]
        bulk_insert(
            self.session,
            tables.table_of(tables.ExternalId),
            [
                {
                    "entity": entity,
                    "entity_id": real(entity_id),
                    "system": self.system,
                    "external_id": external_id,
                }
                for entity, external_id, entity_id in links
            ],
        )

    def _discard_stored(self) -> None:
        gone = [
            held for i, held in self._initial_subscriptions.items() if self.subscriptions[i] is None
        ]
        if not gone:
            return
        ids = sorted(held.row.id for held in gone)
        item = tables.SubscriptionItem
        items = select(item.id).where(item.subscription_id.in_(ids))
        execute = self.session.execute
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

    def _write_catalog(
        self, real: Callable[[int | None], int | None], new: list[ProductRow], now: datetime
    ) -> None:
        product_table = tables.table_of(tables.Product)
        bulk_insert(
            self.session,
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
            self.session,
            product_table,
            [
                {"id": row.id, "name": row.name, "family": row.family, "tax_code": row.tax_code}
                for code, row in self.products.items()
                if row.id > 0 and row != self._initial_products[code]
            ],
            keys=["id"],
        )
        bulk_insert(
            self.session,
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
                    "tiers": None,
                    "created_at": now,
                }
                for price in self.new_prices.values()
            ],
        )

    def _write_customers(
        self, real: Callable[[int | None], int | None], new: list[CustomerRow], now: datetime
    ) -> None:
        table = tables.table_of(tables.Customer)
        bulk_insert(
            self.session,
            table,
            [
                {
                    **_values(row),
                    "id": real(row.id),
                    "created_at": now,
                    "updated_at": now,
                }
                for row in new
            ],
        )
        bulk_update(
            self.session,
            table,
            [
                {**_values(row), "updated_at": now}
                for i, row in self.customers.items()
                if i > 0 and row != self._initial_customers[i]
            ],
            keys=["id"],
        )

    def _write_subscriptions(
        self,
        real: Callable[[int | None], int | None],
        new: dict[int, Held],
        now: datetime,
    ) -> None:
        bulk_insert(
            self.session,
            tables.table_of(tables.Contract),
            [
                {
                    "id": real(held.row.contract_id),
                    "customer_id": real(held.row.customer_id),
                    "name": self.contracts[held.row.contract_id][1],
                    "created_at": now,
                }
                for held in new.values()
            ],
        )
        table = tables.table_of(tables.Subscription)
        bulk_insert(
            self.session,
            table,
            [
                {
                    **_values(held.row),
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
        for i, before in self._initial_subscriptions.items():
            held = self.subscriptions[i]
            if held is not None and held.row != before.row:
                values = _values(held.row)
                changed.append(
                    {
                        "id": i,
                        **{name: values[name] for name in CHANGING_COLUMNS},
                        "updated_at": now,
                    }
                )
        bulk_update(self.session, table, changed, keys=["id"])

    def _write_items(
        self,
        real: Callable[[int | None], int | None],
        alive: dict[int, Held],
        new: list[tuple[int, str, ItemRow]],
    ) -> None:
        bulk_insert(
            self.session,
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
            before = self._initial_subscriptions.get(i)
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
        bulk_update(
            self.session, tables.table_of(tables.SubscriptionItem), changed_items, keys=["id"]
        )
        versions = tables.table_of(tables.ItemVersion)
        bulk_delete(self.session, versions, stale)
        bulk_insert(self.session, versions, added)


def _values(row: Any) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row)}
