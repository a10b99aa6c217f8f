"""Benchmark: posting invoices and their revenue journals to the Beancount ledger, and
``bean-check`` on the result.

    python tests/benchmarks/bench_ledger.py --invoices 100000

N monthly subscriptions (the billing-run benchmark's database) are billed for their first month
and their revenue closed at the month's end, giving N invoices and N revenue journals (not
timed; kept under /tmp/connector-bench). Then, each in a fresh process:

1. ``connector push`` logic posts the 2N documents from the outbox to a new ledger;
2. ``bean-check`` (a plain Beancount) loads the ledger and validates it.

Each reports its wall time and its own peak resident memory (see peak_memory.py: the push
process reads its own high-water mark; ``bean-check`` is measured by ``wait4`` on exactly its
process, started by a small launcher rather than by this one). The outbox must hold N invoices
and N revenue journals, the push must post all 2N (none pending or parked) and ``bean-check``
must find the ledger valid; otherwise the benchmark exits 1 after printing its figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench_billing_run import START, generate
from peak_memory import peak_rss_mib, run_measured
from sqlalchemy import func, select

from connector.db import tables
from connector.db.engine import make_engine, session_factory, transaction
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
    with transaction(factory) as session:
        rows = session.execute(
            select(tables.Outbox.document_type, func.count()).group_by(tables.Outbox.document_type)
        ).all()
    outbox = {kind: count for kind, count in rows}
    began = time.perf_counter()
    result = push(factory, settings_for(database, ledger))
    print(
        json.dumps(
            {
                "outbox": outbox,
                "documents": result.posted,
                "pending": result.pending,
                "parked": len(result.parked),
                "seconds": round(time.perf_counter() - began, 2),
                "peak_rss_mb": round(peak_rss_mib()),
            }
        )
    )


def bean_check(ledger: Path, output: Path) -> dict[str, Any]:
    """``bean-check`` on ``ledger`` (its output to ``output``): exit code, first lines of its
    output, wall time and its own peak resident memory."""
    command = [str(Path(sys.executable).with_name("bean-check")), str(ledger)]
    with output.open("wb") as sink:
        run = run_measured(command, stdout=sink, stderr=subprocess.STDOUT)
    return {
        "exit": run.exit,
        "errors": output.read_text().strip().splitlines()[:3],
        "seconds": round(run.seconds, 2),
        "peak_rss_mb": round(run.peak_rss_mib),
    }


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
            check=False,
            capture_output=True,
            text=True,
        )
        if output.returncode != 0:
            raise SystemExit(f"the push exited {output.returncode}:\n{output.stderr[-3000:]}")
        posted = json.loads(output.stdout.strip().splitlines()[-1])
        checked = bean_check(ledger, work / "bean-check.out")
        size = sum(f.stat().st_size for f in work.rglob("*.beancount"))
        return {
            "invoices": count,
            "post": posted,
            "bean_check": checked,
            "ledger_mb": round(size / 1_000_000, 1),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def checks(report: dict[str, Any]) -> list[str]:
    """What went wrong: N invoices and N journals all posted, and a ledger bean-check accepts."""
    count, posted, checked = report["invoices"], report["post"], report["bean_check"]
    expected = {
        "documents in the outbox": (posted["outbox"], {"invoice": count, "revenue": count}),
        "documents posted": (posted["documents"], 2 * count),
        "documents pending": (posted["pending"], 0),
        "documents parked": (posted["parked"], 0),
        "bean-check exit code": (checked["exit"], 0),
        "bean-check output": (checked["errors"], []),
    }
    return [
        f"{what}: {got}, expected {wanted}"
        for what, (got, wanted) in expected.items()
        if got != wanted
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--post", nargs=2, type=Path, metavar=("DATABASE", "LEDGER"))
    options = parser.parse_args()
    if options.post:
        post(*options.post)
        return
    report = run(options.invoices)
    print(json.dumps(report, indent=2))
    problems = checks(report)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
