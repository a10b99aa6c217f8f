"""The commands of collections: ``connector invoice dispute`` (open, resolve, the errors and
their exit codes) and ``connector report aging`` showing the step each invoice reached."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.cli import app
from connector.db import tables
from connector.settings import DunningSettings
from connector.sync import disputes
from connector.sync.dunning import run_dunning
from tests.sync.test_dunning import invoices

runner = CliRunner()


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env


def test_a_dispute_is_opened_and_resolved(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    invoices(factory, 1)
    opened = runner.invoke(
        app, ["invoice", "dispute", "INV-000001", "--reason", "seats not delivered"], env=env
    )
    assert opened.exit_code == 0, opened.output
    assert "INV-000001 disputed since " in opened.stdout
    assert opened.stdout.rstrip().endswith(
        "seats not delivered; no reminder goes out until it is resolved"
    )
    resolved = runner.invoke(app, ["invoice", "dispute", "INV-000001", "--resolve"], env=env)
    assert resolved.exit_code == 0, resolved.output
    assert "INV-000001: dispute resolved at " in resolved.stdout
    with factory() as session:
        row = session.scalars(select(tables.Dispute)).one()
    assert row.reason == "seats not delivered"
    assert row.opened_at <= row.resolved_at  # type: ignore[operator]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["INV-999999", "--reason", "x"], "error: unknown document 'INV-999999'"),
        (["INV-000002", "--reason", "x"], "error: invoice INV-000002 is paid: only an open"),
        (["CN-000001", "--reason", "x"], "error: CN-000001 is a credit note: only an invoice"),
        (["INV-000001", "--resolve"], "error: invoice INV-000001 has no open dispute"),
        (["INV-000001"], "error: give either --reason TEXT or --resolve"),
    ],
)
def test_dispute_errors_name_the_problem_and_exit_1(
    factory: sessionmaker[Session], env: dict[str, str], args: list[str], message: str
) -> None:
    ids = invoices(factory, 3)
    with factory.begin() as session:
        session.execute(
            update(tables.Document).where(tables.Document.id == ids[1]).values(status="paid")
        )
        session.execute(
            update(tables.Document)
            .where(tables.Document.id == ids[2])
            .values(kind="credit_note", number="CN-000001", status="issued")
        )
    result = runner.invoke(app, ["invoice", "dispute", *args], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr


def test_a_bad_dunning_setting_is_a_configuration_error_exit_2(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    env = {
        **env,
        "CONNECTOR_DUNNING__STEPS": '[{"name": "x", "offset_days": 3, "action": "email"}]',
    }
    result = runner.invoke(app, ["invoice", "dispute", "INV-000001", "--resolve"], env=env)
    assert result.exit_code == 2
    assert (
        "dunning.steps (CONNECTOR_DUNNING__STEPS): dunning step x: an email step needs a "
        "template" in result.stderr
    )


def test_the_aging_report_shows_each_invoices_step_and_dispute(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    invoices(factory, 3)  # due 2026-03-31
    run_dunning(factory, DunningSettings(), date(2026, 4, 3))
    with factory.begin() as session:  # on April 5th
        disputes.open_dispute(session, "INV-000002", "price", datetime(2026, 4, 5, tzinfo=UTC))
    args = ["report", "aging", "--as-of", "2026-04-12"]

    data = json.loads(runner.invoke(app, [*args, "--json"], env=env).stdout)
    assert [
        (i["number"], i["days_past_due"], i["owed"], i["dunning_step"], i["disputed"])
        for i in data["invoices"]
    ] == [
        ("INV-000001", 12, "100.00", "reminder_1", False),
        ("INV-000002", 12, "100.00", "reminder_1", True),
        ("INV-000003", 12, "100.00", "reminder_1", False),
    ]
    text = runner.invoke(app, args, env=env).stdout
    rows = [line.split() for line in text.splitlines() if line.startswith("INV-")]
    assert rows[1] == [
        "INV-000002",
        "Customer",
        "C1",
        "2026-03-31",
        "12",
        "100.00",
        "USD",
        "reminder_1",
        "(disputed)",
    ]
