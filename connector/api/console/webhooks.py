"""The webhook deliveries page: each endpoint with its deliveries per state (and whether it
was disabled, and why), then the latest deliveries with their event, attempts, last answer
and its latency, newest first; ``?endpoint=ID`` shows one endpoint's."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from connector.api.auth import instance_of
from connector.api.console import views
from connector.api.console.guard import User
from connector.db.engine import reading
from connector.sync.webhook_status import last_latencies, recent_deliveries, webhook_state

router = APIRouter(include_in_schema=False)


@router.get("/webhooks")
def webhooks(request: Request, user: User, endpoint: int | None = None) -> Response:
    instance = instance_of(request)
    with reading(instance.factory) as session:
        state = webhook_state(session)
        deliveries = recent_deliveries(session, endpoint) if state is not None else []
        latencies = last_latencies(session, [delivery.id for delivery in deliveries])
    return views.page(
        request,
        "webhooks.html",
        user,
        endpoints=state.endpoints if state is not None else [],
        deliveries=deliveries,
        latencies=latencies,
        endpoint=endpoint,
    )
