from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.settings import Settings
from connector.sync.cycle import Runtime
from jobs.billing import bill
from tests import builders


def test_billing_job_bills_what_is_due_and_records_its_run(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), unit_amount="9.90")
    runtime = Runtime(factory, settings)

    first = bill(runtime, date(2026, 2, 1))
    again = bill(runtime, date(2026, 2, 1))

    assert (first.ok, first.result.invoices, first.result.invoiced["USD"]) == (
        True,
        2,
        Decimal("198.00"),
    )
    assert (again.ok, again.result.invoices) == (True, 0)
    with factory() as session:
        runs = session.scalars(select(tables.JobRun).order_by(tables.JobRun.id)).all()
    assert [(run.job, run.ok, run.error) for run in runs] == [("bill", True, None)] * 2
    assert runs[0].summary is not None and runs[0].summary["invoices"] == 2
    assert runs[1].summary is not None and runs[1].summary["invoices"] == 0


def test_a_failed_billing_job_is_recorded_with_its_error(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), unit_amount="9.90")
    runtime = Runtime(factory, settings)
    bill(runtime, date(2026, 2, 1))

    backwards = bill(runtime, date(2026, 1, 15))

    assert backwards.ok is False
    assert backwards.error == (
        "as-of date 2026-01-15 is before the last issued document (2026-02-01); document dates "
        "must not go backwards within a numbering series"
    )
    with factory() as session:
        last = session.scalars(select(tables.JobRun).order_by(tables.JobRun.id.desc())).first()
    assert last is not None
    assert (last.job, last.ok, last.error, last.summary) == ("bill", False, backwards.error, None)
