"""What Salesforce derives and enforces beyond field types, object by object.

- Opportunity: IsClosed, IsWon and a default Probability from the stage; Amount and
  HasOpportunityLineItem rolled up from its line items; the currency is fixed once it has some.
- OpportunityLineItem: the price book entry (given, or found from Product2Id in the
  opportunity's price book), Product2Id, ProductCode, Name, ListPrice, UnitPrice (defaults to the
  list price), Subtotal, TotalPrice and the opportunity's currency.
- PricebookEntry: a standard price must exist before a custom price book entry; one entry per
  price book, product and currency.
- Contact.Name, Contract.EndDate, Pricebook2.IsStandard (the standard price book exists from the
  start).
- Users, owners and Tasks: :mod:`sandbox.salesforce.activities`.

In a single-currency org no record has a ``CurrencyIsoCode``: every record is in the corporate
currency, so currencies always match.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from connector.billing.periods import add_months
from sandbox.salesforce import activities
from sandbox.salesforce.errors import bad_request
from sandbox.salesforce.values import check_range

if TYPE_CHECKING:
    from sandbox.salesforce.schema import SObject
    from sandbox.salesforce.store import Org, Record

CENT = Decimal("0.01")
CURRENCY = "CurrencyIsoCode"


def _money(value: Decimal) -> float:
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _decimal(value: Any) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value or 0)


def initialize(org: Org) -> None:
    """Create the standard price book in a new org."""
    with org.transaction():
        if org.meta("standard_pricebook") is None:
            book = org.create("Pricebook2", {"Name": "Standard Price Book", "IsActive": True})
            org.db.execute('UPDATE "Pricebook2" SET "IsStandard" = 1 WHERE Id = ?', (book,))
            org.set_meta("standard_pricebook", book)
        activities.initialize(org)


def standard_pricebook(org: Org) -> str:
    return org.meta("standard_pricebook") or ""


def before_write(org: Org, obj: SObject, record: Record, old: Record | None) -> None:
    handler = _BEFORE.get(obj.name)
    if handler is not None:
        handler(org, record, old)


def after_write(org: Org, obj: SObject, record: Record, old: Record | None) -> None:
    if obj.name == "OpportunityLineItem":
        _roll_up(org, record["OpportunityId"])


def after_delete(org: Org, obj: SObject, record: Record) -> None:
    if obj.name == "OpportunityLineItem":
        _roll_up(org, record["OpportunityId"])


def _contact(org: Org, record: Record, old: Record | None) -> None:
    record["Name"] = " ".join(part for part in (record["FirstName"], record["LastName"]) if part)


def _contract(org: Org, record: Record, old: Record | None) -> None:
    start, term = record["StartDate"], record["ContractTerm"]
    record["EndDate"] = (
        (add_months(date.fromisoformat(start), int(term)) - timedelta(days=1)).isoformat()
        if start and term
        else None
    )


def _opportunity(org: Org, record: Record, old: Record | None) -> None:
    stage = org.schema.stages.get(record["StageName"] or "")
    if stage is None:
        return  # the restricted picklist check names the bad value
    record["IsClosed"] = int(stage.closed)
    record["IsWon"] = int(stage.won)
    # A new stage brings its default probability unless the client sets one itself.
    if old is None:
        if record["Probability"] is None:
            record["Probability"] = float(stage.probability)
    elif old["StageName"] != record["StageName"] and old["Probability"] == record["Probability"]:
        record["Probability"] = float(stage.probability)
    if old is not None and old["HasOpportunityLineItem"]:
        if record.get(CURRENCY) != old.get(CURRENCY):
            raise bad_request(
                "FIELD_INTEGRITY_EXCEPTION",
                "CurrencyIsoCode: cannot change the currency of an opportunity with products",
                ["CurrencyIsoCode"],
            )
        record["Amount"] = old["Amount"]
    record["HasOpportunityLineItem"] = old["HasOpportunityLineItem"] if old else 0


def _pricebook_entry(org: Org, record: Record, old: Record | None) -> None:
    product = org.row(org.schema.objects["Product2"], record["Product2Id"] or "")
    if product is not None:
        record["Name"] = product["Name"]
        record["ProductCode"] = product["ProductCode"]
    if old is not None:
        return
    entries = org.schema.objects["PricebookEntry"]
    same = [
        row
        for row in org.rows_where(entries, "Product2Id", record["Product2Id"])
        if row.get(CURRENCY) == record.get(CURRENCY)
    ]
    if any(row["Pricebook2Id"] == record["Pricebook2Id"] for row in same):
        raise bad_request(
            "DUPLICATE_VALUE",
            "duplicate value found: This price definition already exists in this price book",
            ["Pricebook2Id"],
        )
    standard = standard_pricebook(org)
    if record["Pricebook2Id"] != standard and not any(
        row["Pricebook2Id"] == standard for row in same
    ):
        raise bad_request(
            "STANDARD_PRICE_NOT_DEFINED",
            "No standard price defined for this product",
            ["Product2Id"],
        )


def _line_item(org: Org, record: Record, old: Record | None) -> None:
    opportunity = org.row(org.schema.objects["Opportunity"], record["OpportunityId"] or "")
    if opportunity is None:
        return  # the lookup check names the bad id
    if old is None:
        entry = _entry_for(org, record, opportunity)
        record["PricebookEntryId"] = entry["Id"]
        record["Product2Id"] = entry["Product2Id"]
        record["ProductCode"] = entry["ProductCode"]
        record["ListPrice"] = entry["UnitPrice"]
        if CURRENCY in record:
            record[CURRENCY] = opportunity.get(CURRENCY)
        product_name = entry["Name"] or ""
        record["Name"] = f"{opportunity['Name']} {product_name}".strip()
        if record["UnitPrice"] is None:
            record["UnitPrice"] = entry["UnitPrice"]
    subtotal = _decimal(record["Quantity"]) * _decimal(record["UnitPrice"])
    total = subtotal * (1 - _decimal(record["Discount"]) / 100)
    fields = org.schema.objects["OpportunityLineItem"].fields
    check_range(fields["TotalPrice"], total)
    check_range(fields["Subtotal"], subtotal)
    record["Subtotal"] = _money(subtotal)
    record["TotalPrice"] = _money(total)


def _entry_for(org: Org, record: Record, opportunity: Record) -> Record:
    entries = org.schema.objects["PricebookEntry"]
    book = opportunity["Pricebook2Id"]
    if record["PricebookEntryId"]:
        entry = org.row(entries, record["PricebookEntryId"])
        if entry is None or entry["IsDeleted"]:
            raise bad_request(
                "INVALID_CROSS_REFERENCE_KEY",
                "PricebookEntryId: invalid cross reference id",
                ["PricebookEntryId"],
            )
    elif record["Product2Id"]:
        book = book or standard_pricebook(org)
        entry = next(
            (
                row
                for row in org.rows_where(entries, "Product2Id", record["Product2Id"])
                if row["Pricebook2Id"] == book and row.get(CURRENCY) == opportunity.get(CURRENCY)
            ),
            None,
        )
        if entry is None:
            raise bad_request(
                "FIELD_INTEGRITY_EXCEPTION",
                "Product2Id: no price book entry for this product in the opportunity's price book "
                "and currency",
                ["Product2Id"],
            )
    else:
        raise bad_request(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [PricebookEntryId]",
            ["PricebookEntryId"],
        )
    problems = []
    if not entry["IsActive"]:
        problems.append("pricebook entry is inactive")
    if entry.get(CURRENCY) != opportunity.get(CURRENCY):
        problems.append("pricebook entry currency code does not match opportunity currency code")
    if book and entry["Pricebook2Id"] != book:
        problems.append(
            "pricebook entry is in a different pricebook than the one assigned to the opportunity"
        )
    if problems:
        raise bad_request(
            "FIELD_INTEGRITY_EXCEPTION",
            f"field integrity exception: PricebookEntryId ({'; '.join(problems)})",
            ["PricebookEntryId"],
        )
    return entry


def _roll_up(org: Org, opportunity_id: str) -> None:
    """Amount and HasOpportunityLineItem follow the opportunity's line items."""
    opportunities = org.schema.objects["Opportunity"]
    old = org.row(opportunities, opportunity_id)
    if old is None or old["IsDeleted"]:
        return
    items = org.rows_where(
        org.schema.objects["OpportunityLineItem"], "OpportunityId", opportunity_id
    )
    record = {**old, "HasOpportunityLineItem": int(bool(items))}
    if items:
        amount = sum((_decimal(item["TotalPrice"]) for item in items), Decimal(0))
        check_range(opportunities.fields["Amount"], amount)
        record["Amount"] = _money(amount)
        if not old["Pricebook2Id"]:
            entry = org.row(org.schema.objects["PricebookEntry"], items[0]["PricebookEntryId"])
            record["Pricebook2Id"] = entry["Pricebook2Id"] if entry else None
    org.save(opportunities, record, old)


_BEFORE = {
    "Contact": _contact,
    "Contract": _contract,
    "Opportunity": _opportunity,
    "PricebookEntry": _pricebook_entry,
    "OpportunityLineItem": _line_item,
    **activities.RULES,
}
