"""Salesforce Files through REST: a ContentVersion inserted with its bytes, in one call.

A small file goes as base64 ``VersionData`` in a JSON body (Salesforce takes at most 37.5 MB
of base64 there); from ``MULTIPART_FROM`` bytes on, as a ``multipart/form-data`` body: the
fields in a JSON part (``entity_content``) and the bytes, unencoded, in a ``VersionData`` part
(up to 2 GB). An insert is not idempotent: it is sent once, never retried after an unknown
outcome (the caller looks for what Salesforce may hold before sending it again).
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from simple_salesforce import Salesforce

from connector.crm.client import SalesforceClient
from connector.errors import CrmError

OBJECT = "ContentVersion"
MULTIPART_FROM = 4 * 1024 * 1024  # bytes: larger files go as multipart, without base64


def multipart_body(fields: dict[str, Any], filename: str, content: bytes) -> tuple[bytes, str]:
    """The body of a multipart insert and its content type."""
    boundary = f"connector-{secrets.token_hex(16)}"
    quoted = filename.replace('"', "")
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="entity_content"\r\n'
        "Content-Type: application/json\r\n\r\n"
        f"{json.dumps(fields)}\r\n"
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="VersionData"; filename="{quoted}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + content + tail, f'multipart/form-data; boundary="{boundary}"'


def insert_version(
    client: SalesforceClient, fields: dict[str, Any], filename: str, content: bytes
) -> str:
    """Insert a ContentVersion of ``content`` with ``fields`` (one call); its id."""

    def as_json(sf: Salesforce) -> Any:
        body = {**fields, "VersionData": base64.b64encode(content).decode("ascii")}
        return sf.restful(f"sobjects/{OBJECT}", method="POST", json=body)

    def as_multipart(sf: Salesforce) -> Any:
        body, content_type = multipart_body(fields, filename, content)
        response = sf._call_salesforce(  # simple-salesforce: a raw body
            "POST",
            f"{sf.base_url}sobjects/{OBJECT}",
            data=body,
            headers={"Content-Type": content_type},
        )
        return response.json()

    operation = as_multipart if len(content) >= MULTIPART_FROM else as_json
    answer = client.call(f"upload {filename}", operation, retry=False)
    if not isinstance(answer, dict) or not answer.get("id"):
        raise CrmError(f"upload {filename}: Salesforce answered {answer!r:.200}")
    return str(answer["id"])
