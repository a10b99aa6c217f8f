"""Benchmark: posting N invoices, their customers and their revenue journals to Xero (the fake
organisation) through the outbox, and the calls that costs against Xero's API limits.

    python tests/benchmarks/bench_xero.py --invoices 10000 [--invoices-per-customer 1]
    python tests/benchmarks/bench_xero.py --throttled [--invoices 2000]

The billing data is the ledger benchmark's: N monthly subscriptions billed for their first
month and their revenue closed at the month's end, giving N invoices and N revenue journals in
the outbox (not timed; kept under /tmp/connector-bench). By default each invoice has its own
customer (N contacts); ``--invoices-per-customer K`` gives N/K customers of K invoices each.
``--invoices-only`` drops the revenue journals from the outbox before the push.

In a fresh process, on a copy of that SQLite database in a temporary directory, the fake Xero
runs in the same process (a threaded HTTPS server) and ``push`` posts the whole outbox to it
with a ``XeroTarget``; then a second ``push`` with nothing new. Reported:

- calls spent per kind (the client's own count, and the requests the fake answered), against
  the goal: ceil(docs/50) calls per document type plus ceil(contacts/50) for contacts (Xero
  takes 50 elements a call); elements (and documents) per call;
- wall time and CPU time of the push: ``cpu_process_s`` is the whole process, the fake's
  server threads included, ``cpu_push_thread_s`` the connector's thread alone (the push makes
  its calls one after another from the thread that runs it); peak RSS of the process, its own
  high-water mark (see peak_memory.py; the fake's in-memory organisation included);
- the wall time Xero's limit of 60 calls a minute implies for those calls, and whether its
  5,000 calls a day are enough.

By default the fake's limits are raised (and the connector's limiter with them) so that the run
is not throttled. ``--throttled`` runs a smaller N (2,000 by default: ~85 calls, more than one
window's worth) against the real per-minute limit scaled down tenfold in time (60 calls per 6 s,
on both sides) and shows that the limiter keeps every window at or under 60 calls, with no 429.

The benchmark exits 1 after printing its figures when a check fails (a document not posted,
a goal missed, calls on the second push, an answer other than 200 (a 429 in the throttled run
included)).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from bench_billing_run import START, generate
from bench_ledger import CACHE, prepare, settings_for
from peak_memory import peak_rss_mib
from sqlalchemy import delete, func, select, text

from connector.accounting.chart import load_chart
from connector.accounting.xero.limits import CallLimiter
from connector.accounting.xero.target import XeroTarget
from connector.db import tables
from connector.db.engine import make_engine, session_factory, transaction
from connector.db.migrate import head_revision
from connector.settings import Settings, load_settings
from connector.sync.billing_run import run_billing
from connector.sync.push import push
from connector.sync.revenue_close import close_revenue
from sandbox.xero.app import API_PREFIX
from sandbox.xero.server import XeroConfig, XeroSandbox

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "mappings" / "accounting.yaml"
XERO_BATCH = 50  # elements per call Xero takes
XERO_PER_MINUTE = 60
XERO_PER_DAY = 5000
THROTTLED_WINDOW = 6.0  # the minute, ten times shorter
# What each kind of call carries: a document type of the outbox, or contacts.
KIND_OF_CALL = {
    "PUT Contacts": "contacts",
    "POST Contacts": "contacts",
    "PUT Invoices": "invoice",
    "PUT CreditNotes": "credit_note",
    "PUT Payments": "payment",
    "POST Invoices": "void",
    "PUT ManualJournals": "revenue",
}
STORE_TABLE = {
    "contacts": "contacts",
    "invoice": "invoices",
    "credit_note": "credit_notes",
    "payment": "payments",
    "revenue": "manual_journals",
}


# -- the billing data (not timed) -----------------------------------------------------------------
def prepare_shared(count: int, per_customer: int) -> Path:
    """N invoices and N revenue journals in the outbox, on N / ``per_customer`` customers."""
    if per_customer == 1:
        return prepare(count)  # the ledger benchmark's database, shared with it
    billed = CACHE / f"xero-{head_revision()}-{count}-per{per_customer}.db"
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
    customers = math.ceil(count / per_customer)
    with transaction(factory) as session:  # subscription i belongs to customer ceil(i / K)
        for table in ("contracts", "subscriptions"):
            session.execute(
                text(f"UPDATE {table} SET customer_id = (id - 1) / :k + 1"),
                {"k": per_customer},
            )
        session.execute(delete(tables.Customer).where(tables.Customer.id > customers))
    settings = settings_for(work, CACHE / "unused.beancount")
    run_billing(factory, settings, START)
    close_revenue(factory, date(START.year, START.month, 31))
    engine.dispose()
    work.replace(billed)
    return billed


# -- the measured process -------------------------------------------------------------------------
def xero_settings(database: Path, xero: XeroSandbox) -> Settings:
    """accounting.target = xero on the fake organisation (as tests/conftest.py's
    ``xero_settings``)."""
    return load_settings(
        None,
        database_url=f"sqlite:///{database}",
        ledger={"path": database.with_name("unused.beancount")},
        accounting={"target": "xero", "mapping_file": str(MAPPING)},
        xero={
            "client_id": xero.config.client_id,
            "client_secret": xero.config.client_secret,
            "tenant_id": xero.config.tenant_id,
            "api_url": xero.api_url,
            "token_url": xero.token_url,
            "authorize_url": xero.authorize_url,
            "connections_url": xero.connections_url,
            "ca_file": str(xero.ca_file),
        },
    )


class AdmittedCalls:
    """The times of the calls the fake admitted (counted against its limits)."""

    def __init__(self, xero: XeroSandbox) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()
        admit = xero.limits.admit
        monotonic = xero.limits.monotonic

        def counted(tenant_id: str) -> Any:
            refusal = admit(tenant_id)
            if refusal is None:
                with self._lock:
                    self.times.append(monotonic())
            return refusal

        xero.limits.admit = counted  # type: ignore[method-assign]

    def busiest_window(self, seconds: float) -> int:
        """The most calls admitted within any ``seconds`` (the fake's sliding window)."""
        times, most, first = sorted(self.times), 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= seconds:
                first += 1
            most = max(most, last - first + 1)
        return most


def server_counts(xero: XeroSandbox, since: int = 0) -> dict[str, Any]:
    """The API requests the fake answered, per kind: calls Xero counts (``by_kind``; a 429 is
    not counted against any limit) and calls it refused with 429 (``refused_429``)."""
    recorded = xero.requests[since:]
    api = [r for r in recorded if r.path.startswith(API_PREFIX)]

    def kind(r: Any) -> str:
        return f"{r.method} {r.path[len(API_PREFIX) :].strip('/').split('/')[0]}"

    counted = Counter(kind(r) for r in api if r.status != 429)
    refused = Counter(kind(r) for r in recorded if r.status == 429)
    return {
        "api_requests": len(api),
        "by_kind": dict(sorted(counted.items())),
        "refused_429": dict(sorted(refused.items())),
        "other_requests": len(recorded) - len(api),  # the token endpoint (not an API call)
        "status_429": sum(r.status == 429 for r in recorded),
        "not_200": sum(r.status not in (200, 429) for r in api),
    }


def outbox_types(factory: Any) -> dict[str, int]:
    with transaction(factory) as session:
        rows = session.execute(
            select(tables.Outbox.document_type, func.count()).group_by(tables.Outbox.document_type)
        ).all()
    return {kind: count for kind, count in sorted(rows)}


def measure(database: Path, throttled: bool, invoices_only: bool) -> dict[str, Any]:
    """Run in a child process: the fake Xero, then the push and a push with nothing new."""
    engine = make_engine(f"sqlite:///{database}")
    factory = session_factory(engine)
    if invoices_only:
        with transaction(factory) as session:
            session.execute(delete(tables.Outbox).where(tables.Outbox.document_type == "revenue"))
    with transaction(factory) as session:
        customers = session.scalar(select(func.count()).select_from(tables.Customer)) or 0
    documents = outbox_types(factory)
    if throttled:
        config = XeroConfig(minute_limit=XERO_PER_MINUTE, minute_seconds=THROTTLED_WINDOW)
    else:
        config = XeroConfig(minute_limit=100_000, day_limit=10**9, app_minute_limit=10**9)

    def limiter() -> CallLimiter:
        if throttled:
            return CallLimiter(XERO_PER_MINUTE, 5, window=THROTTLED_WINDOW)
        return CallLimiter(per_minute=10**6, concurrent=5)

    with XeroSandbox(config) as xero:
        admitted = AdmittedCalls(xero)
        settings = xero_settings(database, xero)
        chart = load_chart(MAPPING)
        target = XeroTarget(settings, factory, chart.xero, limiter=limiter())
        rss_before = peak_rss_mib()
        wall, cpu, thread_cpu = time.perf_counter(), time.process_time(), time.thread_time()
        result = push(factory, settings, target)
        wall = time.perf_counter() - wall
        cpu, thread_cpu = time.process_time() - cpu, time.thread_time() - thread_cpu
        rss = peak_rss_mib()
        server = server_counts(xero)
        stored = {kind: len(getattr(xero.store, table)) for kind, table in STORE_TABLE.items()}
        busiest = admitted.busiest_window(config.minute_seconds)

        seen = len(xero.requests)
        again = XeroTarget(settings, factory, chart.xero, limiter=limiter())
        began = time.perf_counter()
        second = push(factory, settings, again)
        second_wall = time.perf_counter() - began
        second_server = server_counts(xero, seen)
    engine.dispose()
    return {
        "customers": customers,
        "outbox": documents,
        "push": {
            **result.to_dict(),
            "parked": len(result.parked),
            "parked_examples": dict(list(result.parked.items())[:3]),
            "wall_s": round(wall, 2),
            "cpu_process_s": round(cpu, 2),
            "cpu_push_thread_s": round(thread_cpu, 2),
            "peak_rss_mib": round(rss, 1),
            "peak_rss_before_push_mib": round(rss_before, 1),
        },
        "client_calls": dict(sorted(target.client.calls.items())),
        "client_retries": target.client.retries,
        "limiter_waited_s": round(target.client.limiter.waited, 2),
        "server": server,
        "busiest_window": {"seconds": config.minute_seconds, "calls": busiest},
        "stored": stored,
        "second_push": {
            **second.to_dict(),
            "parked": len(second.parked),
            "client_calls": again.client.total_calls,
            "server": second_server,
            "wall_s": round(second_wall, 3),
        },
    }


# -- figures --------------------------------------------------------------------------------------
def goals(figures: dict[str, Any]) -> dict[str, Any]:
    """Calls per kind (those Xero counts: 429s left out) against ceil(elements/50), and
    elements (documents) per call."""
    wanted = {"contacts": figures["customers"], **figures["outbox"]}
    spent: Counter[str] = Counter()
    other = 0
    for kind, calls in figures["server"]["by_kind"].items():
        if kind in KIND_OF_CALL:
            spent[KIND_OF_CALL[kind]] += calls
        else:
            other += calls  # lookups and the organisation's base currency
    rows = {}
    for kind, count in wanted.items():
        goal = math.ceil(count / XERO_BATCH)
        calls = spent[kind]
        rows[kind] = {
            "documents": count,
            "calls": calls,
            "goal": goal,
            "met": calls <= goal,
            "xero_elements": figures["stored"].get(kind),
            "documents_per_call": round(count / calls, 1) if calls else None,
            "elements_per_call": (
                round(figures["stored"][kind] / calls, 1)
                if calls and kind in figures["stored"]
                else None
            ),
        }
    total = sum(figures["server"]["by_kind"].values())
    goal_total = sum(row["goal"] for row in rows.values())
    return {
        "by_kind": rows,
        "other_calls": other,
        "total_calls": total,
        "goal_total": goal_total,
        "met": all(row["met"] for row in rows.values()) and total <= goal_total,
    }


def limits(total: int) -> dict[str, Any]:
    minutes = total / XERO_PER_MINUTE
    return {
        "minutes_at_60_a_minute": round(minutes, 1),
        "wall_time_at_60_a_minute": f"{int(minutes // 60)} h {minutes % 60:04.1f} min",
        "day_limit": XERO_PER_DAY,
        "within_day_limit": total <= XERO_PER_DAY,
        "share_of_day_limit": f"{100 * total / XERO_PER_DAY:.1f}%",
        "days_needed": max(1, math.ceil(total / XERO_PER_DAY)),
    }


def checks(figures: dict[str, Any], throttled: bool) -> list[str]:
    problems = []
    push_figures, second = figures["push"], figures["second_push"]
    documents = sum(figures["outbox"].values())
    if push_figures["posted"] != documents:
        problems.append(f"{push_figures['posted']} of {documents} documents posted")
    if push_figures["parked"] or push_figures["pending"]:
        problems.append(f"parked {push_figures['parked']}, pending {push_figures['pending']}")
    if figures["stored"]["contacts"] != figures["customers"]:
        problems.append(f"{figures['stored']['contacts']} contacts for {figures['customers']}")
    if not figures["goal"]["met"]:
        problems.append("the goal of ceil(n/50) calls per kind is missed")
    if second["client_calls"] or second["server"]["api_requests"] or second["posted"]:
        problems.append(f"the second push made {second['client_calls']} calls")
    if figures["server"]["status_429"]:
        problems.append(f"{figures['server']['status_429']} answers 429")
    if figures["server"]["not_200"]:
        problems.append(f"{figures['server']['not_200']} API answers neither 200 nor 429")
    if throttled and figures["busiest_window"]["calls"] > XERO_PER_MINUTE:
        problems.append(f"{figures['busiest_window']['calls']} calls within one window")
    return problems


def table(figures: dict[str, Any]) -> str:
    goal, push_figures = figures["goal"], figures["push"]
    lines = [
        f"invoices {figures['invoices']:,}, customers {figures['customers']:,}, outbox "
        + ", ".join(f"{kind} {count:,}" for kind, count in figures["outbox"].items()),
        "",
        f"{'kind':<12} {'documents':>9} {'calls':>6} {'goal':>6} {'met':>4} "
        f"{'Xero elements':>13} {'docs/call':>9} {'elements/call':>13}",
    ]
    for kind, row in goal["by_kind"].items():
        lines.append(
            f"{kind:<12} {row['documents']:>9,} {row['calls']:>6,} {row['goal']:>6,} "
            f"{'yes' if row['met'] else 'NO':>4} {row['xero_elements'] or 0:>13,} "
            f"{row['documents_per_call'] or 0:>9} {row['elements_per_call'] or 0:>13}"
        )
    lines += [
        f"{'other':<12} {'':>9} {goal['other_calls']:>6,}",
        f"{'total':<12} {'':>9} {goal['total_calls']:>6,} {goal['goal_total']:>6,} "
        f"{'yes' if goal['met'] else 'NO':>4}",
        "",
        "client calls (target.client.calls, 429s included): "
        + ", ".join(f"{kind} {n:,}" for kind, n in figures["client_calls"].items()),
        "fake Xero counted (xero.requests, 429s left out): "
        + ", ".join(f"{kind} {n:,}" for kind, n in figures["server"]["by_kind"].items())
        + f"; 429s {figures['server']['status_429']}"
        + (f" {figures['server']['refused_429']}" if figures["server"]["refused_429"] else "")
        + f"; token requests {figures['server']['other_requests']}",
        f"push: posted {push_figures['posted']:,}, parked {push_figures['parked']}, pending "
        f"{push_figures['pending']}; wall {push_figures['wall_s']:.2f} s, CPU "
        f"{push_figures['cpu_process_s']:.2f} s (process) / "
        f"{push_figures['cpu_push_thread_s']:.2f} s (push thread), peak RSS "
        f"{push_figures['peak_rss_mib']:.1f} MiB (before the push "
        f"{push_figures['peak_rss_before_push_mib']:.1f})",
        f"at Xero's 60 calls/min: {figures['limits']['wall_time_at_60_a_minute']} "
        f"({figures['limits']['minutes_at_60_a_minute']} min); day limit 5,000: "
        f"{goal['total_calls']:,} calls = {figures['limits']['share_of_day_limit']}, "
        f"{'enough' if figures['limits']['within_day_limit'] else 'NOT enough'} "
        f"({figures['limits']['days_needed']} day(s))",
        f"limiter waited {figures['limiter_waited_s']} s; busiest "
        f"{figures['busiest_window']['seconds']:g} s window: "
        f"{figures['busiest_window']['calls']} calls",
        f"second push (nothing new): posted {figures['second_push']['posted']}, client calls "
        f"{figures['second_push']['client_calls']}, API requests "
        f"{figures['second_push']['server']['api_requests']}, wall "
        f"{figures['second_push']['wall_s']} s",
    ]
    return "\n".join(lines)


def run(count: int, per_customer: int, throttled: bool, invoices_only: bool) -> dict[str, Any]:
    CACHE.mkdir(exist_ok=True)
    shared = prepare_shared(count, per_customer)
    work = Path(tempfile.mkdtemp(prefix="bench-xero-"))
    database = work / "billing.db"
    shutil.copy(shared, database)
    try:
        command = [sys.executable, __file__, "--child", str(database)]
        command += ["--throttled"] * throttled + ["--invoices-only"] * invoices_only
        began = time.perf_counter()
        output = subprocess.run(command, check=False, capture_output=True, text=True)
        if output.returncode != 0:
            raise SystemExit(f"the push exited {output.returncode}:\n{output.stderr[-3000:]}")
        figures = json.loads(output.stdout.strip().splitlines()[-1])
        figures["child_wall_s"] = round(time.perf_counter() - began, 2)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {"invoices": count, "throttled": throttled, **figures}
    figures["goal"] = goals(figures)
    figures["limits"] = limits(figures["goal"]["total_calls"])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, help="N (default 10,000; 2,000 with --throttled)")
    parser.add_argument(
        "--invoices-per-customer",
        type=int,
        default=1,
        help="invoices of each customer (default 1: N contacts)",
    )
    parser.add_argument(
        "--invoices-only", action="store_true", help="leave the revenue journals out"
    )
    parser.add_argument(
        "--throttled",
        action="store_true",
        help=f"Xero's 60 calls per window, the window shortened to {THROTTLED_WINDOW:g} s",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(measure(options.child, options.throttled, options.invoices_only)))
        return
    count = options.invoices or (2_000 if options.throttled else 10_000)
    began = time.perf_counter()
    figures = run(count, options.invoices_per_customer, options.throttled, options.invoices_only)
    figures["benchmark_wall_s"] = round(time.perf_counter() - began, 2)
    print(table(figures))
    print(json.dumps(figures))
    problems = checks(figures, options.throttled)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
