"""Applying mapped Salesforce records to the billing core.

An account becomes a customer. A won deal becomes a contract with one subscription; a later
change to it becomes the matching change of the subscription (a new item set, a cancellation,
new terms, a new schedule while nothing is invoiced). An upgrade or downgrade deal gives the
subscription of the deal it amends a new item set from its service start. A deal withdrawn
(deleted, or no longer won) is dropped while nothing was billed, and held for review once
something was: the connector never reverses billed documents on its own.

A won deal whose dates or amounts are implausible (:mod:`connector.billing.plausibility`) is
held for review with every reason, unless a person approved that very version of it; what a
version keeps from the version applied before it (its start, an item's terms) is not checked
again.

Each function returns an :class:`Outcome`; a record that cannot be applied raises
:class:`~connector.sync.mapping.MappingError` with the reason it waits in quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.billing import plausibility
from connector.billing import subscriptions as domain
from connector.billing.pricing import ChargeKind, PricingModel
from connector.db import catalog, reviews, tables
from connector.db.catalog import PriceCache, find_by_external_id
from connector.db.staging import APPLIED, HELD, IGNORED
from connector.errors import BillingError
from connector.sync import contracts
from connector.sync.mapping import CustomerData, DealData, ItemData, MappingError

SYSTEM = "salesforce"


@dataclass
class Catalog:
    """Products and prices already found or made in this transaction, so that ten thousand
    deals on three products cost three product and three price lookups, not thirty thousand.
    Forget it whenever a transaction or savepoint that may have made them rolls back."""

    products: dict[str, tuple[int, str, str | None]] = field(default_factory=dict)
    prices: dict[tuple[object, ...], int] = field(default_factory=dict)
    cache: PriceCache = field(default_factory=PriceCache)

    def clear(self) -> None:
        self.products.clear()
        self.prices.clear()
        self.cache = PriceCache()

    def product_id(self, session: Session, item: ItemData) -> int:
        known = self.products.get(item.product_code)
        if known is not None and known[1:] == (item.product_name, item.product_family):
            return known[0]
        row = catalog.upsert_product(
            session, item.product_code, item.product_name, item.product_family
        )
        self.products[item.product_code] = (row.id, item.product_name, item.product_family)
        return row.id

    def price_id(self, session: Session, item: ItemData, currency: str) -> int:
        product_id = self.product_id(session, item)
        signature = (product_id, currency, item.kind, item.unit_price)
        found = self.prices.get(signature)
        if found is None:
            product = session.get(tables.Product, product_id)
            assert product is not None
            found = catalog.upsert_price(
                session,
                product,
                currency=currency,
                kind=item.kind,
                model=PricingModel.PER_UNIT,
                unit_amount=item.unit_price,
            ).id
            self.prices[signature] = found
        self.cache.load_prices(session, [found])
        return found


@dataclass(frozen=True)
class Outcome:
    state: str
    reason: str | None = None


def apply_account(session: Session, data: CustomerData) -> Outcome:
    contracts.upsert_customer(
        session,
        name=data.name,
        country=data.country,
        currency=data.currency,
        tax_id=data.tax_id,
        system=SYSTEM,
        external_id=data.external_id,
        region=data.region,
    )
    return Outcome(APPLIED)


def withdraw_account(session: Session, account_id: str) -> Outcome:
    customer = find_by_external_id(session, tables.Customer, SYSTEM, account_id)
    if customer is None:
        return Outcome(IGNORED, "deleted in Salesforce before it was billed")
    active = session.scalar(
        select(tables.Subscription.id)
        .where(tables.Subscription.customer_id == customer.id)
        .limit(1)
    )
    if active is None:
        return Outcome(IGNORED, "deleted in Salesforce; no subscriptions")
    return Outcome(HELD, "account deleted in Salesforce while it has subscriptions; review them")


def _invoiced(session: Session, subscription_id: int) -> str | None:
    return session.scalar(
        select(tables.Document.number)
        .where(tables.Document.subscription_id == subscription_id)
        .order_by(tables.Document.id)
        .limit(1)
    )


def withdraw_deal(session: Session, deal_id: str, why: str, previous: DealData | None) -> Outcome:
    """The deal was deleted or is no longer won."""
    if previous is not None and previous.amends:
        return Outcome(
            HELD,
            f"amendment {why} after it was applied to the subscription of deal "
            f"{previous.amends}; review that subscription",
        )
    row = find_by_external_id(session, tables.Subscription, SYSTEM, deal_id)
    if row is None:
        return Outcome(IGNORED, why)
    document = _invoiced(session, row.id)
    if document is None:
        contracts.discard_subscription(session, row.id)
        return Outcome(IGNORED, f"{why}; its subscription was dropped before any billing")
    return Outcome(
        HELD,
        f"deal {why} after {document} was issued; cancel its subscription in the connector or "
        "win the deal again",
    )


def _customer(session: Session, data: DealData, account_state: str | None) -> tables.Customer:
    customer = find_by_external_id(session, tables.Customer, SYSTEM, data.account_id)
    if customer is not None:
        return customer
    if not data.account_id:
        raise MappingError("deal has no account")
    if account_state is None:
        raise MappingError(f"account {data.account_id} has not been pulled yet")
    raise MappingError(f"account {data.account_id} is {account_state}")


def _specs(
    session: Session, data: DealData, currency: str, known: Catalog
) -> list[domain.ItemSpec]:
    specs = []
    for item in data.items:
        price = known.cache.price(known.price_id(session, item, currency))
        one_time = item.kind is ChargeKind.ONE_TIME
        specs.append(
            domain.ItemSpec(
                item.key,
                price,
                item.quantity,
                item.discount_percent,
                (item.service_date or data.start) if one_time else None,
            )
        )
    return specs


def _terms(data: DealData) -> domain.SubscriptionTerms:
    return domain.SubscriptionTerms(
        start_date=data.start,
        frequency=data.frequency,
        term_months=data.term_months,
        auto_renew=data.auto_renew,
        trial_days=data.trial_days,
        cancel_date=data.cancel_date,
    )


def apply_deal(
    session: Session,
    data: DealData,
    *,
    revision: str,
    previous: DealData | None,
    account_state: str | None,
    as_of: date,
    known: Catalog | None = None,
    limits: plausibility.Limits | None = None,
) -> Outcome:
    """Make the billing core reflect a won deal. ``revision`` (the payload's hash) names this
    version of the deal, so that each version is applied once; ``previous`` is the version
    applied before, if any. With ``limits``, an implausible version is held for review."""
    customer = _customer(session, data, account_state)
    if data.currency is not None and data.currency != customer.currency:
        raise MappingError(
            f"deal currency {data.currency} differs from the account's {customer.currency}"
        )
    specs = _specs(session, data, customer.currency, known or Catalog())
    if limits is not None:
        held = _implausible(session, data, specs, previous, revision, limits, as_of)
        if held is not None:
            return held
    if data.amends:
        return _apply_amendment(session, data, specs, revision, previous)
    row = find_by_external_id(session, tables.Subscription, SYSTEM, data.external_id)
    if row is None:
        contracts.create_subscription(
            session,
            customer=customer,
            name=data.name,
            terms=_terms(data),
            items=specs,
            system=SYSTEM,
            external_id=data.external_id,
        )
        return Outcome(APPLIED)
    return _apply_changes(
        session,
        row,
        data=data,
        previous=previous,
        specs=specs,
        revision=revision,
        as_of=as_of,
    )


def _implausible(  # noqa: PLR0917 - the deal, its version, and what it is checked against
    session: Session,
    data: DealData,
    specs: list[domain.ItemSpec],
    previous: DealData | None,
    revision: str,
    limits: plausibility.Limits,
    as_of: date,
) -> Outcome | None:
    """Held for review when what this version adds or changes is implausible and nobody
    approved it; None to go on."""
    before = {item.key: _item_term(item) for item in previous.items} if previous else {}
    changed = [
        (item, spec)
        for item, spec in zip(data.items, specs, strict=True)
        if before.get(item.key) != _item_term(item)
    ]
    dates = []
    if previous is None or previous.start != data.start:
        dates.append(plausibility.DatedItem("service start", data.start))
    dates.extend(
        plausibility.DatedItem(f"line item {item.line_id} ({item.key}) service date", day)
        for item, _ in changed
        if (day := item.service_date) is not None and item.kind is ChargeKind.ONE_TIME
    )
    priced = [
        plausibility.PricedItem(
            f"line item {item.line_id} ({item.key})", spec, item.kind is ChargeKind.ONE_TIME
        )
        for item, spec in changed
    ]
    found = plausibility.problems(
        dates, priced, frequency=data.frequency.value, as_of=as_of, limits=limits
    )
    if not found:
        return None
    if all(p.approvable for p in found) and reviews.approved(
        session, SYSTEM, data.external_id, revision
    ):
        return None
    return Outcome(
        HELD,
        plausibility.reason(
            found,
            approve=f"approve it with `connector review approve {data.external_id}`",
            fix="fix the deal in Salesforce",
        ),
    )


def _amendment_terms(data: DealData) -> tuple[object, ...]:
    """What an upgrade or downgrade deal changes: which deal, from when, to which items."""
    return (data.amends, data.start, _item_terms(data))


def _apply_amendment(
    session: Session,
    data: DealData,
    specs: list[domain.ItemSpec],
    revision: str,
    previous: DealData | None,
) -> Outcome:
    """Amend the subscription of the deal ``data`` amends, from its start, once per change: an
    edit that leaves the deal, the start and the items as they were (a new name, a note)
    changes nothing billed. A change to an amendment once a later one was applied on top of it
    waits for review, since applying it again would undo the later one."""
    if previous is not None and _amendment_terms(previous) == _amendment_terms(data):
        return Outcome(APPLIED)
    target = find_by_external_id(session, tables.Subscription, SYSTEM, data.amends or "")
    if target is None:
        raise MappingError(f"amends deal {data.amends}, which has no subscription (yet)")
    if previous is not None:
        later = session.scalar(
            select(tables.Amendment.id)
            .where(
                tables.Amendment.subscription_id == target.id,
                tables.Amendment.kind == "items",
                tables.Amendment.effective_date > min(data.start, previous.start),
                ~tables.Amendment.reference.startswith(_reference(data.external_id, "")),
            )
            .limit(1)
        )
        if later is not None:
            return Outcome(
                HELD, "upgrade or downgrade changed after a later one was applied; review"
            )
    contracts.amend_subscription(
        session,
        target.id,
        effective=data.start,
        items=specs,
        reference=_reference(data.external_id, revision),
    )
    return Outcome(APPLIED)


def _reference(deal_id: str, revision: str) -> str:
    """Names one version of a deal's change, so that it is applied once."""
    return f"{SYSTEM}:{deal_id}:{revision[:16]}"


def _item_term(item: ItemData) -> tuple[object, ...]:
    return (
        item.key,
        item.kind,
        item.quantity,
        item.unit_price,
        item.discount_percent,
        item.service_date,
    )


def _item_terms(data: DealData) -> list[tuple[object, ...]]:
    return [_item_term(i) for i in data.items]


def _apply_changes(
    session: Session,
    row: tables.Subscription,
    *,
    data: DealData,
    previous: DealData | None,
    specs: list[domain.ItemSpec],
    revision: str,
    as_of: date,
) -> Outcome:
    reference = _reference(data.external_id, revision)
    schedule = (data.start, data.frequency.value, data.trial_days)
    if schedule != (row.start_date, row.frequency, row.trial_days):
        try:
            contracts.reschedule_subscription(
                session,
                row.id,
                start_date=data.start,
                frequency=data.frequency.value,
                trial_days=data.trial_days,
            )
        except BillingError as error:
            return Outcome(HELD, f"service start, frequency or trial changed: {error}")
    if previous is None or _item_terms(previous) != _item_terms(data):
        amended_elsewhere = session.scalar(
            select(tables.Amendment.id)
            .where(
                tables.Amendment.subscription_id == row.id,
                tables.Amendment.kind == "items",
                ~tables.Amendment.reference.startswith(_reference(data.external_id, "")),
            )
            .limit(1)
        )
        if amended_elsewhere is not None:
            return Outcome(
                HELD, "line items changed after an upgrade or downgrade was applied; review"
            )
        contracts.amend_subscription(
            session, row.id, effective=data.start, items=specs, reference=reference
        )
    if data.cancel_date != row.cancel_date:
        contracts.cancel_subscription(
            session, row.id, cancel_date=data.cancel_date, reference=f"{reference}:cancel"
        )
    if (data.term_months, data.auto_renew) != (row.term_months, row.auto_renew):
        contracts.change_terms(
            session,
            row.id,
            as_of=as_of,
            term_months=data.term_months,
            auto_renew=data.auto_renew,
            reference=f"{reference}:terms",
        )
    return Outcome(APPLIED)
