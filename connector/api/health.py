"""Health for the people and machines that run the connector: ``/healthz`` (the process
answers), ``/readyz`` (the database answers and its schema is current; this instance's role)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from connector.api.auth import instance_of
from connector.db.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


class Alive(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    role: Literal["active", "standby"]
    database: str
    migrations: str


@router.get("/healthz", response_model=Alive, summary="The process is alive")
def healthz() -> Alive:
    return Alive()


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The database answers and its schema is current",
    responses={503: {"model": Readiness, "description": "Not ready: why, in the body."}},
)
def readyz(request: Request) -> JSONResponse:
    instance = instance_of(request)
    database, migrations = "ok", "current"
    try:
        with instance.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current, head = current_revision(instance.engine), head_revision()
        if current != head:
            migrations = f"at {current or 'none'}, expected {head}: run `connector db upgrade`"
    except SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        database, migrations = f"unreachable: {type(cause).__name__}", "unknown"
    ready = database == "ok" and migrations == "current"
    body = Readiness(
        status="ready" if ready else "not ready",
        role=instance.role,
        database=database,
        migrations=migrations,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
