"""``connector ledger close``: the closing is recorded, shown by ``connector status``, and an
impossible, unfinished or backward day is refused with exit code 2 and a one-line message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from connector.cli import app

runner = CliRunner()


@pytest.fixture
def env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **cli_env,
        "CONNECTOR_LEDGER__PATH": str(tmp_path / "ledger.beancount"),
    }


def invoke(env: dict[str, str], *args: str) -> Result:
    return runner.invoke(app, list(args), env=env)


def test_close_then_status_shows_the_closed_through_day(env: dict[str, str]) -> None:
    closed = invoke(
        env, "ledger", "close", "--through", "2026-03-31", "--as-of", "2026-04-02", "--by", "alice"
    )

    assert (closed.exit_code, closed.stderr) == (0, "")
    assert " ".join(closed.stdout.split()) == (
        "books closed through 2026-03-31 by alice; entries dated on or before it are booked "
        "on 2026-04-01"
    )
    shown = invoke(env, "status")
    assert shown.exit_code == 0, shown.output
    assert "Books closed through 2026-03-31 by alice at " in " ".join(shown.stdout.split())
    assert "entries dated on or before it are booked on 2026-04-01" in " ".join(
        shown.stdout.split()
    )
    books = json.loads(invoke(env, "status", "--json").stdout)["books"]
    assert {key: books[key] for key in ("closed_through", "first_open_day", "closed_by")} == {
        "closed_through": "2026-03-31",
        "first_open_day": "2026-04-01",
        "closed_by": "alice",
    }
    assert (books["reopened"], books["in_flight"]) == (False, {})

    again = invoke(
        env, "ledger", "close", "--through", "2026-03-31", "--as-of", "2026-04-02", "--json"
    )
    assert again.exit_code == 0
    assert {key: json.loads(again.stdout)[key] for key in ("changed", "previous", "waiting")} == {
        "changed": False,
        "previous": "2026-03-31",
        "waiting": {"ledger": 0},
    }


def test_status_says_when_the_books_were_never_closed(env: dict[str, str]) -> None:
    shown = invoke(env, "status")

    assert "Books: open (never closed)" in shown.stdout
    assert json.loads(invoke(env, "status", "--json").stdout)["books"]["closed_through"] is None


@pytest.mark.parametrize(
    ("through", "message"),
    [
        ("2026-02-30", "error: --through: 2026-02-30 does not exist: February 2026 has 28 days"),
        ("31/03/2026", "error: --through: '31/03/2026' is not a date: write it YYYY-MM-DD"),
        (
            "2026-04-02",
            "error: 2026-04-02 has not ended yet (today is 2026-04-02): close a day before today",
        ),
        (
            "2026-02-28",
            "error: the books are closed through 2026-03-31; closing only moves forward: give "
            "--reopen to reopen the days after 2026-02-28",
        ),
    ],
)
def test_an_impossible_unfinished_or_backward_day_is_refused(
    env: dict[str, str], through: str, message: str
) -> None:
    assert invoke(env, "ledger", "close", "--through", "2026-03-31", "--as-of", "2026-04-02")
    refused = invoke(env, "ledger", "close", "--through", through, "--as-of", "2026-04-02")

    assert (refused.exit_code, refused.stderr.strip(), refused.stdout) == (2, message, "")
    books = json.loads(invoke(env, "status", "--json").stdout)["books"]
    assert books["closed_through"] == "2026-03-31"


def test_reopen_moves_the_closing_back_and_says_so(env: dict[str, str]) -> None:
    invoke(env, "ledger", "close", "--through", "2026-03-31", "--as-of", "2026-04-02")

    reopened = invoke(
        env,
        "ledger",
        "close",
        "--through",
        "2026-02-28",
        "--reopen",
        "--reason",
        "March restated",
        "--by",
        "bob",
        "--as-of",
        "2026-04-03",
    )

    assert reopened.exit_code == 0, reopened.output
    assert " ".join(reopened.stdout.split()) == (
        "books reopened: now closed through 2026-02-28 (was 2026-03-31) by bob; entries dated "
        "on or before it are booked on 2026-03-01"
    )
    books = json.loads(invoke(env, "status", "--json").stdout)["books"]
    assert (books["closed_through"], books["closed_by"], books["reopened"]) == (
        "2026-02-28",
        "bob",
        True,
    )
