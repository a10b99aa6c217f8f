"""``connector status``: its exit code tells monitoring whether anything waits for a person."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.cli import app
from connector.db import outbox
from connector.db.engine import transaction
from connector.settings import Settings
from connector.sync.cycle import Runtime
from tests import builders

runner = CliRunner()


@pytest.fixture
def env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **cli_env,
        "CONNECTOR_TAX__RATES": '{"GB": "20", "US-CA": "7.25"}',
        "CONNECTOR_LEDGER__PATH": str(tmp_path / "ledger.beancount"),
    }


def status(env: dict[str, str]) -> tuple[int, list[str], dict[str, object]]:
    """Exit code, the lines of stderr, and the JSON report."""
    result = runner.invoke(app, ["status", "--json"], env=env)
    return result.exit_code, result.stderr.splitlines(), json.loads(result.stdout)


def test_status_exits_0_when_all_is_well(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), currency="GBP", country="GB")
    assert runner.invoke(app, ["bill", "--as-of", "2026-01-01"], env=env).exit_code == 0
    assert runner.invoke(app, ["push"], env=env).exit_code == 0

    code, messages, report = status(env)

    assert (code, messages) == (0, [])
    assert report["outbox"] == {"ledger": {"waiting": 0, "parked": 0}}
    plain = runner.invoke(app, ["status"], env=env)
    assert (plain.exit_code, plain.stderr) == (0, "")


def test_status_exits_1_while_a_document_is_parked(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), currency="GBP", country="GB")
    assert runner.invoke(app, ["bill", "--as-of", "2026-01-01"], env=env).exit_code == 0
    with transaction(factory) as session:
        (row,) = outbox.undelivered(session, "ledger", limit=10)
        outbox.record(session, "ledger", [outbox.Outcome(row.id, outbox.PARKED, error="refused")])

    code, messages, report = status(env)

    assert (code, messages) == (1, ["attention: ledger: 1 documents parked"])
    assert report["refused"] == [{"where": "ledger", "what": "INV-000001", "error": "refused"}]
    plain = runner.invoke(app, ["status"], env=env)
    assert (plain.exit_code, plain.stderr) == (1, "attention: ledger: 1 documents parked\n")


def test_status_exits_1_when_the_last_run_of_a_stage_failed(
    factory: sessionmaker[Session], env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    """The ledger does not load: the push fails, and says so until a push succeeds."""
    ledger = settings.ledger.path
    assert ledger == tmp_path / "ledger.beancount"  # the one the command's settings name
    ledger.write_bytes(b'2026-01-01 note Assets:Bank "Caf\xe9"\n')
    runtime = Runtime(factory, settings)
    assert runtime.run("push").error is not None

    code, messages, _ = status(env)

    assert code == 1
    assert messages == [
        f"attention: the last push run failed: {ledger}:1: UnicodeDecodeError: 'utf-8' codec "
        "can't decode byte 0xe9 in position 3: unexpected end of data"
    ]

    ledger.unlink()
    assert runtime.run("push").error is None
    assert status(env)[:2] == (0, [])


def test_status_exits_1_while_a_subscription_cannot_be_billed(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    """California has a rate, so a US customer without a state is not billed until it has
    one."""
    builders.simple_subscription(factory, start=date(2026, 1, 1))
    assert runner.invoke(app, ["bill", "--as-of", "2026-01-01"], env=env).exit_code == 1

    assert status(env)[:2] == (1, ["attention: 1 subscriptions cannot be billed"])
