"""``/v1/waiting`` and approving a held record: deals pulled from the Salesforce sandbox by the
pull stage run through the API, one held for a start too far back, approved through the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from simple_salesforce import Salesforce
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connector.settings import load_settings
from connector.sync.cycle import JobRun, Runtime
from sandbox.salesforce.server import Sandbox
from tests.api.conftest import Served, serving
from tests.api.v1.conftest import problem, unstamped
from tests.conftest import TEST_TAX_RATES

MAPPING_FILE = Path(__file__).resolve().parents[3] / "mappings" / "salesforce.yaml"
AS_OF = {"as_of": "2026-06-30"}


@pytest.fixture
def active(
    engine: Engine,
    factory: sessionmaker[Session],
    database_url: str,
    salesforce_sandbox: Sandbox,
    tmp_path: Path,
) -> Iterator[Served]:
    """The API of an active instance pulling from the sandbox org."""
    settings = load_settings(
        None,
        database_url=database_url,
        ledger={"path": tmp_path / "ledger.beancount"},
        tax={"rates": TEST_TAX_RATES},
        salesforce={
            "login_url": salesforce_sandbox.instance_url,
            "instance_url": salesforce_sandbox.instance_url,
            "session_id": salesforce_sandbox.session_id,
            "ca_file": str(salesforce_sandbox.ca_file),
            "mapping_file": str(MAPPING_FILE),
        },
    )
    runtime = Runtime(factory, settings)

    def run_stage(stage: str, as_of: date | None) -> JobRun:
        with runtime.run_lock:
            return runtime.run(stage, as_of)

    with serving(engine, factory, settings) as served:
        served.instance.activate(run_stage)
        yield served


def won_deal(sf: Salesforce, name: str, close: str) -> str:
    """A won deal of Acme Inc. (US, USD): 10 × Professional Edition at 45.00."""
    book = sf.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")["records"][0]["Id"]
    account = sf.Account.create(
        {"Name": "Acme Inc.", "BillingCountry": "United States", "CurrencyIsoCode": "USD"}
    )["id"]
    product = sf.Product2.create(
        {"Name": "Professional Edition", "ProductCode": f"PRO-{name}", "IsActive": True}
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
    deal = sf.Opportunity.create(
        {
            "Name": name,
            "AccountId": account,
            "StageName": "Closed Won",
            "CloseDate": close,
            "CurrencyIsoCode": "USD",
            "Pricebook2Id": book,
        }
    )["id"]
    sf.OpportunityLineItem.create(
        {"OpportunityId": deal, "PricebookEntryId": entry, "Quantity": 10, "UnitPrice": 45}
    )
    return str(deal)


def test_a_held_deal_waits_with_its_reason_until_approved(active: Served, sf: Salesforce) -> None:
    late = won_deal(sf, "Acme - Late", "2024-01-01")
    won_deal(sf, "Acme - Fine", "2026-06-01")
    reader, writer = active.key("read"), active.key("write", name="finance")

    pulled = active.write("/v1/jobs/pull/run", writer, AS_OF)
    assert (pulled.status_code, pulled.json()["ok"], pulled.json()["counts"]["held"]) == (
        200,
        True,
        1,
    )

    reason = (
        "held for review: service start 2024-01-01 is 911 days before 2026-06-30, more than "
        f"billing.max_backdate_days (365); approve it with `connector review approve {late}`, "
        "or fix the deal in Salesforce"
    )
    waiting = active.get("/v1/waiting", reader).json()
    assert [(r["object"], r["record_id"], r["name"], r["state"]) for r in waiting["data"]] == [
        ("Opportunity", late, "Acme - Late", "held")
    ]
    assert waiting["data"][0]["reason"] == reason
    assert active.get("/v1/waiting?state=quarantined", reader).json()["data"] == []
    assert active.get("/v1/status", reader).json()["attention"] == ["1 record held for review"]

    approved = active.write(f"/v1/waiting/{late}/approve", writer, AS_OF)  # by the key

    assert approved.status_code == 200
    body = approved.json()
    assert body["approval"].pop("approved_at").startswith("20")
    assert body == {
        "approval": {
            "object": "Opportunity",
            "record_id": late,
            "reason": reason,
            "approved_by": "API key finance",
        },
        "state": "applied",
        "reason": None,
    }
    assert active.get("/v1/waiting", reader).json() == {"data": [], "next_cursor": None}
    again = active.write(f"/v1/waiting/{late}/approve", writer, {"by": "alice", **AS_OF})
    assert unstamped(again.json()) == problem(
        422,
        "invalid-input",
        "Unprocessable content",
        f"Opportunity {late} is applied, not held",
        f"/v1/waiting/{late}/approve",
    )
