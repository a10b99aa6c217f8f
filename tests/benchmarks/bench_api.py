"""Benchmark: the read endpoints of the HTTP API under a concurrent client, on SQLite.

    python tests/benchmarks/bench_api.py --customers 1000 --months 3 --requests 2000

A database of N customers, each with one monthly subscription (10 seats at 10.00 GBP, taxed
20%) billed for M months (N × M invoices, one line and one tax each), is made through the
connector's own services (not timed). ``connector serve`` then serves it from a process of its
own, and a client of ``--threads`` threads (8) sends ``--requests`` requests to each endpoint,
as fast as answers come back:

- ``/healthz`` (no key, no database): the cheapest answer the same server gives, the baseline;
- ``/v1/invoices?limit=100`` (a page of invoices with their lines and taxes);
- ``/v1/invoices/{number}`` (one invoice, numbers spread over all of them);
- ``/v1/customers?limit=100``;
- ``/v1/metrics/mrr`` for the M months (every subscription read, each request).

For each: requests per second, median and p99 latency (ms), and each as a ratio to /healthz's
(``rps_ratio``: its share of the baseline's throughput; ``p99_ratio``: how many times the
baseline's p99). Every answer must be 200 with the expected content (a full page, the number
asked for); otherwise the benchmark exits 1 after printing its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from connector.api.keys import create_key
from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind, PricingModel
from connector.billing.subscriptions import SubscriptionTerms
from connector.db import catalog
from connector.db.engine import make_engine, session_factory, transaction
from connector.db.migrate import upgrade
from connector.settings import load_settings
from connector.sync import contracts
from connector.sync.billing_run import run_billing

START = date(2026, 1, 1)
Check = Callable[[requests.Response], bool]


def generate(url: str, customers: int, months: int) -> str:
    """The database at ``url`` with the customers billed for ``months``; a read key."""
    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    with transaction(factory) as session:
        price = catalog.upsert_price(
            session,
            catalog.upsert_product(session, "SEATS", "Seats"),
            currency="GBP",
            kind=ChargeKind.RECURRING,
            model=PricingModel.PER_UNIT,
            unit_amount=Decimal("10.00"),
        )
        for index in range(customers):
            customer = contracts.upsert_customer(
                session, name=f"Customer {index}", country="GB", currency="GBP"
            )
            spec = contracts.item_spec(price, catalog.PriceCache(), session, quantity=Decimal(10))
            contracts.create_subscription(
                session,
                customer=customer,
                name="Contract",
                terms=SubscriptionTerms(START, Frequency.MONTHLY),
                items=[spec],
            )
        _info, key = create_key(session, "benchmark", "read")
    settings = load_settings(None, database_url=url, tax={"rates": {"GB": "20"}})
    for month in range(months):
        run_billing(factory, settings, date(2026, month + 1, 1))
    engine.dispose()
    return key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(url: str, port: int, folder: Path) -> subprocess.Popen[bytes]:
    """``connector serve`` on ``port``, once it answers /healthz."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")},
        "CONNECTOR_DATABASE_URL": url,
        "CONNECTOR_API__PORT": str(port),
        "CONNECTOR_LEDGER__PATH": str(folder / "ledger.beancount"),
        "CONNECTOR_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "connector", "serve"], env=env, cwd=folder)
    pause = threading.Event()
    while not answers(f"http://127.0.0.1:{port}/healthz"):
        if process.poll() is not None:
            raise SystemExit(f"connector serve exited {process.returncode}")
        pause.wait(0.1)
    return process


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.ConnectionError:
        return False


def load(  # noqa: PLR0917 - one endpoint, as the table below gives it
    base: str, paths: Callable[[int], str], key: str | None, count: int, threads: int, check: Check
) -> dict[str, Any]:
    """``count`` requests from ``threads`` threads; throughput, latencies, failures."""
    local = threading.local()
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    def one(index: int) -> tuple[float, bool]:
        http = getattr(local, "http", None)
        if http is None:
            http = local.http = requests.Session()
        began = time.perf_counter()
        answer = http.get(base + paths(index), headers=headers, timeout=60)
        seconds = time.perf_counter() - began
        return seconds, answer.status_code == 200 and check(answer)

    for index in range(threads):  # warm: connections open, first queries planned
        one(index)
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, range(count)))
    wall = time.perf_counter() - began
    latencies = sorted(seconds for seconds, _ in results)
    return {
        "requests": count,
        "rps": round(count / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
        "failed": sum(1 for _, ok in results if not ok),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="connector-bench-api-"))
    url = f"sqlite:///{folder / 'connector.db'}"
    began = time.perf_counter()
    key = generate(url, options.customers, options.months)
    invoices = options.customers * options.months
    print(
        json.dumps(
            {
                "customers": options.customers,
                "invoices": invoices,
                "generated_seconds": round(time.perf_counter() - began, 1),
                "threads": options.threads,
            }
        )
    )
    port = free_port()
    process = serve(url, port, folder)
    base = f"http://127.0.0.1:{port}"
    last_month = f"2026-{options.months:02d}"
    endpoints: list[tuple[str, Callable[[int], str], str | None, Check]] = [
        ("/healthz", lambda _: "/healthz", None, lambda a: a.json() == {"status": "ok"}),
        (
            "/v1/invoices?limit=100",
            lambda _: "/v1/invoices?limit=100",
            key,
            lambda a: len(a.json()["data"]) == min(100, invoices),
        ),
        (
            "/v1/invoices/{number}",
            lambda i: f"/v1/invoices/INV-{i * 7919 % invoices + 1:06d}",
            key,
            lambda a: a.json()["number"].startswith("INV-") and len(a.json()["lines"]) == 1,
        ),
        (
            "/v1/customers?limit=100",
            lambda _: "/v1/customers?limit=100",
            key,
            lambda a: len(a.json()["data"]) == min(100, options.customers),
        ),
        (
            "/v1/metrics/mrr",
            lambda _: f"/v1/metrics/mrr?from=2026-01&to={last_month}",
            key,
            lambda a: len(a.json()["data"]) == options.months,
        ),
    ]
    figures: dict[str, dict[str, Any]] = {}
    try:
        for name, paths, auth, check in endpoints:
            count = options.requests if "mrr" not in name else max(options.requests // 10, 20)
            figures[name] = load(base, paths, auth, count, options.threads, check)
    finally:
        process.terminate()
        process.wait(30)
    baseline = figures["/healthz"]
    for name, found in figures.items():
        found["rps_ratio"] = round(found["rps"] / baseline["rps"], 3)
        found["p99_ratio"] = round(found["p99_ms"] / baseline["p99_ms"], 1)
        print(json.dumps({"endpoint": name, **found}))
    failed = {name: found["failed"] for name, found in figures.items() if found["failed"]}
    if failed:
        print(f"failed answers: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
