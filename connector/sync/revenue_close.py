"""The revenue close: journals that move recognized revenue from deferred to revenue.

Each invoice's and credit note's recurring lines are recognized day by day over their service
periods (:mod:`connector.billing.revenue`). The close writes, per document, one journal per
calendar month dated the month's last day, and for the running month one up to the as-of date;
``revenue_progress`` remembers the last day journaled, so each day is recognized once and a
later close carries on from there. A credit note takes back, when it is issued, the revenue of
its days already past (see :mod:`connector.accounting.entries`); its journals start the next
day. Journals and their outbox rows are written in one transaction per batch of documents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.invoicing import DocumentKind
from connector.billing.money import currency as currency_of
from connector.billing.payments import InvoiceStatus
from connector.billing.periods import ONE_DAY, Period
from connector.billing.pricing import ChargeKind
from connector.billing.revenue import RevenueSchedule, month_end
from connector.db import outbox, tables
from connector.db.engine import transaction
from connector.sync.stopping import no_stop

BATCH = 500
ZERO = Decimal(0)


@dataclass
class CloseResult:
    as_of: date
    documents: int = 0
    journals: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "as_of": self.as_of.isoformat(),
            "documents": self.documents,
            "journals": self.journals,
        }


def _candidates(session: Session, as_of: date, after: int) -> Sequence[int]:
    line, progress = tables.DocumentLine, tables.RevenueProgress
    return session.scalars(
        select(tables.Document.id)
        .join(line, line.document_id == tables.Document.id)
        .outerjoin(progress, progress.document_id == tables.Document.id)
        .where(
            line.kind == ChargeKind.RECURRING.value,
            tables.Document.status != InvoiceStatus.VOID.value,
            tables.Document.id > after,
        )
        .group_by(tables.Document.id)
        .having(
            func.min(line.service_start) <= as_of,
            func.coalesce(func.max(progress.recognized_through), date.min)
            < func.max(line.service_end),
            func.coalesce(func.max(progress.recognized_through), date.min) < as_of,
        )
        .order_by(tables.Document.id)
        .limit(BATCH)
    ).all()


def _chunks(start: date, end: date) -> list[tuple[date, date]]:
    """Calendar months from ``start`` through ``end``, the last one cut at ``end``."""
    chunks = []
    while start <= end:
        last = min(month_end(start), end)
        chunks.append((start, last))
        start = last + ONE_DAY
    return chunks


def _close_document(session: Session, document: tables.Document, as_of: date) -> int:
    lines = session.scalars(
        select(tables.DocumentLine).where(
            tables.DocumentLine.document_id == document.id,
            tables.DocumentLine.kind == ChargeKind.RECURRING.value,
        )
    ).all()
    money = currency_of(document.currency)
    sign = -1 if document.kind == DocumentKind.CREDIT_NOTE.value else 1
    schedules = [
        (
            line.product_id,
            RevenueSchedule(
                sign * line.amount, money, Period(line.service_start, line.service_end)
            ),
        )
        for line in lines
    ]
    progress = session.get(tables.RevenueProgress, document.id)
    if progress is not None:
        start = progress.recognized_through + ONE_DAY
    elif document.kind == DocumentKind.CREDIT_NOTE.value:
        start = max(document.issue_date + ONE_DAY, min(line.service_start for line in lines))
    else:
        start = min(line.service_start for line in lines)
    end = min(max(line.service_end for line in lines), as_of)
    rows = []
    for first, last in _chunks(start, end):
        amounts: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for product_id, schedule in schedules:
            amounts[product_id] += schedule.recognized_between(first, last)
        if any(amounts.values()):
            rows.append(
                {
                    "document_id": document.id,
                    "period_start": first,
                    "period_end": last,
                    "journal_date": min(month_end(last), as_of),
                    "currency": document.currency,
                    "amount": sum(amounts.values(), ZERO),
                    "amounts": {str(key): format(value, "f") for key, value in amounts.items()},
                }
            )
    if rows:
        ids = session.scalars(
            insert(tables.RevenueJournal).returning(tables.RevenueJournal.id), rows
        ).all()
        outbox.enqueue(session, "revenue", ids)
    # Recorded even when nothing was left to journal (a credit note issued after its service
    # ended), so that the document is not looked at again.
    through = max(end, start - ONE_DAY)
    if progress is None:
        session.add(tables.RevenueProgress(document_id=document.id, recognized_through=through))
    else:
        progress.recognized_through = through
    return len(rows)


def close_revenue(
    factory: sessionmaker[Session], as_of: date, checkpoint: Callable[[], None] = no_stop
) -> CloseResult:
    """Journal the revenue recognized through ``as_of`` that no journal holds yet;
    ``checkpoint`` is called between batches (it raises to stop there)."""
    result = CloseResult(as_of)
    after = 0
    while True:
        checkpoint()
        with transaction(factory) as session:
            ids = _candidates(session, as_of, after)
            if not ids:
                return result
            for document in session.scalars(
                select(tables.Document).where(tables.Document.id.in_(ids)).with_for_update()
            ):
                result.journals += _close_document(session, document, as_of)
                result.documents += 1
            after = ids[-1]
