"""The sandbox's sObject Collections (``/composite/sobjects``) through simple-salesforce.

Up to 200 records per call, one result per record in request order. Per-record errors use
``statusCode`` (not ``errorCode``); with ``allOrNone`` a failure rolls every record back and
the others report ALL_OR_NONE_OPERATION_ROLLED_BACK.
"""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.salesforce.ids import normalize_id
from sandbox.salesforce.server import Sandbox

BASE = "/services/data/v59.0"
ROLLED_BACK = {
    "success": False,
    "errors": [
        {
            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "message": "Record rolled back because not all records were valid and the request "
            "was using AllOrNone header",
            "fields": [],
        }
    ],
}
NAME_MISSING = {
    "statusCode": "REQUIRED_FIELD_MISSING",
    "message": "Required fields are missing: [Name]",
    "fields": ["Name"],
}
# A well-formed Account id that no record has.
UNKNOWN_ACCOUNT = "001000000000000AAA"


def record(sobject: str, **fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": sobject}, **fields}


def create(sf: Salesforce, records: list[dict[str, Any]], all_or_none: bool = False) -> list:
    answer = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": all_or_none, "records": records}
    )
    assert isinstance(answer, list)
    return answer


def update(sf: Salesforce, records: list[dict[str, Any]], all_or_none: bool = False) -> list:
    answer = sf.restful(
        "composite/sobjects", method="PATCH", json={"allOrNone": all_or_none, "records": records}
    )
    assert isinstance(answer, list)
    return answer


def upsert(sf: Salesforce, path: str, records: list[dict[str, Any]]) -> list:
    answer = sf.restful(
        f"composite/sobjects/{path}", method="PATCH", json={"allOrNone": False, "records": records}
    )
    assert isinstance(answer, list)
    return answer


def retrieve(sf: Salesforce, sobject: str, ids: list[str], fields: str) -> list:
    answer = sf.restful(f"composite/sobjects/{sobject}?ids={','.join(ids)}&fields={fields}")
    assert isinstance(answer, list)
    return answer


def ok(record_id: str) -> dict[str, Any]:
    return {"id": record_id, "success": True, "errors": []}


def ids_of(results: list[dict[str, Any]]) -> list[str]:
    return [result["id"] for result in results]


def account(record_id: str, name: str) -> dict[str, Any]:
    """A retrieved Account with fields Id and Name."""
    return {
        "attributes": {"type": "Account", "url": f"{BASE}/sobjects/Account/{record_id}"},
        "Id": record_id,
        "Name": name,
    }


def count(sf: Salesforce, sobject: str) -> int:
    return int(sf.query(f"SELECT COUNT() FROM {sobject}")["totalSize"])


def api_calls_used(sf: Salesforce) -> int:
    return sf.api_usage["api-usage"].used


def test_create_200_records_in_one_call(sf: Salesforce) -> None:
    sf.query("SELECT Id FROM Account")
    before = api_calls_used(sf)
    names = [f"Account {n:03d}" for n in range(200)]

    results = create(sf, [record("Account", Name=name) for name in names])

    assert api_calls_used(sf) == before + 1
    ids = ids_of(results)
    assert results == [ok(record_id) for record_id in ids]
    assert len(set(ids)) == 200
    for record_id in ids:
        assert record_id.startswith("001")
        assert normalize_id(record_id) == record_id
    assert retrieve(sf, "Account", ids, "Id,Name") == [
        account(record_id, name) for record_id, name in zip(ids, names, strict=True)
    ]
    assert count(sf, "Account") == 200


def test_201_records_are_refused(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        create(sf, [record("Account", Name=f"Account {n}") for n in range(201)])

    assert refused.value.status == 400
    assert refused.value.content == [
        {
            "message": "record limit reached. cannot submit more than 200 records into this call",
            "errorCode": "EXCEEDED_ID_LIMIT",
            "fields": [],
        }
    ]
    assert count(sf, "Account") == 0


def test_per_record_failures_without_all_or_none(sf: Salesforce) -> None:
    results = create(
        sf,
        [
            record("Account", Name="Acme"),
            record("Account", Industry="Banking"),
            record("Contact", LastName="Smith", Email="not an email"),
            record("Contact", LastName="Jones"),
        ],
    )

    account_id, contact_id = results[0]["id"], results[3]["id"]
    assert results == [
        ok(account_id),
        {"success": False, "errors": [NAME_MISSING]},
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "INVALID_EMAIL_ADDRESS",
                    "message": "Email: invalid email address: not an email",
                    "fields": ["Email"],
                }
            ],
        },
        ok(contact_id),
    ]
    assert (account_id[:3], contact_id[:3]) == ("001", "003")
    assert sf.Account.get(account_id)["Name"] == "Acme"
    assert sf.Contact.get(contact_id)["LastName"] == "Jones"
    assert (count(sf, "Account"), count(sf, "Contact")) == (1, 1)


def test_all_or_none_rolls_back_every_record(sf: Salesforce) -> None:
    results = create(
        sf,
        [
            record("Account", Name="Acme"),
            record("Account", Industry="Banking"),
            record("Contact", LastName="Jones"),
        ],
        all_or_none=True,
    )

    assert results == [ROLLED_BACK, {"success": False, "errors": [NAME_MISSING]}, ROLLED_BACK]
    assert (count(sf, "Account"), count(sf, "Contact")) == (0, 0)


def test_mixed_object_types_in_one_create(sf: Salesforce) -> None:
    results = create(
        sf,
        [
            record("Account", Name="Acme"),
            record("Contact", LastName="Smith"),
            record("Billing_Invoice__c", Document_Number__c="INV-1", Total__c=120.5),
            record("Product2", Name="Platform"),
            record("Account", Name="Globex"),
        ],
    )

    ids = ids_of(results)
    assert results == [ok(record_id) for record_id in ids]
    assert [record_id[:3] for record_id in ids] == ["001", "003", "a02", "01t", "001"]
    assert sf.Billing_Invoice__c.get(ids[2])["Total__c"] == 120.5
    assert retrieve(sf, "Account", [ids[0], ids[4]], "Id,Name") == [
        account(ids[0], "Acme"),
        account(ids[4], "Globex"),
    ]


def test_update_keeps_ids_and_reports_a_missing_id(sf: Salesforce) -> None:
    first, second = ids_of(
        create(sf, [record("Account", Name="Acme"), record("Account", Name="Globex")])
    )

    results = update(
        sf,
        [
            record("Account", Id=first, Name="Acme Corp"),
            record("Account", Name="No id"),
            record("Account", Id=second, Industry="Banking"),
        ],
    )

    assert results == [
        ok(first),
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "MISSING_ARGUMENT",
                    "message": "Id not specified in an update call",
                    "fields": ["Id"],
                }
            ],
        },
        ok(second),
    ]
    assert sf.Account.get(first)["Name"] == "Acme Corp"
    assert (sf.Account.get(second)["Name"], sf.Account.get(second)["Industry"]) == (
        "Globex",
        "Banking",
    )
    assert count(sf, "Account") == 2


def test_update_with_a_15_character_id_answers_the_18_character_id(sf: Salesforce) -> None:
    (account_id,) = ids_of(create(sf, [record("Account", Name="Acme")]))

    results = update(sf, [record("Account", Id=account_id[:15], Name="Acme Corp")])

    assert results == [ok(account_id)]
    assert sf.Account.get(account_id)["Name"] == "Acme Corp"


def test_update_takes_the_id_given_as_lowercase_id(sf: Salesforce) -> None:
    first, second = ids_of(
        create(sf, [record("Account", Name="Acme"), record("Account", Name="Globex")])
    )

    results = update(
        sf,
        [
            {"attributes": {"type": "Account"}, "id": first, "Name": "Acme Corp"},
            {"attributes": {"type": "Account"}, "id": second[:15], "Industry": "Banking"},
        ],
        all_or_none=True,
    )

    assert results == [ok(first), ok(second)]
    assert (sf.Account.get(first)["Name"], sf.Account.get(second)["Industry"]) == (
        "Acme Corp",
        "Banking",
    )
    assert count(sf, "Account") == 2


def test_create_refuses_an_id_given_as_lowercase_id(sf: Salesforce) -> None:
    (existing,) = ids_of(create(sf, [record("Account", Name="Acme")]))

    results = create(sf, [{"attributes": {"type": "Account"}, "id": existing, "Name": "Copy"}])

    assert results == [
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
                    "message": "cannot specify Id in an insert call",
                    "fields": ["Id"],
                }
            ],
        }
    ]
    assert count(sf, "Account") == 1


def test_update_with_an_id_of_another_object_is_a_malformed_id(sf: Salesforce) -> None:
    account_id, contact_id = ids_of(
        create(sf, [record("Account", Name="Acme"), record("Contact", LastName="Smith")])
    )

    results = update(
        sf,
        [
            record("Account", Id=contact_id, Name="Wrong"),
            record("Account", Id=account_id, Name="Acme Corp"),
        ],
    )

    # A failed SaveResult has no id.
    assert results == [
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "MALFORMED_ID",
                    "message": f"Account ID: id value of incorrect type: {contact_id}",
                    "fields": ["Id"],
                }
            ],
        },
        ok(account_id),
    ]
    assert sf.Contact.get(contact_id)["LastName"] == "Smith"
    assert sf.Account.get(account_id)["Name"] == "Acme Corp"


def test_upsert_by_external_id_creates_then_updates(sf: Salesforce) -> None:
    invoices = [
        record("Billing_Invoice__c", Document_Number__c="INV-1", Total__c=100),
        record("Billing_Invoice__c", Document_Number__c="INV-2", Total__c=200),
    ]

    first = upsert(sf, "Billing_Invoice__c/Document_Number__c", invoices)
    ids = ids_of(first)
    assert first == [{**ok(record_id), "created": True} for record_id in ids]
    assert [record_id[:3] for record_id in ids] == ["a02", "a02"]
    assert ids[0] != ids[1]

    second = upsert(sf, "Billing_Invoice__c/Document_Number__c", invoices)
    assert second == [{**ok(record_id), "created": False} for record_id in ids]
    assert count(sf, "Billing_Invoice__c") == 2

    third = upsert(
        sf,
        "Billing_Invoice__c/Document_Number__c",
        [record("Billing_Invoice__c", Document_Number__c="INV-2", Total__c=250)],
    )
    assert third == [{**ok(ids[1]), "created": False}]
    assert sf.Billing_Invoice__c.get(ids[1])["Total__c"] == 250.0
    assert sf.Billing_Invoice__c.get(ids[0])["Total__c"] == 100.0
    assert count(sf, "Billing_Invoice__c") == 2


def test_a_parent_named_by_its_external_id_is_looked_up(sf: Salesforce) -> None:
    """``Subscription__r: {Subscription_Id__c: ...}`` sets the lookup to the record of that
    external id; one that no record has refuses that record alone."""
    [subscription] = ids_of(
        upsert(
            sf,
            "Billing_Subscription__c/Subscription_Id__c",
            [record("Billing_Subscription__c", Subscription_Id__c="SUB-1")],
        )
    )
    usage = [
        record(
            "Billing_Usage__c", Usage_Key__c="U-1", Subscription__r={"Subscription_Id__c": "sub-1"}
        ),
        record(
            "Billing_Usage__c", Usage_Key__c="U-2", Subscription__r={"Subscription_Id__c": "SUB-9"}
        ),
    ]

    first, missing = upsert(sf, "Billing_Usage__c/Usage_Key__c", usage)

    assert first["success"] is True
    assert sf.Billing_Usage__c.get(first["id"])["Subscription__c"] == subscription
    assert missing == {
        "success": False,
        "errors": [
            {
                "statusCode": "INVALID_FIELD",
                "message": "Foreign key external ID: SUB-9 not found for field "
                "Subscription_Id__c in entity Billing_Subscription__c",
                "fields": ["Subscription__c"],
            }
        ],
    }
    assert count(sf, "Billing_Usage__c") == 1


def test_create_with_a_duplicate_external_id_is_a_duplicate_value(sf: Salesforce) -> None:
    (existing,) = ids_of(create(sf, [record("Billing_Invoice__c", Document_Number__c="INV-1")]))

    results = create(
        sf,
        [
            record("Billing_Invoice__c", Document_Number__c="INV-1"),
            record("Billing_Invoice__c", Document_Number__c="INV-2"),
        ],
    )

    assert results == [
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "DUPLICATE_VALUE",
                    "message": "duplicate value found: Document_Number__c duplicates value on "
                    f"record with id: {existing}",
                    "fields": ["Document_Number__c"],
                }
            ],
        },
        ok(results[1]["id"]),
    ]
    assert count(sf, "Billing_Invoice__c") == 2


def test_delete_with_one_bad_id(sf: Salesforce) -> None:
    keep, remove, gone = ids_of(
        create(
            sf,
            [
                record("Account", Name="Keep"),
                record("Account", Name="Remove"),
                record("Account", Name="Gone"),
            ],
        )
    )
    sf.Account.delete(gone)

    results = sf.restful(f"composite/sobjects?ids={remove},{gone}&allOrNone=false", method="DELETE")

    assert results == [
        ok(remove),
        {
            "id": gone,
            "success": False,
            "errors": [
                {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}
            ],
        },
    ]
    assert retrieve(sf, "Account", [keep, remove, gone], "Id,Name") == [
        account(keep, "Keep"),
        None,
        None,
    ]
    assert count(sf, "Account") == 1


def test_deleting_an_account_clears_the_amendments_of_its_deals(sf: Salesforce) -> None:
    (customer,) = ids_of(create(sf, [record("Account", Name="Customer")]))
    deal = {"StageName": "Closed Won", "CloseDate": "2024-01-31", "AccountId": customer}
    (original,) = ids_of(create(sf, [record("Opportunity", Name="Original", **deal)]))
    (upgrade,) = ids_of(
        create(
            sf,
            [record("Opportunity", Name="Upgrade", Amends_Opportunity__c=original, **deal)],
        )
    )

    assert sf.restful(f"composite/sobjects?ids={customer}", method="DELETE") == [ok(customer)]

    # The cascade deletes both deals; deleting the original first cleared the upgrade's lookup,
    # and deleting the upgrade afterwards keeps that.
    rows = sf.query_all(
        "SELECT Id, IsDeleted, Amends_Opportunity__c FROM Opportunity ORDER BY Id",
        include_deleted=True,
    )["records"]
    assert [(row["Id"], row["IsDeleted"], row["Amends_Opportunity__c"]) for row in rows] == [
        (original, True, None),
        (upgrade, True, None),
    ]


def test_line_items_of_one_call_roll_up_one_by_one(
    sf: Salesforce, salesforce_sandbox: Sandbox
) -> None:
    org = salesforce_sandbox.org
    product = org.create("Product2", {"Name": "Seat", "ProductCode": "SEAT", "IsActive": True})
    book = org.meta("standard_pricebook")
    entry = org.create(
        "PricebookEntry",
        {"Pricebook2Id": book, "Product2Id": product, "UnitPrice": 1_000_000, "IsActive": True},
    )
    deal = org.create(
        "Opportunity", {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2024-01-31"}
    )
    line = {"OpportunityId": deal, "PricebookEntryId": entry}

    # Each item alone is within range; the second one takes the opportunity's Amount past it,
    # so it alone fails, and the third one adds to the first.
    results = create(
        sf,
        [
            record("OpportunityLineItem", Quantity=600_000_000_000, **line),
            record("OpportunityLineItem", Quantity=600_000_000_000, **line),
            record("OpportunityLineItem", Quantity=2, **line),
        ],
    )

    assert results == [
        ok(results[0]["id"]),
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "NUMBER_OUTSIDE_VALID_RANGE",
                    "message": "Amount: value outside of valid range on numeric field: 1.2e+18",
                    "fields": ["Amount"],
                }
            ],
        },
        ok(results[2]["id"]),
    ]
    stored = sf.restful(f"sobjects/Opportunity/{deal}")
    assert isinstance(stored, dict)
    assert (stored["Amount"], stored["HasOpportunityLineItem"]) == (6.00000000002e17, True)
    assert count(sf, "OpportunityLineItem") == 2


def test_retrieve_answers_null_for_unknown_and_deleted_ids(sf: Salesforce) -> None:
    first, deleted, last = ids_of(
        create(
            sf,
            [
                record("Account", Name="First"),
                record("Account", Name="Deleted"),
                record("Account", Name="Last"),
            ],
        )
    )
    sf.Account.delete(deleted)

    results = retrieve(sf, "Account", [last, UNKNOWN_ACCOUNT, deleted, first], "Id,Name")

    assert results == [account(last, "Last"), None, None, account(first, "First")]


def test_ids_are_not_reused_after_an_all_or_none_rollback(sf: Salesforce) -> None:
    (earlier,) = ids_of(create(sf, [record("Billing_Invoice__c", Document_Number__c="INV-0")]))

    # The second record's DUPLICATE_VALUE error names the id the first one was given before
    # the rollback.
    results = create(
        sf,
        [
            record("Billing_Invoice__c", Document_Number__c="INV-1"),
            record("Billing_Invoice__c", Document_Number__c="INV-1"),
        ],
        all_or_none=True,
    )
    prefix = "duplicate value found: Document_Number__c duplicates value on record with id: "
    message = results[1]["errors"][0]["message"]
    assert message.startswith(prefix)
    rolled_back = message.removeprefix(prefix)
    assert rolled_back.startswith("a02")
    assert results == [
        ROLLED_BACK,
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "DUPLICATE_VALUE",
                    "message": prefix + rolled_back,
                    "fields": ["Document_Number__c"],
                }
            ],
        },
    ]
    assert retrieve(sf, "Billing_Invoice__c", [rolled_back], "Id") == [None]

    (fresh,) = ids_of(create(sf, [record("Billing_Invoice__c", Document_Number__c="INV-1")]))

    assert fresh not in (earlier, rolled_back)
    assert fresh.startswith("a02")
    assert count(sf, "Billing_Invoice__c") == 2


def test_each_request_is_one_api_call(sf: Salesforce) -> None:
    sf.query("SELECT Id FROM Account")
    used = api_calls_used(sf)

    ids = ids_of(create(sf, [record("Account", Name=f"Account {n}") for n in range(5)]))
    assert api_calls_used(sf) == used + 1

    update(sf, [record("Account", Id=record_id, Industry="Energy") for record_id in ids])
    assert api_calls_used(sf) == used + 2

    upsert(
        sf,
        "Billing_Invoice__c/Document_Number__c",
        [record("Billing_Invoice__c", Document_Number__c=f"INV-{n}") for n in range(5)],
    )
    assert api_calls_used(sf) == used + 3

    retrieve(sf, "Account", ids, "Id,Name")
    assert api_calls_used(sf) == used + 4

    sf.restful(f"composite/sobjects?ids={','.join(ids)}&allOrNone=false", method="DELETE")
    assert api_calls_used(sf) == used + 5
    assert count(sf, "Account") == 0
