"""Cycles killed (SIGKILL) while the write-back uploads the documents' PDFs: every kill lands
after Salesforce took some uploads and before the connector recorded them (they are recorded
a batch at a time), and the cycles that follow leave exactly one file version per document
version, all recorded."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from simple_salesforce import Salesforce
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.engine import transaction
from connector.settings import Settings
from connector.sync.writeback_files import mark_files
from sandbox.salesforce.server import Sandbox
from tests import kills
from tests.conftest import TEST_TAX_RATES
from tests.sync.test_salesforce_view import MARCH_START, Crm, cycle, settings_for

ROOT = Path(__file__).resolve().parents[2]
DEALS = 40
KILLS = 3
FILE_TABLES = ("ContentDocumentLink", "ContentVersion", "ContentDocument", "_content_body")


def _env(settings: Settings, database_url: str, sandbox: Sandbox) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    return {
        **inherited,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "CONNECTOR_DATABASE_URL": database_url,
        "CONNECTOR_LOG_LEVEL": "WARNING",
        "CONNECTOR_LEDGER__PATH": str(settings.ledger.path),
        "CONNECTOR_ACCOUNTING__MAPPING_FILE": str(settings.accounting.mapping_file),
        "CONNECTOR_TAX__RATES": json.dumps(TEST_TAX_RATES),
        "CONNECTOR_SALESFORCE__MAPPING_FILE": str(ROOT / "mappings" / "salesforce.yaml"),
        "CONNECTOR_SALESFORCE__INSTANCE_URL": sandbox.instance_url,
        "CONNECTOR_SALESFORCE__SESSION_ID": sandbox.session_id,
        "CONNECTOR_SALESFORCE__CA_FILE": str(sandbox.ca_file),
        "CONNECTOR_SALESFORCE__BACKOFF_INITIAL_SECONDS": "0.001",
    }


def test_killed_uploads_leave_one_file_per_document_version(
    database_url: str,
    factory: sessionmaker[Session],
    ledger_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
) -> None:
    settings = settings_for(ledger_settings, salesforce_sandbox)
    off = settings.model_copy(
        update={"salesforce": settings.salesforce.model_copy(update={"attach_documents": False})}
    )
    crm = Crm(sf)
    for index in range(DEALS):
        crm.deal(f"Delta {index}")
    cycle(factory, off, MARCH_START)  # invoices and their records; no file yet
    org = salesforce_sandbox.org

    def uploaded() -> int:
        with org.lock:
            return int(org.db.execute('SELECT COUNT(*) FROM "ContentVersion"').fetchone()[0])

    def recorded() -> int:
        with factory() as session:
            file = tables.SalesforceFile
            return (
                session.scalar(select(func.count()).where(file.content_version_id.is_not(None)))
                or 0
            )

    def set_up() -> None:
        with org.lock, org.transaction():
            for table in FILE_TABLES:
                org.db.execute(f'DELETE FROM "{table}"')
        with transaction(factory) as session:
            session.execute(delete(tables.SalesforceFile))
            mark_files(session, list(session.scalars(select(tables.Document.id))))

    seen: list[tuple[int, int]] = []  # (uploads Salesforce holds, uploads recorded) per kill

    def launch() -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "connector", "sync", "--once", "--as-of", "2026-03-01"]
        return subprocess.Popen(
            command,
            env=_env(settings, database_url, salesforce_sandbox),
            cwd=Path(settings.ledger.path).parent,  # no config/connector.toml there
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    progress = kills.Progress(uploaded, DEALS, settle=lambda: seen.append((uploaded(), recorded())))
    landed = kills.kill_repeatedly(
        launch, progress, set_up, kills=KILLS, attempts=12, rng=random.Random(17)
    )

    assert all(kill.mid_run for kill in landed)
    # Killed between Salesforce's acceptance and the commit: uploads held, not recorded.
    assert any(held > noted for held, noted in seen[-KILLS:]), seen
    result = cycle(factory, settings, MARCH_START)
    files = result.stages["writeback"]["files"]
    assert files["uploaded"] + files["found"] <= DEALS
    rows = sf.query_all(
        "SELECT Id, PathOnClient, VersionNumber, ReasonForChange FROM ContentVersion"
    )["records"]
    with factory() as session:
        numbers = set(session.scalars(select(tables.Document.number)))
        state = {
            row.content_version_id: (row.version, row.attempt_version)
            for row in session.scalars(select(tables.SalesforceFile))
        }
    assert sorted(row["PathOnClient"] for row in rows) == sorted(f"{n}.pdf" for n in numbers)
    assert {row["VersionNumber"] for row in rows} == {"1"}
    assert state == {row["Id"]: (1, None) for row in rows}
