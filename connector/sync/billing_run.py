"""The billing run: invoice every period started by the as-of date and not yet invoiced.

Subscriptions are billed in batches, one database transaction each: the charges (unique per
item, period and revision), the documents with their gapless numbers, and the subscription's
billing state commit together or not at all. A crash loses at most the batch in hand, which the
next run bills again; running twice bills nothing twice. A subscription that cannot be billed
keeps its error, visible in ``billing_error``, and the rest of the batch goes on.

Metered items bill the usage of a period in arrears, read from the hourly aggregates of the
batch's customers (:mod:`connector.sync.billing_usage`); each item's usage of a period is a
charge like any other, so it too is billed exactly once. The usage records the write-back
shows are queued with the charges that bill or adjust them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, Row, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.charges import BillingState, Charge, plan_billing
from connector.billing.invoicing import (
    DocumentKind,
    draft_credit_notes,
    draft_invoices,
)
from connector.billing.money import ZERO, Totals
from connector.billing.pricing import ChargeKind, Product
from connector.billing.subscriptions import Subscription
from connector.billing.tax import TaxTable
from connector.billing.usage_billing import metered_items, usage_as_of, usage_billed_until
from connector.billing.vat import treatment
from connector.db import tables
from connector.db import writeback_queue as writeback
from connector.db.catalog import PriceCache
from connector.db.documents import (
    BilledState,
    IssuedDocument,
    insert_charges,
    load_billed,
    load_tax_history,
)
from connector.db.engine import is_deadlock, is_unique_violation, transaction
from connector.db.subscriptions import load_subscriptions
from connector.db.types import utc_now
from connector.db.usage_late import lock_usage
from connector.db.usage_owners import shared_metrics
from connector.errors import BillingError, ConnectorError, StorageError
from connector.settings import Settings
from connector.sync.billing_usage import batch_meters
from connector.sync.garbage import collection_paused
from connector.sync.issuing import Unnumbered, check_issue_date, issue

log = logging.getLogger(__name__)

MAX_BATCH_ATTEMPTS = 3


@dataclass
class BillingRunResult:
    as_of: date
    subscriptions: int = 0
    invoices: int = 0
    credit_notes: int = 0
    invoiced: Totals = field(default_factory=Totals)  # total per currency
    credited: Totals = field(default_factory=Totals)
    failed: dict[int, str] = field(default_factory=dict)  # subscription id -> reason
    first_number: str | None = None
    last_number: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "as_of": self.as_of.isoformat(),
            "subscriptions": self.subscriptions,
            "invoices": self.invoices,
            "credit_notes": self.credit_notes,
            "invoiced": {k: str(v) for k, v in sorted(self.invoiced.items())},
            "credited": {k: str(v) for k, v in sorted(self.credited.items())},
            "failed": {str(k): v for k, v in sorted(self.failed.items())},
        }


@dataclass(frozen=True)
class RunContext:
    as_of: date
    settings: Settings
    tax: TaxTable
    usage_as_of: date  # the as-of date of subscriptions with metered items (usage.grace_hours)
    cache: PriceCache = field(default_factory=PriceCache)


ProgressCallback = Callable[[int], None]


def due_count(factory: sessionmaker[Session], as_of: date) -> int:
    """How many subscriptions a run at ``as_of`` will look at."""
    with factory() as session:
        query = select(func.count()).select_from(tables.Subscription).where(_due(as_of))
        return session.scalar(query) or 0


def _due(as_of: date) -> ColumnElement[bool]:
    return or_(
        tables.Subscription.next_billing_date <= as_of,
        tables.Subscription.reconcile_from.is_not(None),
    )


def run_billing(
    factory: sessionmaker[Session],
    settings: Settings,
    as_of: date,
    progress: ProgressCallback | None = None,
    now: datetime | None = None,
) -> BillingRunResult:
    """Bill everything due by ``as_of``. Safe to run again, or after a crash at any point.

    A subscription with metered items is billed to ``usage.grace_hours`` before ``now``
    at the latest (:func:`~connector.billing.usage_billing.usage_as_of`): its invoice waits
    for the late events of the period that just ended."""
    with factory() as session:
        check_issue_date(session, as_of)
    try:
        as_of + timedelta(days=settings.billing.payment_terms_days)
    except OverflowError:
        raise BillingError(f"as-of date {as_of} is too far in the future") from None
    grace = settings.usage.grace_hours
    context = RunContext(
        as_of, settings, settings.tax.table(), usage_as_of(as_of, now or utc_now(), grace)
    )
    result = BillingRunResult(as_of)
    after_id = 0
    while True:
        for attempt in range(1, MAX_BATCH_ATTEMPTS + 1):
            try:
                with transaction(factory) as session:
                    batch = _bill_next_batch(session, context, after_id, result)
                break
            except (IntegrityError, OperationalError) as error:
                # A unique key: another run billed some of these subscriptions first; a
                # deadlock: a batch of usage events crossed this one (PostgreSQL).
                if isinstance(error, IntegrityError) and not is_unique_violation(error):
                    raise
                if isinstance(error, OperationalError) and not is_deadlock(error):
                    raise
                # Another run billed some of these subscriptions first: plan them again.
                log.warning(
                    "billing batch after id %s conflicted (attempt %s): %s",
                    after_id,
                    attempt,
                    error.orig,
                )
                if attempt == MAX_BATCH_ATTEMPTS:
                    raise StorageError(
                        f"billing batch after subscription {after_id} kept conflicting"
                    ) from error
        if batch is None:
            break
        after_id, batch_result = batch
        result.subscriptions += batch_result.subscriptions
        result.invoices += batch_result.invoices
        result.credit_notes += batch_result.credit_notes
        result.invoiced.merge(batch_result.invoiced)
        result.credited.merge(batch_result.credited)
        result.failed.update(batch_result.failed)
        result.first_number = result.first_number or batch_result.first_number
        result.last_number = batch_result.last_number or result.last_number
        if progress is not None:
            progress(batch_result.subscriptions)
    return result


def _bill_next_batch(
    session: Session, context: RunContext, after_id: int, total: BillingRunResult
) -> tuple[int, BillingRunResult] | None:
    subscription = tables.Subscription
    rows = list(
        session.execute(
            select(
                tables.table_of(subscription),
                tables.Customer.country.label("customer_country"),
                tables.Customer.region.label("customer_region"),
                tables.Customer.tax_id.label("customer_tax_id"),
            )
            .join(tables.Customer, tables.Customer.id == subscription.customer_id)
            .where(_due(context.as_of), subscription.id > after_id)
            .order_by(subscription.id)
            .limit(context.settings.billing.batch_size)
            # PostgreSQL: rows another run is billing are left to it (SQLite serializes writers).
            .with_for_update(skip_locked=True, of=subscription)
        )
    )
    if not rows:
        return None
    result = BillingRunResult(context.as_of, subscriptions=len(rows))
    with collection_paused():  # a batch's objects live until it ends
        _bill_batch(session, context, rows, result)
    return rows[-1].id, result


def _bill_batch(
    session: Session, context: RunContext, rows: list[Row[Any]], result: BillingRunResult
) -> None:
    as_of, settings = context.as_of, context.settings
    failures: dict[int, str] = {}
    subscriptions = load_subscriptions(session, rows, context.cache, failures)
    metered = {sid for sid, found in subscriptions.items() if metered_items(found)}
    # usage events of these customers stored meanwhile are seen, or see this batch's billing
    usage_rows = [row for row in rows if row.id in metered]
    lock_usage(session, (row.customer_id for row in usage_rows), exclusive=True)
    shared = shared_metrics(session, (row.customer_id for row in usage_rows))
    failures.update((sid, reason) for sid, reason in shared.items() if sid in metered)
    usage_rows = [row for row in usage_rows if row.id not in failures]
    meters = batch_meters(
        session, settings, context.usage_as_of, usage_rows, subscriptions, failures=failures
    )
    billed = load_past(session, rows, subscriptions)
    tax_history = load_tax_history(
        session, (line.invoice_id for state in billed.values() for line in state.invoiced)
    )
    due_date = as_of + timedelta(days=settings.billing.payment_terms_days)
    rounding = settings.tax.rounding

    charges: list[tuple[Charge, int]] = []
    documents: list[Unnumbered] = []
    updates: list[dict[str, object]] = []
    moved: list[int] = []  # subscriptions whose next billing date moves
    for row in rows:
        if row.id in failures:
            _fail(result, updates, row.id, failures[row.id])
            continue
        subscription = subscriptions[row.id]
        plan_as_of = context.usage_as_of if row.id in metered else as_of
        past = billed.get(row.id)
        state = billing_state(row, past)
        taxed = treatment(row.customer_country, row.customer_tax_id, settings.tax.home_country)
        try:
            jurisdiction = context.tax.jurisdiction(row.customer_country, row.customer_region)
            plan = plan_billing(subscription, plan_as_of, state, meters.get(row.id))
            invoices = draft_invoices(
                plan.charges,
                currency=subscription.currency,
                tax_rate=partial(_rate, context.tax, jurisdiction, taxed.reverse_charge),
                issue_date=as_of,
                due_date=due_date,
                rounding=rounding,
                jurisdiction=jurisdiction,
                reverse_charge=taxed.reverse_charge,
            )
            credit_notes = draft_credit_notes(
                plan.charges,
                past.invoiced if past else [],
                currency=subscription.currency,
                issue_date=as_of,
                rounding=rounding,
                tax_history=tax_history,
                jurisdiction=jurisdiction,
            )
        except ConnectorError as error:
            _fail(result, updates, row.id, str(error))
            continue
        charges.extend(
            (
                charge,
                past.revision_of((charge.item.key, charge.key_date), row.revision)
                if past
                else row.revision,
            )
            for charge in plan.charges
        )
        documents.extend((draft, row.customer_id, row.id) for draft in (*invoices, *credit_notes))
        if plan.next_billing_date != row.next_billing_date:
            moved.append(row.id)
        billed_as_of = max(plan_as_of, row.billed_as_of or plan_as_of)
        updates.append(
            {
                "id": row.id,
                "billed_until": plan.billed_until,
                "billed_as_of": billed_as_of,
                "reconcile_from": None,
                "next_billing_date": plan.next_billing_date,
                "usage_billed_until": usage_billed_until(subscription, billed_as_of),
                "billing_error": None,
            }
        )

    charge_ids = insert_charges(session, charges)
    issued = issue(session, settings.billing, documents, charge_ids, as_of)
    if updates:
        _save_states(session, updates)
    writeback.mark(session, writeback.SUBSCRIPTION, moved)  # the next invoice date shows
    writeback.mark(  # the usage records of the periods billed or adjusted
        session,
        writeback.USAGE,
        (
            writeback.usage_key(charge.item.id, charge.key_date)
            for charge, _ in charges
            if charge.item.kind is ChargeKind.METERED and charge.item.id is not None
        ),
    )
    _tally(result, issued)


def load_past(
    session: Session, rows: Sequence[Row[Any]], subscriptions: Mapping[int, Subscription]
) -> dict[int, BilledState]:
    """What was billed of the subscriptions of ``rows`` that a change since their last run
    reaches back into, from the start of the period it touches (one query for them all)."""
    reconcile = {
        row.id: _reconcile_start(row, subscriptions[row.id])
        for row in rows
        if row.reconcile_from and row.id in subscriptions
    }
    return load_billed(session, reconcile)


def billing_state(row: Row[Any], past: BilledState | None) -> BillingState:
    """A subscription's billing state from its row and what :func:`load_past` found of it."""
    return BillingState(
        billed_until=row.billed_until,
        billed_as_of=row.billed_as_of,
        reconcile_from=row.reconcile_from,
        billed=past.billed if past else {},
    )


def _rate(table: TaxTable, jurisdiction: str, reverse_charge: bool, product: Product) -> Decimal:
    """A product's tax rate in ``jurisdiction``; 0 when the customer is reverse-charged."""
    return ZERO if reverse_charge else table.rate_for(jurisdiction, product.tax_code)


_STATE_COLUMNS = (
    "billed_until",
    "billed_as_of",
    "reconcile_from",
    "next_billing_date",
    "usage_billed_until",
)


def _save_states(session: Session, updates: list[dict[str, object]]) -> None:
    """Billing state and errors of the batch's subscriptions, in two executemany statements."""
    table = tables.table_of(tables.Subscription)
    now = utc_now()
    billed = [u for u in updates if "billed_until" in u]
    failed = [u for u in updates if "billed_until" not in u]
    if billed:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                {
                    **{c: bindparam(f"b_{c}") for c in _STATE_COLUMNS},
                    "billing_error": None,
                    "updated_at": now,
                }
            ),
            [{"b_id": u["id"], **{f"b_{c}": u[c] for c in _STATE_COLUMNS}} for u in billed],
        )
    if failed:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(billing_error=bindparam("b_error"), updated_at=now),
            [{"b_id": u["id"], "b_error": u["billing_error"]} for u in failed],
        )


def _fail(
    result: BillingRunResult, updates: list[dict[str, object]], subscription_id: int, reason: str
) -> None:
    log.warning("subscription %s cannot be billed: %s", subscription_id, reason)
    result.failed[subscription_id] = reason
    updates.append({"id": subscription_id, "billing_error": reason})


def _reconcile_start(row: Row[Any], subscription: Subscription) -> date:
    """Billed state is needed from the start of the period that contains the change."""
    assert row.reconcile_from is not None
    terms = subscription.terms
    day = max(row.reconcile_from, terms.billing_start)
    start = terms.schedule.period(terms.schedule.index_of(day)).start
    return min(start, row.reconcile_from)


def _tally(result: BillingRunResult, issued: list[IssuedDocument]) -> None:
    for doc in issued:
        if doc.draft.kind is DocumentKind.INVOICE:
            result.invoices += 1
            result.invoiced.add(doc.draft.currency.code, doc.draft.total)
            result.first_number = result.first_number or doc.number
            result.last_number = doc.number
        else:
            result.credit_notes += 1
            result.credited.add(doc.draft.currency.code, doc.draft.total)
