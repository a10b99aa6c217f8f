"""Customers, contracts and subscriptions: creating them and changing them over time.

Every change that can alter what is owed (new item set, cancellation, new terms, a voided
invoice) raises the subscription's revision and marks it for reconciliation from the day the
change takes effect; the next billing run settles the difference with an invoice or a credit
note. Changes named by a reference (a CRM deal id, an import event id) apply once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, NoReturn, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from connector.billing import subscriptions as domain
from connector.billing.charges import next_billing_date
from connector.billing.invoicing import DocumentKind
from connector.billing.money import currency as currency_of
from connector.billing.payments import InvoiceStatus
from connector.billing.periods import ONE_DAY, Frequency
from connector.billing.pricing import ChargeKind
from connector.billing.tax import country_code, region_code
from connector.db import outbox, tables, webhook_events
from connector.db import writeback_queue as writeback
from connector.db.catalog import PriceCache, find_by_external_id, link_external_id
from connector.db.documents import find_document
from connector.db.subscriptions import earliest, get_subscription, load_subscriptions, save_items
from connector.documents import store
from connector.errors import BillingError, InvalidInputError
from connector.sync.mapping import Address, language_code
from connector.webhooks import events


def customer_codes(
    *, name: str, country: str, currency: str, region: str | None, external_id: str | None
) -> tuple[str, str, str | None]:
    """The currency, country and region codes of a customer's fields; refuses a customer
    without a name."""
    if not name or not name.strip():
        raise InvalidInputError(
            "a customer needs a name", where=f"customer {external_id or ''}".strip()
        )
    code = currency_of(currency).code
    iso_country = country_code(country)
    iso_region = region_code(iso_country, region) if region else None
    return code, iso_country, iso_region


def refuse_billed_currency_change(name: str, before: str, after: str) -> NoReturn:
    raise InvalidInputError(
        f"currency cannot change from {before} to {after} once the customer is billed",
        where=f"customer {name}",
    )


def upsert_customer(
    session: Session,
    *,
    name: str,
    country: str,
    currency: str,
    tax_id: str | None = None,
    system: str | None = None,
    external_id: str | None = None,
    region: str | None = None,
    address: Address | None = None,
    language: str | None = None,
    billing_email: str | None = None,
) -> tables.Customer:
    """Create the customer, or update the one known under ``external_id`` in ``system``;
    ``region`` is a state or province of ``country`` (an ISO 3166-2 code or a name);
    ``address`` the billing address and ``language`` the language of its documents;
    ``billing_email``, where its documents are e-mailed, is kept when not given."""
    code, iso_country, iso_region = customer_codes(
        name=name, country=country, currency=currency, region=region, external_id=external_id
    )
    row = None
    if system and external_id:
        row = find_by_external_id(session, tables.Customer, system, external_id)
    if row is not None and row.currency != code:
        billed = session.scalar(
            select(tables.Document.id).where(tables.Document.customer_id == row.id).limit(1)
        )
        if billed is not None:
            refuse_billed_currency_change(name, row.currency, code)
    if row is None:
        row = tables.Customer(
            name=name,
            country=iso_country,
            currency=code,
            tax_id=tax_id,
            region=iso_region,
            billing_email=billing_email,
        )
        session.add(row)
        session.flush()
        if system and external_id:
            link_external_id(session, row, system, external_id)
            writeback.mark(session, writeback.CUSTOMER, [row.id])  # its account shows now
        webhook_events.emit_customer(session, row, external_id if system else None)
    else:
        row.name, row.country, row.currency, row.tax_id = name.strip(), iso_country, code, tax_id
        row.region = iso_region
        if billing_email is not None:
            row.billing_email = billing_email
    for column, value in (address or Address()).columns().items():
        setattr(row, column, value)
    row.language = language_code(language)
    session.flush()
    return row


def item_spec(
    price: tables.Price,
    cache: PriceCache,
    session: Session,
    *,
    key: str | None = None,
    quantity: Decimal = Decimal(1),
    discount_percent: Decimal = Decimal(0),
    service_date: date | None = None,
) -> domain.ItemSpec:
    cache.load_prices(session, [price.id])
    domain_price = cache.prices[price.id]
    return domain.ItemSpec(
        key or domain_price.product.code, domain_price, quantity, discount_percent, service_date
    )


def new_subscription(
    currency: str,
    name: str,
    terms: domain.SubscriptionTerms,
    items: Sequence[domain.ItemSpec],
) -> domain.Subscription:
    """A new subscription in ``currency`` with ``items`` from its start; refuses one without
    items."""
    subscription = domain.Subscription(currency_of(currency), terms).with_items(
        terms.start_date, items
    )
    if not subscription.items:
        raise InvalidInputError("a subscription needs at least one item", where=f"contract {name}")
    return subscription


def new_subscription_values(currency: str, subscription: domain.Subscription) -> dict[str, Any]:
    """The columns of a new subscription's row, but its ids."""
    terms = subscription.terms
    return {
        "currency": currency,
        "frequency": terms.frequency.value,
        "start_date": terms.start_date,
        "trial_days": terms.trial_days,
        "term_months": terms.term_months,
        "auto_renew": terms.auto_renew,
        "term_count": terms.term_count,
        "cancel_date": terms.cancel_date,
        "revision": 0,
        "billed_until": None,
        "billed_as_of": None,
        "reconcile_from": None,
        "next_billing_date": next_billing_date(subscription, None, None),
    }


def create_subscription(
    session: Session,
    *,
    customer: tables.Customer,
    name: str,
    terms: domain.SubscriptionTerms,
    items: Sequence[domain.ItemSpec],
    system: str | None = None,
    external_id: str | None = None,
) -> tables.Subscription:
    """A contract with one subscription; with an external id, creating it again returns the
    existing one unchanged."""
    if system and external_id:
        existing = find_by_external_id(session, tables.Subscription, system, external_id)
        if existing is not None:
            return existing
    subscription = new_subscription(customer.currency, name, terms, items)
    contract = tables.Contract(customer_id=customer.id, name=name)
    session.add(contract)
    session.flush()
    row = tables.Subscription(
        contract_id=contract.id,
        customer_id=customer.id,
        **new_subscription_values(customer.currency, subscription),
    )
    session.add(row)
    session.flush()
    save_items(session, row, None, subscription, None)
    if system and external_id:
        link_external_id(session, row, system, external_id)
        if system == writeback.SYSTEM:  # the deal shows as billed
            writeback.mark(session, writeback.DEAL, [external_id])
    writeback.mark(session, writeback.SUBSCRIPTION, [row.id])
    webhook_events.emit_subscription(
        session, events.SUBSCRIPTION_CREATED, row, "", external_id if system else None
    )
    return row


@dataclass(frozen=True)
class _Loaded:
    row: tables.Subscription
    subscription: domain.Subscription


def _load(session: Session, subscription_id: int) -> _Loaded:
    row = get_subscription(session, subscription_id, for_update=True)
    return _Loaded(row, load_subscriptions(session, [row], PriceCache())[row.id])


def _find_amendment(
    session: Session, subscription_id: int, reference: str | None
) -> tables.Amendment | None:
    if reference is None:
        return None
    return session.scalar(
        select(tables.Amendment).where(
            tables.Amendment.subscription_id == subscription_id,
            tables.Amendment.reference == reference,
        )
    )


class ChangedRow(Protocol):
    """The billing state of a subscription a change moves (an ORM row or a plain one)."""

    @property
    def revision(self) -> int: ...

    @property
    def reconcile_from(self) -> date | None: ...

    @property
    def billed_until(self) -> date | None: ...

    @property
    def billed_as_of(self) -> date | None: ...


def change_values(
    row: ChangedRow, after: domain.Subscription, reconcile_from: date | None
) -> dict[str, Any]:
    """The columns a change to ``after`` sets on the subscription's row: a new revision, the
    terms, where reconciliation starts and the next billing date."""
    terms = after.terms
    return {
        "revision": row.revision + 1,
        "cancel_date": terms.cancel_date,
        "term_months": terms.term_months,
        "auto_renew": terms.auto_renew,
        "term_count": terms.term_count,
        "reconcile_from": earliest(row.reconcile_from, reconcile_from),
        "next_billing_date": next_billing_date(after, row.billed_until, row.billed_as_of),
    }


def _record_change(
    session: Session,
    loaded: _Loaded,
    after: domain.Subscription,
    *,
    kind: str,
    effective: date,
    reconcile_from: date | None,
    reference: str | None,
) -> tables.Amendment:
    row = loaded.row
    was_cancelled = row.cancel_date is not None
    values = change_values(row, after, reconcile_from)
    row.revision = values.pop("revision")
    amendment = tables.Amendment(
        subscription_id=row.id,
        kind=kind,
        effective_date=effective,
        revision=row.revision,
        reference=reference,
    )
    session.add(amendment)
    session.flush()
    save_items(session, row, loaded.subscription, after, amendment.id)
    for name, value in values.items():
        setattr(row, name, value)
    writeback.mark(session, writeback.SUBSCRIPTION, [row.id])
    cancelled = not was_cancelled and row.cancel_date is not None
    webhook_events.emit_subscription(
        session,
        events.SUBSCRIPTION_CANCELLED if cancelled else events.SUBSCRIPTION_UPDATED,
        row,
        str(row.revision),
    )
    session.flush()
    return amendment


def amend_subscription(
    session: Session,
    subscription_id: int,
    *,
    effective: date,
    items: Sequence[domain.ItemSpec],
    reference: str | None = None,
) -> tables.Amendment | None:
    """Make ``items`` the subscription's whole item set from ``effective``: an upgrade, a
    downgrade, a quantity or price change, items added or removed. Returns None when the change
    under ``reference`` was already applied."""
    if _find_amendment(session, subscription_id, reference) is not None:
        return None
    loaded = _load(session, subscription_id)
    after, reconcile_from = amended(loaded.subscription, effective, items)
    return _record_change(
        session,
        loaded,
        after,
        kind="items",
        effective=effective,
        reconcile_from=reconcile_from,
        reference=reference,
    )


def amended(
    before: domain.Subscription, effective: date, items: Sequence[domain.ItemSpec]
) -> tuple[domain.Subscription, date | None]:
    """``before`` with ``items`` as its item set from ``effective``, and the day from which
    the change is settled."""
    after = before.with_items(effective, items)
    # A one-time charge whose date moves is settled from the earlier of its two dates.
    moved = [
        day
        for old in before.items
        if old.kind is ChargeKind.ONE_TIME
        for new in after.items
        if new.key == old.key and new.charge_date != old.charge_date
        for day in (old.charge_date, new.charge_date)
    ]
    return after, earliest(effective, *moved)


def _end_day(terms: domain.SubscriptionTerms) -> date | None:
    end = terms.service_end
    return None if end is None else end + ONE_DAY


def _change_terms(
    session: Session,
    subscription_id: int,
    *,
    kind: str,
    reference: str | None,
    effective: date | None,
    **changes: object,
) -> tables.Amendment | None:
    """New terms; the service end moves and the next run settles the days between the old end
    and the new one."""
    if _find_amendment(session, subscription_id, reference) is not None:
        return None
    loaded = _load(session, subscription_id)
    change = terms_change(loaded.subscription, effective, **changes)
    if change is None:
        return None
    after, effective_date, reconcile_from = change
    return _record_change(
        session,
        loaded,
        after,
        kind=kind,
        effective=effective_date,
        reconcile_from=reconcile_from,
        reference=reference,
    )


def terms_change(
    before: domain.Subscription, effective: date | None, **changes: object
) -> tuple[domain.Subscription, date, date | None] | None:
    """``before`` with new terms, the change's effective date and the day from which it is
    settled (the days between the old service end and the new one); None when the terms
    stay."""
    after = before.with_terms(**changes)
    if after.terms == before.terms:
        return None
    changed_from = earliest(_end_day(before.terms), _end_day(after.terms))
    return after, effective or changed_from or before.terms.start_date, changed_from


def cancel_subscription(
    session: Session,
    subscription_id: int,
    *,
    cancel_date: date | None,
    reference: str | None = None,
) -> tables.Amendment | None:
    """Cancel from ``cancel_date`` (the first day without service); unused prepaid days are
    credited by the next run. ``None`` lifts a cancellation. Returns None when nothing changed
    or the change under ``reference`` was already applied."""
    return _change_terms(
        session,
        subscription_id,
        kind="cancel",
        reference=reference,
        effective=cancel_date,
        cancel_date=cancel_date,
    )


def change_terms(
    session: Session,
    subscription_id: int,
    *,
    as_of: date,
    term_months: int | None = None,
    auto_renew: bool | None = None,
    reference: str | None = None,
) -> tables.Amendment | None:
    """Change the term length or renewal on ``as_of``; the service end moves and the next run
    settles it. Renewal turned off ends service with the term that contains ``as_of``."""
    changes = renewal_changes(
        lambda: _load(session, subscription_id).subscription.terms,
        as_of=as_of,
        term_months=term_months,
        auto_renew=auto_renew,
    )
    return _change_terms(
        session, subscription_id, kind="terms", reference=reference, effective=None, **changes
    )


def renewal_changes(
    terms: Callable[[], domain.SubscriptionTerms],
    *,
    as_of: date,
    term_months: int | None,
    auto_renew: bool | None,
) -> dict[str, object]:
    """The terms a change of term length or renewal on ``as_of`` sets; renewal turned off
    ends service with the term that contains ``as_of`` (``terms``: the current terms, read
    only then)."""
    changes: dict[str, object] = {}
    if term_months is not None:
        changes["term_months"] = term_months
    if auto_renew is not None:
        changes["auto_renew"] = auto_renew
        if not auto_renew:
            current_terms = terms()
            current = (
                current_terms.term_index(as_of)
                if current_terms.auto_renew
                else current_terms.term_count - 1
            )
            changes["term_count"] = current + 1
    return changes


def reschedule_subscription(
    session: Session,
    subscription_id: int,
    *,
    start_date: date,
    frequency: str,
    trial_days: int,
) -> None:
    """Change the start, frequency or trial of a subscription that was never invoiced; its
    periods would move, so once anything is billed it must be cancelled and replaced."""
    loaded = _load(session, subscription_id)
    row = loaded.row
    new = (start_date, Frequency.parse(frequency).value, trial_days)
    if new == (row.start_date, row.frequency, row.trial_days):
        return
    billed = session.scalar(
        select(tables.Document.id).where(tables.Document.subscription_id == row.id).limit(1)
    )
    if billed is not None:
        refuse_billed_reschedule(row.id)
    after = loaded.subscription.moved_to(
        start_date=start_date, frequency=Frequency(new[1]), trial_days=trial_days
    )
    save_items(session, row, loaded.subscription, after, None)
    for name, value in rescheduled_values(row, after).items():
        setattr(row, name, value)
    writeback.mark(session, writeback.SUBSCRIPTION, [row.id])
    webhook_events.emit_subscription(session, events.SUBSCRIPTION_UPDATED, row, str(row.revision))


def refuse_billed_reschedule(subscription_id: int) -> NoReturn:
    raise BillingError(
        f"subscription {subscription_id} has been invoiced: its start date, frequency and "
        "trial cannot change; cancel it and create a new one"
    )


def rescheduled_values(row: ChangedRow, after: domain.Subscription) -> dict[str, Any]:
    """The columns a new start, frequency or trial sets on a subscription never invoiced."""
    terms = after.terms
    return {
        "start_date": terms.start_date,
        "frequency": terms.frequency.value,
        "trial_days": terms.trial_days,
        "billed_until": None,
        "billed_as_of": None,
        "revision": row.revision + 1,
        "next_billing_date": next_billing_date(after, None, None),
    }


def void_invoice(session: Session, number: str, reason: str | None = None) -> tables.Document:
    """Void an invoice issued in error. Nothing may have been paid or credited on it. Its period
    is billed again by the next run from the subscription as it now stands, which is how a
    corrected invoice is issued."""
    invoice = find_document(session, number, DocumentKind.INVOICE)
    if invoice.status == InvoiceStatus.VOID.value:
        return invoice
    if invoice.amount_paid or invoice.amount_credited:
        raise BillingError(
            f"invoice {number} has payments or credit notes applied; issue a credit note instead"
        )
    invoice.status = InvoiceStatus.VOID.value
    invoice.version += 1  # its PDF shows it void
    store.queue_renders(session, [invoice.id])
    outbox.enqueue(session, "void", [invoice.id])  # accounting reverses it
    writeback.mark(session, writeback.DOCUMENT, [invoice.id])
    writeback.mark_usage_of(session, [invoice.id])  # the usage it billed
    webhook_events.emit_document(session, events.INVOICE_VOIDED, invoice)
    if invoice.subscription_id is not None:
        loaded = _load(session, invoice.subscription_id)
        _record_change(
            session,
            loaded,
            loaded.subscription,
            kind="void",
            effective=invoice.period_start,
            reconcile_from=_earliest_service(session, invoice),
            reference=reason,
        )
    session.flush()
    return invoice


def _earliest_service(session: Session, invoice: tables.Document) -> date:
    """The first day an invoice's lines serve: its period's start, or earlier when it carries
    the usage of the period before (billed in arrears), which its void leaves to bill again."""
    first = session.scalar(
        select(func.min(tables.DocumentLine.service_start)).where(
            tables.DocumentLine.document_id == invoice.id
        )
    )
    return min(invoice.period_start, first) if first is not None else invoice.period_start


def discard_subscription(session: Session, subscription_id: int) -> None:
    """Remove a subscription that was never billed, with its contract, items and links: the
    deal behind it was withdrawn. Once anything is invoiced it stays, and must be cancelled."""
    row = get_subscription(session, subscription_id, for_update=True)
    billed = session.scalar(
        select(tables.Document.id).where(tables.Document.subscription_id == row.id).limit(1)
    )
    items = select(tables.SubscriptionItem.id).where(
        tables.SubscriptionItem.subscription_id == row.id
    )
    charged = session.scalar(
        select(tables.Charge.id).where(tables.Charge.subscription_item_id.in_(items)).limit(1)
    )
    if billed is not None or charged is not None:
        raise BillingError(f"subscription {row.id} has been billed; cancel it instead")
    session.execute(delete(tables.ItemVersion).where(tables.ItemVersion.item_id.in_(items)))
    session.execute(
        delete(tables.SubscriptionItem).where(tables.SubscriptionItem.subscription_id == row.id)
    )
    session.execute(delete(tables.Amendment).where(tables.Amendment.subscription_id == row.id))
    session.execute(
        delete(tables.ExternalId).where(
            tables.ExternalId.entity == tables.Subscription.__tablename__,
            tables.ExternalId.entity_id == row.id,
        )
    )
    contract_id = row.contract_id
    writeback.mark(session, writeback.CUSTOMER, [row.customer_id])  # its MRR without it
    webhook_events.emit_subscription(session, events.SUBSCRIPTION_CANCELLED, row, "discarded")
    session.delete(row)
    session.flush()
    session.execute(delete(tables.Contract).where(tables.Contract.id == contract_id))
    session.flush()
