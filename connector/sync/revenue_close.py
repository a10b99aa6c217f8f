"""The revenue close: journals that recognize revenue day by day over each line's service.

Each invoice's recurring lines, and its one-time lines dated on another day than the invoice,
are recognized over their service (:mod:`connector.billing.revenue`); a credit note takes back
from the schedule of the invoice line it corrects, so that revenue stops with the service; the
newest line of a billing period, billed once the subscription's last day of service inside it
was known, completes the period's revenue on that day (an upgrade and a cancellation billed as
one line, say). The close writes, per document, one journal per calendar month dated the
month's last day, and for the running month one up to the as-of date; each line's
``recognized`` amount and the document's ``revenue_progress`` say how far it got, so each day is
recognized once and a later close carries on from there.

Revenue earned before its invoice was issued (service that began before the first billing run,
a one-time charge billed late) is journaled from the unbilled receivable (kind ``unbilled``),
dated on the last day it covers, and on the invoice's issue date one ``invoiced`` journal moves
what the invoice clears of it from deferred revenue: deferred revenue never carries a debit
balance, the unbilled receivable never a credit one. A credit note takes back at once, when it
is issued, the revenue of the days its invoice had already journaled (see
:mod:`connector.accounting.entries`); its journals start on ``revenue_from``. Journals, their
outbox rows, the lines' progress and the documents' progress are written in a handful of
statements per batch of documents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, case, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from connector.billing.invoicing import DocumentKind
from connector.billing.money import Currency
from connector.billing.money import currency as currency_of
from connector.billing.payments import InvoiceStatus
from connector.billing.periods import ONE_DAY, Period
from connector.billing.pricing import ChargeKind
from connector.billing.revenue import (
    CreditSchedule,
    RevenueSchedule,
    Schedule,
    Together,
    credit_schedule,
    ending_schedule,
    month_end,
    recognition_service,
    scheduled,
)
from connector.db import outbox, revenue_due, tables
from connector.db.bulk import bulk_insert, reserve_ids, upsert
from connector.db.engine import transaction
from connector.db.subscriptions import terms_from_row
from connector.db.types import utc_now
from connector.sync.stopping import no_stop

BATCH = 500
ZERO = Decimal(0)
DEFERRED = "deferred"
UNBILLED = "unbilled"
INVOICED = "invoiced"
ONE_TIME_SUFFIX = ":one_time"


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


def amount_key(product_id: int, recurring: bool) -> str:
    return str(product_id) if recurring else f"{product_id}{ONE_TIME_SUFFIX}"


def parse_amount_key(key: str) -> tuple[int, bool]:
    """``(product id, recurring)`` of a key of a journal's ``amounts``."""
    if key.endswith(ONE_TIME_SUFFIX):
        return int(key[: -len(ONE_TIME_SUFFIX)]), False
    return int(key), True


@dataclass
class _Line:
    id: int
    product_id: int
    recurring: bool
    service: Period
    recognized: Decimal
    schedule: Schedule


@dataclass
class _Document:
    id: int
    kind: str
    currency: Currency
    issue_date: date
    revenue_from: date | None
    void: bool
    recognized_through: date | None  # the last day journaled so far
    lines: list[_Line] = field(default_factory=list)

    def next_due(self, through: date | None) -> date | None:
        """The first as-of date on which revenue is left to journal once it is journaled
        through ``through``; ``None`` when none is left."""
        if self.void or not self.lines:
            return None
        journaled = through or date.min
        if journaled >= max(line.service.end for line in self.lines):
            return None
        return max(min(line.service.start for line in self.lines), journaled + ONE_DAY)

    def due(self, as_of: date) -> bool:
        """Whether revenue is left to journal through ``as_of`` (as :mod:`revenue_due` keeps
        it: the batch checks again what it locked)."""
        due_on = self.next_due(self.recognized_through)
        return due_on is not None and due_on <= as_of


def _chunks(start: date, end: date, cuts: set[date]) -> list[tuple[date, date]]:
    """Calendar months from ``start`` through ``end``, the last one cut at ``end``, and cut
    after each day of ``cuts`` inside them."""
    chunks = []
    inside = sorted(day for day in cuts if start <= day < end)
    while start <= end:
        last = min(month_end(start), end)
        while inside and inside[0] < start:
            inside.pop(0)
        if inside and inside[0] < last:
            last = inside.pop(0)
        chunks.append((start, last))
        start = last + ONE_DAY
    return chunks


def _load(session: Session, ids: Sequence[int]) -> list[_Document]:
    """The batch's documents, locked, with their progress, their scheduled lines and those
    lines' schedules: one read of documents and progress, one of lines, and for credit notes
    one of the credited invoice lines and their credits."""
    doc, line, progress = tables.Document, tables.DocumentLine, tables.RevenueProgress
    documents = {
        row.id: _Document(
            row.id,
            row.kind,
            currency_of(row.currency),
            row.issue_date,
            row.revenue_from,
            row.status == InvoiceStatus.VOID.value,
            row.recognized_through,
        )
        for row in session.execute(
            select(
                doc.id,
                doc.kind,
                doc.currency,
                doc.issue_date,
                doc.revenue_from,
                doc.status,
                progress.recognized_through,
            )
            .outerjoin(progress, progress.document_id == doc.id)
            .where(doc.id.in_(ids))
            .order_by(doc.id)
            .with_for_update(of=doc)
        )
    }
    sub, charge = tables.Subscription, tables.Charge
    later, later_charge, later_document = (
        aliased(tables.DocumentLine),
        aliased(tables.Charge),
        aliased(tables.Document),
    )
    # Whether a line is the newest of its billing period (no later line of a billing run, on a
    # document not void, has the same item and period); asked only of subscriptions with a last
    # day of service.
    newest = case(
        (
            or_(sub.cancel_date.is_not(None), sub.auto_renew.is_(False)),
            ~select(later.id)
            .join(later_charge, later_charge.id == later.charge_id)
            .join(later_document, later_document.id == later.document_id)
            .where(
                later_charge.subscription_item_id == charge.subscription_item_id,
                later_charge.period_start == charge.period_start,
                later.id > line.id,
                later_document.status != InvoiceStatus.VOID.value,
            )
            .exists(),
        ),
        else_=False,
    )
    rows = [
        row
        for row in session.execute(
            select(
                line.id,
                line.document_id,
                line.product_id,
                line.kind,
                line.service_start,
                line.service_end,
                line.amount,
                line.recognized,
                line.credited_line_id,
                line.charge_id,
                sub.reconcile_from,
                *(getattr(sub, name) for name in _END_TERMS),
                newest.label("newest"),
            )
            .join(doc, doc.id == line.document_id)
            .outerjoin(sub, sub.id == doc.subscription_id)
            .outerjoin(charge, charge.id == line.charge_id)
            .where(line.document_id.in_(ids))
            .order_by(line.id)
        )
        if scheduled(
            row.kind,
            documents[row.document_id].kind,
            row.service_start,
            documents[row.document_id].issue_date,
        )
    ]
    schedules = credit_schedules(
        session,
        [
            CreditLine(
                row.id,
                row.credited_line_id,
                row.amount,
                Period(row.service_start, row.service_end),
                documents[row.document_id].currency,
            )
            for row in rows
            if row.credited_line_id is not None
            and row.kind != ChargeKind.METERED.value  # taken back on its own last day
            and documents[row.document_id].kind == DocumentKind.CREDIT_NOTE.value
        ],
        [
            row.id
            for row in rows
            if row.newest
            and documents[row.document_id].kind == DocumentKind.INVOICE.value
            and _ends_service(row) is not None
        ],
    )
    for row in rows:
        document = documents[row.document_id]
        service = recognition_service(row.kind, Period(row.service_start, row.service_end))
        schedule: Schedule
        if row.id in schedules:
            schedule = schedules[row.id]
        else:
            sign = -1 if document.kind == DocumentKind.CREDIT_NOTE.value else 1
            schedule = RevenueSchedule(sign * row.amount, document.currency, service)
        document.lines.append(
            _Line(
                row.id,
                row.product_id,
                row.kind == ChargeKind.RECURRING.value,
                service,
                row.recognized,
                schedule,
            )
        )
    return list(documents.values())


@dataclass(frozen=True)
class CreditLine:
    """A credit note's recurring line, as the schedule of what it takes back needs it."""

    id: int
    credited_line_id: int
    amount: Decimal
    service: Period
    currency: Currency


_END_TERMS = (
    "start_date",
    "frequency",
    "term_months",
    "auto_renew",
    "trial_days",
    "cancel_date",
    "term_count",
)


def _last_day_of_service(row: Any) -> date | None:
    """The last day of service of the subscription of a line's row (its terms' columns), None
    while it renews without end or when the line has no subscription."""
    if row.start_date is None:
        return None
    return terms_from_row(row).service_end


def _ends_service(row: Any) -> date | None:
    """The subscription's last day of service when the line of ``row`` is to complete its
    billing period's revenue on it (if it is the period's newest): a recurring line of a
    billing run (it has a charge) whose days run past the last day of service and begin by the
    day after it, the subscription's billing settled for the line's days (no change waiting to
    be billed there). None otherwise."""
    if row.kind != ChargeKind.RECURRING.value or row.charge_id is None:
        return None
    if row.reconcile_from is not None and row.reconcile_from <= row.service_end:
        return None
    last = _last_day_of_service(row)
    if last is None or not row.service_start <= last + ONE_DAY <= row.service_end:
        return None
    return last


def credit_schedules(
    session: Session, lines: Sequence[CreditLine], invoice_lines: Sequence[int] = ()
) -> dict[int, Schedule]:
    """Per credit line id, its schedule: built on the invoice line it credits and the credits
    issued on that line before it, read in one query. A credit charge spread over several
    invoice lines (newest first, each up to what it holds) ties them: their credits' schedules
    are built on all of them together, so that together they take back exactly the service
    left.

    The newest line of a billing period whose days run past the subscription's last day of
    service completes the period's revenue on that day, once billing is settled for the period
    (what its lines add up to is then what the service through that day is worth):
    :func:`~connector.billing.revenue.ending_schedule`. That line may be a credit of ``lines``
    or one of ``invoice_lines`` (ids of invoice lines that may be the newest of their period),
    whose schedule is then given too. The same query reads the earlier lines of such a
    period."""
    if not lines and not invoice_lines:
        return {}
    credited = {line.credited_line_id for line in lines}
    wanted = {line.id for line in lines} | set(invoice_lines)
    line, doc, charge, sub = (
        tables.DocumentLine,
        tables.Document,
        tables.Charge,
        tables.Subscription,
    )
    charges = select(line.charge_id).where(
        line.credited_line_id.in_(credited), line.charge_id.is_not(None)
    )
    tied = select(line.credited_line_id).where(
        line.charge_id.in_(charges), line.credited_line_id.is_not(None)
    )
    # The charges of the billing periods of the wanted lines: the periods' lines.
    wanted_line, wanted_charge, period_charge = (
        aliased(tables.DocumentLine),
        aliased(tables.Charge),
        aliased(tables.Charge),
    )
    period_charges = (
        select(period_charge.id)
        .join(
            wanted_charge,
            and_(
                wanted_charge.subscription_item_id == period_charge.subscription_item_id,
                wanted_charge.period_start == period_charge.period_start,
            ),
        )
        .join(wanted_line, wanted_line.charge_id == wanted_charge.id)
        .where(wanted_line.id.in_(wanted))
    )
    period_line = aliased(tables.DocumentLine)
    period_lines = select(period_line.id).where(period_line.charge_id.in_(period_charges))
    rows = session.execute(
        select(
            line.id,
            line.kind,
            line.amount,
            line.service_start,
            line.service_end,
            line.credited_line_id,
            line.charge_id,
            doc.kind.label("document_kind"),
            doc.status,
            doc.currency,
            charge.subscription_item_id,
            charge.period_start,
            sub.reconcile_from,
            *(getattr(sub, name) for name in _END_TERMS),
        )
        .join(doc, doc.id == line.document_id)
        .outerjoin(charge, charge.id == line.charge_id)
        .outerjoin(sub, sub.id == doc.subscription_id)
        .where(
            or_(
                line.id.in_(credited),
                line.id.in_(tied),
                line.credited_line_id.in_(credited),
                line.credited_line_id.in_(tied),
                line.charge_id.in_(period_charges),
                line.credited_line_id.in_(period_lines),
            )
        )
        .order_by(line.id)
    ).all()
    by_id = {row.id: row for row in rows}
    # Each billing period's lines, in the order they were issued (void invoices left out).
    periods: dict[tuple[int, date], list[Any]] = defaultdict(list)
    for row in rows:
        if row.charge_id is not None and row.status != InvoiceStatus.VOID.value:
            periods[(row.subscription_item_id, row.period_start)].append(row)
    ending: dict[int, tuple[list[Any], date]] = {}  # line id: (the period's earlier lines, end)
    for period in periods.values():
        newest = period[-1]
        last = _ends_service(newest) if newest.id in wanted else None
        if last is not None:
            ending[newest.id] = (period[:-1], last)
            credited |= {row.credited_line_id for row in period if row.credited_line_id}
    ordinary = _credit_groups(rows, credited)

    def schedule_of(row: Any) -> Schedule:
        money = currency_of(row.currency)
        service = Period(row.service_start, row.service_end)
        if row.document_kind != DocumentKind.CREDIT_NOTE.value:
            return RevenueSchedule(row.amount, money, service)
        return ordinary(row.id, row.credited_line_id, row.amount, money) or RevenueSchedule(
            -row.amount, money, service
        )

    schedules: dict[int, Schedule] = {}
    for credit in lines:
        found = ordinary(credit.id, credit.credited_line_id, credit.amount, credit.currency)
        if found is not None:
            schedules[credit.id] = found
    for line_id, (earlier, last) in ending.items():
        row = by_id[line_id]
        sign = -1 if row.document_kind == DocumentKind.CREDIT_NOTE.value else 1
        money, service = currency_of(row.currency), Period(row.service_start, row.service_end)
        before: Schedule = (
            Together(tuple(schedule_of(other) for other in earlier))
            if earlier
            else RevenueSchedule(ZERO, money, service)  # the period's only line: nothing before
        )
        schedules[line_id] = ending_schedule(
            before,
            schedules.get(line_id) or schedule_of(row),
            (sign * row.amount, service),
            last,
            money,
        )
    return schedules


def _credit_groups(
    rows: Sequence[Any], credited: set[int]
) -> Callable[[int, int, Decimal, Currency], CreditSchedule | None]:
    """How each credit of the invoice lines ``credited`` is scheduled: on the invoice line it
    credits and the credits on it up to this one, with the invoice lines a credit charge spread
    over tied to it (``rows``: those lines, their credits, and maybe more)."""
    charges = {
        row.charge_id
        for row in rows
        if row.credited_line_id in credited and row.charge_id is not None
    }
    tied = {row.credited_line_id for row in rows if row.charge_id in charges} - {None}
    held = credited | tied
    rows = [row for row in rows if row.id in held or row.credited_line_id in held]
    invoice_lines = {
        row.id: (row.amount, Period(row.service_start, row.service_end))
        for row in rows
        if row.credited_line_id is None
    }
    # Invoice lines tied by the parts of one credit charge: each line's first-tied line.
    root = {line_id: line_id for line_id in invoice_lines}

    def find(line_id: int) -> int:
        while root[line_id] != line_id:
            line_id = root[line_id]
        return line_id

    by_charge: dict[int, list[int]] = defaultdict(list)
    credits: list[tuple[int, int, Decimal, Period]] = []
    for row in rows:
        if row.credited_line_id in invoice_lines:
            credits.append(
                (
                    row.id,
                    row.credited_line_id,
                    row.amount,
                    Period(row.service_start, row.service_end),
                )
            )
            if row.charge_id is not None:
                by_charge[row.charge_id].append(row.credited_line_id)
    for tied_lines in by_charge.values():
        first = find(tied_lines[0])
        for line_id in tied_lines[1:]:
            other = find(line_id)
            if other != first:
                root[max(first, other)] = min(first, other)
                first = min(first, other)

    def schedule(
        credit_id: int, credited_line_id: int, amount: Decimal, money: Currency
    ) -> CreditSchedule | None:
        if credited_line_id not in invoice_lines:
            return None
        group = find(credited_line_id)
        members = sorted(line_id for line_id in invoice_lines if find(line_id) == group)
        return credit_schedule(
            invoice_lines[members[0]],
            [
                (credit_amount, period)
                for line_id, credited_id, credit_amount, period in credits
                if find(credited_id) == group and line_id <= credit_id
            ],
            money,
            [invoice_lines[member] for member in members[1:]],
        )

    return schedule


def taken_back_at_issue(schedule: Any, revenue_from: date | None) -> Decimal:
    """What a credit note line takes back from revenue when it is issued: its schedule's days
    before ``revenue_from`` (those its invoice had journaled when it was drafted); nothing when
    the invoice had journaled nothing."""
    if revenue_from is None:
        return ZERO
    return Decimal(schedule.recognized_through(revenue_from - ONE_DAY))


@dataclass
class _Writes:
    journals: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[int, date] = field(default_factory=dict)


def _close_document(
    document: _Document, through_before: date | None, as_of: date, writes: _Writes
) -> None:
    lines = document.lines
    if not lines:
        return
    is_credit = document.kind == DocumentKind.CREDIT_NOTE.value
    first_day = min(line.schedule.start for line in lines)
    if through_before is not None:
        start = through_before + ONE_DAY
    elif is_credit:
        start = document.revenue_from or first_day
    else:
        start = first_day
    last_day = max(line.schedule.end for line in lines)
    end = min(last_day, as_of)
    running = {
        line.id: line.recognized
        if through_before is not None
        else line.schedule.recognized_through(start - ONE_DAY)
        for line in lines
    }
    # Revenue earned before an invoice's issue date is journaled up to the day before it, a
    # one-time line's on its own day; a credit note takes back nothing before its issue date.
    split = None if is_credit else document.issue_date
    cuts = {line.service.start for line in lines if not line.recurring}
    if split is not None:
        cuts.add(split - ONE_DAY)
    for first, last in _chunks(start, end, cuts):
        unbilled = split is not None and last < split
        amounts: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for line in lines:
            now = line.schedule.recognized_through(last)
            moved = now - running[line.id]
            running[line.id] = now
            if moved:
                amounts[amount_key(line.product_id, line.recurring)] += moved
        if any(amounts.values()):
            dated = last if unbilled else min(month_end(last), as_of)
            if is_credit:
                dated = max(dated, document.issue_date)
            writes.journals.append(
                _journal(
                    document, UNBILLED if unbilled else DEFERRED, (first, last), dated, amounts
                )
            )
    if split is not None and start <= min(split - ONE_DAY, last_day) <= end:
        # This close journaled the last day earned before the invoice: the invoice clears it.
        cleared: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for line in lines:
            cleared[amount_key(line.product_id, line.recurring)] += (
                line.schedule.recognized_through(split - ONE_DAY)
            )
        if any(cleared.values()):
            writes.journals.append(
                _journal(document, INVOICED, (first_day, split - ONE_DAY), split, cleared)
            )
    writes.lines += [
        {"b_id": line.id, "b_recognized": running[line.id]}
        for line in lines
        if running[line.id] != line.recognized
    ]
    # Recorded even when nothing was left to journal (a credit note issued after its service
    # ended), so that the document is not looked at again.
    writes.progress[document.id] = max(end, start - ONE_DAY)


def _journal(
    document: _Document,
    kind: str,
    period: tuple[date, date],
    journal_date: date,
    amounts: dict[str, Decimal],
) -> dict[str, Any]:
    kept = {key: value for key, value in amounts.items() if value}
    return {
        "document_id": document.id,
        "kind": kind,
        "period_start": period[0],
        "period_end": period[1],
        "journal_date": journal_date,
        "currency": document.currency.code,
        "amount": sum(kept.values(), ZERO),
        "amounts": {key: format(value, "f") for key, value in kept.items()},
    }


def _close_batch(session: Session, ids: Sequence[int], as_of: date) -> tuple[int, int]:
    """Close these documents: read them with their lines and progress, then write their
    journals, the journals' outbox rows, the lines' and the documents' progress, one statement
    each."""
    loaded = _load(session, ids)
    documents = [document for document in loaded if document.due(as_of)]
    writes = _Writes()
    for document in documents:
        _close_document(document, document.recognized_through, as_of, writes)
    revenue_due.settle(
        session,
        {
            **dict.fromkeys(ids),
            **{
                document.id: document.next_due(
                    writes.progress.get(document.id, document.recognized_through)
                )
                for document in loaded
            },
        },
    )
    if writes.journals:
        journal_table = tables.table_of(tables.RevenueJournal)
        journal_ids = reserve_ids(session, journal_table, len(writes.journals))
        now = utc_now()
        bulk_insert(
            session,
            journal_table,
            [
                {"id": journal_id, **journal, "created_at": now}
                for journal_id, journal in zip(journal_ids, writes.journals, strict=True)
            ],
        )
        outbox.add(session, "revenue", journal_ids)
    if writes.lines:
        line_table = tables.table_of(tables.DocumentLine)
        session.execute(
            update(line_table)
            .where(line_table.c.id == bindparam("b_id"))
            .values(recognized=bindparam("b_recognized")),
            writes.lines,
        )
    known = {document.id: document.recognized_through for document in documents}
    upsert(
        session,
        tables.table_of(tables.RevenueProgress),
        [
            {"document_id": doc_id, "recognized_through": day}
            for doc_id, day in writes.progress.items()
            if known.get(doc_id) != day
        ],
        keys=["document_id"],
        changes=["recognized_through"],
    )
    return len(documents), len(writes.journals)


def close_revenue(
    factory: sessionmaker[Session], as_of: date, checkpoint: Callable[[], None] = no_stop
) -> CloseResult:
    """Journal the revenue recognized through ``as_of`` that no journal holds yet;
    ``checkpoint`` is called between batches (it raises to stop there)."""
    result = CloseResult(as_of)
    checkpoint()
    with transaction(factory) as session:
        candidates = revenue_due.due(session, as_of)
    for start in range(0, len(candidates), BATCH):
        if start:
            checkpoint()
        with transaction(factory) as session:
            documents, journals = _close_batch(session, candidates[start : start + BATCH], as_of)
        result.documents += documents
        result.journals += journals
    return result
