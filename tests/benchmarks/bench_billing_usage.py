"""Benchmark: the billing run with metered usage against the same run without it, on SQLite
or PostgreSQL.

    python tests/benchmarks/bench_billing_usage.py --customers 10000 --events 10000000
    python tests/benchmarks/bench_billing_usage.py --database-url postgresql://u:p@127.0.0.1/db

Three databases of N customers are generated once (not timed), each customer with one monthly
subscription from 2026-01-01 of a fixed fee (100.00 a month), billed for January by a run at
2026-01-01:

- *without usage*: the fee alone;
- *no events*: the fee, and two metered items: API calls (count, 0.001 each beyond 1,000
  free) and bandwidth (the sum of ``gb``, a line per region, 0.05 a GB), no usage reported;
- *with usage*: the same subscriptions, with E events of January stored through the real
  ingestion path (``ingest_batch``: the events, their deduplication and the hourly and daily
  aggregates), the customers round-robin.

On SQLite they are files in ``--workdir``; with ``--database-url`` (a PostgreSQL server whose
user may create databases), databases on that server, copied for each run with ``CREATE
DATABASE … TEMPLATE``. Either is kept for the next time, named by the schema's revision.

Then, each in a fresh process on a copy (on SQLite written to disk before the run starts), the
run at 2026-02-01: February's fees in advance,
and for the second January's usage in arrears, read from the daily aggregates (never the
events). Printed: the wall time of each, the ratio of the run with usage to the run without
(the issue's bound: 1.5) and to the run of the same subscriptions without events (what the
events cost, apart from pricing and invoicing the metered items), the SQL
statements of each, those reading the usage tables, the usage rows they returned, the
invoices and each one's peak memory.

Exits 1 unless both runs invoice every subscription once without a failure and the usage
billed is, to the cent and for every customer, what the generated events come to.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from peak_memory import peak_rss_mib  # noqa: E402
from sqlalchemy import event, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from connector.billing.metered import MeteredModel, MeteredPrice  # noqa: E402
from connector.billing.money import currency  # noqa: E402
from connector.billing.pricing import ChargeKind, PricingModel  # noqa: E402
from connector.db import catalog, tables  # noqa: E402
from connector.db.engine import make_engine, session_factory, transaction  # noqa: E402
from connector.db.migrate import head_revision, upgrade  # noqa: E402
from connector.settings import Settings, load_settings  # noqa: E402
from connector.sync import billing_usage  # noqa: E402
from connector.sync.billing_run import run_billing  # noqa: E402
from connector.sync.usage_events import Limits, ingest_batch  # noqa: E402
from connector.sync.usage_mapping import load_usage_mapping  # noqa: E402

JAN, FEB = date(2026, 1, 1), date(2026, 2, 1)
CHUNK = 5_000
REGIONS = ("eu", "us", "ap")
MAPPING = """\
metrics:
  - code: api_calls
    name: API calls
    aggregation: count
  - code: bandwidth_gb
    name: Bandwidth (GB)
    aggregation: sum
    field: gb
    group_by: region
"""
USD = currency("USD")
CALL_RATE, FREE_CALLS, GB_RATE = Decimal("0.001"), Decimal(1000), Decimal("0.05")
BOUND = 1.5


def settings_of(url: str, workdir: Path) -> Settings:
    mapping = workdir / "usage.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    return load_settings(database_url=url, usage={"mapping_file": str(mapping)})


def the_event(n: int, customers: int, events: int) -> dict[str, Any]:
    """Event n of E: every other one an API call, the others bandwidth, over January."""
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n * (31 * 86400) // events)
    customer = 1 + n % customers
    if n % 2 == 0:
        return {
            "transaction_id": f"e{n}",
            "customer": str(customer),
            "metric": "api_calls",
            "timestamp": at.isoformat(),
            "properties": {},
        }
    return {
        "transaction_id": f"e{n}",
        "customer": str(customer),
        "metric": "bandwidth_gb",
        "timestamp": at.isoformat(),
        "properties": {"gb": f"{n % 7}.25", "region": REGIONS[n % 3]},
    }


def expected_usage(customers: int, events: int) -> dict[int, Decimal]:
    """What each customer's January usage comes to, from the events themselves."""
    calls: dict[int, int] = defaultdict(int)
    gigabytes: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for n in range(events):
        found = the_event(n, customers, events)
        customer = int(found["customer"])
        if found["metric"] == "api_calls":
            calls[customer] += 1
        else:
            props = found["properties"]
            gigabytes[(customer, props["region"])] += Decimal(props["gb"])
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for customer, count in calls.items():
        billable = max(Decimal(count) - FREE_CALLS, Decimal(0))
        totals[customer] += (billable * CALL_RATE).quantize(USD.quantum, ROUND_HALF_UP)
    for (customer, _), amount in gigabytes.items():
        totals[customer] += (amount * GB_RATE).quantize(USD.quantum, ROUND_HALF_UP)
    return {customer: total for customer, total in totals.items() if total}


def generate(url: str, workdir: Path, customers: int, events: int, metered: bool) -> None:
    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    now = datetime.now(UTC)
    with transaction(factory) as session:
        fee = catalog.upsert_price(
            session,
            catalog.upsert_product(session, "PLAN", "Plan"),
            currency="USD",
            kind=ChargeKind.RECURRING,
            model=PricingModel.PER_UNIT,
            unit_amount=Decimal("100.00"),
        )
        prices = [(fee.id, fee.product_id, "recurring")]
        if metered:
            for code, terms in (
                (
                    "API",
                    MeteredPrice(
                        "api_calls",
                        USD,
                        MeteredModel.PER_UNIT,
                        CALL_RATE,
                        free_units=FREE_CALLS,
                    ),
                ),
                ("BANDWIDTH", MeteredPrice("bandwidth_gb", USD, MeteredModel.PER_UNIT, GB_RATE)),
            ):
                price = catalog.upsert_price(
                    session,
                    catalog.upsert_product(session, code, code.title()),
                    currency="USD",
                    kind=ChargeKind.METERED,
                    model=PricingModel.PER_UNIT,
                    metered=terms,
                )
                prices.append((price.id, price.product_id, "metered"))
    width = len(prices)
    for first in range(1, customers + 1, CHUNK):
        ids = range(first, min(first + CHUNK, customers + 1))
        with transaction(factory) as session:
            session.execute(
                insert(tables.Customer),
                [
                    {
                        "id": i,
                        "name": f"Customer {i}",
                        "country": "US",
                        "currency": "USD",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            session.execute(
                insert(tables.Contract),
                [{"id": i, "customer_id": i, "name": f"Deal {i}", "created_at": now} for i in ids],
            )
            session.execute(
                insert(tables.Subscription),
                [
                    {
                        "id": i,
                        "contract_id": i,
                        "customer_id": i,
                        "currency": "USD",
                        "frequency": "monthly",
                        "start_date": JAN,
                        "trial_days": 0,
                        "term_months": 12,
                        "auto_renew": True,
                        "revision": 0,
                        "next_billing_date": JAN,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            items = [
                {
                    "id": width * (i - 1) + n + 1,
                    "subscription_id": i,
                    "item_key": f"K{n}",
                    "product_id": product_id,
                    "kind": kind,
                }
                for i in ids
                for n, (_, product_id, kind) in enumerate(prices)
            ]
            session.execute(insert(tables.SubscriptionItem), items)
            session.execute(
                insert(tables.ItemVersion),
                [
                    {
                        "item_id": width * (i - 1) + n + 1,
                        "effective_date": JAN,
                        "price_id": price_id,
                        "quantity": Decimal(1),
                        "discount_percent": Decimal(0),
                    }
                    for i in ids
                    for n, (price_id, _, _) in enumerate(prices)
                ],
            )
    settings = settings_of(url, workdir)
    january = run_billing(factory, settings, JAN)
    assert january.invoices == customers and not january.failed, january.to_dict()
    if events:
        metrics = load_usage_mapping(Path(settings.usage.mapping_file)).metrics
        stored_at = datetime(2026, 2, 1, tzinfo=UTC)
        limits = Limits(past=timedelta(days=3660))
        for start in range(0, events, CHUNK):
            batch = [
                the_event(n, customers, events) for n in range(start, min(start + CHUNK, events))
            ]
            results = ingest_batch(factory, metrics, batch, stored_at, limits)
            assert all(r.outcome.value == "accepted" for r in results)
    engine.dispose()


def count_usage_rows() -> list[int]:
    """Counts the usage rows the billing run is handed (aggregates and levels), from now on."""
    read = billing_usage.batch_usage
    rows = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        found = read(*args, **kwargs)
        for usage in found.values():
            rows[0] += sum(map(len, usage.hours.values())) + sum(map(len, usage.levels.values()))
        return found

    billing_usage.batch_usage = counted  # type: ignore[assignment]
    return rows


def measure(url: str, workdir: Path) -> dict[str, Any]:
    """Run in a child process: the run at February 1st, its statements counted."""
    engine = make_engine(url)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    factory = session_factory(engine)
    settings = settings_of(url, workdir)
    usage_rows = count_usage_rows()
    began = time.perf_counter()
    result = run_billing(factory, settings, FEB)
    elapsed = time.perf_counter() - began
    rss = peak_rss_mib()
    with factory() as session:  # what the run billed of the usage (not timed)
        line, doc = tables.DocumentLine, tables.Document
        billed: dict[int, Decimal] = defaultdict(Decimal)
        for customer_id, amount in session.execute(
            select(doc.customer_id, line.amount)
            .join(doc, doc.id == line.document_id)
            .where(doc.issue_date == FEB, line.kind == ChargeKind.METERED.value)
        ):
            billed[customer_id] += amount
    engine.dispose()
    return {
        "subscriptions": result.subscriptions,
        "invoices": result.invoices,
        "failed": len(result.failed),
        "seconds": elapsed,
        "statements": len(statements),
        "usage_statements": sum(1 for s in statements if "usage_" in s),
        "usage_rows": usage_rows[0],
        "peak_rss_mib": rss,
        "usage_billed": {str(c): str(a) for c, a in billed.items() if a},
    }


def run_child(url: str, workdir: Path) -> dict[str, Any]:
    child = subprocess.run(
        [sys.executable, __file__, "--child", url, "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        print(child.stderr.strip()[-3000:], file=sys.stderr)
        raise SystemExit(f"the billing run on {url} exited {child.returncode}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def kind_of(events: int, metered: bool) -> str:
    """How a generated database is named: by its events, and ``-metered`` for metered items
    without events."""
    return f"{events}-metered" if metered and not events else str(events)


def on_sqlite(workdir: Path, customers: int, events: int, metered: bool, name: str) -> str:
    """A copy of the SQLite file of ``events`` (generated the first time), to run on."""
    kind = kind_of(events, metered)
    template = workdir / f"template-{head_revision()}-{customers}-{kind}.db"
    if not template.exists():
        began = time.perf_counter()
        generate(f"sqlite:///{template}", workdir, customers, events, metered)
        print(f"generated {name}: {time.perf_counter() - began:.0f} s")
    target = workdir / f"run-{kind}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copy(template, target)
    flush(target)
    return f"sqlite:///{target}"


def flush(path: Path) -> None:
    """Write the copy to disk now: else the run's first commit would wait for the system to
    write back the whole copy (2 GB at 10 million events), which is no part of billing."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def on_postgresql(  # noqa: PLR0917 - what a database holds, and its name
    server: str, workdir: Path, customers: int, events: int, metered: bool, name: str
) -> str:
    """A copy of the PostgreSQL database of ``events`` on ``server`` (generated the first time:
    under a working name, renamed once complete), to run on."""
    kind = kind_of(events, metered).replace("-", "_")
    template = f"bench_usage_{head_revision()}_{customers}_{kind}"
    target = f"bench_usage_run_{kind}"
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        known = connection.scalar(
            text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": template}
        )
        if not known:
            working = f"{template}_partial"
            connection.execute(text(f'DROP DATABASE IF EXISTS "{working}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{working}"'))
            began = time.perf_counter()
            generate(database_on(server, working), workdir, customers, events, metered)
            print(f"generated {name}: {time.perf_counter() - began:.0f} s")
            connection.execute(text(f'ALTER DATABASE "{working}" RENAME TO "{template}"'))
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{target}" TEMPLATE "{template}"'))
    admin.dispose()
    return database_on(server, target)


def database_on(server: str, name: str) -> str:
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "connector-bench-usage"
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to run on (its user creates the databases); default: SQLite",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.child:
        print(json.dumps(measure(args.child, args.workdir)))
        return
    figures = {}
    for name, events, with_items in (
        ("without usage", 0, False),
        ("no events", 0, True),
        ("with usage", args.events, True),
    ):
        if args.database_url:
            url = on_postgresql(
                args.database_url, args.workdir, args.customers, events, with_items, name
            )
        else:
            url = on_sqlite(args.workdir, args.customers, events, with_items, name)
        figures[name] = run_child(url, args.workdir)
    plain, idle, metered = figures["without usage"], figures["no events"], figures["with usage"]
    ratio = metered["seconds"] / plain["seconds"]
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"{args.customers:,} customers, {args.events:,} events in January; run at {FEB}")
    print(f"on {database}")
    print(
        f"{'':>14} {'seconds':>8} {'statements':>11} {'on usage':>9} {'usage rows':>11} "
        f"{'invoices':>9} {'MiB':>7}"
    )
    for name, found in figures.items():
        print(
            f"{name:>14} {found['seconds']:>8.2f} {found['statements']:>11,} "
            f"{found['usage_statements']:>9,} {found['usage_rows']:>11,} "
            f"{found['invoices']:>9,} {found['peak_rss_mib']:>7.1f}"
        )
    print(f"ratio (with / without usage): {ratio:.2f} (bound {BOUND})")
    print(f"ratio (with usage / no events): {metered['seconds'] / idle['seconds']:.2f}")
    problems = [
        f"{name}: {what}: {got}, expected {wanted}"
        for name, found in figures.items()
        for what, got, wanted in (
            ("invoices", found["invoices"], args.customers),
            ("failures", found["failed"], 0),
        )
        if got != wanted
    ]
    expected = {str(c): str(a) for c, a in expected_usage(args.customers, args.events).items()}
    if metered["usage_billed"] != expected:
        wrong = sorted(
            set(expected) ^ set(metered["usage_billed"])
            | {c for c in expected if metered["usage_billed"].get(c) != expected[c]}
        )
        problems.append(f"usage billed differs from the events for customers {wrong[:10]}")
    for name in ("without usage", "no events"):
        if figures[name]["usage_billed"]:
            problems.append(f"the run {name} billed usage")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
