"""Applying staged Salesforce records to the billing core, a page at a time, set-based.

The records of a page are mapped first (mapping is pure); everything they touch is then read
with one query per table into a :class:`~connector.db.workset.Workset`; each record is applied
to it in turn, all of its changes or none: a record that cannot be applied is quarantined with
its reason and what it had changed is undone; and what the page changed is written back at once.
What only some records need (why an account is missing, which versions were approved for
review, what was billed) is read when the first of them needs it, for the whole page.

When the database refuses the page's writes (a constraint, a value too long for a column), the
page is applied again record by record, each in its own savepoint, so that the record it refuses
is quarantined alone and the rest go on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from connector.billing.plausibility import Limits
from connector.db import reviews, staging, tables
from connector.db.staging import Staged
from connector.db.workset import Workset
from connector.errors import ConnectorError
from connector.sync import deals
from connector.sync.deals import Outcome, UsageTerms
from connector.sync.mapping import (
    CustomerData,
    DealData,
    MappingError,
    SalesforceMapping,
    map_customer,
    map_deal,
)

log = logging.getLogger(__name__)
SYSTEM = deals.SYSTEM
Settled = dict[tuple[str, str], tuple[str, str | None]]  # (object, record id): (state, reason)


@dataclass
class Applier:
    """Applies staged records: accounts as customers, deals as subscriptions (or their
    changes). Deals are held for review when implausible (``limits``)."""

    mapping: SalesforceMapping
    default_currency: str
    as_of: date
    limits: Limits | None
    usage: UsageTerms | None = None  # the usage mapping, for metered line items

    def settle(self, session: Session, row: tables.CrmRecord) -> Outcome:
        """Apply the staged record ``row`` and record on it what became of it."""
        [outcome] = self.apply(session, [Staged.of(row)])
        staging.settle(row, outcome.state, outcome.reason, session=session)
        return outcome

    def apply(self, session: Session, rows: Sequence[Staged]) -> list[Outcome]:
        """What becomes of each of ``rows``, applied in order (the rows are not changed)."""
        try:
            with session.begin_nested():
                return _Page(self, session, rows, {}).run()
        except (IntegrityError, DataError) as error:
            log.warning(
                "the database refused a page of %d records (%s); applying them one by one",
                len(rows),
                _first_line(error),
            )
        settled: Settled = {}
        return [self._alone(session, row, settled) for row in rows]

    def _alone(self, session: Session, row: Staged, settled: Settled) -> Outcome:
        try:
            with session.begin_nested():
                [outcome] = _Page(self, session, [row], settled).run()
        except (IntegrityError, DataError) as error:
            outcome = Outcome(staging.QUARANTINED, f"the database refused it: {_first_line(error)}")
            settled[(row.object, row.record_id)] = (outcome.state, outcome.reason)
        return outcome


def _first_line(error: Exception) -> str:
    cause = getattr(error, "orig", None) or error
    return str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__


@dataclass
class _Entry:
    """A staged record, mapped (or the error mapping it raised), with the version of the deal
    applied before it."""

    row: Staged
    data: CustomerData | DealData | None = None
    error: ConnectorError | None = None
    previous: DealData | None = None


@dataclass
class _Page:
    applier: Applier
    session: Session
    rows: Sequence[Staged]
    settled: Settled  # what became of the records before, this page's included
    entries: list[_Entry] = field(init=False)
    work: Workset = field(init=False)
    _states: dict[str, tuple[str, str | None]] | None = None
    _approvals: set[tuple[str, str]] | None = None

    def __post_init__(self) -> None:
        self.mapping = self.applier.mapping
        self.entries = [self._map(row) for row in self.rows]
        self.work = Workset(self.session, SYSTEM)

    def _is_account(self, row: Staged) -> bool:
        return row.object == self.mapping.customer.object

    def _map(self, row: Staged) -> _Entry:
        entry = _Entry(row)
        if self._is_account(row):
            if not row.deleted:
                try:
                    entry.data = map_customer(
                        self.mapping.customer, row.payload, self.applier.default_currency
                    )
                except ConnectorError as error:
                    entry.error = error
            return entry
        entry.previous = self._previous(row)
        if not row.deleted:
            try:
                entry.data = map_deal(self.mapping, row.payload)
            except ConnectorError as error:
                entry.error = error
        return entry

    def _previous(self, row: Staged) -> DealData | None:
        if not row.applied_payload or row.applied_hash == row.payload_hash:
            return None
        try:
            previous = map_deal(self.mapping, row.applied_payload)
        except MappingError:
            return None
        return previous if previous.won else None

    def _load(self) -> None:
        """Everything the page's records touch, one query per table."""
        customers: set[str] = set()
        subscriptions: set[str] = set()
        codes: set[str] = set()
        for entry in self.entries:
            row, data = entry.row, entry.data
            if self._is_account(row):
                customers.add(row.record_id)
                continue
            subscriptions.add(row.record_id)
            if isinstance(data, DealData) and data.won:
                if data.account_id:
                    customers.add(data.account_id)
                if data.amends:
                    subscriptions.add(data.amends)
                codes.update(item.product_code.strip() for item in data.items)
        self.work.load(customers=customers, subscriptions=subscriptions, product_codes=codes)

    def run(self) -> list[Outcome]:
        self._load()
        outcomes = []
        for entry in self.entries:
            try:
                with self.work.atomic():
                    outcome = self._apply(entry)
            except ConnectorError as error:
                outcome = Outcome(staging.QUARANTINED, str(error))
            self.settled[(entry.row.object, entry.row.record_id)] = (outcome.state, outcome.reason)
            outcomes.append(outcome)
        self.work.write()
        return outcomes

    def _apply(self, entry: _Entry) -> Outcome:
        row, work = entry.row, self.work
        if self._is_account(row):
            if row.deleted:
                return deals.withdraw_account(work, row.record_id)
            if entry.error is not None:
                raise entry.error
            assert isinstance(entry.data, CustomerData)
            return deals.apply_account(work, entry.data)
        if row.deleted:
            return deals.withdraw_deal(
                work, row.record_id, "was deleted in Salesforce", entry.previous
            )
        if entry.error is not None:
            raise entry.error
        deal = entry.data
        assert isinstance(deal, DealData)
        if not deal.won:
            return deals.withdraw_deal(work, row.record_id, "is not won", entry.previous)
        return deals.apply_deal(
            work,
            deal,
            revision=row.payload_hash,
            previous=entry.previous,
            account_state=lambda: self._account_state(deal.account_id),
            as_of=self.applier.as_of,
            limits=self.applier.limits,
            approved=self._approved,
            usage=self.applier.usage,
        )

    def _account_state(self, account_id: str) -> str | None:
        """The state (and reason) of the account's staged record, if it was staged: as this
        page left it, or as stored (read for every account of the page at once)."""
        obj = self.mapping.customer.object
        found = self.settled.get((obj, account_id))
        if found is None:
            if self._states is None:
                accounts = {
                    entry.data.account_id
                    for entry in self.entries
                    if isinstance(entry.data, DealData) and entry.data.account_id
                }
                self._states = staging.states(self.session, SYSTEM, obj, accounts | {account_id})
            found = self._states.get(account_id)
        if found is None:
            return None
        state, reason = found
        return f"{state}: {reason}" if reason else state

    def _approved(self, deal_id: str, revision: str) -> bool:
        """Whether a person approved this version of the deal (read for the page at once)."""
        if self._approvals is None:
            deal_ids = {entry.row.record_id for entry in self.entries} | {deal_id}
            self._approvals = reviews.approved_versions(self.session, SYSTEM, deal_ids)
        return (deal_id, revision) in self._approvals
