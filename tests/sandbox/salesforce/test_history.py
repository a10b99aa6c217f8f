"""Field history tracking, end to end over HTTPS: the org records the changes of the fields the
schema tracks (``track_history``) in their object's history object, as Salesforce does, on
every write path, and answers for those objects as Salesforce does.

``Billing_Invoice__c.Status__c`` is tracked in ``Billing_Invoice__History`` (``ParentId``),
``Account.Billing_Status__c`` in ``AccountHistory`` (``AccountId``) and
``Opportunity.Billing_Sync_Status__c`` in ``OpportunityFieldHistory`` (``OpportunityId``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from sandbox.salesforce.auth import USER_ID
from sandbox.salesforce.schema import SCHEMA_FILE, load_schema
from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import trusting_session

CREATED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PAID = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
WAIT = 0.1
INVOICE_HISTORY = "SELECT ParentId, Field, DataType, OldValue, NewValue, CreatedById, CreatedDate "
HISTORY_OBJECTS = {
    "AccountHistory": ("Account History", "AccountId", "Account", False),
    "OpportunityFieldHistory": ("Opportunity Field History", "OpportunityId", "Opportunity", False),
    "Billing_Subscription__History": ("Billing Subscription History", "ParentId", "Parent", True),
    "Billing_Invoice__History": ("Billing Invoice History", "ParentId", "Parent", True),
}


def at(sandbox: Sandbox, moment: datetime) -> None:
    sandbox.org.clock = lambda: moment


def api(sandbox: Sandbox, method: str, path: str, **kwargs: Any) -> requests.Response:
    """A plain HTTPS call under ``/services/data/v59.0/``."""
    headers = {"Authorization": f"Bearer {sandbox.session_id}"}
    with trusting_session(sandbox) as session:
        return session.request(
            method, f"{sandbox.instance_url}/services/data/v59.0/{path}", headers=headers, **kwargs
        )


def rows(sf: Salesforce, soql: str, *, deleted: bool = False) -> list[dict[str, Any]]:
    found = sf.query_all(soql, include_deleted=deleted)["records"]
    return [{key: value for key, value in row.items() if key != "attributes"} for row in found]


def invoice_history(sf: Salesforce, invoice: str, *, deleted: bool = False) -> list[dict]:
    return rows(
        sf,
        f"{INVOICE_HISTORY} FROM Billing_Invoice__History WHERE ParentId = '{invoice}' "
        "ORDER BY CreatedDate",
        deleted=deleted,
    )


def changes(sf: Salesforce, obj: str, where: str = "") -> list[tuple[Any, ...]]:
    """(parent, field, old value, new value) of every change but the created rows."""
    parent = HISTORY_OBJECTS[obj][1]
    return [
        (row[parent], row["Field"], row["OldValue"], row["NewValue"])
        for row in rows(
            sf,
            f"SELECT {parent}, Field, OldValue, NewValue FROM {obj} "
            f"WHERE Field != 'created' {where} ORDER BY CreatedDate",
        )
    ]


def new_invoice(sf: Salesforce, number: int = 1, status: str = "Open") -> str:
    created = sf.Billing_Invoice__c.create(
        {"Document_Number__c": f"INV-{number:04d}", "Total__c": 100, "Status__c": status}
    )
    return str(created["id"])


def created_row(invoice: str, stamp: str) -> dict[str, Any]:
    return {
        "ParentId": invoice,
        "Field": "created",
        "DataType": "Text",
        "OldValue": None,
        "NewValue": None,
        "CreatedById": USER_ID,
        "CreatedDate": stamp,
    }


def collection(sf: Salesforce, method: str, path: str, records: list[dict]) -> list[dict]:
    answer = sf.restful(path, method=method, json={"allOrNone": False, "records": records})
    assert isinstance(answer, list)
    return answer


# -- what a write records ---------------------------------------------------------------------
def test_a_status_change_records_one_row_with_the_old_and_new_values(
    sf: Salesforce, salesforce_sandbox: Sandbox
) -> None:
    at(salesforce_sandbox, CREATED)
    invoice = new_invoice(sf)
    at(salesforce_sandbox, PAID)

    sf.Billing_Invoice__c.update(invoice, {"Status__c": "Paid", "Amount_Paid__c": 100})

    assert invoice_history(sf, invoice) == [
        created_row(invoice, "2026-03-01T09:00:00.000+0000"),
        {
            "ParentId": invoice,
            "Field": "Status__c",
            "DataType": "DynamicEnum",
            "OldValue": "Open",
            "NewValue": "Paid",
            "CreatedById": USER_ID,
            "CreatedDate": "2026-03-10T14:30:00.000+0000",
        },
    ]
    changed = rows(
        sf, "SELECT Id, Parent.Name FROM Billing_Invoice__History WHERE Field = 'Status__c'"
    )
    assert [row["Parent"]["Name"] for row in changed] == [invoice]  # named after its id
    assert changed[0]["Id"].startswith("017")


def test_an_unchanged_value_or_an_untracked_field_records_nothing(
    sf: Salesforce, salesforce_sandbox: Sandbox
) -> None:
    invoice = new_invoice(sf)

    sf.Billing_Invoice__c.update(invoice, {"Status__c": "Open"})  # sent, but the same
    sf.Billing_Invoice__c.update(invoice, {"Status__c": "open"})  # the same picklist value
    sf.Billing_Invoice__c.update(invoice, {"Total__c": 250, "Tax__c": 50})  # not tracked

    assert [row["Field"] for row in invoice_history(sf, invoice)] == ["created"]
    assert sf.Billing_Invoice__c.get(invoice)["Total__c"] == 250


def test_every_insert_records_a_created_row(sf: Salesforce, salesforce_sandbox: Sandbox) -> None:
    at(salesforce_sandbox, CREATED)
    stamp = "2026-03-01T09:00:00.000+0000"
    account = sf.Account.create({"Name": "Acme"})["id"]  # no tracked value given
    deal = sf.Opportunity.create(
        {
            "Name": "Acme - seats",
            "AccountId": account,
            "StageName": "Prospecting",
            "CloseDate": "2026-06-30",
            "Billing_Sync_Status__c": "Waiting",
        }
    )["id"]
    invoice = new_invoice(sf)

    assert rows(
        sf, "SELECT AccountId, Field, DataType, OldValue, NewValue FROM AccountHistory"
    ) == [
        {
            "AccountId": account,
            "Field": "created",
            "DataType": "Text",
            "OldValue": None,
            "NewValue": None,
        }
    ]
    assert rows(sf, "SELECT OpportunityId, Field, CreatedDate FROM OpportunityFieldHistory") == [
        {"OpportunityId": deal, "Field": "created", "CreatedDate": stamp}
    ]
    assert invoice_history(sf, invoice) == [created_row(invoice, stamp)]
    # An object without a tracked field keeps no history.
    assert api(salesforce_sandbox, "GET", "sobjects/ContactHistory/describe").status_code == 404


def test_a_collections_upsert_of_three_accounts_records_three_changes(sf: Salesforce) -> None:
    accounts = [
        sf.Account.create({"Name": f"Account {n}", "Billing_Status__c": "Active"})["id"]
        for n in range(3)
    ]
    statuses = ["Past Due", "Cancelled", "Trial"]

    answer = collection(
        sf,
        "PATCH",
        "composite/sobjects/Account/Id",
        [
            {"attributes": {"type": "Account"}, "Id": account, "Billing_Status__c": status}
            for account, status in zip(accounts, statuses, strict=True)
        ],
    )

    assert [result["success"] for result in answer] == [True, True, True]
    assert sorted(changes(sf, "AccountHistory")) == sorted(
        (account, "Billing_Status__c", "Active", status)
        for account, status in zip(accounts, statuses, strict=True)
    )


def test_collections_record_the_history_of_the_records_that_succeed(sf: Salesforce) -> None:
    invoices = [new_invoice(sf, n) for n in range(3)]
    updates = [
        {"attributes": {"type": "Billing_Invoice__c"}, "Id": invoices[0], "Status__c": "Paid"},
        {"attributes": {"type": "Billing_Invoice__c"}, "Id": invoices[1], "Status__c": "Void",
         "Type__c": "Receipt"},  # refused: a restricted picklist
        {"attributes": {"type": "Billing_Invoice__c"}, "Id": invoices[2], "Status__c": "Void"},
    ]  # fmt: skip

    answer = collection(sf, "PATCH", "composite/sobjects", updates)

    assert [result["success"] for result in answer] == [True, False, True]
    assert changes(sf, "Billing_Invoice__History") == [
        (invoices[0], "Status__c", "Open", "Paid"),
        (invoices[2], "Status__c", "Open", "Void"),
    ]

    # With allOrNone, one failure records nothing.
    sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={"allOrNone": True, "records": [{**updates[0], "Status__c": "Open"}, updates[1]]},
    )
    assert len(changes(sf, "Billing_Invoice__History")) == 2

    # Created by a collection: a created row each.
    created = collection(
        sf,
        "POST",
        "composite/sobjects",
        [
            {"attributes": {"type": "Billing_Invoice__c"}, "Document_Number__c": f"NEW-{n}"}
            for n in range(2)
        ],
    )
    new = [result["id"] for result in created]
    created_rows = rows(
        sf, "SELECT ParentId FROM Billing_Invoice__History WHERE Field = 'created' ORDER BY Id"
    )
    assert [row["ParentId"] for row in created_rows] == [*invoices, *new]


def test_composite_and_bulk_ingest_record_history(
    sf: Salesforce, salesforce_sandbox: Sandbox, tmp_path: Path
) -> None:
    invoices = [new_invoice(sf, n) for n in range(3)]

    composite = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": False,
            "compositeRequest": [
                {
                    "method": "PATCH",
                    "url": f"/services/data/v59.0/sobjects/Billing_Invoice__c/{invoices[0]}",
                    "referenceId": "paid",
                    "body": {"Status__c": "Paid"},
                }
            ],
        },
    )
    assert composite["compositeResponse"][0]["httpStatusCode"] == 204

    upload = tmp_path / "invoices.csv"
    upload.write_text(
        f"Id,Status__c\n{invoices[1]},Partially Paid\n{invoices[2]},Open\n", encoding="utf-8"
    )
    loaded = sf.bulk2.Billing_Invoice__c.update(csv_file=str(upload), wait=WAIT)
    assert loaded[0]["numberRecordsProcessed"] == 2
    upload.write_text("Document_Number__c,Status__c\nINV-0001,Paid\nINV-0009,Open\n")
    loaded = sf.bulk2.Billing_Invoice__c.upsert(
        csv_file=str(upload), external_id_field="Document_Number__c", wait=WAIT
    )
    assert loaded[0]["numberRecordsFailed"] == 0

    assert changes(sf, "Billing_Invoice__History") == [
        (invoices[0], "Status__c", "Open", "Paid"),  # composite
        (invoices[1], "Status__c", "Open", "Partially Paid"),  # ingest update
        (invoices[1], "Status__c", "Partially Paid", "Paid"),  # ingest upsert
    ]
    inserted = sf.query("SELECT Id FROM Billing_Invoice__c WHERE Document_Number__c = 'INV-0009'")
    added = inserted["records"][0]["Id"]
    assert [row["Field"] for row in invoice_history(sf, added)] == ["created"]


def test_a_deleted_records_history_goes_with_it(sf: Salesforce) -> None:
    kept, removed, batch_removed = (new_invoice(sf, n) for n in range(3))
    sf.Billing_Invoice__c.update(removed, {"Status__c": "Void"})

    sf.Billing_Invoice__c.delete(removed)
    deleted = sf.restful(f"composite/sobjects?ids={batch_removed}", method="DELETE")

    assert isinstance(deleted, list) and deleted[0]["success"]
    assert invoice_history(sf, removed) == []
    assert invoice_history(sf, batch_removed) == []
    assert [row["Field"] for row in invoice_history(sf, kept)] == ["created"]
    everything = rows(
        sf,
        "SELECT ParentId, Field, IsDeleted FROM Billing_Invoice__History ORDER BY Id",
        deleted=True,
    )
    assert everything == [
        {"ParentId": kept, "Field": "created", "IsDeleted": False},
        {"ParentId": removed, "Field": "created", "IsDeleted": True},
        {"ParentId": batch_removed, "Field": "created", "IsDeleted": True},
        {"ParentId": removed, "Field": "Status__c", "IsDeleted": True},
    ]


# -- the history objects ----------------------------------------------------------------------
def test_a_history_object_refuses_every_write(
    sf: Salesforce, salesforce_sandbox: Sandbox, tmp_path: Path
) -> None:
    invoice = new_invoice(sf)
    (row,) = rows(sf, "SELECT Id FROM Billing_Invoice__History")
    history_id = row["Id"]

    def refused(done: str) -> list[dict[str, Any]]:
        message = f"entity type cannot be {done}: Billing Invoice History"
        return [
            {"message": message, "errorCode": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "fields": []}
        ]

    body = {"ParentId": invoice, "Field": "Status__c"}
    created = api(salesforce_sandbox, "POST", "sobjects/Billing_Invoice__History", json=body)
    assert (created.status_code, created.json()) == (400, refused("inserted"))
    path = f"sobjects/Billing_Invoice__History/{history_id}"
    updated = api(salesforce_sandbox, "PATCH", path, json={"Field": "Status__c"})
    assert (updated.status_code, updated.json()) == (400, refused("updated"))
    removed = api(salesforce_sandbox, "DELETE", path)
    assert (removed.status_code, removed.json()) == (400, refused("deleted"))

    # Per record in sObject Collections (by id, the history object its row is in).
    answer = collection(
        sf, "POST", "composite/sobjects", [{"attributes": {"type": "Billing_Invoice__History"}}]
    )
    assert answer == [
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                    "message": "entity type cannot be inserted: Billing Invoice History",
                    "fields": [],
                }
            ],
        }
    ]
    sf.Account.create({"Name": "Acme"})  # an AccountHistory row: the first history object
    deleted = sf.restful(f"composite/sobjects?ids={history_id}", method="DELETE")
    assert deleted == [
        {
            "id": history_id,
            "success": False,
            "errors": [
                {
                    "statusCode": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                    "message": "entity type cannot be deleted: Billing Invoice History",
                    "fields": [],
                }
            ],
        }
    ]

    # Per row in a Bulk API ingest job.
    upload = tmp_path / "history.csv"
    upload.write_text(f"AccountId,Field\n{invoice},created\n", encoding="utf-8")
    loaded = sf.bulk2.AccountHistory.insert(csv_file=str(upload), wait=WAIT)
    assert (loaded[0]["numberRecordsProcessed"], loaded[0]["numberRecordsFailed"]) == (1, 1)
    failed = sf.bulk2.AccountHistory.get_failed_records(loaded[0]["job_id"])
    assert "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY:entity type cannot be inserted: Account" in failed

    # Nothing changed.
    assert len(rows(sf, "SELECT Id FROM Billing_Invoice__History", deleted=True)) == 1
    assert sf.Billing_Invoice__History.get(history_id)["Field"] == "created"


def test_describe_lists_the_history_objects(sf: Salesforce) -> None:
    listed = {item["name"]: item for item in sf.describe()["sobjects"]}

    for name, (label, parent, relationship, custom) in HISTORY_OBJECTS.items():
        summary = listed[name]
        assert {
            key: summary[key]
            for key in ("label", "labelPlural", "keyPrefix", "custom", "queryable", "retrieveable")
        } == {
            "label": label,
            "labelPlural": label,
            "keyPrefix": "017",
            "custom": custom,
            "queryable": True,
            "retrieveable": True,
        }, name
        assert (summary["createable"], summary["updateable"], summary["deletable"]) == (
            False,
            False,
            False,
        ), name
        fields = {
            field["name"]: field for field in sf.restful(f"sobjects/{name}/describe")["fields"]
        }
        assert list(fields) == [
            "Id",
            "IsDeleted",
            parent,
            "CreatedById",
            "CreatedDate",
            "Field",
            "DataType",
            "OldValue",
            "NewValue",
        ], name
        assert not any(field["createable"] or field["updateable"] for field in fields.values())
        lookup = fields[parent]
        tracked = name.removesuffix("History").removesuffix("Field").removesuffix("__") + (
            "__c" if custom else ""
        )
        assert (lookup["type"], lookup["referenceTo"], lookup["relationshipName"]) == (
            "reference",
            [tracked],
            relationship,
        )
        assert (
            fields["CreatedById"]["referenceTo"],
            fields["CreatedById"]["relationshipName"],
        ) == (
            ["User"],
            "CreatedBy",
        )
        for value in ("OldValue", "NewValue"):
            assert (
                fields[value]["type"],
                fields[value]["soapType"],
                fields[value]["nillable"],
                fields[value]["filterable"],
            ) == ("anyType", "xsd:anyType", True, False)
        assert (fields["Field"]["type"], fields["Field"]["label"]) == ("picklist", "Changed Field")
        tracked_values = [item["value"] for item in fields["Field"]["picklistValues"]]
        assert tracked_values[0] == "created" and len(tracked_values) == 2

    children = sf.Billing_Invoice__c.describe()["childRelationships"]
    assert {
        "childSObject": "Billing_Invoice__History",
        "field": "ParentId",
        "relationshipName": "Histories",
        "cascadeDelete": True,
        "deprecatedAndHidden": False,
    } in children


def test_history_reads_as_salesforce_reads_it(sf: Salesforce, salesforce_sandbox: Sandbox) -> None:
    invoice = new_invoice(sf)
    sf.Billing_Invoice__c.update(invoice, {"Status__c": "Paid"})

    # A child subquery of the record, and the record's fields through Parent.
    nested = sf.query(
        "SELECT Document_Number__c, (SELECT Field, NewValue FROM Histories ORDER BY CreatedDate) "
        "FROM Billing_Invoice__c"
    )["records"][0]
    assert [(row["Field"], row["NewValue"]) for row in nested["Histories"]["records"]] == [
        ("created", None),
        ("Status__c", "Paid"),
    ]
    parent = rows(
        sf,
        "SELECT Parent.Document_Number__c FROM Billing_Invoice__History WHERE Field = 'Status__c'",
    )
    assert parent == [
        {
            "Parent": {
                "attributes": {
                    "type": "Billing_Invoice__c",
                    "url": f"/services/data/v59.0/sobjects/Billing_Invoice__c/{invoice}",
                },
                "Document_Number__c": "INV-0001",
            }
        }
    ]

    # OldValue and NewValue cannot be filtered on.
    refused = api(
        salesforce_sandbox,
        "GET",
        "query",
        params={"q": "SELECT Id FROM Billing_Invoice__History WHERE NewValue = 'Paid'"},
    )
    assert (refused.status_code, refused.json()[0]["errorCode"]) == (400, "INVALID_FIELD")

    # A Bulk API query writes them as text.
    text = sf.bulk2.Billing_Invoice__History.query(
        "SELECT Field, OldValue, NewValue FROM Billing_Invoice__History ORDER BY CreatedDate"
    )
    assert (
        "".join(text)
        == '"Field","OldValue","NewValue"\n"created","",""\n"Status__c","Open","Paid"\n'
    )


def test_tracking_a_field_is_enough_to_get_its_history(
    tmp_path: Path, salesforce_sandbox: Sandbox
) -> None:
    """``track_history: true`` on a field gives its object a history object; a formula field
    is never tracked (its value changes without a write)."""
    text = SCHEMA_FILE.read_text(encoding="utf-8")
    text = text.replace(
        "Email: {type: email, length: 80}", "Email: {type: email, length: 80, track_history: true}"
    )
    path = tmp_path / "schema.yaml"
    path.write_text(text, encoding="utf-8")

    schema = load_schema(path)

    contact = schema.objects["Contact"]
    assert (contact.history, [spec.name for spec in contact.tracked_fields]) == (
        "ContactHistory",
        ["Email"],
    )
    history = schema.objects["ContactHistory"]
    assert (history.history_of, history.parent_field.name, history.label) == (
        "Contact",
        "ContactId",
        "Contact History",
    )
    assert history.fields["DataType"].spec.values == ("Email", "Text")
    assert contact.child("Histories") is not None
    assert schema.objects["Billing_Invoice__c"].fields["Days_Overdue__c"] not in (
        schema.objects["Billing_Invoice__c"].tracked_fields
    )
    assert [obj.name for obj in salesforce_sandbox.org.schema.histories] == list(HISTORY_OBJECTS)


@pytest.mark.parametrize("size", [3, 200])
def test_a_batch_records_its_history_with_one_statement(
    sf: Salesforce, salesforce_sandbox: Sandbox, size: int
) -> None:
    org = salesforce_sandbox.org
    invoices = [
        result["id"]
        for result in collection(
            sf,
            "POST",
            "composite/sobjects",
            [
                {"attributes": {"type": "Billing_Invoice__c"}, "Status__c": "Open"}
                for _ in range(size)
            ],
        )
    ]
    sent: list[str] = []
    org.db.on_statement = sent.append
    try:
        collection(
            sf,
            "PATCH",
            "composite/sobjects",
            [
                {"attributes": {"type": "Billing_Invoice__c"}, "Id": invoice, "Status__c": "Paid"}
                for invoice in invoices
            ],
        )
    finally:
        org.db.on_statement = None

    assert [sql.split()[0] for sql in sent] == ["BEGIN", "SELECT", "UPDATE", "INSERT", "COMMIT"]
    assert '"Billing_Invoice__History"' in sent[3]
    assert len(changes(sf, "Billing_Invoice__History")) == size
