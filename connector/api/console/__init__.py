"""The operations console at ``/``: server-rendered pages (Jinja2, inline SVG charts, no
JavaScript) behind a sign-in with an API key. Pages only read, through :mod:`connector.sync`
and :mod:`connector.db`, in read-only transactions."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from connector.api.console import documents, guard, mrr, pages, signin, webhooks

STATIC = Path(__file__).resolve().parent.parent / "static"


def install(app: FastAPI) -> None:
    """Serve the console from ``app``: its pages, its stylesheet, and its redirects."""
    guard.install(app)
    for module in (signin, pages, mrr, documents, webhooks):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
