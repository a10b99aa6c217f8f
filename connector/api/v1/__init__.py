"""The ``/v1`` JSON API: reads with a read key, writes with a write key and an
``Idempotency-Key``; pages by cursor; errors as problem details; money as decimal strings."""

from __future__ import annotations

from fastapi import APIRouter

from connector.api.v1 import (
    credits,
    customers,
    documents,
    jobs,
    metrics,
    payments,
    status,
    subscriptions,
    upcoming,
    usage,
    waiting,
)

router = APIRouter(prefix="/v1")
for module in (
    customers,
    subscriptions,
    documents,
    credits,
    payments,
    waiting,
    metrics,
    status,
    jobs,
    usage,
    upcoming,
):
    router.include_router(module.router)
