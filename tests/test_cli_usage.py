"""connector usage import and connector usage show."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.cli import app
from connector.db import tables
from connector.db.engine import transaction
from connector.sync import contracts
from connector.sync.usage_report import month_of
from tests import builders

runner = CliRunner()


@pytest.fixture
def customer_id(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        return contracts.upsert_customer(
            session,
            name="Acme",
            country="US",
            currency="USD",
            system="salesforce",
            external_id="001000000000001AAA",
        ).id


def hours_ago(hours: int) -> str:
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_import_exits_0_when_every_event_is_imported_and_1_when_some_are_refused(
    cli_env: dict[str, str], customer_id: int, tmp_path: Path
) -> None:
    good = tmp_path / "good.csv"
    good.write_text(
        "transaction_id,customer,metric,timestamp\n"
        f"a,001000000000001AAA,api_calls,{hours_ago(1)}\n"
        f"b,{customer_id},api_calls,{hours_ago(1)}\n"
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        f'{{"transaction_id": "a", "customer": "{customer_id}", "metric": "api_calls", '
        f'"timestamp": "{hours_ago(1)}"}}\n'
        '{"transaction_id": "c", "customer": "nobody", "metric": "api_calls", '
        f'"timestamp": "{hours_ago(1)}"}}\n'
    )

    first = runner.invoke(app, ["usage", "import", str(good)], env=cli_env)
    assert first.exit_code == 0, first.output
    assert first.stdout == f"{good}: 2 imported, 0 duplicates, 0 refused\n"

    second = runner.invoke(app, ["usage", "import", str(bad)], env=cli_env)
    assert second.exit_code == 1
    assert second.stderr == f"{bad}:2 (c): unknown customer 'nobody'\n"
    assert second.stdout == f"{bad}: 0 imported, 1 duplicates, 1 refused\n"

    summary = runner.invoke(app, ["usage", "import", str(bad), "--json"], env=cli_env)
    assert summary.exit_code == 1
    assert json.loads(summary.stdout) == {
        "lines": 2,
        "accepted": 0,
        "duplicates": 1,
        "refused": 1,
        "refusals": [{"line": 2, "transaction_id": "c", "reason": "unknown customer 'nobody'"}],
    }


def test_a_file_that_is_not_utf8_or_has_no_header_is_named_without_a_traceback(
    cli_env: dict[str, str], customer_id: int, tmp_path: Path
) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        b"transaction_id,customer,metric,timestamp\n"
        + f"a,001000000000001AAA,api_calls,{hours_ago(1)}\n".encode()
        + f"b,Soci\xe9t\xe9,api_calls,{hours_ago(1)}\n".encode("latin-1")
    )
    headless = tmp_path / "headless.csv"
    headless.write_text(f"a,001000000000001AAA,api_calls,{hours_ago(1)}\n")

    first = runner.invoke(app, ["usage", "import", str(latin)], env=cli_env)
    second = runner.invoke(app, ["usage", "import", str(headless)], env=cli_env)

    assert first.exit_code == 1
    assert first.stderr == f"error: {latin}: line 3 is not UTF-8 text (byte 0xe9 at column 7)\n"
    assert second.exit_code == 1
    assert second.stderr == (
        "error: line 1: the header has no transaction_id, customer, metric, timestamp column\n"
    )


def test_show_prints_the_current_period_priced_by_the_items_and_given_days(
    cli_env: dict[str, str], customer_id: int, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    if now.day == 1 and now.hour == 0:
        pytest.skip("the month's first hour holds no past hour of the month")
    month = month_of(now.date())
    last_month = month_of(month.start - timedelta(days=1))
    with transaction(factory) as session:
        customer = session.get_one(tables.Customer, customer_id)
        plan = builders.price(session, "PLAN", unit_amount="100.00")
        bandwidth = builders.metered_price(session, "BW", metric="bandwidth_gb", unit_amount="0.09")
        row = builders.subscription(
            session,
            customer,
            [builders.spec(session, plan), builders.spec(session, bandwidth)],
            start=last_month.start,
        )
        subscription_id = row.id
    first_hour = datetime.combine(month.start, time(), UTC)
    events = tmp_path / "events.csv"
    events.write_text(
        "transaction_id,customer,metric,timestamp,gb,region,direction\n"
        f"b1,001000000000001AAA,bandwidth_gb,{first_hour:%Y-%m-%dT%H:%M:%SZ},12.5,eu,egress\n"
        f"b0,001000000000001AAA,bandwidth_gb,{first_hour - timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ},"
        "100,eu,egress\n"
        f"a1,001000000000001AAA,api_calls,{first_hour:%Y-%m-%dT%H:%M:%SZ},,,\n"
    )
    assert runner.invoke(app, ["usage", "import", str(events)], env=cli_env).exit_code == 0

    shown = runner.invoke(app, ["usage", "show", "001000000000001AAA", "--json"], env=cli_env)

    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["customer"] == {"id": customer_id, "name": "Acme"}
    assert [
        (u["subscription"], u["metric"], u["group"], u["quantity"], u["amount"])
        for u in data["usage"]
    ] == [
        (subscription_id, "bandwidth_gb", "eu", "12.5", "1.13"),  # 12.5 GB at 0.09
        (None, "api_calls", None, "1", None),  # no item bills API calls
    ]
    next_month = month_of(month.end + timedelta(days=1))
    assert [(f["description"], f["amount"]) for f in data["fees"]] == [
        (f"Plan × 1, {next_month}", "100.00")
    ]
    assert data["total"] == "101.13"
    table = runner.invoke(app, ["usage", "show", str(customer_id)], env=cli_env)
    assert table.exit_code == 0
    assert "total 101.13 USD" in table.stdout
    assert "Not billed by any item" in table.stdout and "api_calls (count)" in table.stdout

    # --to alone: the days of its month, priced by the items then, no fees
    before = runner.invoke(
        app,
        ["usage", "show", str(customer_id), "--to", str(last_month.end), "--json"],
        env=cli_env,
    )
    assert before.exit_code == 0, before.output
    past = json.loads(before.stdout)
    assert [(s["period"]["start"], s["invoice_date"]) for s in past["subscriptions"]] == [
        (f"{last_month.start}T00:00:00+00:00", None)
    ]
    assert [(u["quantity"], u["amount"]) for u in past["usage"]] == [("100", "9.00")]
    assert (past["fees"], past["total"]) == ([], "9.00")


def test_show_says_when_a_subscription_has_nothing_metered_in_the_days_asked(
    cli_env: dict[str, str], factory: sessionmaker[Session]
) -> None:
    last_month = month_of(month_of(datetime.now(UTC).date()).start - timedelta(days=1))
    with transaction(factory) as session:
        beta = builders.customer(session, "B1", name="Beta")
        plan = builders.price(session, "PLAN", unit_amount="100.00")
        builders.subscription(session, beta, [builders.spec(session, plan)], start=last_month.start)
        beta_id = beta.id

    shown = runner.invoke(
        app, ["usage", "show", str(beta_id), "--to", str(last_month.end)], env=cli_env
    )

    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    assert "Subscription 1 (" in text
    assert text.endswith("nothing metered in these days")


def test_show_refuses_an_unknown_customer_and_a_bad_mapping_is_a_configuration_error(
    cli_env: dict[str, str], customer_id: int, tmp_path: Path
) -> None:
    unknown = runner.invoke(app, ["usage", "show", "42"], env=cli_env)
    assert unknown.exit_code == 1
    assert "error: no customer '42' (give our id or its Salesforce Account Id)" in unknown.stderr

    mapping = tmp_path / "usage.yaml"
    mapping.write_text("metrics:\n  - code: calls\n    aggregation: average\n")
    env = {**cli_env, "CONNECTOR_USAGE__MAPPING_FILE": str(mapping)}
    broken = runner.invoke(app, ["usage", "show", str(customer_id)], env=env)
    assert broken.exit_code == 2
    assert f"configuration error: {mapping}:3: metrics[0].aggregation: Input should be" in (
        broken.stderr
    )
