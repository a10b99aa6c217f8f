"""The sandbox's Composite resource (``POST /composite``) through simple-salesforce.

Up to 25 subrequests (at most 5 queries) run in order as one API call; later subrequests use
earlier results through ``@{referenceId.path}``. With ``allOrNone`` one failure rolls back
everything and the other subrequests answer 400 PROCESSING_HALTED.
"""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.salesforce.ids import normalize_id

BASE = "/services/data/v59.0"
HALTED = [
    {
        "errorCode": "PROCESSING_HALTED",
        "message": "The transaction was rolled back since another operation in the same "
        "transaction failed.",
    }
]


def composite(sf: Salesforce, requests: list[dict[str, Any]], all_or_none: bool) -> list[dict]:
    answer = sf.restful(
        "composite",
        method="POST",
        json={"allOrNone": all_or_none, "compositeRequest": requests},
    )
    assert isinstance(answer, dict)
    assert list(answer) == ["compositeResponse"]
    return answer["compositeResponse"]


def post(reference: str, sobject: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": f"{BASE}/sobjects/{sobject}",
        "referenceId": reference,
        "body": body,
    }


def created(reference: str, sobject: str, record_id: str) -> dict[str, Any]:
    """The subresponse of a successful create."""
    return {
        "body": {"id": record_id, "success": True, "errors": []},
        "httpHeaders": {"Location": f"{BASE}/sobjects/{sobject}/{record_id}"},
        "httpStatusCode": 201,
        "referenceId": reference,
    }


def halted(reference: str) -> dict[str, Any]:
    return {"body": HALTED, "httpHeaders": {}, "httpStatusCode": 400, "referenceId": reference}


def new_id(answer: dict[str, Any], prefix: str) -> str:
    record_id = answer["body"]["id"]
    assert isinstance(record_id, str)
    assert record_id.startswith(prefix)
    assert normalize_id(record_id) == record_id
    return record_id


def count(sf: Salesforce, sobject: str) -> int:
    return int(sf.query(f"SELECT COUNT() FROM {sobject}")["totalSize"])


def api_calls_used(sf: Salesforce) -> int:
    return sf.api_usage["api-usage"].used


def test_account_then_contact_through_a_reference(sf: Salesforce) -> None:
    answers = composite(
        sf,
        [
            post("acc", "Account", {"Name": "Acme", "Industry": "Banking"}),
            post("con", "Contact", {"LastName": "Smith", "AccountId": "@{acc.id}"}),
        ],
        all_or_none=True,
    )

    account_id = new_id(answers[0], "001")
    contact_id = new_id(answers[1], "003")
    assert answers == [
        created("acc", "Account", account_id),
        created("con", "Contact", contact_id),
    ]
    contact = sf.Contact.get(contact_id)
    assert (contact["LastName"], contact["AccountId"]) == ("Smith", account_id)
    assert sf.Account.get(account_id)["Name"] == "Acme"


def test_opportunity_line_item_chain_with_query_reference(sf: Salesforce) -> None:
    standard = sf.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")["records"]
    assert len(standard) == 1
    book = standard[0]["Id"]

    answers = composite(
        sf,
        [
            post(
                "product", "Product2", {"Name": "Platform", "ProductCode": "PLT", "IsActive": True}
            ),
            post(
                "entry",
                "PricebookEntry",
                {
                    "Pricebook2Id": book,
                    "Product2Id": "@{product.id}",
                    "UnitPrice": 100,
                    "IsActive": True,
                },
            ),
            post(
                "opp",
                "Opportunity",
                {
                    "Name": "Big deal",
                    "StageName": "Prospecting",
                    "CloseDate": "2024-06-30",
                    "Pricebook2Id": book,
                },
            ),
            post(
                "item",
                "OpportunityLineItem",
                {"OpportunityId": "@{opp.id}", "PricebookEntryId": "@{entry.id}", "Quantity": 3},
            ),
            {
                "method": "GET",
                "url": f"{BASE}/query/?q=SELECT+Id,Quantity,TotalPrice+FROM+OpportunityLineItem"
                "+WHERE+OpportunityId+=+'@{opp.id}'",
                "referenceId": "items",
            },
            {
                "method": "PATCH",
                "url": f"{BASE}/sobjects/OpportunityLineItem/@{{items.records[0].Id}}",
                "referenceId": "bump",
                "body": {"Quantity": 4},
            },
            {
                "method": "GET",
                "url": f"{BASE}/sobjects/Opportunity/@{{opp.id}}?fields=Amount,HasOpportunityLineItem",
                "referenceId": "total",
            },
        ],
        all_or_none=True,
    )

    product_id = new_id(answers[0], "01t")
    entry_id = new_id(answers[1], "01u")
    opportunity_id = new_id(answers[2], "006")
    item_id = new_id(answers[3], "00k")
    assert answers == [
        created("product", "Product2", product_id),
        created("entry", "PricebookEntry", entry_id),
        created("opp", "Opportunity", opportunity_id),
        created("item", "OpportunityLineItem", item_id),
        {
            "body": {
                "totalSize": 1,
                "done": True,
                "records": [
                    {
                        "attributes": {
                            "type": "OpportunityLineItem",
                            "url": f"{BASE}/sobjects/OpportunityLineItem/{item_id}",
                        },
                        "Id": item_id,
                        "Quantity": 3.0,
                        "TotalPrice": 300.0,
                    }
                ],
            },
            "httpHeaders": {},
            "httpStatusCode": 200,
            "referenceId": "items",
        },
        {"body": None, "httpHeaders": {}, "httpStatusCode": 204, "referenceId": "bump"},
        {
            "body": {
                "attributes": {
                    "type": "Opportunity",
                    "url": f"{BASE}/sobjects/Opportunity/{opportunity_id}",
                },
                "Amount": 400.0,
                "HasOpportunityLineItem": True,
            },
            "httpHeaders": {},
            "httpStatusCode": 200,
            "referenceId": "total",
        },
    ]
    item = sf.OpportunityLineItem.get(item_id)
    assert (item["Product2Id"], item["PricebookEntryId"], item["Quantity"]) == (
        product_id,
        entry_id,
        4.0,
    )


def test_upsert_subrequest_location_names_the_object(sf: Salesforce) -> None:
    answers = composite(
        sf,
        [
            {
                "method": "PATCH",
                "url": f"{BASE}/sobjects/Billing_Invoice__c/Document_Number__c/INV-1",
                "referenceId": "invoice",
                "body": {"Total__c": 25},
            }
        ],
        all_or_none=False,
    )

    invoice_id = new_id(answers[0], "a02")
    assert answers == [
        {
            "body": {"id": invoice_id, "success": True, "errors": [], "created": True},
            "httpHeaders": {"Location": f"{BASE}/sobjects/Billing_Invoice__c/{invoice_id}"},
            "httpStatusCode": 201,
            "referenceId": "invoice",
        }
    ]


def test_all_or_none_failure_persists_nothing(sf: Salesforce) -> None:
    answers = composite(
        sf,
        [
            post("acc", "Account", {"Name": "Acme"}),
            post("con", "Contact", {"FirstName": "No last name", "AccountId": "@{acc.id}"}),
            post(
                "opp",
                "Opportunity",
                {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2024-06-30"},
            ),
        ],
        all_or_none=True,
    )

    assert answers == [
        halted("acc"),
        {
            "body": [
                {
                    "message": "Required fields are missing: [LastName]",
                    "errorCode": "REQUIRED_FIELD_MISSING",
                    "fields": ["LastName"],
                }
            ],
            "httpHeaders": {},
            "httpStatusCode": 400,
            "referenceId": "con",
        },
        halted("opp"),
    ]
    assert (count(sf, "Account"), count(sf, "Contact"), count(sf, "Opportunity")) == (0, 0, 0)


def test_without_all_or_none_the_others_persist(sf: Salesforce) -> None:
    answers = composite(
        sf,
        [
            post("acc", "Account", {"Name": "Acme"}),
            post("bad", "Contact", {"FirstName": "No last name"}),
            post("orphan", "Contact", {"LastName": "Orphan", "AccountId": "@{bad.id}"}),
            post(
                "opp",
                "Opportunity",
                {
                    "Name": "Deal",
                    "StageName": "Prospecting",
                    "CloseDate": "2024-06-30",
                    "AccountId": "@{acc.id}",
                },
            ),
        ],
        all_or_none=False,
    )

    account_id = new_id(answers[0], "001")
    opportunity_id = new_id(answers[3], "006")
    assert answers == [
        created("acc", "Account", account_id),
        {
            "body": [
                {
                    "message": "Required fields are missing: [LastName]",
                    "errorCode": "REQUIRED_FIELD_MISSING",
                    "fields": ["LastName"],
                }
            ],
            "httpHeaders": {},
            "httpStatusCode": 400,
            "referenceId": "bad",
        },
        {
            "body": [
                {
                    "message": "Invalid reference specified. No value for bad.id found in bad. "
                    "Provided referenceId (bad) must match a previous subrequest.",
                    "errorCode": "PROCESSING_HALTED",
                    "fields": [],
                }
            ],
            "httpHeaders": {},
            "httpStatusCode": 400,
            "referenceId": "orphan",
        },
        created("opp", "Opportunity", opportunity_id),
    ]
    assert sf.Opportunity.get(opportunity_id)["AccountId"] == account_id
    assert (count(sf, "Account"), count(sf, "Contact"), count(sf, "Opportunity")) == (1, 0, 1)


def test_reference_to_a_missing_query_row_halts_that_subrequest(sf: Salesforce) -> None:
    answers = composite(
        sf,
        [
            {
                "method": "GET",
                "url": f"{BASE}/query/?q=SELECT+Id+FROM+Account",
                "referenceId": "accounts",
            },
            post("con", "Contact", {"LastName": "Smith", "AccountId": "@{accounts.records[0].Id}"}),
        ],
        all_or_none=False,
    )

    assert answers == [
        {
            "body": {"totalSize": 0, "done": True, "records": []},
            "httpHeaders": {},
            "httpStatusCode": 200,
            "referenceId": "accounts",
        },
        {
            "body": [
                {
                    "message": "Invalid reference specified. No value for "
                    "accounts.records[0].Id found in accounts. Provided referenceId (accounts) "
                    "must match a previous subrequest.",
                    "errorCode": "PROCESSING_HALTED",
                    "fields": [],
                }
            ],
            "httpHeaders": {},
            "httpStatusCode": 400,
            "referenceId": "con",
        },
    ]
    assert count(sf, "Contact") == 0


def test_25_subrequests_are_allowed(sf: Salesforce) -> None:
    answers = composite(
        sf,
        [post(f"acc{n}", "Account", {"Name": f"Account {n}"}) for n in range(25)],
        all_or_none=True,
    )

    assert [answer["httpStatusCode"] for answer in answers] == [201] * 25
    assert [answer["referenceId"] for answer in answers] == [f"acc{n}" for n in range(25)]
    assert count(sf, "Account") == 25


def test_26_subrequests_are_refused(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        composite(
            sf,
            [post(f"acc{n}", "Account", {"Name": f"Account {n}"}) for n in range(26)],
            all_or_none=False,
        )

    assert refused.value.status == 400
    assert refused.value.content == [
        {
            "message": "Limit Exceeded: max 25 subrequests",
            "errorCode": "INVALID_API_INPUT",
            "fields": [],
        }
    ]
    assert count(sf, "Account") == 0


def query(reference: str) -> dict[str, Any]:
    return {
        "method": "GET",
        "url": f"{BASE}/query/?q=SELECT+Id+FROM+Account",
        "referenceId": reference,
    }


def test_five_queries_are_allowed(sf: Salesforce) -> None:
    answers = composite(sf, [query(f"q{n}") for n in range(5)], all_or_none=False)

    assert [answer["httpStatusCode"] for answer in answers] == [200] * 5


def test_six_queries_are_refused(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        composite(
            sf,
            [post("acc", "Account", {"Name": "Acme"}), *(query(f"q{n}") for n in range(6))],
            all_or_none=False,
        )

    assert refused.value.status == 400
    assert refused.value.content == [
        {
            "message": "Limit Exceeded: max 5 query subrequests",
            "errorCode": "INVALID_API_INPUT",
            "fields": [],
        }
    ]
    assert count(sf, "Account") == 0


def test_duplicate_reference_ids_are_refused(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        composite(
            sf,
            [
                post("same", "Account", {"Name": "One"}),
                post("same", "Account", {"Name": "Two"}),
            ],
            all_or_none=False,
        )

    assert refused.value.status == 400
    assert refused.value.content == [
        {
            "message": "each subrequest needs a unique referenceId of letters, digits and _",
            "errorCode": "INVALID_API_INPUT",
            "fields": [],
        }
    ]
    assert count(sf, "Account") == 0


def test_ids_are_not_reused_after_a_rolled_back_composite(sf: Salesforce) -> None:
    # The failing subrequest's DUPLICATE_VALUE error names the id the first one was given
    # before the rollback.
    answers = composite(
        sf,
        [
            post("first", "Billing_Invoice__c", {"Document_Number__c": "INV-1"}),
            post("second", "Billing_Invoice__c", {"Document_Number__c": "INV-1"}),
        ],
        all_or_none=True,
    )

    message = answers[1]["body"][0]["message"]
    prefix = "duplicate value found: Document_Number__c duplicates value on record with id: "
    assert message.startswith(prefix)
    rolled_back = message.removeprefix(prefix)
    assert rolled_back.startswith("a02")
    assert answers == [
        halted("first"),
        {
            "body": [
                {
                    "message": prefix + rolled_back,
                    "errorCode": "DUPLICATE_VALUE",
                    "fields": ["Document_Number__c"],
                }
            ],
            "httpHeaders": {},
            "httpStatusCode": 400,
            "referenceId": "second",
        },
    ]
    assert count(sf, "Billing_Invoice__c") == 0

    again = composite(
        sf,
        [post("again", "Billing_Invoice__c", {"Document_Number__c": "INV-1"})],
        all_or_none=True,
    )
    fresh = new_id(again[0], "a02")
    assert fresh != rolled_back
    assert again == [created("again", "Billing_Invoice__c", fresh)]


def test_composite_counts_as_one_api_call(sf: Salesforce) -> None:
    sf.query("SELECT Id FROM Account")
    before = api_calls_used(sf)

    answers = composite(
        sf,
        [
            post("acc", "Account", {"Name": "Acme"}),
            post("con", "Contact", {"LastName": "Smith", "AccountId": "@{acc.id}"}),
            query("accounts"),
            {"method": "GET", "url": f"{BASE}/sobjects/Account/@{{acc.id}}", "referenceId": "get"},
            {
                "method": "PATCH",
                "url": f"{BASE}/sobjects/Account/@{{acc.id}}",
                "referenceId": "rename",
                "body": {"Name": "Acme Corp"},
            },
        ],
        all_or_none=False,
    )

    assert [answer["httpStatusCode"] for answer in answers] == [201, 201, 200, 200, 204]
    assert api_calls_used(sf) == before + 1
    sf.query("SELECT Id FROM Account")
    assert api_calls_used(sf) == before + 2
