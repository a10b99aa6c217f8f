"""Benchmark: the Salesforce sandbox as simple-salesforce sees it, over HTTPS on loopback.

    python tests/benchmarks/bench_sandbox.py --rows 100000 --writes 20000

1. Writes: N Accounts created through sObject Collections (200 records a call), then updated
   through the same endpoint; reports records written per second.
2. Query: the N rows (plus rows written by the org's own loader when N is larger than the
   writes) read with ``SELECT Id, Name, BillingCountry, CurrencyIsoCode, Type, CreatedDate FROM
   Account`` and paged through to the end with ``query`` + ``query_more``
   (2,000 rows a page); reports rows per second. A Bulk API 2.0 query job over the same rows is
   reported too.

The client and the server share this process's two cores, so the figures are a floor. The
peak resident memory is this process's own (see peak_memory.py): the server, its org and the
client together.

Every record written must be answered ``success`` (and every create with an id), the updates
must be in the org afterwards, and both queries must return all N rows; otherwise the benchmark
exits 1 after printing its figures. (An answer with an HTTP error status raises in the client.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, cast

from peak_memory import peak_rss_mib
from simple_salesforce import Salesforce

from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import salesforce_sandbox

FIELDS = "Id, Name, BillingCountry, CurrencyIsoCode, Type, CreatedDate"
COUNTRIES = ("United States", "Germany", "Japan", "United Kingdom")
CURRENCIES = ("USD", "EUR", "JPY", "GBP")


def account(index: int) -> dict[str, object]:
    return {
        "attributes": {"type": "Account"},
        "Name": f"Account {index:06d}",
        "BillingCountry": COUNTRIES[index % 4],
        "CurrencyIsoCode": CURRENCIES[index % 4],
        "Type": "Customer - Direct",
    }


def collections(sf: Salesforce, method: str, records: list[dict[str, object]]) -> list[Any]:
    """One sObject Collections call; its answer, one result per record."""
    answer = sf.restful(
        "composite/sobjects", method=method, json={"allOrNone": False, "records": records}
    )
    return answer if isinstance(answer, list) else [answer]


def refused(results: list[Any]) -> list[Any]:
    """The results of records not written (not ``success``, or created without an id)."""
    return [r for r in results if not (isinstance(r, dict) and r.get("success") and r.get("id"))]


def bench(rows: int, writes: int) -> dict[str, object]:
    with salesforce_sandbox(daily_api_limit=10_000_000) as sf:
        sandbox = cast(Sandbox, sf.sandbox)
        not_written: list[Any] = []
        started = time.perf_counter()
        ids: list[str] = []
        for start in range(0, writes, 200):
            batch = [account(index) for index in range(start, min(start + 200, writes))]
            results = collections(sf, "POST", batch)
            not_written += refused(results)
            ids.extend(r["id"] for r in results if isinstance(r, dict) and r.get("id"))
        created = time.perf_counter() - started
        started = time.perf_counter()
        for start in range(0, len(ids), 200):
            batch = [
                {"attributes": {"type": "Account"}, "Id": record_id, "Type": "Prospect"}
                for record_id in ids[start : start + 200]
            ]
            not_written += refused(collections(sf, "PATCH", batch))
        updated = time.perf_counter() - started
        prospects = sf.query("SELECT COUNT() FROM Account WHERE Type = 'Prospect'")["totalSize"]
        with sandbox.org.transaction():  # the rest of the rows, loaded directly (not timed)
            for index in range(writes, rows):
                sandbox.org.create(
                    "Account", {k: v for k, v in account(index).items() if k != "attributes"}
                )
        calls_before = sandbox.usage.used
        started = time.perf_counter()
        page = sf.query(f"SELECT {FIELDS} FROM Account")
        seen = len(page["records"])
        while not page["done"]:
            page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
            seen += len(page["records"])
        queried = time.perf_counter() - started
        query_calls = sandbox.usage.used - calls_before
        started = time.perf_counter()
        bulk_rows = 0
        query = f"SELECT {FIELDS} FROM Account"
        bulk2: Any = sf.bulk2  # its stubs want a whole number of seconds between polls
        for text in bulk2.Account.query(query, max_records=50_000, wait=0.1):
            bulk_rows += text.count("\n") - 1
        bulk = time.perf_counter() - started
    return {
        "rows": rows,
        "writes": writes,
        "accounts_created": len(ids),
        "records_not_written": len(not_written),
        "not_written_examples": not_written[:3],
        "accounts_updated": prospects,
        "collections_create_per_second": round(writes / created),
        "collections_update_per_second": round(writes / updated),
        "query_rows": seen,
        "query_calls": query_calls,
        "query_rows_per_second": round(seen / queried),
        "bulk_rows": bulk_rows,
        "bulk_rows_per_second": round(bulk_rows / bulk),
        "peak_rss_mb": round(peak_rss_mib()),
    }


def checks(figures: dict[str, Any]) -> list[str]:
    """What went wrong: every write accepted and stored, every row read by both queries."""
    rows, writes = figures["rows"], figures["writes"]
    expected = {
        "accounts created": (figures["accounts_created"], writes),
        "records not written": (figures["records_not_written"], 0),
        "accounts updated (Type = Prospect)": (figures["accounts_updated"], writes),
        "rows queried": (figures["query_rows"], rows),
        "rows in the Bulk API query": (figures["bulk_rows"], rows),
    }
    return [
        f"{what}: {got}, expected {wanted}"
        for what, (got, wanted) in expected.items()
        if got != wanted
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--writes", type=int, default=20_000)
    options = parser.parse_args()
    figures = bench(options.rows, min(options.writes, options.rows))
    print(json.dumps(figures, indent=2))
    problems = checks(figures)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
