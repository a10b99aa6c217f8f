"""The sandbox's REST API end to end, through simple-salesforce and plain HTTPS requests.

Records are written on a frozen org clock (``clock`` fixture) so that every stamp is an exact,
known value; the clock moves only when a test advances it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.util import Usage

from sandbox.salesforce.auth import USER_ID
from sandbox.salesforce.ids import make_id, normalize_id
from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.testing import connect, trusting_session

MOMENT = datetime(2025, 3, 14, 15, 9, 26, 535000, tzinfo=UTC)
STAMP = "2025-03-14T15:09:26.535+0000"
BASE = "/services/data/v59.0"
SCHEMA_OBJECTS = [
    "Account",
    "Contact",
    "Product2",
    "Pricebook2",
    "PricebookEntry",
    "Opportunity",
    "OpportunityLineItem",
    "Contract",
    "Billing_Subscription__c",
    "Billing_Invoice__c",
    "Billing_Usage__c",
    "Task",
    "User",
    "ContentDocument",
    "ContentVersion",
    "ContentDocumentLink",
    # the field history objects of those with a tracked field
    "AccountHistory",
    "OpportunityFieldHistory",
    "Billing_Subscription__History",
    "Billing_Invoice__History",
]
SYSTEM_FIELDS = ["Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp"]


# ---- helpers -----------------------------------------------------------------------------


class Clock:
    """A settable org clock."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@pytest.fixture
def clock(salesforce_sandbox: Sandbox) -> Clock:
    frozen = Clock(MOMENT)
    salesforce_sandbox.org.clock = frozen
    return frozen


def api(sandbox: Sandbox, method: str, path: str, **kwargs: Any) -> requests.Response:
    """A plain HTTPS call on the admin session (``path`` from ``/services/...``)."""
    headers = {"Authorization": f"Bearer {sandbox.session_id}", **kwargs.pop("headers", {})}
    with trusting_session(sandbox) as session:
        return session.request(method, sandbox.instance_url + path, headers=headers, **kwargs)


def errors(code: str, message: str, fields: list[str] | None = None) -> list[dict[str, Any]]:
    return [{"message": message, "errorCode": code, "fields": fields or []}]


def attributes(obj: str, record_id: str, version: str = "59.0") -> dict[str, str]:
    return {"type": obj, "url": f"/services/data/v{version}/sobjects/{obj}/{record_id}"}


def is_valid_id(record_id: str, prefix: str) -> bool:
    return (
        len(record_id) == 18
        and record_id.startswith(prefix)
        and normalize_id(record_id[:15]) == record_id
    )


def create_account(sf: Salesforce, **fields: Any) -> str:
    return str(sf.Account.create({"Name": "Acme", **fields})["id"])


def create_opportunity(sf: Salesforce, **fields: Any) -> str:
    values = {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2025-06-30", **fields}
    return str(sf.Opportunity.create(values)["id"])


def standard_pricebook(sf: Salesforce) -> str:
    result = sf.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")
    return str(result["records"][0]["Id"])


def create_product(sf: Salesforce, name: str = "Seats", code: str = "SEAT") -> str:
    return str(sf.Product2.create({"Name": name, "ProductCode": code, "IsActive": True})["id"])


def create_price(sf: Salesforce, product: str, book: str, unit_price: float) -> str:
    entry = {"Pricebook2Id": book, "Product2Id": product, "UnitPrice": unit_price, "IsActive": True}
    return str(sf.PricebookEntry.create(entry)["id"])


def priced_product(sf: Salesforce, unit_price: float = 100.0, **product: str) -> tuple[str, str]:
    """A product with a standard price: (product id, standard price book entry id)."""
    product_id = create_product(sf, **product)
    return product_id, create_price(sf, product_id, standard_pricebook(sf), unit_price)


def refusal(error: pytest.ExceptionInfo[SalesforceError]) -> tuple[int, Any]:
    return error.value.status, error.value.content


# ---- create and read ---------------------------------------------------------------------


def test_create_answers_201_with_id_success_and_no_errors(
    salesforce_sandbox: Sandbox,
) -> None:
    response = api(salesforce_sandbox, "POST", f"{BASE}/sobjects/Account/", json={"Name": "Acme"})

    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body == {"id": body["id"], "success": True, "errors": []}
    assert is_valid_id(body["id"], "001")


@pytest.mark.parametrize(
    ("obj", "values", "prefix"),
    [
        ("Account", {"Name": "Acme"}, "001"),
        ("Contact", {"LastName": "Lovelace"}, "003"),
        ("Product2", {"Name": "Seats"}, "01t"),
        ("Pricebook2", {"Name": "Partners"}, "01s"),
        ("Billing_Subscription__c", {"Subscription_Id__c": "SUB-1"}, "a01"),
        ("Billing_Invoice__c", {"Document_Number__c": "INV-1"}, "a02"),
    ],
)
def test_created_ids_carry_the_key_prefix_and_a_valid_checksum(
    sf: Salesforce, obj: str, values: dict[str, Any], prefix: str
) -> None:
    created = getattr(sf, obj).create(values)

    assert created == {"id": created["id"], "success": True, "errors": []}
    assert is_valid_id(created["id"], prefix)


def test_get_returns_attributes_and_every_field(sf: Salesforce, clock: Clock) -> None:
    account = create_account(sf, Industry="Banking", BillingCity="Paris", MRR__c=1250.5)

    assert sf.Account.get(account) == {
        "attributes": attributes("Account", account),
        "Id": account,
        "IsDeleted": False,
        "CreatedDate": STAMP,
        "LastModifiedDate": STAMP,
        "SystemModstamp": STAMP,
        "Name": "Acme",
        "OwnerId": USER_ID,  # the user who created it
        "Type": None,
        "Industry": "Banking",
        "BillingStreet": None,
        "BillingCity": "Paris",
        "BillingState": None,
        "BillingPostalCode": None,
        "BillingCountry": None,
        "Phone": None,
        "Website": None,
        "Description": None,
        "CurrencyIsoCode": "USD",
        "Tax_Id__c": None,
        "Billing_Email__c": None,
        "MRR__c": 1250.5,
        "Billing_Status__c": None,
        "Balance_Due__c": None,
        "Overdue_Amount__c": None,
        "Next_Invoice_Date__c": None,
    }


def test_get_by_15_character_id_answers_the_18_character_id(sf: Salesforce) -> None:
    account = create_account(sf)

    assert sf.Account.get(account[:15])["Id"] == account


def test_fields_parameter_selects_the_fields(sf: Salesforce) -> None:
    account = create_account(sf, Industry="Banking")

    record = sf.restful(f"sobjects/Account/{account}", params={"fields": "Industry, name"})

    assert record == {
        "attributes": attributes("Account", account),
        "Industry": "Banking",
        "Name": "Acme",
    }


def test_fields_parameter_with_an_unknown_field_is_invalid_field(sf: Salesforce) -> None:
    account = create_account(sf)

    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful(f"sobjects/Account/{account}", params={"fields": "Name,Foo"})

    assert refusal(caught) == (
        400,
        errors("INVALID_FIELD", "No such column 'Foo' on entity 'Account'"),
    )


def test_get_of_an_unknown_id_is_not_found(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Account.get(make_id("001", 999))

    assert refusal(caught) == (404, errors("NOT_FOUND", "The requested resource does not exist"))


# ---- update and delete -------------------------------------------------------------------


def test_update_answers_204_and_stamps_the_modification(
    sf: Salesforce, salesforce_sandbox: Sandbox, clock: Clock
) -> None:
    account = create_account(sf)
    clock.advance(minutes=5, seconds=1.25)

    response = api(
        salesforce_sandbox,
        "PATCH",
        f"{BASE}/sobjects/Account/{account}",
        json={"Industry": "Energy", "Website": "https://acme.example"},
    )

    assert (response.status_code, response.content) == (204, b"")
    record = sf.Account.get(account)
    assert {key: record[key] for key in ("Industry", "Website", "Name")} == {
        "Industry": "Energy",
        "Website": "https://acme.example",
        "Name": "Acme",
    }
    assert (record["CreatedDate"], record["LastModifiedDate"], record["SystemModstamp"]) == (
        STAMP,
        "2025-03-14T15:14:27.785+0000",
        "2025-03-14T15:14:27.785+0000",
    )


def test_update_through_simple_salesforce_returns_204(sf: Salesforce) -> None:
    account = create_account(sf)

    assert sf.Account.update(account, {"Name": "Acme Corp"}) == 204
    assert sf.Account.get(account)["Name"] == "Acme Corp"


def test_update_can_clear_a_field_with_null(sf: Salesforce) -> None:
    account = create_account(sf, Industry="Banking")

    sf.Account.update(account, {"Industry": None})

    assert sf.Account.get(account)["Industry"] is None


def test_deleted_record_answers_entity_is_deleted(sf: Salesforce) -> None:
    account = create_account(sf)

    assert sf.Account.delete(account) == 204

    deleted = errors("ENTITY_IS_DELETED", "entity is deleted")
    with pytest.raises(SalesforceResourceNotFound) as on_get:
        sf.Account.get(account)
    assert refusal(on_get) == (404, deleted)
    with pytest.raises(SalesforceResourceNotFound) as on_update:
        sf.Account.update(account, {"Name": "Back"})
    assert refusal(on_update) == (404, deleted)
    with pytest.raises(SalesforceResourceNotFound) as on_delete:
        sf.Account.delete(account)
    assert refusal(on_delete) == (404, deleted)


def test_delete_answers_204_without_a_body(sf: Salesforce, salesforce_sandbox: Sandbox) -> None:
    account = create_account(sf)

    response = api(salesforce_sandbox, "DELETE", f"{BASE}/sobjects/Account/{account}")

    assert (response.status_code, response.content) == (204, b"")


# ---- upsert and unique external ids ------------------------------------------------------


def test_upsert_by_external_id_creates_then_updates(sf: Salesforce) -> None:
    invoices = sf.Billing_Invoice__c
    first = invoices.upsert(
        "Document_Number__c/INV-0001", {"Total__c": 100, "Status__c": "Open"}, raw_response=True
    )
    second = invoices.upsert(
        "Document_Number__c/INV-0001", {"Total__c": 120.5, "Status__c": "Paid"}, raw_response=True
    )

    invoice = first.json()["id"]
    assert (first.status_code, first.json()) == (
        201,
        {"id": invoice, "success": True, "errors": [], "created": True},
    )
    assert (second.status_code, second.json()) == (
        200,
        {"id": invoice, "success": True, "errors": [], "created": False},
    )
    assert is_valid_id(invoice, "a02")
    record = invoices.get(invoice)
    assert {
        key: record[key] for key in ("Document_Number__c", "Total__c", "Status__c", "Name")
    } == {
        "Document_Number__c": "INV-0001",
        "Total__c": 120.5,
        "Status__c": "Paid",
        "Name": invoice,
    }
    count = sf.query("SELECT COUNT() FROM Billing_Invoice__c")
    assert count == {"totalSize": 1, "done": True, "records": []}


def test_upsert_returns_the_status_code_by_default(sf: Salesforce) -> None:
    assert sf.Billing_Invoice__c.upsert("Document_Number__c/INV-7", {"Total__c": 1}) == 201
    assert sf.Billing_Invoice__c.upsert("Document_Number__c/INV-7", {"Total__c": 2}) == 200


def test_record_by_external_id(sf: Salesforce) -> None:
    invoice = sf.Billing_Invoice__c.create({"Document_Number__c": "INV-9", "Total__c": 9})["id"]

    record = sf.Billing_Invoice__c.get_by_custom_id("Document_Number__c", "INV-9")

    assert (record["attributes"], record["Id"], record["Total__c"]) == (
        attributes("Billing_Invoice__c", invoice),
        invoice,
        9.0,
    )


@pytest.mark.parametrize("field", ["Foo__c", "Currency__c"])
def test_upsert_on_a_field_that_is_not_an_external_id_is_not_found(
    sf: Salesforce, field: str
) -> None:
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Billing_Invoice__c.upsert(f"{field}/X", {"Total__c": 1})

    assert refusal(caught) == (
        404,
        errors(
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {field}",
        ),
    )


def test_a_second_record_with_the_same_external_id_is_duplicate_value(sf: Salesforce) -> None:
    first = sf.Billing_Invoice__c.create({"Document_Number__c": "INV-1"})["id"]

    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Billing_Invoice__c.create({"Document_Number__c": "INV-1"})

    assert refusal(caught) == (
        400,
        errors(
            "DUPLICATE_VALUE",
            f"duplicate value found: Document_Number__c duplicates value on record with id: "
            f"{first}",
            ["Document_Number__c"],
        ),
    )


def test_updating_a_record_to_a_taken_external_id_is_duplicate_value(sf: Salesforce) -> None:
    first = sf.Billing_Invoice__c.create({"Document_Number__c": "INV-1"})["id"]
    second = sf.Billing_Invoice__c.create({"Document_Number__c": "INV-2"})["id"]

    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Billing_Invoice__c.update(second, {"Document_Number__c": "INV-1"})

    assert caught.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    assert caught.value.content[0]["message"].endswith(first)
    assert sf.Billing_Invoice__c.get(second)["Document_Number__c"] == "INV-2"


# ---- derived fields ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "is_won", "is_closed", "probability"),
    [
        ("Prospecting", False, False, 10.0),
        ("Value Proposition", False, False, 50.0),
        ("Negotiation/Review", False, False, 90.0),
        ("Closed Won", True, True, 100.0),
        ("Closed Lost", False, True, 0.0),
    ],
)
def test_stage_derives_is_won_is_closed_and_probability(
    sf: Salesforce, stage: str, is_won: bool, is_closed: bool, probability: float
) -> None:
    opportunity = create_opportunity(sf, StageName=stage)

    record = sf.Opportunity.get(opportunity)

    assert (record["IsWon"], record["IsClosed"], record["Probability"]) == (
        is_won,
        is_closed,
        probability,
    )


def test_stage_names_are_matched_without_case(sf: Salesforce) -> None:
    opportunity = create_opportunity(sf, StageName="closed won")

    record = sf.Opportunity.get(opportunity)

    assert (record["StageName"], record["IsWon"]) == ("Closed Won", True)


def test_stage_change_moves_probability_unless_it_is_set(sf: Salesforce) -> None:
    opportunity = create_opportunity(sf, StageName="Prospecting", Probability=35)
    assert sf.Opportunity.get(opportunity)["Probability"] == 35.0

    sf.Opportunity.update(opportunity, {"StageName": "Closed Won"})
    record = sf.Opportunity.get(opportunity)
    assert (record["IsWon"], record["IsClosed"], record["Probability"]) == (True, True, 100.0)

    sf.Opportunity.update(opportunity, {"StageName": "Perception Analysis", "Probability": 65})
    record = sf.Opportunity.get(opportunity)
    assert (record["IsWon"], record["IsClosed"], record["Probability"]) == (False, False, 65.0)


def test_line_item_takes_its_prices_from_the_pricebook_entry(sf: Salesforce) -> None:
    product, entry = priced_product(sf, 100.0, name="Seats", code="SEAT")
    opportunity = create_opportunity(sf, Name="Acme renewal")

    item = sf.OpportunityLineItem.create(
        {"OpportunityId": opportunity, "PricebookEntryId": entry, "Quantity": 3, "Discount": 10}
    )["id"]

    record = sf.OpportunityLineItem.get(item)
    assert {key: value for key, value in record.items() if key not in SYSTEM_FIELDS} == {
        "attributes": attributes("OpportunityLineItem", item),
        "OpportunityId": opportunity,
        "PricebookEntryId": entry,
        "Product2Id": product,
        "ProductCode": "SEAT",
        "Name": "Acme renewal Seats",
        "Quantity": 3.0,
        "UnitPrice": 100.0,
        "ListPrice": 100.0,
        "Discount": 10.0,
        "Subtotal": 300.0,
        "TotalPrice": 270.0,
        "ServiceDate": None,
        "Description": None,
        "SortOrder": None,
        "CurrencyIsoCode": "USD",
    }
    deal = sf.Opportunity.get(opportunity)
    assert (deal["Amount"], deal["HasOpportunityLineItem"], deal["Pricebook2Id"]) == (
        270.0,
        True,
        standard_pricebook(sf),
    )


def test_line_items_roll_up_into_the_opportunity_amount(sf: Salesforce) -> None:
    _, seats = priced_product(sf, 100.0, name="Seats", code="SEAT")
    _, support = priced_product(sf, 40.0, name="Support", code="SUP")
    opportunity = create_opportunity(sf, Amount=5)

    first = sf.OpportunityLineItem.create(
        {
            "OpportunityId": opportunity,
            "PricebookEntryId": seats,
            "Quantity": 3,
            "UnitPrice": 99.99,
            "Discount": 12.5,
        }
    )["id"]
    second = sf.OpportunityLineItem.create(
        {"OpportunityId": opportunity, "PricebookEntryId": support, "Quantity": 2}
    )["id"]

    item = sf.OpportunityLineItem.get(first)
    assert (item["ListPrice"], item["UnitPrice"], item["Subtotal"], item["TotalPrice"]) == (
        100.0,
        99.99,
        299.97,
        262.47,
    )
    assert sf.Opportunity.get(opportunity)["Amount"] == 342.47

    sf.OpportunityLineItem.update(second, {"Quantity": 5})
    assert sf.OpportunityLineItem.get(second)["TotalPrice"] == 200.0
    assert sf.Opportunity.get(opportunity)["Amount"] == 462.47

    sf.OpportunityLineItem.delete(first)
    assert sf.Opportunity.get(opportunity)["Amount"] == 200.0


def test_a_line_total_past_the_range_of_numbers_is_number_outside_valid_range(
    sf: Salesforce,
) -> None:
    _, seats = priced_product(sf, 100.0)
    opportunity = create_opportunity(sf)
    huge = {"OpportunityId": opportunity, "PricebookEntryId": seats}

    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.OpportunityLineItem.create({**huge, "Quantity": 1e15, "UnitPrice": 1e15})

    assert refusal(caught) == (
        400,
        errors(
            "NUMBER_OUTSIDE_VALID_RANGE",
            "TotalPrice: value outside of valid range on numeric field: 1e+30",
            ["TotalPrice"],
        ),
    )
    item = sf.OpportunityLineItem.create({**huge, "Quantity": 2, "UnitPrice": 10})["id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.OpportunityLineItem.update(item, {"Quantity": 1e15, "UnitPrice": 1e15})
    assert refusal(caught)[1][0]["fields"] == ["TotalPrice"]
    assert sf.OpportunityLineItem.get(item)["TotalPrice"] == 20.0
    assert sf.Opportunity.get(opportunity)["Amount"] == 20.0


def test_an_amount_rolled_up_past_the_range_is_number_outside_valid_range(
    sf: Salesforce,
) -> None:
    _, seats = priced_product(sf, 100.0)
    opportunity = create_opportunity(sf)
    line = {"OpportunityId": opportunity, "PricebookEntryId": seats, "Quantity": 1}
    sf.OpportunityLineItem.create({**line, "UnitPrice": 6e17})

    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.OpportunityLineItem.create({**line, "UnitPrice": 5e17})

    assert refusal(caught) == (
        400,
        errors(
            "NUMBER_OUTSIDE_VALID_RANGE",
            "Amount: value outside of valid range on numeric field: 1.1e+18",
            ["Amount"],
        ),
    )
    assert sf.Opportunity.get(opportunity)["Amount"] == 6e17


def test_a_number_sent_past_the_range_is_number_outside_valid_range(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        create_account(sf, MRR__c=1e18)

    assert refusal(caught) == (
        400,
        errors(
            "NUMBER_OUTSIDE_VALID_RANGE",
            "MRR__c: value outside of valid range on numeric field: 1e+18",
            ["MRR__c"],
        ),
    )


def test_line_item_by_product_finds_the_entry_in_the_opportunity_pricebook(
    sf: Salesforce,
) -> None:
    product, entry = priced_product(sf, 25.0, name="Seats", code="SEAT")
    opportunity = create_opportunity(sf)

    item = sf.OpportunityLineItem.create(
        {"OpportunityId": opportunity, "Product2Id": product, "Quantity": 4}
    )["id"]

    record = sf.OpportunityLineItem.get(item)
    assert (record["PricebookEntryId"], record["ProductCode"], record["TotalPrice"]) == (
        entry,
        "SEAT",
        100.0,
    )


@pytest.mark.parametrize(
    ("start", "term", "end"),
    [
        ("2024-03-15", 12, "2025-03-14"),
        ("2024-01-01", 1, "2024-01-31"),
        ("2023-12-01", 3, "2024-02-29"),
        ("2024-03-15", None, None),
        (None, 12, None),
    ],
)
def test_contract_end_date_follows_start_and_term(
    sf: Salesforce, start: str | None, term: int | None, end: str | None
) -> None:
    account = create_account(sf)

    contract = sf.Contract.create({"AccountId": account, "StartDate": start, "ContractTerm": term})

    record = sf.Contract.get(contract["id"])
    assert (record["StartDate"], record["ContractTerm"], record["EndDate"]) == (start, term, end)


def test_contract_end_date_moves_with_the_term(sf: Salesforce) -> None:
    contract = sf.Contract.create(
        {"AccountId": create_account(sf), "StartDate": "2024-03-15", "ContractTerm": 12}
    )["id"]

    sf.Contract.update(contract, {"ContractTerm": 24})

    record = sf.Contract.get(contract)
    assert (record["EndDate"], record["Status"]) == ("2026-03-14", "Draft")


def test_contact_name_joins_first_and_last_name(sf: Salesforce) -> None:
    both = sf.Contact.create({"FirstName": "Ada", "LastName": "Lovelace"})["id"]
    last_only = sf.Contact.create({"LastName": "Hopper"})["id"]

    assert sf.Contact.get(both)["Name"] == "Ada Lovelace"
    assert sf.Contact.get(last_only)["Name"] == "Hopper"

    sf.Contact.update(last_only, {"FirstName": "Grace"})
    assert sf.Contact.get(last_only)["Name"] == "Grace Hopper"


# ---- validation errors -------------------------------------------------------------------


def test_missing_required_fields(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Opportunity.create({"Name": "Deal"})

    assert refusal(caught) == (
        400,
        errors(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [StageName, CloseDate]",
            ["StageName", "CloseDate"],
        ),
    )


def test_clearing_a_required_field(sf: Salesforce) -> None:
    account = create_account(sf)

    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.update(account, {"Name": None})

    assert refusal(caught) == (
        400,
        errors("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ["Name"]),
    )


def test_unknown_field_is_invalid_field(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.create({"Name": "Acme", "Foo__c": 1})

    # As Salesforce answers it (a recorded answer of a real org): the message names the field,
    # the error's fields are empty.
    assert refusal(caught) == (
        400,
        errors("INVALID_FIELD", "No such column 'Foo__c' on sobject of type Account"),
    )


@pytest.mark.parametrize("operation", ["create", "update"])
def test_writing_a_derived_field_is_refused(sf: Salesforce, operation: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        if operation == "create":
            create_opportunity(sf, IsWon=True)
        else:
            sf.Opportunity.update(create_opportunity(sf), {"IsWon": True})

    assert refusal(caught) == (
        400,
        errors(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "Unable to create/update fields: IsWon. Please check the security settings of this "
            "field and verify that it is read/write for your profile or permission set.",
            ["IsWon"],
        ),
    )


def test_bad_date_is_invalid_type_on_field(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        create_opportunity(sf, CloseDate="31/12/2025")

    assert refusal(caught) == (
        400,
        errors(
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
            "CloseDate: value not of required type: 31/12/2025",
            ["CloseDate"],
        ),
    )


def test_malformed_lookup_id(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        create_opportunity(sf, AccountId="not-an-id")

    assert refusal(caught) == (
        400,
        errors("MALFORMED_ID", "AccountId: id value of incorrect type: not-an-id", ["AccountId"]),
    )


def test_lookup_to_a_missing_record(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        create_opportunity(sf, AccountId=make_id("001", 999))

    assert refusal(caught) == (
        400,
        errors(
            "INVALID_CROSS_REFERENCE_KEY",
            "AccountId: invalid cross reference id",
            ["AccountId"],
        ),
    )


def test_lookup_to_a_record_of_another_type(sf: Salesforce) -> None:
    product = create_product(sf)

    with pytest.raises(SalesforceMalformedRequest) as caught:
        create_opportunity(sf, AccountId=product)

    assert refusal(caught) == (
        400,
        errors(
            "FIELD_INTEGRITY_EXCEPTION",
            f"AccountId: id value of incorrect type: {product}",
            ["AccountId"],
        ),
    )


def test_bad_value_for_a_restricted_picklist(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        create_opportunity(sf, StageName="Won-ish")

    assert refusal(caught) == (
        400,
        errors(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "StageName: bad value for restricted picklist field: Won-ish",
            ["StageName"],
        ),
    )


def test_unrestricted_picklist_takes_any_value(sf: Salesforce) -> None:
    account = create_account(sf, Industry="Space")

    assert sf.Account.get(account)["Industry"] == "Space"


def test_text_longer_than_the_field(sf: Salesforce) -> None:
    city = "Llanfairpwllgwyngyllgogerychwyrndrobwllll"  # 41 characters, the field takes 40

    with pytest.raises(SalesforceMalformedRequest) as caught:
        create_account(sf, BillingCity=city)

    assert refusal(caught) == (
        400,
        errors(
            "STRING_TOO_LONG",
            f"BillingCity: data value too large: {city[:40]} (max length=40)",
            ["BillingCity"],
        ),
    )


def test_custom_price_needs_a_standard_price(sf: Salesforce) -> None:
    product = create_product(sf)
    book = sf.Pricebook2.create({"Name": "Partners", "IsActive": True})["id"]

    with pytest.raises(SalesforceMalformedRequest) as caught:
        create_price(sf, product, book, 80.0)

    assert refusal(caught) == (
        400,
        errors(
            "STANDARD_PRICE_NOT_DEFINED",
            "No standard price defined for this product",
            ["Product2Id"],
        ),
    )


def test_custom_price_after_the_standard_price(sf: Salesforce) -> None:
    product, _ = priced_product(sf)
    book = sf.Pricebook2.create({"Name": "Partners", "IsActive": True})["id"]

    entry = create_price(sf, product, book, 80.0)

    assert is_valid_id(entry, "01u")
    assert sf.PricebookEntry.get(entry)["UnitPrice"] == 80.0


def test_a_refused_write_changes_nothing(sf: Salesforce) -> None:
    account = create_account(sf, Industry="Banking")

    with pytest.raises(SalesforceMalformedRequest):
        sf.Account.update(account, {"Industry": "Energy", "BillingCity": "x" * 41})

    assert sf.Account.get(account)["Industry"] == "Banking"
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 1


@pytest.mark.parametrize("call", ["create", "get", "describe"])
def test_unknown_sobject_is_not_found(sf: Salesforce, call: str) -> None:
    invoices = sf.Invoice__c
    with pytest.raises(SalesforceResourceNotFound) as caught:
        if call == "create":
            invoices.create({"Name": "x"})
        elif call == "get":
            invoices.get(make_id("a09", 1))
        else:
            invoices.describe()

    assert refusal(caught) == (404, errors("NOT_FOUND", "The requested resource does not exist"))


def test_error_bodies_are_json_lists(salesforce_sandbox: Sandbox) -> None:
    response = api(salesforce_sandbox, "POST", f"{BASE}/sobjects/Account/", json={})

    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == errors(
        "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ["Name"]
    )


def test_a_call_without_a_session_is_invalid_session_id(salesforce_sandbox: Sandbox) -> None:
    with trusting_session(salesforce_sandbox) as session:
        response = session.get(f"{salesforce_sandbox.instance_url}{BASE}/sobjects/")

    assert (response.status_code, response.json()) == (
        401,
        errors("INVALID_SESSION_ID", "Session expired or invalid"),
    )


# ---- cascade delete ----------------------------------------------------------------------


def test_account_delete_cascades_to_opportunities_and_their_line_items(sf: Salesforce) -> None:
    account = create_account(sf)
    contact = sf.Contact.create({"LastName": "Lovelace", "AccountId": account})["id"]
    opportunities = [create_opportunity(sf, AccountId=account, Name=f"Deal {n}") for n in (1, 2)]
    _, entry = priced_product(sf)
    items = [
        sf.OpportunityLineItem.create(
            {"OpportunityId": opportunity, "PricebookEntryId": entry, "Quantity": 1}
        )["id"]
        for opportunity in opportunities
    ]
    other = create_opportunity(sf, Name="Someone else's")
    invoice = sf.Billing_Invoice__c.create({"Document_Number__c": "INV-1", "Account__c": account})

    sf.Account.delete(account)

    assert sf.query("SELECT Id FROM Opportunity")["records"] == [
        {"attributes": attributes("Opportunity", other), "Id": other}
    ]
    assert sf.query("SELECT Id FROM OpportunityLineItem")["totalSize"] == 0
    everything = sf.query_all(
        "SELECT Id, IsDeleted FROM Opportunity WHERE Id != null ORDER BY Name",
        include_deleted=True,
    )
    assert [(r["Id"], r["IsDeleted"]) for r in everything["records"]] == [
        (opportunities[0], True),
        (opportunities[1], True),
        (other, False),
    ]
    deleted_items = sf.query_all(
        "SELECT Id, IsDeleted FROM OpportunityLineItem ORDER BY Id", include_deleted=True
    )
    assert [(r["Id"], r["IsDeleted"]) for r in deleted_items["records"]] == [
        (items[0], True),
        (items[1], True),
    ]
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Contact.get(contact)
    assert caught.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"
    # A lookup without cascade delete is cleared, and its record stays.
    kept = sf.Billing_Invoice__c.get(invoice["id"])
    assert (kept["IsDeleted"], kept["Account__c"]) == (False, None)


# ---- getUpdated / getDeleted -------------------------------------------------------------


def test_get_updated_lists_records_changed_in_the_window(sf: Salesforce, clock: Clock) -> None:
    first = create_account(sf, Name="First")
    clock.advance(minutes=1)
    second = create_account(sf, Name="Second")
    clock.advance(minutes=1)
    sf.Account.update(first, {"Industry": "Energy"})
    clock.advance(minutes=1)
    gone = create_account(sf, Name="Gone")
    sf.Account.delete(gone)
    clock.advance(minutes=5)

    updated = sf.Account.updated(MOMENT - timedelta(minutes=1), clock.moment)

    assert updated == {"ids": [second, first], "latestDateCovered": "2025-03-14T15:17:00.000+0000"}


def test_get_updated_window_excludes_earlier_changes(sf: Salesforce, clock: Clock) -> None:
    create_account(sf, Name="Earlier")
    clock.advance(minutes=10)
    later = create_account(sf, Name="Later")
    clock.advance(minutes=10)

    updated = sf.Account.updated(MOMENT + timedelta(minutes=5), MOMENT + timedelta(minutes=15))

    assert updated == {"ids": [later], "latestDateCovered": "2025-03-14T15:24:00.000+0000"}


def test_get_deleted_lists_deleted_records(sf: Salesforce, clock: Clock) -> None:
    kept = create_account(sf, Name="Kept")
    gone = create_account(sf, Name="Gone")
    opportunity = create_opportunity(sf, AccountId=gone)
    clock.advance(minutes=2)
    sf.Account.delete(gone)
    clock.advance(minutes=3)
    start, end = MOMENT - timedelta(hours=1), clock.moment

    deleted = sf.Account.deleted(start, end)

    assert deleted == {
        "deletedRecords": [{"id": gone, "deletedDate": "2025-03-14T15:11:26.535+0000"}],
        "earliestDateAvailable": "2025-02-27T15:14:00.000+0000",
        "latestDateCovered": "2025-03-14T15:14:00.000+0000",
    }
    assert sf.Opportunity.deleted(start, end)["deletedRecords"] == [
        {"id": opportunity, "deletedDate": "2025-03-14T15:11:26.535+0000"}
    ]
    assert sf.Account.updated(start, end)["ids"] == [kept]


@pytest.mark.parametrize(
    ("resource", "days_back", "message"),
    [
        ("updated", 31, "startDate cannot be more than 30 days ago"),
        ("deleted", 16, "startDate cannot be more than 15 days ago"),
    ],
)
def test_replication_start_too_far_back(
    sf: Salesforce, clock: Clock, resource: str, days_back: int, message: str
) -> None:
    call = getattr(sf.Account, resource)

    with pytest.raises(SalesforceMalformedRequest) as caught:
        call(MOMENT - timedelta(days=days_back), MOMENT)

    assert refusal(caught) == (400, errors("INVALID_REPLICATION_DATE", message))


def test_replication_windows_inside_the_limits(sf: Salesforce, clock: Clock) -> None:
    updated = sf.Account.updated(MOMENT - timedelta(days=29), MOMENT)
    deleted = sf.Account.deleted(MOMENT - timedelta(days=14), MOMENT)

    assert updated == {"ids": [], "latestDateCovered": "2025-03-14T15:09:00.000+0000"}
    assert deleted == {
        "deletedRecords": [],
        "earliestDateAvailable": "2025-02-27T15:09:00.000+0000",
        "latestDateCovered": "2025-03-14T15:09:00.000+0000",
    }


def test_replication_end_before_start(sf: Salesforce, clock: Clock) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.updated(MOMENT - timedelta(days=1), MOMENT - timedelta(days=2))

    assert refusal(caught) == (
        400,
        errors("INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate"),
    )


# ---- describe ----------------------------------------------------------------------------


def test_global_describe_lists_every_object(sf: Salesforce) -> None:
    described = sf.describe()

    assert (described["encoding"], described["maxBatchSize"]) == ("UTF-8", 200)
    assert [item["name"] for item in described["sobjects"]] == SCHEMA_OBJECTS
    account = described["sobjects"][0]
    assert (account["keyPrefix"], account["custom"], account["queryable"]) == ("001", False, True)
    assert account["urls"] == {
        "sobject": f"{BASE}/sobjects/Account",
        "describe": f"{BASE}/sobjects/Account/describe",
        "rowTemplate": f"{BASE}/sobjects/Account/{{ID}}",
    }
    prefixes = {item["name"]: (item["keyPrefix"], item["custom"]) for item in described["sobjects"]}
    assert prefixes["Billing_Invoice__c"] == ("a02", True)
    assert prefixes["OpportunityLineItem"] == ("00k", False)


def test_describe_lists_the_fields_of_the_object(sf: Salesforce) -> None:
    described = sf.Opportunity.describe()

    assert (described["name"], described["keyPrefix"]) == ("Opportunity", "006")
    assert [field["name"] for field in described["fields"]] == [
        *SYSTEM_FIELDS,
        "Name",
        "AccountId",
        "StageName",
        "CloseDate",
        "Amount",
        "Probability",
        "IsClosed",
        "IsWon",
        "Type",
        "LeadSource",
        "Description",
        "Pricebook2Id",
        "ContractId",
        "HasOpportunityLineItem",
        "CurrencyIsoCode",
        "Service_Start_Date__c",
        "Term_Months__c",
        "Billing_Frequency__c",
        "Auto_Renew__c",
        "Trial_Days__c",
        "Cancellation_Date__c",
        "Amends_Opportunity__c",
        "Billing_Sync_Error__c",
        "Billing_Sync_Status__c",
    ]


def describe_field(sf: Salesforce, obj: str, name: str) -> dict[str, Any]:
    fields = getattr(sf, obj).describe()["fields"]
    return next(field for field in fields if field["name"] == name)


def test_describe_of_a_lookup(sf: Salesforce) -> None:
    assert describe_field(sf, "Opportunity", "AccountId") == {
        "name": "AccountId",
        "label": "Account ID",
        "type": "reference",
        "soapType": "tns:ID",
        "length": 18,
        "precision": 0,
        "scale": 0,
        "digits": 0,
        "nillable": True,
        "createable": True,
        "updateable": True,
        "unique": False,
        "externalId": False,
        "idLookup": False,
        "custom": False,
        "calculated": False,
        "calculatedFormula": None,
        "autoNumber": False,
        "defaultedOnCreate": False,
        "defaultValue": None,
        "filterable": True,
        "sortable": True,
        "referenceTo": ["Account"],
        "polymorphicForeignKey": False,
        "relationshipName": "Account",
        "cascadeDelete": True,
        "restrictedPicklist": False,
        "picklistValues": [],
    }


def test_describe_of_an_external_id(sf: Salesforce) -> None:
    field = describe_field(sf, "Billing_Invoice__c", "Document_Number__c")

    assert {key: field[key] for key in ("type", "length", "unique", "externalId", "idLookup")} == {
        "type": "string",
        "length": 64,
        "unique": True,
        "externalId": True,
        "idLookup": True,
    }
    assert (field["custom"], field["referenceTo"], field["relationshipName"]) == (True, [], None)


def test_describe_of_a_picklist(sf: Salesforce) -> None:
    field = describe_field(sf, "Billing_Invoice__c", "Type__c")

    assert (field["type"], field["restrictedPicklist"]) == ("picklist", True)
    assert field["picklistValues"] == [
        {
            "value": "Invoice",
            "label": "Invoice",
            "active": True,
            "defaultValue": False,
            "validFor": None,
        },
        {
            "value": "Credit Note",
            "label": "Credit Note",
            "active": True,
            "defaultValue": False,
            "validFor": None,
        },
    ]


def test_describe_of_the_stage_picklist_lists_every_stage(sf: Salesforce) -> None:
    field = describe_field(sf, "Opportunity", "StageName")

    assert (field["type"], field["nillable"], field["restrictedPicklist"]) == (
        "picklist",
        False,
        True,
    )
    assert [value["value"] for value in field["picklistValues"]] == [
        "Prospecting",
        "Qualification",
        "Needs Analysis",
        "Value Proposition",
        "Id. Decision Makers",
        "Perception Analysis",
        "Proposal/Price Quote",
        "Negotiation/Review",
        "Closed Won",
        "Closed Lost",
    ]


@pytest.mark.parametrize(
    ("obj", "name", "expected"),
    [
        ("Opportunity", "IsWon", ("boolean", False, False, True)),
        ("Opportunity", "CloseDate", ("date", True, True, False)),
        ("Opportunity", "Amount", ("currency", True, True, False)),
        ("Account", "CreatedDate", ("datetime", False, False, False)),
        ("OpportunityLineItem", "OpportunityId", ("reference", True, False, False)),
        ("Contract", "ContractNumber", ("string", False, False, False)),
        ("OpportunityLineItem", "SortOrder", ("int", True, True, False)),
        ("Billing_Invoice__c", "Name", ("string", True, True, False)),
        ("Billing_Subscription__c", "Name", ("string", False, False, False)),
        ("Billing_Invoice__c", "Days_Overdue__c", ("double", False, False, True)),
    ],
)
def test_describe_field_types_and_access(
    sf: Salesforce, obj: str, name: str, expected: tuple[str, bool, bool, bool]
) -> None:
    field = describe_field(sf, obj, name)

    assert (field["type"], field["createable"], field["updateable"], field["calculated"]) == (
        expected
    )


def test_describe_of_a_formula_field(sf: Salesforce) -> None:
    field = describe_field(sf, "Billing_Invoice__c", "Days_Overdue__c")

    assert (field["calculated"], field["createable"], field["updateable"]) == (True, False, False)
    assert (field["precision"], field["scale"]) == (18, 0)
    formula = field["calculatedFormula"]
    assert formula.startswith("IF(AND(Balance_Due__c > 0, NOT(ISBLANK(Due_Date__c))")
    assert formula.endswith("TODAY() - Due_Date__c, 0)")
    assert describe_field(sf, "Billing_Invoice__c", "Total__c")["calculatedFormula"] is None


def test_an_invoice_is_named_by_what_is_sent_or_else_after_its_id(sf: Salesforce) -> None:
    named = sf.Billing_Invoice__c.create({"Name": "INV-000007", "Document_Number__c": "INV-7"})
    unnamed = sf.Billing_Invoice__c.create({"Document_Number__c": "INV-8"})
    sf.Billing_Invoice__c.update(named["id"], {"Name": "INV-000007 (void)"})

    assert sf.Billing_Invoice__c.get(named["id"])["Name"] == "INV-000007 (void)"
    assert sf.Billing_Invoice__c.get(unnamed["id"])["Name"] == unnamed["id"]
    assert describe_field(sf, "Billing_Invoice__c", "Name")["defaultedOnCreate"] is True
    assert describe_field(sf, "Billing_Invoice__c", "Name")["length"] == 80


@pytest.mark.parametrize(
    ("obj", "name", "filterable", "length"),
    [
        ("Account", "Description", False, 32768),
        ("Opportunity", "Billing_Sync_Error__c", False, 1000),
        ("Product2", "Description", False, 4000),
        ("Account", "BillingStreet", True, 255),
        ("Pricebook2", "Description", True, 255),
        ("Account", "Name", True, 255),
    ],
)
def test_long_text_areas_are_not_filterable(
    sf: Salesforce, obj: str, name: str, filterable: bool, length: int
) -> None:
    field = describe_field(sf, obj, name)

    assert (field["filterable"], field["length"]) == (filterable, length)


def test_describe_lists_child_relationships(sf: Salesforce) -> None:
    children = sf.Opportunity.describe()["childRelationships"]

    assert {
        "childSObject": "OpportunityLineItem",
        "field": "OpportunityId",
        "relationshipName": "OpportunityLineItems",
        "cascadeDelete": True,
        "deprecatedAndHidden": False,
    } in children
    account_children = sf.Account.describe()["childRelationships"]
    assert sorted(
        (item["relationshipName"], item["childSObject"], item["field"], item["cascadeDelete"])
        for item in account_children
    ) == [
        ("Billing_Invoices__r", "Billing_Invoice__c", "Account__c", False),
        ("Billing_Subscriptions__r", "Billing_Subscription__c", "Account__c", False),
        ("Billing_Usage__r", "Billing_Usage__c", "Account__c", False),
        ("Contacts", "Contact", "AccountId", True),
        ("Contracts", "Contract", "AccountId", True),
        ("Histories", "AccountHistory", "AccountId", True),
        ("Opportunities", "Opportunity", "AccountId", True),
        ("Tasks", "Task", "WhatId", True),
    ]


def test_sobject_basic_info(sf: Salesforce) -> None:
    info = sf.Account.metadata()

    assert (info["objectDescribe"]["name"], info["recentItems"]) == ("Account", [])


# ---- versions ----------------------------------------------------------------------------


def test_versions_listing(salesforce_sandbox: Sandbox) -> None:
    with trusting_session(salesforce_sandbox) as session:
        response = session.get(f"{salesforce_sandbox.instance_url}/services/data/")

    assert response.status_code == 200
    versions = response.json()
    assert [item["version"] for item in versions] == [f"{major}.0" for major in range(52, 69)]
    assert [item["url"] for item in versions] == [
        f"/services/data/v{major}.0" for major in range(52, 69)
    ]
    labels = {item["version"]: item["label"] for item in versions}
    assert (labels["52.0"], labels["59.0"], labels["60.0"], labels["68.0"]) == (
        "Summer '21",
        "Winter '24",
        "Spring '24",
        "Winter '27",
    )


@pytest.mark.parametrize("version", ["v51.0", "v99.0", "v59", "59.0"])
def test_unsupported_version_is_not_found(salesforce_sandbox: Sandbox, version: str) -> None:
    response = api(salesforce_sandbox, "GET", f"/services/data/{version}/sobjects/")

    assert (response.status_code, response.json()) == (
        404,
        errors("NOT_FOUND", "The requested resource does not exist"),
    )


def test_simple_salesforce_on_an_unsupported_version(salesforce_sandbox: Sandbox) -> None:
    old = connect(salesforce_sandbox, version="51.0")

    with pytest.raises(SalesforceResourceNotFound) as caught:
        old.query("SELECT Id FROM Account")

    assert caught.value.status == 404


@pytest.mark.parametrize("version", ["52.0", "68.0"])
def test_supported_versions_answer_in_their_own_urls(
    salesforce_sandbox: Sandbox, version: str
) -> None:
    client = connect(salesforce_sandbox, version=version)
    account = client.Account.create({"Name": "Acme"})["id"]

    assert client.Account.get(account)["attributes"] == attributes("Account", account, version)


# ---- API usage and limits ----------------------------------------------------------------


def test_every_api_response_carries_the_usage(salesforce_sandbox: Sandbox) -> None:
    calls = [
        ("GET", f"{BASE}/sobjects/", {}, 200),
        ("POST", f"{BASE}/sobjects/Account/", {"json": {"Name": "Acme"}}, 201),
        ("POST", f"{BASE}/sobjects/Account/", {"json": {}}, 400),
        ("GET", f"{BASE}/sobjects/Nope/describe", {}, 404),
        ("GET", f"{BASE}/query/", {"params": {"q": "SELECT Id FROM Account"}}, 200),
        ("GET", f"{BASE}/limits/", {}, 200),
    ]
    seen = []
    for method, path, kwargs, _ in calls:
        response = api(salesforce_sandbox, method, path, **kwargs)
        seen.append((response.status_code, response.headers.get("Sforce-Limit-Info")))

    assert seen == [
        (status, f"api-usage={n}/15000") for n, (_, _, _, status) in enumerate(calls, start=1)
    ]


def test_api_usage_follows_the_header(sf: Salesforce) -> None:
    sf.query("SELECT Id FROM Account")
    assert sf.api_usage == {"api-usage": Usage(used=1, total=15000)}

    accounts = sf.Account
    accounts.create({"Name": "Acme"})
    assert accounts.api_usage == {"api-usage": Usage(used=2, total=15000)}

    sf.describe()
    assert sf.api_usage == {"api-usage": Usage(used=3, total=15000)}


def test_limits(sf: Salesforce) -> None:
    sf.query("SELECT Id FROM Account")

    assert sf.limits() == {
        "DailyApiRequests": {"Max": 15000, "Remaining": 14998},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
        "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
        "DataStorageMB": {"Max": 1024, "Remaining": 1024},
        "FileStorageMB": {"Max": 1024, "Remaining": 1024},
        "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
    }
    assert sf.api_usage == {"api-usage": Usage(used=2, total=15000)}


@pytest.mark.sandbox(daily_api_limit=5)
def test_calls_past_the_daily_limit_are_refused(
    sf: Salesforce, salesforce_sandbox: Sandbox
) -> None:
    for used in range(1, 6):
        sf.query("SELECT COUNT() FROM Account")
        assert sf.api_usage == {"api-usage": Usage(used=used, total=5)}

    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT COUNT() FROM Account")

    assert refusal(caught) == (
        403,
        errors("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    )
    response = api(salesforce_sandbox, "GET", f"{BASE}/limits/")
    assert (response.status_code, response.headers["Sforce-Limit-Info"]) == (403, "api-usage=5/5")


@pytest.mark.sandbox(daily_api_limit=5)
def test_limits_report_the_configured_daily_limit(sf: Salesforce) -> None:
    assert sf.limits()["DailyApiRequests"] == {"Max": 5, "Remaining": 4}


def test_unknown_path_is_not_found(salesforce_sandbox: Sandbox) -> None:
    response = api(salesforce_sandbox, "GET", "/services/nothing")

    assert (response.status_code, response.json()) == (
        404,
        errors("NOT_FOUND", "The requested resource does not exist"),
    )


def test_every_answer_tells_the_org_time_in_its_date_header(
    salesforce_sandbox: Sandbox, clock: Clock
) -> None:
    clock.advance(days=400, seconds=0.9)  # a clock-skewed org: a year ahead of the world
    expected = format_datetime(clock.moment.replace(microsecond=0), usegmt=True)

    answers = [
        api(salesforce_sandbox, "GET", "/services/data/v59.0/limits"),
        api(salesforce_sandbox, "GET", "/services/data/v59.0/sobjects/Nope"),
        api(salesforce_sandbox, "GET", "/services/data/"),
        api(salesforce_sandbox, "GET", "/services/async/61.0/job/x"),
    ]

    assert [answer.headers["Date"] for answer in answers] == [expected] * 4
    assert [answer.raw.headers.getlist("Date") for answer in answers] == [[expected]] * 4
