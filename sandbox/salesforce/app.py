"""The sandbox as a WSGI application: logins, the REST API, Bulk API 2.0 and 1.0 and the admin
API.

Every call under ``/services/data/vNN.0/`` needs a session, is counted against the daily API
quota (a Composite call counts once) and answers ``Sforce-Limit-Info: api-usage=N/M``. Once the
quota is spent, calls answer 403 REQUEST_LIMIT_EXCEEDED until the next UTC day. Bulk API 1.0
calls (``/services/async/NN.0/``) take the session in ``X-SFDC-Session``, are counted the same
way and answer in that API's XML or JSON shapes. The admin API under ``/sandbox/`` (fault
injection, quota, sessions) needs a session too but is not counted.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from sandbox.salesforce import composite, files
from sandbox.salesforce.auth import OAuthError, Sessions, expired_session
from sandbox.salesforce.bulk import Bulk
from sandbox.salesforce.bulk1 import Bulk1
from sandbox.salesforce.bulk1_wire import async_error
from sandbox.salesforce.calls import Call, Reply
from sandbox.salesforce.errors import ApiError, bad_request, not_found
from sandbox.salesforce.faults import FaultRule, Faults, Injected
from sandbox.salesforce.queries import QueryService
from sandbox.salesforce.rest import Rest
from sandbox.salesforce.store import Org

log = logging.getLogger(__name__)

MIN_VERSION = 52
MAX_VERSION = 68
SEASONS = ("Summer", "Winter", "Spring")


def version_label(major: int) -> str:
    index = major - MIN_VERSION
    return f"{SEASONS[index % 3]} '{21 + (index + 2) // 3}"


def parse_version(text: str) -> str | None:
    """``v59.0`` → ``59.0`` for a supported version, else None."""
    if not text.startswith("v") or not text.endswith(".0"):
        return None
    major = text[1:-2]
    if not major.isdigit() or not MIN_VERSION <= int(major) <= MAX_VERSION:
        return None
    return f"{int(major)}.0"


class Usage:
    """API calls spent today (UTC) against the org's daily quota."""

    def __init__(self, limit: int, clock: Callable[[], datetime]) -> None:
        self.limit = limit
        self.used = 0
        self.clock = clock
        self.day = clock().date()
        self._lock = threading.Lock()

    def _roll(self) -> None:
        today = self.clock().date()
        if today != self.day:
            self.day, self.used = today, 0

    def spend(self) -> None:
        with self._lock:
            self._roll()
            if self.used >= self.limit:
                raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self.used += 1

    def header(self) -> str:
        with self._lock:
            self._roll()
            return f"api-usage={self.used}/{self.limit}"

    def set(self, limit: int | None, used: int | None) -> None:
        with self._lock:
            self._roll()
            if limit is not None:
                self.limit = limit
            if used is not None:
                self.used = used


FAULT_ERRORS = {
    "500": ApiError(
        500,
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if you contact support: "
        "sandbox-fault",
    ),
    "503": ApiError(503, "SERVER_UNAVAILABLE", "Service temporarily unavailable"),
    "request_limit": ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    "expired_session": expired_session(),
    "lock_row": ApiError(
        400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"
    ),
    "query_timeout": ApiError(400, "QUERY_TIMEOUT", "Your query request was running for too long."),
}
#: The same faults as Bulk API 1.0 answers them (exceptionCode, message).
ASYNC_FAULT_ERRORS = {
    "500": async_error("Unknown", "Exception with unknown cause occurred (sandbox-fault)", 500),
    "503": async_error("ServerUnavailable", "Service temporarily unavailable", 503),
    "request_limit": async_error("ExceededQuota", "TotalRequests Limit exceeded.", 403),
    "expired_session": async_error("InvalidSessionId", "Invalid session id"),
    "lock_row": async_error(
        "TooManyLockFailure", "Too many lock failures: unable to obtain exclusive access"
    ),
}


class ConnectionDroppedError(Exception):
    """The sandbox closed the connection without answering (an injected fault)."""


class SandboxApp:
    def __init__(
        self,
        org: Org,
        sessions: Sessions,
        usage: Usage,
        faults: Faults,
    ) -> None:
        self.org = org
        self.sessions = sessions
        self.usage = usage
        self.faults = faults
        self.queries = QueryService(org)
        self.rest = Rest(org, self.queries)
        self.bulk = Bulk(org, self.queries)
        self.bulk1 = Bulk1(org, self.queries)

    # -- WSGI ------------------------------------------------------------------------------
    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        try:
            reply = self.handle(request)
        except ConnectionDroppedError:
            connection = environ.get("werkzeug.socket")
            if connection is not None:
                connection.shutdown(socket.SHUT_RDWR)
            reply = Reply(500, "connection dropped")
        response = Response(reply.payload(), status=reply.status, content_type=reply.content_type)
        for name, value in reply.headers.items():
            response.headers[name] = value
        return response(environ, start_response)

    def instance_url(self, request: Request) -> str:
        return f"https://{request.host}"

    def handle(self, request: Request) -> Reply:
        parts = [part for part in request.path.split("/") if part]
        try:
            if parts[:3] == ["services", "oauth2", "token"] and request.method == "POST":
                return self._token(request)
            if (
                parts[:3] == ["services", "Soap", "u"]
                and request.method == "POST"
                and len(parts) >= 4
            ):
                status, body = self.sessions.soap_login(
                    request.get_data(), self.instance_url(request), parts[3]
                )
                return Reply(status, body, content_type="text/xml;charset=UTF-8")
            if parts[:2] == ["services", "data"]:
                return self._api(request, parts[2:])
            if parts[:2] == ["services", "async"] and len(parts) > 2:
                return self._async(request, parts[2:])
            if parts[:1] == ["sandbox"]:
                self.sessions.check(request.headers.get("Authorization"))
                return self._admin(request, parts[1:])
            raise not_found()
        except ApiError as error:
            reply = Reply(error.status, error.body())
        except ConnectionDroppedError:
            raise
        except Exception:  # a bug in the sandbox answers as Salesforce does, in JSON
            log.exception("sandbox failed on %s %s", request.method, request.path)
            failure = FAULT_ERRORS["500"]
            reply = Reply(failure.status, failure.body())
        if parts[:2] == ["services", "data"] and len(parts) > 2:
            reply.headers.setdefault("Sforce-Limit-Info", self.usage.header())
        return reply

    def _token(self, request: Request) -> Reply:
        try:
            answer = self.sessions.token(
                dict(request.form), request.headers.get("Authorization"), self.instance_url(request)
            )
        except OAuthError as error:
            return Reply(
                error.status, {"error": error.error, "error_description": error.description}
            )
        return Reply(200, answer)

    def _api(self, request: Request, parts: list[str]) -> Reply:
        if not parts:
            return Reply(
                body=[
                    {
                        "label": version_label(major),
                        "url": f"/services/data/v{major}.0",
                        "version": f"{major}.0",
                    }
                    for major in range(MIN_VERSION, MAX_VERSION + 1)
                ]
            )
        version = parse_version(parts[0])
        if version is None:
            raise not_found()
        self.sessions.check(request.headers.get("Authorization"))
        call = Call(
            method=request.method,
            parts=parts[1:],
            args=dict(request.args),
            body=request.get_data(),
            headers={key.lower(): value for key, value in request.headers.items()},
            version=version,
            instance_url=self.instance_url(request),
        )
        try:
            fault = (
                self.faults.pick(
                    call.path, self._objects(call), query=call.parts in (["query"], ["queryAll"])
                )
                if self.faults.active
                else None
            )
            if fault is not None and fault.when == "before":
                injected = self._inject(fault, call)
                if injected is not None:
                    injected.headers["Sforce-Limit-Info"] = self.usage.header()
                    return injected
            self.usage.spend()
            reply = self.route(call)
            if fault is not None and fault.kind == "drop":
                raise ConnectionDroppedError
        except ApiError as error:
            reply = Reply(error.status, error.body())
        reply.headers["Sforce-Limit-Info"] = self.usage.header()
        return reply

    def _async(self, request: Request, parts: list[str]) -> Reply:
        """A Bulk API 1.0 call: ``/services/async/NN.0/job...`` (see :mod:`.bulk1`)."""
        version = parse_version(f"v{parts[0]}")
        call = Call(
            method=request.method,
            parts=parts[1:],
            args=dict(request.args),
            body=request.get_data(),
            headers={key.lower(): value for key, value in request.headers.items()},
            version=version or parts[0],
            instance_url=self.instance_url(request),
        )
        try:
            if version is None:
                raise async_error("InvalidUrl", f"Unsupported API version: {parts[0]}", 404)
            if self.sessions.session(call.header("x-sfdc-session") or "") is None:
                raise async_error("InvalidSessionId", "Invalid session id")
            fault = (
                self.faults.pick(
                    "/".join(["async", *call.parts]),
                    self.bulk1.objects(call),
                    query=self.bulk1.runs_query(call),
                )
                if self.faults.active
                else None
            )
            if fault is not None and fault.when == "before" and fault.kind != "query_timeout":
                log.info("sandbox fault %s on %s async/%s", fault.kind, call.method, call.path)
                if fault.kind == "drop":
                    raise ConnectionDroppedError
                if fault.kind != "slow":
                    raise ASYNC_FAULT_ERRORS[fault.kind]
                time.sleep(fault.delay)
            try:
                self.usage.spend()
            except ApiError:
                raise ASYNC_FAULT_ERRORS["request_limit"] from None
            reply = self.bulk1.handle(
                call, timed_out=fault is not None and fault.kind == "query_timeout"
            )
            if fault is not None and fault.kind == "drop":
                raise ConnectionDroppedError
        except ApiError as error:
            reply = self.bulk1.error(call, error)
        reply.headers["Sforce-Limit-Info"] = self.usage.header()
        return reply

    def _inject(self, fault: Injected, call: Call) -> Reply | None:
        log.info("sandbox fault %s on %s %s", fault.kind, call.method, call.path)
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return None
        if fault.kind == "drop":
            raise ConnectionDroppedError
        if fault.kind == "lock_row" and call.parts[:2] == ["composite", "sobjects"]:
            return composite.lock_row_results(call, FAULT_ERRORS["lock_row"])
        error = FAULT_ERRORS[fault.kind]
        return Reply(error.status, error.body())

    def _objects(self, call: Call) -> set[str]:
        """Names (lower case) of the objects a call touches, for rules limited to one."""
        names = {part.lower() for part in call.parts[1:3]}
        if call.parts[:1] in (["query"], ["queryAll"]) and "q" in call.args:
            words = call.args["q"].split()
            names |= {
                words[index + 1].lower()
                for index, word in enumerate(words[:-1])
                if word.lower() == "from"
            }
        if call.parts[:2] == ["composite", "sobjects"] and "ids" in call.args:
            for record_id in call.args["ids"].split(","):
                obj = self.org.schema.by_prefix(record_id.strip()[:3])
                if obj is not None:
                    names.add(obj.name.lower())
        if call.parts[:2] == ["composite", "sobjects"]:
            body = call.json() if call.body else None
            for record in (body or {}).get("records", []) if isinstance(body, dict) else []:
                kind = (
                    (record.get("attributes") or {}).get("type")
                    if isinstance(record, dict)
                    else None
                )
                if kind:
                    names.add(str(kind).lower())
        return names

    # -- routing ---------------------------------------------------------------------------
    def route(self, call: Call) -> Reply:
        method, rest = call.method, self.rest
        match call.parts:
            case []:
                base = f"/services/data/v{call.version}"
                return Reply(
                    body={
                        name: f"{base}/{name}"
                        for name in ("sobjects", "query", "queryAll", "limits", "composite", "jobs")
                    }
                )
            case ["sobjects"] if method == "GET":
                return rest.global_describe(call)
            case ["sobjects", name] if method == "GET":
                return rest.object_info(call, name)
            case ["sobjects", name] if method == "POST":
                return rest.create(call, name)
            case ["sobjects", name, "describe"] if method == "GET":
                return rest.describe(call, name)
            case ["sobjects", name, "updated"] if method == "GET":
                return rest.updated(call, name)
            case ["sobjects", name, "deleted"] if method == "GET":
                return rest.deleted(call, name)
            case ["sobjects", name, record_id] if method == "GET":
                return rest.retrieve(call, name, record_id)
            case ["sobjects", name, record_id] if method == "PATCH":
                return rest.update(call, name, record_id)
            case ["sobjects", name, record_id] if method == "DELETE":
                return rest.delete(call, name, record_id)
            case ["sobjects", name, record_id, "VersionData"] if (
                method == "GET" and name.lower() == files.VERSION.lower()
            ):
                return files.version_data(self.org, record_id)
            case ["sobjects", name, field_name, value] if method in (
                "GET",
                "PATCH",
                "POST",
                "DELETE",
            ):
                return rest.by_external_id(call, name, field_name, value)
            case ["query" | "queryAll" as endpoint] if method == "GET":
                return rest.query(call, include_deleted=endpoint == "queryAll")
            case ["query" | "queryAll", locator] if method == "GET":
                return rest.query_more(call, locator)
            case ["limits"] if method == "GET":
                return Reply(body=self.limits())
            case ["composite"] if method == "POST":
                return composite.composite(call, self.org, self.route)
            case ["composite", "sobjects", *rest_parts]:
                return composite.collections(call, self.org, rest_parts)
            case ["jobs", *job_parts]:
                return self.bulk.route(call, job_parts)
        raise not_found()

    def limits(self) -> dict[str, Any]:
        remaining = max(self.usage.limit - self.usage.used, 0)
        return {
            "DailyApiRequests": {"Max": self.usage.limit, "Remaining": remaining},
            "DailyBulkApiBatches": {
                "Max": 15000,
                "Remaining": max(15000 - self.bulk1.batches_today(), 0),
            },
            "DailyBulkV2QueryJobs": {
                "Max": 10000,
                "Remaining": 10000 - self.bulk.query_jobs_today(),
            },
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "DataStorageMB": {"Max": 1024, "Remaining": 1024},
            "FileStorageMB": {"Max": 1024, "Remaining": 1024},
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
        }

    # -- admin -----------------------------------------------------------------------------
    def _admin(self, request: Request, parts: list[str]) -> Reply:
        body = request.get_json(silent=True)
        match parts, request.method:
            case ["faults"], "GET":
                return Reply(body={"faults": self.faults.rules()})
            case ["faults"], "POST":
                rules = body if isinstance(body, list) else [body]
                try:
                    parsed = [FaultRule.model_validate(rule) for rule in rules]
                except ValueError as error:
                    raise bad_request("INVALID_FAULT", str(error)) from None
                for rule in parsed:
                    self.faults.add(rule)
                return Reply(201, {"faults": self.faults.rules()})
            case ["faults"], "DELETE":
                self.faults.clear()
                return Reply(204)
            case ["usage"], "GET":
                return Reply(body={"used": self.usage.used, "limit": self.usage.limit})
            case ["usage"], "POST":
                body = body if isinstance(body, dict) else {}
                self.usage.set(body.get("limit"), body.get("used"))
                return Reply(body={"used": self.usage.used, "limit": self.usage.limit})
            case ["sessions", "expire"], "POST":
                return Reply(body={"expired": self.sessions.expire_all()})
        raise not_found()
