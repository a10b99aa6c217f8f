"""Benchmark: the write-back of usage (``Billing_Usage__c``, billed and accruing) against the
sandbox org over HTTPS on loopback, on SQLite.

    python tests/benchmarks/bench_writeback_usage.py --deals 1000

N deals meter API calls from January 1 and are billed on January 1 and February 1; the
write-back of February 1 sends every record (subscriptions, invoices, accounts, deals and
January's usage). Then a late call of each customer is billed as an adjustment on February 5
and written back (the usage records and the adjustment invoices), then the write-back runs once
more with nothing to do. Then February's usage accrues: three calls of each customer on February
10 (written back on the 11th: N Accruing records), one more on the 12th (the N records updated),
a write-back with nothing new, and the run of March 1 billing February (the same N records,
Billed). Every write-back measures the usage accruing, as a cycle's does. For each it prints the
seconds, the CPU seconds (the sandbox's included), the SQL statements, the records built and
sent, the API calls and the usage records' calls. It exits 1 unless each write-back that sends
usage sent every usage record 200 to a call, the idle ones made no call, and Salesforce ends
with N Adjusted and N Billed usage records.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from connector.db.engine import make_engine, session_factory  # noqa: E402
from connector.db.migrate import upgrade  # noqa: E402
from connector.sync import writeback  # noqa: E402
from connector.sync.billing_run import run_billing  # noqa: E402
from connector.sync.writeback_accruing import AccruingOptions  # noqa: E402
from sandbox.salesforce.testing import connect, running_sandbox  # noqa: E402
from tests.statements import counting  # noqa: E402
from tests.sync.test_billing_usage import FEB, JAN, MAR  # noqa: E402
from tests.sync.test_late_usage import settings_with  # noqa: E402
from tests.sync.test_writeback_usage import calls, client_for, open_metered_deals  # noqa: E402

USAGE = "Billing_Usage__c"
PHASES = (
    ("first", FEB),
    ("adjusted", date(2026, 2, 5)),
    ("idle", date(2026, 2, 5)),
    ("accruing", date(2026, 2, 11)),
    ("accruing_more", date(2026, 2, 12)),
    ("accruing_idle", date(2026, 2, 12)),
    ("billed", MAR),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, default=1000)
    deals = parser.parse_args().deals
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite:///{folder / 'connector.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    settings = settings_with(url, folder)
    usage = AccruingOptions.of(settings)
    report: dict[str, Any] = {"deals": deals}
    ok = True
    with running_sandbox() as sandbox:
        opened = open_metered_deals(factory, sandbox, deals)
        customers = [customer for *_, customer in opened]
        calls(factory, customers, "2026-01-10T09:00", 5, "jan")
        run_billing(factory, settings, JAN)
        run_billing(factory, settings, FEB)
        client = client_for(sandbox)
        sizes: list[int] = []
        upsert = client.upsert_records

        def counted(obj: str, key_field: str, records: list[dict[str, Any]]) -> Any:
            if obj == USAGE:
                sizes.append(len(records))
            return upsert(obj, key_field, records)

        client.upsert_records = counted  # type: ignore[method-assign]
        expected = [200] * (deals // 200) + ([deals % 200] if deals % 200 else [])
        for name, as_of in PHASES:
            if name == "adjusted":
                calls(factory, customers, "2026-01-20T10:00", 1, "late")
                run_billing(factory, settings, as_of)
            elif name == "accruing":
                calls(factory, customers, "2026-02-10T09:00", 3, "feb")
            elif name == "accruing_more":
                calls(factory, customers, "2026-02-12T09:00", 1, "more")
            elif name == "billed":
                run_billing(factory, settings, as_of)
            sizes.clear()
            start, cpu = time.perf_counter(), time.process_time()
            with counting(engine) as statements:
                result = writeback.write_back(factory, client, as_of, usage=usage)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            report[name] = {
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu, 2),
                "statements": len(statements),
                "built": result.built,
                "sent": result.sent,
                "api_calls": result.api_calls,
                "usage_calls": len(sizes),
            }
            idle = name.endswith("idle")
            ok = ok and sizes == ([] if idle else expected) and not result.failed
            ok = ok and (not idle or result.api_calls == 0)
        org = connect(sandbox)
        shown = {
            status: org.query(f"SELECT COUNT() FROM {USAGE} WHERE Status__c = '{status}'")[
                "totalSize"
            ]
            for status in ("Accruing", "Billed", "Adjusted")
        }
        report["usage_records"] = shown
        ok = ok and shown == {"Accruing": 0, "Billed": deals, "Adjusted": deals}
    report["usage_calls_expected"] = math.ceil(deals / 200)
    report["ok"] = ok
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
