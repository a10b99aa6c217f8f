"""The ``send`` stage: e-mail each message of the mail outbox to its customer, with its
document's PDF, exactly once as far as SMTP allows.

The messages were queued in the transaction that issued their documents (see
:mod:`connector.email.queue`); the stage reads those due, a batch at a time (one query: pending
ones whose next try has come, and waiting ones whose customer has an address now), and for
each batch:

1. notes the messages whose customer has no billing address as ``waiting`` (one statement);
2. opens one SMTP connection, then commits, in one statement, the start of an attempt for each
   message it can send (its recipient, its Message-ID, one attempt more);
3. gives each message to the server and commits what the server answered as soon as it
   answered (one statement each): ``sent``; ``parked`` with the answer when it refused the
   message (5xx); a 4xx leaves it pending, tried again after a wait that doubles each time
   (``email.retry_initial_seconds`` up to ``email.retry_max_seconds``), parked after
   ``email.max_attempts``.

A crash between the server's acceptance and the commit of step 3 leaves the attempt started:
the next run sends that message again, with the same Message-ID. That is the one case in which
a customer receives a message twice. Every change of a document message's state queues the
document's invoice record for the write-back (``Email_Status__c``, ``Email_Error__c``).

With ``email.enabled`` false nothing is sent: the messages stay pending, counted as not sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from connector.db import tables
from connector.db import writeback_queue as writeback
from connector.db.engine import transaction
from connector.db.types import utc_now
from connector.documents.store import StoredPdf, current_pdfs
from connector.email import queue
from connector.email.compose import Letter, bcc_addresses, compose, message_id
from connector.email.smtp import DEFERRED, REFUSED, SENT, Answer, Mailer, check
from connector.errors import EmailError
from connector.settings import Settings
from connector.sync.stopping import no_stop

NO_ADDRESS = "no billing address: the customer's account has none (mapping: customer.billing_email)"
_message = tables.EmailMessage


@dataclass
class SendResult:
    sent: int = 0
    deferred: int = 0
    waiting: int = 0  # messages whose customer has no billing address
    not_sent: int = 0  # email.enabled is false: pending messages, nothing sent
    no_pdf: int = 0  # the document's PDF is not rendered yet
    parked: dict[str, str] = field(default_factory=dict)  # "INV-000123 document" -> answer

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "deferred": self.deferred,
            "waiting": self.waiting,
            "not_sent": self.not_sent,
            "no_pdf": self.no_pdf,
            "parked": dict(self.parked),
        }


def send_messages(
    factory: sessionmaker[Session],
    settings: Settings,
    checkpoint: Callable[[], None] = no_stop,
) -> SendResult:
    """Send the messages due (see the module's description)."""
    result = SendResult()
    if not settings.email.enabled:
        with transaction(factory) as session:
            result.not_sent = (
                session.scalar(
                    select(func.count())
                    .select_from(_message)
                    .where(_message.state == queue.PENDING)
                )
                or 0
            )
        return result
    check(settings.email)
    after = 0
    while True:
        with transaction(factory) as session:
            rows = _due(session, after, settings.email.batch_size)
            if not rows:
                return result
            after = rows[-1].id
            _note_waiting(session, [row for row in rows if not row.billing_email], result)
            addressed = [row for row in rows if row.billing_email]
            pdfs = current_pdfs(session, [row.document_id for row in addressed])
        result.no_pdf += sum(1 for row in addressed if row.document_id not in pdfs)
        ready = [row for row in addressed if row.document_id in pdfs]
        if ready:
            _send_batch(factory, settings, ready, pdfs, result)
        checkpoint()


def _due(session: Session, after: int, limit: int) -> Sequence[Any]:
    document, customer = tables.Document, tables.Customer
    invoice = aliased(tables.Document)
    now = utc_now()
    return session.execute(
        select(
            _message.id,
            _message.document_id,
            _message.document_version,
            _message.kind,
            _message.template,
            _message.state,
            _message.message_id,
            _message.attempts,
            document.number,
            document.issue_date,
            document.due_date,
            document.period_start,
            document.period_end,
            document.total,
            document.amount_paid,
            document.amount_credited,
            document.currency,
            invoice.number.label("invoice_number"),
            customer.name.label("customer"),
            customer.country,
            customer.language,
            customer.billing_email,
        )
        .join(document, document.id == _message.document_id)
        .join(customer, customer.id == document.customer_id)
        .outerjoin(invoice, invoice.id == document.invoice_id)
        .where(
            _message.id > after,
            or_(
                and_(
                    _message.state == queue.PENDING,
                    or_(_message.next_attempt_at.is_(None), _message.next_attempt_at <= now),
                ),
                and_(_message.state == queue.WAITING, customer.billing_email.is_not(None)),
            ),
        )
        .order_by(_message.id)
        .limit(limit)
    ).all()


def _mark_documents(session: Session, rows: Sequence[Row[Any]]) -> None:
    """The invoice records of document messages show their e-mail: queue them."""
    writeback.mark(
        session, writeback.DOCUMENT, (r.document_id for r in rows if r.kind == "document")
    )


def _note_waiting(session: Session, rows: Sequence[Row[Any]], result: SendResult) -> None:
    result.waiting += len(rows)
    fresh = [row for row in rows if row.state != queue.WAITING]
    if not fresh:
        return
    session.execute(
        update(_message)
        .where(_message.id.in_([row.id for row in fresh]))
        .values(state=queue.WAITING, answer=NO_ADDRESS, updated_at=utc_now())
    )
    _mark_documents(session, fresh)


def _letter(row: Row[Any], seller: str) -> Letter:
    """The message's letter: the document as queued (its version names the message), in the
    customer's language, from the seller."""
    balance = row.total - row.amount_paid - row.amount_credited
    return Letter(
        row.document_id,
        row.document_version,
        row.kind,
        row.template,
        row.number,
        row.customer,
        row.country,
        row.issue_date,
        row.due_date,
        row.period_start,
        row.period_end,
        row.total,
        balance,
        row.currency,
        row.invoice_number,
        row.language,
        seller,
    )


def _send_batch(
    factory: sessionmaker[Session],
    settings: Settings,
    rows: Sequence[Row[Any]],
    pdfs: dict[int, StoredPdf],
    result: SendResult,
) -> None:
    email = settings.email
    letters = {row.id: _letter(row, settings.seller.name) for row in rows}
    ids = {row.id: row.message_id or message_id(letters[row.id], email) for row in rows}
    composed = {  # a template that does not render stops the stage before anything is noted
        row.id: compose(
            letters[row.id], row.billing_email, pdfs[row.document_id], email, ids[row.id]
        )
        for row in rows
    }
    with Mailer(settings) as mailer:
        _begin(factory, rows, ids)
        done: set[int] = set()
        try:
            for row in rows:
                answer = mailer.send(composed[row.id], row.billing_email, bcc_addresses(email))
                done.add(row.id)
                with transaction(factory) as session:
                    _record(session, settings, row, answer, result)
        except EmailError:
            untried = [row.id for row in rows if row.id not in done][1:]  # the first: unknown
            with transaction(factory) as session:
                session.execute(
                    update(_message)
                    .where(_message.id.in_(untried))
                    .values(attempt_started_at=None, attempts=_message.attempts - 1)
                )
            raise


def _begin(factory: sessionmaker[Session], rows: Sequence[Row[Any]], ids: dict[int, str]) -> None:
    """Note, before the server sees them, that these messages are being sent (one
    statement): a crash from here on leaves their outcome unknown, and they are sent again
    with the same Message-ID."""
    now, table = utc_now(), tables.table_of(tables.EmailMessage)
    with transaction(factory) as session:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                state=queue.PENDING,
                recipients=bindparam("b_to"),
                message_id=bindparam("b_message"),
                attempts=table.c.attempts + 1,
                attempt_started_at=now,
                updated_at=now,
            ),
            [{"b_id": row.id, "b_to": row.billing_email, "b_message": ids[row.id]} for row in rows],
        )


def _record(
    session: Session, settings: Settings, row: Row[Any], answer: Answer, result: SendResult
) -> None:
    """What the server made of one message (one statement)."""
    email, now = settings.email, utc_now()
    attempts = row.attempts + 1
    values: dict[str, Any] = {
        "answer": answer.answer,
        "attempt_started_at": None,
        "updated_at": now,
    }
    if answer.outcome == SENT:
        values.update(state=queue.SENT, sent_at=now, next_attempt_at=None)
        result.sent += 1
    elif answer.outcome == REFUSED or attempts >= email.max_attempts:
        if answer.outcome == DEFERRED:
            values["answer"] = f"deferred {attempts} times, given up: {answer.answer}"
        values.update(state=queue.PARKED, next_attempt_at=None)
        result.parked[f"{row.number} {row.kind}"] = values["answer"]
    else:
        values.update(next_attempt_at=now + _wait(settings, attempts))
        result.deferred += 1
    session.execute(update(_message).where(_message.id == row.id).values(**values))
    _mark_documents(session, [row])


def _wait(settings: Settings, attempts: int) -> timedelta:
    email = settings.email
    seconds = min(email.retry_initial_seconds * 2 ** (attempts - 1), email.retry_max_seconds)
    return timedelta(seconds=seconds)


def retry_parked(session: Session) -> int:
    """Put the parked messages back in line (their cause fixed): one statement."""
    documents = session.scalars(
        select(_message.document_id).where(
            _message.state == queue.PARKED, _message.kind == queue.DOCUMENT
        )
    )
    writeback.mark(session, writeback.DOCUMENT, documents)
    parked = update(_message).where(_message.state == queue.PARKED)
    done = session.execute(
        parked.values(state=queue.PENDING, attempts=0, next_attempt_at=None, updated_at=utc_now())
    )
    return int(getattr(done, "rowcount", 0) or 0)
