"""Benchmark: the full sync cycle (pull, bill, close revenue, push to the ledger, read payments,
write back to Salesforce) over N won deals, as ``connector sync --once`` runs it.

    python tests/benchmarks/bench_cycle.py --deals 10000 [--as-of 2026-02-28]

The org of the CRM-pull benchmark (N won deals of 3 line items each on N/10 accounts, service
from 2026-02-01, billed monthly) is generated once and kept under /tmp/connector-bench (not
timed). ``connector sandbox serve`` serves a copy of it in its own process. Then
``connector sync --once --as-of D --json`` runs three times, each in a fresh process, on one
new SQLite database and ledger.

In between, the org has to become quiet: the first cycle's write-back updated every account and
deal (their ``SystemModstamp`` moved), so the next pull reads them all again and finds them
unchanged; a pull reads again what is stamped within ``lookback_minutes`` of the org's time of
its last read. The benchmark runs with a lookback of one minute (``--lookback-minutes``) and
waits that long after the first cycle, so there are three runs:

1. the first cycle;
2. "write-back read back": the accounts and deals the first cycle wrote back come back changed
   and are found unchanged; nothing else is done;
3. "nothing changed": an org quiet for a lookback: nothing is read, billed, posted or written.

Each reports its wall time (the whole process: start-up, migrations and the six stages), its
own peak resident memory (``ru_maxrss`` of exactly that process, from ``wait4`` in a small
launcher: see peak_memory.py), the API calls it spent (by stage) and what it did, and each
stage's time (from ``job_runs``). The first cycle must bill every deal and write everything
back, the second find nothing to do, the third read nothing; otherwise the benchmark exits 1
after printing its figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench_crm_pull import CACHE, generate
from peak_memory import run_measured
from sqlalchemy import select

from connector.db import tables
from connector.db.engine import make_engine, session_factory
from connector.sync.cycle import STAGES

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AS_OF = date(2026, 2, 28)  # the deals' first month (from 2026-02-01) is billed and closed
CYCLES = ("first_cycle", "read_back", "nothing_changed")
SUBSCRIPTION = "Billing_Subscription__c"
INVOICE = "Billing_Invoice__c"
BATCH = 200  # records per sObject Collections call


def template(deals: int) -> Path:
    """The generated org, shared with the CRM-pull benchmark."""
    CACHE.mkdir(exist_ok=True)
    org = CACHE / f"org-{deals}.db"
    if not org.exists():
        print(f"generating an org with {deals} won deals in {org} ...", file=sys.stderr)
        partial = org.with_suffix(".tmp")
        for suffix in ("", "-wal", "-shm"):  # what an interrupted run left
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
        generate(partial, deals)
        partial.replace(org)
    return org


def serve(org: Path, info: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            str(BIN / "connector"),
            "sandbox",
            "serve",
            "--port",
            "0",
            "--data",
            str(org),
            "--info-file",
            str(info),
            "--daily-api-limit",
            "1000000",
        ],
        stdout=subprocess.DEVNULL,
        cwd=org.parent,
    )
    deadline = time.monotonic() + 120
    while not info.exists():
        if server.poll() is not None:
            raise SystemExit(f"the sandbox exited with {server.returncode}")
        if time.monotonic() > deadline:
            server.kill()
            raise SystemExit("the sandbox did not start within 120 s")
        time.sleep(0.1)
    return server


def environment(info: dict[str, Any], work: Path, lookback: int = 10) -> dict[str, str]:
    """The settings of ``connector sync``: only these, whatever the caller's environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONNECTOR_")}
    return {
        **env,
        "PYTHONWARNINGS": "ignore",
        "CONNECTOR_DATABASE_URL": f"sqlite:///{work / 'billing.db'}",
        "CONNECTOR_LEDGER__PATH": str(work / "ledger.beancount"),
        "CONNECTOR_ACCOUNTING__MAPPING_FILE": str(ROOT / "mappings" / "accounting.yaml"),
        "CONNECTOR_SALESFORCE__MAPPING_FILE": str(ROOT / "mappings" / "salesforce.yaml"),
        "CONNECTOR_SALESFORCE__INSTANCE_URL": info["instance_url"],
        "CONNECTOR_SALESFORCE__SESSION_ID": info["session_id"],
        "CONNECTOR_SALESFORCE__CA_FILE": info["ca_file"],
        "CONNECTOR_LOG_LEVEL": "INFO",
        "CONNECTOR_DOCUMENTS__RENDER": "false",  # rendering: bench_documents.py
        "CONNECTOR_SALESFORCE__LOOKBACK_MINUTES": str(lookback),
    }


def stage_seconds(database: Path, after: int) -> tuple[dict[str, float], int]:
    """Seconds of each stage recorded in ``job_runs`` after row ``after``, and the last row."""
    engine = make_engine(f"sqlite:///{database}")
    try:
        with session_factory(engine)() as session:
            runs = session.scalars(
                select(tables.JobRun).where(tables.JobRun.id > after).order_by(tables.JobRun.id)
            ).all()
            seconds = {
                run.job: round((run.finished_at - run.started_at).total_seconds(), 2)
                for run in runs
                if run.finished_at is not None
            }
            return seconds, max((run.id for run in runs), default=after)
    finally:
        engine.dispose()


def cycle(
    name: str, as_of: date, env: dict[str, str], work: Path, timeout: float
) -> dict[str, Any]:
    """One ``connector sync --once`` in a fresh process: its figures and its JSON summary."""
    out, err = work / f"{name}.out", work / f"{name}.err"
    command = [str(BIN / "connector"), "sync", "--once", "--as-of", as_of.isoformat(), "--json"]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        try:
            run = run_measured(
                command, stdout=stdout, stderr=stderr, env=env, cwd=work, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            run = None
    tail = "\n".join(err.read_text().strip().splitlines()[-20:])
    if run is None:
        raise SystemExit(f"{name}: killed: over --timeout ({timeout:g} s)\n{tail}")
    try:
        summary: dict[str, Any] = json.loads(out.read_text())
    except json.JSONDecodeError:
        raise SystemExit(
            f"{name}: exit {run.exit} after {run.seconds:.0f} s, no JSON summary\n{tail}"
        ) from None
    return {
        "exit": run.exit,
        "seconds": round(run.seconds, 2),
        "peak_rss_mb": round(run.peak_rss_mib),
        "cpu_seconds": round(run.cpu_seconds, 2),
        "summary": summary,
    }


def figures(run: dict[str, Any], stage_time: dict[str, float]) -> dict[str, Any]:
    """What a cycle did, from its JSON summary."""
    summary = run["summary"]
    stages = summary["stages"]
    pull = stages.get("pull", {})
    bill = stages.get("bill", {})
    revenue = stages.get("revenue", {})
    push = stages.get("push", {})
    payments = stages.get("payments", {})
    written = stages.get("writeback", {})
    pull_calls = pull.get("api_calls", 0)
    writeback_calls = written.get("api_calls", 0)
    return {
        "exit": run["exit"],
        "clean": summary["clean"],
        "errors": summary["errors"],
        "seconds": run["seconds"],
        "cpu_seconds": run["cpu_seconds"],
        "peak_rss_mb": run["peak_rss_mb"],
        "api_calls": {
            "total": summary["api_calls"],
            "pull": pull_calls,
            "writeback": writeback_calls,
            "other": summary["api_calls"] - pull_calls - writeback_calls,
        },
        "stage_seconds": {stage: stage_time.get(stage) for stage in STAGES},
        "pulled": {
            "fetched": pull.get("fetched", {}),
            "applied": pull.get("applied", 0),
            "unchanged": pull.get("unchanged", 0),
            "quarantined": pull.get("quarantined", 0),
            "held": pull.get("held", 0),
        },
        "billed": {
            "subscriptions": bill.get("subscriptions", 0),
            "invoices": bill.get("invoices", 0),
            "credit_notes": bill.get("credit_notes", 0),
            "failed": len(bill.get("failed", {})),
        },
        "revenue_journals": revenue.get("journals", 0),
        "ledger": {
            "posted": push.get("posted", 0),
            "already_there": push.get("already_there", 0),
            "pending": push.get("pending", 0),
            "parked": len(push.get("parked", {})),
        },
        "payments_recorded": payments.get("recorded", 0),
        "written_back": {
            "sent": written.get("sent", {}),
            "unchanged": written.get("unchanged", 0),
            "failed": len(written.get("failed", {})),
        },
    }


def checks(
    deals: int, first: dict[str, Any], second: dict[str, Any], third: dict[str, Any]
) -> list[str]:
    """What went wrong: cycle 1 bills and writes back every deal; cycle 2 reads the accounts
    and deals written back and finds nothing to do; cycle 3 reads nothing."""
    problems = []
    accounts = max(deals // 10, 1)
    billed, sent = first["billed"], first["written_back"]["sent"]
    invoices = billed["invoices"]
    expected = {
        "cycle 1 exit code": (first["exit"], 0),
        "cycle 1 stage errors": (first["errors"], {}),
        "cycle 1 deals applied": (first["pulled"]["applied"] >= deals, True),
        "cycle 1 subscriptions billed": (billed["subscriptions"], deals),
        "cycle 1 invoices (at least one per deal)": (invoices >= deals, True),
        "cycle 1 billing failures": (billed["failed"], 0),
        "cycle 1 ledger entries posted": (
            first["ledger"]["posted"],
            invoices + billed["credit_notes"] + first["revenue_journals"],
        ),
        "cycle 1 subscriptions written back": (sent.get(SUBSCRIPTION, 0), deals),
        "cycle 1 invoices written back": (sent.get(INVOICE, 0), invoices),
        "cycle 1 accounts written back": (sent.get("Account", 0), accounts),
        "cycle 1 write-back failures": (first["written_back"]["failed"], 0),
        "cycle 2 exit code": (second["exit"], 0),
        "cycle 2 stage errors": (second["errors"], {}),
        # The accounts written back (MRR, billing status) are read again, their stamps moved,
        # and found unchanged: nothing is applied.
        "cycle 2 records applied": (second["pulled"]["applied"], 0),
        "cycle 2 invoices": (second["billed"]["invoices"], 0),
        "cycle 2 ledger entries posted": (second["ledger"]["posted"], 0),
        "cycle 2 records written back": (second["written_back"]["sent"], {}),
        "cycle 2 write-back calls": (second["api_calls"]["writeback"], 0),
        "cycle 3 exit code": (third["exit"], 0),
        "cycle 3 stage errors": (third["errors"], {}),
        "cycle 3 records read": (sum(third["pulled"]["fetched"].values()), 0),
        "cycle 3 invoices": (third["billed"]["invoices"], 0),
        "cycle 3 ledger entries posted": (third["ledger"]["posted"], 0),
        "cycle 3 records written back": (third["written_back"]["sent"], {}),
        "cycle 3 API calls": (third["api_calls"]["total"], 1),
    }
    for what, (got, wanted) in expected.items():
        if got != wanted:
            problems.append(f"{what}: {got}, expected {wanted}")
    return problems


def run(deals: int, as_of: date, timeout: float, lookback: int) -> dict[str, Any]:
    org = template(deals)
    work = Path(tempfile.mkdtemp(prefix="bench-cycle-"))
    try:
        shutil.copy(org, work / "org.db")
        info_file = work / "info.json"
        server = serve(work / "org.db", info_file)
        try:
            env = environment(json.loads(info_file.read_text()), work, lookback)
            results: dict[str, Any] = {}
            last_run = 0
            for name in CYCLES:
                if name == "read_back":  # the write-back's updates are a lookback old
                    time.sleep(lookback * 60 + 1)
                outcome = cycle(name, as_of, env, work, timeout)
                stage_time, last_run = stage_seconds(work / "billing.db", last_run)
                results[name] = figures(outcome, stage_time)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        # The main file and the connector's files under ledger.d/
        ledger = sum(path.stat().st_size for path in work.rglob("*.beancount"))
        return {
            "deals": deals,
            "line_items": deals * 3,
            "accounts": max(deals // 10, 1),
            "as_of": as_of.isoformat(),
            "ledger_mb": round(ledger / 1_000_000, 1),
            **results,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def expected_writeback_calls(sent: dict[str, int]) -> int:
    return sum(math.ceil(count / BATCH) for count in sent.values())


def table(report: dict[str, Any]) -> str:
    cycles = [report[name] for name in CYCLES]

    def row(label: str, value: Any) -> str:
        first, second, third = (value(c) for c in cycles)
        return f"{label:<34}{first!s:>16}{second!s:>18}{third!s:>18}"

    def sent(obj: str) -> Any:
        return lambda c: c["written_back"]["sent"].get(obj, 0)

    lines = [
        f"sync cycle: {report['deals']} won deals ({report['line_items']} line items, "
        f"{report['accounts']} accounts), as of {report['as_of']}",
        f"{'':<34}{'first cycle':>16}{'read back':>18}{'nothing changed':>18}",
        row("exit code", lambda c: c["exit"]),
        row("wall time (s)", lambda c: c["seconds"]),
        row("CPU time (s)", lambda c: c["cpu_seconds"]),
        row("peak RSS (MB)", lambda c: c["peak_rss_mb"]),
        row("API calls", lambda c: c["api_calls"]["total"]),
        row("  pull", lambda c: c["api_calls"]["pull"]),
        row("  write-back", lambda c: c["api_calls"]["writeback"]),
        row(
            f"  write-back at {BATCH}/call",
            lambda c: expected_writeback_calls(c["written_back"]["sent"]),
        ),
        row("  other", lambda c: c["api_calls"]["other"]),
        *(row(f"{stage} (s)", lambda c, s=stage: c["stage_seconds"][s]) for stage in STAGES),
        row("fetched: accounts", lambda c: c["pulled"]["fetched"].get("Account", 0)),
        row("fetched: opportunities", lambda c: c["pulled"]["fetched"].get("Opportunity", 0)),
        row("records applied", lambda c: c["pulled"]["applied"]),
        row("records unchanged", lambda c: c["pulled"]["unchanged"]),
        row("quarantined / held", lambda c: f"{c['pulled']['quarantined']}/{c['pulled']['held']}"),
        row("subscriptions billed", lambda c: c["billed"]["subscriptions"]),
        row("invoices", lambda c: c["billed"]["invoices"]),
        row("revenue journals", lambda c: c["revenue_journals"]),
        row("ledger entries posted", lambda c: c["ledger"]["posted"]),
        row("payments recorded", lambda c: c["payments_recorded"]),
        row("written back: subscriptions", sent(SUBSCRIPTION)),
        row("written back: invoices", sent(INVOICE)),
        row("written back: accounts", sent("Account")),
        row("written back: opportunities", sent("Opportunity")),
        row("written back: unchanged", lambda c: c["written_back"]["unchanged"]),
        f"ledger: {report['ledger_mb']} MB",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=AS_OF,
        help=f"business date of both cycles (default {AS_OF}: the deals' first month)",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds before a cycle is killed"
    )
    parser.add_argument(
        "--lookback-minutes",
        type=int,
        default=1,
        help="the pulls' lookback; the benchmark waits this long after the first cycle",
    )
    options = parser.parse_args()
    report = run(options.deals, options.as_of, options.timeout, options.lookback_minutes)
    print(table(report))
    print(json.dumps(report))
    problems = checks(options.deals, *(report[name] for name in CYCLES))
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
