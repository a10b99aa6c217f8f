"""Composite (``/composite``) and sObject Collections (``/composite/sobjects``).

Composite runs up to 25 subrequests (at most 5 queries) as one API call; later subrequests may
use earlier results through ``@{referenceId.path}``. sObject Collections create, update, upsert,
delete or retrieve up to 200 records with one result per record; with ``allOrNone`` a failure
rolls all of them back and the others report ALL_OR_NONE_OPERATION_ROLLED_BACK.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.salesforce.calls import Call, Reply
from sandbox.salesforce.errors import ApiError, bad_request
from sandbox.salesforce.ids import normalize_id
from sandbox.salesforce.rest import render_record, selected_fields
from sandbox.salesforce.schema import SObject
from sandbox.salesforce.store import Org
from sandbox.salesforce.values import to_storage

MAX_SUBREQUESTS = 25
MAX_QUERIES = 5
MAX_RECORDS = 200
REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
REFERENCE_ID = re.compile(r"^[A-Za-z0-9_]+$")
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was "
    "using AllOrNone header",
    "fields": [],
}


class _HaltedError(Exception):
    """An allOrNone composite request stops at its first failed subrequest."""


def _resolve(path: str, results: dict[str, Any], name: str) -> Any:
    value = results.get(name)
    for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        key, index = step
        if isinstance(value, dict) and key:
            value = value.get(key)
        elif isinstance(value, list) and index and int(index) < len(value):
            value = value[int(index)]
        else:
            value = None
        if value is None:
            break
    if value is None:
        raise bad_request(
            "PROCESSING_HALTED",
            f"Invalid reference specified. No value for {name}{path} found in {name}. "
            f"Provided referenceId ({name}) must match a previous subrequest.",
        )
    return value


def _substitute(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        if whole:
            return _resolve(whole.group(2), results, whole.group(1))
        return REFERENCE.sub(
            lambda match: str(_resolve(match.group(2), results, match.group(1))), value
        )
    if isinstance(value, list):
        return [_substitute(item, results) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, results) for key, item in value.items()}
    return value


def _subcall(call: Call, request: dict[str, Any], results: dict[str, Any]) -> Call:
    url = _substitute(str(request.get("url", "")), results)
    split = urlsplit(url)
    parts = [part for part in split.path.split("/") if part]
    if parts[:2] != ["services", "data"] or len(parts) < 3:
        raise bad_request("INVALID_API_INPUT", f"invalid subrequest url: {url}")
    body = request.get("body")
    return Call(
        method=str(request.get("method", "GET")).upper(),
        parts=parts[3:],
        args=dict(parse_qsl(split.query)),
        body=json.dumps(_substitute(body, results), default=float).encode()
        if body is not None
        else b"",
        headers={
            **call.headers,
            **{k.lower(): v for k, v in (request.get("httpHeaders") or {}).items()},
        },
        version=parts[2].removeprefix("v"),
        instance_url=call.instance_url,
    )


def composite(call: Call, org: Org, route: Callable[[Call], Reply]) -> Reply:
    body = call.json()
    requests = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise bad_request("INVALID_API_INPUT", "compositeRequest must be a non-empty list")
    if len(requests) > MAX_SUBREQUESTS:
        raise bad_request("INVALID_API_INPUT", f"Limit Exceeded: max {MAX_SUBREQUESTS} subrequests")
    names = [str(request.get("referenceId", "")) for request in requests]
    if any(not REFERENCE_ID.match(name) for name in names) or len(set(names)) != len(names):
        raise bad_request(
            "INVALID_API_INPUT",
            "each subrequest needs a unique referenceId of letters, digits and _",
        )
    queries = sum(1 for request in requests if "/query" in str(request.get("url", "")))
    if queries > MAX_QUERIES:
        raise bad_request(
            "INVALID_API_INPUT", f"Limit Exceeded: max {MAX_QUERIES} query subrequests"
        )
    all_or_none = bool(body.get("allOrNone"))
    results: dict[str, Any] = {}
    answers: list[dict[str, Any]] = []
    try:
        with org.transaction():
            for name, request in zip(names, requests, strict=True):
                sub: Call | None = None
                try:
                    sub = _subcall(call, request, results)
                    reply = route(sub)
                except ApiError as error:
                    reply = Reply(error.status, error.body())
                headers = {}
                if reply.status == 201 and isinstance(reply.body, dict) and "id" in reply.body:
                    obj = sub.parts[1] if sub and sub.parts[:1] == ["sobjects"] else ""
                    headers["Location"] = (
                        f"/services/data/v{call.version}/sobjects/{obj}/{reply.body['id']}"
                    )
                answers.append(
                    {
                        "body": reply.body,
                        "httpHeaders": headers,
                        "httpStatusCode": reply.status,
                        "referenceId": name,
                    }
                )
                if reply.status < 400:
                    results[name] = reply.body
                elif all_or_none:
                    raise _HaltedError
    except _HaltedError:
        halted = {
            "errorCode": "PROCESSING_HALTED",
            "message": "The transaction was rolled back since another operation in the same "
            "transaction failed.",
        }
        failed = len(answers) - 1
        answers = [
            answer
            if index == failed
            else {**answer, "body": [halted], "httpHeaders": {}, "httpStatusCode": 400}
            for index, answer in enumerate(answers)
        ]
        answers += [
            {"body": [halted], "httpHeaders": {}, "httpStatusCode": 400, "referenceId": name}
            for name in names[len(answers) :]
        ]
    return Reply(body={"compositeResponse": answers})


# -- sObject Collections -------------------------------------------------------------------
def _records(call: Call) -> tuple[list[Any], bool]:
    body = call.json()
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise bad_request("INVALID_API_INPUT", "the request body needs a list of records")
    records = body["records"]
    if len(records) > MAX_RECORDS:
        raise bad_request(
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call",
        )
    return records, bool(body.get("allOrNone"))


def _ids(call: Call) -> list[str]:
    ids = [item for item in call.args.get("ids", "").split(",") if item]
    if not ids:
        raise bad_request("MISSING_ARGUMENT", "ids is required")
    if len(ids) > MAX_RECORDS:
        raise bad_request(
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call",
        )
    return ids


def _type_of(record: Any) -> str:
    if not isinstance(record, dict):
        raise bad_request("INVALID_API_INPUT", "each record must be a JSON object")
    kind = (record.get("attributes") or {}).get("type")
    if not kind:
        raise bad_request("INVALID_TYPE", "Must send a concrete entity type.")
    return str(kind)


def _failure(error: dict[str, Any]) -> dict[str, Any]:
    """A failed SaveResult: Salesforce gives it no id."""
    return {"success": False, "errors": [error]}


def _apply(
    org: Org,
    items: list[Any],
    all_or_none: bool,
    action: Callable[[Any], dict[str, Any]],
    preload: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``action`` on each item in its own savepoint; with ``all_or_none`` one failure
    rolls back every item. The items are one batch of the org: ``preload`` reads ahead what
    they will look up, and their writes are stored together at the end."""
    results: list[dict[str, Any]] = []
    with org.batch():
        if preload is not None:
            preload()
        for item in items:
            try:
                with org.transaction():
                    results.append({**action(item), "success": True, "errors": []})
            except ApiError as error:
                results.append(_failure(error.record_error()))
        if all_or_none and not all(result["success"] for result in results):
            raise _RolledBackError(
                [_failure(ROLLED_BACK) if result["success"] else result for result in results]
            )
    return results


class _RolledBackError(Exception):
    def __init__(self, results: list[dict[str, Any]]) -> None:
        super().__init__("rolled back")
        self.results = results


def _by_type(org: Org, records: list[Any]) -> list[tuple[SObject, list[dict[str, Any]]]]:
    """The records of each known object type, for reading ahead (bad records are left to
    fail on their own)."""
    groups: dict[str, tuple[SObject, list[dict[str, Any]]]] = {}
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("attributes"), dict):
            continue
        obj = org.schema.get(str(record["attributes"].get("type") or ""))
        if obj is not None:
            groups.setdefault(obj.name, (obj, []))[1].append(record)
    return list(groups.values())


def _preload_creates(org: Org, records: list[Any]) -> None:
    for obj, group in _by_type(org, records):
        org.preload_records(obj, group)


def _preload_updates(org: Org, records: list[Any]) -> None:
    for obj, group in _by_type(org, records):
        given = (
            next((record[key] for key in _id_keys(record) if record[key]), None) for record in group
        )
        org.preload_ids(
            obj,
            [normalized for value in given if value and (normalized := normalize_id(str(value)))],
        )
        org.preload_records(obj, group)


def _preload_deletes(org: Org, ids: list[str]) -> None:
    by_object: dict[str, list[str]] = {}
    for record_id in ids:
        normalized = normalize_id(record_id)
        obj = org.schema.by_prefix(record_id[:3]) if normalized else None
        if obj is not None and obj.history_of is None and normalized is not None:
            by_object.setdefault(obj.name, []).append(normalized)
    for name, object_ids in by_object.items():
        org.preload_ids(org.schema.objects[name], object_ids)


def _preload_upserts(org: Org, name: str, field_name: str, records: list[Any]) -> None:
    obj = org.schema.get(name)
    spec = obj.field(field_name) if obj is not None else None
    if obj is None or spec is None or not (spec.spec.external_id or spec.name == "Id"):
        return
    values = [
        str(value) for record in records if (value := _external_id(record, field_name)) is not None
    ]
    if spec.name == "Id":
        org.preload_ids(
            obj, [normalized for value in values if (normalized := normalize_id(value))]
        )
    else:
        stored = []
        for value in values:
            try:
                stored.append(to_storage(spec, value))
            except ApiError:
                continue
        org.preload_where(obj, spec.name, stored)
    org.preload_records(obj, [record for record in records if isinstance(record, dict)])


def _id_keys(record: dict[str, Any]) -> list[str]:
    """The keys that name the record's id: ``Id``, or ``id`` as clients also send it."""
    return [key for key in record if key.lower() == "id"]


def _create(org: Org, record: Any) -> dict[str, Any]:
    kind = _type_of(record)
    if any(record[key] for key in _id_keys(record)):
        raise bad_request(
            "INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"]
        )
    return {"id": org.create(kind, record)}


def _update(org: Org, record: Any) -> dict[str, Any]:
    kind = _type_of(record)
    keys = _id_keys(record)
    given = next((record[key] for key in keys if record[key]), None)
    if not given:
        raise bad_request("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
    obj = org.sobject(kind)
    record_id = normalize_id(str(given))
    if record_id is None or not record_id.startswith(obj.key_prefix):
        raise bad_request(
            "MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {given}", ["Id"]
        )
    org.update(kind, record_id, {key: value for key, value in record.items() if key not in keys})
    return {"id": record_id}


def collections(call: Call, org: Org, parts: list[str]) -> Reply:
    try:
        return Reply(body=_collections(call, org, parts))
    except _RolledBackError as rolled:
        return Reply(body=rolled.results)


def _collections(call: Call, org: Org, parts: list[str]) -> list[Any]:
    method = call.method
    if not parts and method == "POST":
        records, all_or_none = _records(call)
        return _apply(
            org,
            records,
            all_or_none,
            lambda record: _create(org, record),
            lambda: _preload_creates(org, records),
        )
    if not parts and method == "PATCH":
        records, all_or_none = _records(call)
        return _apply(
            org,
            records,
            all_or_none,
            lambda record: _update(org, record),
            lambda: _preload_updates(org, records),
        )
    if not parts and method == "DELETE":
        all_or_none = call.args.get("allOrNone", "false").lower() == "true"
        ids = _ids(call)
        try:
            results = _apply(
                org,
                ids,
                all_or_none,
                lambda record_id: _delete(org, record_id),
                lambda: _preload_deletes(org, ids),
            )
        except _RolledBackError as rolled:
            rolled.results = _named(ids, rolled.results)
            raise
        return _named(ids, results)
    if len(parts) == 2 and method == "PATCH":
        records, all_or_none = _records(call)
        repeated = _repeated_values(records, parts[1])
        return _apply(
            org,
            records,
            all_or_none,
            lambda record: _upsert(org, parts[0], parts[1], record, repeated),
            lambda: _preload_upserts(org, parts[0], parts[1], records),
        )
    if len(parts) == 1 and method in ("GET", "POST"):
        return _retrieve(call, org, parts[0])
    raise bad_request("METHOD_NOT_ALLOWED", f"HTTP method '{method}' not allowed here")


def _named(ids: list[str], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A DeleteResult names its record even when it failed (a SaveResult does not)."""
    return [
        {**result, "id": normalize_id(given) or given} if "id" not in result else result
        for given, result in zip(ids, results, strict=True)
    ]


def _delete(org: Org, record_id: str) -> dict[str, Any]:
    normalized = normalize_id(record_id)
    obj = org.schema.by_prefix(record_id[:3]) if normalized else None
    if obj is None:
        raise bad_request("MALFORMED_ID", f"malformed id {record_id}")
    if obj.history_of is not None and normalized is not None:  # the history objects share 017
        obj = org.history_holding(normalized) or obj
    org.delete(obj.name, record_id)
    return {"id": normalized}


def _external_id(record: Any, field_name: str) -> Any:
    if not isinstance(record, dict):
        return None
    return next((item for key, item in record.items() if key.lower() == field_name.lower()), None)


def _repeated_values(records: list[Any], field_name: str) -> set[str]:
    """External id values sent more than once in one upsert (each such record fails)."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for record in records:
        value = _external_id(record, field_name)
        if value is not None:
            key = str(value).lower()
            (repeated if key in seen else seen).add(key)
    return repeated


def _upsert(
    org: Org, name: str, field_name: str, record: Any, repeated: set[str]
) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise bad_request("INVALID_API_INPUT", "each record must be a JSON object")
    value = _external_id(record, field_name)
    if value is None:
        raise bad_request("MISSING_ARGUMENT", f"{field_name} not specified", [field_name])
    if str(value).lower() in repeated:
        raise bad_request(
            "DUPLICATE_EXTERNAL_ID",
            f"Duplicate external id specified: {value}",
            [field_name],
        )
    record_id, created = org.upsert(name, field_name, str(value), record)
    return {"id": record_id, "created": created}


def _retrieve(call: Call, org: Org, name: str) -> list[Any]:
    body = call.json() if call.method == "POST" else None
    ids = body.get("ids", []) if isinstance(body, dict) else _ids(call)
    fields = ",".join(body.get("fields", [])) if isinstance(body, dict) else call.args.get("fields")
    obj = org.sobject(name)
    names = selected_fields(obj, fields)
    answer: list[Any] = []
    with org.lock:
        for record_id in ids:
            try:
                answer.append(
                    render_record(
                        call.version, obj, org.live_row(obj, record_id, computed=True), names
                    )
                )
            except ApiError:
                answer.append(None)
    return answer


def lock_row_results(call: Call, error: ApiError) -> Reply:
    """Every record of a collections call refused with UNABLE_TO_LOCK_ROW (nothing applied)."""
    try:
        items: list[Any] = _records(call)[0] if call.method != "DELETE" else _ids(call)
    except ApiError as refused:
        return Reply(refused.status, refused.body())
    return Reply(body=[_failure(error.record_error()) for _ in items])
