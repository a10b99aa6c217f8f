"""The shapes of Bulk API 1.0 (``/services/async/NN.0/``): XML or JSON in, XML or JSON out.

Job requests answer in the request's format (``Content-Type: application/json`` → JSON, else
XML); batch requests answer in the job's: JSON for a JSON job, XML otherwise, whatever the
request says (a CSV job's batch information is XML). Errors are
``<error><exceptionCode/><exceptionMessage/></error>`` or ``{"exceptionCode", "exceptionMessage"}``.

Query results follow the job's content type: CSV (every value quoted, parent fields as
``Account.Name`` columns, datetimes in UTC with ``Z``, ``Records not found for this query`` when
there is none), JSON (records with ``attributes``; dates and datetimes as milliseconds since the
epoch, as Salesforce writes them) or XML (``<queryResult>`` of ``<records>``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any
from xml.sax.saxutils import escape

from defusedxml import ElementTree

from sandbox.salesforce.calls import Reply
from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.schema import Field
from sandbox.salesforce.soql.compiler import Plan
from sandbox.salesforce.values import parse_datetime, to_csv, to_json

NS = "http://www.force.com/2009/06/asyncapi/dataload"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
JSON_TYPE = "application/json"
XML_TYPE = "application/xml"
CSV_TYPE = "text/csv; charset=UTF-8"
NO_RECORDS = "Records not found for this query"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'


def async_error(code: str, message: str, status: int = 400) -> ApiError:
    """A Bulk API 1.0 refusal (``code`` is its exceptionCode: InvalidJob, InvalidBatch, ...)."""
    return ApiError(status, code, message)


def wants_json(content_type: str | None) -> bool:
    return "json" in (content_type or "").lower()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return escape(str(value))


def element(name: str, fields: dict[str, Any], *, namespace: bool = True) -> str:
    """``<name>`` with one child per field (None fields left out)."""
    inner = "".join(
        f"<{key}>{_text(value)}</{key}>" for key, value in fields.items() if value is not None
    )
    xmlns = f' xmlns="{NS}"' if namespace else ""
    return f"<{name}{xmlns}>{inner}</{name}>"


def answer(root: str, fields: dict[str, Any], as_json: bool, status: int = 200) -> Reply:
    """A jobInfo or batchInfo in JSON or XML."""
    if as_json:
        return Reply(
            status, {k: v for k, v in fields.items() if v is not None}, content_type=JSON_TYPE
        )
    return Reply(status, XML_HEAD + element(root, fields), content_type=XML_TYPE)


def batch_list(batches: Sequence[dict[str, Any]], as_json: bool) -> Reply:
    if as_json:
        body = {"batchInfo": [{k: v for k, v in b.items() if v is not None} for b in batches]}
        return Reply(200, body, content_type=JSON_TYPE)
    inner = "".join(element("batchInfo", fields, namespace=False) for fields in batches)
    return Reply(
        200, f'{XML_HEAD}<batchInfoList xmlns="{NS}">{inner}</batchInfoList>', content_type=XML_TYPE
    )


def result_list(result_ids: Sequence[str], as_json: bool) -> Reply:
    if as_json:
        return Reply(200, list(result_ids), content_type=JSON_TYPE)
    inner = "".join(f"<result>{result_id}</result>" for result_id in result_ids)
    return Reply(
        200, f'{XML_HEAD}<result-list xmlns="{NS}">{inner}</result-list>', content_type=XML_TYPE
    )


def error_reply(error: ApiError, as_json: bool) -> Reply:
    if as_json:
        body = {"exceptionCode": error.code, "exceptionMessage": error.message}
        return Reply(error.status, body, content_type=JSON_TYPE)
    fields = {"exceptionCode": error.code, "exceptionMessage": error.message}
    return Reply(error.status, XML_HEAD + element("error", fields), content_type=XML_TYPE)


def parse_fields(body: bytes, as_json: bool) -> dict[str, Any]:
    """The fields of a jobInfo request body (JSON object or ``<jobInfo>`` XML)."""
    if as_json:
        try:
            parsed = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError) as error:
            raise async_error(
                "ClientInputError", f"Failed to parse the JSON body: {error}"
            ) from None
        if not isinstance(parsed, dict):
            raise async_error("ClientInputError", "The JSON body must be an object")
        return parsed
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise async_error("InvalidXML", f"Failed to parse the XML body: {error}") from None
    return {child.tag.rpartition("}")[2]: (child.text or "").strip() for child in root}


# -- query results -------------------------------------------------------------------------
def csv_results(plan: Plan, rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return NO_RECORDS
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow([".".join((*c.relationships, c.field.name)) for c in plan.columns])
    for row in rows:
        writer.writerow([to_csv(c.field, row[c.index]) for c in plan.columns])
    return out.getvalue()


def _json_value(spec: Field, stored: Any) -> Any:
    """Dates and datetimes as milliseconds since the epoch, the rest as the REST API has it."""
    if stored is None or spec.type not in ("date", "datetime"):
        return to_json(spec, stored)
    moment = (
        datetime.combine(date.fromisoformat(stored), datetime.min.time(), UTC)
        if spec.type == "date"
        else parse_datetime(stored)
    )
    return int(moment.timestamp() * 1000)


def _xml_text(spec: Field, stored: Any) -> str | None:
    return None if stored is None else to_csv(spec, stored)


def _record(
    plan: Plan, row: Sequence[Any], version: str, value: Callable[[Field, Any], Any]
) -> dict[str, Any]:
    """A record: parents nested with their attributes (None when the lookup is empty)."""
    base = f"/services/data/v{version}/sobjects/"
    name = plan.sobject.name
    record: dict[str, Any] = {"attributes": {"type": name, "url": f"{base}{name}/{row[0]}"}}
    for column in plan.columns:
        holder: dict[str, Any] | None = record
        for depth, relationship in enumerate(column.relationships, start=1):
            assert holder is not None
            if relationship not in holder:
                parent_id = row[plan.join_ids[column.relationships[:depth]]]
                kind = column.objects[depth - 1].name
                holder[relationship] = (
                    None
                    if parent_id is None
                    else {"attributes": {"type": kind, "url": f"{base}{kind}/{parent_id}"}}
                )
            holder = holder[relationship]
            if holder is None:
                break
        if holder is not None:
            holder[column.field.name] = value(column.field, row[column.index])
    return record


def json_results(plan: Plan, rows: Sequence[Sequence[Any]], version: str) -> list[dict[str, Any]]:
    return [_record(plan, row, version, _json_value) for row in rows]


def _xml_field(name: str, value: Any) -> str:
    if value is None:
        return f'<{name} xsi:nil="true"/>'
    if isinstance(value, dict):
        return f'<{name} xsi:type="sObject">{_xml_fields(value)}</{name}>'
    return f"<{name}>{escape(str(value))}</{name}>"


def _xml_fields(record: dict[str, Any]) -> str:
    kind = record["attributes"]["type"]
    return f"<type>{kind}</type>" + "".join(
        _xml_field(key, value) for key, value in record.items() if key != "attributes"
    )


def xml_results(plan: Plan, rows: Sequence[Sequence[Any]], version: str) -> str:
    """``<queryResult>`` of ``<records>``: values written as in the CSV, nil for null."""
    records = "".join(
        f'<records xsi:type="sObject">{_xml_fields(_record(plan, row, version, _xml_text))}'
        "</records>"
        for row in rows
    )
    return f'{XML_HEAD}<queryResult xmlns="{NS}" xmlns:xsi="{XSI}">{records}</queryResult>'
