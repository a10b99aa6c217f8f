"""The FastAPI application: health, metrics, the ``/v1`` API, and the console."""

from __future__ import annotations

from fastapi import FastAPI

from connector import __version__
from connector.api import health, metrics, problems
from connector.api.instance import Instance

DESCRIPTION = """The billing connector's own API: customers, contracts, subscriptions,
invoices, credit notes, payments, records waiting for a person, MRR, and the stages of the
cycle. Authenticate with an API key (`connector apikey create`) as `Authorization: Bearer …`.
Writes take an `Idempotency-Key` header. Errors are RFC 9457 problem details; money is a
decimal string in the currency's minor-unit precision."""


def create_app(instance: Instance) -> FastAPI:
    app = FastAPI(
        title="Billing connector",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.instance = instance
    app.state.metrics_registry = metrics.database_registry(instance)
    problems.install(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    return app
