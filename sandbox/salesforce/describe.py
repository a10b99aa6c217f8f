"""Describe results (global and per object) in the shapes of the REST API."""

from __future__ import annotations

import re
from typing import Any

from sandbox.salesforce.schema import Field, Schema, SObject, describe_value

SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "anyType": "xsd:anyType",
}
REST_TYPES = {"datetime": "datetime", "int": "int"}
# Labels Salesforce gives fields of a field history object.
HISTORY_LABELS = {"Field": "Changed Field", "DataType": "Data Type", "ParentId": "Parent ID"}


def label_of(name: str) -> str:
    """``Service_Start_Date__c`` → ``Service Start Date``; ``CloseDate`` → ``Close Date``."""
    base = name.removesuffix("__c").replace("_", " ")
    label = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", base).strip()
    return label[:-2] + "ID" if label.endswith(" Id") else label


def plural(label: str) -> str:
    """``Opportunity`` → ``Opportunities``; ``Billing Invoice`` → ``Billing Invoices``."""
    if label.endswith("y") and label[-2:-1] not in tuple("aeiou"):
        return label[:-1] + "ies"
    if label.endswith(("s", "x", "ch", "sh")):
        return label + "es"
    return label + "s"


def urls(version: str, obj: SObject) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {
        "sobject": base,
        "describe": f"{base}/describe",
        "rowTemplate": f"{base}/{{ID}}",
    }


def object_summary(version: str, obj: SObject) -> dict[str, Any]:
    record = obj.history_of is None  # a field history object is only read
    return {
        "name": obj.name,
        "label": obj.label,
        "labelPlural": obj.label_plural or plural(obj.label),
        "keyPrefix": obj.key_prefix,
        "custom": obj.custom,
        "createable": record,
        "updateable": record,
        "deletable": record,
        "queryable": True,
        "retrieveable": True,
        "searchable": record,
        "layoutable": record,
        "replicateable": True,
        "triggerable": record,
        "undeletable": record,
        "urls": urls(version, obj),
    }


def global_describe(version: str, schema: Schema) -> dict[str, Any]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [object_summary(version, obj) for obj in schema.objects.values()],
    }


def _length(spec: Field) -> int:
    if spec.type in ("id", "reference"):
        return 18
    return spec.length if spec.is_text or spec.type == "anyType" else 0


def _label(obj: SObject, spec: Field) -> str:
    if spec.name == "Id":
        return f"{obj.label} ID" if obj.history_of else "Record ID"
    if obj.history_of and spec.name in HISTORY_LABELS:
        return HISTORY_LABELS[spec.name]
    return label_of(spec.name)


def _field(schema: Schema, obj: SObject, spec: Field) -> dict[str, Any]:
    values = schema.picklist_values(spec) if spec.type == "picklist" else ()
    default = spec.spec.default
    return {
        "name": spec.name,
        "label": _label(obj, spec),
        "type": REST_TYPES.get(spec.type, spec.type),
        "soapType": SOAP_TYPES.get(spec.type, "xsd:string"),
        "length": _length(spec),
        "precision": 18 if spec.is_number and spec.type != "int" else 0,
        "scale": spec.scale if spec.is_number else 0,
        "digits": 9 if spec.type == "int" else 0,
        "nillable": not spec.spec.required and spec.type != "boolean" and spec.name != "Id",
        "createable": spec.writable,
        "updateable": spec.updateable,
        "unique": spec.spec.unique,
        "externalId": spec.spec.external_id,
        "idLookup": spec.name == "Id" or spec.spec.external_id,
        "custom": spec.name.endswith("__c"),
        "calculated": spec.calculated,
        "calculatedFormula": spec.spec.formula,
        "autoNumber": spec.spec.autonumber is not None,
        "defaultedOnCreate": spec.system
        or default is not None
        or spec.type == "boolean"
        or (obj.text_name and spec.name == "Name"),
        "defaultValue": describe_value(default),
        "filterable": not spec.long_text and spec.type != "anyType",
        "sortable": spec.type != "textarea",
        "referenceTo": list(spec.spec.targets),
        "polymorphicForeignKey": len(spec.spec.targets) > 1,
        "relationshipName": spec.spec.relationship_name,
        "cascadeDelete": spec.spec.cascade_delete,
        "restrictedPicklist": spec.type == "picklist"
        and (spec.spec.restricted or spec.spec.currency or spec.spec.stages),
        "picklistValues": [
            {
                "value": value,
                "label": value,
                "active": True,
                "defaultValue": value == default,
                "validFor": None,
            }
            for value in values
        ],
    }


def describe_object(version: str, schema: Schema, obj: SObject) -> dict[str, Any]:
    children = [
        {
            "childSObject": relation.child,
            "field": relation.field,
            "relationshipName": relation.name,
            "cascadeDelete": relation.cascade_delete,
            "deprecatedAndHidden": False,
        }
        for relation in obj.children.values()
    ]
    return {
        **object_summary(version, obj),
        "fields": [_field(schema, obj, spec) for spec in obj.fields.values()],
        "childRelationships": children,
        "recordTypeInfos": [],
    }
