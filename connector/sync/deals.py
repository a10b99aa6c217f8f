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

Each function works on a :class:`~connector.db.workset.Workset` (what a page of records
touches, read at once and written back at once) and returns an :class:`Outcome`; a record that
cannot be applied raises :class:`~connector.sync.mapping.MappingError` (or another
:class:`~connector.errors.ConnectorError`) with the reason it waits in quarantine, and the
workset undoes what it had changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from connector.billing import plausibility, pricing
from connector.billing import subscriptions as domain
from connector.billing.metered import MeteredModel, MeteredPrice
from connector.billing.money import currency as currency_of
from connector.billing.pricing import ChargeKind, PricingModel
from connector.db.staging import APPLIED, HELD, IGNORED
from connector.db.workset import Workset
from connector.db.workset_rows import AmendmentRow, CustomerRow, SubscriptionRow
from connector.errors import BillingError
from connector.sync import contracts, subscription_changes
from connector.sync.mapping import CustomerData, DealData, ItemData, MappingError
from connector.sync.usage_mapping import UsageMapping

UsageTerms = Callable[[], UsageMapping]  # the usage mapping, read when first needed

SYSTEM = "salesforce"
Approved = Callable[[str, str], bool]  # (deal id, version): approved for review?


@dataclass(frozen=True)
class Outcome:
    state: str
    reason: str | None = None


def apply_account(work: Workset, data: CustomerData) -> Outcome:
    """Create the customer, or update the one known under the account's id."""
    code, country, region = contracts.customer_codes(
        name=data.name,
        country=data.country,
        currency=data.currency,
        region=data.region,
        external_id=data.external_id,
    )
    row = work.customer(data.external_id)
    if row is None:
        work.add_customer(
            data.external_id,
            name=data.name,
            country=country,
            currency=code,
            tax_id=data.tax_id,
            region=region,
            language=data.language,
            **data.address.columns(),
            billing_email=data.billing_email,
        )
        return Outcome(APPLIED)
    if row.currency != code and work.customer_billed(row.id):
        contracts.refuse_billed_currency_change(data.name, row.currency, code)
    work.update_customer(
        row.id,
        name=data.name.strip(),
        country=country,
        currency=code,
        tax_id=data.tax_id,
        region=region,
        language=data.language,
        **data.address.columns(),
        billing_email=data.billing_email,
    )
    return Outcome(APPLIED)


def withdraw_account(work: Workset, account_id: str) -> Outcome:
    customer = work.customer(account_id)
    if customer is None:
        return Outcome(IGNORED, "deleted in Salesforce before it was billed")
    if not work.customer_has_subscriptions(customer.id):
        return Outcome(IGNORED, "deleted in Salesforce; no subscriptions")
    return Outcome(HELD, "account deleted in Salesforce while it has subscriptions; review them")


def withdraw_deal(work: Workset, deal_id: str, why: str, previous: DealData | None) -> Outcome:
    """The deal was deleted or is no longer won."""
    if previous is not None and previous.amends:
        return Outcome(
            HELD,
            f"amendment {why} after it was applied to the subscription of deal "
            f"{previous.amends}; review that subscription",
        )
    row = work.subscription(deal_id)
    if row is None:
        return Outcome(IGNORED, why)
    document = work.first_document(row.id)
    if document is None:
        subscription_changes.discard(work, row.id)
        return Outcome(IGNORED, f"{why}; its subscription was dropped before any billing")
    return Outcome(
        HELD,
        f"deal {why} after {document} was issued; cancel its subscription in the connector or "
        "win the deal again",
    )


def _customer(
    work: Workset, data: DealData, account_state: Callable[[], str | None]
) -> CustomerRow:
    customer = work.customer(data.account_id) if data.account_id else None
    if customer is not None:
        return customer
    if not data.account_id:
        raise MappingError("deal has no account")
    state = account_state()
    if state is None:
        raise MappingError(f"account {data.account_id} has not been pulled yet")
    raise MappingError(f"account {data.account_id} is {state}")


def _price(work: Workset, item: ItemData, currency: str, usage: UsageTerms | None) -> pricing.Price:
    """The product of the line item (made, or its name and family updated) and its per-unit
    price in ``currency`` (found, or made); for a metered item, its metered price."""
    product = work.save_product(
        pricing.Product(item.product_code.strip(), item.product_name.strip(), item.product_family)
    )
    if item.metric is not None:
        terms = metered_terms(item, currency, usage)
        return work.price(pricing.Price.of_usage(product.domain(), terms))
    return work.price(
        pricing.Price(
            product.domain(),
            currency_of(currency),
            item.kind,
            PricingModel.PER_UNIT,
            unit_amount=item.unit_price,
        )
    )


def metered_terms(item: ItemData, currency: str, usage: UsageTerms | None) -> MeteredPrice:
    """The terms of a metered line item: the usage mapping's price of its metric in
    ``currency`` when it has one, else the line's unit price per unit of the metric."""
    what = f"line item {item.line_id} ({item.product_code})"
    if usage is None:
        raise MappingError(f"{what} is metered, and no usage mapping is loaded")
    mapping = usage()
    assert item.metric is not None
    if item.metric not in mapping.metrics:
        known = ", ".join(sorted(mapping.metrics)) or "none"
        raise MappingError(
            f"{what} names the metric {item.metric!r}, which the usage mapping does not "
            f"define (its metrics: {known})"
        )
    found = mapping.price_of(item.metric, currency)
    if found is not None:
        return found
    return MeteredPrice(item.metric, currency_of(currency), MeteredModel.PER_UNIT, item.unit_price)


def _specs(
    work: Workset, data: DealData, currency: str, usage: UsageTerms | None
) -> list[domain.ItemSpec]:
    specs = []
    for item in data.items:
        price = _price(work, item, currency, usage)
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
    work: Workset,
    data: DealData,
    *,
    revision: str,
    previous: DealData | None,
    account_state: Callable[[], str | None],
    as_of: date,
    limits: plausibility.Limits | None = None,
    approved: Approved = lambda deal_id, revision: False,
    usage: UsageTerms | None = None,
) -> Outcome:
    """Make the billing core reflect a won deal. ``revision`` (the payload's hash) names this
    version of the deal, so that each version is applied once; ``previous`` is the version
    applied before, if any. With ``limits``, an implausible version is held for review unless
    ``approved``. ``account_state`` says why the deal's account is missing, if it is.
    ``usage`` gives the usage mapping, read when a line item is metered."""
    customer = _customer(work, data, account_state)
    if data.currency is not None and data.currency != customer.currency:
        raise MappingError(
            f"deal currency {data.currency} differs from the account's {customer.currency}"
        )
    specs = _specs(work, data, customer.currency, usage)
    if limits is not None:
        held = _implausible(data, specs, previous, revision, limits, as_of, approved)
        if held is not None:
            return held
    if data.amends:
        return _apply_amendment(work, data, specs, revision, previous)
    row = work.subscription(data.external_id)
    if row is None:
        subscription = contracts.new_subscription(customer.currency, data.name, _terms(data), specs)
        work.add_subscription(
            data.external_id,
            customer_id=customer.id,
            name=data.name,
            subscription=subscription,
            values=contracts.new_subscription_values(customer.currency, subscription),
        )
        return Outcome(APPLIED)
    return _apply_changes(
        work,
        row,
        data=data,
        previous=previous,
        specs=specs,
        revision=revision,
        as_of=as_of,
    )


def _implausible(  # noqa: PLR0917 - the deal, its version, and what it is checked against
    data: DealData,
    specs: list[domain.ItemSpec],
    previous: DealData | None,
    revision: str,
    limits: plausibility.Limits,
    as_of: date,
    approved: Approved,
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
    if all(p.approvable for p in found) and approved(data.external_id, revision):
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
    work: Workset,
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
    target = work.subscription(data.amends or "")
    if target is None:
        raise MappingError(f"amends deal {data.amends}, which has no subscription (yet)")
    if previous is not None:
        since = min(data.start, previous.start)
        if any(row.effective_date > since for row in _items_amended_elsewhere(work, target, data)):
            return Outcome(
                HELD, "upgrade or downgrade changed after a later one was applied; review"
            )
    subscription_changes.amend(
        work,
        target.id,
        effective=data.start,
        items=specs,
        reference=_reference(data.external_id, revision),
    )
    return Outcome(APPLIED)


def _items_amended_elsewhere(
    work: Workset, row: SubscriptionRow, data: DealData
) -> list[AmendmentRow]:
    """The item amendments of the subscription made by other deals (or by hand, named)."""
    own = _reference(data.external_id, "")
    return [
        amendment
        for amendment in work.amendments(row.id)
        if amendment.kind == "items"
        and amendment.reference is not None
        and not amendment.reference.startswith(own)
    ]


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
        item.metric,
    )


def _item_terms(data: DealData) -> list[tuple[object, ...]]:
    return [_item_term(i) for i in data.items]


def _apply_changes(
    work: Workset,
    row: SubscriptionRow,
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
            subscription_changes.reschedule(
                work,
                row.id,
                start_date=data.start,
                frequency=data.frequency.value,
                trial_days=data.trial_days,
            )
        except BillingError as error:
            return Outcome(HELD, f"service start, frequency or trial changed: {error}")
    if previous is None or _item_terms(previous) != _item_terms(data):
        if _items_amended_elsewhere(work, row, data):
            return Outcome(
                HELD, "line items changed after an upgrade or downgrade was applied; review"
            )
        subscription_changes.amend(
            work, row.id, effective=data.start, items=specs, reference=reference
        )
    if data.cancel_date != work.row(row.id).cancel_date:
        subscription_changes.change_terms(
            work,
            row.id,
            kind="cancel",
            reference=f"{reference}:cancel",
            effective=data.cancel_date,
            cancel_date=data.cancel_date,
        )
    current = work.row(row.id)
    if (data.term_months, data.auto_renew) != (current.term_months, current.auto_renew):
        changes = contracts.renewal_changes(
            lambda: work.loaded(row.id).terms,
            as_of=as_of,
            term_months=data.term_months,
            auto_renew=data.auto_renew,
        )
        subscription_changes.change_terms(
            work, row.id, kind="terms", reference=f"{reference}:terms", effective=None, **changes
        )
    return Outcome(APPLIED)
