"""Benchmark: posting invoices and their revenue journals to the Beancount ledger, and
``bean-check`` on the result.

    python tests/benchmarks/bench_ledger.py --invoices 100000

N monthly subscriptions (the billing-run benchmark's database) are billed for their first month
and their revenue closed at the month's end, giving N invoices and N revenue journals (not
timed; kept under /tmp/connector-bench). Then, each in a fresh process:

1. ``connector push`` logic posts the 2N documents from the outbox to a new ledger;
2. ``bean-check`` (a plain Beancount) loads the ledger and validates it.

Each reports its wall time and peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from bench_billing_run import START, generate

from connector.db.engine import make_engine, session_factory
from connector.db.migrate import head_revision
from connector.settings import Settings, load_settings
from connector.sync.billing_run import run_billing
from connector.sync.push import push
from connector.sync.revenue_close import close_revenue

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(tempfile.gettempdir()) / "connector-bench"


def settings_for(database: Path, ledger: Path) -> Settings:
    return load_settings(
        None,
        database_url=f"sqlite:///{database}",
        ledger={"path": ledger},
        accounting={"mapping_file": str(ROOT / "mappings" / "accounting.yaml")},
    )


def prepare(count: int) -> Path:
    """A database with ``count`` invoices and their revenue journals in the outbox."""
    billed = CACHE / f"ledger-{head_revision()}-{count}.db"
    if billed.exists():
        return billed
    template = CACHE / f"template-{head_revision()}-{count}.db"
    if not template.exists():
        generate(template, count)
    work = billed.with_suffix(".tmp")
    for suffix in ("", "-wal", "-shm"):  # what an interrupted run left
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copy(template, work)
    engine = make_engine(f"sqlite:///{work}")
    factory = session_factory(engine)
    settings = settings_for(work, CACHE / "unused.beancount")
    run_billing(factory, settings, START)
    close_revenue(factory, date(START.year, START.month, 31))
    engine.dispose()  # the last connection's close folds the WAL into the file
    work.replace(billed)
    return billed


def post(database: Path, ledger: Path) -> None:
    factory = session_factory(make_engine(f"sqlite:///{database}"))
    began = time.perf_counter()
    result = push(factory, settings_for(database, ledger))
    print(
        json.dumps(
            {
                "documents": result.posted,
                "seconds": round(time.perf_counter() - began, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


def run(count: int) -> dict[str, object]:
    CACHE.mkdir(exist_ok=True)
    billed = prepare(count)
    work = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    database = work / "billing.db"
    shutil.copy(billed, database)
    ledger = work / "ledger.beancount"
    try:
        output = subprocess.run(
            [sys.executable, __file__, "--post", str(database), str(ledger)],
            check=True,
            capture_output=True,
            text=True,
        )
        posted = json.loads(output.stdout.strip().splitlines()[-1])
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        began = time.perf_counter()
        checked = subprocess.run(
            [str(Path(sys.executable).with_name("bean-check")), str(ledger)],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - began
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        size = sum(f.stat().st_size for f in work.rglob("*.beancount"))
        return {
            "invoices": count,
            "post": posted,
            "bean_check": {
                "exit": checked.returncode,
                "errors": checked.stderr.strip().splitlines()[:3],
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(max(peak, before) / 1024),
            },
            "ledger_mb": round(size / 1_000_000, 1),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--post", nargs=2, type=Path, metavar=("DATABASE", "LEDGER"))
    options = parser.parse_args()
    if options.post:
        post(*options.post)
        return
    print(json.dumps(run(options.invoices), indent=2))


if __name__ == "__main__":
    main()
