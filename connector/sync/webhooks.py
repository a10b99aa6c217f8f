"""The ``webhooks`` stage: deliver the events of the webhook outbox to their endpoints.

Durable state drives it. Each run first fans the new events out (one delivery per subscribed
endpoint: :mod:`connector.sync.webhook_fanout`), then, a batch at a time, reads the deliveries
due (one query), posts each, signed, and records every attempt and what became of each delivery
in one transaction (two statements, three when an endpoint is disabled):

- a 2xx answer: ``delivered``;
- 410 Gone: the endpoint is disabled, with the reason, and its pending deliveries with it;
- anything else (another status, no answer in time, no connection): tried again after a wait
  that doubles each time (``webhooks.retry_initial_seconds`` up to ``retry_max_seconds``, each
  wait between half and all of that: jitter), the last try when the event is
  ``webhooks.max_age_hours`` old; ``failed`` after it.

Order is kept per ordering key (a customer and everything about it, a CRM record): a delivery
is due only when no earlier event of its key is pending for its endpoint. A run takes only the
deliveries due when it started, so a receiver that keeps failing does not hold it.

A crash between a receiver's answer and the batch's commit leaves those deliveries pending:
the next run posts them again, with the same ``webhook-id`` (at least once; receivers dedupe by
the id, as the specification asks).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from connector.db import tables
from connector.db.bulk import bulk_insert, bulk_update
from connector.db.engine import reading, transaction
from connector.db.types import utc_now
from connector.encryption import TokenCipher
from connector.settings import Settings, WebhooksSettings
from connector.sync.stopping import no_stop
from connector.sync.webhook_fanout import DELIVERED, DISABLED, FAILED, PENDING, fan_out
from connector.webhooks.events import body
from connector.webhooks.sender import Answer, post, webhook_session
from connector.webhooks.signing import secret_key

_delivery = tables.WebhookDelivery
_endpoint = tables.WebhookEndpoint
_JITTER = random.Random()  # noqa: S311 - spreads retries in time; nothing secret


@dataclass
class WebhookResult:
    events: int = 0  # events fanned out
    delivered: int = 0
    retrying: int = 0  # attempts refused, to be tried again
    failed: int = 0  # deliveries given up this run
    disabled: list[str] = field(default_factory=list)  # endpoints that answered 410

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "delivered": self.delivered,
            "retrying": self.retrying,
            "failed": self.failed,
            "disabled": list(self.disabled),
        }


def wait(settings: WebhooksSettings, attempts: int, rng: random.Random) -> timedelta:
    """The wait after the ``attempts``-th failed try: doubling from ``retry_initial_seconds``
    up to ``retry_max_seconds``, then between half and all of it."""
    ceiling = min(
        settings.retry_initial_seconds * 2 ** min(attempts - 1, 40), settings.retry_max_seconds
    )
    return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))


def due(session: Session, started: datetime, limit: int) -> Sequence[Any]:
    """The next deliveries due by ``started`` of enabled endpoints, oldest event first, each
    the earliest pending one of its endpoint and ordering key."""
    earlier = aliased(_delivery)
    blocked = exists().where(
        earlier.endpoint_id == _delivery.endpoint_id,
        earlier.ordering_key == _delivery.ordering_key,
        earlier.state == PENDING,
        earlier.event_id < _delivery.event_id,
    )
    event = tables.WebhookEvent
    return session.execute(
        select(
            _delivery.id,
            _delivery.endpoint_id,
            _delivery.attempts,
            event.webhook_id,
            event.payload,
            event.created_at,
            _endpoint.url,
            _endpoint.secret,
        )
        .join(event, event.id == _delivery.event_id)
        .join(_endpoint, _endpoint.id == _delivery.endpoint_id)
        .where(
            _delivery.state == PENDING,
            _delivery.next_attempt_at <= started,
            _endpoint.enabled.is_(True),
            ~blocked,
        )
        .order_by(_delivery.event_id, _delivery.id)
        .limit(limit)
    ).all()


def deliver(
    factory: sessionmaker[Session],
    settings: Settings,
    checkpoint: Callable[[], None] = no_stop,
    rng: random.Random | None = None,
) -> WebhookResult:
    """Fan out the new events, then deliver what is due (see the module's description)."""
    config, result = settings.webhooks, WebhookResult()
    started = utc_now()
    while True:
        with transaction(factory) as session:
            fanned = fan_out(session, config.batch_size)
        result.events += fanned
        if fanned < config.batch_size:
            break
        checkpoint()
    cipher = TokenCipher.from_settings(settings.secrets, settings.database_url.get_secret_value())
    keys: dict[int, bytes] = {}
    with webhook_session(config.ca_file, config.timeout_seconds) as http:
        while True:
            with reading(factory) as session:
                rows = due(session, started, config.batch_size)
            if not rows:
                return result
            answers: list[tuple[Any, Answer]] = []
            gone: dict[int, Answer] = {}
            for row in rows:
                if row.endpoint_id in gone:
                    continue
                if row.endpoint_id not in keys:
                    keys[row.endpoint_id] = secret_key(cipher.open(row.secret))
                answer = post(
                    http,
                    row.url,
                    keys[row.endpoint_id],
                    row.webhook_id,
                    body(row.payload),
                    config.timeout_seconds,
                )
                answers.append((row, answer))
                if answer.gone:
                    gone[row.endpoint_id] = answer
            with transaction(factory) as session:
                _record(session, config, answers, gone, result, rng or _JITTER)
            checkpoint()


def _record(  # noqa: PLR0917 - a batch's answers and where they go
    session: Session,
    config: WebhooksSettings,
    answers: list[tuple[Any, Answer]],
    gone: dict[int, Answer],
    result: WebhookResult,
    rng: random.Random,
) -> None:
    """Every attempt, and what became of each delivery (one statement each); the endpoints
    that answered 410 disabled, with their pending deliveries."""
    now = utc_now()
    attempts, changes = [], []
    for row, answer in answers:
        attempts.append(
            {
                "delivery_id": row.id,
                "attempted_at": now,
                "status": answer.status,
                "latency_ms": answer.latency_ms,
                "error": answer.error,
            }
        )
        tried = row.attempts + 1
        change = {
            "id": row.id,
            "state": PENDING,
            "attempts": tried,
            "next_attempt_at": None,
            "last_status": answer.status,
            "last_error": answer.error,
            "delivered_at": None,
            "updated_at": now,
        }
        deadline = row.created_at + timedelta(hours=config.max_age_hours)
        if answer.delivered:
            change.update(state=DELIVERED, delivered_at=now)
            result.delivered += 1
        elif answer.gone:
            change["state"] = DISABLED
        elif now >= deadline:
            change["state"] = FAILED
            result.failed += 1
        else:
            change["next_attempt_at"] = min(now + wait(config, tried, rng), deadline)
            result.retrying += 1
        changes.append(change)
    bulk_insert(session, tables.table_of(tables.WebhookAttempt), attempts)
    bulk_update(session, tables.table_of(_delivery), changes, keys=["id"])
    if not gone:
        return
    for endpoint_id, answer in gone.items():
        session.execute(
            update(_endpoint)
            .where(_endpoint.id == endpoint_id)
            .values(
                enabled=False,
                disabled_at=now,
                disabled_reason=f"the receiver answered {answer.error} on {now:%Y-%m-%d %H:%M} UTC",
            )
        )
        result.disabled.append(str(endpoint_id))
    session.execute(
        update(_delivery)
        .where(_delivery.endpoint_id.in_(sorted(gone)), _delivery.state == PENDING)
        .values(state=DISABLED, updated_at=now)
    )
