"""Bulk API 1.0 query jobs (``/services/async/NN.0/job``), as Singer's tap-salesforce (Bulk
mode) and simple-salesforce's ``sf.bulk`` use them.

A job (``query`` or ``queryAll`` on one object; contentType CSV, JSON or XML) takes query
batches while it is Open. A batch runs as it is added (its records are fixed then, like a query
cursor, and read when its result is read): its answer says Queued, and from then on it reads
Completed with one result, or Failed with a ``stateMessage`` such as ``InvalidBatch : Failed to
process query: INVALID_FIELD: ...``. Batch operations use the job's API version. Other
operations (insert, update, upsert, delete) are refused with InvalidJob: the sandbox loads
data through Bulk API 2.0 ingest jobs.

PK chunking: ``Sforce-Enable-PKChunking: true`` (optionally ``chunkSize=N``, default 100,000,
at most 250,000, and ``startRow=<id>``) on job creation splits each batch into batches of
``chunkSize`` consecutive record ids of the object (deleted records count); the original
batch reads NotProcessed. Salesforce chunks custom objects and a list of standard ones
(Account, Contact, Opportunity, ...); on others, and for a query with more than a WHERE
clause, the original batch fails.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sandbox.salesforce import bulk1_wire as wire
from sandbox.salesforce.calls import Call, Reply
from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.ids import make_id, normalize_id
from sandbox.salesforce.queries import QueryService, parse_soql
from sandbox.salesforce.soql.compiler import Plan
from sandbox.salesforce.store import Org

DEFAULT_CHUNK = 100_000
MAX_CHUNK = 250_000
CONTENT_TYPES = ("CSV", "JSON", "XML")
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
CHUNKED_OBJECTS = frozenset(
    {
        "Account",
        "Asset",
        "Campaign",
        "CampaignMember",
        "Case",
        "CaseArticle",
        "CaseHistory",
        "Contact",
        "Event",
        "EventRelation",
        "Lead",
        "LoginHistory",
        "Opportunity",
        "Task",
        "User",
        "WorkOrder",
        "WorkOrderLineItem",
    }
)
QUERY_TIMEOUT = "Your query request was running for too long."
FINAL_STATES = ("Completed", "Failed", "NotProcessed")


@dataclass(frozen=True)
class Chunking:
    size: int = DEFAULT_CHUNK
    start: str | None = None


def parse_chunking(header: str | None) -> Chunking | None:
    """The ``Sforce-Enable-PKChunking`` header: ``true``, ``chunkSize=N``, ``startRow=ID``,
    ``parent=Object``, separated by semicolons (``false`` or no header: no chunking)."""
    if header is None or not header.strip():
        return None
    size, start, enabled = DEFAULT_CHUNK, None, False
    for part in (item.strip() for item in header.split(";")):
        key, sep, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep and key in ("true", "false"):
            enabled = key == "true"
        elif key == "chunksize" and sep:
            if not value.isdigit() or not 1 <= int(value) <= MAX_CHUNK:
                raise wire.async_error(
                    "InvalidJob", f"chunkSize must be between 1 and {MAX_CHUNK}: {value}"
                )
            size, enabled = int(value), True
        elif key == "startrow" and sep:
            if normalize_id(value) is None:
                raise wire.async_error("InvalidJob", f"startRow is not a record id: {value}")
            start, enabled = normalize_id(value), True
        elif key == "parent" and sep:
            enabled = True  # for share and history objects, which the sandbox has none of
        elif part:
            raise wire.async_error("InvalidJob", f"Invalid Sforce-Enable-PKChunking value: {part}")
    return Chunking(size, start) if enabled else None


@dataclass
class Batch:
    id: str
    job_id: str
    created: str
    state: str = "Queued"
    message: str | None = None
    plan: Plan | None = None
    ids: list[str] = field(default_factory=list)
    result_id: str | None = None

    def info(self, as_json: bool, *, state: str | None = None) -> dict[str, Any]:
        state = state or self.state
        return {
            "id": self.id,
            "jobId": self.job_id,
            "state": state,
            "stateMessage": self.message if state == self.state else None,
            "createdDate": _stamp(self.created, as_json),
            "systemModstamp": _stamp(self.created, as_json),
            "numberRecordsProcessed": len(self.ids) if state == "Completed" else 0,
            "numberRecordsFailed": 0,
            "totalProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "apexProcessingTime": 0,
        }


@dataclass
class Job:
    id: str
    operation: str
    object: str
    content_type: str
    concurrency: str
    version: str
    created: str
    chunking: Chunking | None
    state: str = "Open"
    batches: list[Batch] = field(default_factory=list)

    def info(self, as_json: bool) -> dict[str, Any]:
        states = [batch.state for batch in self.batches]
        fields: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": make_id("005", 1),
            "createdDate": _stamp(self.created, as_json),
            "systemModstamp": _stamp(self.created, as_json),
            "state": self.state,
            "concurrencyMode": self.concurrency,
            "contentType": self.content_type,
            "numberBatchesQueued": states.count("Queued"),
            "numberBatchesInProgress": states.count("InProgress"),
            "numberBatchesCompleted": states.count("Completed"),
            "numberBatchesFailed": states.count("Failed"),
            "numberBatchesTotal": len(states),
            "numberRecordsProcessed": sum(
                len(batch.ids) for batch in self.batches if batch.state == "Completed"
            ),
            "numberRetries": 0,
            "apiVersion": float(self.version) if as_json else self.version,
            "numberRecordsFailed": 0,
            "totalProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "apexProcessingTime": 0,
        }
        return fields


def _stamp(stored: str, as_json: bool) -> str:
    """Salesforce's ``...000+0000`` in JSON, ``...000Z`` in XML."""
    return stored if as_json else stored.replace("+0000", "Z")


class Bulk1:
    def __init__(self, org: Org, queries: QueryService) -> None:
        self.org = org
        self.queries = queries
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._batches: dict[date, int] = {}

    def batches_today(self) -> int:
        return self._batches.get(self.org.clock().date(), 0)

    # -- what a call concerns (for faults and formats) ---------------------------------------
    def job_of(self, call: Call) -> Job | None:
        return self.jobs.get(call.parts[1]) if len(call.parts) > 1 else None

    def objects(self, call: Call) -> set[str]:
        job = self.job_of(call)
        if job is not None:
            return {job.object.lower()}
        if call.parts == ["job"] and call.body:
            try:
                fields = wire.parse_fields(call.body, wire.wants_json(call.header("content-type")))
            except ApiError:
                return set()
            return {str(fields.get("object", "")).lower()}
        return set()

    def runs_query(self, call: Call) -> bool:
        return call.method == "POST" and len(call.parts) == 3 and call.parts[2] == "batch"

    def answers_json(self, call: Call) -> bool:
        """Job calls answer in the request's format, batch calls in the job's."""
        job = self.job_of(call)
        content_type = call.header("content-type")
        if job is not None and (len(call.parts) > 2 or not content_type):
            return job.content_type == "JSON"
        return wire.wants_json(content_type)

    def error(self, call: Call, error: ApiError) -> Reply:
        return wire.error_reply(error, self.answers_json(call))

    # -- routing ---------------------------------------------------------------------------
    def handle(self, call: Call, *, timed_out: bool = False) -> Reply:
        method, parts = call.method, call.parts
        as_json = self.answers_json(call)
        match parts:
            case ["job"] if method == "POST":
                return wire.answer("jobInfo", self.create(call).info(as_json), as_json, 201)
            case ["job", _] if method == "GET":
                return wire.answer("jobInfo", self.job(call).info(as_json), as_json)
            case ["job", _] if method == "POST":
                return wire.answer("jobInfo", self.set_state(call).info(as_json), as_json)
            case ["job", _, "batch"] if method == "POST":
                batch = self.add_batch(call, timed_out=timed_out)
                return wire.answer("batchInfo", batch.info(as_json, state="Queued"), as_json, 201)
            case ["job", _, "batch"] if method == "GET":
                batches = [batch.info(as_json) for batch in self.job(call, batches=True).batches]
                return wire.batch_list(batches, as_json)
            case ["job", _, "batch", batch_id] if method == "GET":
                return wire.answer("batchInfo", self.batch(call, batch_id).info(as_json), as_json)
            case ["job", _, "batch", batch_id, "result"] if method == "GET":
                return wire.result_list([self._result_id(call, batch_id)], as_json)
            case ["job", _, "batch", batch_id, "result", result_id] if method == "GET":
                if self._result_id(call, batch_id) != result_id:
                    raise wire.async_error("InvalidBatch", f"Invalid result id: {result_id}")
                return self.results(call, self.batch(call, batch_id))
        raise wire.async_error("InvalidUrl", f"Invalid URL for {method}: /{call.path}", 404)

    def job(self, call: Call, *, batches: bool = False) -> Job:
        job = self.job_of(call)
        if job is None:
            raise wire.async_error("InvalidJob", f"Invalid job id: {call.parts[1]}")
        if batches and call.version != job.version:
            raise wire.async_error(
                "InvalidJob",
                f"Job {job.id} was created with API version {job.version}; "
                "use that version for its batches",
            )
        return job

    def batch(self, call: Call, batch_id: str) -> Batch:
        job = self.job(call, batches=True)
        found = next((batch for batch in job.batches if batch.id == batch_id), None)
        if found is None:
            raise wire.async_error("InvalidBatch", f"Invalid batch id: {batch_id}")
        return found

    def _result_id(self, call: Call, batch_id: str) -> str:
        batch = self.batch(call, batch_id)
        if batch.state != "Completed" or batch.result_id is None:
            raise wire.async_error("InvalidBatch", f"Batch not completed: {batch.state}")
        return batch.result_id

    # -- jobs ------------------------------------------------------------------------------
    def create(self, call: Call) -> Job:
        fields = wire.parse_fields(call.body, wire.wants_json(call.header("content-type")))
        operation = str(fields.get("operation") or "")
        if operation in INGEST_OPERATIONS:
            raise wire.async_error(
                "InvalidJob",
                f"The sandbox runs query jobs only on Bulk API 1.0 ({operation}: use Bulk API "
                "2.0 ingest jobs)",
            )
        if operation not in ("query", "queryAll"):
            raise wire.async_error("InvalidJob", f"Invalid job operation: {operation}")
        name = str(fields.get("object") or "")
        obj = self.org.schema.get(name)
        if obj is None:
            raise wire.async_error("InvalidJob", f"Unable to find object: {name}")
        content_type = str(fields.get("contentType") or "XML")
        if content_type not in CONTENT_TYPES:
            raise wire.async_error(
                "InvalidJob", f"Invalid content type for a query job: {content_type}"
            )
        concurrency = {"0": "Parallel", "1": "Serial"}.get(
            str(fields.get("concurrencyMode", "Parallel")),
            str(fields.get("concurrencyMode", "Parallel")),
        )
        if concurrency not in ("Parallel", "Serial"):
            raise wire.async_error("InvalidJob", f"Invalid concurrency mode: {concurrency}")
        chunking = parse_chunking(call.header("sforce-enable-pkchunking"))
        job_id = make_id("750", self.org.next_number("job.750"))
        stamp = self.org.stamp()
        job = Job(
            job_id, operation, obj.name, content_type, concurrency, call.version, stamp, chunking
        )
        with self._lock:
            self.jobs[job_id] = job
        return job

    def set_state(self, call: Call) -> Job:
        job = self.job(call)
        state = str(
            wire.parse_fields(call.body, wire.wants_json(call.header("content-type"))).get("state")
            or ""
        )
        allowed = {"Closed": ("Open",), "Aborted": ("Open", "Closed")}
        if state not in allowed:
            raise wire.async_error("InvalidJobState", f"Invalid state for a job: {state}")
        with self._lock:
            if job.state not in allowed[state]:
                raise wire.async_error(
                    "InvalidJobState", f"Job {job.id} cannot become {state}: it is {job.state}"
                )
            job.state = state
        return job

    # -- batches ---------------------------------------------------------------------------
    def add_batch(self, call: Call, *, timed_out: bool = False) -> Batch:
        job = self.job(call, batches=True)
        if job.state != "Open":
            raise wire.async_error("InvalidJobState", f"Job {job.id} is not open: {job.state}")
        text = call.body.decode("utf-8-sig", errors="replace").strip()
        if not text:
            raise wire.async_error("ClientInputError", "The batch holds no query")
        batch = self._new_batch(job)
        try:
            if timed_out:
                raise ApiError(400, "QUERY_TIMEOUT", QUERY_TIMEOUT)
            plan = self._plan(job, text)
            with self.org.lock:
                if job.chunking is None:
                    self._complete(batch, plan, self.queries.matching_ids(plan))
                else:
                    self._chunk(job, batch, plan)
        except ApiError as error:
            batch.state = "Failed"
            batch.message = f"InvalidBatch : Failed to process query: {error.code}: {error.message}"
        return batch

    def _new_batch(self, job: Job) -> Batch:
        batch = Batch(make_id("751", self.org.next_number("job.751")), job.id, self.org.stamp())
        with self._lock:
            job.batches.append(batch)
            today = self.org.clock().date()
            self._batches = {today: self._batches.get(today, 0) + 1}  # today's count only
        return batch

    def _complete(self, batch: Batch, plan: Plan, ids: list[str]) -> None:
        batch.plan, batch.ids, batch.state = plan, ids, "Completed"
        batch.result_id = make_id("752", self.org.next_number("job.752"))

    def _plan(self, job: Job, text: str) -> Plan:
        query = parse_soql(text)
        plan = self.queries.plan(text, include_deleted=job.operation == "queryAll")
        unsupported = (
            "Aggregate Relationships not supported in Batch Query"
            if plan.children
            else "Aggregate queries are not supported in Batch Query"
            if plan.count_only or plan.counts
            else "OFFSET is not supported in Batch Query"
            if plan.offset is not None
            else None
        )
        if unsupported:
            raise ApiError(400, "FUNCTIONALITY_NOT_ENABLED", unsupported)
        if plan.sobject.name != job.object:
            raise ApiError(
                400,
                "INVALID_TYPE",
                f"The query is on {plan.sobject.name}; the job's object is {job.object}",
            )
        if job.chunking is not None and (query.order_by or query.limit is not None):
            raise ApiError(
                400,
                "FUNCTIONALITY_NOT_ENABLED",
                "PK chunking works only with queries that have no clause but WHERE",
            )
        return plan

    def _chunk(self, job: Job, original: Batch, plan: Plan) -> None:
        """Batches of ``chunkSize`` consecutive ids of the table; the original is NotProcessed."""
        obj = plan.sobject
        assert job.chunking is not None
        if not (obj.custom or obj.name in CHUNKED_OBJECTS):
            raise ApiError(
                400, "FUNCTIONALITY_NOT_ENABLED", f"PK chunking is not supported for {obj.name}"
            )
        table = [row[0] for row in self.org.db.execute(f'SELECT Id FROM "{obj.name}" ORDER BY Id')]
        start = job.chunking.start
        table = [record_id for record_id in table if start is None or record_id >= start]
        bounds = table[:: job.chunking.size] or [start or ""]
        chunks: list[list[str]] = [[] for _ in bounds]
        for record_id in self.queries.matching_ids(plan):
            if record_id >= bounds[0]:
                chunks[bisect.bisect_right(bounds, record_id) - 1].append(record_id)
        for ids in chunks:
            self._complete(self._new_batch(job), plan, ids)
        original.state = "NotProcessed"

    # -- results ---------------------------------------------------------------------------
    def results(self, call: Call, batch: Batch) -> Reply:
        assert batch.plan is not None
        job = self.job(call)
        with self.org.lock:
            rows = list(self.queries.rows(batch.plan, batch.ids))
        if job.content_type == "JSON":
            return Reply(
                200, wire.json_results(batch.plan, rows, job.version), content_type=wire.JSON_TYPE
            )
        if job.content_type == "XML":
            return Reply(
                200, wire.xml_results(batch.plan, rows, job.version), content_type=wire.XML_TYPE
            )
        return Reply(200, wire.csv_results(batch.plan, rows), content_type=wire.CSV_TYPE)
