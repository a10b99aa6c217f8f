"""What the outbox says the ledger received, against what the ledger holds.

A batch file deleted, cut short or damaged after it was written loses documents the outbox
records as delivered. Before each push to the ledger, :func:`heal` has the ledger move its own
damaged files aside (:meth:`Ledger.heal`), then puts every document delivered but no longer in
the ledger back in line: the push posts it again, with the accounts it needs that are no longer
open (those still open elsewhere are not opened twice). ``connector ledger check`` names the
same documents (:func:`missing`).

Payments finance recorded in the ledger itself were delivered elsewhere (never sent by the
connector, ``attempts`` 0): they live in finance's own entries and are not looked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting import base
from connector.accounting.ledger import Ledger
from connector.db import outbox, tables
from connector.db.engine import transaction
from connector.db.types import utc_now

Identity = tuple[str, str]  # (document_type, document_id) as the ledger's metadata has them
LOST = "no longer in the ledger: posted again"
PAGE = 2000  # delivered rows read at a time


@dataclass
class HealResult:
    moved_aside: dict[str, str] = field(default_factory=dict)  # file -> its problem
    reposted: list[str] = field(default_factory=list)  # documents put back in line, by name


def delivered(session: Session, target: str) -> Iterator[tuple[Identity, int]]:
    """The documents the connector delivered to ``target`` (done), with their outbox ids, in
    the order they were made (read a page at a time)."""
    rows = session.execute(
        select(tables.Outbox.document_type, tables.Outbox.document_id, tables.Outbox.id)
        .join(tables.Delivery, tables.Delivery.outbox_id == tables.Outbox.id)
        .where(
            tables.Delivery.target == target,
            tables.Delivery.state == outbox.DONE,
            tables.Delivery.attempts > 0,
        )
        .order_by(tables.Outbox.id)
        .execution_options(yield_per=PAGE)
    )
    for kind, number, outbox_id in rows:
        yield (kind, str(number)), outbox_id


def missing(session: Session, target: str, held: AbstractSet[Identity]) -> dict[Identity, int]:
    """Documents delivered to ``target`` that ``held`` lacks, in the order they were made."""
    return {
        identity: outbox_id
        for identity, outbox_id in delivered(session, target)
        if identity not in held
    }


def names(session: Session, identities: Iterable[Identity]) -> dict[Identity, str]:
    """How a person knows each document: ``INV-000042``, ``void of INV-000007``, ``payment 5
    for INV-000001``, ``revenue of INV-000001 (2026-01-01 to 2026-01-31)``."""
    wanted = list(identities)
    ids: dict[str, set[int]] = {}
    for kind, number in wanted:
        if number.isdigit():
            ids.setdefault(kind, set()).add(int(number))
    payments = {
        row.id: row
        for row in session.scalars(
            select(tables.Payment).where(
                tables.Payment.id.in_(ids.get(base.PAYMENT, set()) | ids.get(base.REFUND, set()))
            )
        )
    }
    journals = {
        row.id: row
        for row in session.scalars(
            select(tables.RevenueJournal).where(
                tables.RevenueJournal.id.in_(ids.get(base.REVENUE, set()))
            )
        )
    }
    document_ids = (
        ids.get(base.INVOICE, set()) | ids.get(base.CREDIT_NOTE, set()) | ids.get(base.VOID, set())
    )
    document_ids |= {row.invoice_id for row in payments.values() if row.invoice_id is not None}
    document_ids |= {row.document_id for row in journals.values()}
    numbers: dict[int, str] = {
        document_id: number
        for document_id, number in session.execute(
            select(tables.Document.id, tables.Document.number).where(
                tables.Document.id.in_(document_ids)
            )
        )
    }
    named: dict[Identity, str] = {}
    for kind, number in wanted:
        key = int(number) if number.isdigit() else -1
        name = f"{kind} {number}"
        if kind in (base.INVOICE, base.CREDIT_NOTE) and key in numbers:
            name = numbers[key]
        elif kind == base.VOID and key in numbers:
            name = f"void of {numbers[key]}"
        elif kind in (base.PAYMENT, base.REFUND) and key in payments:
            invoice_id = payments[key].invoice_id
            name += f" for {numbers[invoice_id]}" if invoice_id in numbers else ""
        elif kind == base.REVENUE and key in journals:
            journal = journals[key]
            source = numbers.get(journal.document_id, f"document {journal.document_id}")
            name = f"revenue of {source} ({journal.period_start} to {journal.period_end})"
        named[(kind, number)] = name
    return named


def heal(factory: sessionmaker[Session], ledger: Ledger) -> HealResult:
    """Move the ledger's damaged files aside and put what it lost back in line (one update);
    raises :class:`~connector.errors.LedgerFileError` while a file that is not the
    connector's does not load. When the ledger's files are those a complete push left
    (:func:`note_whole`), nothing can be missing and nothing is read."""
    result = HealResult(moved_aside=ledger.heal())
    state = ledger.fingerprint()
    with transaction(factory) as session:
        if _whole(session, ledger.name) == state:
            return result
        lost = missing(session, ledger.name, ledger.documents)
        if lost:
            session.execute(
                update(tables.Delivery)
                .where(
                    tables.Delivery.target == ledger.name,
                    tables.Delivery.outbox_id.in_(list(lost.values())),
                )
                .values(state=outbox.PENDING, error=LOST)
            )
            named = names(session, lost)
            result.reposted = [named[identity] for identity in lost]
    return result


def _cursor_prefix(target: str) -> str:
    return f"accounting:{target}:whole:"


def _whole(session: Session, target: str) -> str | None:
    """The fingerprint of the ledger's files when a push last ended with everything in it."""
    prefix = _cursor_prefix(target)
    name = session.scalar(
        select(tables.SyncCursor.name).where(tables.SyncCursor.name.like(f"{prefix}%")).limit(1)
    )
    return name[len(prefix) :] if name else None


def note_whole(factory: sessionmaker[Session], ledger: Ledger) -> None:
    """Note that the ledger's files, as they are now, hold every document delivered to it: a
    push ended with nothing left to post. A file changed, added or gone since makes the next
    push look for what was lost."""
    ledger.refresh()
    state = ledger.fingerprint()
    prefix = _cursor_prefix(ledger.name)
    with transaction(factory) as session:
        if _whole(session, ledger.name) == state:
            return
        session.execute(delete(tables.SyncCursor).where(tables.SyncCursor.name.like(f"{prefix}%")))
        session.add(tables.SyncCursor(name=prefix + state, position=utc_now()))
