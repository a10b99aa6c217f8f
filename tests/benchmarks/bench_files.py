"""Benchmark: the write-back attaching documents' PDFs as Salesforce Files, against the sandbox
org over HTTPS on loopback, on SQLite.

    python tests/benchmarks/bench_files.py --files 100

N deals are billed once (one invoice each, its Billing_Invoice__c record written back, no
file). Then the write-back attaches the N PDFs (first versions: ContentVersion with
FirstPublishLocationId), then, after a payment on each invoice, their next versions (a new
version of each file), then runs once
more with nothing to do. For each run it prints the seconds, the API calls and the calls per
file. It exits 1 unless every file is in the org once per version and the idle run made no
call.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from simple_salesforce import Salesforce  # noqa: E402
from sqlalchemy import select  # noqa: E402

from connector.crm.client import SalesforceClient  # noqa: E402
from connector.db import tables  # noqa: E402
from connector.db.engine import make_engine, session_factory, transaction  # noqa: E402
from connector.db.migrate import upgrade  # noqa: E402
from connector.settings import load_settings  # noqa: E402
from connector.sync import settlement, writeback  # noqa: E402
from connector.sync.cycle import Runtime, run_cycle  # noqa: E402
from connector.sync.rendering import render_new  # noqa: E402
from connector.sync.writeback_files import mark_files  # noqa: E402
from sandbox.salesforce.testing import connect, running_sandbox  # noqa: E402
from tests.sync.test_salesforce_view import MARCH_START, Crm, settings_for  # noqa: E402

TAX_RATES = {"GB": "20"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100)
    files = parser.parse_args().files
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite:///{folder / 'connector.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    base = load_settings(
        None,
        database_url=url,
        ledger={"path": folder / "ledger.beancount"},
        accounting={"mapping_file": str(ROOT / "mappings" / "accounting.yaml")},
        tax={"rates": TAX_RATES},
    )
    figures: dict[str, dict[str, float]] = {}
    with running_sandbox() as sandbox:
        sf: Salesforce = connect(sandbox)
        settings = settings_for(base, sandbox)
        off = settings.model_copy(
            update={
                "salesforce": settings.salesforce.model_copy(update={"attach_documents": False})
            }
        )
        crm = Crm(sf)
        for index in range(files):
            crm.deal(f"Deal {index:05d}")
        run_cycle(factory, off, MARCH_START)

        def attach(name: str, as_of: date = MARCH_START) -> None:
            client = SalesforceClient(settings.salesforce)
            started = time.perf_counter()
            result = writeback.write_back(factory, client, as_of)
            seconds = time.perf_counter() - started
            figures[name] = {
                "seconds": round(seconds, 3),
                "api_calls": result.api_calls,
                "calls_per_file": round(result.api_calls / files, 3),
                "uploaded": result.files.get("uploaded", 0),
            }

        with transaction(factory) as session:
            mark_files(session, list(session.scalars(select(tables.Document.id))))
        attach("first versions")
        with transaction(factory) as session:  # a payment: each invoice's next version
            for number in session.scalars(select(tables.Document.number)):
                settlement.record_payment(
                    session, amount="1.00", received_on=MARCH_START, invoice_number=number
                )
        render_new(Runtime(factory, settings))  # keeps the new PDFs and queues their files
        attach("next versions")
        attach("idle")
        held = sf.query_all("SELECT PathOnClient, VersionNumber FROM ContentVersion")["records"]
    for name, values in figures.items():
        print(f"{name}: {json.dumps(values)}")
    pairs = {(row["PathOnClient"], row["VersionNumber"]) for row in held}
    ok = (
        len(held) == len(pairs) == 2 * files
        and figures["idle"]["api_calls"] == 0
        and figures["first versions"]["uploaded"] == figures["next versions"]["uploaded"] == files
    )
    if not ok:
        print(f"FAILED: {len(held)} versions held, {len(pairs)} distinct", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
