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

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from connector.billing import pricing
from connector.billing import subscriptions as domain
from connector.db import workset_write
from connector.db.catalog import price_signature
from connector.db.subscriptions import item_changes
from connector.db.workset_read import Stored
from connector.db.workset_rows import (
    AmendmentRow,
    CustomerRow,
    Held,
    ItemRow,
    ProductRow,
    SubscriptionRow,
    VersionRow,
)
from connector.errors import ConnectorError

_MISSING: Any = object()


class Workset(Stored):
    """See the module's description. Read with :meth:`load`, change through the methods below
    (inside :meth:`atomic`), then :meth:`write` once."""

    def __init__(self, session: Session, system: str) -> None:
        super().__init__(session, system)
        self.contracts: dict[int, tuple[int, str]] = {}  # new ones: customer id, name
        self.new_prices: dict[int, pricing.Price] = {}
        self.discarded: dict[int, int] = {}  # subscription id: its customer's
        self._next_id = 0
        self._journal: list[tuple[MutableMapping[Any, Any], Any, Any]] | None = None

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
        customer_id = self.customer_ids.get(external_id)
        return None if customer_id is None else self.customers[customer_id]

    def add_customer(self, external_id: str, **values: Any) -> CustomerRow:
        row = CustomerRow(self._new_id(), **values)
        self._put(self.customers, row.id, row)
        self._put(self.customer_ids, external_id, row.id)
        return row

    def update_customer(self, customer_id: int, **values: Any) -> CustomerRow:
        row = replace(self.customers[customer_id], **values)
        self._put(self.customers, customer_id, row)
        return row

    def customer_has_subscriptions(self, customer_id: int) -> bool:
        """Whether the customer has a subscription (stored, or made in this batch)."""
        if any(
            held is not None and held.row.customer_id == customer_id
            for held in self.subscriptions.values()
        ):
            return True
        # the ones in the working copy were looked at above: alive, or discarded
        return any(
            subscription_id not in self.subscriptions
            for subscription_id in self.stored_subscriptions_of(customer_id)
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
        for price_id in self.price_ids.get(key, ()):
            price = self.cache.price(price_id)
            if price_signature(price) == price_signature(wanted):
                return price
        price = replace(wanted, id=self._new_id())
        self._put(self.price_ids, key, (*self.price_ids.get(key, ()), price.id))
        self._put(self.cache.prices, price.id, price)
        self._put(self.new_prices, price.id, price)
        return price

    # -- subscriptions ---------------------------------------------------------------------
    def subscription(self, external_id: str) -> SubscriptionRow | None:
        """The subscription known by ``external_id``, if any."""
        self.load(subscriptions=[external_id])
        subscription_id = self.subscription_ids.get(external_id)
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
        self.read_amendments(subscription_id)
        return self.amendment_rows.get(subscription_id, ())

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
        self._put(self.subscription_ids, external_id, row.id)
        self._put(self.amendment_rows, row.id, ())
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
            self._put(self.amendment_rows, row.id, (*self.amendments(row.id), made))
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
        held = self._held(subscription_id)
        self._put(self.discarded, subscription_id, held.row.customer_id)
        self._put(self.subscriptions, subscription_id, None)
        for external_id, found in list(self.subscription_ids.items()):
            if found == subscription_id:
                self._put(self.subscription_ids, external_id, None)

    # -- writing ---------------------------------------------------------------------------
    def write(self) -> None:
        """Write what the batch changed (see :mod:`connector.db.workset_write`)."""
        workset_write.write(self)
