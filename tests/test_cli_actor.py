"""One actor per database: a one-off cycle or stage takes the actor lock of ``connector run``.

Two ``connector sync --once`` started together on one database both pulled and read payments
at once, and one of them died on a unique constraint. Now the one that finds the lock held
does nothing and exits 75, saying that another instance is active; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.cli import EXIT_INSTANCE_ACTIVE, app
from connector.db import tables
from connector.db.actor_lock import ActorLock, actor_lock
from connector.db.engine import make_engine
from tests import builders

runner = CliRunner()
ONE_OFF = [
    ["sync", "--once", "--as-of", "2026-01-01"],
    ["pull", "--as-of", "2026-01-01"],
    ["bill", "--as-of", "2026-01-01"],
    ["revenue", "close", "--as-of", "2026-01-01"],
    ["push"],
]


@pytest.fixture
def env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **cli_env,
        "CONNECTOR_TAX__RATES": '{"GB": "20"}',
        "CONNECTOR_LEDGER__PATH": str(tmp_path / "ledger.beancount"),
    }


@pytest.fixture
def other_instance(database_url: str) -> Iterator[ActorLock]:
    """The actor lock, held as another instance (``connector run``) holds it."""
    engine: Engine = make_engine(database_url)
    lock = actor_lock(engine)
    assert lock.try_acquire()
    yield lock
    lock.release()
    engine.dispose()


def counts(factory: sessionmaker[Session]) -> tuple[int, int, int]:
    with factory() as session:
        return (
            session.scalar(select(func.count()).select_from(tables.JobRun)) or 0,
            session.scalar(select(func.count()).select_from(tables.Document)) or 0,
            session.scalar(select(func.count()).select_from(tables.RevenueJournal)) or 0,
        )


@pytest.mark.parametrize("command", ONE_OFF, ids=lambda command: " ".join(command[:2]))
def test_a_one_off_cycle_or_stage_does_nothing_while_another_instance_acts(
    command: list[str],
    factory: sessionmaker[Session],
    env: dict[str, str],
    other_instance: ActorLock,
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), currency="GBP", country="GB")

    result = runner.invoke(app, command, env=env)

    assert result.exit_code == EXIT_INSTANCE_ACTIVE == 75
    assert result.stdout == ""
    assert result.stderr == (
        "error: another instance of the connector is active on this database (it holds the "
        f"{other_instance.description}): nothing was done; run this again once it has "
        "finished\n"
    )
    assert counts(factory) == (0, 0, 0)  # nothing billed, nothing run or recorded


def test_the_lock_is_free_again_once_the_command_ends(
    factory: sessionmaker[Session], env: dict[str, str], database_url: str
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), currency="GBP", country="GB")

    billed = runner.invoke(app, ["bill", "--as-of", "2026-01-01", "--json"], env=env)
    closed = runner.invoke(app, ["revenue", "close", "--as-of", "2026-01-31"], env=env)

    assert (billed.exit_code, closed.exit_code) == (0, 0), billed.output + closed.output
    assert json.loads(billed.stdout)["invoices"] == 1
    assert counts(factory) == (0, 1, 1)
    engine = make_engine(database_url)
    lock = actor_lock(engine)
    assert lock.try_acquire()  # neither command kept it
    lock.release()
    engine.dispose()
