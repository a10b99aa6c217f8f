"""Errors as RFC 9457 problem details (``application/problem+json``): a ``type`` URI, a
``title`` per kind of problem, the ``status``, a ``detail`` naming what and where, and, for a
refused body, ``errors`` with each field at fault. Our refusals map to their status here, once;
a route raises :class:`ApiProblem` or one of the connector's errors, never builds a response.
A database that refuses for a reason of its surroundings (locked past the lock timeout,
read-only, full, unreachable) answers 503 with what :mod:`connector.db.failures` says of it."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from connector.db.engine import display_url
from connector.db.failures import database_failure
from connector.errors import (
    BillingError,
    ConfigError,
    ConnectorError,
    InstanceActiveError,
    InvalidInputError,
    NotFoundError,
)

log = logging.getLogger("connector.api")

PROBLEM_TYPE = "https://connector.invalid/problems/"  # + a slug per kind
MEDIA_TYPE = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class ApiProblem(Exception):  # noqa: N818 - the RFC's word
    """A problem to answer with: ``status``, a ``slug`` naming its kind, and the detail."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or TITLES.get(status, "error").lower().replace(" ", "-")
        self.headers = headers or {}
        self.extra = extra


def problem_response(problem: ApiProblem, instance: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + problem.slug,
        "title": TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
    }
    if instance:
        body["instance"] = instance
    body.update(problem.extra)
    return JSONResponse(
        body, status_code=problem.status, media_type=MEDIA_TYPE, headers=problem.headers
    )


def problem_of(error: ConnectorError) -> ApiProblem:
    """The problem one of our errors is."""
    if isinstance(error, NotFoundError):
        return ApiProblem(404, str(error))
    if isinstance(error, InvalidInputError):
        return ApiProblem(422, str(error), slug="invalid-input")
    if isinstance(error, BillingError):
        return ApiProblem(409, str(error), slug="billing-rule")
    if isinstance(error, InstanceActiveError):
        return ApiProblem(503, str(error), slug="standby", headers={"Retry-After": "30"})
    if isinstance(error, ConfigError):
        return ApiProblem(503, f"configuration error: {error}", slug="configuration")
    return ApiProblem(409, str(error), slug="refused")


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as a problem."""

    @app.exception_handler(ApiProblem)
    async def _problem(request: Request, problem: ApiProblem) -> JSONResponse:
        return problem_response(problem, request.url.path)

    @app.exception_handler(ConnectorError)
    async def _ours(request: Request, error: ConnectorError) -> JSONResponse:
        return problem_response(problem_of(error), request.url.path)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> JSONResponse:
        detail = error.detail if isinstance(error.detail, str) else TITLES.get(error.status_code)
        problem = ApiProblem(error.status_code, str(detail), headers=dict(error.headers or {}))
        return problem_response(problem, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        fields = [
            {"location": ".".join(str(part) for part in item["loc"]), "message": item["msg"]}
            for item in error.errors()
        ]
        where = "; ".join(f"{field['location']}: {field['message']}" for field in fields)
        problem = ApiProblem(422, f"the request is not valid: {where}", errors=fields)
        problem.slug = "invalid-request"
        return problem_response(problem, request.url.path)

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, error: SQLAlchemyError) -> JSONResponse:
        settings = request.app.state.instance.settings
        failure = database_failure(
            error,
            display_url(settings.database_url.get_secret_value()),
            lock_timeout=settings.database_lock_timeout_seconds,
        )
        if failure is None:
            return await _bug(request, error)
        log.warning("answering %s %s: %s", request.method, request.url.path, failure)
        problem = ApiProblem(503, str(failure), slug="database", headers={"Retry-After": "5"})
        return problem_response(problem, request.url.path)

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        problem = ApiProblem(500, "an unexpected error; it is logged on the server")
        return problem_response(problem, request.url.path)
