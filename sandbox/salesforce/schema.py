"""The sandbox org's objects and fields, read from ``schema.yaml``.

Names are resolved case-insensitively, as Salesforce resolves them, and every object gets the
system fields Salesforce adds (Id, IsDeleted, CreatedDate, LastModifiedDate, SystemModstamp).
An object with a field marked ``track_history`` gets its field history object, as Salesforce
names and shapes it (:func:`history_name`): read only, one row per change of a tracked field.
Formula fields are translated to SQL when the schema loads (:mod:`sandbox.salesforce.formula`):
a formula the sandbox cannot compute stops it loading. A single-currency org's schema is the
same without any ``CurrencyIsoCode`` field (the fields marked ``currency: true``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from connector.yamlfile import load_yaml
from sandbox.salesforce.formula.parser import FormulaError
from sandbox.salesforce.formula.sql import Formula, compile_formulas

FieldType = Literal[
    "id",
    "reference",
    "string",
    "textarea",
    "picklist",
    "boolean",
    "int",
    "double",
    "currency",
    "percent",
    "date",
    "datetime",
    "email",
    "phone",
    "url",
    "anyType",
]
TEXT_TYPES = frozenset(
    {"id", "reference", "string", "textarea", "picklist", "email", "phone", "url"}
)
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
DEFAULT_SCALE = {"currency": 2, "percent": 2, "double": 4, "int": 0}
TEXT_AREA_LENGTH = 255  # longer text areas are Long Text Areas
SCHEMA_FILE = Path(__file__).with_name("schema.yaml")
HISTORY_PREFIX = "017"  # every field history object's key prefix
HISTORY_CREATED = "created"  # the Field of the row recorded when a record is created
#: What a history row's DataType says of the changed field, by the field's type.
HISTORY_DATA_TYPES: dict[str, str] = {
    "id": "EntityId",
    "reference": "EntityId",
    "string": "Text",
    "textarea": "TextArea",
    "picklist": "DynamicEnum",
    "boolean": "Boolean",
    "int": "Double",
    "double": "Double",
    "currency": "Currency",
    "percent": "Percent",
    "date": "DateOnly",
    "datetime": "DateTime",
    "email": "Email",
    "phone": "Phone",
    "url": "Url",
}


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: FieldType
    length: int | None = None
    scale: int | None = None
    required: bool = False
    unique: bool = False
    external_id: bool = False
    values: tuple[str, ...] = ()
    restricted: bool = False
    currency: bool = False
    stages: bool = False
    default: str | bool | int | Decimal | None = None
    reference_to: str | tuple[str, ...] | None = None  # several: a polymorphic lookup
    relationship_name: str | None = None
    child_relationship: str | None = None
    cascade_delete: bool = False
    create_only: bool = False
    derived: bool = False
    formula: str | None = None
    blanks: Literal["zero", "blank"] | None = None  # a formula's blank number fields
    autonumber: str | None = None
    track_history: bool = False

    @property
    def targets(self) -> tuple[str, ...]:
        """The objects a lookup may name (several for a polymorphic one: Task.WhatId)."""
        if self.reference_to is None:
            return ()
        return (self.reference_to,) if isinstance(self.reference_to, str) else self.reference_to

    @model_validator(mode="after")
    def _lookup_complete(self) -> FieldSpec:
        if self.type == "reference" and not (self.reference_to and self.relationship_name):
            raise ValueError("a reference needs reference_to and relationship_name")
        if self.blanks is not None and self.formula is None:
            raise ValueError("blanks is a setting of formula fields")
        return self


class StageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    probability: int
    closed: bool = False
    won: bool = False


class ObjectSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_prefix: str
    label: str | None = None
    custom: bool = False
    fields: dict[str, FieldSpec]


class SchemaFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    currencies: tuple[str, ...]
    corporate_currency: str
    opportunity_stages: tuple[StageSpec, ...]
    objects: dict[str, ObjectSpec]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: FieldType
    spec: FieldSpec
    system: bool = False

    @property
    def length(self) -> int:
        if self.spec.length is not None:
            return self.spec.length
        return 32768 if self.type == "textarea" else 255

    @property
    def scale(self) -> int:
        if self.spec.scale is not None:
            return self.spec.scale
        return DEFAULT_SCALE.get(self.type, 0)

    @property
    def stored(self) -> bool:
        """Kept in the org's table (a formula is computed on every read instead)."""
        return self.spec.formula is None

    @property
    def calculated(self) -> bool:
        """Computed by the org: a formula field or a derived standard field."""
        return self.spec.derived or self.spec.formula is not None

    @property
    def writable(self) -> bool:
        return not (self.system or self.calculated or self.spec.autonumber)

    @property
    def updateable(self) -> bool:
        return self.writable and not self.spec.create_only

    @property
    def is_text(self) -> bool:
        return self.type in TEXT_TYPES

    @property
    def is_number(self) -> bool:
        return self.type in NUMBER_TYPES

    @property
    def long_text(self) -> bool:
        """A Long Text Area (a text area of more than 255 characters): it can be selected but
        not filtered or sorted on."""
        return self.type == "textarea" and self.length > TEXT_AREA_LENGTH


@dataclass(frozen=True, slots=True)
class ChildRelationship:
    name: str
    child: str
    field: str
    cascade_delete: bool


@dataclass
class SObject:
    name: str
    key_prefix: str
    label: str
    custom: bool
    fields: dict[str, Field]
    label_plural: str | None = None
    history: str | None = None  # the name of the object's field history object
    history_of: str | None = None  # of a field history object, the object it tracks
    _by_lower: dict[str, Field] = field(default_factory=dict, repr=False)
    parents: dict[str, Field] = field(default_factory=dict, repr=False)
    children: dict[str, ChildRelationship] = field(default_factory=dict, repr=False)
    formulas: dict[str, Formula] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_lower = {name.lower(): spec for name, spec in self.fields.items()}
        self.parents = {
            spec.spec.relationship_name.lower(): spec
            for spec in self.fields.values()
            if spec.spec.relationship_name
        }

    def field(self, name: str) -> Field | None:
        return self._by_lower.get(name.lower())

    def parent(self, relationship: str) -> Field | None:
        return self.parents.get(relationship.lower())

    def child(self, relationship: str) -> ChildRelationship | None:
        return self.children.get(relationship.lower())

    @property
    def text_name(self) -> bool:
        """A custom object whose record name is text: a record created without one is named
        after its Id."""
        name = self.fields.get("Name")
        return self.custom and name is not None and name.writable

    @property
    def stored_fields(self) -> list[str]:
        """The names of the fields kept in the object's table, in schema order."""
        return [name for name, spec in self.fields.items() if spec.stored]

    @property
    def unique_fields(self) -> list[Field]:
        return [spec for spec in self.fields.values() if spec.spec.unique]

    @property
    def tracked_fields(self) -> list[Field]:
        """The fields whose changes the object's field history records (stored ones only: a
        formula changes without a write, and Salesforce does not track it)."""
        return [spec for spec in self.fields.values() if spec.spec.track_history and spec.stored]

    @property
    def parent_field(self) -> Field:
        """Of a field history object, its lookup to the record it tracks."""
        return next(spec for spec in self.fields.values() if spec.spec.reference_to)

    @property
    def modstamp(self) -> str:
        """The field that tells when a record last changed (a history row never changes)."""
        return "SystemModstamp" if "SystemModstamp" in self.fields else "CreatedDate"


def _system_fields() -> dict[str, Field]:
    def system(name: str, kind: FieldType) -> Field:
        return Field(name, kind, FieldSpec(type=kind), system=True)

    return {
        "Id": system("Id", "id"),
        "IsDeleted": system("IsDeleted", "boolean"),
        "CreatedDate": system("CreatedDate", "datetime"),
        "LastModifiedDate": system("LastModifiedDate", "datetime"),
        "SystemModstamp": system("SystemModstamp", "datetime"),
    }


@dataclass
class Schema:
    objects: dict[str, SObject]
    currencies: tuple[str, ...]
    corporate_currency: str
    stages: dict[str, StageSpec]
    source: SchemaFile
    multi_currency: bool = True

    def __post_init__(self) -> None:
        self._by_lower = {name.lower(): obj for name, obj in self.objects.items()}
        self._by_prefix: dict[str, SObject] = {}
        for obj in self.objects.values():  # the history objects share theirs: the first
            self._by_prefix.setdefault(obj.key_prefix, obj)

    def get(self, name: str) -> SObject | None:
        return self._by_lower.get(name.lower())

    def by_prefix(self, prefix: str) -> SObject | None:
        return self._by_prefix.get(prefix)

    @property
    def histories(self) -> list[SObject]:
        """The field history objects."""
        return [obj for obj in self.objects.values() if obj.history_of is not None]

    def history_of(self, obj: SObject) -> SObject | None:
        """The field history object of ``obj``, if it tracks any field."""
        return None if obj.history is None else self.objects[obj.history]

    def single_currency(self) -> Schema:
        """The same org without multi-currency: no CurrencyIsoCode field on any object."""
        return self if not self.multi_currency else _build(self.source, multi_currency=False)

    def picklist_values(self, spec: Field) -> tuple[str, ...]:
        if spec.spec.currency:
            return self.currencies
        if spec.spec.stages:
            return tuple(self.stages)
        return spec.spec.values


def history_name(obj: SObject) -> str:
    """The field history object of ``obj``: ``Billing_Invoice__History`` for a custom object,
    ``OpportunityFieldHistory`` for Opportunity (``OpportunityHistory`` is its stage history),
    ``AccountHistory`` for other standard objects."""
    if obj.custom:
        return obj.name.removesuffix("__c") + "__History"
    if obj.name == "Opportunity":
        return "OpportunityFieldHistory"
    return f"{obj.name}History"


def _history_object(obj: SObject) -> SObject:
    """The field history object of ``obj``, as Salesforce shapes it: the record it tracks
    (``ParentId`` of a custom object, ``AccountId`` of an account, ...), who made the change
    and when, the field (``created`` when the record was created), its data type and its old
    and new values (``anyType``)."""
    parent_field, relationship = (
        ("ParentId", "Parent") if obj.custom else (f"{obj.name}Id", obj.name)
    )

    def system(name: str, **spec: Any) -> Field:
        return Field(name, spec["type"], FieldSpec(**spec), system=True)

    tracked = tuple(spec.name for spec in obj.tracked_fields)
    data_types = {HISTORY_DATA_TYPES[spec.type] for spec in obj.tracked_fields}
    fields = [
        system("Id", type="id"),
        system("IsDeleted", type="boolean"),
        system(
            parent_field,
            type="reference",
            reference_to=obj.name,
            relationship_name=relationship,
            child_relationship="Histories",
            cascade_delete=True,
            required=True,
        ),
        system("CreatedById", type="reference", reference_to="User", relationship_name="CreatedBy"),
        system("CreatedDate", type="datetime"),
        system(
            "Field",
            type="picklist",
            values=(HISTORY_CREATED, *tracked),
            restricted=True,
            required=True,
        ),
        system(
            "DataType",
            type="picklist",
            length=40,
            values=tuple(sorted({"Text", *data_types})),  # a created row's is Text
            restricted=True,
        ),
        system("OldValue", type="anyType", length=255),
        system("NewValue", type="anyType", length=255),
    ]
    label = f"{obj.label} Field History" if obj.name == "Opportunity" else f"{obj.label} History"
    return SObject(
        history_name(obj),
        HISTORY_PREFIX,
        label,
        obj.custom,
        {spec.name: spec for spec in fields},
        label_plural=label,
        history_of=obj.name,
    )


def _build(data: SchemaFile, *, multi_currency: bool = True) -> Schema:
    objects: dict[str, SObject] = {}
    for name, spec in data.objects.items():
        fields = _system_fields()
        fields.update(
            {
                key: Field(key, value.type, value)
                for key, value in spec.fields.items()
                if multi_currency or not value.currency
            }
        )
        objects[name] = SObject(name, spec.key_prefix, spec.label or name, spec.custom, fields)
    for obj in list(objects.values()):
        if obj.tracked_fields:
            history = _history_object(obj)
            obj.history = history.name
            objects[history.name] = history
    for name, obj in objects.items():
        for lookup in obj.fields.values():
            for target in lookup.spec.targets:
                if target not in objects:
                    if lookup.system:  # a history's CreatedById, in a schema without User
                        continue
                    raise ValueError(
                        f"{name}.{lookup.name}: reference_to names unknown object {target}"
                    )
                relation = lookup.spec.child_relationship
                if relation:
                    objects[target].children[relation.lower()] = ChildRelationship(
                        relation, name, lookup.name, lookup.spec.cascade_delete
                    )
    for obj in objects.values():
        try:
            obj.formulas = compile_formulas(obj)
        except FormulaError as error:
            raise ValueError(f"formula of {error}") from None
    return Schema(
        objects,
        data.currencies if multi_currency else (data.corporate_currency,),
        data.corporate_currency,
        {stage.name: stage for stage in data.opportunity_stages},
        data,
        multi_currency,
    )


def load_schema(path: Path = SCHEMA_FILE, *, multi_currency: bool = True) -> Schema:
    document = load_yaml(path)
    return _build(document.validate(SchemaFile), multi_currency=multi_currency)


@functools.cache
def default_schema(multi_currency: bool = True) -> Schema:
    return load_schema(multi_currency=multi_currency)


def describe_value(value: Any) -> Any:
    """A schema default as JSON (decimals become numbers)."""
    return float(value) if isinstance(value, Decimal) else value
