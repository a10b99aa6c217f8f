"""Implausible deals are held for review, not billed: against the Salesforce sandbox, through
the commands a person runs (`connector pull`, `bill`, `review list`, `review approve`) and the
write-back that puts the reason on the deal.

Deals are created through the REST API (simple-salesforce), as users and integrations do.
The business date of every command is 2026-06-30.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from simple_salesforce import Salesforce
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connector.cli import app
from connector.crm.client import SalesforceClient
from connector.db import tables
from connector.settings import load_settings
from connector.sync import crm_pull, writeback
from sandbox.salesforce.server import Sandbox
from tests.conftest import ACCOUNTING_MAPPING

AS_OF = "2026-06-30"
MAPPING_FILE = Path(__file__).resolve().parents[2] / "mappings" / "salesforce.yaml"
runner = CliRunner()


@pytest.fixture
def env(
    database_url: str,
    salesforce_sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> dict[str, str]:
    """Settings as environment variables; the chart of accounts as shipped (books open on
    2000-01-01) and the default limits (365 days back, 1,000,000 a period)."""
    for name in list(os.environ):
        if name.startswith("CONNECTOR_") and name != "CONNECTOR_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return {
        "CONNECTOR_DATABASE_URL": database_url,
        "CONNECTOR_LEDGER__PATH": str(tmp_path / "ledger.beancount"),
        "CONNECTOR_SALESFORCE__LOGIN_URL": salesforce_sandbox.instance_url,
        "CONNECTOR_SALESFORCE__INSTANCE_URL": salesforce_sandbox.instance_url,
        "CONNECTOR_SALESFORCE__SESSION_ID": salesforce_sandbox.session_id,
        "CONNECTOR_SALESFORCE__CA_FILE": str(salesforce_sandbox.ca_file),
        "CONNECTOR_SALESFORCE__MAPPING_FILE": str(MAPPING_FILE),
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def run_json(env: dict[str, str], *args: str) -> tuple[int, Any]:
    code, out, err = run(env, *args, "--json")
    try:
        return code, json.loads(out)
    except ValueError:
        raise AssertionError(out + err) from None


@pytest.fixture
def deal(sf: Salesforce) -> Callable[..., tuple[str, str]]:
    """A won deal of Acme Inc. (US, USD) with one line of Professional Edition: returns the
    deal's and the line's ids."""
    book = sf.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")["records"][0]["Id"]
    account = sf.Account.create(
        {"Name": "Acme Inc.", "BillingCountry": "United States", "CurrencyIsoCode": "USD"}
    )["id"]
    product = sf.Product2.create(
        {"Name": "Professional Edition", "ProductCode": "PRO", "IsActive": True}
    )["id"]
    entry = sf.PricebookEntry.create(
        {
            "Pricebook2Id": book,
            "Product2Id": product,
            "UnitPrice": 45,
            "IsActive": True,
            "CurrencyIsoCode": "USD",
        }
    )["id"]

    def make(name: str, close: str, quantity: str, price: str) -> tuple[str, str]:
        deal_id = sf.Opportunity.create(
            {
                "Name": name,
                "AccountId": account,
                "StageName": "Closed Won",
                "CloseDate": close,
                "CurrencyIsoCode": "USD",
                "Pricebook2Id": book,
            }
        )["id"]
        line = sf.OpportunityLineItem.create(
            {
                "OpportunityId": deal_id,
                "PricebookEntryId": entry,
                "Quantity": quantity,
                "UnitPrice": price,
            }
        )["id"]
        return deal_id, line

    return make


def sync_error(sf: Salesforce, deal_id: str) -> str | None:
    return sf.Opportunity.get(deal_id)["Billing_Sync_Error__c"]


def write_back(env: dict[str, str], factory: sessionmaker[Session]) -> None:
    """The write-back stage, as a cycle runs it."""
    config = load_settings(
        None,
        database_url=env["CONNECTOR_DATABASE_URL"],
        salesforce={
            "instance_url": env["CONNECTOR_SALESFORCE__INSTANCE_URL"],
            "session_id": env["CONNECTOR_SALESFORCE__SESSION_ID"],
            "ca_file": env["CONNECTOR_SALESFORCE__CA_FILE"],
        },
    )
    budget = crm_pull.load_budget(factory, config, datetime.now(UTC).date())
    result = writeback.write_back(
        factory, SalesforceClient(config.salesforce, budget), date(2026, 6, 30)
    )
    assert result.failed == {}


def invoices(factory: sessionmaker[Session]) -> list[tuple[str, str, date, date, str]]:
    """(number, deal, period start, period end, total) of every invoice, in number order."""
    with factory() as session:
        deals = dict(
            session.execute(
                select(tables.ExternalId.entity_id, tables.ExternalId.external_id).where(
                    tables.ExternalId.entity == "subscriptions"
                )
            ).all()
        )
        rows = session.scalars(select(tables.Document).order_by(tables.Document.number))
        return [
            (
                row.number,
                deals[row.subscription_id],
                row.period_start,
                row.period_end,
                format(row.total, "f"),
            )
            for row in rows
        ]


def held_entries(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(e["object"], e["record_id"], e["name"], e["reason"]) for e in report["held"]]


def test_a_deal_starting_in_1900_is_held_until_approved_once_the_books_open_early_enough(
    deal: Callable[..., tuple[str, str]],
    env: dict[str, str],
    factory: sessionmaker[Session],
    sf: Salesforce,
    tmp_path: Path,
) -> None:
    typo, _ = deal("Acme - Typo", "1900-01-01", "10", "45.00")
    fine, _ = deal("Acme - Fine", "2026-06-01", "2", "45.00")

    code, pulled = run_json(env, "pull", "--as-of", AS_OF)
    assert (code, pulled["applied"], pulled["held"], pulled["quarantined"]) == (1, 2, 1, 0)
    code, billed = run_json(env, "bill", "--as-of", AS_OF)
    assert (code, billed["invoices"]) == (0, 1)
    june = (date(2026, 6, 1), date(2026, 6, 30))
    assert invoices(factory) == [("INV-000001", fine, *june, "90.00")]  # nothing for the typo

    reason = (
        "held: service start 1900-01-01 is before the books open on 2000-01-01 (open_date in "
        "mappings/accounting.yaml); service start 1900-01-01 is 46,201 days before 2026-06-30, "
        "more than billing.max_backdate_days (365); fix the deal in Salesforce (nothing may be "
        "dated before the books open)"
    )
    code, review = run_json(env, "review", "list")
    assert code == 0
    assert held_entries(review) == [("Opportunity", typo, "Acme - Typo", reason)]
    assert review["approved"] == []
    code, status = run_json(env, "status")
    assert [entry["reason"] for entry in status["held"]] == [reason]
    write_back(env, factory)
    assert (sync_error(sf, typo), sync_error(sf, fine)) == (reason, None)

    # No approval dates anything before the books open.
    code, out, err = run(env, "review", "approve", typo, "--by", "alice", "--as-of", AS_OF)
    assert (code, out) == (1, "")
    assert err == f"error: Opportunity {typo} stays held: {reason}\n"
    assert held_entries(run_json(env, "review", "list")[1]) == [
        ("Opportunity", typo, "Acme - Typo", reason)
    ]

    # Books that open in 1900 leave only the backdate, which a person may approve.
    chart = yaml.safe_load(ACCOUNTING_MAPPING.read_text())
    chart["open_date"] = date(1900, 1, 1)
    (tmp_path / "accounting.yaml").write_text(yaml.safe_dump(chart))
    env = {**env, "CONNECTOR_ACCOUNTING__MAPPING_FILE": str(tmp_path / "accounting.yaml")}
    before = datetime.now(UTC)
    code, out, err = run(env, "review", "approve", typo, "--by", "alice", "--as-of", AS_OF)
    after = datetime.now(UTC)
    assert (code, err) == (0, "")
    assert out.startswith(f"Opportunity {typo} approved by alice at 20")
    assert out.endswith(": applied\n")

    code, review = run_json(env, "review", "list")
    assert review["held"] == []
    [approval] = review["approved"]
    assert (approval["record_id"], approval["approved_by"], approval["reason"]) == (
        typo,
        "alice",
        reason,
    )
    approved_at = datetime.fromisoformat(approval["approved_at"])
    assert approved_at.tzinfo is not None
    assert before <= approved_at <= after

    # Approved as it is: every month since January 1900, 10 × 45.00 each.
    code, billed = run_json(env, "bill", "--as-of", AS_OF)
    months = (2026 - 1900) * 12 + 6
    assert (code, billed["invoices"], billed["invoiced"]) == (
        0,
        months,
        {"USD": f"{450 * months}.00"},
    )
    issued = invoices(factory)
    assert len(issued) == 1 + months
    assert issued[1] == ("INV-000002", typo, date(1900, 1, 1), date(1900, 1, 31), "450.00")
    assert issued[-1] == (f"INV-{1 + months:06d}", typo, *june, "450.00")
    write_back(env, factory)
    assert sync_error(sf, typo) is None
    # Pulling again changes nothing: the approved version is applied.
    code, again = run_json(env, "pull", "--as-of", AS_OF)
    assert (code, again["applied"], again["held"]) == (0, 0, 0)


def test_a_quantity_of_1e15_is_held_and_a_fix_in_salesforce_releases_it(
    deal: Callable[..., tuple[str, str]],
    env: dict[str, str],
    factory: sessionmaker[Session],
    sf: Salesforce,
) -> None:
    huge, line = deal("Acme - Huge", "2026-06-01", "1000000000000000", "50.00")

    code, pulled = run_json(env, "pull", "--as-of", AS_OF)
    assert (code, pulled["held"]) == (1, 1)
    reason = (
        f"held for review: line item {line} (PRO) bills 50,000,000,000,000,000.00 USD a monthly "
        "period, more than billing.max_amount (default: 1,000,000.00); approve it with "
        f"`connector review approve {huge}`, or fix the deal in Salesforce"
    )
    assert held_entries(run_json(env, "review", "list")[1]) == [
        ("Opportunity", huge, "Acme - Huge", reason)
    ]
    assert run_json(env, "bill", "--as-of", AS_OF)[1]["invoices"] == 0
    write_back(env, factory)
    assert sync_error(sf, huge) == reason

    sf.OpportunityLineItem.update(line, {"Quantity": 10})
    code, fixed = run_json(env, "pull", "--as-of", AS_OF)
    assert (code, fixed["applied"], fixed["held"]) == (0, 1, 0)
    assert run_json(env, "review", "list")[1] == {"held": [], "approved": []}
    run_json(env, "bill", "--as-of", AS_OF)
    assert invoices(factory) == [
        ("INV-000001", huge, date(2026, 6, 1), date(2026, 6, 30), "500.00")
    ]
    write_back(env, factory)
    assert sync_error(sf, huge) is None


def test_an_approval_holds_for_what_it_approved_and_a_new_amount_is_checked_again(
    deal: Callable[..., tuple[str, str]],
    env: dict[str, str],
    factory: sessionmaker[Session],
    sf: Salesforce,
) -> None:
    big, line = deal("Acme - Big", "2026-06-01", "30000", "50.00")  # 1,500,000.00 a month
    assert run_json(env, "pull", "--as-of", AS_OF)[1]["held"] == 1

    code, out, err = run(env, "review", "approve", big, "--as-of", AS_OF)  # the OS user
    assert (code, err) == (0, "")
    assert out.startswith(f"Opportunity {big} approved by {getpass.getuser()} at ")
    run_json(env, "bill", "--as-of", AS_OF)
    assert invoices(factory) == [
        ("INV-000001", big, date(2026, 6, 1), date(2026, 6, 30), "1500000.00")
    ]

    # A change that keeps the approved amount needs no new approval...
    sf.Opportunity.update(big, {"Name": "Acme - Big (renamed)"})
    code, renamed = run_json(env, "pull", "--as-of", AS_OF)
    assert (code, renamed["applied"], renamed["held"]) == (0, 1, 0)
    # ...a new amount is checked again, and the approved version keeps billing meanwhile.
    sf.OpportunityLineItem.update(line, {"Quantity": 40000})
    code, changed = run_json(env, "pull", "--as-of", AS_OF)
    assert (code, changed["held"]) == (1, 1)
    [(_, _, name, reason)] = held_entries(run_json(env, "review", "list")[1])
    assert (name, reason.split(";")[0]) == (
        "Acme - Big (renamed)",
        f"held for review: line item {line} (PRO) bills 2,000,000.00 USD a monthly period, "
        "more than billing.max_amount (default: 1,000,000.00)",
    )
    with factory() as session:
        quantities = session.scalars(select(tables.ItemVersion.quantity)).all()
    assert quantities == [30000]


def test_only_a_held_record_can_be_approved(
    deal: Callable[..., tuple[str, str]], env: dict[str, str]
) -> None:
    fine, _ = deal("Acme - Fine", "2026-06-01", "2", "45.00")
    run_json(env, "pull", "--as-of", AS_OF)
    assert run(env, "review", "approve", fine) == (
        1,
        "",
        f"error: Opportunity {fine} is applied, not held\n",
    )
    assert run(env, "review", "approve", "006000000000999AAA") == (
        1,
        "",
        "error: no record 006000000000999AAA was pulled from Salesforce\n",
    )
