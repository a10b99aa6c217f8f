"""Benchmark: the billing run over N active monthly subscriptions on SQLite.

    python tests/benchmarks/bench_billing_run.py --subscriptions 10000 100000

For each N, a database with N customers, each with one monthly subscription of two items (a
per-unit price and a tiered price), is generated once (not timed). Then a fresh process copies
it and runs ``connector bill`` logic for the first period of every subscription; it reports the
wall time, invoices per second and its own peak resident memory (its high-water mark, see
peak_memory.py: not that of this process, which generated the data). A second run at the same
as-of date measures the idle pass (nothing due). Memory that does not grow with N shows that the
run streams in batches.

The first run must bill every subscription (N invoices stored, no failure, none left due) and
the idle pass nothing; otherwise the benchmark exits 1 after printing its figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from peak_memory import peak_rss_mib
from sqlalchemy import func, insert, select

from connector.billing.pricing import ChargeKind, PricingModel, Tier
from connector.db import catalog, tables
from connector.db.engine import make_engine, session_factory, transaction
from connector.db.migrate import head_revision, upgrade
from connector.settings import load_settings
from connector.sync.billing_run import run_billing

START = date(2026, 1, 1)
CHUNK = 10_000


def generate(path: Path, count: int) -> None:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    factory = session_factory(engine)
    now = datetime.now(UTC)
    with transaction(factory) as session:
        seats = catalog.upsert_price(
            session,
            catalog.upsert_product(session, "SEATS", "Seats"),
            currency="USD",
            kind=ChargeKind.RECURRING,
            model=PricingModel.PER_UNIT,
            unit_amount=Decimal("12.50"),
        )
        api = catalog.upsert_price(
            session,
            catalog.upsert_product(session, "API", "API calls"),
            currency="USD",
            kind=ChargeKind.RECURRING,
            model=PricingModel.TIERED,
            tiers=[Tier(1, 100, Decimal("0.50")), Tier(101, None, Decimal("0.40"))],
        )
        products = {seats.id: seats.product_id, api.id: api.product_id}
    for first in range(1, count + 1, CHUNK):
        ids = range(first, min(first + CHUNK, count + 1))
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
                        "start_date": START,
                        "trial_days": 0,
                        "term_months": 12,
                        "auto_renew": True,
                        "revision": 0,
                        "next_billing_date": START,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            items, versions = [], []
            for i in ids:
                for n, price_id in enumerate(products):
                    item_id = 2 * i - 1 + n
                    items.append(
                        {
                            "id": item_id,
                            "subscription_id": i,
                            "item_key": f"K{n}",
                            "product_id": products[price_id],
                            "kind": "recurring",
                        }
                    )
                    versions.append(
                        {
                            "item_id": item_id,
                            "effective_date": START,
                            "price_id": price_id,
                            "quantity": Decimal(i % 50 + 1) if n == 0 else Decimal(150 + i % 300),
                            "discount_percent": Decimal(i % 4 * 5),
                        }
                    )
            session.execute(insert(tables.SubscriptionItem), items)
            session.execute(insert(tables.ItemVersion), versions)
    engine.dispose()


def measure(path: Path) -> dict[str, float]:
    """Run in a child process: bill everything due at START, then an idle pass."""
    engine = make_engine(f"sqlite:///{path}")
    factory = session_factory(engine)
    settings = load_settings(database_url=f"sqlite:///{path}")
    began = time.perf_counter()
    result = run_billing(factory, settings, START)
    elapsed = time.perf_counter() - began
    billing_rss = peak_rss_mib()
    began = time.perf_counter()
    idle = run_billing(factory, settings, START)
    idle_elapsed = time.perf_counter() - began
    idle_rss = peak_rss_mib()
    with transaction(factory) as session:  # what the runs left in the database (not timed)
        stored = session.scalar(
            select(func.count())
            .select_from(tables.Document)
            .where(tables.Document.kind == "invoice")
        )
        still_due = session.scalar(
            select(func.count())
            .select_from(tables.Subscription)
            .where(tables.Subscription.next_billing_date <= START)
        )
    engine.dispose()
    return {
        "subscriptions": result.subscriptions,
        "invoices": result.invoices,
        "failed": len(result.failed),
        "seconds": elapsed,
        "invoices_per_second": result.invoices / elapsed,
        "idle_invoices": idle.invoices,
        "idle_failed": len(idle.failed),
        "idle_seconds": idle_elapsed,
        "invoices_stored": stored or 0,
        "subscriptions_still_due": still_due or 0,
        "peak_rss_mib": billing_rss,
        "peak_rss_after_idle_mib": idle_rss,
    }


def checks(count: int, figures: dict[str, Any]) -> list[str]:
    """What went wrong: the first run bills each of the N subscriptions once, the idle pass
    nothing."""
    expected = {
        "subscriptions billed": (figures["subscriptions"], count),
        "invoices": (figures["invoices"], count),
        "billing failures": (figures["failed"], 0),
        "invoices stored": (figures["invoices_stored"], count),
        "subscriptions still due": (figures["subscriptions_still_due"], 0),
        "idle pass invoices": (figures["idle_invoices"], 0),
        "idle pass failures": (figures["idle_failed"], 0),
    }
    return [
        f"{count:,} subscriptions: {what}: {got}, expected {wanted}"
        for what, (got, wanted) in expected.items()
        if got != wanted
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "connector-bench"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"{'subscriptions':>13} {'invoices':>9} {'seconds':>8} {'invoices/s':>11} "
        f"{'idle s':>7} {'peak RSS MiB':>13}"
    )
    problems = []
    for count in args.subscriptions:
        template = args.workdir / f"template-{head_revision()}-{count}.db"
        if not template.exists():
            generate(template, count)
        target = args.workdir / f"run-{count}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copy(template, target)
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            print(f"{count:>13,} exit {child.returncode}")
            problems.append(f"{count:,} subscriptions: the billing run exited {child.returncode}")
            print(child.stderr.strip()[-3000:], file=sys.stderr)
            continue
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"{count:>13,} {figures['invoices']:>9,} {figures['seconds']:>8.2f} "
            f"{figures['invoices_per_second']:>11,.0f} {figures['idle_seconds']:>7.3f} "
            f"{figures['peak_rss_mib']:>13.1f}"
        )
        problems += checks(count, figures)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
