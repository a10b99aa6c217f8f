"""Write-back: what was billed and paid, shown in Salesforce where sales work
(:mod:`connector.sync.writeback_records` says what each record shows).

Only the records the queue (:mod:`connector.db.writeback_queue`) names are built: those whose
data changed since the last write-back, and those whose fields change with the date on a day
that has come. A cycle in which nothing changed reads one queue query and builds nothing.

Each record's fields are hashed; only records whose hash differs from what Salesforce last
accepted are sent, 200 to a call (sObject Collections, upserts by external id, so a retry after
any failure writes nothing twice). Nothing changed, no call. Each call's answers are recorded in
one transaction (one upsert), which also takes their records off the queue: a crash before it
sends them again. A record Salesforce refuses is kept with its error and sent again when it
changes; a retryable refusal is sent again next cycle. A usage record names its subscription's
record by its external id: the subscription records waiting to be sent go first.

Given the usage mapping (:class:`~connector.sync.writeback_accruing.AccruingOptions`), every
write-back also measures the usage accruing of the deals' metered subscriptions in their
current periods (never queued: listed afresh each time) and sends the records that changed; an
accruing record's key is queued for the day its usage falls due, when it is billed, or removed
from Salesforce if its usage was billed as nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

from sqlalchemy import bindparam, delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from connector.crm.client import MAX_COLLECTION, SalesforceClient
from connector.crm.policy import RETRY_CODES
from connector.db import staging, tables
from connector.db import writeback_queue as queue
from connector.db.engine import transaction
from connector.db.types import utc_now
from connector.sync.stopping import no_stop
from connector.sync.writeback_accruing import AccruingOptions, accruing_subscriptions
from connector.sync.writeback_dunning import TaskOptions
from connector.sync.writeback_files import attach_files, mark_files
from connector.sync.writeback_records import (
    CHUNK,
    INVOICE_RECORD,
    SUBSCRIPTION_RECORD,
    Builder,
    Built,
    Record,
    records,
)
from connector.sync.writeback_shape import (
    as_sent,
    describe_currency_mode,
    known_currency_mode,
    note_shape,
)
from connector.sync.writeback_usage import USAGE_RECORD

__all__ = ["WritebackResult", "records", "write_back"]


@dataclass
class WritebackResult:
    sent: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0  # records built again and found as Salesforce holds them
    failed: dict[str, str] = field(default_factory=dict)  # object/key -> error
    api_calls: int = 0
    built: int = 0  # records built (the queue's due entities that show anything)
    files: dict[str, int] = field(default_factory=dict)  # documents' PDFs as Salesforce Files
    removed: dict[str, int] = field(default_factory=dict)  # records deleted, by object

    def to_dict(self) -> dict[str, Any]:
        return {
            "built": self.built,
            "sent": dict(self.sent),
            **({"removed": dict(self.removed)} if self.removed else {}),
            "unchanged": self.unchanged,
            "failed": dict(self.failed),
            "api_calls": self.api_calls,
            **({"files": dict(self.files)} if self.files else {}),
        }


@dataclass(frozen=True)
class _Pending:
    """A record to send, with the queue row its answer settles."""

    record: Record
    fields: dict[str, Any]  # as sent to this org
    digest: str
    built: Built
    generation: int

    def settled(self) -> tuple[str, str, int, date | None]:
        return self.built.entity, self.built.key, self.generation, self.built.again


Pending = dict[tuple[str, str], list[_Pending]]  # (object, key field) -> records
# Records that name a parent record by its external id, sent once the parents built are: a
# usage record's subscription (built before it, as kinds are built in order).
PARENTS = {USAGE_RECORD[0]: SUBSCRIPTION_RECORD[0]}
REMOVE = "<remove>"  # the key field of records to delete, by their Salesforce Id


def _states(session: Session, built: Sequence[Record]) -> dict[tuple[str, str], set[str | None]]:
    """The hashes Salesforce last accepted or refused for these records."""
    state = tables.WritebackState
    keys = [(record.obj, record.key) for record in built]
    found: dict[tuple[str, str], set[str | None]] = {}
    for start in range(0, len(keys), CHUNK):
        rows = session.execute(
            select(state.object, state.key, state.sent_hash, state.error_hash).where(
                tuple_(state.object, state.key).in_(keys[start : start + CHUNK])
            )
        )
        for obj, key, sent_hash, error_hash in rows:
            found[(obj, key)] = {sent_hash, error_hash}
    return found


class _Due:
    """The queue's due records in the order they are built (subscriptions, documents,
    customers, deals, tasks, usage; ids in order), each kind listed when reached: the customers
    once every due subscription and document has queued its account. Then the subscriptions
    whose usage accrues, ``accruing`` (listed when the write-back starts, not queued)."""

    ORDER = (
        queue.SUBSCRIPTION,
        queue.DOCUMENT,
        queue.CUSTOMER,
        queue.DEAL,
        queue.TASK,
        queue.USAGE,
        queue.ACCRUING,
    )

    def __init__(self, entities: set[str], accruing: list[tuple[str, int]]) -> None:
        self.files = queue.FILE in entities  # built apart, once the records are sent
        if entities & {queue.SUBSCRIPTION, queue.DOCUMENT}:
            entities = entities | {queue.CUSTOMER}
        if accruing:
            entities = entities | {queue.ACCRUING}
        self.accruing = accruing
        self.entities = [entity for entity in self.ORDER if entity in entities]
        self.listed: list[tuple[str, int]] | None = None  # the current kind's, when listed
        self.position = 0

    @property
    def done(self) -> bool:
        return not self.entities

    def take(
        self, session: Session, as_of: date, limit: int, before: str | None = None
    ) -> dict[queue.Queued, int]:
        """Up to ``limit`` due records (with their generations), kind after kind, stopping
        at the kind ``before``."""
        taken: dict[queue.Queued, int] = {}
        while self.entities and self.entities[0] != before and len(taken) < limit:
            entity = self.entities[0]
            if self.listed is None:
                self.listed = (
                    self.accruing
                    if entity == queue.ACCRUING
                    else sorted(queue.due_of(session, entity, as_of), key=_order(entity))
                )
                self.position = 0
            end = self.position + limit - len(taken)
            taken.update(((entity, key), gen) for key, gen in self.listed[self.position : end])
            self.position = min(end, len(self.listed))
            if self.position == len(self.listed):
                self.entities.pop(0)
                self.listed = None
        return taken


def _order(entity: str) -> Callable[[tuple[str, int]], Any]:
    """Ids in numeric order (keys that are no id first); deals by their CRM id."""
    if entity == queue.DEAL:
        return lambda row: row[0]
    return lambda row: (row[0].isdigit(), int(row[0]) if row[0].isdigit() else 0, row[0])


def _changed(
    session: Session,
    as_of: date,
    due: _Due,
    result: WritebackResult,
    pending: Pending,
    *,
    multi: bool,
    tasks: TaskOptions | None = None,
    accruing: AccruingOptions | None = None,
) -> None:
    """Build the next ``CHUNK`` records due by ``as_of``; settle those Salesforce holds as they
    are, and add the others to ``pending``. The accounts of the due subscriptions and
    documents taken are queued first (their MRR and status may follow), before any of them is
    sent: a crash cannot lose them. Accruing usage to send is queued for the day it falls
    due."""
    builder = Builder(session, as_of, tasks, accruing)
    window = due.take(session, as_of, CHUNK, before=queue.CUSTOMER)
    if window:
        touched = {str(i) for i in builder.customers_touched(window)}
        touched -= queue.due_among(session, queue.CUSTOMER, touched, as_of)
        if touched:
            queue.mark(session, queue.CUSTOMER, sorted(int(key) for key in touched))
            queue.write_marks(session)
    window.update(due.take(session, as_of, CHUNK - len(window)))
    built = builder.build(window)
    shown = [b.record for b in built if b.record is not None]
    result.built += len(shown)
    states = _states(session, shown)
    sent_ids = _sent_ids(session, [record for record in shown if record.remove])
    settled: list[tuple[str, str, int, date | None]] = []
    reminders: list[tuple[str, date]] = []
    for item in built:
        generation = window.get((item.entity, item.key), 0)  # accruing: listed by subscription
        record = item.record
        if record is None:  # shows nothing, or not yet (a Task waiting for its invoice)
            settled.append((item.entity, item.key, generation, item.again))
            continue
        if record.remove:
            record_id = sent_ids.get((record.obj, record.key))
            if record_id is None:  # never shown: nothing to remove
                settled.append((item.entity, item.key, generation, item.again))
            else:
                removal = Record(record.obj, REMOVE, record_id, {}, remove=True)
                pending[(record.obj, REMOVE)].append(_Pending(removal, {}, "", item, generation))
            continue
        fields = as_sent(record.fields, multi)
        digest = staging.payload_hash(fields)
        known = states.get((record.obj, record.key))
        if known is not None and digest in known:
            result.unchanged += 1
            settled.append((item.entity, item.key, generation, item.again))
            continue
        if item.entity == queue.ACCRUING and item.again is not None:
            reminders.append((item.key, item.again))
        pending[(record.obj, record.key_field)].append(
            _Pending(record, fields, digest, item, generation)
        )
    queue.settle(session, [row for row in settled if row[0] != queue.ACCRUING])
    queue.remind(session, queue.USAGE, reminders)


def _sent_ids(session: Session, removed: Sequence[Record]) -> dict[tuple[str, str], str]:
    """The Salesforce Id of each of these records the connector wrote (one query)."""
    state = tables.WritebackState
    keys = [(record.obj, record.key) for record in removed]
    if not keys:
        return {}
    rows = session.execute(
        select(state.object, state.key, state.record_id).where(
            tuple_(state.object, state.key).in_(keys), state.record_id.is_not(None)
        )
    )
    return {(obj, key): record_id for obj, key, record_id in rows if record_id is not None}


def _start(session: Session, as_of: date, *, multi: bool, accruing: bool) -> _Due:
    """The records due, once those of a new shape are queued again."""
    note_shape(session, multi)
    queue.follow_date(session, as_of)
    listed = accruing_subscriptions(session, as_of) if accruing else []
    return _Due(queue.due_entities(session, as_of), listed)


def write_back(
    factory: sessionmaker[Session],
    client: SalesforceClient,
    as_of: date,
    checkpoint: Callable[[], None] = no_stop,
    *,
    tasks: TaskOptions | None = None,
    attach_documents: bool = True,
    usage: AccruingOptions | None = None,
) -> WritebackResult:
    """Send what changed since Salesforce last accepted it; ``checkpoint`` is called between
    calls (it raises to stop there). The queue is built ``CHUNK`` records at a time, each
    object's records sent as soon as they fill a call (the rest once everything is built).
    Then the documents' PDFs queued are attached to their invoice records as Salesforce Files
    (:mod:`connector.sync.writeback_files`), once the records exist. With ``usage``, the usage
    accruing is measured and its changed records sent too (module doc)."""
    result = WritebackResult()
    calls_before = client.calls
    with transaction(factory) as session:
        multi = known_currency_mode(session)
        if multi is not None:
            due = _start(session, as_of, multi=multi, accruing=usage is not None)
    if multi is None:  # asked while no transaction is open
        multi = describe_currency_mode(factory, client)
        with transaction(factory) as session:
            due = _start(session, as_of, multi=multi, accruing=usage is not None)
    pending: Pending = defaultdict(list)
    first = True
    while not due.done:
        if not first:  # between two builds too
            checkpoint()
        first = False
        with transaction(factory) as session:
            _changed(session, as_of, due, result, pending, multi=multi, tasks=tasks, accruing=usage)
        send = partial(_send, factory, client, result, checkpoint=checkpoint)
        for target, items in pending.items():
            while len(items) >= MAX_COLLECTION or (due.done and items):
                for parent, waiting in pending.items():
                    while parent[0] == PARENTS.get(target[0]) and waiting:  # the parents first
                        send(parent, waiting)
                send(target, items)
    if due.files or result.files:
        checkpoint()
        done = attach_files(factory, client, as_of, checkpoint, enabled=attach_documents)
        result.files = {**result.files, **done}
    result.api_calls = client.calls - calls_before
    return result


def _send(
    factory: sessionmaker[Session],
    client: SalesforceClient,
    result: WritebackResult,
    target: tuple[str, str],
    items: list[_Pending],
    *,
    checkpoint: Callable[[], None],
) -> None:
    """Send the first collection of ``items`` of ``target`` (object, key field), taking them
    off the list, and record the answers."""
    obj, key_field = target
    checkpoint()
    chunk = items[:MAX_COLLECTION]
    del items[:MAX_COLLECTION]
    values = [{key_field: item.record.key, **item.fields} for item in chunk]
    if key_field == REMOVE:
        answers = client.delete_records([item.record.key for item in chunk])
    elif key_field == "Id":
        answers = client.update_records(obj, values)
    else:
        answers = client.upsert_records(obj, key_field, values)
    with transaction(factory) as session:
        _record(session, obj, chunk, answers, result)


def _record(
    session: Session,
    obj: str,
    chunk: Sequence[_Pending],
    answers: Sequence[dict[str, Any]],
    result: WritebackResult,
) -> None:
    """Store a call's answers (one upsert) and take what is done off the queue."""
    now = utc_now()
    rows: list[dict[str, Any]] = []
    settled = []
    gone: list[dict[str, Any]] = []
    for item, answer in zip(chunk, answers, strict=True):
        assert item.built.record is not None
        key = item.built.record.key  # a removal's external id, not the Id it was sent by
        if item.record.remove and _removed(answer):
            gone.append({"q_object": obj, "q_key": key})
            result.removed[obj] = result.removed.get(obj, 0) + 1
            settled.append(item.settled())
            continue
        if answer.get("success"):
            rows.append(_state(obj, key, now, sent_hash=item.digest, record_id=answer.get("id")))
            if obj == INVOICE_RECORD[0] and answer.get("created"):
                mark_files(session, [int(item.built.key)])
                result.files.setdefault("marked", 0)
                result.files["marked"] += 1
            result.sent[obj] = result.sent.get(obj, 0) + 1
            settled.append(item.settled())
            continue
        errors = answer.get("errors") or [{}]
        code = str(errors[0].get("statusCode", ""))
        message = f"{code}: {errors[0].get('message', '')}"
        result.failed[f"{obj} {key}"] = message
        # A refusal that may pass later is tried again next cycle; others wait for a change.
        retry = code in RETRY_CODES
        rows.append(_state(obj, key, now, error=message, error_hash=None if retry else item.digest))
        if not retry:
            settled.append(item.settled())
    _save_states(session, rows)
    if gone:  # sent again from nothing should it show once more
        state = tables.table_of(tables.WritebackState)
        session.execute(
            delete(state).where(
                state.c.object == bindparam("q_object"), state.c.key == bindparam("q_key")
            ),
            gone,
        )
    queue.settle(session, [row for row in settled if row[0] != queue.ACCRUING])


def _removed(answer: dict[str, Any]) -> bool:
    """A deletion done, or found done (the record was deleted in Salesforce meanwhile)."""
    errors = answer.get("errors") or [{}]
    return bool(answer.get("success")) or errors[0].get("statusCode") == "ENTITY_IS_DELETED"


def _state(obj: str, key: str, now: Any, **values: str | None) -> dict[str, Any]:
    return {
        "object": obj,
        "key": key,
        "sent_hash": None,
        "error": None,
        "error_hash": None,
        "updated_at": now,
        "record_id": None,
        **values,
    }


def _save_states(session: Session, rows: list[dict[str, Any]]) -> None:
    """One upsert: an accepted record's hash, or a refusal's error (the hash Salesforce last
    accepted stays)."""
    if not rows:
        return
    table = tables.table_of(tables.WritebackState)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.object, table.c.key],
        set_={
            "sent_hash": func.coalesce(statement.excluded.sent_hash, table.c.sent_hash),
            "record_id": func.coalesce(statement.excluded.record_id, table.c.record_id),
            "error": statement.excluded.error,
            "error_hash": statement.excluded.error_hash,
            "updated_at": statement.excluded.updated_at,
        },
    )
    session.execute(statement, rows)
