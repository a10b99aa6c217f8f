"""Tasks, users and owners in the sandbox, as Salesforce has them: a Task's polymorphic WhatId
(the key prefix says which object), its derived AccountId, OwnerId defaulting to the user who
creates it, TaskSubtype set on create only, and upserts by an external id."""

from __future__ import annotations

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.salesforce.auth import USER_ID


def _account(sf: Salesforce) -> str:
    return str(sf.Account.create({"Name": "Acme"})["id"])


def _invoice(sf: Salesforce, account: str) -> str:
    values = {"Name": "INV-000123", "Document_Number__c": "INV-000123", "Account__c": account}
    return str(sf.Billing_Invoice__c.create(values)["id"])


def test_the_integration_user_exists_and_owns_what_it_creates(sf: Salesforce) -> None:
    users = sf.query("SELECT Id, Name, Username, IsActive FROM User")["records"]
    assert [(u["Id"], u["Name"], u["IsActive"]) for u in users] == [
        (USER_ID, "Integration User", True)
    ]
    account = _account(sf)
    assert sf.Account.get(account)["OwnerId"] == USER_ID
    owner = sf.query(f"SELECT Owner.Name FROM Account WHERE Id = '{account}'")["records"][0]
    assert owner["Owner"]["Name"] == "Integration User"


def test_a_task_on_an_invoice_record_belongs_to_the_invoices_account(sf: Salesforce) -> None:
    account = _account(sf)
    invoice = _invoice(sf, account)
    manager = str(sf.User.create({"Username": "m@example.com", "LastName": "Manager"})["id"])
    task = sf.Task.create(
        {
            "Subject": "Collections: INV-000123 30 days overdue",
            "WhatId": invoice,
            "OwnerId": manager,
            "ActivityDate": "2026-05-03",
            "Priority": "High",
        }
    )["id"]
    got = sf.Task.get(task)
    assert (got["WhatId"], got["AccountId"], got["OwnerId"]) == (invoice, account, manager)
    assert (got["Status"], got["Priority"], got["TaskSubtype"], got["IsClosed"]) == (
        "Not Started",
        "High",
        "Task",
        False,
    )
    assert got["ActivityDate"] == "2026-05-03"
    sf.Task.update(task, {"Status": "Completed"})
    assert sf.Task.get(task)["IsClosed"] is True
    on_account = sf.query(f"SELECT Subject FROM Task WHERE AccountId = '{account}'")["records"]
    assert [t["Subject"] for t in on_account] == ["Collections: INV-000123 30 days overdue"]


def test_a_task_on_an_opportunity_or_an_account(sf: Salesforce) -> None:
    account = _account(sf)
    deal = sf.Opportunity.create(
        {
            "Name": "Deal",
            "StageName": "Prospecting",
            "CloseDate": "2026-06-30",
            "AccountId": account,
        }
    )["id"]
    on_deal = sf.Task.create({"Subject": "a", "WhatId": deal})["id"]
    on_account = sf.Task.create({"Subject": "b", "WhatId": account})["id"]
    assert sf.Task.get(on_deal)["AccountId"] == account
    assert sf.Task.get(on_account)["AccountId"] == account


def test_what_id_of_an_object_it_cannot_name_is_refused(sf: Salesforce) -> None:
    product = sf.Product2.create({"Name": "Seat"})["id"]
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Task.create({"Subject": "x", "WhatId": product})
    assert refused.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


def test_task_subtype_is_set_on_create_only(sf: Salesforce) -> None:
    task = sf.Task.create({"Subject": "x", "TaskSubtype": "Email"})["id"]
    assert sf.Task.get(task)["TaskSubtype"] == "Email"
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Task.update(task, {"TaskSubtype": "Task"})
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_an_upsert_by_connector_key_never_makes_a_second_task(sf: Salesforce) -> None:
    invoice = _invoice(sf, _account(sf))
    fields = {"Subject": "Collections: INV-000123 30 days overdue", "WhatId": invoice}
    first = sf.Task.upsert("Connector_Key__c/INV-000123:collections", fields)
    again = sf.Task.upsert("Connector_Key__c/INV-000123:collections", fields)
    assert (first, again) == (201, 200)  # created, then updated
    found = sf.query("SELECT Id FROM Task WHERE Connector_Key__c = 'INV-000123:collections'")
    assert found["totalSize"] == 1


def test_describe_reports_the_polymorphic_lookup(sf: Salesforce) -> None:
    fields = {f["name"]: f for f in sf.Task.describe()["fields"]}
    assert fields["WhatId"]["referenceTo"] == [
        "Account",
        "Opportunity",
        "Contract",
        "Billing_Invoice__c",
        "Billing_Subscription__c",
    ]
    assert fields["WhatId"]["polymorphicForeignKey"] is True
    assert fields["WhatId"]["relationshipName"] == "What"
    assert fields["AccountId"]["calculated"] is True
    assert (fields["TaskSubtype"]["createable"], fields["TaskSubtype"]["updateable"]) == (
        True,
        False,
    )
