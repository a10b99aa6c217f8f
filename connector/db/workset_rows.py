"""The rows a :class:`~connector.db.workset.Workset` holds: the columns of the billing core's
tables as the database would hold them, in immutable form (a change makes a new row)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from typing import Any

from connector.billing import pricing
from connector.billing import subscriptions as domain


@dataclass(frozen=True, slots=True)
class CustomerRow:
    id: int
    name: str
    country: str
    currency: str
    tax_id: str | None
    region: str | None
    address_street: str | None = None
    address_city: str | None = None
    address_state: str | None = None
    address_postal_code: str | None = None
    language: str | None = None
    billing_email: str | None = None


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


def values(row: Any) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row)}
