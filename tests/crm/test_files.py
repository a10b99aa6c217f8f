"""Uploading a ContentVersion through the client against the sandbox: base64 JSON for a small
file, multipart from MULTIPART_FROM bytes on, one call each, and never a retry after an
unknown outcome."""

from __future__ import annotations

import hashlib

import pytest
from simple_salesforce import Salesforce

from connector.crm import files
from connector.crm.client import SalesforceClient
from connector.errors import CrmError
from sandbox.salesforce.faults import FaultRule
from sandbox.salesforce.server import Sandbox
from tests.crm.helpers import session_settings


def _invoice(sf: Salesforce) -> str:
    return str(sf.Billing_Invoice__c.create({"Name": "INV-1", "Document_Number__c": "INV-1"})["id"])


def _held(sf: Salesforce) -> list[tuple[str, int, str, str]]:
    rows = sf.query(
        "SELECT Title, ContentSize, Checksum, FirstPublishLocationId FROM ContentVersion "
        "ORDER BY ContentSize"
    )["records"]
    return [
        (r["Title"], r["ContentSize"], r["Checksum"], r["FirstPublishLocationId"]) for r in rows
    ]


@pytest.mark.parametrize("size", [10, files.MULTIPART_FROM - 1, files.MULTIPART_FROM])
def test_one_call_per_file_as_json_or_multipart(
    salesforce_sandbox: Sandbox, sf: Salesforce, size: int
) -> None:
    invoice = _invoice(sf)
    client = SalesforceClient(session_settings(salesforce_sandbox))
    content = bytes(index % 251 for index in range(size))
    fields = {"PathOnClient": "INV-1.pdf", "FirstPublishLocationId": invoice}
    used = salesforce_sandbox.usage.used

    version_id = files.insert_version(client, fields, "INV-1.pdf", content)

    assert version_id.startswith("068")
    assert (client.calls, salesforce_sandbox.usage.used - used) == (1, 1)
    assert _held(sf) == [("INV-1", size, hashlib.md5(content).hexdigest(), invoice)]
    body = sf.session.get(
        f"{sf.base_url}sobjects/ContentVersion/{version_id}/VersionData", headers=sf.headers
    )
    assert body.content == content


def test_multipart_body_keeps_the_bytes_unencoded() -> None:
    body, content_type = files.multipart_body({"PathOnClient": "a.pdf"}, "a.pdf", b"\x00\xff")
    boundary = content_type.split('boundary="')[1].rstrip('"')
    assert content_type.startswith("multipart/form-data; ")
    assert body.endswith(b"\x00\xff\r\n--" + boundary.encode() + b"--\r\n")
    assert b'name="entity_content"' in body and b'{"PathOnClient": "a.pdf"}' in body


def test_an_upload_whose_answer_is_lost_is_not_sent_again(
    salesforce_sandbox: Sandbox, sf: Salesforce
) -> None:
    client = SalesforceClient(session_settings(salesforce_sandbox))
    salesforce_sandbox.faults.add(FaultRule(kind="drop", count=1, when="after"))

    with pytest.raises(CrmError, match="could not be reached"):
        files.insert_version(client, {"PathOnClient": "INV-1.pdf"}, "INV-1.pdf", b"%PDF")

    assert client.calls == 1  # no retry: Salesforce took it
    assert [row[:2] for row in _held(sf)] == [("INV-1", 4)]
