"""Salesforce Files in the sandbox: ContentVersion inserted with base64 JSON or multipart,
its ContentDocument and versions, FirstPublishLocationId's link, the bytes read back, the
ContentDocumentLink query restriction and the size limits."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.salesforce import files
from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import trusting_session

BASE = "/services/data/v59.0"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"


def _invoice(sf: Salesforce, number: str = "INV-000001") -> str:
    return str(sf.Billing_Invoice__c.create({"Name": number, "Document_Number__c": number})["id"])


def _http(sandbox: Sandbox) -> requests.Session:
    session = trusting_session(sandbox)
    session.headers["Authorization"] = f"Bearer {sandbox.session_id}"
    return session


def _multipart(sandbox: Sandbox, entity: dict[str, Any], data: bytes) -> requests.Response:
    boundary = "boundary_string"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="entity_content"\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(entity)}\r\n"
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
            f'Content-Disposition: form-data; name="VersionData"; filename="{entity["PathOnClient"]}"'
            f"\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return _http(sandbox).post(
        f"{sandbox.instance_url}{BASE}/sobjects/ContentVersion",
        data=body,
        headers={"Content-Type": f'multipart/form-data; boundary="{boundary}"'},
    )


def _version(sf: Salesforce, version_id: str) -> dict[str, Any]:
    fields = (
        "Id, ContentDocumentId, Title, PathOnClient, Checksum, ContentSize, FileExtension, "
        "FileType, VersionNumber, IsLatest, ReasonForChange, FirstPublishLocationId"
    )
    record = sf.query(f"SELECT {fields} FROM ContentVersion WHERE Id = '{version_id}'")
    row = dict(record["records"][0])
    row.pop("attributes")
    return row


def test_base64_insert_creates_the_file_and_links_it(sf: Salesforce) -> None:
    invoice = _invoice(sf)
    answer = sf.ContentVersion.create(
        {
            "PathOnClient": "INV-000001.pdf",
            "VersionData": base64.b64encode(PDF).decode(),
            "FirstPublishLocationId": invoice,
            "ReasonForChange": "INV-000001 v1",
        }
    )
    version = _version(sf, answer["id"])
    document = version.pop("ContentDocumentId")
    assert document.startswith("069")
    assert version == {
        "Id": answer["id"],
        "Title": "INV-000001",
        "PathOnClient": "INV-000001.pdf",
        "Checksum": hashlib.md5(PDF).hexdigest(),
        "ContentSize": len(PDF),
        "FileExtension": "pdf",
        "FileType": "PDF",
        "VersionNumber": "1",
        "IsLatest": True,
        "ReasonForChange": "INV-000001 v1",
        "FirstPublishLocationId": invoice,
    }
    links = sf.query(
        "SELECT ContentDocumentId, LinkedEntityId, ShareType FROM ContentDocumentLink "
        f"WHERE LinkedEntityId = '{invoice}'"
    )["records"]
    assert [(r["ContentDocumentId"], r["LinkedEntityId"], r["ShareType"]) for r in links] == [
        (document, invoice, "I")
    ]
    held = sf.query(
        "SELECT Title, LatestPublishedVersionId, ContentSize, FileType FROM ContentDocument "
        f"WHERE Id = '{document}'"
    )["records"][0]
    assert (held["Title"], held["LatestPublishedVersionId"], held["ContentSize"]) == (
        "INV-000001",
        answer["id"],
        len(PDF),
    )


def test_multipart_insert_and_the_bytes_read_back(
    sf: Salesforce, salesforce_sandbox: Sandbox
) -> None:
    invoice = _invoice(sf)
    reply = _multipart(
        salesforce_sandbox,
        {"PathOnClient": "INV-000001.pdf", "Title": "Invoice", "FirstPublishLocationId": invoice},
        PDF,
    )
    assert reply.status_code == 201, reply.text
    version_id = reply.json()["id"]
    assert reply.json() == {"id": version_id, "success": True, "errors": []}
    version = _version(sf, version_id)
    assert (version["Title"], version["ContentSize"], version["Checksum"]) == (
        "Invoice",
        len(PDF),
        hashlib.md5(PDF).hexdigest(),
    )
    data = _http(salesforce_sandbox).get(
        f"{salesforce_sandbox.instance_url}{BASE}/sobjects/ContentVersion/{version_id}/VersionData"
    )
    assert data.status_code == 200
    assert data.content == PDF


def test_a_new_version_of_the_same_document_moves_is_latest(sf: Salesforce) -> None:
    invoice = _invoice(sf)
    first = sf.ContentVersion.create(
        {
            "PathOnClient": "INV-000001.pdf",
            "VersionData": base64.b64encode(PDF).decode(),
            "FirstPublishLocationId": invoice,
        }
    )["id"]
    document = _version(sf, first)["ContentDocumentId"]
    second_pdf = PDF + b"v2"
    second = sf.ContentVersion.create(
        {
            "PathOnClient": "INV-000001.pdf",
            "VersionData": base64.b64encode(second_pdf).decode(),
            "ContentDocumentId": document,
            "ReasonForChange": "INV-000001 v2",
        }
    )["id"]
    rows = sf.query(
        "SELECT Id, VersionNumber, IsLatest, ContentSize FROM ContentVersion "
        f"WHERE ContentDocumentId = '{document}' ORDER BY VersionNumber"
    )["records"]
    assert [(r["Id"], r["VersionNumber"], r["IsLatest"], r["ContentSize"]) for r in rows] == [
        (first, "1", False, len(PDF)),
        (second, "2", True, len(second_pdf)),
    ]
    latest = sf.query(
        f"SELECT LatestPublishedVersionId FROM ContentDocument WHERE Id = '{document}'"
    )
    assert latest["records"][0]["LatestPublishedVersionId"] == second
    links = sf.query(f"SELECT Id FROM ContentDocumentLink WHERE ContentDocumentId = '{document}'")
    assert links["totalSize"] == 1  # a new version shares nothing new


def test_refusals(sf: Salesforce) -> None:
    data = base64.b64encode(PDF).decode()
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.ContentVersion.create({"VersionData": data})
    assert missing.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert missing.value.content[0]["fields"] == ["PathOnClient"]
    with pytest.raises(SalesforceMalformedRequest) as no_data:
        sf.ContentVersion.create({"PathOnClient": "a.pdf"})
    assert no_data.value.content[0]["fields"] == ["VersionData"]
    with pytest.raises(SalesforceMalformedRequest) as checksum:
        sf.ContentVersion.create({"PathOnClient": "a.pdf", "VersionData": data, "Checksum": "x"})
    assert checksum.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    with pytest.raises(SalesforceMalformedRequest) as nowhere:
        sf.ContentVersion.create(
            {
                "PathOnClient": "a.pdf",
                "VersionData": data,
                "FirstPublishLocationId": "a02000000000999",
            }
        )
    assert nowhere.value.content[0]["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"
    with pytest.raises(SalesforceMalformedRequest) as document:
        sf.ContentDocument.create({"Title": "x"})
    assert document.value.content[0]["errorCode"] == "INVALID_TYPE_FOR_OPERATION"
    assert sf.query("SELECT COUNT() FROM ContentVersion")["totalSize"] == 0


@pytest.mark.parametrize(
    "where",
    ["", "WHERE ShareType = 'I'", "WHERE LinkedEntityId != 'a02000000000001'"],
)
def test_a_link_query_must_name_documents_or_records(sf: Salesforce, where: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.query(f"SELECT Id FROM ContentDocumentLink {where}")
    assert refused.value.content == [
        {"message": files.LINK_RESTRICTION, "errorCode": "MALFORMED_QUERY", "fields": []}
    ]


def test_json_base64_over_its_limit_is_refused_and_multipart_takes_it(
    sf: Salesforce, salesforce_sandbox: Sandbox
) -> None:
    big = bytes(files.BASE64_LIMIT // 4 * 3 + 3)  # base64 text just over 37.5 MB
    reply = _http(salesforce_sandbox).post(
        f"{salesforce_sandbox.instance_url}{BASE}/sobjects/ContentVersion",
        json={"PathOnClient": "big.pdf", "VersionData": base64.b64encode(big).decode()},
    )
    assert reply.status_code == 413
    assert reply.json()[0]["errorCode"] == "EXCEEDED_MAX_SIZE_REQUEST"
    taken = _multipart(salesforce_sandbox, {"PathOnClient": "big.pdf"}, big)
    assert taken.status_code == 201, taken.text
    assert _version(sf, taken.json()["id"])["ContentSize"] == len(big)
