"""The formula field ``Billing_Invoice__c.Days_Overdue__c`` through the APIs, as Salesforce
answers: computed on every read (REST, sObject Collections, SOQL, Bulk API query) on the org's
date, and refused on every write (REST, Composite, sObject Collections, Bulk API ingest), per
record, with INVALID_FIELD_FOR_INSERT_UPDATE naming every field the client may not set.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.salesforce.server import Sandbox

WAIT = 0.1
OPEN = {"Due_Date__c": "2026-03-31", "Balance_Due__c": 100.0, "Status__c": "Open"}
PAID = {"Due_Date__c": "2026-03-31", "Balance_Due__c": 0.0, "Status__c": "Paid"}


def refused(*fields: str) -> dict[str, Any]:
    """Salesforce's refusal of a write that sets ``fields``, as a per-record error."""
    return {
        "statusCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
        "message": f"Unable to create/update fields: {', '.join(fields)}. Please check the "
        "security settings of this field and verify that it is read/write for your profile or "
        "permission set.",
        "fields": list(fields),
    }


def as_rest_error(error: dict[str, Any]) -> list[dict[str, Any]]:
    """The same refusal as the REST API answers a single write."""
    return [
        {"message": error["message"], "errorCode": error["statusCode"], "fields": error["fields"]}
    ]


@pytest.fixture
def on_april_15(salesforce_sandbox: Sandbox) -> Sandbox:
    salesforce_sandbox.org.clock = lambda: datetime(2026, 4, 15, 9, tzinfo=UTC)
    return salesforce_sandbox


def invoice(sf: Salesforce, number: str, **values: Any) -> str:
    return str(sf.Billing_Invoice__c.create({"Document_Number__c": number, **values})["id"])


def collections(sf: Salesforce, method: str, records: list[dict[str, Any]], path: str = "") -> Any:
    body = {
        "allOrNone": False,
        "records": [{"attributes": {"type": "Billing_Invoice__c"}, **r} for r in records],
    }
    suffix = f"/{path}" if path else ""
    return sf.restful(f"composite/sobjects{suffix}", method=method, json=body)


# -- reads ------------------------------------------------------------------------------------
def test_rest_gets_compute_the_formula(sf: Salesforce, on_april_15: Sandbox) -> None:
    late, paid = invoice(sf, "INV-1", **OPEN), invoice(sf, "INV-2", **PAID)

    assert sf.Billing_Invoice__c.get(late)["Days_Overdue__c"] == 15.0
    assert sf.Billing_Invoice__c.get(paid)["Days_Overdue__c"] == 0.0
    assert (
        sf.Billing_Invoice__c.get_by_custom_id("Document_Number__c", "INV-1")["Days_Overdue__c"]
        == 15.0
    )
    fields = "Days_Overdue__c,Name"
    answer = sf.restful(f"composite/sobjects/Billing_Invoice__c?ids={late},{paid}&fields={fields}")
    assert [record["Days_Overdue__c"] for record in answer] == [15.0, 0.0]
    selected = sf.restful(f"sobjects/Billing_Invoice__c/{late}", params={"fields": fields})
    assert selected["Days_Overdue__c"] == 15.0

    # The org's date moves on, and so does the formula, with nothing written.
    on_april_15.org.clock = lambda: datetime(2026, 5, 1, tzinfo=UTC)
    assert sf.Billing_Invoice__c.get(late)["Days_Overdue__c"] == 31.0


def test_soql_selects_filters_and_sorts_on_the_formula(
    sf: Salesforce, on_april_15: Sandbox
) -> None:
    invoice(sf, "INV-1", **OPEN)
    invoice(sf, "INV-2", **PAID)
    invoice(sf, "INV-3", **{**OPEN, "Due_Date__c": "2026-04-10"})
    invoice(sf, "INV-4", **{**OPEN, "Due_Date__c": "2026-05-10"})

    overdue = sf.query(
        "SELECT Document_Number__c, Days_Overdue__c FROM Billing_Invoice__c "
        "WHERE Days_Overdue__c > 0 ORDER BY Days_Overdue__c DESC"
    )["records"]
    assert [(r["Document_Number__c"], r["Days_Overdue__c"]) for r in overdue] == [
        ("INV-1", 15.0),
        ("INV-3", 5.0),
    ]
    assert (
        sf.query("SELECT COUNT() FROM Billing_Invoice__c WHERE Days_Overdue__c = 0")["totalSize"]
        == 2
    )
    # Through a parent relationship subquery too.
    account = sf.Account.create({"Name": "Acme"})["id"]
    sf.Billing_Invoice__c.update(
        sf.Billing_Invoice__c.get_by_custom_id("Document_Number__c", "INV-1")["Id"],
        {"Account__c": account},
    )
    nested = sf.query(
        "SELECT Name, (SELECT Days_Overdue__c FROM Billing_Invoices__r) FROM Account"
    )["records"][0]
    assert nested["Billing_Invoices__r"]["records"][0]["Days_Overdue__c"] == 15.0


def test_bulk_queries_compute_the_formula(sf: Salesforce, on_april_15: Sandbox) -> None:
    invoice(sf, "INV-1", **OPEN)
    invoice(sf, "INV-2", **PAID)

    pages = sf.bulk2.Billing_Invoice__c.query(
        "SELECT Document_Number__c, Days_Overdue__c FROM Billing_Invoice__c "
        "ORDER BY Document_Number__c"
    )
    assert "".join(pages) == (
        '"Document_Number__c","Days_Overdue__c"\n"INV-1","15.0"\n"INV-2","0.0"\n'
    )


# -- writes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("operation", ["create", "update", "upsert"])
def test_a_rest_write_of_the_formula_is_refused(sf: Salesforce, operation: str) -> None:
    existing = invoice(sf, "INV-1", **OPEN)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        if operation == "create":
            invoice(sf, "INV-2", Days_Overdue__c=3)
        elif operation == "update":
            sf.Billing_Invoice__c.update(existing, {"Days_Overdue__c": None, "Tax__c": 1})
        else:
            sf.Billing_Invoice__c.upsert("Document_Number__c/INV-1", {"Days_Overdue__c": 3})

    assert (caught.value.status, caught.value.content) == (
        400,
        as_rest_error(refused("Days_Overdue__c")),
    )
    assert sf.query("SELECT COUNT() FROM Billing_Invoice__c")["totalSize"] == 1
    assert sf.Billing_Invoice__c.get(existing)["Tax__c"] is None


def test_every_field_the_client_may_not_set_is_named_once(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        invoice(sf, "INV-1", Days_Overdue__c=3, CreatedDate="2026-01-01T00:00:00Z")

    assert caught.value.content == as_rest_error(refused("Days_Overdue__c", "CreatedDate"))


def test_collections_refuse_the_formula_per_record(sf: Salesforce) -> None:
    existing = invoice(sf, "INV-1", **OPEN)

    created = collections(
        sf,
        "POST",
        [{"Document_Number__c": "INV-2"}, {"Document_Number__c": "INV-3", "Days_Overdue__c": 1}],
    )
    updated = collections(
        sf, "PATCH", [{"id": existing, "Days_Overdue__c": 1}, {"id": existing, "Tax__c": 2}]
    )
    upserted = collections(
        sf,
        "PATCH",
        [{"Document_Number__c": "INV-4", "Days_Overdue__c": 1}, {"Document_Number__c": "INV-5"}],
        "Billing_Invoice__c/Document_Number__c",
    )

    assert [item["success"] for item in created] == [True, False]
    assert created[1]["errors"] == [refused("Days_Overdue__c")]
    assert [item["success"] for item in updated] == [False, True]
    assert updated[0]["errors"] == [refused("Days_Overdue__c")]
    assert [item["success"] for item in upserted] == [False, True]
    assert upserted[0]["errors"] == [refused("Days_Overdue__c")]
    numbers = sf.query("SELECT Document_Number__c FROM Billing_Invoice__c ORDER BY Name")
    assert sorted(r["Document_Number__c"] for r in numbers["records"]) == [
        "INV-1",
        "INV-2",
        "INV-5",
    ]
    assert sf.Billing_Invoice__c.get(existing)["Tax__c"] == 2.0


def test_composite_refuses_the_formula_in_its_subrequest(sf: Salesforce) -> None:
    base = "/services/data/v59.0/sobjects/Billing_Invoice__c"
    answer = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": False,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": base,
                    "referenceId": "bad",
                    "body": {"Document_Number__c": "INV-1", "Days_Overdue__c": 1},
                },
                {
                    "method": "POST",
                    "url": base,
                    "referenceId": "good",
                    "body": {"Document_Number__c": "INV-2"},
                },
            ],
        },
    )

    bad, good = answer["compositeResponse"]
    assert (bad["httpStatusCode"], bad["body"]) == (400, as_rest_error(refused("Days_Overdue__c")))
    assert good["httpStatusCode"] == 201


def test_bulk_ingest_refuses_the_formula_per_row(sf: Salesforce, tmp_path: Path) -> None:
    path = tmp_path / "invoices.csv"
    path.write_text(
        "Document_Number__c,Days_Overdue__c,Tax__c\nINV-1,3,1\nINV-2,,2\n", encoding="utf-8"
    )

    loaded = sf.bulk2.Billing_Invoice__c.insert(csv_file=str(path), wait=WAIT)

    job_id = loaded[0]["job_id"]
    assert (loaded[0]["numberRecordsProcessed"], loaded[0]["numberRecordsFailed"]) == (2, 2)
    error = refused("Days_Overdue__c")
    assert sf.bulk2.Billing_Invoice__c.get_failed_records(job_id) == (
        '"sf__Id","sf__Error","Document_Number__c","Days_Overdue__c","Tax__c"\n'
        f'"","{error["statusCode"]}:{error["message"]}:Days_Overdue__c --","INV-1","3","1"\n'
        f'"","{error["statusCode"]}:{error["message"]}:Days_Overdue__c --","INV-2","","2"\n'
    )
    # On update an empty value leaves a field as it is: the column alone refuses nothing.
    existing = invoice(sf, "INV-3")
    path.write_text(f"Id,Days_Overdue__c,Tax__c\n{existing},,5\n", encoding="utf-8")
    updated = sf.bulk2.Billing_Invoice__c.update(csv_file=str(path), wait=WAIT)
    assert updated[0]["numberRecordsFailed"] == 0
    assert sf.Billing_Invoice__c.get(existing)["Tax__c"] == 5.0
