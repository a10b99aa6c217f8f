"""What the write-back's records hold in this org, and building every record again when that
changes.

- **Currencies.** ``CurrencyIsoCode`` exists only in an org with multi-currency enabled; a
  single-currency org refuses every record that carries it (and enabling multi-currency cannot
  be undone in Salesforce, so the connector never asks for it). Whether the org has it is read
  from the describe of ``Billing_Invoice__c`` (one call) and kept in ``sync_cursors``: for good
  once seen (it cannot be turned off), and for a day when not (an admin may turn it on).
- **Shape.** The records' shape is :data:`~connector.sync.writeback_records.SHAPE` and the
  currency mode. When either differs from the shape the last write-back built (a new version of
  the connector adds a field, the org turns multi-currency on), every record Salesforce shows is
  queued once, in the same transaction that notes the new shape; what Salesforce already holds
  is still compared, so only records that now differ are sent.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from connector.crm.client import SalesforceClient
from connector.db import tables
from connector.db import writeback_queue as queue
from connector.db.engine import transaction
from connector.db.types import utc_now
from connector.sync.writeback_records import INVOICE_RECORD, SHAPE, every_record

MULTI_CURRENCY = "salesforce:multi-currency"  # seen enabled (for good)
SINGLE_CURRENCY = "salesforce:single-currency"  # seen disabled, at this time
SHAPE_CURSOR = "writeback:shape:"  # + the shape the last write-back built
CURRENCY_FIELD = "CurrencyIsoCode"
RECHECK = timedelta(days=1)
_HELD = "writeback_cursors"


def _cursors(session: Session) -> dict[str, Any]:
    """The cursors this module keeps and the write-back's as-of date, in one query per
    session (the as-of date's row is then in the session: noting the date reads nothing
    more)."""
    rows = session.info.get(_HELD)
    if rows is None:
        cursor = tables.SyncCursor
        rows = session.scalars(
            select(cursor).where(
                or_(
                    cursor.name.in_((MULTI_CURRENCY, SINGLE_CURRENCY, queue.AS_OF_CURSOR)),
                    cursor.name.like(f"{SHAPE_CURSOR}%"),
                )
            )
        ).all()
        session.info[_HELD] = rows  # the session keeps only weak references of its own
    return {row.name: row.position for row in rows}


def known_currency_mode(session: Session) -> bool | None:
    """Whether the org has multi-currency, as last seen: for good once seen, for a day when
    not; None when it must be asked (:func:`describe_currency_mode`)."""
    seen = _cursors(session)
    if MULTI_CURRENCY in seen:
        return True
    checked = seen.get(SINGLE_CURRENCY)
    if checked is not None and utc_now() - checked < RECHECK:
        return False
    return None


def describe_currency_mode(factory: sessionmaker[Session], client: SalesforceClient) -> bool:
    """Whether the org has multi-currency, from one describe call (to be made while no
    transaction is open: SQLite's write lock is not held across it), noted."""
    enabled = CURRENCY_FIELD in client.field_names(INVOICE_RECORD[0])
    cursor = tables.SyncCursor
    with transaction(factory) as session:
        session.execute(delete(cursor).where(cursor.name == SINGLE_CURRENCY))
        session.add(cursor(name=MULTI_CURRENCY if enabled else SINGLE_CURRENCY, position=utc_now()))
    return enabled


def note_shape(session: Session, multi: bool) -> None:
    """Queue every record again if the shape the write-back builds (in this currency mode)
    changed since it last ran."""
    seen = _cursors(session)
    _requeue_on_new_shape(session, shape(multi), [n for n in seen if n.startswith(SHAPE_CURSOR)])


def shape(multi: bool) -> str:
    return f"{SHAPE}:{'multi' if multi else 'single'}-currency"


def _requeue_on_new_shape(session: Session, current: str, built: list[str]) -> None:
    """Queue every record once if the last write-back built another shape. A database whose
    write-back never ran queues each record as it changes anyway; one whose write-back ran
    before shapes were noted is queued again."""
    if built == [SHAPE_CURSOR + current]:
        return
    cursor = tables.SyncCursor
    ran_before = built or session.scalar(select(tables.WritebackState.object).limit(1))
    if ran_before:
        by_entity: dict[str, list[str]] = {}
        for entity, key in every_record(session):
            by_entity.setdefault(entity, []).append(key)
        for entity, keys in by_entity.items():
            queue.mark(session, entity, keys)
        queue.write_marks(session)
    session.execute(delete(cursor).where(cursor.name.like(f"{SHAPE_CURSOR}%")))
    session.add(cursor(name=SHAPE_CURSOR + current, position=utc_now()))
    session.flush()


def as_sent(fields: dict[str, Any], multi: bool) -> dict[str, Any]:
    """The fields as this org takes them."""
    if multi or CURRENCY_FIELD not in fields:
        return fields
    return {name: value for name, value in fields.items() if name != CURRENCY_FIELD}
