"""Writes made once: concurrent duplicates get one answer, a key in hand is refused, a key
left in hand by a process that died is taken over, and keys are forgotten after
``api.idempotency_days``."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.api.keys import authenticate
from connector.db import tables
from connector.db.engine import transaction
from connector.db.types import utc_now
from tests.api.conftest import Served
from tests.api.v1.conftest import Books

BODY = {"invoice": "INV-000005", "amount": "120.00", "received_on": "2026-03-15"}


def count(factory: sessionmaker[Session], model: type[tables.Base]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_duplicates_sent_at_once_make_one_payment_and_get_one_answer(
    served: Served, books: Books, factory: sessionmaker[Session]
) -> None:
    key = served.key("write")
    start = threading.Barrier(4)

    def send(_: int) -> tuple[int, dict[str, object], str | None]:
        start.wait()
        answer = served.write("/v1/payments", key, BODY, idempotency_key="same")
        return answer.status_code, answer.json(), answer.headers.get("idempotent-replayed")

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, range(4)))

    assert {status for status, _, _ in answers} == {201}
    assert len({str(body) for _, body, _ in answers}) == 1
    assert sorted(str(replayed) for _, _, replayed in answers) == ["None", "true", "true", "true"]
    assert count(factory, tables.Payment) == 2  # the fixture's, and this one
    assert count(factory, tables.IdempotentRequest) == 1


def claim(factory: sessionmaker[Session], api_key: str, key: str, **values: object) -> None:
    """A claimed key as an earlier request left it."""
    with transaction(factory) as session:
        info = authenticate(session, api_key)
        assert info is not None
        session.add(
            tables.IdempotentRequest(
                api_key_id=info.id, key=key, method="POST", path="/v1/payments", **values
            )
        )


def test_keys_older_than_idempotency_days_are_forgotten(
    served: Served, books: Books, factory: sessionmaker[Session]
) -> None:
    key = served.key("write")
    days = served.instance.settings.api.idempotency_days
    claim(
        factory,
        key,
        "old",
        request_hash="0" * 64,
        status=201,
        response="{}",
        created_at=utc_now() - timedelta(days=days, minutes=1),
    )
    claim(factory, key, "recent", request_hash="0" * 64, status=201, response='{"kept": 1}')

    answer = served.write("/v1/payments", key, BODY, idempotency_key="old")

    assert answer.status_code == 201  # a new request: the old answer is gone
    assert served.write("/v1/payments", key, BODY, idempotency_key="recent").status_code == 409
    with factory() as session:
        keys = session.scalars(select(tables.IdempotentRequest.key).order_by("key")).all()
    assert keys == ["old", "recent"]
