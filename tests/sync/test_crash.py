"""Kill the billing run (SIGKILL) again and again while it writes, run it again, and compare with
a run that was never interrupted: the same documents, numbers and charges, nothing twice, no gap.

The run commits a batch of two subscriptions at a time; each kill waits until the documents
committed (counted over a connection of the test's own) reach a target drawn at random strictly
between the count the process started from and the count the whole run ends at, so every kill
lands after the process has committed some batches and before it has committed the last."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import Frequency
from connector.db import tables
from connector.db.engine import make_engine, session_factory, transaction
from connector.db.migrate import upgrade
from connector.settings import load_settings
from connector.sync import contracts
from connector.sync.billing_run import run_billing
from tests import builders
from tests.kills import Progress, empty, kill_repeatedly, rows_of

AS_OF = "2026-03-01"
SUBSCRIPTIONS = 150
BATCH_SIZE = 2
KILLS = 5
ATTEMPTS = 10  # processes at most: a kill that does not land mid-run is tried again


def _scenario(factory: sessionmaker[Session]) -> None:
    """Weekly and monthly subscriptions, billed once for January, then cancellations, so the
    interrupted run issues invoices and credit notes."""
    ids = [
        builders.simple_subscription(
            factory,
            start=date(2026, 1, 1) if n % 2 else date(2026, 1, 15),
            ref=f"C{n}",
            frequency=Frequency.WEEKLY if n % 3 else Frequency.MONTHLY,
            quantity=n % 7 + 1,
        )
        for n in range(SUBSCRIPTIONS)
    ]
    settings = load_settings(database_url="sqlite://", tax={"rates": {"US": "7.25"}})
    run_billing(factory, settings, date(2026, 1, 20))
    with transaction(factory) as session:
        for sub_id in ids[::5]:
            contracts.cancel_subscription(session, sub_id, cancel_date=date(2026, 1, 18))


def _state(factory: sessionmaker[Session]) -> tuple[list[tuple], list[tuple]]:
    with factory() as session:
        docs = session.execute(
            select(
                tables.Document.kind,
                tables.Document.number,
                tables.Document.subscription_id,
                tables.Document.period_start,
                tables.Document.total,
            ).order_by(tables.Document.kind, tables.Document.number)
        ).all()
        charges = session.execute(
            select(
                tables.Charge.subscription_item_id, tables.Charge.period_start, tables.Charge.amount
            ).order_by(
                tables.Charge.subscription_item_id,
                tables.Charge.period_start,
                tables.Charge.revision,
            )
        ).all()
    return [tuple(d) for d in docs], [tuple(c) for c in charges]


def _bill_command(database_url: str) -> tuple[list[str], dict[str, str]]:
    env = {
        **os.environ,
        "CONNECTOR_DATABASE_URL": database_url,
        "CONNECTOR_BILLING__BATCH_SIZE": str(BATCH_SIZE),
        "CONNECTOR_TAX__RATES": '{"US": "7.25"}',
    }
    return [sys.executable, "-m", "connector", "bill", "--as-of", AS_OF, "--json"], env


def test_killed_billing_runs_end_exactly_like_an_uninterrupted_run(
    factory: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    reference_engine = make_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    upgrade(reference_engine)
    reference = session_factory(reference_engine)
    _scenario(reference)
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'reference.db'}", tax={"rates": {"US": "7.25"}}
    )
    run_billing(reference, settings, date.fromisoformat(AS_OF))
    expected = _state(reference)
    reference_engine.dispose()

    command, env = _bill_command(database_url)

    def set_up() -> None:
        empty(database_url)
        _scenario(factory)

    def launch() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    with rows_of(database_url, tables.Document) as count:
        kills = kill_repeatedly(
            launch,
            Progress(count, total=len(expected[0])),
            set_up,
            kills=KILLS,
            attempts=ATTEMPTS,
            rng=random.Random(20261121),
        )
    finished = subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    # Every kill landed mid-run: the process had committed batches, and not the last one.
    assert len(kills) == KILLS
    for kill in kills:
        assert kill.start < kill.before <= kill.after < len(expected[0]), kill
    # What a killed process committed stays: the next one starts from it.
    assert [k.start for k in kills[1:]] == [k.after for k in kills[:-1]]
    assert finished.returncode == 0, finished.stderr
    documents, charges = _state(factory)
    assert documents == expected[0]
    assert charges == expected[1]
    invoice_numbers = [d[1] for d in documents if d[0] == "invoice"]
    assert invoice_numbers == [f"INV-{n:06d}" for n in range(1, len(invoice_numbers) + 1)]
    assert sum((c[2] for c in charges), Decimal(0)) == sum((c[2] for c in expected[1]), Decimal(0))
