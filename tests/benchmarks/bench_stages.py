"""Benchmark: each stage of the first sync cycle against the cheapest way of doing its work,
side by side in one run, as a ratio.

    python tests/benchmarks/bench_stages.py --deals 10000 [--as-of 2026-02-28]
        [--lookback-minutes 1] [--profile STAGE ... readback:STAGE ... idle:STAGE ...]

The org of the CRM-pull benchmark (N won deals of 3 line items each on N/10 accounts) is
generated once and kept under /tmp/connector-bench (not timed); ``connector sandbox serve``
serves a copy of it in its own process, so that the emulator's CPU is not counted here. In this
process, the first cycle runs stage by stage (``Runtime.run`` for each of ``STAGES``, as of
2026-02-28, on a new SQLite database and ledger). Each stage's CPU (``time.process_time`` of
this process), wall time, SQL statements and API calls are recorded, with every write it
committed: each INSERT, UPDATE and DELETE as the database driver executed it (statement and
parameter rows, from ``before_cursor_execute``; writes rolled back, to a savepoint or whole,
are left out), every HTTP request it sent, the ledger files it wrote (their final bytes) and the
payloads it hashed (``staging.payload_hash``: the pull's staged records, the write-back's
records).

Right after each stage (not timed as the stage), the same work is done the cheapest way, its
CPU timed the same way; the stage's limit is the sum:

a. SQL: the database as it was just before the stage (copied before the stage ran, with
   SQLite's backup) takes exactly the captured writes through the standard library's sqlite3:
   one ``executemany`` (or ``execute`` for a single row) per captured statement, all in one
   transaction, with the connector's pragmas (foreign keys, WAL, synchronous FULL, BEGIN
   IMMEDIATE);
b. HTTP: the same requests, in order, through a plain ``requests.Session`` to the emulator,
   each answer read and (JSON) decoded: reads as they were (a query's further pages follow the
   replay's own query locators), writes with the same bodies (upserts by external id and
   updates by Id: replaying them writes the same values again). The answers are not checked
   beyond their status;
c. files: the same bytes written to the same number of files (each flushed and fsynced);
d. hashing: ``json.dumps`` (sorted keys) and SHA-256 of the same payloads.

The replayed database must then hold exactly the rows of the stage's (every table compared, not
timed): the replay did the same writes. "rows written" is what the replay changed (SQLite's
``total_changes``). The limit leaves out, by design, what has no cheaper twin here: reading
and deciding (SELECTs, billing, rendering the ledger's text).

ratio = stage CPU ÷ limit CPU. The ratios are a measurement, not a test: each is printed with
whether it is within 3×. Two more cycles follow, as the scheduler would run them in one
process (their CPU, statements and API calls by stage), with the pulls' lookback at one minute
(``--lookback-minutes``) and that long a wait after the first cycle: "read back", whose pull
reads again the accounts and deals the first cycle's write-back updated (their stamps moved)
and finds them unchanged, and "nothing changed", in an org quiet for a lookback. The first
cycle must bill every deal, the others bill, post and write back nothing, the last read
nothing, and every replay must succeed; otherwise the benchmark exits 1 after printing its
figures. ``--profile`` runs cProfile over the named stages of the first cycle
(``readback:STAGE``, ``idle:STAGE``: of the others), only while each runs (their CPU then
includes the profiler's cost), and prints their top functions to stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import re
import shutil
import signal
import sqlite3
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import requests
from bench_cycle import serve, template
from peak_memory import peak_rss_mib
from sqlalchemy import Engine, event

from connector.db import staging
from connector.db.engine import DEFAULT_LOCK_TIMEOUT_SECONDS, make_engine, session_factory
from connector.db.migrate import upgrade
from connector.settings import load_settings
from connector.sync.cycle import STAGES, JobRun, Runtime

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 2, 28)  # the deals' first month (from 2026-02-01) is billed and closed
WITHIN = 3.0  # the ratio each stage should stay within
SUBSCRIPTION = "Billing_Subscription__c"
WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE"})
WRITE_IN_WITH = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
# A query's further pages: .../query/<locator id>-<position>, in URLs and in answers.
LOCATOR = re.compile(r"/query(?:All)?/(01g[0-9A-Za-z]+)-\d+")
LOCATOR_BYTES = re.compile(rb"/query(?:All)?/(01g[0-9A-Za-z]+)-\d+")


# -- what a stage did -------------------------------------------------------------------------


@dataclass
class Write:
    """One write as the driver executed it: ``rows`` is executemany's parameter list, or the
    single parameter row of an execute."""

    statement: str
    rows: Any
    many: bool


@dataclass
class Capture:
    """Every statement a stage sent, the writes it committed, its HTTP requests and hashes."""

    statements: int = 0
    verbs: Counter[str] = field(default_factory=Counter)
    writes: list[Write] = field(default_factory=list)
    rolled_back: int = 0  # writes undone (a savepoint rolled back, a transaction rolled back)
    requests: list[tuple[requests.PreparedRequest, int, bytes]] = field(default_factory=list)
    hashed: list[Any] = field(default_factory=list)

    @property
    def rows_sent(self) -> int:
        return sum(len(write.rows) if write.many else 1 for write in self.writes)


def verb(statement: str) -> str:
    return statement.lstrip().split(None, 1)[0].upper()


def is_write(statement: str) -> bool:
    first = verb(statement)
    return first in WRITES or (first == "WITH" and bool(WRITE_IN_WITH.search(statement)))


class Recorder:
    """Listens on an engine while a stage runs: counts its statements and keeps the writes of
    each connection's transaction until it commits (dropped when it, or the savepoint they were
    sent in, rolls back)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.capture = Capture()
        self.open: dict[Any, list[Write]] = {}
        self.savepoints: dict[Any, dict[str, int]] = {}
        self.listeners: list[tuple[str, Callable[..., Any]]] = [
            ("before_cursor_execute", self.executed),
            ("handle_error", self.failed),
            ("savepoint", self.savepoint),
            ("rollback_savepoint", self.rollback_savepoint),
            ("commit", self.commit),
            ("rollback", self.rollback),
        ]

    @contextmanager
    def listening(self) -> Iterator[Capture]:
        self.capture = Capture()
        for name, listener in self.listeners:
            event.listen(self.engine, name, listener)
        try:
            yield self.capture
        finally:
            for name, listener in self.listeners:
                event.remove(self.engine, name, listener)
            self.capture.rolled_back += sum(len(writes) for writes in self.open.values())
            self.open.clear()
            self.savepoints.clear()

    def executed(  # noqa: PLR0917 - SQLAlchemy's event signature
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        self.capture.statements += 1
        self.capture.verbs[verb(statement)] += 1
        if is_write(statement):
            self.open.setdefault(conn, []).append(Write(statement, parameters, many))

    def failed(self, context: Any) -> None:
        writes = self.open.get(context.connection)
        if writes and writes[-1].statement == context.statement:
            writes.pop()  # it wrote nothing

    def savepoint(self, conn: Any, name: str) -> None:
        self.savepoints.setdefault(conn, {})[name] = len(self.open.get(conn, []))

    def rollback_savepoint(self, conn: Any, name: str, context: Any) -> None:
        writes = self.open.get(conn, [])
        mark = self.savepoints.get(conn, {}).get(name, len(writes))
        self.capture.rolled_back += len(writes) - mark
        del writes[mark:]

    def commit(self, conn: Any) -> None:
        self.capture.writes.extend(self.open.pop(conn, []))
        self.savepoints.pop(conn, None)

    def rollback(self, conn: Any) -> None:
        self.capture.rolled_back += len(self.open.pop(conn, []))
        self.savepoints.pop(conn, None)


@contextmanager
def sending(capture: Capture) -> Iterator[None]:
    """Every HTTP request this process sends (requests.Session.send), with its answer's status
    and body, kept in ``capture``."""
    original = requests.Session.send

    def send(session: requests.Session, request: Any, **kwargs: Any) -> requests.Response:
        response = original(session, request, **kwargs)
        capture.requests.append((request, response.status_code, response.content))
        return response

    requests.Session.send = send  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        requests.Session.send = original  # type: ignore[method-assign]


@contextmanager
def hashing(capture: Capture) -> Iterator[None]:
    """Every payload hashed with ``staging.payload_hash`` (the pull's, the write-back's)."""
    original = staging.payload_hash

    def payload_hash(payload: dict[str, Any]) -> str:
        capture.hashed.append(payload)
        return original(payload)

    staging.payload_hash = payload_hash
    try:
        yield
    finally:
        staging.payload_hash = original


def signatures(folder: Path) -> dict[Path, tuple[int, int, int]]:
    found = {}
    for path in folder.rglob("*"):
        if path.is_file():
            stat = path.stat()
            found[path] = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return found


def written_files(folder: Path, before: dict[Path, tuple[int, int, int]]) -> dict[Path, bytes]:
    """The files under ``folder`` created or changed since ``before``: their final bytes."""
    return {
        path.relative_to(folder): path.read_bytes()
        for path, stamp in signatures(folder).items()
        if before.get(path) != stamp
    }


# -- the cheapest way ---------------------------------------------------------------------------


@dataclass
class Limit:
    sql: float = 0.0
    http: float = 0.0
    files: float = 0.0
    hash: float = 0.0
    rows_written: int = 0  # rows the replayed writes changed (sqlite3 total_changes)
    http_failed: int = 0  # replayed requests answered 400 or more
    problems: list[str] = field(default_factory=list)

    @property
    def cpu(self) -> float:
        return self.sql + self.http + self.files + self.hash


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of ``source`` (its WAL included), with SQLite's backup."""
    target.unlink(missing_ok=True)
    reading, writing = sqlite3.connect(source), sqlite3.connect(target)
    try:
        reading.backup(writing)
    finally:
        reading.close()
        writing.close()


def replay_sql(database: Path, writes: list[Write], limit: Limit) -> None:
    """The captured writes on ``database`` in one transaction, as the connector's engine opens
    it (connector/db/engine.py)."""
    connection = sqlite3.connect(database, timeout=DEFAULT_LOCK_TIMEOUT_SECONDS)
    connection.isolation_level = None
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute(f"PRAGMA busy_timeout={int(DEFAULT_LOCK_TIMEOUT_SECONDS * 1000)}")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    cursor = connection.cursor()
    changes = connection.total_changes
    began = time.process_time()
    try:
        cursor.execute("BEGIN IMMEDIATE")
        for write in writes:
            if write.many:
                cursor.executemany(write.statement, write.rows)
            else:
                cursor.execute(write.statement, write.rows)
                cursor.fetchall()  # a RETURNING clause's rows
        cursor.execute("COMMIT")
    except sqlite3.Error as error:
        limit.problems.append(f"SQL replay: {error}")
    finally:
        limit.sql = time.process_time() - began
        limit.rows_written = connection.total_changes - changes
        connection.close()


def differences(database: Path, replayed: Path) -> list[str]:
    """The tables whose rows differ between the two databases (not timed)."""
    found = []
    with sqlite3.connect(database) as live, sqlite3.connect(replayed) as copy:
        names = [
            name for (name,) in live.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for name in names:
            query = f'SELECT * FROM "{name}" ORDER BY 1'  # every table's first column is its key
            if live.execute(query).fetchall() != copy.execute(query).fetchall():
                found.append(name)
    live.close()
    copy.close()
    return found


def replay_http(
    calls: list[tuple[requests.PreparedRequest, int, bytes]], ca_file: str, limit: Limit
) -> None:
    """The same requests through a plain session; a query's further pages follow the locators
    of the replay's own answers (the emulator's locators last while a query is being read)."""
    # The locators each original answer gave, in order (read before the timing starts).
    given = [LOCATOR_BYTES.findall(content) for _, _, content in calls]
    session = requests.Session()
    session.verify = ca_file
    session.trust_env = False  # else REQUESTS_CA_BUNDLE would replace the emulator's CA
    locators: dict[str, str] = {}
    began = time.process_time()
    try:
        for (request, _, _), old in zip(calls, given, strict=True):
            url = request.url or ""
            if locators:
                url = LOCATOR.sub(lambda m: m[0].replace(m[1], locators.get(m[1], m[1])), url)
            response = session.request(
                request.method or "GET", url, data=request.body, headers=dict(request.headers)
            )
            content = response.content
            if response.status_code >= 400:
                limit.http_failed += 1
                continue
            if "json" in response.headers.get("Content-Type", "") and content:
                json.loads(content)
            if old:
                new = LOCATOR_BYTES.findall(content)
                if len(new) != len(old):
                    limit.problems.append(f"HTTP replay: {request.method} {url} paged otherwise")
                locators.update(
                    zip((o.decode() for o in old), (n.decode() for n in new), strict=False)
                )
    finally:
        limit.http = time.process_time() - began
        session.close()
    if limit.http_failed:
        limit.problems.append(f"HTTP replay: {limit.http_failed} of {len(calls)} requests failed")


def replay_files(files: dict[Path, bytes], folder: Path, limit: Limit) -> None:
    """The same bytes, to as many files under ``folder`` (folders made before the timing)."""
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
    began = time.process_time()
    for name, content in files.items():
        with open(folder / name, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    limit.files = time.process_time() - began


def replay_hashes(payloads: list[Any], limit: Limit) -> None:
    began = time.process_time()
    for payload in payloads:
        hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    limit.hash = time.process_time() - began


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Measured:
    stage: str
    cpu: float
    wall: float
    api_calls: int
    capture: Capture
    run: JobRun
    limit: Limit | None = None
    files: int = 0
    file_bytes: int = 0
    writes: int = 0
    rows_sent: int = 0
    http_requests: int = 0
    hashed: int = 0

    @property
    def ratio(self) -> float | None:
        if self.limit is None or self.limit.cpu <= 0:
            return None
        return self.cpu / self.limit.cpu

    def to_dict(self) -> dict[str, Any]:
        capture = self.capture
        figures: dict[str, Any] = {
            "cpu_seconds": round(self.cpu, 3),
            "wall_seconds": round(self.wall, 3),
            "statements": capture.statements,
            "by_verb": dict(capture.verbs.most_common()),
            "writes": self.writes,
            "rows_sent": self.rows_sent,
            "rolled_back_writes": capture.rolled_back,
            "api_calls": self.api_calls,
            "http_requests": self.http_requests,
            "hashed": self.hashed,
            "files_written": self.files,
            "file_bytes": self.file_bytes,
            "error": self.run.error,
            "result": self.run.summary(),
        }
        if self.limit is not None:
            limit = self.limit
            figures["rows_written"] = limit.rows_written
            figures["limit"] = {
                "cpu_seconds": round(limit.cpu, 3),
                "sql": round(limit.sql, 3),
                "http": round(limit.http, 3),
                "files": round(limit.files, 3),
                "hash": round(limit.hash, 3),
                "problems": limit.problems,
            }
            ratio = self.ratio
            figures["ratio"] = None if ratio is None else round(ratio, 2)
        return figures


class Bench:
    def __init__(self, work: Path, info: dict[str, Any], profile: set[str], lookback: int) -> None:
        self.work = work
        self.info = info
        self.profile = profile
        self.database = work / "billing.db"
        self.ledger = work / "ledger"
        self.ledger.mkdir()
        url = f"sqlite:///{self.database}"
        self.settings = load_settings(
            None,
            database_url=url,
            salesforce={
                "instance_url": info["instance_url"],
                "session_id": info["session_id"],
                "ca_file": info["ca_file"],
                "mapping_file": str(ROOT / "mappings" / "salesforce.yaml"),
                "lookback_minutes": lookback,
            },
            accounting={"mapping_file": str(ROOT / "mappings" / "accounting.yaml")},
            ledger={"path": self.ledger / "ledger.beancount"},
            documents={"render": False},  # rendering: bench_documents.py
        )
        self.engine = make_engine(url)
        upgrade(self.engine)
        self.recorder = Recorder(self.engine)
        self.profiles: dict[str, str] = {}

    def cycle(self, as_of: date, *, limits: bool, prefix: str = "") -> list[Measured]:
        """The stages of one cycle; ``limits``: each followed by its cheapest way (the first
        cycle), else not (the others, named in ``profile`` with their ``prefix``)."""
        runtime = Runtime(session_factory(self.engine), self.settings)
        return [
            self.stage(runtime, stage, as_of, limits=limits, named=prefix + stage)
            for stage in STAGES
        ]

    def stage(
        self, runtime: Runtime, stage: str, as_of: date, *, limits: bool, named: str
    ) -> Measured:
        before = self.work / "before.db"
        if limits:  # not timed
            copy_database(self.database, before)
        files_before = signatures(self.ledger)
        profiler = cProfile.Profile() if named in self.profile else None
        with self.recorder.listening() as capture, sending(capture), hashing(capture):
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            run = runtime.run(stage, as_of)
            if profiler is not None:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        files = written_files(self.ledger, files_before)
        measured = Measured(stage, cpu, wall, run.api_calls, capture, run)
        measured.files, measured.file_bytes = len(files), sum(map(len, files.values()))
        measured.writes, measured.rows_sent = len(capture.writes), capture.rows_sent
        measured.http_requests, measured.hashed = len(capture.requests), len(capture.hashed)
        if profiler is not None:
            self.profiles[named] = top_functions(profiler)
        if limits:
            limit = Limit()
            replay_sql(before, capture.writes, limit)
            limit.problems += [
                f"SQL replay: {table} differs from the stage's"
                for table in differences(self.database, before)
            ]
            replay_http(capture.requests, self.info["ca_file"], limit)
            scratch = self.work / "files" / stage
            replay_files(files, scratch, limit)
            replay_hashes(capture.hashed, limit)
            measured.limit = limit
            shutil.rmtree(scratch, ignore_errors=True)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{before}{suffix}").unlink(missing_ok=True)
        # What was captured is large (the answers' bodies, the rows); its counts are kept.
        capture.requests.clear()
        capture.hashed.clear()
        capture.writes.clear()
        return measured


def top_functions(profiler: cProfile.Profile, count: int = 25) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    for order in ("cumulative", "tottime"):
        out.write(f"--- top {count} by {order}\n")
        stats.sort_stats(order).print_stats(count)
    text = out.getvalue()
    for folder in (sysconfig.get_path("purelib"), sysconfig.get_path("stdlib"), str(ROOT)):
        text = text.replace(folder + os.sep, "")  # paths as the package or repository names them
    return text


def run(deals: int, as_of: date, profile: set[str], lookback: int) -> dict[str, Any]:
    org = template(deals)
    work = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    try:
        shutil.copy(org, work / "org.db")
        info_file = work / "info.json"
        server = serve(work / "org.db", info_file)
        try:
            bench = Bench(work, json.loads(info_file.read_text()), profile, lookback)
            first = bench.cycle(as_of, limits=True)
            time.sleep(lookback * 60 + 1)  # the write-back's updates are a lookback old
            read_back = bench.cycle(as_of, limits=False, prefix="readback:")
            idle = bench.cycle(as_of, limits=False, prefix="idle:")
            bench.engine.dispose()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        for stage, text in bench.profiles.items():
            print(f"=== cProfile of {stage} ({deals} deals)\n{text}", file=sys.stderr)
        return {
            "deals": deals,
            "line_items": deals * 3,
            "accounts": max(deals // 10, 1),
            "as_of": as_of.isoformat(),
            "profiled": sorted(profile),
            "first_cycle": {m.stage: m.to_dict() for m in first},
            "read_back": {m.stage: m.to_dict() for m in read_back},
            "nothing_changed": {m.stage: m.to_dict() for m in idle},
            "totals": totals(first, read_back, idle),
            "peak_rss_mb": round(peak_rss_mib()),  # this process's: the stages and replays
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _cycle_totals(cycle: list[Measured]) -> dict[str, Any]:
    return {
        "cpu_seconds": round(sum(m.cpu for m in cycle), 3),
        "wall_seconds": round(sum(m.wall for m in cycle), 3),
        "statements": sum(m.capture.statements for m in cycle),
        "api_calls": sum(m.api_calls for m in cycle),
    }


def totals(
    first: list[Measured], read_back: list[Measured], idle: list[Measured]
) -> dict[str, Any]:
    limit = sum(m.limit.cpu for m in first if m.limit is not None)
    cpu = sum(m.cpu for m in first)
    return {
        "first_cycle": {
            "cpu_seconds": round(cpu, 3),
            "wall_seconds": round(sum(m.wall for m in first), 3),
            "statements": sum(m.capture.statements for m in first),
            "rows_written": sum(m.limit.rows_written for m in first if m.limit is not None),
            "api_calls": sum(m.api_calls for m in first),
            "limit_cpu_seconds": round(limit, 3),
            "ratio": round(cpu / limit, 2) if limit > 0 else None,
        },
        "read_back": _cycle_totals(read_back),
        "nothing_changed": _cycle_totals(idle),
    }


# -- the report ---------------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    first, total = report["first_cycle"], report["totals"]
    header = (
        f"{'stage':<10}{'statements':>11}{'writes':>8}{'rows written':>13}{'API calls':>10}"
        f"{'CPU s':>8}{'wall s':>8}{'limit CPU s':>12}  {'(sql + http + files + hash)':<30}"
        f"{'ratio':>7}"
    )
    lines = [
        f"stages of the first cycle: {report['deals']} won deals ({report['line_items']} line "
        f"items, {report['accounts']} accounts), as of {report['as_of']}"
        + (f"; cProfile on {', '.join(report['profiled'])}" if report["profiled"] else ""),
        header,
    ]
    for stage in STAGES:
        figures = first[stage]
        limit = figures["limit"]
        parts = f"({limit['sql']:.2f} + {limit['http']:.2f} + {limit['files']:.2f} + "
        parts += f"{limit['hash']:.2f})"
        ratio = figures["ratio"]
        shown = "-" if ratio is None else f"{ratio:.1f}x"
        verdict = "" if ratio is None else ("  within 3x" if ratio <= WITHIN else "  OVER 3x")
        lines.append(
            f"{stage:<10}{figures['statements']:>11,}{figures['writes']:>8,}"
            f"{figures['rows_written']:>13,}{figures['api_calls']:>10,}"
            f"{figures['cpu_seconds']:>8.2f}{figures['wall_seconds']:>8.2f}"
            f"{limit['cpu_seconds']:>12.2f}  {parts:<30}{shown:>7}{verdict}"
        )
    cycle = total["first_cycle"]
    ratio = cycle["ratio"]
    lines.append(
        f"{'total':<10}{cycle['statements']:>11,}{sum(first[s]['writes'] for s in STAGES):>8,}"
        f"{cycle['rows_written']:>13,}{cycle['api_calls']:>10,}{cycle['cpu_seconds']:>8.2f}"
        f"{cycle['wall_seconds']:>8.2f}{cycle['limit_cpu_seconds']:>12.2f}  {'':<30}"
        + ("-" if ratio is None else f"{ratio:.1f}x").rjust(7)
    )
    for title, name in (("read back", "read_back"), ("nothing changed", "nothing_changed")):
        lines.append("")
        lines.append(f"{title:<17}{'stage':<10}{'statements':>11}{'API calls':>10}{'CPU s':>8}")
        for stage in STAGES:
            figures = report[name][stage]
            lines.append(
                f"{'':<17}{stage:<10}{figures['statements']:>11,}{figures['api_calls']:>10,}"
                f"{figures['cpu_seconds']:>8.2f}"
            )
        cycle = total[name]
        lines.append(
            f"{'':<17}{'total':<10}{cycle['statements']:>11,}{cycle['api_calls']:>10,}"
            f"{cycle['cpu_seconds']:>8.2f}"
        )
    lines.append(f"peak RSS of the benchmark's process: {report['peak_rss_mb']} MB")
    return "\n".join(lines)


def checks(report: dict[str, Any]) -> list[str]:
    """What went wrong: the first cycle bills and writes back every deal, the replays succeed,
    the second cycle finds nothing to bill, post or write back."""
    deals = report["deals"]
    first, read_back, idle = (
        report["first_cycle"],
        report["read_back"],
        report["nothing_changed"],
    )
    problems = [
        f"{name} {stage}: {figures['error']}"
        for name, cycle in (
            ("first cycle", first),
            ("read back", read_back),
            ("nothing changed", idle),
        )
        for stage, figures in cycle.items()
        if figures["error"]
    ]
    problems += [
        f"first cycle {stage}: {problem}"
        for stage, figures in first.items()
        for problem in figures["limit"]["problems"]
    ]

    def result(cycle: dict[str, Any], stage: str) -> dict[str, Any]:
        return cycle[stage]["result"] or {}

    expected = {
        "first cycle quarantined": (result(first, "pull").get("quarantined"), 0),
        "first cycle held": (result(first, "pull").get("held"), 0),
        "first cycle subscriptions billed": (result(first, "bill").get("subscriptions"), deals),
        "first cycle billing failures": (result(first, "bill").get("failed"), {}),
        "first cycle entries parked": (result(first, "push").get("parked"), {}),
        "first cycle subscriptions written back": (
            result(first, "writeback").get("sent", {}).get(SUBSCRIPTION),
            deals,
        ),
        "first cycle write-back failures": (result(first, "writeback").get("failed"), {}),
        "read back records applied": (result(read_back, "pull").get("applied"), 0),
        "nothing changed records read": (
            sum(result(idle, "pull").get("fetched", {}).values()),
            0,
        ),
    }
    for name, cycle in (("read back", read_back), ("nothing changed", idle)):
        expected |= {
            f"{name} subscriptions billed": (result(cycle, "bill").get("subscriptions"), 0),
            f"{name} invoices": (result(cycle, "bill").get("invoices"), 0),
            f"{name} revenue journals": (result(cycle, "revenue").get("journals"), 0),
            f"{name} entries posted": (result(cycle, "push").get("posted"), 0),
            f"{name} written back": (result(cycle, "writeback").get("sent"), {}),
        }
    problems += [
        f"{what}: {got}, expected {wanted}"
        for what, (got, wanted) in expected.items()
        if got != wanted
    ]
    if not result(first, "push").get("posted"):
        problems.append("first cycle posted nothing to the ledger")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=AS_OF,
        help=f"business date of both cycles (default {AS_OF}: the deals' first month)",
    )
    parser.add_argument(
        "--profile",
        nargs="+",
        choices=[
            *STAGES,
            *(f"{cycle}:{stage}" for cycle in ("readback", "idle") for stage in STAGES),
        ],
        default=[],
        metavar="STAGE",
        help="profile these stages of the first cycle, readback:STAGE and idle:STAGE of the "
        "others (cProfile; top functions on stderr)",
    )
    parser.add_argument(
        "--lookback-minutes",
        type=int,
        default=1,
        help="the pulls' lookback; the benchmark waits this long after the first cycle",
    )
    options = parser.parse_args()
    for key in [key for key in os.environ if key.startswith("CONNECTOR_")]:
        del os.environ[key]  # the settings are this benchmark's alone
    report = run(options.deals, options.as_of, set(options.profile), options.lookback_minutes)
    print(table(report))
    print(json.dumps(report, default=str))
    problems = checks(report)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
