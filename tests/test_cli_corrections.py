"""``connector invoice credit``, ``connector payment refund`` and payments recorded twice."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import Result
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.cli import app
from tests import builders

runner = CliRunner()


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return {**cli_env, "CONNECTOR_TAX__RATES": '{"GB": "20"}'}


@pytest.fixture
def paid(factory: sessionmaker[Session], env: dict[str, str]) -> None:
    """INV-000001 of 120.00 GBP (100.00 + 20% tax), paid."""
    builders.simple_subscription(factory, start=date(2026, 1, 1), currency="GBP", country="GB")
    assert invoke(env, "bill", "--as-of", "2026-01-01").exit_code == 0
    assert (
        invoke(env, "payment", "record", "INV-000001", "120.00", "--date", "2026-01-10").exit_code
        == 0
    )


def invoke(env: dict[str, str], *args: str) -> Result:
    return runner.invoke(app, list(args), env=env)


def test_invoice_credit_issues_one_credit_note_however_often_it_is_run(
    env: dict[str, str], paid: None
) -> None:
    command = ("invoice", "credit", "INV-000001", "--reason", "outage", "--amount", "30.00")

    first = invoke(env, *command, "--as-of", "2026-01-20", "--json")
    again = invoke(env, *command, "--as-of", "2026-01-21")

    assert (first.exit_code, again.exit_code) == (0, 0), first.output + again.output
    assert json.loads(first.stdout) == {
        "credit_note": "CN-000001",
        "invoice": "INV-000001",
        "issued": True,
        "customer": "Customer C1",
        "currency": "GBP",
        "subtotal": "30.00",
        "tax": "6.00",
        "total": "36.00",
        "credit_kept": "36.00",
        "reference": json.loads(first.stdout)["reference"],
        "reason": "outage",
    }
    assert json.loads(first.stdout)["reference"].startswith("INV-000001:")
    assert again.stdout == (
        "CN-000001 was already issued for this correction, crediting INV-000001: 30.00 + tax "
        "6.00 = 36.00 GBP\n36.00 GBP kept as credit for Customer C1\n"
    )
    text = " ".join(invoke(env, "invoice", "show", "CN-000001").stdout.split())
    assert "Credits invoice INV-000001 Reason outage Status issued" in text
    assert "# ┃ description" in text
    shown = json.loads(invoke(env, "invoice", "show", "CN-000001", "--json").stdout)
    assert (shown["credited_invoice"], shown["reason"], shown["total"]) == (
        "INV-000001",
        "outage",
        "36.00",
    )

    lines = invoke(
        env,
        "invoice",
        "credit",
        "INV-000001",
        "--reason",
        "seats",
        "--lines",
        "1=10.00",
        "--as-of",
        "2026-01-21",
    )
    assert (lines.exit_code, lines.stdout) == (
        0,
        "CN-000002 credits INV-000001: 10.00 + tax 2.00 = 12.00 GBP\n"
        "12.00 GBP kept as credit for Customer C1\n",
    )
    wrong = invoke(env, "invoice", "credit", "INV-000001", "--reason", "x", "--lines", "one")
    assert (wrong.exit_code, wrong.stderr) == (
        1,
        "error: --lines 'one': give line numbers, each optionally =amount (1,3=20.00)\n",
    )


def test_payment_refund_pays_the_credit_back_once(env: dict[str, str], paid: None) -> None:
    credited = invoke(
        env, "invoice", "credit", "INV-000001", "--reason", "outage", "--as-of", "2026-01-20"
    )
    assert credited.exit_code == 0, credited.output

    refunded = invoke(env, "payment", "refund", "CN-000001", "100.00", "--date", "2026-01-21")
    twice = invoke(env, "payment", "refund", "CN-000001", "100.00", "--date", "2026-01-21")
    again = invoke(
        env, "payment", "refund", "CN-000001", "20.00", "--date", "2026-01-21", "--again", "--json"
    )

    assert (refunded.exit_code, refunded.stdout) == (
        0,
        "refunded 100.00 GBP to Customer C1 on 2026-01-21; credit left 20.00 GBP\n",
    )
    assert (twice.exit_code, twice.stderr) == (
        1,
        "error: a refund of 100.00 GBP on 2026-01-21 for Customer C1 is already recorded: not "
        "recorded twice; if it is another one, record it with --again (or give each its "
        "--reference)\n",
    )
    assert again.exit_code == 0, again.output
    assert {
        key: value for key, value in json.loads(again.stdout).items() if key != "refund_id"
    } == {
        "customer": "Customer C1",
        "currency": "GBP",
        "amount": "20.00",
        "refunded_on": "2026-01-21",
        "reference": None,
        "credit_left": "0.00",
    }


def test_payment_record_refuses_the_same_payment_twice_unless_again(
    env: dict[str, str], factory: sessionmaker[Session]
) -> None:
    builders.simple_subscription(factory, start=date(2026, 1, 1), currency="GBP", country="GB")
    assert invoke(env, "bill", "--as-of", "2026-01-01").exit_code == 0
    command = ("payment", "record", "INV-000001", "50.00", "--date", "2026-01-10")

    first = invoke(env, *command)
    twice = invoke(env, *command)
    again = invoke(env, *command, "--again")

    assert (first.exit_code, first.stdout) == (
        0,
        "INV-000001: paid 50.00 GBP, due 70.00 GBP, open\n",
    )
    assert (twice.exit_code, twice.stdout, twice.stderr) == (
        1,
        "",
        "error: a payment of 50.00 GBP on 2026-01-10 for INV-000001 is already recorded: not "
        "recorded twice; if it is another one, record it with --again (or give each its "
        "--reference)\n",
    )
    assert (again.exit_code, again.stdout) == (
        0,
        "INV-000001: paid 100.00 GBP, due 20.00 GBP, open\n",
    )
