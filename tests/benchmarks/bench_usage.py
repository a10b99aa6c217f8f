"""Benchmark: usage events in through ``connector usage import`` on SQLite, against the cheapest
way to store the same rows, and the import's memory as the file grows.

    python tests/benchmarks/bench_usage.py --events 1000000 [--customers 100] [--days 1]
        [--ids ordered|random] [--batch 20000] [--database-url postgresql://u:p@host/postgres]

A CSV file of N events is written (the four metrics of the shipped ``mappings/usage.yaml`` in
turn, the customers round-robin, the times spread evenly over the last ``--days`` days), then:

- ``connector usage import FILE --json`` runs in a process of its own on a new SQLite database
  (the customers only): its wall time gives events/s, its peak resident memory is its own;
- the baseline, in a process of its own: Python's sqlite3 reads the same file with
  ``csv.reader`` and inserts the same rows into the same ``usage_events`` table and their
  transaction ids into ``usage_event_ids`` (the unique key), formatted by string slicing, with
  one ``executemany`` per batch: no validation, no customer lookup, no duplicate check, no aggregate;
- the import again on a tenth of the file, to compare peak memory (flat: the same batches).

Printed: events/s of each, their ratio, their CPU times and that ratio (steadier than wall time
on a machine other work loads), the import's CPU time per event split between its own process
(which stores) and the second process it starts on large files (which reads and checks), the
hourly aggregates written per event, and the peaks (the import's: the larger of its two
processes', also given apart).
``--ids random`` makes transaction ids random (UUID 4) instead of time-ordered: SQLite's B-tree
then writes pages all over its unique index, for the baseline as for the import.

With ``--database-url`` (a PostgreSQL server whose user may create databases) each run has a
database of its own made on that server (dropped after), events partitioned by month; the
baseline there is psycopg's ``COPY`` of the file's rows into the same two tables, a transaction
per batch (the month's partition made beforehand): no validation, lookup, check or aggregate.

Exits 1 when the import does not accept every event, or when its peak memory on the whole file
is more than 1.5 times its peak on a tenth of it.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
from peak_memory import Measured, run_measured  # noqa: E402
from sqlalchemy import text  # noqa: E402

from connector.db import bulk, tables, usage_partitions  # noqa: E402
from connector.db.engine import (  # noqa: E402
    make_engine,
    normalize_url,
    session_factory,
    transaction,
)
from connector.db.migrate import upgrade  # noqa: E402

METRICS = ("api_calls", "storage_gb", "seats", "bandwidth_gb")
HEADER = "transaction_id,customer,metric,timestamp,gb,user_id,region,direction\n"
FLAT = 1.5  # peak memory on the whole file over that on a tenth, at most


def write_events(path: Path, count: int, customers: int, days: int, ids: str) -> None:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=days)
    span = days * 86400
    rng = random.Random(1)
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for n in range(count):
            at = start + timedelta(seconds=n * span // count)
            stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
            tx = (
                f"{stamp}-{n:010d}"
                if ids == "ordered"
                else str(uuid.UUID(int=rng.getrandbits(128), version=4))
            )
            customer = 1 + n % customers
            metric = METRICS[n % 4]
            if metric == "api_calls":
                extra = ",,,"
            elif metric == "storage_gb":
                extra = f"{n % 7 - 3},,,"
            elif metric == "seats":
                extra = f",u{n % 50},,"
            else:
                extra = f"{n % 10}.5,,{('eu', 'us', 'ap')[n % 3]},egress"
            out.write(f"{tx},{customer},{metric},{stamp},{extra}\n")


def new_database(path: Path, customers: int) -> str:
    return with_customers(f"sqlite:///{path}", customers)


def with_customers(url: str, customers: int) -> str:
    """The database at ``url`` migrated, with the customers only."""
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    with transaction(session_factory(engine)) as session:
        bulk.bulk_insert(
            session,
            tables.table_of(tables.Customer),
            [
                {
                    "id": n,
                    "name": f"Customer {n}",
                    "country": "US",
                    "currency": "USD",
                    "tax_id": None,
                    "created_at": now,
                    "updated_at": now,
                    "region": None,
                    "address_street": None,
                    "address_city": None,
                    "address_state": None,
                    "address_postal_code": None,
                    "language": None,
                    "billing_email": None,
                }
                for n in range(1, customers + 1)
            ],
        )
    engine.dispose()
    return url


def baseline(database: Path, events: Path, batch: int) -> None:
    """The cheapest way: the file's rows into usage_events, one executemany per batch."""
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    received = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    statement = (
        "INSERT INTO usage_events (transaction_id, customer_id, metric, occurred_at, "
        "properties, received_at) VALUES (?, ?, ?, ?, ?, ?)"
    )
    keys = "INSERT INTO usage_event_ids (transaction_id, occurred_at) VALUES (?, ?)"
    names = HEADER.strip().split(",")[4:]
    with events.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = []
        for row in reader:
            properties = json.dumps({k: v for k, v in zip(names, row[4:], strict=True) if v})
            stamp = row[3]
            rows.append(
                (
                    row[0],
                    int(row[1]),
                    row[2],
                    f"{stamp[:10]} {stamp[11:19]}.000000",
                    properties,
                    received,
                )
            )
            if len(rows) >= batch:
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(keys, [(row[0], row[3]) for row in rows])
                connection.executemany(statement, rows)
                connection.execute("COMMIT")
                rows = []
        if rows:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(keys, [(row[0], row[3]) for row in rows])
            connection.executemany(statement, rows)
            connection.execute("COMMIT")
    connection.close()


# Runs ``python -m connector ARGS...`` and, at its exit, writes to REPORT the CPU time of the
# import's own process and that of the processes it waited for (the second process that reads
# and checks the file), and their peak resident memory.
SPLIT = """
import atexit, json, resource, runpy, sys
report = sys.argv[1]
def measured():
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open(report, "w") as out:
        json.dump({"main_cpu_s": own.ru_utime + own.ru_stime,
                   "worker_cpu_s": children.ru_utime + children.ru_stime,
                   "main_peak_kib": peak, "worker_peak_kib": children.ru_maxrss}, out)
atexit.register(measured)
sys.argv = ["connector", *sys.argv[2:]]
runpy.run_module("connector", run_name="__main__", alter_sys=True)
"""


def run_import(
    folder: Path, events: Path, customers: int, batch: int, server: str | None = None
) -> tuple[Measured, dict, int, dict]:
    database = folder / f"import-{events.stem}.db"
    if server is not None:
        return on_postgresql(server, f"import_{events.stem}", customers, events, batch)
    url = new_database(database, customers)
    measured, summary, split = cli_import(url, events, batch, folder / f"split-{events.stem}.json")
    hourly = sqlite3.connect(database).execute("SELECT count(*) FROM usage_hourly").fetchone()[0]
    return measured, summary, hourly, split


def cli_import(url: str, events: Path, batch: int, split: Path) -> tuple[Measured, dict, dict]:
    """``connector usage import EVENTS --json`` into ``url`` in a process of its own: how it
    was measured, the summary it printed, and its CPU time split by process (``SPLIT``)."""
    env = {**os.environ, "CONNECTOR_DATABASE_URL": url, "CONNECTOR_USAGE__BATCH_SIZE": str(batch)}
    with tempfile.TemporaryFile() as out:
        measured = run_measured(
            [sys.executable, "-c", SPLIT, str(split), "usage", "import", str(events), "--json"],
            stdout=out,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
        )
        out.seek(0)
        summary = json.loads(out.read() or b"{}")
    return measured, summary, json.loads(split.read_text())


# PostgreSQL (--database-url): a database of the server's per run, made and dropped here.


def postgres_database(server: str, name: str, customers: int) -> str:
    target = f"bench_usage_{os.getpid()}_{name}"
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{target}"'))
    admin.dispose()
    url = normalize_url(server).set(database=target).render_as_string(hide_password=False)
    return with_customers(url, customers)


def drop_postgres_database(server: str, url: str) -> None:
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        name = normalize_url(url).database
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def on_postgresql(
    server: str, name: str, customers: int, events: Path, batch: int
) -> tuple[Measured, dict, int, dict]:
    """``connector usage import`` into a new database of ``server``."""
    url = postgres_database(server, name, customers)
    try:
        measured, summary, split = cli_import(
            url, events, batch, events.with_name(f"split-{name}.json")
        )
        engine = make_engine(url)
        with engine.connect() as connection:
            hourly = connection.scalar(text("SELECT count(*) FROM usage_hourly")) or 0
        engine.dispose()
    finally:
        drop_postgres_database(server, url)
    return measured, summary, hourly, split


def postgres_baseline(url: str, events: Path, batch: int) -> None:
    """The cheapest way on PostgreSQL: the file's rows into usage_event_ids and usage_events
    (routed to their month's partition by the server), two COPYs per batch."""
    received = datetime.now(UTC)
    names = HEADER.strip().split(",")[4:]
    columns = "transaction_id, customer_id, metric, occurred_at, properties, received_at"
    dsn = normalize_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as connection, events.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        while rows := [
            (
                row[0],
                int(row[1]),
                row[2],
                f"{row[3][:10]} {row[3][11:19]}+00",
                json.dumps({k: v for k, v in zip(names, row[4:], strict=True) if v}),
                received,
            )
            for row in itertools.islice(reader, batch)
        ]:
            with connection.transaction(), connection.cursor() as cursor:
                with cursor.copy(
                    "COPY usage_event_ids (transaction_id, occurred_at) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row((row[0], row[3]))
                with cursor.copy(f"COPY usage_events ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)


def postgres_baseline_run(server: str, events: Path, customers: int, batch: int) -> Measured:
    """:func:`postgres_baseline` in a process of its own, on a new database (with the
    partitions of the file's days made beforehand)."""
    url = postgres_database(server, "baseline", customers)
    engine = make_engine(url)
    with events.open(encoding="utf-8") as handle:
        next(handle)
        first = handle.readline().split(",")[3]
    last = datetime.now(UTC)
    usage_partitions.ensure(engine, [datetime.fromisoformat(first), last])
    engine.dispose()
    try:
        return run_measured(
            [sys.executable, __file__, "--batch", str(batch), "--baseline-only", url, str(events)],
            cwd=ROOT,
        )
    finally:
        drop_postgres_database(server, url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--ids", choices=("ordered", "random"), default="ordered")
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument(
        "--database-url", help="a PostgreSQL server to run on (its user creates databases)"
    )
    parser.add_argument(
        "--baseline-only", nargs=2, metavar=("DATABASE", "EVENTS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.baseline_only and args.baseline_only[0].startswith("postgresql"):
        postgres_baseline(args.baseline_only[0], Path(args.baseline_only[1]), args.batch)
        return 0
    if args.baseline_only:
        baseline(Path(args.baseline_only[0]), Path(args.baseline_only[1]), args.batch)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-usage-") as name:
        folder = Path(name)
        events, tenth = folder / "events.csv", folder / "tenth.csv"
        began = time.perf_counter()
        write_events(events, args.events, args.customers, args.days, args.ids)
        write_events(tenth, args.events // 10, args.customers, args.days, args.ids)
        print(
            f"files written in {time.perf_counter() - began:.1f} s "
            f"({events.stat().st_size / 2**20:.0f} MiB)",
            flush=True,
        )

        server = args.database_url
        measured, summary, hourly, split = run_import(
            folder, events, args.customers, args.batch, server
        )
        seconds, peak = measured.seconds, measured.peak_rss_mib
        base_db = folder / "baseline.db"
        if server is not None:
            base = postgres_baseline_run(server, events, args.customers, args.batch)
        else:
            new_database(base_db, args.customers)
            base = run_measured(
                [
                    sys.executable,
                    __file__,
                    "--batch",
                    str(args.batch),
                    "--baseline-only",
                    str(base_db),
                    str(events),
                ],
                cwd=ROOT,
            )
        small, small_summary, _, _ = run_import(folder, tenth, args.customers, args.batch, server)
        small_peak = small.peak_rss_mib

    figures = {
        "events": args.events,
        "customers": args.customers,
        "days": args.days,
        "ids": args.ids,
        "database": "postgresql" if args.database_url else "sqlite",
        "import_events_per_s": round(args.events / seconds),
        "baseline_events_per_s": round(args.events / base.seconds),
        "import_over_baseline_time": round(seconds / base.seconds, 2),
        "import_cpu_s": round(measured.cpu_seconds, 1),
        "baseline_cpu_s": round(base.cpu_seconds, 1),
        "import_over_baseline_cpu": round(measured.cpu_seconds / base.cpu_seconds, 2),
        "import_main_cpu_us_per_event": round(split["main_cpu_s"] / args.events * 1e6, 2),
        "import_worker_cpu_us_per_event": round(split["worker_cpu_s"] / args.events * 1e6, 2),
        "baseline_cpu_us_per_event": round(base.cpu_seconds / args.events * 1e6, 2),
        "hourly_aggregates_per_event": round(hourly / args.events, 4),
        "peak_rss_mib": round(peak, 1),
        "main_peak_rss_mib": round(split["main_peak_kib"] / 1024, 1),
        "worker_peak_rss_mib": round(split["worker_peak_kib"] / 1024, 1),
        "peak_rss_mib_tenth": round(small_peak, 1),
        "baseline_peak_rss_mib": round(base.peak_rss_mib, 1),
    }
    print(json.dumps(figures), flush=True)
    if summary.get("accepted") != args.events or small_summary.get("accepted") != args.events // 10:
        print(f"not every event was imported: {summary} {small_summary}", file=sys.stderr)
        return 1
    if base.exit != 0:
        print(f"the baseline exited {base.exit}", file=sys.stderr)
        return 1
    if peak > FLAT * small_peak:
        print(f"memory is not flat: {peak:.1f} MiB against {small_peak:.1f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
