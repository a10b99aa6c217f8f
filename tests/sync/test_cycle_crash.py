"""Kill the whole sync cycle (SIGKILL) again and again, run it to completion, and compare with
cycles that were never interrupted: the same ledger, the same Salesforce records, the same
billing documents; nothing twice, nothing missing, no gap in the numbers.

Two worlds, each with its own sandbox org seeded with the same demo data (same record ids), its
own database and its own ledger. The reference runs ``connector sync --once`` once per as-of
date. The other runs it ``KILLS`` times per date, each run killed in one stage (every stage in
turn): at a random moment within the stage's duration in the reference run, or, for the push
and the write-back, just after their external effect (a ledger batch written, a call received
by the org) and before they record it; then once more to the end. Between the two dates
finance records two payments in both ledgers' main files.

Database ids are compared through natural keys (document numbers, Salesforce ids, payment
references): on PostgreSQL, a transaction a kill rolls back uses up sequence values.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from beancount import loader
from beancount.core import data
from sqlalchemy import Engine, Executable, create_engine, func, select, text

from connector.accounting.beancount_plugin import unique_document_ids
from connector.db import tables
from connector.db.engine import normalize_url
from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import running_sandbox
from sandbox.salesforce.values import parse_datetime

ROOT = Path(__file__).resolve().parents[2]
STAGES = (
    "pull",
    "bill",
    "revenue",
    "push",
    "payments",
    "dunning",
    "send",
    "webhooks",
    "writeback",
)
AS_OF_DATES = ("2026-01-31", "2026-03-31")
# per as-of date: one in each stage, and after the push's and the write-back's effect
KILLS = len(STAGES) + 2
BATCH_SIZE = 5  # subscriptions per billing transaction: a kill can land between batches
TAX_RATES = '{"JP": "10", "GB": "20", "DE": "19"}'
RECEIVABLE = "Assets:AccountsReceivable:"
VOLATILE = {"CreatedDate", "LastModifiedDate", "SystemModstamp"}
TIMEOUT = 120.0


@dataclass
class World:
    name: str
    directory: Path
    database_url: str
    sandbox: Sandbox
    engine: Engine = field(init=False)  # plain reads, never a write lock

    def __post_init__(self) -> None:
        self.engine = create_engine(normalize_url(self.database_url))

    @property
    def ledger(self) -> Path:
        return self.directory / "ledger.beancount"

    def command(self, as_of: str) -> list[str]:
        return [sys.executable, "-m", "connector", "sync", "--once", "--as-of", as_of, "--json"]

    def env(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
        return {
            **inherited,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "CONNECTOR_DATABASE_URL": self.database_url,
            "CONNECTOR_LOG_LEVEL": "WARNING",
            "CONNECTOR_LEDGER__PATH": str(self.ledger),
            "CONNECTOR_ACCOUNTING__MAPPING_FILE": str(ROOT / "mappings" / "accounting.yaml"),
            "CONNECTOR_BILLING__BATCH_SIZE": str(BATCH_SIZE),
            "CONNECTOR_TAX__RATES": TAX_RATES,
            "CONNECTOR_SALESFORCE__MAPPING_FILE": str(ROOT / "mappings" / "salesforce.yaml"),
            "CONNECTOR_SALESFORCE__INSTANCE_URL": self.sandbox.instance_url,
            "CONNECTOR_SALESFORCE__SESSION_ID": self.sandbox.session_id,
            "CONNECTOR_SALESFORCE__CA_FILE": str(self.sandbox.ca_file),
            "CONNECTOR_SALESFORCE__BACKOFF_INITIAL_SECONDS": "0.001",
        }

    def start(self, as_of: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.command(as_of),
            env=self.env(),
            cwd=self.directory,  # no config/connector.toml here
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def sync(self, as_of: str) -> tuple[dict[str, Any], dict[str, float]]:
        """One cycle to its end (the demo org's imperfect deals stay quarantined: exit 1),
        watched as :func:`kill_repeatedly` watches it: how long each stage runs from when it is
        seen to begin. Returns the cycle's JSON summary and those durations."""
        runs, calls = self.last_run(), self.sandbox.usage.used
        out, err = self.directory / "cycle.json", self.directory / "cycle.log"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                self.command(as_of),
                env=self.env(),
                cwd=self.directory,
                stdout=stdout,
                stderr=stderr,
            )
            begun: dict[str, float] = {}
            try:
                deadline = time.monotonic() + TIMEOUT
                while process.poll() is None and "end" not in begun:
                    assert time.monotonic() < deadline, "the cycle did not end"
                    now = time.monotonic()
                    for stage in [*STAGES, "end"][: _stages_begun(self, runs, calls)]:
                        begun.setdefault(stage, now)
                    time.sleep(0.002)
                process.wait(timeout=TIMEOUT)
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()
        assert process.returncode in (0, 1), err.read_text()
        result: dict[str, Any] = json.loads(out.read_text())
        assert result["errors"] == {}, result
        assert set(result["stages"]) == set(STAGES), result
        end = begun.get("end", time.monotonic())
        moments = [begun.get(stage, end) for stage in STAGES] + [end]
        return result, {stage: moments[i + 1] - moments[i] for i, stage in enumerate(STAGES)}

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]

    def last_run(self) -> int:
        return int(self.rows("SELECT COALESCE(MAX(id), 0) FROM job_runs")[0][0])

    def runs_after(self, run_id: int) -> int:
        return int(self.rows("SELECT COUNT(*) FROM job_runs WHERE id > :id", id=run_id)[0][0])


def _moment(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- natural keys -----------------------------------------------------------------------------
@dataclass
class Keys:
    """A world's database ids translated to what identifies the same thing in every world."""

    customers: dict[int, str]
    subscriptions: dict[int, str]
    products: dict[int, str]
    documents: dict[int, str]
    journals: dict[int, str]
    payments: dict[int, str]

    @classmethod
    def of(cls, world: World) -> Keys:
        def linked(entity: str) -> dict[int, str]:
            return dict(
                world.rows(
                    "SELECT entity_id, external_id FROM external_ids "
                    "WHERE system = 'salesforce' AND entity = :entity",
                    entity=entity,
                )
            )

        documents = {
            i: f"{kind}:{number}"
            for i, kind, number in world.rows("SELECT id, kind, number FROM documents")
        }
        return cls(
            customers=linked("customers"),
            subscriptions=linked("subscriptions"),
            products=dict(world.rows("SELECT id, code FROM products")),
            documents=documents,
            journals={
                i: f"{documents.get(doc)}:{start}:{end}"
                for i, doc, start, end in world.rows(
                    "SELECT id, document_id, period_start, period_end FROM revenue_journals"
                )
            },
            payments={
                i: f"{kind}:{reference}"
                for i, kind, reference in world.rows("SELECT id, kind, reference FROM payments")
            },
        )

    def account(self, name: str) -> str:
        """``Assets:AccountsReceivable:Acme-7`` names customer 7: name it by its Account id."""
        if not name.startswith(RECEIVABLE):
            return name
        stem, _, number = name.rpartition("-")
        return f"{stem}-{self.customers.get(int(number), 'customer ' + number)}"

    def document(self, document_type: str, document_id: str) -> str:
        number = int(document_id)
        table = (
            self.journals
            if document_type == "revenue"
            else self.payments
            if document_type in ("payment", "refund")
            else self.documents
        )
        return f"{document_type} {table.get(number, f'unknown id {number}')}"


# -- what each world ends with ----------------------------------------------------------------
def _units(posting: data.Posting) -> tuple[Decimal, str]:
    assert posting.units is not None and isinstance(posting.units.number, Decimal)
    return posting.units.number, posting.units.currency


def ledger_state(world: World, keys: Keys) -> Counter[tuple[Any, ...]]:
    """Every transaction and open directive, wherever it is, without file names and ids."""
    entries, errors, _ = loader.load_file(str(world.ledger))
    _, duplicates = unique_document_ids(entries, {})  # what connector ledger check looks for
    assert [*errors, *duplicates] == [], [error.message for error in [*errors, *duplicates]]
    found: Counter[tuple[Any, ...]] = Counter()
    for entry in entries:
        if isinstance(entry, data.Open):
            found["open", entry.date, keys.account(entry.account)] += 1
        elif isinstance(entry, data.Transaction):
            meta = {
                k: v
                for k, v in entry.meta.items()
                if k not in ("filename", "lineno") and not k.startswith("__")
            }
            if "document_id" in meta:
                meta["document_id"] = keys.document(meta["document_type"], meta["document_id"])
            postings = sorted((keys.account(p.account), *_units(p)) for p in entry.postings)
            found[
                "transaction",
                entry.date,
                entry.payee,
                entry.narration,
                tuple(sorted(meta.items())),
                tuple(sorted(entry.links)),
                tuple(postings),
            ] += 1
    return found


def salesforce_state(world: World, keys: Keys) -> dict[str, dict[str, dict[str, Any]]]:
    """Every record of every object, without the system timestamps; the connector's own
    objects keyed by their external id (their Id and auto-number depend on creation order),
    and a lookup to one of them (a Task's WhatId, a history row's ParentId) given as that
    key."""
    org = world.sandbox.org
    state: dict[str, dict[str, dict[str, Any]]] = {}
    keyed: dict[str, str] = {}  # Id -> "Object key" of the records keyed by external id
    with org.lock:
        for name, obj in org.schema.objects.items():
            external = next((f for f, s in obj.fields.items() if s.spec.external_id), None)
            cursor = org.db.execute(f'SELECT * FROM "{name}"')
            columns = [column[0] for column in cursor.description]
            records: dict[str, dict[str, Any]] = {}
            for values in cursor.fetchall():
                row = {c: v for c, v in zip(columns, values, strict=True) if c not in VOLATILE}
                if external is None:
                    key = str(row["Id"])
                else:
                    key = str(row.pop(external))
                    subscription = re.fullmatch(r"SUB-(\d+)", key)
                    if subscription:  # our id, which PostgreSQL's sequences may skip
                        key = "SUB " + keys.subscriptions.get(int(subscription[1]), key)
                    keyed[str(row.pop("Id"))] = f"{name} {key}"
                    row.pop("Name", None)  # a Task has none
                assert key not in records, f"{name} {key} twice"
                records[key] = {
                    c: keyed.get(v, v) if isinstance(v, str) else v for c, v in row.items()
                }
            state[name] = records
    return state


def _plain(value: Any) -> Any:
    """The same value from SQLite and PostgreSQL: dates as text, numbers as plain decimals."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return Decimal(str(value)).normalize()
    return value


def _natural(
    world: World, statement: Executable, **translate: Callable[[Any], Any]
) -> list[tuple[Any, ...]]:
    """The rows of ``statement``, the columns named in ``translate`` translated (ids to
    keys), the others made comparable across databases."""
    with world.engine.connect() as connection:
        result = connection.execute(statement)
        names = list(result.keys())
        rows = [
            tuple(
                translate.get(name, _plain)(value) for name, value in zip(names, row, strict=True)
            )
            for row in result
        ]
    return sorted(rows, key=repr)


def _columns(model: type[tables.Base], *skipped: str) -> list[Any]:
    return [column for column in model.__table__.c if column.name not in skipped]


def billing_state(world: World, keys: Keys) -> dict[str, list[tuple[Any, ...]]]:
    """Documents, their lines, payments and revenue journals, by natural keys; deliveries."""
    customer, document, product = keys.customers.get, keys.documents.get, keys.products.get
    delivery, outbox = tables.Delivery, tables.Outbox

    def amounts(value: dict[str, str]) -> tuple[tuple[Any, ...], ...]:
        """Keyed ``<product id>`` or ``<product id>:one_time``."""
        return tuple(
            sorted(
                (product(int(k.partition(":")[0])), k.partition(":")[2], _plain(Decimal(v)))
                for k, v in value.items()
            )
        )

    return {
        "documents": _natural(
            world,
            select(*_columns(tables.Document, "created_at")),
            id=document,
            customer_id=customer,
            subscription_id=keys.subscriptions.get,
            invoice_id=document,
        ),
        "lines": _natural(
            world,
            select(*_columns(tables.DocumentLine, "id", "charge_id", "subscription_item_id")),
            document_id=document,
            product_id=product,
            credited_line_id=lambda value: value is not None,
        ),
        "payments": _natural(
            world,
            select(*_columns(tables.Payment, "created_at")),
            id=keys.payments.get,
            customer_id=customer,
            invoice_id=document,
        ),
        "journals": _natural(
            world,
            select(*_columns(tables.RevenueJournal, "created_at")),
            id=keys.journals.get,
            document_id=document,
            amounts=amounts,
        ),
        "deliveries": _natural(
            world,
            select(delivery.target, delivery.state, func.count())
            .select_from(outbox)
            .outerjoin(delivery, delivery.outbox_id == outbox.id)
            .group_by(delivery.target, delivery.state),
        ),
    }


# -- killing ------------------------------------------------------------------------------------
def _wait(process: subprocess.Popen[bytes], reached: Callable[[], bool]) -> bool:
    """Poll until ``reached`` or the process ends; True when reached while it runs."""
    deadline = time.monotonic() + TIMEOUT
    while process.poll() is None:
        if reached():
            return True
        assert time.monotonic() < deadline, "the cycle neither progressed nor ended"
        time.sleep(0.002)
    return False


def _unrecorded(world: World) -> str:
    """Effects made outside the database but not recorded in it (the window every
    exactly-once mechanism is about): documents in the ledger that the outbox does not know as
    delivered; connector records in the org written after the write-back state last recorded
    them."""
    posted = set()
    for file in _batches(world):
        posted |= set(
            re.findall(r'document_type: "(\w+)"\n  document_id: "(\d+)"', file.read_text())
        )
    delivered = set(
        world.rows(
            "SELECT o.document_type, o.document_id FROM outbox o JOIN deliveries d "
            "ON d.outbox_id = o.id WHERE d.target = 'ledger' AND d.state = 'done'"
        )
    )
    unposted = posted - {(kind, str(number)) for kind, number in delivered}
    recorded = {
        (obj, key): _moment(at)
        for obj, key, at in world.rows(
            "SELECT object, key, updated_at FROM writeback_state WHERE sent_hash IS NOT NULL"
        )
    }
    written = 0
    with world.sandbox.org.lock:
        for obj, key_field in (
            ("Billing_Subscription__c", "Subscription_Id__c"),
            ("Billing_Invoice__c", "Document_Number__c"),
        ):
            for key, stamp in world.sandbox.org.db.execute(
                f'SELECT "{key_field}", "LastModifiedDate" FROM "{obj}"'
            ):
                at = recorded.get((obj, key))
                written += at is None or parse_datetime(stamp) > at
    notes = [f"{len(unposted)} posted"] if unposted else []
    notes += [f"{written} written back"] if written else []
    return f" ({' and '.join(notes)}, not recorded)" if notes else ""


def _stages_begun(world: World, runs: int, calls: int) -> int:
    """How many stages the run after job run ``runs`` has begun: none before its first call
    to the org (made with ``calls`` calls spent), then one more than it recorded (one more
    than there are once it recorded the last)."""
    if world.sandbox.usage.used <= calls:
        return 0
    return world.runs_after(runs) + 1


def _started(world: World, stage: str, runs: int) -> Callable[[], bool]:
    """Whether the run after job run ``runs`` has begun ``stage``."""
    calls, index = world.sandbox.usage.used, STAGES.index(stage)
    return lambda: _stages_begun(world, runs, calls) > index


def _batches(world: World) -> set[Path]:
    return set(world.ledger.with_name(world.ledger.stem + ".d").rglob("*.beancount"))


def _effect(world: World, stage: str) -> Callable[[], bool]:
    """Whether ``stage`` made its external effect since now: documents written to the ledger
    (push), a call received by the org (write-back)."""
    if stage == "push":
        before = _batches(world)
        return lambda: any("document_id" in f.read_text() for f in _batches(world) - before)
    calls = world.sandbox.usage.used
    return lambda: world.sandbox.usage.used > calls


def kill_repeatedly(
    world: World, as_of: str, seconds: dict[str, float], rng: random.Random
) -> list[str]:
    """Run the cycle ``KILLS`` times, each run killed in one stage, the stages in cycle order
    so that each still has work when its turn comes (see the module's description); returns
    where each kill landed."""
    moments = [(stage, True) for stage in ("push", "writeback")]
    moments += [(stage, False) for stage in STAGES]
    moments.sort(key=lambda moment: STAGES.index(moment[0]))
    landed = []
    for stage, after_effect in moments:
        runs = world.last_run()
        process = world.start(as_of)
        try:
            if _wait(process, _started(world, stage, runs)):
                if after_effect:
                    _wait(process, _effect(world, stage))
                else:
                    time.sleep(rng.uniform(0, max(seconds[stage], 0.002)))
        finally:
            killed = process.poll() is None
            if killed:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=TIMEOUT)
        done = world.runs_after(runs)
        where = STAGES[done] if done < len(STAGES) else "after the last stage"
        aim = f"{stage}{' effect' if after_effect else ''}"
        if killed:
            landed.append(f"{aim} -> {where}{_unrecorded(world)}")
        else:
            landed.append(f"{aim} -> not killed: the cycle ended first")
    assert len(landed) == KILLS
    return landed


def record_payments(world: World) -> None:
    """Finance records two bank transfers in the main file: INV-000001 whole, INV-000002
    half."""
    entries, errors, _ = loader.load_file(str(world.ledger))
    assert errors == []
    owed = {}
    for entry in entries:
        if isinstance(entry, data.Transaction) and entry.meta.get("document_type") == "invoice":
            for posting in entry.postings:
                if posting.account.startswith(RECEIVABLE):
                    owed[next(iter(entry.links))] = (posting.account, *_units(posting))
    payments = ""
    for number, share in (("INV-000001", Decimal(1)), ("INV-000002", Decimal("0.5"))):
        account, total, currency = owed[number]
        amount = (total * share).quantize(total)
        payments += (
            f'\n2026-02-10 * "Bank transfer" "Payment for {number}" ^{number}\n'
            f"  Assets:Bank:{currency}  {amount} {currency}\n"
            f"  {account}  {-amount} {currency}\n"
        )
    with world.ledger.open("a", encoding="utf-8") as handle:
        handle.write(payments)


def _worlds(
    stack: ExitStack, tmp_path: Path, sqlite_template: Path, database_url: str
) -> Iterator[World]:
    for name in ("reference", "crashed"):
        directory = tmp_path / name
        directory.mkdir()
        if name == "reference":
            shutil.copy(sqlite_template, directory / "connector.db")
            url = f"sqlite:///{directory / 'connector.db'}"
        else:
            url = database_url
        sandbox = stack.enter_context(running_sandbox(seed="demo"))
        world = World(name, directory, url, sandbox)
        stack.callback(world.engine.dispose)
        yield world


def test_killed_sync_cycles_end_exactly_like_uninterrupted_ones(
    database_url: str, sqlite_template: Path, tmp_path: Path
) -> None:
    began = time.monotonic()
    rng = random.Random(20261121)
    with ExitStack() as stack:
        reference, crashed = _worlds(stack, tmp_path, sqlite_template, database_url)
        for obj in ("Account", "Opportunity", "OpportunityLineItem"):
            ids = [
                world.sandbox.org.db.execute(f'SELECT Id FROM "{obj}" ORDER BY Id').fetchall()
                for world in (reference, crashed)
            ]
            assert ids[0] == ids[1], f"the demo seed gave the two orgs different {obj} ids"

        landed: dict[str, list[str]] = {}
        for number, as_of in enumerate(AS_OF_DATES):
            if number:  # between the cycles, finance records payments in the ledger
                record_payments(reference)
                record_payments(crashed)
            _, seconds = reference.sync(as_of)
            landed[as_of] = kill_repeatedly(crashed, as_of, seconds, rng)
            crashed.sync(as_of)  # no stage fails

        expected_keys, keys = Keys.of(reference), Keys.of(crashed)
        expected = (
            billing_state(reference, expected_keys),
            ledger_state(reference, expected_keys),
            salesforce_state(reference, expected_keys),
        )
        actual = (
            billing_state(crashed, keys),
            ledger_state(crashed, keys),
            salesforce_state(crashed, keys),
        )

    print(f"\n{time.monotonic() - began:.1f} s; the kills landed in:")
    for as_of, places in landed.items():
        print(f"  {as_of}: {'; '.join(places)}")
    for as_of, places in landed.items():
        assert sum("not killed" not in place for place in places) >= 1, as_of

    billing, ledger, salesforce = actual
    for table, rows in expected[0].items():
        assert billing[table] == rows, table
    assert billing["documents"], "nothing was billed"
    for kind, prefix in (("invoice", "INV-"), ("credit_note", "CN-")):
        numbers = sorted(row[2] for row in billing["documents"] if row[1] == kind)
        assert numbers == [f"{prefix}{n:06d}" for n in range(1, len(numbers) + 1)], kind
    assert ledger == expected[1]
    for obj, records in expected[2].items():
        assert salesforce[obj] == records, obj
    invoices = salesforce["Billing_Invoice__c"]
    assert len(invoices) == len(billing["documents"])
    assert any(row["Status__c"] == "Paid" for row in invoices.values())
