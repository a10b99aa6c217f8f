"""Bulk API 2.0: query jobs with CSV results paged by ``Sforce-Locator``, and ingest jobs.

A query job fixes its matching records when it is created (state ``UploadComplete``) and is
``JobComplete`` from the next look. Results come as CSV, every value quoted, parent fields as
``Account.Name`` columns; ``maxRecords`` sets the page and ``Sforce-Locator`` names the next one
(``null`` on the last). Bulk queries refuse what Salesforce refuses: child subqueries, COUNT()
and OFFSET.

An ingest job (insert, update, upsert, delete, hardDelete) takes CSV batches while ``Open`` and
runs when set to ``UploadComplete``. Each row succeeds or fails on its own; ``#N/A`` sets a
field to null and an empty value leaves it unchanged on update.
"""

from __future__ import annotations

import base64
import csv
import io
import threading
from dataclasses import dataclass, field
from typing import Any

from sandbox.salesforce.calls import Call, Reply
from sandbox.salesforce.errors import ApiError, bad_request, not_found
from sandbox.salesforce.ids import make_id, normalize_id
from sandbox.salesforce.queries import QueryService
from sandbox.salesforce.schema import SObject
from sandbox.salesforce.soql.compiler import Plan
from sandbox.salesforce.store import Org
from sandbox.salesforce.values import to_csv, to_storage

DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
DEFAULT_MAX_RECORDS = 50_000
CSV_TYPE = "text/csv;charset=UTF-8"
# Rows applied as one batch of the org (its writes stored together).
BATCH_ROWS = 2_000


@dataclass
class Job:
    id: str
    kind: str  # "query" or "ingest"
    operation: str
    object: str
    version: str
    created: str
    delimiter: str
    line_ending: str
    state: str
    external_id: str | None = None
    plan: Plan | None = None
    ids: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    successes: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    error: str | None = None
    looked: bool = False

    def info(self) -> dict[str, Any]:
        state = self.state
        if self.kind == "query" and state == "UploadComplete" and self.looked:
            state = self.state = "JobComplete"
        self.looked = True
        answer: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": make_id("005", 1),
            "createdDate": self.created,
            "systemModstamp": self.created,
            "state": state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.version),
            "jobType": "V2Query" if self.kind == "query" else "V2Ingest",
            "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter,
        }
        if self.kind == "query":
            answer["numberRecordsProcessed"] = len(self.ids) if state == "JobComplete" else 0
        else:
            answer["externalIdFieldName"] = self.external_id
            answer["contentUrl"] = f"services/data/v{self.version}/jobs/ingest/{self.id}/batches"
            answer["numberRecordsProcessed"] = len(self.successes) + len(self.failures)
            answer["numberRecordsFailed"] = len(self.failures)
        answer["retries"] = 0
        answer["totalProcessingTime"] = 0
        if self.error:
            answer["errorMessage"] = self.error
        return answer

    def writer(self, out: io.StringIO) -> Any:
        return csv.writer(
            out,
            delimiter=DELIMITERS[self.delimiter],
            lineterminator=LINE_ENDINGS[self.line_ending],
            quoting=csv.QUOTE_ALL,
        )


class Bulk:
    def __init__(self, org: Org, queries: QueryService) -> None:
        self.org = org
        self.queries = queries
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._query_jobs_today = 0

    def query_jobs_today(self) -> int:
        return self._query_jobs_today

    def route(self, call: Call, parts: list[str]) -> Reply:
        method = call.method
        match parts:
            case ["query"] if method == "POST":
                return self.create_query(call)
            case ["ingest"] if method == "POST":
                return self.create_ingest(call)
            case ["query" | "ingest" as kind] if method == "GET":
                with self._lock:
                    listed = [job for job in self.jobs.values() if job.kind == kind]
                records = [job.info() for job in listed]
                return Reply(body={"done": True, "records": records, "nextRecordsUrl": None})
            case ["query" | "ingest" as kind, job_id] if method == "GET":
                return Reply(body=self.job(kind, job_id).info())
            case ["query" | "ingest" as kind, job_id] if method == "PATCH":
                return self.set_state(call, self.job(kind, job_id))
            case ["query" | "ingest" as kind, job_id] if method == "DELETE":
                self.job(kind, job_id)
                del self.jobs[job_id]
                return Reply(204)
            case ["query", job_id, "results"] if method == "GET":
                return self.results(call, self.job("query", job_id))
            case ["ingest", job_id, "batches"] if method == "PUT":
                return self.upload(call, self.job("ingest", job_id))
            case ["ingest", job_id, kind] if method == "GET":
                return self.ingest_results(self.job("ingest", job_id), kind.lower())
        raise not_found()

    def job(self, kind: str, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None or job.kind != kind:
            raise not_found(f"Job not found: {job_id}")
        return job

    def _new(self, call: Call, kind: str, operation: str, obj: str, prefix: str = "750") -> Job:
        body = call.json() or {}
        delimiter = str(body.get("columnDelimiter", "COMMA"))
        line_ending = str(body.get("lineEnding", "LF"))
        if delimiter not in DELIMITERS:
            raise bad_request("INVALIDJOB", f"Invalid column delimiter: {delimiter}")
        if line_ending not in LINE_ENDINGS:
            raise bad_request("INVALIDJOB", f"Invalid line ending: {line_ending}")
        with self._lock:
            job_id = make_id(prefix, self.org.next_number(f"job.{prefix}"))
        job = Job(
            job_id,
            kind,
            operation,
            obj,
            call.version,
            self.org.stamp(),
            delimiter,
            line_ending,
            "Open",
        )
        with self._lock:
            self.jobs[job_id] = job
        return job

    # -- query jobs ------------------------------------------------------------------------
    def create_query(self, call: Call) -> Reply:
        body = call.json() or {}
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise bad_request("INVALIDJOB", f"Invalid operation for a query job: {operation}")
        text = str(body.get("query") or "")
        plan = self.queries.plan(text, include_deleted=operation == "queryAll")
        unsupported = (
            "child relationship subqueries"
            if plan.children
            else "COUNT() and aggregate functions"
            if plan.count_only or plan.counts
            else "OFFSET"
            if plan.offset is not None
            else None
        )
        if unsupported:
            raise bad_request("INVALIDJOB", f"{unsupported} are not supported by Bulk API 2.0")
        job = self._new(call, "query", operation, plan.sobject.name)
        with self.org.lock:
            job.ids = self.queries.matching_ids(plan)
        job.plan = plan
        job.columns = [
            ".".join((*column.relationships, column.field.name)) for column in plan.columns
        ]
        job.state = "UploadComplete"
        self._query_jobs_today += 1
        return Reply(200, job.info() | {"state": "UploadComplete"})

    def results(self, call: Call, job: Job) -> Reply:
        if job.state != "JobComplete" and not (job.state == "UploadComplete"):
            raise bad_request("INVALIDJOB", f"Job {job.id} is not complete: {job.state}")
        job.state = "JobComplete"
        if call.version != job.version:
            raise ApiError(
                409,
                "INVALIDJOB",
                f"the job was created with API version {job.version}; read its results with it",
            )
        try:
            size = int(call.args.get("maxRecords", DEFAULT_MAX_RECORDS))
            start = (
                int(base64.urlsafe_b64decode(_pad(call.args["locator"])).decode())
                if call.args.get("locator")
                else 0
            )
        except (ValueError, UnicodeDecodeError):
            raise bad_request("INVALID_LOCATOR", "invalid locator or maxRecords") from None
        if size < 1:
            raise bad_request("INVALID_LOCATOR", "maxRecords must be positive")
        assert job.plan is not None
        page = job.ids[start : start + size]
        out = io.StringIO()
        writer = job.writer(out)
        writer.writerow(job.columns)
        with self.org.lock:
            for row in self.queries.rows(job.plan, page):
                writer.writerow(
                    [to_csv(column.field, row[column.index]) for column in job.plan.columns]
                )
        end = start + len(page)
        locator = (
            base64.urlsafe_b64encode(str(end).encode()).decode().rstrip("=")
            if end < len(job.ids)
            else "null"
        )
        return Reply(
            200,
            out.getvalue(),
            headers={"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(len(page))},
            content_type=CSV_TYPE,
        )

    # -- ingest jobs -----------------------------------------------------------------------
    def create_ingest(self, call: Call) -> Reply:
        body = call.json() or {}
        operation = body.get("operation")
        if operation not in INGEST_OPERATIONS:
            raise bad_request("INVALIDJOB", f"Invalid operation: {operation}")
        obj = self.org.sobject(str(body.get("object") or ""))
        external_id = body.get("externalIdFieldName")
        if operation == "upsert":
            spec = obj.field(str(external_id or ""))
            if spec is None or not (spec.spec.external_id or spec.name == "Id"):
                raise bad_request(
                    "INVALIDJOB",
                    f"External ID was blank or not valid for {obj.name}: {external_id}",
                )
        if body.get("contentType", "CSV") != "CSV":
            raise bad_request("INVALIDJOB", "contentType must be CSV")
        job = self._new(call, "ingest", str(operation), obj.name)
        job.external_id = external_id
        return Reply(200, job.info())

    def upload(self, call: Call, job: Job) -> Reply:
        if job.state != "Open":
            raise ApiError(409, "INVALIDJOB", f"Job {job.id} is not open for uploads: {job.state}")
        text = call.body.decode("utf-8-sig")
        if not job.header:
            job.header = self._rows(job, text)[0]
        job.data.append(text)
        return Reply(201)

    def set_state(self, call: Call, job: Job) -> Reply:
        body = call.json() or {}
        state = body.get("state")
        if state == "Aborted":
            if job.state in ("JobComplete", "Failed"):
                raise bad_request("INVALIDJOB", f"Job {job.id} has already ended: {job.state}")
            job.state = "Aborted"
            if job.kind == "ingest":
                job.unprocessed = [row for text in job.data for row in self._rows(job, text)[1]]
        elif state == "UploadComplete" and job.kind == "ingest":
            with self._lock:
                if job.state != "Open":
                    raise bad_request("INVALIDJOB", f"Job {job.id} is not open: {job.state}")
                job.state = "UploadComplete"
            try:
                self._run(job)
            except Exception as error:  # a job never hangs: whatever broke, it ends Failed
                job.state, job.error = "Failed", f"{type(error).__name__}: {error}"
                raise
        else:
            raise bad_request("INVALIDJOB", f"Invalid state change: {state}")
        return Reply(200, job.info())

    def _rows(self, job: Job, text: str) -> tuple[list[str], list[list[str]]]:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[job.delimiter])
        rows = [row for row in reader if row]
        return (rows[0], rows[1:]) if rows else ([], [])

    def _run(self, job: Job) -> None:
        job.state = "InProgress"
        for text in job.data:
            header, rows = self._rows(job, text)
            obj = self.org.sobject(job.object)
            unknown = [name for name in header if obj.field(name) is None]
            if unknown:
                job.state, job.error = (
                    "Failed",
                    f"InvalidBatch : Field name not found : {unknown[0]}",
                )
                job.unprocessed.extend(rows)
                return
            external = str(job.external_id or "")
            if job.operation == "upsert" and external.lower() not in {n.lower() for n in header}:
                job.state = "Failed"
                job.error = f"InvalidBatch : Field name not found : {external}"
                job.unprocessed.extend(rows)
                return
            for start in range(0, len(rows), BATCH_ROWS):
                self._run_batch(job, obj, header, rows[start : start + BATCH_ROWS])
        job.state = "JobComplete"

    def _run_batch(self, job: Job, obj: SObject, header: list[str], rows: list[list[str]]) -> None:
        """Apply ``rows`` as one batch of the org: each row succeeds or fails on its own, and
        the rows' writes are stored together when the batch ends."""
        successes: list[list[str]] = []
        failures: list[list[str]] = []
        records = [dict(zip(header, row, strict=False)) for row in rows]
        with self.org.batch():
            self._preload(job, obj, records)
            for row, values in zip(rows, records, strict=True):
                try:
                    with self.org.transaction():
                        record_id, created = self._apply(job, values)
                    successes.append([record_id, str(created).lower(), *row])
                except ApiError as error:
                    message = f"{error.code}:{error.message}:{','.join(error.fields)} --"
                    failures.append([values.get("Id", ""), message, *row])
        job.successes.extend(successes)
        job.failures.extend(failures)

    def _preload(self, job: Job, obj: SObject, records: list[dict[str, str]]) -> None:
        """Read ahead, with one query per object, what the rows will look up."""
        if job.operation in ("update", "delete", "hardDelete"):
            ids = (normalize_id(values.get("Id", "").strip()) for values in records)
            self.org.preload_ids(obj, [record_id for record_id in ids if record_id])
        elif job.operation == "upsert":
            spec = obj.field(str(job.external_id))
            if spec is not None and spec.name == "Id":
                ids = (normalize_id(values.get(spec.name, "")) for values in records)
                self.org.preload_ids(obj, [record_id for record_id in ids if record_id])
            elif spec is not None:
                stored = []
                for values in records:
                    sent = next(
                        (v for k, v in values.items() if k.lower() == spec.name.lower()), ""
                    )
                    try:
                        stored.append(to_storage(spec, sent))
                    except ApiError:
                        continue
                self.org.preload_where(obj, spec.name, stored)
        if job.operation in ("insert", "update", "upsert"):
            self.org.preload_records(obj, records)

    def _apply(self, job: Job, values: dict[str, str]) -> tuple[str, bool]:
        record = {
            key: (None if value == "#N/A" else value)
            for key, value in values.items()
            if value != "" or job.operation == "insert"
        }
        if job.operation == "insert":
            return self.org.create(job.object, record), True
        if job.operation in ("delete", "hardDelete"):
            record_id = values.get("Id", "")
            self.org.delete(job.object, record_id)
            return record_id, False
        if job.operation == "update":
            record_id = record.pop("Id", "") or ""
            self.org.update(job.object, str(record_id), record)
            return str(record_id), False
        key = next(name for name in values if name.lower() == str(job.external_id).lower())
        if not values[key]:
            raise bad_request("MISSING_ARGUMENT", f"{key} not specified", [key])
        return self.org.upsert(job.object, key, values[key], record)

    def ingest_results(self, job: Job, kind: str) -> Reply:
        out = io.StringIO()
        writer = job.writer(out)
        if kind == "successfulresults":
            writer.writerow(["sf__Id", "sf__Created", *job.header])
            writer.writerows(job.successes)
        elif kind == "failedresults":
            writer.writerow(["sf__Id", "sf__Error", *job.header])
            writer.writerows(job.failures)
        elif kind == "unprocessedrecords":
            writer.writerow(job.header)
            writer.writerows(job.unprocessed)
        else:
            raise not_found()
        return Reply(200, out.getvalue(), content_type=CSV_TYPE)


def _pad(text: str) -> str:
    return text + "=" * (-len(text) % 4)
