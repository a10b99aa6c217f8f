"""A single-currency org (``SandboxConfig(multi_currency=False)``): no object has a
``CurrencyIsoCode`` field, and the org refuses it as Salesforce refuses any field it does not
have; every record is in the corporate currency.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.salesforce.schema import default_schema
from sandbox.salesforce.seed import seed_org
from sandbox.salesforce.server import Sandbox
from sandbox.salesforce.store import Org

SINGLE = pytest.mark.sandbox(multi_currency=False)
WAIT = 0.1


def soql_refusal(entity: str) -> list[dict[str, object]]:
    return [
        {
            "message": f"No such column 'CurrencyIsoCode' on entity '{entity}'. If you are "
            "attempting to use a custom field, be sure to append the '__c' after the custom "
            "field name. Please reference your WSDL or the describe call for the appropriate "
            "names.",
            "errorCode": "INVALID_FIELD",
            "fields": [],
        }
    ]


def write_refusal(obj: str) -> dict[str, object]:
    return {
        "message": f"No such column 'CurrencyIsoCode' on sobject of type {obj}",
        "errorCode": "INVALID_FIELD",
        "fields": [],
    }


@SINGLE
def test_no_object_describes_a_currency(sf: Salesforce, salesforce_sandbox: Sandbox) -> None:
    for obj in salesforce_sandbox.org.schema.objects:
        fields = {field["name"] for field in sf.restful(f"sobjects/{obj}/describe")["fields"]}
        assert "Id" in fields
        assert "CurrencyIsoCode" not in fields, obj


def test_a_multi_currency_org_describes_it(sf: Salesforce) -> None:
    fields = {field["name"] for field in sf.Billing_Invoice__c.describe()["fields"]}
    assert "CurrencyIsoCode" in fields


@SINGLE
@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id, CurrencyIsoCode FROM Account",
        "SELECT Id FROM Account WHERE CurrencyIsoCode = 'USD'",
        "SELECT Id FROM Account ORDER BY CurrencyIsoCode",
    ],
)
def test_a_query_naming_it_is_invalid_field(sf: Salesforce, soql: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    assert (caught.value.status, caught.value.content) == (400, soql_refusal("Account"))


@SINGLE
@pytest.mark.parametrize("obj", ["Account", "Opportunity", "Billing_Invoice__c"])
def test_a_write_setting_it_is_invalid_field(sf: Salesforce, obj: str) -> None:
    values = {"Name": "Acme", "CurrencyIsoCode": "USD"}
    if obj == "Opportunity":
        values |= {"StageName": "Prospecting", "CloseDate": "2026-03-01"}
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful(f"sobjects/{obj}", method="POST", json=values)
    assert (caught.value.status, caught.value.content) == (400, [write_refusal(obj)])
    assert sf.query(f"SELECT COUNT() FROM {obj}")["totalSize"] == 0


@SINGLE
def test_collections_refuse_it_per_record(sf: Salesforce) -> None:
    records = [
        {"attributes": {"type": "Account"}, "Name": "Acme", "CurrencyIsoCode": "EUR"},
        {"attributes": {"type": "Account"}, "Name": "Zeta"},
    ]
    answer = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": False, "records": records}
    )

    refusal = write_refusal("Account")
    assert answer[0] == {
        "success": False,
        "errors": [{"statusCode": "INVALID_FIELD", "message": refusal["message"], "fields": []}],
    }
    assert answer[1]["success"] is True
    assert [r["Name"] for r in sf.query("SELECT Name FROM Account")["records"]] == ["Zeta"]


@SINGLE
def test_a_bulk_ingest_job_with_the_column_fails(sf: Salesforce, tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("Name,CurrencyIsoCode\nAcme,USD\n", encoding="utf-8")
    with pytest.raises(Exception, match="Field name not found : CurrencyIsoCode"):
        sf.bulk2.Account.insert(csv_file=str(path), wait=WAIT)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0


@SINGLE
def test_deals_with_products_work_without_currencies(sf: Salesforce) -> None:
    book = sf.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")["records"][0]["Id"]
    product = sf.Product2.create({"Name": "Seats", "IsActive": True})["id"]
    entry = sf.PricebookEntry.create(
        {"Pricebook2Id": book, "Product2Id": product, "UnitPrice": 50, "IsActive": True}
    )["id"]
    account = sf.Account.create({"Name": "Acme"})["id"]
    deal = sf.Opportunity.create(
        {
            "Name": "Acme - seats",
            "AccountId": account,
            "StageName": "Closed Won",
            "CloseDate": "2026-03-01",
            "Pricebook2Id": book,
        }
    )["id"]
    sf.OpportunityLineItem.create({"OpportunityId": deal, "PricebookEntryId": entry, "Quantity": 3})
    sf.OpportunityLineItem.create({"OpportunityId": deal, "Product2Id": product, "Quantity": 1})

    found = sf.Opportunity.get(deal)
    assert (found["Amount"], found["HasOpportunityLineItem"]) == (200.0, True)
    assert "CurrencyIsoCode" not in found
    with pytest.raises(SalesforceMalformedRequest):
        sf.PricebookEntry.create(
            {"Pricebook2Id": book, "Product2Id": product, "UnitPrice": 60, "IsActive": True}
        )  # one standard price per product: the org has one currency


def test_the_demo_seed_is_all_in_the_corporate_currency() -> None:
    single = Org(default_schema(multi_currency=False))
    summary = seed_org(single, "demo")

    # The same deals, with one standard price per product (in USD) instead of four.
    assert summary == replace(seed_org(Org(default_schema()), "demo"), pricebook_entries=8)
    columns = {row[1] for row in single.db.execute('PRAGMA table_info("Opportunity")')}
    assert "CurrencyIsoCode" not in columns
    prices = {row[0] for row in single.db.execute("SELECT UnitPrice FROM PricebookEntry")}
    assert prices == {45.0, 85.0, 12.0, 8.0, 9.0, 2500.0, 1200.0, 7500.0}


def test_a_given_schema_loses_its_currencies_too() -> None:
    schema = default_schema().single_currency()
    assert schema.multi_currency is False
    assert schema.currencies == ("USD",)
    assert all("CurrencyIsoCode" not in obj.fields for obj in schema.objects.values())
    assert schema.single_currency() is schema
    assert "CurrencyIsoCode" in default_schema().objects["Account"].fields
