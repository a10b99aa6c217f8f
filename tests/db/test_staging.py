"""The staged form of a CRM record is the same whichever API read it."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

from connector.db.staging import payload_hash, staged_form
from connector.sync.crm_pull import nest

# One deal with two line items, as a REST query answers it (JSON, line items in a subquery)...
REST = """{
  "attributes": {"type": "Opportunity", "url": "/services/data/v59.0/sobjects/Opportunity/006A"},
  "Id": "006A", "SystemModstamp": "2026-01-31T10:00:00.000+0000", "IsDeleted": false,
  "IsWon": true, "Amount": 1234567.89, "Term_Months__c": 12.0, "Probability": 100,
  "CloseDate": "2026-01-15", "Cancellation_Date__c": null, "Type": "New Customer",
  "CurrencyIsoCode": "EUR", "Description": "",
  "Account": {"attributes": {"type": "Account", "url": "/services/data/v59.0/sobjects/Account/001A"},
              "Name": "Acme", "BillingState": null},
  "Owner": null,
  "OpportunityLineItems": {"totalSize": 2, "done": true, "records": [
    {"attributes": {"type": "OpportunityLineItem",
                    "url": "/services/data/v59.0/sobjects/OpportunityLineItem/00kB"},
     "Id": "00kB", "Quantity": 2.5, "UnitPrice": 0.1, "Discount": null, "SortOrder": 2,
     "ServiceDate": "2026-02-01",
     "Product2": {"attributes": {"type": "Product2", "url": "/services/data/v59.0/sobjects/Product2/01tB"},
                  "Name": "Support", "Family": null}},
    {"attributes": {"type": "OpportunityLineItem",
                    "url": "/services/data/v59.0/sobjects/OpportunityLineItem/00kA"},
     "Id": "00kA", "Quantity": 3.0, "UnitPrice": 100.0, "Discount": 12.5, "SortOrder": 1,
     "ServiceDate": null, "Product2": null}
  ]}
}"""

# ... and as two Bulk API 2.0 jobs write it (CSV text, parents flattened, line items apart).
DEAL_CSV = (
    '"Id","SystemModstamp","IsDeleted","IsWon","Amount","Term_Months__c","Probability",'
    '"CloseDate","Cancellation_Date__c","Type","CurrencyIsoCode","Description",'
    '"Account.Name","Account.BillingState","Owner.Name"\n'
    '"006A","2026-01-31T10:00:00.000Z","false","true","1234567.89","12.0","100",'
    '"2026-01-15","","New Customer","EUR","","Acme","",""\n'
)
ITEM_CSV = (
    '"Id","Quantity","UnitPrice","Discount","SortOrder","ServiceDate",'
    '"Product2.Name","Product2.Family"\n'
    '"00kA","3.0","100.0","12.5","1","","",""\n'
    '"00kB","2.5","0.1","","2","2026-02-01","Support",""\n'
)


def from_rest() -> dict[str, Any]:
    record: dict[str, Any] = json.loads(REST, parse_float=Decimal)  # as the client reads it
    return record


def from_bulk() -> dict[str, Any]:
    [deal] = [nest(row) for row in csv.DictReader(io.StringIO(DEAL_CSV))]
    items = [nest(row) for row in csv.DictReader(io.StringIO(ITEM_CSV))]
    deal["OpportunityLineItems"] = {"totalSize": 2, "done": True, "records": items}
    return deal


def test_a_record_read_through_rest_or_bulk_is_staged_the_same() -> None:
    rest, bulk = staged_form(from_rest()), staged_form(from_bulk())

    assert rest == bulk
    assert payload_hash(rest) == payload_hash(bulk)
    assert rest == {
        "Id": "006A",
        "SystemModstamp": "2026-01-31T10:00:00.000+0000",
        "IsDeleted": "false",
        "IsWon": "true",
        "Amount": "1234567.89",
        "Term_Months__c": "12.0",
        "Probability": "100",
        "CloseDate": "2026-01-15",
        "Cancellation_Date__c": None,
        "Type": "New Customer",
        "CurrencyIsoCode": "EUR",
        "Description": None,
        "Account": {"Name": "Acme", "BillingState": None},
        "Owner": None,
        "OpportunityLineItems": {
            "totalSize": 2,
            "done": True,
            "records": [
                {
                    "Id": "00kA",
                    "Quantity": "3.0",
                    "UnitPrice": "100.0",
                    "Discount": "12.5",
                    "SortOrder": "1",
                    "ServiceDate": None,
                    "Product2": None,
                },
                {
                    "Id": "00kB",
                    "Quantity": "2.5",
                    "UnitPrice": "0.1",
                    "Discount": None,
                    "SortOrder": "2",
                    "ServiceDate": "2026-02-01",
                    "Product2": {"Name": "Support", "Family": None},
                },
            ],
        },
    }


def test_the_staged_form_of_a_staged_form_is_itself() -> None:
    staged = staged_form(from_rest())

    assert staged_form(staged) == staged
    assert staged_form(json.loads(json.dumps(staged))) == staged
