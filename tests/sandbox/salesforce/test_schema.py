"""The sandbox's schema holds every object and field the connector's default mapping reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.sync.mapping import load_mapping
from sandbox.salesforce.schema import default_schema

ROOT = Path(__file__).resolve().parents[3]
MAPPING = load_mapping(ROOT / "mappings" / "salesforce.yaml").mapping


def resolve(object_name: str, path: str) -> str:
    """The object and field a path such as ``Product2.Billing_Type__c`` ends on."""
    schema = default_schema()
    obj = schema.get(object_name)
    assert obj is not None, object_name
    *relationships, field_name = path.split(".")
    for relationship in relationships:
        lookup = obj.parent(relationship)
        assert lookup is not None, f"{obj.name} has no relationship {relationship}"
        obj = schema.objects[lookup.spec.reference_to or ""]
    spec = obj.field(field_name)
    assert spec is not None, f"{obj.name} has no field {field_name}"
    return f"{obj.name}.{spec.name}"


@pytest.mark.parametrize(
    ("section", "object_name"),
    [("customer", "Account"), ("contract", "Opportunity"), ("items", "OpportunityLineItem")],
)
def test_every_mapped_field_exists_in_the_sandbox(section: str, object_name: str) -> None:
    resolved = [resolve(object_name, path) for path in MAPPING.query_fields(section)]
    assert len(resolved) == len(MAPPING.query_fields(section))


def test_the_items_relationship_is_a_child_of_opportunity() -> None:
    relation = default_schema().objects["Opportunity"].child(MAPPING.items.relationship)
    assert relation is not None
    assert (relation.child, relation.field) == ("OpportunityLineItem", "OpportunityId")


def test_custom_fields_of_the_default_mapping() -> None:
    custom = sorted(
        resolve(obj, path)
        for section, obj in (
            ("customer", "Account"),
            ("contract", "Opportunity"),
            ("items", "OpportunityLineItem"),
        )
        for path in MAPPING.query_fields(section)
        if path.endswith("__c")
    )
    assert custom == [
        "Account.Billing_Email__c",
        "Account.Tax_Id__c",
        "Opportunity.Amends_Opportunity__c",
        "Opportunity.Auto_Renew__c",
        "Opportunity.Billing_Frequency__c",
        "Opportunity.Cancellation_Date__c",
        "Opportunity.Service_Start_Date__c",
        "Opportunity.Term_Months__c",
        "Opportunity.Trial_Days__c",
        "Product2.Billing_Metric__c",
        "Product2.Billing_Type__c",
    ]


def test_frequency_values_match_the_picklist() -> None:
    picklist = default_schema().objects["Opportunity"].fields["Billing_Frequency__c"].spec.values
    assert tuple(MAPPING.contract.frequency.values) == picklist
    billing_types = default_schema().objects["Product2"].fields["Billing_Type__c"].spec.values
    assert tuple(MAPPING.items.billing_type.values) == billing_types
