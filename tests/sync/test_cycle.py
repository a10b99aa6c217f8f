"""One cycle end to end against the sandbox: pull, bill, close revenue, push, write back."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.errors import ConfigError
from connector.settings import SalesforceSettings, Settings
from connector.sync.cycle import STAGES, run_cycle
from sandbox.salesforce.server import Sandbox
from sandbox.xero.server import XeroSandbox


@pytest.fixture
def cycle_settings(ledger_settings: Settings, salesforce_sandbox: Sandbox) -> Settings:
    salesforce = SalesforceSettings(
        instance_url=salesforce_sandbox.instance_url,
        session_id=salesforce_sandbox.session_id,
        ca_file=str(salesforce_sandbox.ca_file),
        backoff_initial_seconds=0.001,
    )
    return ledger_settings.model_copy(update={"salesforce": salesforce})


@pytest.mark.sandbox(seed="demo")
def test_a_cycle_bills_deals_and_writes_invoices_back(
    factory: sessionmaker[Session], cycle_settings: Settings, salesforce_sandbox: Sandbox
) -> None:
    first = run_cycle(factory, cycle_settings, date(2026, 1, 31))

    assert first.errors == {}
    assert set(first.stages) == set(STAGES)
    with factory() as session:
        documents = session.scalar(select(func.count()).select_from(tables.Document))
        runs = session.scalar(select(func.count()).select_from(tables.JobRun))
    org = salesforce_sandbox.org
    written = org.db.execute("SELECT COUNT(*) FROM Billing_Invoice__c").fetchone()[0]
    assert documents and written == documents
    assert runs == len(STAGES)
    assert first.stages["push"]["posted"] > documents  # invoices and revenue journals
    # The two deals the demo org holds back are marked on the opportunity with the reason.
    marked = org.db.execute(
        "SELECT COUNT(*) FROM Opportunity WHERE Billing_Sync_Error__c IS NOT NULL"
    ).fetchone()[0]
    assert marked == first.stages["pull"]["quarantined"] - 1  # one of the three is an account

    again = run_cycle(factory, cycle_settings, date(2026, 1, 31))

    # Nothing changed: one call (the pull's Composite query), nothing written back.
    assert again.api_calls == 1
    assert again.stages["writeback"]["sent"] == {}
    assert again.stages["writeback"]["built"] == 0  # nothing changed: no record built
    assert again.stages["push"]["posted"] == 0


@pytest.mark.sandbox(seed="demo")
def test_a_ledger_file_that_does_not_load_fails_only_the_ledger_stages(
    factory: sessionmaker[Session], cycle_settings: Settings
) -> None:
    """A byte that is not UTF-8 in finance's main file: the push and the payments read-back
    fail with its file and line, every other stage runs, the cycle after the fix is whole."""
    first = run_cycle(factory, cycle_settings, date(2026, 1, 31))
    assert first.errors == {}
    main = cycle_settings.ledger.path
    text = main.read_bytes()
    main.write_bytes(text + b'2026-02-01 note Assets:Bank "Caf\xe9"\n')
    line = len(text.splitlines()) + 1
    problem = (
        f"{main}:{line}: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9 in position "
        "3: unexpected end of data"
    )

    second = run_cycle(factory, cycle_settings, date(2026, 2, 28))

    assert second.errors == {"push": problem, "payments": problem}
    assert set(second.stages) == {
        "pull",
        "bill",
        "revenue",
        "dunning",
        "send",
        "webhooks",
        "writeback",
    }
    assert second.stages["bill"]["invoices"] > 0
    assert not second.clean

    main.write_bytes(text)  # fixed by a person
    third = run_cycle(factory, cycle_settings, date(2026, 2, 28))
    assert third.errors == {}
    assert third.stages["push"]["posted"] > second.stages["bill"]["invoices"]


def test_a_tax_type_the_xero_organisation_lacks_stops_a_cycle_before_it_does_anything(
    factory: sessionmaker[Session], xero_settings: Settings, xero_sandbox: XeroSandbox
) -> None:
    salesforce = SalesforceSettings(instance_url="https://org.invalid", session_id="unused")
    xero_settings = xero_settings.model_copy(update={"salesforce": salesforce})
    mapping = Path(xero_settings.accounting.mapping_file)
    document = yaml.safe_load(mapping.read_text())
    document["xero"]["tax_types"]["GB"] = {"20": "OUTPUT2"}  # a UK code; a US organisation
    mapping.write_text(yaml.safe_dump(document))

    with pytest.raises(ConfigError, match=r"GB 20% = OUTPUT2: the Xero organisation has no tax"):
        run_cycle(factory, xero_settings, date(2026, 1, 31))

    with factory() as session:  # no stage ran: nothing pulled, billed or recorded
        assert session.scalar(select(func.count()).select_from(tables.JobRun)) == 0
    assert [(r.method, r.path) for r in xero_sandbox.requests if "api.xro" in r.path] == [
        ("GET", "/api.xro/2.0/TaxRates")
    ]


ACCOUNTING_MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "accounting.yaml"
SALESFORCE_MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "salesforce.yaml"


def _broken_accounting(folder: Path) -> tuple[dict[str, object], str]:
    path = folder / "accounting.yaml"
    text = ACCOUNTING_MAPPING.read_text()
    assert "  deferred_revenue: Liabilities:DeferredRevenue " in text
    path.write_text(text.replace("deferred_revenue: Liabilities:", "deferred_revenue: Debts:"))
    line = text[: text.index("deferred_revenue:")].count("\n") + 1
    return {"accounting": {"mapping_file": str(path)}}, f"{path}:{line}"


def _broken_salesforce(folder: Path) -> tuple[dict[str, object], str]:
    path = folder / "salesforce.yaml"
    text = SALESFORCE_MAPPING.read_text()
    assert "  object: Account\n" in text
    path.write_text(text.replace("  object: Account\n", "  object: Account\n  colour: blue\n"))
    line = text[: text.index("  object: Account\n")].count("\n") + 2
    return {"salesforce_mapping_file": str(path)}, f"{path}:{line}"


def _no_salesforce_login(folder: Path) -> tuple[dict[str, object], str]:
    return {"salesforce": SalesforceSettings()}, "no Salesforce login is configured"


BROKEN = {
    "a bad account in mappings/accounting.yaml": _broken_accounting,
    "an unknown key in mappings/salesforce.yaml": _broken_salesforce,
    "no Salesforce login": _no_salesforce_login,
}


@pytest.mark.sandbox(seed="demo")
@pytest.mark.parametrize("case", list(BROKEN))
def test_every_mapping_and_target_is_checked_before_a_cycle_does_anything(
    case: str,
    factory: sessionmaker[Session],
    cycle_settings: Settings,
    salesforce_sandbox: Sandbox,
    tmp_path: Path,
) -> None:
    """A broken mapping or target setting stops the cycle with a configuration error naming
    it before the first stage: nothing pulled, billed, posted or recorded as run."""
    update, problem = BROKEN[case](tmp_path)
    mapping_file = update.pop("salesforce_mapping_file", None)
    if mapping_file is not None:
        salesforce = cycle_settings.salesforce.model_copy(update={"mapping_file": mapping_file})
        update["salesforce"] = salesforce
    if "accounting" in update:
        update["accounting"] = cycle_settings.accounting.model_copy(update=update["accounting"])
    settings = cycle_settings.model_copy(update=update)
    calls = salesforce_sandbox.usage.used

    with pytest.raises(ConfigError, match=re.escape(problem)):
        run_cycle(factory, settings, date(2026, 1, 31))

    with factory() as session:
        for table in (tables.JobRun, tables.CrmRecord, tables.Document, tables.Outbox):
            assert session.scalar(select(func.count()).select_from(table)) == 0, table
    assert salesforce_sandbox.usage.used == calls
    assert not settings.ledger.path.exists()


@pytest.mark.sandbox(seed="demo")
def test_records_waiting_since_an_earlier_cycle_keep_the_cycle_from_being_clean(
    factory: sessionmaker[Session], cycle_settings: Settings, salesforce_sandbox: Sandbox
) -> None:
    """Without lookback, a later pull reads only what changed since (the deal changed, what
    the write-back touched): the demo org's three records waiting for a fix are not all read
    again, and all still count (sync --once exits 1)."""
    salesforce = cycle_settings.salesforce.model_copy(update={"lookback_minutes": 0})
    settings = cycle_settings.model_copy(update={"salesforce": salesforce})
    first = run_cycle(factory, settings, date(2026, 1, 31))
    assert (first.errors, first.stages["pull"]["quarantined"], first.clean) == ({}, 3, False)
    with factory() as session:
        deal = session.scalars(
            select(tables.CrmRecord.record_id).where(
                tables.CrmRecord.object == "Opportunity", tables.CrmRecord.state == "applied"
            )
        ).first()
    assert deal is not None
    salesforce_sandbox.org.update("Opportunity", deal, {"Description": "read again"})
    run_cycle(factory, settings, date(2026, 1, 31))  # its cursor moves past the others

    third = run_cycle(factory, settings, date(2026, 1, 31))

    assert (third.errors, third.stages["pull"]["quarantined"], third.clean) == ({}, 3, False)
