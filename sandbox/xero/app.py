"""The fake Xero as a WSGI application: identity endpoints, connections and the API.

Every API call goes through the same gate, in Xero's order: a live access token (401), the
``xero-tenant-id`` of the organisation (403), ``Accept: application/json`` (406), the rate
limits (429, not counted), injected faults, the idempotency key of a write, then the endpoint.
Every API answer carries the remaining rate limits. Each request is recorded in
:attr:`XeroApp.requests` for tests to count.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from sandbox.xero.auth import OAuthError, Tokens
from sandbox.xero.endpoints import ApiCall, XeroApi
from sandbox.xero.errors import (
    ApiError,
    ConnectionDroppedError,
    not_found,
    problem_body,
)
from sandbox.xero.faults import XeroFaultRule, XeroFaults
from sandbox.xero.idempotency import IdempotencyKeys, fingerprint
from sandbox.xero.limits import RateLimiter
from sandbox.xero.replies import Reply

log = logging.getLogger(__name__)

API_PREFIX = "/api.xro/2.0"
FAULTS_PATH = "/sandbox/faults"
TOKEN_PATH = "/connect/token"  # noqa: S105 - a URL path, not a secret
AUTHORIZE_PATH = "/identity/connect/authorize"
CONNECTIONS_PATH = "/connections"
WRITES = ("PUT", "POST")


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake answered (``status`` None: the connection was dropped first)."""

    method: str
    path: str
    query: dict[str, str]
    idempotency_key: str | None
    status: int | None
    dropped: bool = False
    if_modified_since: str | None = None


def too_many(problem: str, retry_after: int) -> ApiError:
    return ApiError(
        429,
        problem_body(429, "Too Many Requests", f"Rate limit exceeded: {problem}"),
        {"Retry-After": str(retry_after), "X-Rate-Limit-Problem": problem},
    )


def _fault_reply(rule: XeroFaultRule) -> Reply | None:
    if rule.kind == "500":
        return Reply(
            500, problem_body(500, "An error occurred", "An unexpected error occurred (fault)")
        )
    if rule.kind == "503":
        return Reply(503, problem_body(503, "Service Unavailable", "The service is unavailable"))
    return None


class XeroApp:
    def __init__(
        self,
        *,
        tenant_id: str,
        connections: list[dict[str, Any]],
        tokens: Tokens,
        limits: RateLimiter,
        faults: XeroFaults,
        keys: IdempotencyKeys,
        api: XeroApi,
    ) -> None:
        self.tenant_id = tenant_id
        self.connections = connections
        self.tokens = tokens
        self.limits = limits
        self.faults = faults
        self.keys = keys
        self.api = api
        self.requests: list[RecordedRequest] = []

    # -- WSGI ------------------------------------------------------------------------------
    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        status: int | None
        try:
            reply = self.handle(request)
            status, dropped = reply.status, False
        except ConnectionDroppedError as drop:
            reply, status, dropped = Reply(500, None), drop.status, True
        self.requests.append(  # recorded before a drop, which the client sees at once
            RecordedRequest(
                request.method,
                request.path,
                dict(request.args),
                request.headers.get("Idempotency-Key"),
                status,
                dropped,
                request.headers.get("If-Modified-Since"),
            )
        )
        connection = environ.get("werkzeug.socket")
        if dropped and connection is not None:
            connection.shutdown(socket.SHUT_RDWR)
        response = Response(reply.payload(), status=reply.status, content_type=reply.content_type)
        for name, value in reply.headers.items():
            response.headers[name] = value
        return response(environ, start_response)

    def handle(self, request: Request) -> Reply:
        path = request.path.rstrip("/") or "/"
        try:
            if path == TOKEN_PATH:
                return self._token(request)
            if path == AUTHORIZE_PATH and request.method == "GET":
                return self._authorize(request)
            if path == CONNECTIONS_PATH and request.method == "GET":
                self.tokens.check(request.headers.get("Authorization"))
                return Reply(200, self.connections)
            if path == FAULTS_PATH:
                self.tokens.check(request.headers.get("Authorization"))
                return self._faults(request)
            if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
                parts = [part for part in path[len(API_PREFIX) :].split("/") if part]
                return self._api(request, parts)
            raise not_found()
        except ApiError as error:
            return Reply(error.status, error.body, error.headers)
        except ConnectionDroppedError:
            raise
        except Exception:  # a bug in the fake answers like Xero's own failures, in JSON
            log.exception("xero sandbox failed on %s %s", request.method, request.path)
            return Reply(500, problem_body(500, "An error occurred", "Internal error"))

    def _faults(self, request: Request) -> Reply:
        """The fault rules at run time: POST adds (a rule or a list), GET lists, DELETE
        clears. Not an API call: not counted, never faulted itself."""
        if request.method == "GET":
            return Reply(200, {"faults": self.faults.rules()})
        if request.method == "DELETE":
            self.faults.clear()
            return Reply(204, None)
        if request.method != "POST":
            raise ApiError(405, problem_body(405, "Method Not Allowed", "use GET, POST or DELETE"))
        body = request.get_json(silent=True)
        rules = body if isinstance(body, list) else [body]
        try:
            parsed = [XeroFaultRule.model_validate(rule) for rule in rules]
        except ValueError as error:
            raise ApiError(400, problem_body(400, "Invalid fault rule", str(error))) from None
        for rule in parsed:
            self.faults.add(rule)
        return Reply(201, {"faults": self.faults.rules()})

    # -- identity --------------------------------------------------------------------------
    def _token(self, request: Request) -> Reply:
        if request.method != "POST":
            return Reply(405, {"error": "invalid_request", "error_description": "use POST"})
        try:
            answer = self.tokens.token(request.form.to_dict(), request.headers.get("Authorization"))
        except OAuthError as error:
            return Reply(error.status, error.body())
        return Reply(200, answer, {"Cache-Control": "no-store"})

    def _authorize(self, request: Request) -> Reply:
        try:
            location = self.tokens.authorize(request.args.to_dict())
        except OAuthError as error:
            return Reply(error.status, error.body())
        return Reply(302, None, {"Location": location})

    # -- the API ---------------------------------------------------------------------------
    def _api(self, request: Request, parts: list[str]) -> Reply:
        try:
            self.tokens.check(request.headers.get("Authorization"))
            if request.headers.get("xero-tenant-id") != self.tenant_id:
                raise ApiError(403, problem_body(403, "Forbidden", "AuthenticationUnsuccessful"))
            if "application/json" not in request.headers.get("Accept", "").lower():
                raise ApiError(
                    406,
                    problem_body(
                        406,
                        "Not Acceptable",
                        "This sandbox answers JSON only: send Accept: application/json",
                    ),
                )
            refusal = self.limits.admit(self.tenant_id)
            if refusal is not None:
                raise too_many(refusal.problem, refusal.retry_after)
            try:
                call = ApiCall(
                    request.method,
                    parts,
                    request.args.to_dict(),
                    request.get_data(),
                    request.headers,
                )
                reply = self._admitted(call, list(request.args.items(multi=True)))
            finally:
                self.limits.release(self.tenant_id)
        except ApiError as error:
            reply = Reply(error.status, error.body, error.headers)
        reply.headers.update(self.limits.headers(self.tenant_id))
        return reply

    def _admitted(self, call: ApiCall, query: list[tuple[str, str]]) -> Reply:
        rule = self.faults.pick(call.method, call.path)
        if rule is not None:
            log.info("xero sandbox fault %s on %s /%s", rule.kind, call.method, call.path)
            if rule.kind == "429":
                self.limits.refund(self.tenant_id)
                raise too_many("minute", rule.retry_after)
            injected = _fault_reply(rule)
            if injected is not None:
                return injected
            if rule.kind == "drop" and rule.when == "before":
                raise ConnectionDroppedError
        delay = rule.delay if rule is not None and rule.kind == "slow" else 0.0
        key = call.headers.get("Idempotency-Key") if call.method in WRITES else None
        reply = self._idempotent(call, key, query, delay) if key else self._route(call, delay)
        if rule is not None and rule.kind == "drop":
            raise ConnectionDroppedError(reply.status)
        return reply

    def _idempotent(
        self, call: ApiCall, key: str, query: list[tuple[str, str]], delay: float
    ) -> Reply:
        request_fingerprint = fingerprint(
            call.method, "/".join(part.lower() for part in call.parts), query, call.body
        )
        replay = self.keys.begin(self.tenant_id, key, request_fingerprint)
        if replay is not None:
            return replay
        reply: Reply | None = None
        try:
            reply = self._route(call, delay)
        finally:
            self.keys.finish(self.tenant_id, key, reply)
        return reply

    def _route(self, call: ApiCall, delay: float = 0.0) -> Reply:
        """The endpoint's answer (a slow fault first waits ``delay``: the call is in flight,
        holding its concurrency slot and its idempotency key)."""
        if delay:
            time.sleep(delay)
        try:
            return self.api.route(call)
        except ApiError as error:
            return Reply(error.status, error.body, error.headers)
