"""Benchmark: pulling won deals from Salesforce (the local sandbox, over HTTPS) into billing.

    python tests/benchmarks/bench_crm_pull.py --deals 10000

An org with N won deals of 3 line items each (on N/10 accounts, stamped two hours ago) is
generated once and kept under /tmp/connector-bench (not timed). ``connector sandbox serve``
serves a copy of it in its own process. Then, each in a fresh process on one SQLite database:

1. the first pull (everything is new): staged, mapped and applied;
2. a pull with nothing changed since (the cursors and the lookback window find nothing new).

Each reports its wall time, its peak resident memory and the API calls it spent.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from connector.db.engine import make_engine, session_factory
from connector.db.migrate import upgrade
from connector.sandbox import rules
from connector.sandbox.schema import default_schema
from connector.sandbox.store import Org
from connector.settings import load_settings
from connector.sync.crm_pull import pull

CACHE = Path(tempfile.gettempdir()) / "connector-bench"


def generate(path: Path, deals: int) -> None:

    # Records stamped a second apart, ending well before the pulls: the second pull's lookback
    # window then holds only the newest ones, as in an org whose deals change over time.
    moment = [datetime.now(UTC) - timedelta(seconds=deals * 5 + 3600)]

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
    result = pull(session_factory(engine), settings, as_of=date(2026, 3, 1))
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": round(elapsed, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "api_calls": result.api_calls,
                "applied": result.applied,
                "unchanged": result.unchanged,
                "quarantined": result.quarantined,
                "fetched": result.fetched,
            }
        )
    )


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
            if info.exists():
                break
            time.sleep(0.1)
        runs = {}
        for name in ("first_pull", "nothing_changed"):
            output = subprocess.run(
                [sys.executable, __file__, "--child", str(info), str(work / "billing.db")],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
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
    print(json.dumps(run(options.deals), indent=2))


if __name__ == "__main__":
    main()
