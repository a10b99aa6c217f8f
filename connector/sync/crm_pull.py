"""The pull: accounts and deals from Salesforce into the billing core, incrementally, once.

For each object a cursor on SystemModstamp says how far the pull has read; each run asks
(``queryAll``, so deletions come too) for what changed since the cursor minus a lookback
window, ordered by SystemModstamp. Each page of records is staged, mapped and applied in one
database transaction together with the cursor's advance, set-based (a handful of statements a
page, whatever it holds: :mod:`connector.sync.applier`): a crash loses at most the page in
hand, which the next run reads again, and a record whose payload did not change is not applied
again. Line items changed without their deal are found through their own cursor. Once an
object's query is read to its end, its cursor moves to the org's time when the query was
answered (everything stamped a lookback before it was committed then, and read): a quiet org,
whose last changes were a burst (the write-back touches every record it shows), is read again
only until a pull a lookback after the burst, not at every run.

A cursor never moves past the org's current time, read from the ``Date`` header of the answer
that carried the run's first pages (whole seconds: a stamp within that second is the org's
present): a record stamped later (a clock-skewed org, or data loaded with future stamps) would
otherwise carry the cursor past every change made until then. Such a
record is read again by each run until the org's time passes its stamp (found unchanged), and a
cursor an earlier version left in the future is put back to the org's time before the run
reads.

A record that cannot be applied is quarantined with its reason and never stops the rest; all
quarantined records are tried again at the end of every run (what they wait for may have
arrived) and whenever they change in Salesforce. REQUEST_LIMIT_EXCEEDED or a spent budget
ends the run early with everything so far saved; the next run resumes from the cursors.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connector.crm.budget import ApiBudget
from connector.crm.client import SalesforceClient
from connector.db import staging, webhook_events
from connector.db import writeback_queue as queue
from connector.db.engine import transaction
from connector.errors import CrmError, QuotaExhaustedError
from connector.settings import Settings, mapping_path
from connector.sync import deals
from connector.sync.applier import Applier
from connector.sync.limits import plausibility_limits
from connector.sync.mapping import (
    LoadedMapping,
    load_mapping,
    truthy,
)
from connector.sync.usage_mapping import usage_mapping_of

log = logging.getLogger(__name__)
SYSTEM = deals.SYSTEM
CURSOR_PREFIX = f"{SYSTEM}:"
ID_CHUNK = 200
APPLY_CHUNK = 2000  # records applied together: a Bulk page holds up to 50,000
WAITING_STATES = frozenset({staging.QUARANTINED, staging.HELD})
LINE_ITEM = "OpportunityLineItem"
LINE_ITEM_CURSOR = f"{CURSOR_PREFIX}{LINE_ITEM}"
DATE_RESOLUTION = timedelta(seconds=1)  # an HTTP Date header counts whole seconds
SALESFORCE_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")


@dataclass
class PullResult:
    """What a pull did: records fetched, applied, unchanged and ignored by this run; and, at its
    end, every record waiting for a fix (``quarantined``) or a review (``held``), whenever it
    arrived, so that a pull exits 1 while anything waits."""

    fetched: dict[str, int] = field(default_factory=dict)
    applied: int = 0
    unchanged: int = 0
    quarantined: int = 0
    held: int = 0
    ignored: int = 0
    api_calls: int = 0
    stopped: str | None = None

    def count(self, state: str) -> None:
        """Count a record applied or ignored by this run (what waits is counted at its end)."""
        if state == staging.APPLIED:
            self.applied += 1
        elif state == staging.IGNORED:
            self.ignored += 1

    @property
    def waiting(self) -> int:
        """Records waiting for a fix (quarantined) or a review (held), whenever they came."""
        return self.quarantined + self.held

    def to_dict(self) -> dict[str, Any]:
        return {
            "fetched": dict(self.fetched),
            "applied": self.applied,
            "unchanged": self.unchanged,
            "quarantined": self.quarantined,
            "held": self.held,
            "ignored": self.ignored,
            "api_calls": self.api_calls,
            "stopped": self.stopped,
        }


def soql_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_modstamp(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value)
    if text.endswith("+0000"):
        text = text[:-5] + "+00:00"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC)


class Pull:
    """One pull run (see the module's description)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        client: SalesforceClient,
        mapping: LoadedMapping,
        *,
        as_of: date,
        on_page: Callable[[str, int], None] | None = None,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.client = client
        self.mapping = mapping.mapping
        self.loaded = mapping
        self.as_of = as_of
        self.on_page = on_page
        self.result = PullResult()
        self.lookback = timedelta(minutes=settings.salesforce.lookback_minutes)
        self.fetched_deals: set[str] = set()
        self.applier = Applier(
            self.mapping,
            settings.billing.default_currency,
            as_of,
            plausibility_limits(settings),
            partial(usage_mapping_of, settings),
        )
        self.changed_waiting = 0  # records whose waiting state or reason changed this run
        self.bulk_threshold = settings.salesforce.bulk_threshold
        self.since: dict[str, datetime | None] = {}
        self.ceiling: datetime | None = None  # the org's time when the first pages were read
        self.positions: dict[str, datetime | None] = {}  # the cursors, when the run began

    # -- queries ---------------------------------------------------------------------------
    def _soql(
        self,
        obj: str,
        fields: list[str],
        since: datetime | None,
        extra: str = "",
        *,
        ids: Sequence[str] = (),
        ordered: bool = True,
    ) -> str:
        """Changed records since ``since`` (or the records ``ids``), in SystemModstamp order
        unless ``ordered`` is off (Bulk queries, whose results come in no guaranteed order)."""
        columns = ", ".join(dict.fromkeys(["Id", "SystemModstamp", "IsDeleted", *fields]))
        conditions = [f"SystemModstamp >= {soql_datetime(since)}"] if since else []
        if ids:
            conditions.append(f"Id IN ({', '.join(repr(str(i)) for i in ids)})")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        order = " ORDER BY SystemModstamp, Id" if ordered else ""
        return f"SELECT {columns}{extra} FROM {obj}{where}{order}"

    def _deal_soql(
        self, since: datetime | None, *, ids: Sequence[str] = (), child: bool = True
    ) -> str:
        """Deals with their live line items (queryAll also returns deleted children); without
        ``child``, deals alone, unordered, for a Bulk query."""
        extra = ""
        if child:
            fields = ", ".join(dict.fromkeys(["Id", *self.mapping.query_fields("items")]))
            relationship = self.mapping.items.relationship
            extra = f", (SELECT {fields} FROM {relationship} WHERE IsDeleted = false)"
        contract = self.mapping.contract
        return self._soql(
            contract.object,
            self.mapping.query_fields("contract"),
            since,
            extra,
            ids=ids,
            ordered=child,
        )

    def _explain(self, error: CrmError, obj: str) -> CrmError:
        """Point an INVALID_FIELD answer at the mapping line that names the field."""
        if error.code == "INVALID_FIELD" and "'" in str(error):
            field_name = str(error).split("'")[1]
            where = self.loaded.where_field(obj, field_name)
            if where:
                return CrmError(
                    f"{where}: {obj} has no field {field_name} in this org ({error})",
                    code=error.code,
                    status=error.status,
                )
        return error

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> PullResult:
        """Read the first page of every object in one call (a Composite request: an unchanged
        org costs one call), then each object's further pages, objects in order."""
        customer, contract = self.mapping.customer.object, self.mapping.contract.object
        calls_before = self.client.calls
        read_through: datetime | None = None
        try:
            item_cursor, first = self._first_pages()
            if self._rewind_future_cursors():
                item_cursor, first = self._first_pages()
            # each first page is let go once read (one page of an object is held at a time)
            self._read(customer, first.pop(customer))
            self._read(contract, first.pop(contract))
            newest_item = self._changed_line_items(item_cursor, first.pop(LINE_ITEM, None))
            read_through = self._read_through(newest_item)
        except QuotaExhaustedError as error:
            self.result.stopped = str(error)
            log.warning("pull stopped: %s", error)
        finally:
            self.result.api_calls = self.client.calls - calls_before
            with transaction(self.factory) as session:
                if read_through is not None:  # every change the queries found is applied
                    for name in (customer, contract, LINE_ITEM):
                        staging.move_cursor(session, CURSOR_PREFIX + name, read_through)
                self._save_usage(session)
        with transaction(self.factory) as session:
            self._retry_quarantined(session)
            self._count_waiting(session)
        return self.result

    def _first_pages(self) -> tuple[datetime | None, dict[str, dict[str, Any]]]:
        """The line items' cursor and the first page of each object's changes since its cursor
        (one Composite call); notes the org's time of the answer."""
        customer, contract = self.mapping.customer.object, self.mapping.contract.object
        with transaction(self.factory) as session:
            self.positions = staging.cursors(session, CURSOR_PREFIX)
        item_cursor = self.positions.get(LINE_ITEM)
        self.since = {
            name: None if position is None else position - self.lookback
            for name in (customer, contract)
            for position in [self.positions.get(name)]
        }
        queries = {
            customer: self._soql(
                customer, self.mapping.query_fields("customer"), self.since[customer]
            ),
            contract: self._deal_soql(self.since[contract]),
        }
        if item_cursor is not None:
            queries[LINE_ITEM] = self._soql(
                LINE_ITEM, ["OpportunityId"], item_cursor - self.lookback
            )
        try:
            first = self.client.first_pages(queries, include_deleted=True)
        except CrmError as error:
            raise self._explain(error, _object_of(error, queries)) from None
        self.ceiling = self.client.org_now()
        return item_cursor, first

    def _rewind_future_cursors(self) -> bool:
        """Put cursors that stand past the org's time back to it; True when one was (its
        queries started too late and are asked again)."""
        assert self.ceiling is not None
        limit = self.ceiling + DATE_RESOLUTION
        if all(position is None or position < limit for position in self.positions.values()):
            return False
        with transaction(self.factory) as session:
            ahead = staging.rewind_cursors(session, CURSOR_PREFIX, limit, self.ceiling)
        for name, position in sorted(ahead.items()):
            log.warning(
                "cursor %s stood at %s, past the org's time %s; it reads from there again",
                name,
                position.isoformat(),
                self.ceiling.isoformat(),
            )
        return bool(ahead)

    def _read_through(self, newest: datetime | None) -> datetime | None:
        """Where the cursors stand once every change the queries found is applied: the org's
        time when the queries were answered (else ``newest``, capped). Everything stamped a
        lookback before it was committed when the queries ran, and was read: the next pull's
        window starts a lookback before this pull, not before the newest change, so a quiet
        org whose last changes were a burst (the write-back touches every record it shows)
        is not read again at every run."""
        return self.ceiling if self.ceiling is not None else self._capped(newest)

    def _capped(self, moment: datetime | None) -> datetime | None:
        """``moment``, or the org's time when a record was stamped after it. The ``Date``
        header counts whole seconds: a stamp within its second is the org's present."""
        if moment is None or self.ceiling is None or moment < self.ceiling + DATE_RESOLUTION:
            return moment
        log.warning(
            "a record is stamped %s, after the org's time %s (a clock-skewed org or data "
            "loaded with future stamps): the cursor stops at the org's time",
            moment.isoformat(),
            self.ceiling.isoformat(),
        )
        return self.ceiling

    def _read(self, obj: str, first: dict[str, Any]) -> None:
        bulk = not first["done"] and int(first["totalSize"]) > self.bulk_threshold
        pages = None if bulk else self.client.pages_from(first, include_deleted=True)
        del first  # a page is held while it is applied only
        if pages is None:
            self._read_bulk(obj)
            return
        while True:
            try:
                records = next(pages)
            except StopIteration:
                return
            except CrmError as error:
                raise self._explain(error, obj) from None
            with transaction(self.factory) as session:
                self._page(session, obj, records)
                self._save_usage(session)
            if self.on_page:
                self.on_page(obj, len(records))
            del records  # before the next page is read

    def _read_bulk(self, obj: str) -> None:
        """Many changed rows: Bulk API 2.0 jobs, whose results come in no guaranteed order, so
        the cursor moves once every page is applied (a page read again is found unchanged).
        Each results page is applied in one transaction, read and applied ``APPLY_CHUNK``
        records at a time."""
        since = self.since[obj]
        if obj == self.mapping.customer.object:
            fields = self.mapping.query_fields("customer")
            soql = self._soql(obj, fields, since, ordered=False)
            pages: Iterator[Iterator[list[dict[str, Any]]]] = (
                _batches(nest(row) for row in page)
                for page in self.client.bulk_query(obj, soql, include_deleted=True)
            )
        else:
            pages = self._bulk_deals(since)
        newest: datetime | None = None
        for page in pages:
            count = 0
            with transaction(self.factory) as session:
                for records in page:
                    page_newest = self._page(session, obj, records, move=False)
                    newest = max(filter(None, (newest, page_newest)), default=None)
                    count += len(records)
                    del records
                    queue.write_marks(session)  # the write-back's marks of a batch, in hand
                self._save_usage(session)
            if self.on_page:
                self.on_page(obj, count)
        with transaction(self.factory) as session:
            staging.move_cursor(session, CURSOR_PREFIX + obj, self._capped(newest))

    def _bulk_deals(self, since: datetime | None) -> Iterator[Iterator[list[dict[str, Any]]]]:
        """Deals and their live line items from two Bulk jobs (Bulk queries take no child
        subqueries), joined here into the shape a REST query answers: the line items wait in
        a temporary file (:class:`ItemsByDeal`) until their deals' page is read."""
        relationship = self.mapping.items.relationship
        contract = self.mapping.contract
        read = ["Id", *self.mapping.query_fields("items")]
        item_fields = ", ".join(dict.fromkeys(["Id", "OpportunityId", *read]))
        where = f" AND Opportunity.SystemModstamp >= {soql_datetime(since)}" if since else ""
        item_soql = f"SELECT {item_fields} FROM {LINE_ITEM} WHERE IsDeleted = false{where}"
        joined_only = "OpportunityId" not in read  # a REST subquery would not hold it
        with ItemsByDeal() as items:
            for page in self.client.bulk_query(LINE_ITEM, item_soql):
                items.add((nest(row) for row in page), keep_deal=not joined_only)
            deal_soql = self._deal_soql(since, child=False)
            for page in self.client.bulk_query(contract.object, deal_soql, include_deleted=True):
                yield items.attach((nest(row) for row in page), relationship)

    def _page(
        self, session: Session, obj: str, records: list[dict[str, Any]], *, move: bool = True
    ) -> datetime | None:
        """Stage and apply a page; move the object's cursor to its newest record (unless
        ``move`` is off) and return that record's SystemModstamp."""
        self.result.fetched[obj] = self.result.fetched.get(obj, 0) + len(records)
        modstamps = [parse_modstamp(record.get("SystemModstamp")) for record in records]
        newest = max(filter(None, modstamps), default=None)
        if obj == self.mapping.contract.object and self.positions.get(LINE_ITEM) is not None:
            # for the line items changed without their deal (the first pull reads them all)
            self.fetched_deals.update(str(record["Id"]) for record in records)
        for start in range(0, len(records), APPLY_CHUNK):
            rows, unchanged = staging.stage(
                session,
                SYSTEM,
                obj,
                records[start : start + APPLY_CHUNK],
                modstamps=modstamps[start : start + APPLY_CHUNK],
                deleted=[
                    truthy(record.get("IsDeleted"))
                    for record in records[start : start + APPLY_CHUNK]
                ],
            )
            self.result.unchanged += unchanged
            self._settle(session, rows)
        if move:
            staging.move_cursor(session, CURSOR_PREFIX + obj, self._capped(newest))
        return newest

    def _changed_line_items(
        self, cursor: datetime | None, first: dict[str, Any] | None
    ) -> datetime | None:
        """Deals whose line items changed without the deal itself changing; the newest line
        item's stamp read (None on the first pull, which read every deal with its items)."""
        if cursor is None or first is None:
            return None
        stale: set[str] = set()
        newest = cursor
        for page in self.client.pages_from(first, include_deleted=True):
            for record in page:
                stale.add(str(record["OpportunityId"]))
                newest = max(newest, parse_modstamp(record["SystemModstamp"]) or newest)
        stale -= self.fetched_deals
        ordered = sorted(deal_id for deal_id in stale if SALESFORCE_ID.match(deal_id))
        for start in range(0, len(ordered), ID_CHUNK):
            soql = self._deal_soql(None, ids=ordered[start : start + ID_CHUNK])
            for records in self.client.query_pages(soql, include_deleted=True):
                with transaction(self.factory) as session:
                    # the deals' own cursor stays where their own query left it
                    self._page(session, self.mapping.contract.object, records, move=False)
                    self._save_usage(session)
        return newest

    # -- what becomes of the records -------------------------------------------------------
    def _settle(self, session: Session, rows: list[staging.Staged]) -> None:
        """Apply staged records (set-based: a failure quarantines its record alone) and store
        what became of them. A record that starts or stops waiting, or waits for another
        reason, is logged once."""
        if not rows:
            return
        before = [waiting_state(row) if row.stored else None for row in rows]
        outcomes = self.applier.apply(session, rows)
        moved: list[staging.Staged] = []
        for row, outcome, was in zip(rows, outcomes, before, strict=True):
            staging.settle(row, outcome.state, outcome.reason, session=session)
            self.result.count(outcome.state)
            if waiting_state(row) != was:
                self.changed_waiting += 1
                log_waiting(row)
                moved.append(row)
        staging.save_staged(session, SYSTEM, rows)
        webhook_events.emit_records(session, SYSTEM, moved)

    def _retry_quarantined(self, session: Session) -> None:
        """Accounts first, then deals (what a deal waits for may have arrived this run)."""
        rows = staging.waiting(session, SYSTEM, staging.QUARANTINED)
        for start in range(0, len(rows), APPLY_CHUNK):
            self._settle(session, rows[start : start + APPLY_CHUNK])

    def _count_waiting(self, session: Session) -> None:
        """Every record waiting, whenever it arrived, and one log line that counts them."""
        counts = staging.waiting_counts(session, SYSTEM)
        self.result.quarantined = counts.get(staging.QUARANTINED, 0)
        self.result.held = counts.get(staging.HELD, 0)
        fields = {
            "waiting": self.result.waiting,
            "quarantined": self.result.quarantined,
            "held": self.result.held,
            "changed": self.changed_waiting,
        }
        log.log(
            logging.WARNING if self.result.waiting else logging.INFO,
            "%s",
            json.dumps(fields),
            extra={"fields": fields},
        )

    def _save_usage(self, session: Session) -> None:
        budget = self.client.budget
        staging.save_usage(
            session, SYSTEM, budget.day, budget.spent, (budget.org_used, budget.org_limit)
        )


def waiting_state(row: staging.Staged) -> tuple[str, str | None] | None:
    """``(state, reason)`` of a staged record waiting for a fix or a review; None otherwise."""
    if row.state not in WAITING_STATES:
        return None
    return row.state, row.reason


def log_waiting(row: staging.Staged) -> None:
    """One structured line for a record that starts waiting or waits for another reason
    (warning), or no longer waits (info: its new state, no reason)."""
    waiting = row.state in WAITING_STATES
    fields = {
        "object": row.object,
        "record_id": row.record_id,
        "state": row.state,
        "reason": row.reason if waiting else None,
    }
    log.log(
        logging.WARNING if waiting else logging.INFO,
        "%s",
        json.dumps(fields),
        extra={"fields": fields},
    )


def _batches(records: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """``records`` in lists of ``APPLY_CHUNK``."""
    iterator = iter(records)
    while batch := list(itertools.islice(iterator, APPLY_CHUNK)):
        yield batch


class ItemsByDeal:
    """The line items of a Bulk job, by deal, in a temporary SQLite file (deleted when closed)
    rather than in memory: a pull of many deals holds one batch of them at a time."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("")  # a private temporary file
        self.db.execute("CREATE TABLE item (deal TEXT NOT NULL, record TEXT NOT NULL)")
        self.db.execute("CREATE INDEX item_deal ON item (deal)")

    def __enter__(self) -> ItemsByDeal:
        return self

    def __exit__(self, *_: object) -> None:
        self.db.close()

    def add(self, items: Iterable[dict[str, Any]], *, keep_deal: bool = True) -> None:
        """Keep these line items, in the order they come, by their ``OpportunityId`` (which
        each keeps only with ``keep_deal``: a REST subquery holds it only when mapped)."""

        def rows() -> Iterator[tuple[str, str]]:
            for item in items:
                deal = item["OpportunityId"] if keep_deal else item.pop("OpportunityId")
                yield str(deal), json.dumps(item)

        with self.db:
            self.db.executemany("INSERT INTO item (deal, record) VALUES (?, ?)", rows())

    def of(self, deals: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The line items of these deals, each deal's in the order they came."""
        found: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(deals), ID_CHUNK):
            chunk = deals[start : start + ID_CHUNK]
            rows = self.db.execute(
                f"SELECT deal, record FROM item WHERE deal IN ({', '.join('?' * len(chunk))})"
                " ORDER BY rowid",
                chunk,
            )
            for deal, record in rows:
                found.setdefault(deal, []).append(json.loads(record))
        return found

    def attach(
        self, deals: Iterable[dict[str, Any]], relationship: str
    ) -> Iterator[list[dict[str, Any]]]:
        """Deals in lists of ``APPLY_CHUNK``, each with its line items under ``relationship``
        as a REST query nests them (None without any)."""
        for records in _batches(deals):
            items = self.of(list(dict.fromkeys(str(record["Id"]) for record in records)))
            for record in records:
                lines = items.get(str(record["Id"]), [])
                record[relationship] = (
                    {"totalSize": len(lines), "done": True, "records": lines} if lines else None
                )
            yield records


def nest(row: dict[str, str]) -> dict[str, Any]:
    """A Bulk CSV row in the shape of a REST record: ``Product2.Name`` columns nested, empty
    text as null (:func:`staging.staged_form` then stages both alike)."""
    record: dict[str, Any] = {}
    for column, text in row.items():
        value: Any = text if text != "" else None
        *parents, name = column.split(".")
        holder = record
        for parent in parents:
            holder = holder.setdefault(parent, {})
        holder[name] = value
    return record


def _object_of(error: CrmError, queries: dict[str, str]) -> str:
    """The object whose query an error names (``query of Opportunity: ...``)."""
    for name in queries:
        if str(error).startswith(f"query of {name}:"):
            return name
    return next(iter(queries))


def load_budget(factory: sessionmaker[Session], settings: Settings, today: date) -> ApiBudget:
    with transaction(factory) as session:
        row = staging.usage(session, SYSTEM, today)
        return ApiBudget(
            settings.salesforce.quota_share, today, row.calls, row.org_used, row.org_limit
        )


def pull(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    as_of: date | None = None,
    client: SalesforceClient | None = None,
    mapping: LoadedMapping | None = None,
    on_page: Callable[[str, int], None] | None = None,
) -> PullResult:
    """One pull run with the configured Salesforce login and mapping."""
    today = datetime.now(UTC).date()
    mapping = mapping or load_mapping(mapping_path(settings.salesforce.mapping_file))
    client = client or SalesforceClient(settings.salesforce, load_budget(factory, settings, today))
    return Pull(factory, settings, client, mapping, as_of=as_of or today, on_page=on_page).run()
