"""Webhook endpoints: added with the event types they receive (the signing secret made here,
printed once, stored sealed with the secrets key), listed, enabled again after a receiver
disabled one (410 Gone), and removed with their deliveries.

An endpoint's URL is ``https://``, or ``http://`` to this machine (``localhost``,
``127.0.0.1``, ``[::1]``): events leave the machine only over TLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from connector.db import tables, webhook_events
from connector.db.types import utc_now
from connector.encryption import TokenCipher
from connector.errors import InvalidInputError, NotFoundError
from connector.sync.webhook_fanout import DISABLED, PENDING
from connector.webhooks.events import parse_types
from connector.webhooks.signing import new_secret

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_URL = 2000


@dataclass(frozen=True)
class EndpointInfo:
    """An endpoint as lists show it: never its secret."""

    id: int
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    deliveries: dict[str, int]  # per state

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "created_at": self.created_at,
            "deliveries": dict(self.deliveries),
        }


def check_url(url: str) -> str:
    """``url`` when it may receive webhooks (see the module's description)."""
    url = url.strip()
    if len(url) > MAX_URL:
        raise InvalidInputError(f"a URL of at most {MAX_URL} characters", where="webhook URL")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as error:
        raise InvalidInputError(f"{url!r} is not a URL: {error}", where="webhook URL") from None
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and host in LOCAL_HOSTS:
        return url
    raise InvalidInputError(
        f"{url!r}: give an https:// URL (http:// only to localhost or 127.0.0.1)",
        where="webhook URL",
    )


def add_endpoint(
    session: Session, cipher: TokenCipher, url: str, events: str
) -> tuple[EndpointInfo, str]:
    """A new endpoint receiving ``events`` (comma-separated types, or ``*``): its record and
    its secret (shown once)."""
    checked = check_url(url)
    try:
        types = parse_types(events)
    except ValueError as error:
        raise InvalidInputError(str(error), where="--events") from None
    secret = new_secret()
    row = tables.WebhookEndpoint(url=checked, events=types, secret=cipher.seal(secret))
    session.add(row)
    session.flush()
    webhook_events.forget(session)
    return _info(row, {}), secret


def _info(row: tables.WebhookEndpoint, counts: dict[str, int]) -> EndpointInfo:
    return EndpointInfo(
        row.id,
        row.url,
        list(row.events),
        row.enabled,
        row.disabled_reason,
        row.created_at,
        counts,
    )


def list_endpoints(session: Session) -> list[EndpointInfo]:
    """Every endpoint, oldest first, with its deliveries counted per state (two queries)."""
    delivery = tables.WebhookDelivery
    counts: dict[int, dict[str, int]] = {}
    for endpoint_id, state, count in session.execute(
        select(delivery.endpoint_id, delivery.state, func.count()).group_by(
            delivery.endpoint_id, delivery.state
        )
    ):
        counts.setdefault(endpoint_id, {})[state] = count
    rows = session.scalars(select(tables.WebhookEndpoint).order_by(tables.WebhookEndpoint.id))
    return [_info(row, counts.get(row.id, {})) for row in rows]


def remove_endpoint(session: Session, endpoint_id: int) -> EndpointInfo:
    """Remove the endpoint, its deliveries and their attempts."""
    row = session.get(tables.WebhookEndpoint, endpoint_id)
    if row is None:
        raise NotFoundError(f"no webhook endpoint {endpoint_id}")
    info = _info(row, {})
    delivery = tables.WebhookDelivery
    ids = select(delivery.id).where(delivery.endpoint_id == endpoint_id)
    session.execute(delete(tables.WebhookAttempt).where(tables.WebhookAttempt.delivery_id.in_(ids)))
    session.execute(delete(delivery).where(delivery.endpoint_id == endpoint_id))
    session.delete(row)
    session.flush()
    webhook_events.forget(session)
    return info


def enable_endpoint(session: Session, endpoint_id: int) -> tuple[EndpointInfo, int]:
    """Enable an endpoint a receiver disabled (410 Gone), and put the deliveries disabled with
    it back to pending, due now (each keeps its event id, so a receiver that saw one drops
    it): the endpoint and how many deliveries go out again. Events the webhooks stage handed
    out while it was disabled are not its. An enabled endpoint is left as it is."""
    row = session.get(tables.WebhookEndpoint, endpoint_id)
    if row is None:
        raise NotFoundError(f"no webhook endpoint {endpoint_id}")
    if row.enabled:
        return _info(row, {}), 0
    now = utc_now()
    row.enabled, row.disabled_reason, row.disabled_at = True, None, None
    delivery = tables.WebhookDelivery
    again = session.execute(
        update(delivery)
        .where(delivery.endpoint_id == endpoint_id, delivery.state == DISABLED)
        .values(state=PENDING, next_attempt_at=now, updated_at=now)
    )
    session.flush()
    webhook_events.forget(session)
    return _info(row, {}), int(getattr(again, "rowcount", 0) or 0)
