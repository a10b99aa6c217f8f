"""``POST /v1/jobs/{stage}/run``: a real stage on the active instance (under the scheduler's
run lock), 503 on a standby, and a run in hand refused until it is done."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.api.keys import authenticate
from connector.api.v1.idempotency import request_hash
from connector.db import tables
from connector.db.engine import transaction
from connector.db.types import utc_now
from connector.settings import Settings
from connector.sync.cycle import JobRun, Runtime
from tests.api.conftest import Served
from tests.api.v1.conftest import Books, problem

APRIL = {"as_of": "2026-04-01"}


@pytest.fixture
def runtime(served: Served, factory: sessionmaker[Session], settings: Settings) -> Runtime:
    """This instance active, running stages as `connector run` does: under its run lock."""
    active = Runtime(factory, settings)

    def run_stage(stage: str, as_of: date | None) -> JobRun:
        with active.run_lock:
            return active.run(stage, as_of)

    served.instance.activate(run_stage)
    return active


def invoices(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return list(
            session.scalars(
                select(tables.Document.number)
                .where(tables.Document.kind == "invoice")
                .order_by(tables.Document.id)
            )
        )


def test_a_standby_refuses_to_run_a_stage(served: Served, books: Books) -> None:
    answer = served.write("/v1/jobs/bill/run", served.key("write"), APRIL, "bill-april")

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "30"
    assert answer.json() == problem(
        503,
        "standby",
        "Service unavailable",
        "this instance is standing by: stages run on the active instance (`connector run` "
        "holding the database's actor lock); ask it, or try again once this one is active",
        "/v1/jobs/bill/run",
    )


def test_the_active_instance_runs_the_stage_once_per_key(
    served: Served, books: Books, runtime: Runtime, factory: sessionmaker[Session]
) -> None:
    key = served.key("write")
    answer = served.write("/v1/jobs/bill/run", key, APRIL, "bill-april")

    assert answer.status_code == 200
    assert "idempotent-replayed" not in answer.headers
    run = answer.json()
    assert isinstance(run.pop("seconds"), float)
    assert run == {
        "job": "bill",
        "as_of": "2026-04-01",
        "ok": True,
        "api_calls": 0,
        "counts": {
            "as_of": "2026-04-01",
            "subscriptions": 2,
            "invoices": 2,
            "credit_notes": 0,
            "failed": {},
            "invoiced": {"GBP": "120.00", "JPY": "11000"},
            "credited": {},
        },
        "error": None,
    }
    assert invoices(factory)[-2:] == ["INV-000007", "INV-000008"]
    again = served.write("/v1/jobs/bill/run", key, APRIL, "bill-april")
    assert (again.json(), again.headers["idempotent-replayed"]) == (answer.json(), "true")
    assert len(invoices(factory)) == 8


def test_a_run_in_hand_is_refused_until_it_is_done(
    served: Served, books: Books, runtime: Runtime, factory: sessionmaker[Session]
) -> None:
    key = served.key("write")
    with ThreadPoolExecutor(1) as pool:
        with runtime.run_lock:  # a scheduled job runs: the stage asked for waits for it
            first = pool.submit(served.write, "/v1/jobs/revenue/run", key, APRIL, "rev")
            claimed = threading.Event()
            while not claimed.wait(0.02):
                with factory() as session:
                    if session.scalar(select(tables.IdempotentRequest.id)) is not None:
                        claimed.set()
            second = served.write("/v1/jobs/revenue/run", key, APRIL, "rev")
            assert second.status_code == 409
            assert second.headers["retry-after"] == "5"
            assert second.json()["detail"] == (
                "the request with the Idempotency-Key 'rev' is still in hand: send it again "
                "once it is done to get its answer"
            )
        done = first.result()
    assert (done.status_code, done.json()["job"], done.json()["ok"]) == (200, "revenue", True)
    third = served.write("/v1/jobs/revenue/run", key, APRIL, "rev")
    assert (third.status_code, third.json()) == (200, done.json())


def test_a_run_left_in_hand_by_a_process_that_died_is_run_again(
    served: Served, books: Books, runtime: Runtime, factory: sessionmaker[Session]
) -> None:
    key = served.key("write")
    path = "/v1/jobs/bill/run"
    with transaction(factory) as session:
        info = authenticate(session, key)
        assert info is not None
        session.add(
            tables.IdempotentRequest(
                api_key_id=info.id,
                key="died",
                method="POST",
                path=path,
                request_hash=request_hash("POST", path, json.dumps(APRIL).encode()),
                created_at=utc_now() - timedelta(hours=2),
            )
        )

    answer = served.write(path, key, APRIL, "died")

    assert (answer.status_code, answer.json()["ok"]) == (200, True)
    assert len(invoices(factory)) == 8


def test_an_unknown_stage_is_refused(served: Served, runtime: Runtime) -> None:
    answer = served.write("/v1/jobs/reticulate/run", served.key("write"), APRIL)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["location"] == "path.stage"


def test_a_run_without_a_body_is_as_of_today(
    served: Served, books: Books, runtime: Runtime
) -> None:
    answer = served.write("/v1/jobs/revenue/run", served.key("write"))
    assert (answer.status_code, answer.json()["as_of"]) == (200, utc_now().date().isoformat())
