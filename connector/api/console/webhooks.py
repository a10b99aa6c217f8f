"""The webhook deliveries page: its place in the console.

Webhooks (``webhook_endpoints``, ``webhook_deliveries``) come with their own module; until
then this page says so. When they arrive, this route reads the deliveries through it and the
template ``webhooks.html`` lists them (endpoint, event, attempts, last status and latency)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from connector.api.console import views
from connector.api.console.guard import User

router = APIRouter(include_in_schema=False)


@router.get("/webhooks")
def webhooks(request: Request, user: User) -> Response:
    return views.page(request, "webhooks.html", user)
