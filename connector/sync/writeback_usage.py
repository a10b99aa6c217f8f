"""What was billed of a metered item's usage in a period, as its ``Billing_Usage__c`` record
shows it (built by :mod:`connector.sync.writeback_records`).

The usage of an item and period is billed as charges (:mod:`connector.billing.usage_billing`):
the first on the invoice issued at the period's end, with a line per group of the metric and
per minimum's shortfall, then one per adjustment a late event or a change made (an invoice line
or credit note lines, each carrying the quantity measured again). The record shows:

- the quantity measured (the metric's aggregation, every group and part of the period added up)
  and the billable quantity (less the free units of the price in effect), as last billed;
- the amount billed net of the adjustments (invoiced minus credited), in the subscription's
  currency;
- the period: its first day, to the last day of service it measures;
- ``Billed`` with the invoice that billed it, or ``Adjusted`` once an adjustment billed it again,
  with the last document of the adjustment; ``Void`` (nothing billed) once the invoices that
  billed it were voided, until a run bills it again.

Everything is read from the charges and document lines the billing run stored, with three
queries per two thousand records; no usage is measured again here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from connector.billing.money import ZERO
from connector.billing.payments import InvoiceStatus
from connector.billing.periods import Period
from connector.billing.pricing import ChargeKind
from connector.db import tables
from connector.db.writeback_queue import SYSTEM, usage_key

USAGE_RECORD = ("Billing_Usage__c", "Usage_Key__c")
BILLED, ADJUSTED, VOID = "Billed", "Adjusted", "Void"
CHUNK = 2000  # records per query
NAME_LENGTH = 80


@dataclass(frozen=True)
class BilledUsage:
    """A metered item's usage in a period, as billed so far."""

    subscription_id: int
    customer_id: int
    item_key: str
    product: str
    metric: str | None
    currency: str
    period: Period  # the period's first day to the last day of service it measures
    quantity: Decimal  # measured
    billable: Decimal  # less the free units
    amount: Decimal  # net of adjustments
    status: str
    invoice: str | None  # the invoice that billed it
    adjustment: str | None  # the last document that adjusted it
    item_id: int | None = None

    @property
    def external_id(self) -> str:
        return f"SUB-{self.subscription_id}:{self.item_key}:{self.period.start.isoformat()}"

    @property
    def name(self) -> str:
        """The product's name and the period: ``API Calls: usage 2026-01-01..2026-01-31``."""
        suffix = f": usage {self.period}"
        return self.product[: NAME_LENGTH - len(suffix)] + suffix


def parse_key(key: str) -> tuple[int, date] | None:
    """A queue key ``<item id>:<period start>``; None for anything else."""
    item, _, start = key.partition(":")
    if not item.isdigit():
        return None
    try:
        return int(item), date.fromisoformat(start)
    except ValueError:
        return None


def billed_usage(session: Session, keys: Iterable[str]) -> dict[str, BilledUsage]:
    """The usage billed of each queue key that names billed usage (others are left out), from
    its charges on documents that stand: an invoice voided billed nothing, and the run that
    bills its period again makes a first billing of it. Usage whose every document was voided
    shows as the voided invoice showed it, with nothing billed: ``Void``."""
    wanted = {key: parsed for key in keys if (parsed := parse_key(key)) is not None}
    by_pair = {parsed: key for key, parsed in wanted.items()}
    pairs = sorted(by_pair)
    found: dict[str, BilledUsage] = {}
    for start in range(0, len(pairs), CHUNK):
        chunk = pairs[start : start + CHUNK]
        charges = _charges(session, chunk)
        lines = _lines(session, [row.id for rows in charges.values() for row in rows])
        prices = _prices(session, sorted({item for item, _ in charges}))
        standing = {i: [line for line in of if not line.void] for i, of in lines.items()}
        for pair, rows in charges.items():
            versions = prices.get(pair[0], [])
            live = [row for row in rows if standing.get(row.id)]
            if live:
                found[by_pair[pair]] = _usage(pair[1], live, standing, versions)
            elif voided := [row for row in rows if lines.get(row.id)]:
                usage = _usage(pair[1], voided, lines, versions)
                found[by_pair[pair]] = replace(usage, amount=ZERO, status=VOID, adjustment=None)
    return found


def _charges(session: Session, pairs: Sequence[tuple[int, date]]) -> dict[Any, list[Any]]:
    charge, item = tables.Charge, tables.SubscriptionItem
    rows = session.execute(
        select(
            charge.id,
            charge.subscription_item_id,
            charge.period_start,
            charge.revision,
            charge.amount,
            item.subscription_id,
            item.item_key,
            tables.Subscription.customer_id,
            tables.Subscription.currency,
            tables.Product.name.label("product"),
        )
        .join(item, item.id == charge.subscription_item_id)
        .join(tables.Subscription, tables.Subscription.id == item.subscription_id)
        .join(tables.Product, tables.Product.id == item.product_id)
        .where(tuple_(charge.subscription_item_id, charge.period_start).in_(pairs))
        .order_by(charge.subscription_item_id, charge.period_start, charge.revision, charge.id)
    )
    found: dict[Any, list[Any]] = defaultdict(list)
    for row in rows:
        found[(row.subscription_item_id, row.period_start)].append(row)
    return found


def _lines(session: Session, charge_ids: Sequence[int]) -> dict[int, list[Any]]:
    """Per charge, its lines, each with whether its document is void (it billed nothing)."""
    line, document = tables.DocumentLine, tables.Document
    found: dict[int, list[Any]] = defaultdict(list)
    if not charge_ids:
        return found
    rows = session.execute(
        select(
            line.charge_id,
            line.quantity,
            line.service_start,
            line.service_end,
            document.id.label("document_id"),
            document.number,
            (document.status == InvoiceStatus.VOID.value).label("void"),
        )
        .join(document, document.id == line.document_id)
        .where(line.charge_id.in_(charge_ids))
        .order_by(line.charge_id, line.id)
    )
    for row in rows:
        found[row.charge_id].append(row)
    return found


def _prices(session: Session, item_ids: Sequence[int]) -> dict[int, list[Any]]:
    """Per item, its versions' metric and free units by effective date."""
    version, price = tables.ItemVersion, tables.Price
    found: dict[int, list[Any]] = defaultdict(list)
    if not item_ids:
        return found
    rows = session.execute(
        select(version.item_id, version.effective_date, price.metric, price.free_units)
        .join(price, price.id == version.price_id)
        .where(version.item_id.in_(item_ids))
        .order_by(version.item_id, version.effective_date)
    )
    for row in rows:
        found[row.item_id].append(row)
    return found


def _in_effect(versions: Sequence[Any], day: date) -> Any:
    current = versions[0] if versions else None
    for version in versions:
        if version.effective_date <= day:
            current = version
    return current


def _billable(versions: Sequence[Any], quantity: Decimal, day: date) -> Decimal:
    version = _in_effect(versions, day)
    free = (version.free_units if version is not None else None) or ZERO
    return max(ZERO, quantity - free)


def _usage(
    start: date,
    charges: Sequence[Any],
    lines: dict[int, list[Any]],
    versions: Sequence[Any],
) -> BilledUsage:
    first, latest = charges[0], charges[-1]
    adjusted = len(charges) > 1
    measured = lines.get(latest.id, [])
    if not adjusted:  # a line per group and part (a shortfall measures nothing)
        quantity = sum((line.quantity for line in measured), ZERO)
        billable = sum(
            (_billable(versions, line.quantity, line.service_start) for line in measured), ZERO
        )
    else:  # each line of an adjustment carries the quantity measured again
        quantity = measured[0].quantity if measured else ZERO
        billable = _billable(versions, quantity, measured[0].service_start) if measured else ZERO
    ends = [line.service_end for charge in charges for line in lines[charge.id]]
    end = max(ends, default=start)
    invoice = lines.get(first.id)
    last = max(measured, key=lambda line: line.document_id) if adjusted and measured else None
    version = _in_effect(versions, end)
    return BilledUsage(
        subscription_id=first.subscription_id,
        customer_id=first.customer_id,
        item_key=first.item_key,
        product=first.product,
        metric=version.metric if version is not None else None,
        currency=first.currency,
        period=Period(start, max(end, start)),
        quantity=quantity,
        billable=billable,
        amount=sum((charge.amount for charge in charges), ZERO),
        status=ADJUSTED if adjusted else BILLED,
        invoice=invoice[0].number if invoice else None,
        adjustment=last.number if last is not None else None,
        item_id=first.subscription_item_id,
    )


def every_usage(session: Session) -> list[str]:
    """The queue keys of every metered item's usage billed for a subscription of a deal."""
    charge, item, link = tables.Charge, tables.SubscriptionItem, tables.ExternalId
    rows = session.execute(
        select(charge.subscription_item_id, charge.period_start)
        .join(item, item.id == charge.subscription_item_id)
        .join(
            link,
            (link.entity_id == item.subscription_id)
            & (link.entity == tables.Subscription.__tablename__)
            & (link.system == SYSTEM),
        )
        .where(item.kind == ChargeKind.METERED.value)
        .distinct()
    )
    return sorted(usage_key(item_id, start) for item_id, start in rows)
