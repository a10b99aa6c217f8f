"""The push to accounting: outbox rows become documents posted to the accounting target.

Rows go in batches of the target's size. A batch is read in one transaction, posted outside any
(the write is external), and its results recorded in another: ``done`` once the target
confirmed, ``pending`` to try again, ``parked`` with the target's message. A crash between the
post and the record leaves the rows undelivered; the next push posts them again and the target,
which already holds them, answers done without writing twice.

Closed periods: a batch is built under the books' lock and dated by the closing in force (a
document whose own date is on or before it is booked on the first open day), and its rows are
marked in flight until their answers are recorded, so that no closing crosses them.

Payments recorded in accounting are read back here too (:func:`read_payments`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting import base
from connector.accounting.base import AccountingTarget
from connector.accounting.chart import load_chart
from connector.accounting.ledger import Ledger
from connector.db import books, outbox, tables
from connector.db.engine import transaction
from connector.errors import AccountingError, AccountingLimitError, ConfigError, ConnectorError
from connector.settings import Settings, mapping_path
from connector.sync import ledger_heal, push_batch, settlement
from connector.sync.stopping import no_stop

log = logging.getLogger(__name__)


@dataclass
class PushResult:
    target: str
    posted: int = 0
    already_there: int = 0
    pending: int = 0
    parked: dict[str, str] = field(default_factory=dict)  # document key -> why
    reposted: list[str] = field(default_factory=list)  # lost from the ledger, put back in line
    moved_aside: dict[str, str] = field(default_factory=dict)  # damaged ledger file -> why

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "posted": self.posted,
            "already_there": self.already_there,
            "pending": self.pending,
            "parked": dict(self.parked),
            "reposted": list(self.reposted),
            "moved_aside": dict(self.moved_aside),
        }


def make_target(
    settings: Settings, factory: sessionmaker[Session] | None = None
) -> AccountingTarget:
    """The target ``accounting.target`` names; Xero keeps its tokens and contacts in the
    database ``factory`` opens."""
    chart = load_chart(mapping_path(settings.accounting.mapping_file))
    if settings.accounting.target == "ledger":
        return Ledger(settings.ledger.path, chart, settings.billing.default_currency)
    if settings.accounting.target == "xero":
        if factory is None:
            raise ConfigError("the xero target needs the database")
        missing = [
            f"xero.{key}" for key in ("client_id", "tenant_id") if not getattr(settings.xero, key)
        ]
        if not settings.xero.client_secret.get_secret_value():
            missing.append("xero.client_secret")
        if missing:
            raise ConfigError(f"accounting.target = xero needs {', '.join(missing)}")
        # Loaded only when chosen: a cycle that keeps the ledger never imports the Xero client.
        from connector.accounting.xero.target import XeroTarget  # noqa: PLC0415

        return XeroTarget(settings, factory, chart.xero)
    raise ConfigError(f"accounting.target {settings.accounting.target!r} is not available")


def check_target(target: AccountingTarget) -> None:
    """Check the target's configuration against the target itself, when it offers such a
    check (Xero: the mapping's TaxTypes against the organisation's tax rates): a configuration
    error is raised before anything is sent; a target out of reach is left to the push."""
    check = getattr(target, "check_configuration", None)
    if check is None:
        return
    try:
        check()
    except AccountingError as error:
        log.warning("%s: configuration not checked: %s", target.name, error)


def push(
    factory: sessionmaker[Session],
    settings: Settings,
    target: AccountingTarget | None = None,
    checkpoint: Callable[[], None] = no_stop,
) -> PushResult:
    """Deliver every outbox row the target has not received yet, and to the ledger again what
    it no longer holds (:mod:`connector.sync.ledger_heal`); ``checkpoint`` is called between
    batches (it raises to stop there)."""
    target = target or make_target(settings, factory)
    result = PushResult(target.name)
    if isinstance(target, Ledger):  # what the ledger lost since it was delivered goes again
        healed = ledger_heal.heal(factory, target)
        result.reposted, result.moved_aside = healed.reposted, healed.moved_aside
    with transaction(factory) as session:
        after = outbox.received_through(session, target.name)
    first = True
    products = push_batch.Products()
    while True:
        checkpoint()
        with transaction(factory) as session:
            books.lock(session)  # the batch is dated by the closing in force; none crosses it
            # Rows left pending in this run wait for the next one: each read starts after the
            # last batch.
            rows = push_batch.read_rows(session, target.name, target.max_batch, after)
            if not rows:
                outbox.raise_floor(session, target.name)
                break
            loader = push_batch.Loader(session, rows, rows[0].closed_through, products)
            batch = [(row.id, loader.document(row)) for row in rows]
            ids = [row.id for row in rows]
            # Before the write: a crash leaves the rows marked as sent, and in flight.
            outbox.begin_attempt(session, target.name, ids)
            books.mark_in_flight(session, target.name, ids)
        if first:
            check_target(target)  # before the first write; an idle push costs nothing
            first = False
        after = ids[-1]
        tried = {row.id for row in rows if row.tried}
        retried = frozenset(doc.key for row_id, doc in batch if row_id in tried)
        answers = target.post([doc for _, doc in batch], retried)
        outcomes = _outcomes(batch, answers, result)
        with transaction(factory) as session:
            outbox.record(session, target.name, outcomes)
            books.landed(session, target.name, ids)
        if all(outcome.state == outbox.PENDING for outcome in outcomes):
            break  # the target is not taking anything now; the next push tries again
    if isinstance(target, Ledger):  # what it holds now is all that was delivered to it
        ledger_heal.note_whole(factory, target)
    return result


def _outcomes(
    batch: Sequence[tuple[int, base.Document]],
    answers: Sequence[base.PostResult],
    result: PushResult,
) -> list[outbox.Outcome]:
    by_key = {answer.key: answer for answer in answers}
    outcomes = []
    for outbox_id, doc in batch:
        answer = by_key.get(doc.key)
        if answer is None or (not answer.ok and answer.retriable):
            result.pending += 1
            error = answer.error if answer else "no answer from the target"
            outcomes.append(outbox.Outcome(outbox_id, outbox.PENDING, error=error))
        elif answer.ok:
            if answer.external_id == "already in the ledger":
                result.already_there += 1
            else:
                result.posted += 1
            outcomes.append(outbox.Outcome(outbox_id, outbox.DONE, answer.external_id))
        else:
            result.parked[doc.key] = answer.error or "refused"
            outcomes.append(outbox.Outcome(outbox_id, outbox.PARKED, error=answer.error))
    return outcomes


# -- payments recorded in accounting --------------------------------------------------------------
PAYMENTS_LOOKBACK = timedelta(minutes=5)  # clocks differ; a payment read twice is known


@dataclass
class PaymentsResult:
    recorded: int = 0
    known: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # where -> why
    stopped: str | None = None  # the target's API limit ended the read; the next one resumes
    reconciled: int = 0  # credit notes whose credit went back to the customer, as there

    def to_dict(self) -> dict[str, object]:
        return {
            "recorded": self.recorded,
            "known": self.known,
            "refused": dict(self.refused),
            "stopped": self.stopped,
            "reconciled": self.reconciled,
        }


def read_payments(
    factory: sessionmaker[Session], settings: Settings, target: AccountingTarget | None = None
) -> PaymentsResult:
    """Apply payments recorded in accounting to the billing core (each once), and mark them
    delivered to that target so that they are not posted back to it."""
    target = target or make_target(settings, factory)
    result = PaymentsResult()
    # A target that applies payments and credit notes to invoices itself (Xero) is followed.
    settles = bool(getattr(target, "applies_to_invoices", False))
    cursor_name = f"accounting:{target.name}:payments"
    with transaction(factory) as session:
        cursor = session.get(tables.SyncCursor, cursor_name)
        since = cursor.position - PAYMENTS_LOOKBACK if cursor and cursor.position else None
    try:
        found, after = target.payments(since.isoformat(timespec="seconds") if since else None)
    except AccountingLimitError as error:
        result.stopped = str(error)
        return result
    for payment in found:
        if payment.problem is not None:
            result.refused[payment.where] = payment.problem
            log.warning("payment at %s not recorded: %s", payment.where, payment.problem)
            continue
        try:
            with transaction(factory) as session:
                recorded = _record_external(session, payment, target.name, settles)
            result.recorded += recorded
            result.known += not recorded
        except ConnectorError as error:
            result.refused[payment.where] = str(error)
            log.warning("payment at %s not recorded: %s", payment.where, error)
    if settles:
        with transaction(factory) as session:
            result.reconciled = _pay_instead_of_credit(session, target.name)
    if after and not result.refused:  # a refused payment is read again until it is fixed
        with transaction(factory) as session:
            read = datetime.fromisoformat(after)
            position = read.astimezone(UTC) if read.tzinfo else read.replace(tzinfo=UTC)
            stored = session.get(tables.SyncCursor, cursor_name)
            if stored is None:
                session.add(tables.SyncCursor(name=cursor_name, position=position))
            elif stored.position is None or position > stored.position:
                stored.position = position
    return result


def _record_external(
    session: Session, payment: base.ExternalPayment, target: str, settles: bool
) -> bool:
    """Apply one payment recorded in accounting; False when it was applied before."""
    known = session.scalar(
        select(tables.Payment.id).where(tables.Payment.reference == payment.reference)
    )
    if known is not None:
        return False
    invoice = session.scalar(
        select(tables.Document).where(
            tables.Document.number == payment.invoice_number,
            tables.Document.kind == base.INVOICE,
        )
    )
    if invoice is None:
        raise ConnectorError(f"no invoice {payment.invoice_number}")
    if invoice.currency != payment.currency:
        raise ConnectorError(
            f"paid in {payment.currency}, but {invoice.number} is in {invoice.currency}"
        )
    # Paid there before credit notes applied here reached it: the payment comes first, those
    # credit notes' credit goes back to the customer (as there).
    excess = payment.amount - settlement.due_of(invoice)
    pending = _credit_notes_not_at(session, target, invoice) if settles else set()
    if excess > 0 and pending:
        released = settlement.release_credit(session, invoice, excess, pending, payment.date)
        outbox.send_again(session, target, base.CREDIT_NOTE, released)
    row = settlement.record_payment(
        session,
        amount=payment.amount,
        received_on=payment.date,
        invoice_number=invoice.number,
        reference=payment.reference,
    )
    outbox.delivered_elsewhere(session, base.PAYMENT, row.id, target, payment.where)
    if row.credit_kept:  # an over-payment: to the customer's credit
        outbox.enqueue(session, base.CREDIT_KEPT, [row.id])
    return True


def _credit_notes_not_at(session: Session, target: str, invoice: tables.Document) -> set[int]:
    """Credit notes applied to ``invoice`` whose delivery to ``target`` is not done: the
    target does not hold their application (yet)."""
    applied = {
        note
        for note in session.scalars(
            select(tables.Allocation.credit_note_id).where(
                tables.Allocation.invoice_id == invoice.id,
                tables.Allocation.credit_note_id.is_not(None),
            )
        )
        if note is not None
    }
    done = outbox.states(session, target, base.CREDIT_NOTE, applied)
    return {note for note in applied if done.get(note) != outbox.DONE}


def _pay_instead_of_credit(session: Session, target: str) -> int:
    """Where ``target`` holds a payment on an invoice in full but the billing core applied
    part of it elsewhere because credit notes the target does not hold were applied to that
    invoice first (a credit note issued on an invoice already paid there, from before the
    payments were read back ahead of billing): apply the payment to its invoice instead and
    keep those credit notes' credit as the customer's, as the target does. Returns how many
    credit notes were released; those it had refused are sent again."""
    candidates = session.scalars(
        select(tables.Payment)
        .join(
            tables.Outbox,
            (tables.Outbox.document_type == base.PAYMENT)
            & (tables.Outbox.document_id == tables.Payment.id),
        )
        .join(tables.Delivery, tables.Delivery.outbox_id == tables.Outbox.id)
        .where(
            tables.Payment.kind == base.PAYMENT,
            tables.Payment.unapplied.is_not(None),
            tables.Payment.invoice_id.is_not(None),
            tables.Delivery.target == target,
            tables.Delivery.state == outbox.DONE,
        )
        .order_by(tables.Payment.id)
    ).all()
    released: set[int] = set()
    for payment in candidates:
        invoice = session.get_one(tables.Document, payment.invoice_id)
        pending = _credit_notes_not_at(session, target, invoice)
        if pending:
            released.update(
                settlement.pay_instead_of_credit(
                    session, payment, invoice, pending, payment.received_on
                )
            )
    outbox.send_again(session, target, base.CREDIT_NOTE, released)
    return len(released)
