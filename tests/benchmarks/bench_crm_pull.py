"""Benchmark: pulling won deals from Salesforce (the local sandbox, over HTTPS) into billing.

    python tests/benchmarks/bench_crm_pull.py --deals 10000

An org with N won deals of 3 line items each (on N/10 accounts, stamped two hours ago) is
generated once and kept under /tmp/connector-bench (not timed). ``connector sandbox serve``
serves a copy of it in its own process. Then, each in a fresh process on one SQLite database:

1. the first pull (everything is new): staged, mapped and applied;
2. a pull with nothing changed since (the cursors and the lookback window find nothing new).

Each reports its wall time, its own peak resident memory (its high-water mark, see
peak_memory.py: not that of this process, which generated the org) and the API calls it spent.

The first pull must apply every deal and account (none quarantined or held, one subscription
per deal in the database) and the second apply nothing; otherwise the benchmark exits 1 after
printing its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from peak_memory import peak_rss_mib
from sqlalchemy import func, select

from connector.db import tables
from connector.db.engine import make_engine, session_factory
from connector.db.migrate import upgrade
from connector.settings import load_settings
from connector.sync.crm_pull import pull
from sandbox.salesforce import rules
from sandbox.salesforce.schema import default_schema
from sandbox.salesforce.store import Org

CACHE = Path(tempfile.gettempdir()) / "connector-bench"


def generate(path: Path, deals: int) -> None:

    # Records stamped a second apart, ending well before the pulls: the second pull's lookback
    # window then holds only the newest ones, as in an org whose deals change over time. Each
    # deal takes fewer than 10 stamps (the deal, its items, their roll-ups); the org is checked
    # to end in the past, as an org's stamps always do.
    started = datetime.now(UTC)
    moment = [started - timedelta(seconds=deals * 10 + 3600)]

    def clock() -> datetime:
        moment[0] += timedelta(seconds=1)
        return moment[0]

    org = Org(default_schema(), path, clock=clock)
    book = rules.standard_pricebook(org)
    with org.transaction():
        entries = []
        for code, name, price in (
            ("SEATS", "Seats", 25),
            ("API", "API calls", 5),
            ("SUP", "Support", 100),
        ):
            product = org.create("Product2", {"Name": name, "ProductCode": code, "IsActive": True})
            entries.append(
                org.create(
                    "PricebookEntry",
                    {
                        "Pricebook2Id": book,
                        "Product2Id": product,
                        "UnitPrice": price,
                        "IsActive": True,
                    },
                )
            )
        accounts = [
            org.create(
                "Account",
                {"Name": f"Account {n:05d}", "BillingCountry": "US", "CurrencyIsoCode": "USD"},
            )
            for n in range(max(deals // 10, 1))
        ]
        for n in range(deals):
            deal = org.create(
                "Opportunity",
                {
                    "Name": f"Deal {n:06d}",
                    "AccountId": accounts[n % len(accounts)],
                    "StageName": "Closed Won",
                    "CloseDate": "2026-01-15",
                    "Service_Start_Date__c": "2026-02-01",
                    "Billing_Frequency__c": "Monthly",
                    "CurrencyIsoCode": "USD",
                },
            )
            for index, entry in enumerate(entries):
                org.create(
                    "OpportunityLineItem",
                    {
                        "OpportunityId": deal,
                        "PricebookEntryId": entry,
                        "Quantity": 1 + n % 7 + index,
                    },
                )
    org.db.close()
    if moment[0] >= started:
        raise SystemExit(f"the generated org is stamped up to {moment[0]}, after {started}")


def child(info_file: Path, database: Path) -> None:

    info = json.loads(info_file.read_text())
    settings = load_settings(
        None,
        salesforce={
            "instance_url": info["instance_url"],
            "session_id": info["session_id"],
            "ca_file": info["ca_file"],
        },
    )
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    started = time.perf_counter()
    factory = session_factory(engine)
    result = pull(factory, settings, as_of=date(2026, 3, 1))
    elapsed = time.perf_counter() - started
    peak = peak_rss_mib()
    with factory() as session:  # what the pulls left in the database (not timed)
        subscriptions = session.scalar(select(func.count()).select_from(tables.Subscription))
    engine.dispose()
    print(
        json.dumps(
            {
                "seconds": round(elapsed, 2),
                "peak_rss_mb": round(peak),
                "api_calls": result.api_calls,
                "applied": result.applied,
                "unchanged": result.unchanged,
                "quarantined": result.quarantined,
                "held": result.held,
                "stopped": result.stopped,
                "fetched": result.fetched,
                "subscriptions": subscriptions,
            }
        )
    )


def checks(report: dict[str, Any]) -> list[str]:
    """What went wrong: the first pull applies every deal and account, the second nothing."""
    deals = report["deals"]
    accounts = max(deals // 10, 1)
    first, second = report["first_pull"], report["nothing_changed"]
    expected = {
        "first pull fetched": (first["fetched"], {"Account": accounts, "Opportunity": deals}),
        "first pull applied": (first["applied"], deals + accounts),
        "first pull quarantined": (first["quarantined"], 0),
        "first pull held": (first["held"], 0),
        "first pull stopped": (first["stopped"], None),
        "subscriptions after the first pull": (first["subscriptions"], deals),
        "second pull applied": (second["applied"], 0),
        "second pull quarantined": (second["quarantined"], 0),
        "second pull held": (second["held"], 0),
        "second pull stopped": (second["stopped"], None),
        "subscriptions after the second pull": (second["subscriptions"], deals),
    }
    return [
        f"{what}: {got}, expected {wanted}"
        for what, (got, wanted) in expected.items()
        if got != wanted
    ]


def run(deals: int) -> dict[str, object]:
    CACHE.mkdir(exist_ok=True)
    template = CACHE / f"org-{deals}.db"
    if not template.exists():
        generate(template, deals)
    work = Path(tempfile.mkdtemp(prefix="bench-pull-"))
    shutil.copy(template, work / "org.db")
    info = work / "info.json"
    connector = Path(sys.executable).with_name("connector")
    server = subprocess.Popen(
        [
            str(connector),
            "sandbox",
            "serve",
            "--port",
            "0",
            "--data",
            str(work / "org.db"),
            "--info-file",
            str(info),
            "--daily-api-limit",
            "1000000",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            if info.exists() or server.poll() is not None:
                break
            time.sleep(0.1)
        if not info.exists():
            raise SystemExit(f"the sandbox did not start (exit {server.poll()})")
        runs = {}
        for name in ("first_pull", "nothing_changed"):
            output = subprocess.run(
                [sys.executable, __file__, "--child", str(info), str(work / "billing.db")],
                check=False,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            if output.returncode != 0:
                raise SystemExit(f"{name}: exit {output.returncode}\n{output.stderr[-3000:]}")
            runs[name] = json.loads(output.stdout.strip().splitlines()[-1])
        return {"deals": deals, "line_items": deals * 3, **runs}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--child", nargs=2, type=Path, metavar=("INFO", "DATABASE"))
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return
    report = run(options.deals)
    print(json.dumps(report, indent=2))
    problems = checks(report)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
