"""Each document's PDF as a Salesforce File on its invoice record, against the sandbox org:
one ContentVersion per document version, shared with the Billing_Invoice__c record, a new
version of the same ContentDocument when the document changes, one call per file, nothing
read on an idle write-back, and no duplicate after an answer lost between Salesforce's
acceptance and our commit."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import pytest
from simple_salesforce import Salesforce
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from connector.crm.client import SalesforceClient
from connector.db import tables
from connector.db.engine import transaction
from connector.documents import store
from connector.errors import CrmError
from connector.settings import Settings
from connector.sync import settlement, writeback
from connector.sync.cycle import Runtime
from connector.sync.rendering import render_new
from connector.sync.writeback_files import mark_files
from sandbox.salesforce.faults import FaultRule
from sandbox.salesforce.server import Sandbox
from tests.statements import counting
from tests.sync.test_salesforce_view import MARCH_START, Crm, cycle, settings_for

DEALS = 3
VERSION_FIELDS = (
    "Id, ContentDocumentId, Title, PathOnClient, Checksum, ContentSize, VersionNumber, IsLatest, "
    "ReasonForChange, FirstPublishLocationId"
)


def billed(sf: Salesforce, factory: sessionmaker[Session], settings: Settings) -> dict[str, str]:
    """Deals billed by one cycle: the invoice record's id per document number."""
    crm = Crm(sf)
    for index in range(DEALS):
        crm.deal(f"Delta {index}")
    result = cycle(factory, settings, MARCH_START)
    assert result.stages["writeback"]["files"]["uploaded"] == DEALS
    return {row["Name"]: row["Id"] for row in crm.query("SELECT Id, Name FROM Billing_Invoice__c")}


def pdfs(factory: sessionmaker[Session]) -> dict[str, store.StoredPdf]:
    with factory() as session:
        ids = dict(session.execute(select(tables.Document.number, tables.Document.id)).all())
        found = store.current_pdfs(session, list(ids.values()))
        return {number: found[document_id] for number, document_id in ids.items()}


def versions(sf: Salesforce) -> list[dict[str, Any]]:
    rows = sf.query_all(
        f"SELECT {VERSION_FIELDS} FROM ContentVersion ORDER BY PathOnClient, VersionNumber"
    )["records"]
    return [{k: v for k, v in row.items() if k != "attributes"} for row in rows]


def files_state(factory: sessionmaker[Session]) -> dict[int, tuple[Any, ...]]:
    file = tables.SalesforceFile
    with factory() as session:
        rows = session.execute(
            select(
                file.document_id,
                file.content_document_id,
                file.version,
                file.sha256,
                file.content_version_id,
                file.attempt_version,
                file.error,
            )
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def write(
    factory: sessionmaker[Session], settings: Settings, as_of: date = MARCH_START
) -> tuple[writeback.WritebackResult, SalesforceClient]:
    client = SalesforceClient(settings.salesforce)
    return writeback.write_back(factory, client, as_of), client


def next_versions(factory: sessionmaker[Session], settings: Settings) -> None:
    """A payment on every invoice: each document's next version, rendered by the send stage
    (which queues its file)."""
    with transaction(factory) as session:
        for number in session.scalars(select(tables.Document.number)):
            settlement.record_payment(
                session, amount="1.00", received_on=MARCH_START, invoice_number=number
            )
    render_new(Runtime(factory, settings))


def remark_all(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        mark_files(session, list(session.scalars(select(tables.Document.id))))


def test_each_pdf_is_a_file_on_its_invoice_record(
    engine: Engine,
    factory: sessionmaker[Session],
    ledger_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
) -> None:
    settings = settings_for(ledger_settings, salesforce_sandbox)
    invoices = billed(sf, factory, settings)
    kept = pdfs(factory)

    held = versions(sf)
    assert len(held) == DEALS and set(kept) == set(invoices)
    for row, (number, pdf) in zip(held, sorted(kept.items()), strict=True):
        assert row == {
            "Id": row["Id"],
            "ContentDocumentId": row["ContentDocumentId"],
            "Title": number,
            "PathOnClient": f"{number}.pdf",
            "Checksum": hashlib.md5(pdf.content).hexdigest(),
            "ContentSize": len(pdf.content),
            "VersionNumber": "1",
            "IsLatest": True,
            "ReasonForChange": f"{number}.pdf version 1",
            "FirstPublishLocationId": invoices[number],
        }
        links = sf.query(
            "SELECT ContentDocumentId FROM ContentDocumentLink "
            f"WHERE LinkedEntityId = '{invoices[number]}'"
        )["records"]
        assert [link["ContentDocumentId"] for link in links] == [row["ContentDocumentId"]]
        bytes_held = sf.session.get(
            f"{sf.base_url}sobjects/ContentVersion/{row['Id']}/VersionData", headers=sf.headers
        ).content
        assert bytes_held == pdf.content
    by_version = {row["Id"]: row for row in held}
    for state in files_state(factory).values():
        content_document, version, sha256, version_id, attempt, error = state
        assert (content_document, version, attempt, error) == (None, 1, None, None)
        assert sha256 == kept[by_version[version_id]["Title"]].sha256

    # An idle write-back: no call, and the file state is not read.
    with counting(engine) as statements:
        result, client = write(factory, settings)
    assert (result.api_calls, client.calls, result.files) == (0, 0, {})
    assert statements.touching("salesforce_files") == []
    assert len(statements) <= 4  # the queue and what the write-back notes


def test_a_new_document_version_is_a_new_version_of_the_same_file(
    factory: sessionmaker[Session],
    ledger_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
) -> None:
    settings = settings_for(ledger_settings, salesforce_sandbox)
    billed(sf, factory, settings)
    first = {row["PathOnClient"]: row for row in versions(sf)}
    next_versions(factory, settings)
    used = salesforce_sandbox.usage.used

    result, _ = write(factory, settings)

    # One call per file, and one query for the files' ids (a first upload records only its
    # ContentVersion's); the invoice records and the account show the payments (two calls).
    assert result.sent == {"Billing_Invoice__c": DEALS, "Account": 1}
    assert salesforce_sandbox.usage.used - used == result.api_calls == DEALS + 1 + 2
    assert result.files == {
        "uploaded": DEALS,
        "found": 0,
        "unchanged": 0,
        "waiting": 0,
        "failed": 0,
    }
    held = versions(sf)
    assert [(r["PathOnClient"], r["VersionNumber"], r["IsLatest"]) for r in held] == [
        (path, number, number == "2") for path in sorted(first) for number in ("1", "2")
    ]
    for row in held:
        assert row["ContentDocumentId"] == first[row["PathOnClient"]]["ContentDocumentId"]
    assert {r["ReasonForChange"] for r in held if r["VersionNumber"] == "2"} == {
        f"{path} version 2" for path in first
    }
    assert {state[:3] for state in files_state(factory).values()} == {
        (first[f"{number}.pdf"]["ContentDocumentId"], 2, pdf.sha256)
        for number, pdf in pdfs(factory).items()
    }

    # Marked again with nothing new: read, compared, no call.
    remark_all(factory)
    result, client = write(factory, settings)
    assert (client.calls, result.files["unchanged"]) == (0, DEALS)


def test_an_answer_lost_after_salesforce_took_the_upload_leaves_one_file_per_version(
    factory: sessionmaker[Session],
    ledger_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
) -> None:
    settings = settings_for(ledger_settings, salesforce_sandbox)
    billed(sf, factory, settings)
    next_versions(factory, settings)
    # The second upload is taken by the org, then its connection dropped: the answer is lost.
    upload = "sobjects/ContentVersion"
    salesforce_sandbox.faults.add(FaultRule(kind="slow", count=1, delay=0, path=upload))
    salesforce_sandbox.faults.add(FaultRule(kind="drop", count=1, when="after", path=upload))

    with pytest.raises(CrmError, match="could not be reached"):
        write(factory, settings)
    assert len(versions(sf)) == DEALS + 2  # the first two (one unanswered) of three
    attempted = [state for state in files_state(factory).values() if state[4] == 2]
    assert len(attempted) == DEALS - 1  # the unanswered one and the one never sent

    result, client = write(factory, settings)

    assert result.files["found"] == 1 and result.files["uploaded"] == DEALS - 2
    assert client.calls == 1 + (DEALS - 2)  # the look-up, then the one never sent
    held = versions(sf)
    assert sorted((r["PathOnClient"], r["VersionNumber"]) for r in held) == sorted(
        (f"{number}.pdf", version) for number in pdfs(factory) for version in ("1", "2")
    )
    assert {state[1:] for state in files_state(factory).values()} == {
        (2, pdf.sha256, row["Id"], None, None)
        for pdf in pdfs(factory).values()
        for row in held
        if row["PathOnClient"] == pdf.filename and row["VersionNumber"] == "2"
    }


def test_attach_documents_off_uploads_nothing(
    factory: sessionmaker[Session],
    ledger_settings: Settings,
    salesforce_sandbox: Sandbox,
    sf: Salesforce,
) -> None:
    settings = settings_for(ledger_settings, salesforce_sandbox)
    settings = settings.model_copy(
        update={"salesforce": settings.salesforce.model_copy(update={"attach_documents": False})}
    )
    Crm(sf).deal("Delta")
    result = cycle(factory, settings, MARCH_START)
    assert result.stages["writeback"]["files"] == {
        "marked": 1,
    } | {"uploaded": 0, "found": 0, "unchanged": 0, "waiting": 0, "failed": 0}
    assert versions(sf) == [] and files_state(factory) == {}
    with factory() as session:
        queued = select(tables.WritebackQueue.key).where(tables.WritebackQueue.entity == "file")
        assert session.scalars(queued).all() == []  # settled, not left due
