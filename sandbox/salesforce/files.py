"""Salesforce Files: ContentVersion, ContentDocument and ContentDocumentLink as Salesforce
keeps them.

- A ContentVersion is inserted through REST (``POST /sobjects/ContentVersion``) with its bytes
  in ``VersionData``: base64 in a JSON body (at most 50 MB of body, 37.5 MB of base64), or the
  binary part of a ``multipart/form-data`` body whose JSON part (``entity_content``) holds the
  other fields (at most 2 GB). ``PathOnClient`` is required; ``Title`` defaults to its file
  name without the extension.
- Without ``ContentDocumentId`` the version is a new file's first: the org creates its
  ContentDocument. With it, it is that file's next version: ``VersionNumber`` counts on,
  ``IsLatest`` moves to it, and the file shows it as its latest.
- ``FirstPublishLocationId`` (a first version only) shares the new file with that record: a
  ContentDocumentLink (``ShareType`` I) to it.
- The org fills ``Checksum`` (MD5, hex), ``ContentSize``, ``FileExtension``, ``FileType`` and
  ``VersionData`` (the URL of the bytes: ``GET /sobjects/ContentVersion/{id}/VersionData``).
- A query of ContentDocumentLink must filter on ``ContentDocumentId`` or ``LinkedEntityId``
  with ``=`` or ``IN`` (:func:`check_link_query`).

The bytes are kept in the org's database, in ``_content_body``, one row per version.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from decimal import Decimal
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import PurePosixPath
from typing import Any

from sandbox.salesforce.calls import Call, Reply
from sandbox.salesforce.errors import ApiError, bad_request, not_found
from sandbox.salesforce.ids import normalize_id
from sandbox.salesforce.soql import ast
from sandbox.salesforce.store import Org

VERSION = "ContentVersion"
DOCUMENT = "ContentDocument"
LINK = "ContentDocumentLink"
JSON_BODY_LIMIT = 50 * 1024 * 1024  # a non-multipart body
BASE64_LIMIT = 37_500 * 1024  # base64 text of VersionData in a JSON body (37.5 MB)
MULTIPART_LIMIT = 2 * 1024 * 1024 * 1024  # a ContentVersion's file through multipart (2 GB)
FILE_TYPES = {"pdf": "PDF", "txt": "TEXT", "csv": "CSV", "png": "PNG", "jpg": "JPG"}
LINK_FILTERS = ("contentdocumentid", "linkedentityid")
LINK_RESTRICTION = (
    "Implementation restriction: ContentDocumentLink requires a filter by a single Id on "
    "ContentDocumentId or LinkedEntityId using the equals operator or multiple Id's using the "
    "IN operator."
)


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "EXCEEDED_MAX_SIZE_REQUEST",
        f"Maximum size of request reached. Maximum size of request is {limit} bytes.",
    )


def _json_part(call: Call) -> tuple[dict[str, Any], bytes]:
    """The fields and the bytes of a JSON insert (base64 ``VersionData``)."""
    if len(call.body) > JSON_BODY_LIMIT:
        raise too_large(JSON_BODY_LIMIT)
    body = call.json()
    if not isinstance(body, dict):
        raise bad_request("JSON_PARSER_ERROR", "The request body must be a JSON object")
    key = next((name for name in body if name.lower() == "versiondata"), None)
    encoded = body.pop(key) if key else None
    if not isinstance(encoded, str) or not encoded:
        raise bad_request(
            "REQUIRED_FIELD_MISSING", "Required fields are missing: [VersionData]", ["VersionData"]
        )
    if len(encoded) > BASE64_LIMIT:
        raise too_large(BASE64_LIMIT)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(
            "JSON_PARSER_ERROR", "Cannot deserialize instance of base64 from VALUE_STRING value"
        ) from None
    return body, data


def _multipart(call: Call) -> tuple[dict[str, Any], bytes]:
    """The fields (the JSON part) and the bytes (the ``VersionData`` part) of a multipart
    insert."""
    if len(call.body) > MULTIPART_LIMIT:
        raise too_large(MULTIPART_LIMIT)
    head = f"Content-Type: {call.header('content-type')}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + call.body)
    fields: dict[str, Any] | None = None
    data: bytes | None = None
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        if name == "VersionData":
            data = payload
        elif part.get_content_type() == "application/json":
            try:
                fields = json.loads(payload, parse_float=Decimal)
            except ValueError as error:
                raise bad_request("JSON_PARSER_ERROR", f"Invalid JSON: {error}") from None
    if not isinstance(fields, dict):
        raise bad_request(
            "INVALID_MULTIPART_REQUEST", "The multipart request has no JSON part of the entity"
        )
    if data is None:
        raise bad_request(
            "REQUIRED_FIELD_MISSING", "Required fields are missing: [VersionData]", ["VersionData"]
        )
    return fields, data


def insert_version(org: Org, call: Call) -> Reply:
    """``POST /sobjects/ContentVersion``: a new file, or a new version of one."""
    content_type = (call.header("content-type") or "").lower()
    if content_type.startswith("multipart/"):
        fields, data = _multipart(call)
    else:
        fields, data = _json_part(call)
    record_id = create_version(org, fields, data)
    return Reply(201, {"id": record_id, "success": True, "errors": []})


def create_version(org: Org, fields: dict[str, Any], data: bytes) -> str:
    """Store a version and what Salesforce derives from it; its id."""
    versions, documents = org.sobject(VERSION), org.sobject(DOCUMENT)
    with org.transaction():
        values = dict(fields)
        path = str(values.get("PathOnClient") or "")
        if path and not values.get("Title"):
            values["Title"] = PurePosixPath(path.replace("\\", "/")).stem or path
        document_id = values.get("ContentDocumentId")
        location = values.get("FirstPublishLocationId")
        if document_id and location:
            raise bad_request(
                "FIELD_INTEGRITY_EXCEPTION",
                "FirstPublishLocationId: can be set only on a file's first version",
                ["FirstPublishLocationId"],
            )
        if location:
            _check_location(org, str(location))
        new_document = not document_id
        if new_document:
            document_id = org.create(DOCUMENT, {})
            values["ContentDocumentId"] = document_id
        version_id = org.create(VERSION, values)
        old = org.live_row(versions, version_id)
        extension = PurePosixPath(str(old["PathOnClient"])).suffix.lstrip(".").lower()
        earlier = (
            []
            if new_document
            else org.rows_where(versions, "ContentDocumentId", old["ContentDocumentId"])
        )
        number = 1 + max(
            (int(row["VersionNumber"] or 0) for row in earlier if row["Id"] != version_id),
            default=0,
        )
        record = {
            **old,
            "Checksum": hashlib.md5(data).hexdigest(),  # noqa: S324 - Salesforce's checksum
            "ContentSize": len(data),
            "FileExtension": extension or None,
            "FileType": FILE_TYPES.get(extension, extension.upper() or "UNKNOWN"),
            "VersionNumber": str(number),
            "IsLatest": 1,
            "VersionData": f"/services/data/v59.0/sobjects/ContentVersion/{version_id}/VersionData",
        }
        org.save(versions, record, old)
        for row in earlier:
            if row["Id"] != version_id and row["IsLatest"]:
                org.save(versions, {**row, "IsLatest": 0}, row)
        document = org.live_row(documents, str(old["ContentDocumentId"]))
        org.save(
            documents,
            {
                **document,
                "Title": record["Title"],
                "FileExtension": record["FileExtension"],
                "FileType": record["FileType"],
                "ContentSize": record["ContentSize"],
                "LatestPublishedVersionId": version_id,
            },
            document,
        )
        org.db.execute("INSERT INTO _content_body (Id, data) VALUES (?, ?)", (version_id, data))
        if location:
            org.create(
                LINK,
                {"ContentDocumentId": document_id, "LinkedEntityId": location, "ShareType": "I"},
            )
        return version_id


def _check_location(org: Org, record_id: str) -> None:
    normalized = normalize_id(record_id) or ""
    obj = org.schema.by_prefix(normalized[:3])
    row = None if obj is None else org.row(obj, normalized)
    if obj is None or row is None or row["IsDeleted"]:
        raise bad_request(
            "INVALID_CROSS_REFERENCE_KEY",
            "FirstPublishLocationId: invalid cross reference id",
            ["FirstPublishLocationId"],
        )


def version_data(org: Org, record_id: str) -> Reply:
    """``GET /sobjects/ContentVersion/{id}/VersionData``: the version's bytes."""
    with org.lock:
        row = org.live_row(org.sobject(VERSION), record_id)
        found = org.db.execute("SELECT data FROM _content_body WHERE Id = ?", (row["Id"],))
        body = found.fetchone()
    if body is None:
        raise not_found()
    return Reply(200, bytes(body[0]), content_type="application/octetstream")


def refuse_document_insert() -> ApiError:
    return bad_request(
        "INVALID_TYPE_FOR_OPERATION",
        "entity type ContentDocument does not support insert: create a ContentVersion instead",
    )


def check_link_query(query: ast.Query) -> None:
    """A ContentDocumentLink query names its documents or its records (``=`` or ``IN``)."""
    if query.sobject.lower() != LINK.lower():
        return
    where = query.where
    conditions = where.items if isinstance(where, ast.And) else (where,)
    for condition in conditions:
        if isinstance(condition, ast.Comparison | ast.InList | ast.SemiJoin):
            name = condition.field.text.lower()
            if name in LINK_FILTERS and (
                (isinstance(condition, ast.Comparison) and condition.op == "=")
                or (isinstance(condition, ast.InList | ast.SemiJoin) and not condition.negated)
            ):
                return
    raise bad_request("MALFORMED_QUERY", LINK_RESTRICTION)
