"""The OpenAPI document as the API answers: every error documented as problem details in
``application/problem+json`` (FastAPI writes them as ``application/json``, and a refused
request as its own ``HTTPValidationError``, which this API never sends)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from connector.api.problems import MEDIA_TYPE

PROBLEM_REF = "#/components/schemas/Problem"
FASTAPI_ERRORS = ("HTTPValidationError", "ValidationError")


def install(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document with its errors as problem details."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = problems_as_such(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def problems_as_such(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each error response's body a Problem in ``application/problem+json``."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                if code == "default" or (code.isdigit() and int(code) >= 400):
                    _as_problem(response)
    components = schema.get("components", {}).get("schemas", {})
    for name in FASTAPI_ERRORS:
        components.pop(name, None)
    return schema


def _as_problem(response: dict[str, Any]) -> None:
    content = response.get("content") or {}
    body = content.get("application/json", {}).get("schema", {})
    reference = body.get("$ref", "")
    ours = not content or not body or reference == PROBLEM_REF
    if ours or reference.endswith("/HTTPValidationError"):
        response["content"] = {MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}
