"""Benchmark: the Salesforce sandbox as simple-salesforce sees it, over HTTPS on loopback.

    python tests/benchmarks/bench_sandbox.py --rows 100000 --writes 20000

1. Writes: N Accounts created through sObject Collections (200 records a call), then updated
   through the same endpoint; reports records written per second.
2. Query: the N rows (plus rows written by the org's own loader when N is larger than the
   writes) read with ``SELECT Id, Name, BillingCountry, CurrencyIsoCode, Type, CreatedDate FROM
   Account`` and paged through to the end with ``query`` + ``query_more``
   (2,000 rows a page); reports rows per second. A Bulk API 2.0 query job over the same rows is
   reported too.

The client and the server share this process's two cores, so the figures are a floor.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from connector.sandbox.testing import salesforce_sandbox

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


def bench(rows: int, writes: int) -> dict[str, object]:
    with salesforce_sandbox(daily_api_limit=10_000_000) as sf:
        sandbox = sf.sandbox  # type: ignore[attr-defined]
        started = time.perf_counter()
        ids: list[str] = []
        for start in range(0, writes, 200):
            batch = [account(index) for index in range(start, min(start + 200, writes))]
            results = sf.restful(
                "composite/sobjects", method="POST", json={"allOrNone": False, "records": batch}
            )
            ids.extend(result["id"] for result in results)
        created = time.perf_counter() - started
        started = time.perf_counter()
        for start in range(0, len(ids), 200):
            batch = [
                {"attributes": {"type": "Account"}, "Id": record_id, "Type": "Prospect"}
                for record_id in ids[start : start + 200]
            ]
            sf.restful(
                "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": batch}
            )
        updated = time.perf_counter() - started
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
        for text in sf.bulk2.Account.query(query, max_records=50_000, wait=0.1):
            bulk_rows += text.count("\n") - 1
        bulk = time.perf_counter() - started
    return {
        "collections_create_per_second": round(writes / created),
        "collections_update_per_second": round(writes / updated),
        "query_rows": seen,
        "query_calls": query_calls,
        "query_rows_per_second": round(seen / queried),
        "bulk_rows": bulk_rows,
        "bulk_rows_per_second": round(bulk_rows / bulk),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--writes", type=int, default=20_000)
    options = parser.parse_args()
    print(json.dumps(bench(options.rows, min(options.writes, options.rows)), indent=2))


if __name__ == "__main__":
    main()
