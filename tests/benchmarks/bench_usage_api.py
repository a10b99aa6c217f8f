"""Benchmark: usage events in through ``POST /v1/usage-events`` on SQLite, in batches of 1,000
from a concurrent client, against the same batches handed to ``ingest_batch`` directly.

    python tests/benchmarks/bench_usage_api.py --events 200000 [--customers 100] [--threads 4]
        [--database-url postgresql://u:p@host/postgres]

N events (the four metrics of the shipped ``mappings/usage.yaml`` in turn, the customers
round-robin, time-ordered transaction ids, the times spread over the last day) are cut into
batches of ``--batch`` (1,000), each written as its JSON body beforehand (not timed). Then:

- ``connector serve`` serves a new SQLite database (the customers only) from a process of its
  own, and a client of ``--threads`` threads posts the batches with a write key, as fast as
  answers come back: events/s through the API (HTTP, JSON, key check, validation, storage);
- in this process, on another new database, ``ingest_batch`` stores the same batches one after
  the other: events/s of the storage alone, what the API's figure is compared with.

With ``--database-url`` (a PostgreSQL server whose user may create databases) both databases
are made on that server instead (events partitioned by month), and dropped after.

Printed: the events/s of each and their ratio (API over direct). Exits 1 when an answer is not
200 or any event is not accepted, by either way.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import free_port, serve  # noqa: E402
from bench_usage import (  # noqa: E402
    METRICS,
    drop_postgres_database,
    new_database,
    postgres_database,
)

from connector.api.keys import create_key  # noqa: E402
from connector.db.engine import make_engine, session_factory, transaction  # noqa: E402
from connector.sync.usage_events import Outcome, ingest_batch  # noqa: E402
from connector.sync.usage_mapping import load_usage_mapping  # noqa: E402

MAPPING = ROOT / "mappings" / "usage.yaml"


def events(count: int, customers: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    found = []
    for n in range(count):
        stamp = (start + timedelta(seconds=n * 86400 // count)).strftime("%Y-%m-%dT%H:%M:%SZ")
        metric = METRICS[n % 4]
        if metric == "api_calls":
            properties: dict[str, Any] = {}
        elif metric == "storage_gb":
            properties = {"gb": n % 7 - 3}
        elif metric == "seats":
            properties = {"user_id": f"u{n % 50}"}
        else:
            properties = {"gb": f"{n % 10}.5", "region": ("eu", "us", "ap")[n % 3]}
            properties["direction"] = "egress"
        found.append(
            {
                "transaction_id": f"{stamp}-{n:010d}",
                "customer": str(1 + n % customers),
                "metric": metric,
                "timestamp": stamp,
                "properties": properties,
            }
        )
    return found


def write_key(url: str) -> str:
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        _info, key = create_key(session, "benchmark", "write")
    engine.dispose()
    return key


def through_api(url: str, bodies: list[bytes], key: str, threads: int, folder: Path) -> float:
    """Seconds to post ``bodies`` from ``threads`` threads; exits 1 on a refused event."""
    port = free_port()
    process = serve(url, port, folder)
    base = f"http://127.0.0.1:{port}/v1/usage-events"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    local = threading.local()
    failures: list[str] = []

    def post(body: bytes) -> None:
        http = getattr(local, "http", None)
        if http is None:
            http = local.http = requests.Session()
        answer = http.post(base, data=body, headers=headers, timeout=300)
        if answer.status_code != 200:
            failures.append(f"{answer.status_code}: {answer.text[:300]}")
        elif answer.json()["accepted"] != len(json.loads(body)["events"]):
            failures.append(json.dumps(answer.json()["results"][:3]))

    try:
        began = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(post, bodies))
        seconds = time.perf_counter() - began
    finally:
        process.terminate()
        process.wait(30)
    if failures:
        raise SystemExit(f"the API did not accept every event: {failures[0]}")
    return seconds


def direct(url: str, batches: list[list[dict[str, Any]]]) -> float:
    engine = make_engine(url)
    factory = session_factory(engine)
    metrics = load_usage_mapping(MAPPING).metrics
    began = time.perf_counter()
    for batch in batches:
        results = ingest_batch(factory, metrics, batch, datetime.now(UTC))
        if any(result.outcome is not Outcome.ACCEPTED for result in results):
            raise SystemExit(f"ingest_batch did not accept every event: {results[:3]}")
    seconds = time.perf_counter() - began
    engine.dispose()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--database-url", help="a PostgreSQL server to run on (its user creates databases)"
    )
    options = parser.parse_args()
    server = options.database_url
    folder = Path(tempfile.mkdtemp(prefix="connector-bench-usage-api-"))
    made = events(options.events, options.customers)
    batches = [made[n : n + options.batch] for n in range(0, len(made), options.batch)]
    bodies = [json.dumps({"events": batch}).encode() for batch in batches]
    if server:
        served_url = postgres_database(server, "served", options.customers)
        direct_url = postgres_database(server, "direct", options.customers)
    else:
        served_url = new_database(folder / "served.db", options.customers)
        direct_url = new_database(folder / "direct.db", options.customers)
    try:
        key = write_key(served_url)
        api = through_api(served_url, bodies, key, options.threads, folder)
        own = direct(direct_url, batches)
    finally:
        if server:
            drop_postgres_database(server, served_url)
            drop_postgres_database(server, direct_url)
    figures = {
        "events": options.events,
        "batch": options.batch,
        "threads": options.threads,
        "database": "postgresql" if server else "sqlite",
        "api_events_per_second": round(options.events / api),
        "direct_events_per_second": round(options.events / own),
        "api_over_direct": round(own / api, 3),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
