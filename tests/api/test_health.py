"""Health, readiness and the instance's role, through the real server."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import text

from connector.db.migrate import alembic_config, head_revision
from tests.api.conftest import Served


def test_healthz_answers_without_a_key(served: Served) -> None:
    answer = served.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_readyz_says_ready_and_standby_without_a_scheduler(served: Served) -> None:
    answer = served.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ready",
        "role": "standby",
        "database": "ok",
        "migrations": "current",
    }


def test_readyz_says_active_while_the_instance_runs_stages(served: Served) -> None:
    served.instance.activate(lambda stage, as_of: None)
    assert served.get("/readyz").json()["role"] == "active"
    served.instance.stand_by()
    assert served.get("/readyz").json()["role"] == "standby"


def test_readyz_is_not_ready_when_migrations_are_behind(served: Served) -> None:
    # The database is shared by a worker's PostgreSQL tests: its revision is put back after.
    head = head_revision()
    behind = ScriptDirectory.from_config(alembic_config()).get_revision(head).down_revision
    version = text("UPDATE alembic_version SET version_num = :revision")
    with served.instance.engine.begin() as connection:
        connection.execute(version, {"revision": behind})
    try:
        answer = served.get("/readyz")
    finally:
        with served.instance.engine.begin() as connection:
            connection.execute(version, {"revision": head})
    assert answer.status_code == 503
    assert answer.json()["status"] == "not ready"
    assert answer.json()["migrations"] == (
        f"at {behind}, expected {head}: run `connector db upgrade`"
    )
