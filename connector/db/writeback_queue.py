"""The write-back's queue: which CRM records must be built again, and when.

Whatever changes what the write-back shows marks the local entity behind it, in the same
transaction as the change (as the outbox does): a subscription (its record, and through it its
customer's account), a document (its invoice record, and its customer's account), a customer
(its account), a deal (its opportunity's sync error), the usage of a metered item in a period
(its usage record: ``<subscription item id>:<period start>``, :func:`usage_key`). Marks are
gathered as the transaction goes and written in one statement when it commits; a transaction
that rolls back marks nothing.

A record whose fields change with the date (a subscription's status and MRR, an account's
status once an invoice falls due) stays queued, due on the day they change; the write-back
follows the as-of date (:func:`follow_date`) and builds nothing else. A queue row is removed
(or put off to that day) only in the transaction that records Salesforce's answer, and only
if it was not marked again meanwhile (``generation``): a crash between a mark and the answer
loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    cast,
    delete,
    event,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import Date, Integer, String

from connector.billing.pricing import ChargeKind
from connector.db import tables

SYSTEM = "salesforce"
SUBSCRIPTION = "subscription"
DOCUMENT = "document"
CUSTOMER = "customer"
DEAL = "deal"
TASK = "task"  # a Task of a collections step: "<invoice number>:<step>"
FILE = "file"  # a document's PDF as a Salesforce File on its invoice record
USAGE = "usage"  # the usage of a metered item in a period: "<item id>:<period start>"
# The usage accruing of a subscription's metered items: listed afresh by every write-back
# (subscription ids), never stored in the queue.
ACCRUING = "accruing"
CHANGED = date.min  # due at once, whatever the as-of date
AS_OF_CURSOR = "writeback:as_of"  # the as-of date of the last write-back
DATED = ((SUBSCRIPTION, "subscriptions"), (CUSTOMER, "customers"))  # entity, linked table
_MARKS = "writeback_marks"
_COLUMNS = ("entity", "key", "due_on", "generation")
_KEYS = 2000  # keys per query

Queued = tuple[str, str]  # (entity, key)


def _table() -> Table:
    return tables.table_of(tables.WritebackQueue)


def mark(session: Session, entity: str, keys: Iterable[int | str]) -> None:
    """Queue these entities' records, with the transaction in hand (written when it
    commits)."""
    marks: set[Queued] = session.info.setdefault(_MARKS, set())
    marks.update((entity, str(key)) for key in keys)


def usage_key(item_id: int, period_start: date) -> str:
    """The queue's key of a metered item's usage in the period starting ``period_start``."""
    return f"{item_id}:{period_start.isoformat()}"


def write_marks(session: Session) -> None:
    """Write the marks gathered so far, in one statement: due at once, one generation on."""
    marks: set[Queued] | None = session.info.pop(_MARKS, None)
    if not marks:
        return
    rows = [
        {"entity": entity, "key": key, "due_on": CHANGED, "generation": 0}
        for entity, key in sorted(marks)  # one order: concurrent writers wait, never deadlock
    ]
    session.execute(_marking(session, _insert(session)), rows)


def _insert(session: Session) -> Insert:
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    return dialect.insert(_table())


def _marking(session: Session, statement: Insert) -> Insert:
    table = _table()
    assert isinstance(statement, sqlite.Insert | postgresql.Insert)
    return statement.on_conflict_do_update(
        index_elements=[table.c.entity, table.c.key],
        set_={"due_on": CHANGED, "generation": table.c.generation + 1},
    )


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if not session.in_nested_transaction():  # savepoints leave their marks to the end
        write_marks(session)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed (written) or rolled back (forgotten)
        session.info.pop(_MARKS, None)


def mark_refused(session: Session, outbox_ids: Iterable[int] | ColumnElement[bool]) -> None:
    """Queue the deals whose documents these outbox rows carry (their ids, or a condition on
    the outbox that chooses them; one query): an accounting target refused one of them, or is
    given one it refused again (the deal's sync error names the first)."""
    outbox, document, link = tables.Outbox, tables.Document, tables.ExternalId
    payment, journal = tables.Payment, tables.RevenueJournal
    if isinstance(outbox_ids, ColumnElement):
        ours = outbox_ids
    else:
        ids = list(outbox_ids)
        if not ids:
            return
        ours = outbox.id.in_(ids)
    carried = (
        select(outbox.document_id.label("document_id"))
        .where(ours, outbox.document_type.in_(("invoice", "credit_note", "void")))
        .union_all(
            select(payment.invoice_id)
            .select_from(outbox)
            .join(payment, payment.id == outbox.document_id)
            .where(ours, outbox.document_type.in_(("payment", "refund"))),
            select(journal.document_id)
            .select_from(outbox)
            .join(journal, journal.id == outbox.document_id)
            .where(ours, outbox.document_type == "revenue"),
        )
        .subquery()
    )
    deals = session.scalars(
        select(link.external_id)
        .select_from(carried)
        .join(document, document.id == carried.c.document_id)
        .join(
            link,
            and_(
                link.entity_id == document.subscription_id,
                link.entity == tables.Subscription.__tablename__,
                link.system == SYSTEM,
            ),
        )
    ).all()
    mark(session, DEAL, deals)


def mark_usage_of(session: Session, document_ids: Iterable[int]) -> None:
    """Queue the usage records of the metered charges these documents carry (one query): a
    void invoice no longer bills them."""
    ids = sorted(set(document_ids))
    if not ids:
        return
    line, charge, item = tables.DocumentLine, tables.Charge, tables.SubscriptionItem
    rows = session.execute(
        select(charge.subscription_item_id, charge.period_start)
        .join(line, line.charge_id == charge.id)
        .join(item, item.id == charge.subscription_item_id)
        .where(line.document_id.in_(ids), item.kind == ChargeKind.METERED.value)
        .distinct()
    )
    mark(session, USAGE, (usage_key(item_id, start) for item_id, start in rows))


def remind(session: Session, entity: str, keys: Sequence[tuple[str, date]]) -> None:
    """Queue these records for the day given with each (one statement); a record already
    queued keeps the earlier day and its generation."""
    if not keys:
        return
    table = _table()
    statement = _insert(session)
    assert isinstance(statement, sqlite.Insert | postgresql.Insert)
    earlier = func.min if session.get_bind().dialect.name == "sqlite" else func.least
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.entity, table.c.key],
        set_={"due_on": earlier(table.c.due_on, statement.excluded.due_on)},
    )
    rows = [
        {"entity": entity, "key": key, "due_on": day, "generation": 0}
        for key, day in sorted(set(keys))
    ]
    session.execute(statement, rows)


def due(session: Session, as_of: date) -> dict[Queued, int]:
    """The queued records due by ``as_of``, with the generation of their mark."""
    table = _table()
    rows = session.execute(
        select(table.c.entity, table.c.key, table.c.generation).where(table.c.due_on <= as_of)
    )
    return {(entity, key): generation for entity, key, generation in rows}


def depth(session: Session, as_of: date) -> dict[str, int]:
    """Records queued per kind of entity: due by ``as_of`` (waiting for the next write-back),
    and ``later`` (due on the day their fields change with the date); one query."""
    table = _table()
    counts: dict[str, int] = {}
    due_now = (table.c.due_on <= as_of).label("due_now")
    for entity, is_due, count in session.execute(
        select(table.c.entity, due_now, func.count()).group_by(table.c.entity, due_now)
    ):
        key = entity if is_due else "later"
        counts[key] = counts.get(key, 0) + count
    return counts


def due_entities(session: Session, as_of: date) -> set[str]:
    """The kinds of entity with records due by ``as_of`` (one query)."""
    table = _table()
    return set(session.scalars(select(table.c.entity).where(table.c.due_on <= as_of).distinct()))


def due_of(session: Session, entity: str, as_of: date) -> list[tuple[str, int]]:
    """The keys of ``entity`` due by ``as_of``, with the generation of their mark."""
    table = _table()
    rows = session.execute(
        select(table.c.key, table.c.generation).where(
            table.c.entity == entity, table.c.due_on <= as_of
        )
    )
    return [(key, generation) for key, generation in rows]


def due_among(session: Session, entity: str, keys: Iterable[str], as_of: date) -> set[str]:
    """Which of these keys of ``entity`` are due by ``as_of``."""
    table = _table()
    wanted = sorted(set(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), _KEYS):
        found.update(
            session.scalars(
                select(table.c.key).where(
                    table.c.entity == entity,
                    table.c.key.in_(wanted[start : start + _KEYS]),
                    table.c.due_on <= as_of,
                )
            )
        )
    return found


def settle(session: Session, done: Sequence[tuple[str, str, int, date | None]]) -> None:
    """Records built and answered (or found unchanged): ``(entity, key, generation, again)``,
    ``again`` the day their fields change with the date (None: only a change does). A row
    marked again since (another generation) stays due."""
    table = _table()
    same = and_(
        table.c.entity == bindparam("q_entity"),
        table.c.key == bindparam("q_key"),
        table.c.generation == bindparam("q_generation"),
    )
    gone = [
        {"q_entity": entity, "q_key": key, "q_generation": generation}
        for entity, key, generation, again in done
        if again is None
    ]
    later = [
        {"q_entity": entity, "q_key": key, "q_generation": generation, "q_due": again}
        for entity, key, generation, again in done
        if again is not None
    ]
    if gone:
        session.execute(delete(table).where(same), gone)
    if later:
        session.execute(update(table).where(same).values(due_on=bindparam("q_due")), later)


def follow_date(session: Session, as_of: date) -> None:
    """Note the write-back's as-of date. Records queued for a day are due once it comes;
    a date earlier than the last one queues every record that changes with the date, as it
    was built for a later day."""
    moment = datetime.combine(as_of, time(), UTC)
    row = session.get(tables.SyncCursor, AS_OF_CURSOR)
    if row is None:
        session.add(tables.SyncCursor(name=AS_OF_CURSOR, position=moment))
        session.flush()
        return
    if row.position is not None and row.position > moment:
        _queue_dated(session)
    if row.position != moment:
        row.position = moment
        session.flush()


def _queue_dated(session: Session) -> None:
    """Every subscription and customer shown in Salesforce, due at once (one statement
    each)."""
    link = tables.ExternalId
    for entity, linked in DATED:
        chosen = select(
            literal(entity, String).label("entity"),
            cast(link.entity_id, String(120)).label("key"),
            literal(CHANGED, Date).label("due_on"),
            literal(0, Integer).label("generation"),
        ).where(link.system == SYSTEM, link.entity == linked)
        session.execute(_marking(session, _insert(session).from_select(_COLUMNS, chosen)))
