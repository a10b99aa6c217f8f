"""The Salesforce metadata in ``config/salesforce`` agrees with the sandbox org's schema.

An admin deploys ``config/salesforce`` to a real org; the connector is tested against the local
sandbox, whose objects and fields ``sandbox/salesforce/schema.yaml`` declares. These tests hold
the two together: every custom object and custom field (name ending in ``__c``) of the schema has
a metadata file and every metadata file an object or field in the schema, with the same label,
type, length, precision, scale, picklist values (in order), restriction, external id,
uniqueness, lookup target, formula and history tracking as the sandbox's describe and schema.
The integration user's permission set lets it edit every field the write-back writes and read
every custom field; the people's permission sets let them read and never edit what the
connector writes. The layouts and record pages show the billing fields and related lists; the
README lists every field. (``test_salesforce_metadata_xml.py`` checks every file against the
Metadata API's types and every name it uses.)
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from datetime import date
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from defusedxml import ElementTree
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from connector.settings import SalesforceSettings, Settings
from connector.sync import writeback, writeback_dunning, writeback_records
from connector.sync.cycle import run_cycle
from connector.sync.mapping import load_mapping
from sandbox.salesforce.describe import describe_object
from sandbox.salesforce.schema import Field, SObject, default_schema
from sandbox.salesforce.server import Sandbox
from tests.config.test_salesforce_metadata_xml import KINDS

ROOT = Path(__file__).resolve().parents[2]
SALESFORCE = ROOT / "config" / "salesforce"
SOURCE = SALESFORCE / "force-app" / "main" / "default"
OBJECTS = SOURCE / "objects"
PERMISSION_SET_NAME = "Billing_Connector_Integration"
PERMISSION_SETS = SOURCE / "permissionsets"
PERMISSION_SET = PERMISSION_SETS / f"{PERMISSION_SET_NAME}.permissionset-meta.xml"
PEOPLE = ("Billing_Viewer", "Billing_Finance", "Billing_Deal_Terms")
PACKAGE = SALESFORCE / "manifest" / "package.xml"
README = SALESFORCE / "README.md"
MAPPING = ROOT / "mappings" / "salesforce.yaml"
NS = "http://soap.sforce.com/2006/04/metadata"
Q = f"{{{NS}}}"
SUFFIXES = tuple(suffix for suffix in KINDS if suffix.startswith("."))
# Where each kind of file lives: objects/<Object>/ for the object's own parts, else a folder
# of the package directory.
FOLDERS = {
    ".object-meta.xml": "objects/*",
    ".field-meta.xml": "objects/*/fields",
    ".listView-meta.xml": "objects/*/listViews",
    ".compactLayout-meta.xml": "objects/*/compactLayouts",
    ".layout-meta.xml": "layouts",
    ".flexipage-meta.xml": "flexipages",
    ".tab-meta.xml": "tabs",
    ".reportType-meta.xml": "reportTypes",
    ".permissionset-meta.xml": "permissionsets",
}
API_VERSION = "59.0"  # any; describe answers the same for every version
FIX = "add or fix it under config/salesforce (see config/salesforce/README.md)"


# -- reading the metadata --------------------------------------------------------------------
def parse(path: Path) -> Element:
    root: Element = ElementTree.parse(path).getroot()
    return root


def child(element: Element, tag: str) -> Element | None:
    return element.find(Q + tag)


def text(element: Element, tag: str) -> str | None:
    found = child(element, tag)
    return None if found is None else (found.text or "")


def flag(element: Element, tag: str) -> bool:
    """A boolean element; absent means false, as Salesforce reads it."""
    value = text(element, tag)
    assert value in (None, "true", "false"), f"<{tag}> is {value!r}, not true or false"
    return value == "true"


def tags(element: Element) -> list[str]:
    return [item.tag.removeprefix(Q) for item in element]


def field_path(object_name: str, field_name: str) -> Path:
    return OBJECTS / object_name / "fields" / f"{field_name}.field-meta.xml"


def object_path(object_name: str) -> Path:
    return OBJECTS / object_name / f"{object_name}.object-meta.xml"


def metadata_objects() -> set[str]:
    """The custom objects the metadata defines."""
    return {
        path.parent.name
        for path in OBJECTS.glob("*/*.object-meta.xml")
        if path.parent.name.endswith("__c")
    }


def standard_object_files() -> set[str]:
    """The standard objects whose object settings the metadata changes."""
    return {
        path.parent.name
        for path in OBJECTS.glob("*/*.object-meta.xml")
        if not path.parent.name.endswith("__c")
    }


def metadata_fields() -> set[str]:
    return {
        f"{path.parent.parent.name}.{path.name.removesuffix('.field-meta.xml')}"
        for path in OBJECTS.glob("*/fields/*.field-meta.xml")
    }


# -- what the sandbox says -------------------------------------------------------------------
def custom_objects() -> dict[str, SObject]:
    """The custom objects the schema declares (not the field history objects Salesforce makes
    of those that track a field: their metadata is the tracked object's ``enableHistory``)."""
    return {
        name: obj
        for name, obj in default_schema().objects.items()
        if obj.custom and obj.history_of is None
    }


def custom_fields() -> dict[str, tuple[SObject, Field]]:
    return {
        f"{obj.name}.{spec.name}": (obj, spec)
        for obj in default_schema().objects.values()
        for spec in obj.fields.values()
        if spec.name.endswith("__c")
    }


CUSTOM_OBJECTS = sorted(custom_objects())
CUSTOM_FIELDS = sorted(custom_fields())


def metadata_type(spec: Field) -> str:
    """The Metadata API type of a custom field the sandbox declares (of a formula field, the
    type of its result)."""
    if spec.spec.autonumber:
        return "AutoNumber"
    if spec.type == "reference":
        return "MasterDetail" if spec.spec.cascade_delete else "Lookup"
    if spec.type == "textarea":
        if spec.length == 255:
            return "TextArea"
        if 255 < spec.length <= 131072:
            return "LongTextArea"
        pytest.fail(
            f"{spec.name}: a textarea of {spec.length} characters has no Salesforce type "
            "(TextArea holds 255, LongTextArea 256 to 131072)"
        )
    types = {
        "string": "Text",
        "picklist": "Picklist",
        "boolean": "Checkbox",
        "int": "Number",
        "double": "Number",
        "currency": "Currency",
        "percent": "Percent",
        "date": "Date",
        "datetime": "DateTime",
        "email": "Email",
        "phone": "Phone",
        "url": "Url",
    }
    if spec.type not in types:
        pytest.fail(f"{spec.name}: no Salesforce custom field type for {spec.type!r}")
    return types[spec.type]


COMMON_TAGS = {
    "fullName",
    "label",
    "description",
    "inlineHelpText",
    "type",
    "required",
    "externalId",
    "trackHistory",
    "trackTrending",
    "trackFeedHistory",
}
TYPE_TAGS = {
    "Text": {"length", "unique", "caseSensitive"},
    "TextArea": set(),
    "LongTextArea": {"length", "visibleLines"},
    "Picklist": {"valueSet"},
    "Checkbox": {"defaultValue"},
    "Number": {"precision", "scale", "unique"},
    "Currency": {"precision", "scale"},
    "Percent": {"precision", "scale"},
    "Date": set(),
    "DateTime": set(),
    "Email": {"unique"},
    "Phone": set(),
    "Url": set(),
    "Lookup": {"referenceTo", "relationshipName", "relationshipLabel", "deleteConstraint"},
    "Formula": {"formula", "formulaTreatBlanksAs", "precision", "scale", "unique"},
    "MasterDetail": {
        "referenceTo",
        "relationshipName",
        "relationshipLabel",
        "relationshipOrder",
        "reparentableMasterDetail",
        "writeRequiresMasterRead",
    },
}


# -- what the write-back writes --------------------------------------------------------------
def _constant(node: ast.expr) -> str:
    assert isinstance(node, ast.Constant), ast.dump(node)
    assert isinstance(node.value, str), ast.dump(node)
    return node.value


def _dict_literals(function: ast.AST) -> dict[str, ast.Dict]:
    """The names a function assigns a dict literal to (``fields = {...}``)."""
    found = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value
    return found


def written_by_writeback() -> dict[tuple[str, str], set[str]]:
    """(object, key field) → the fields the write-back sends for it, read from the source of
    the module that builds its records.

    Every record is built as ``Record(object, key field, key, fields)``, the first two given
    either as string literals or as one of the module's (object, key field) constants
    (``*SUBSCRIPTION_RECORD``), the fields as a dict literal or a name the same function
    assigns one to. The key field is written too (the upsert's external id) unless it is
    ``Id``. The collections fields and Tasks are listed by
    :data:`connector.sync.writeback_dunning.WRITTEN`.
    """
    tree = ast.parse(inspect.getsource(writeback_records))
    written: dict[tuple[str, str], set[str]] = {}
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    for function in functions:
        literals = _dict_literals(function)
        for node in ast.walk(function):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Record"
            ):
                continue
            shape = f"the write-back builds {ast.unparse(node)[:80]!r}"
            items = node.args
            if isinstance(items[0], ast.Starred):
                assert isinstance(items[0].value, ast.Name), shape
                obj, key_field = getattr(writeback_records, items[0].value.id)
                rest = items[1:]
            else:
                obj, key_field = _constant(items[0]), _constant(items[1])
                rest = items[2:]
            fields = rest[-1]
            if obj == writeback_dunning.TASK_RECORD[0]:  # its fields: writeback_dunning's
                written.setdefault((obj, key_field), set()).update(writeback_dunning.WRITTEN[obj])
                continue
            if isinstance(fields, ast.Name):
                assert fields.id in literals, f"{shape}: fields not a dict literal"
                fields = literals[fields.id]
            assert isinstance(fields, ast.Dict), f"{shape}: fields not a dict literal"
            # A parent named by its external id ("Subscription__r": {...}) sets its lookup.
            names = {
                re.sub(r"__r$", "__c", _constant(key)) for key in fields.keys if key is not None
            }
            if key_field != "Id":
                names.add(key_field)
            if obj in writeback_dunning.WRITTEN:  # with the collections fields
                names.update(writeback_dunning.WRITTEN[obj])
            written.setdefault((obj, key_field), set()).update(names)
    return written


WRITTEN = written_by_writeback()


def written_fields() -> set[str]:
    return {f"{obj}.{name}" for (obj, _), names in WRITTEN.items() for name in names}


def mapped_custom_fields() -> set[str]:
    """``Object.Field__c`` of every custom field the default mapping reads."""
    schema = default_schema()
    mapping = load_mapping(MAPPING).mapping
    found: set[str] = set()
    for section in ("customer", "contract", "items"):
        if section == "items":
            relation = schema.objects[mapping.contract.object].child(mapping.items.relationship)
            assert relation is not None, mapping.items.relationship
            start = relation.child
        else:
            start = getattr(mapping, section).object
        for path in mapping.query_fields(section):
            obj = schema.objects[start]
            *parents, name = path.split(".")
            for relationship in parents:
                lookup = obj.parent(relationship)
                assert lookup is not None, f"{obj.name} has no relationship {relationship}"
                obj = schema.objects[lookup.spec.targets[0]]
            spec = obj.field(name)
            assert spec is not None, f"{obj.name} has no field {name} ({MAPPING.name}: {path})"
            if spec.name.endswith("__c"):
                found.add(f"{obj.name}.{spec.name}")
    return found


# -- every file ------------------------------------------------------------------------------
XML_FILES = sorted(SALESFORCE.rglob("*.xml"))


@pytest.mark.parametrize("path", XML_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_xml_is_well_formed_metadata(path: Path) -> None:
    assert path.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    root = parse(path)
    for element in root.iter():
        assert element.tag.startswith(Q), f"{path}: <{element.tag}> is not in {NS}"
    kind = next(kind for suffix, kind in KINDS.items() if path.name.endswith(suffix))
    assert root.tag == Q + kind


def test_the_source_holds_only_known_kinds_of_files() -> None:
    stray = [
        str(path.relative_to(SALESFORCE))
        for path in SOURCE.rglob("*")
        if path.is_file() and not path.name.endswith(SUFFIXES)
    ]
    assert stray == []
    misplaced = [
        str(path.relative_to(SALESFORCE))
        for path in SOURCE.rglob("*.xml")
        if not any(
            path.name.endswith(suffix) and path.parent.match(str(SOURCE / folder))
            for suffix, folder in FOLDERS.items()
        )
        or (path.name.endswith(".object-meta.xml") and path != object_path(path.parent.name))
    ]
    assert misplaced == []


def test_the_project_file() -> None:
    project = json.loads((SALESFORCE / "sfdx-project.json").read_text())
    assert project["packageDirectories"] == [{"path": "force-app", "default": True}]
    assert re.fullmatch(r"\d{2,3}\.0", project["sourceApiVersion"])
    assert text(parse(PACKAGE), "version") == project["sourceApiVersion"]


def manifest() -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    for types in parse(PACKAGE).iter(Q + "types"):
        name = text(types, "name")
        assert name is not None
        assert name not in members, f"{name} is listed twice"
        members[name] = [item.text or "" for item in types.iter(Q + "members")]
    return members


def shipped(folder: str, suffix: str, *, in_object: bool = False) -> list[str]:
    """The names of the components of one kind: ``Object.Name`` for an object's parts."""
    if in_object:
        return sorted(
            f"{path.parent.parent.name}.{path.name.removesuffix(suffix)}"
            for path in OBJECTS.glob(f"*/{folder}/*{suffix}")
        )
    return sorted(path.name.removesuffix(suffix) for path in (SOURCE / folder).glob(f"*{suffix}"))


def test_the_manifest_names_every_component() -> None:
    assert manifest() == {
        "CompactLayout": shipped("compactLayouts", ".compactLayout-meta.xml", in_object=True),
        "CustomField": sorted(metadata_fields()),
        "CustomObject": sorted(metadata_objects() | standard_object_files()),
        "CustomTab": shipped("tabs", ".tab-meta.xml"),
        "FlexiPage": shipped("flexipages", ".flexipage-meta.xml"),
        "Layout": shipped("layouts", ".layout-meta.xml"),
        "ListView": shipped("listViews", ".listView-meta.xml", in_object=True),
        "PermissionSet": shipped("permissionsets", ".permissionset-meta.xml"),
        "ReportType": shipped("reportTypes", ".reportType-meta.xml"),
    }
    for kind, members in manifest().items():
        assert members == sorted(members), f"{kind}: members out of order"


# -- the same objects and fields -------------------------------------------------------------
def test_the_schema_declares_the_connectors_custom_objects_and_fields() -> None:
    # Guards the comparisons below against an empty or unreadable schema.
    assert {"Billing_Subscription__c", "Billing_Invoice__c"} <= set(CUSTOM_OBJECTS)
    assert {"Account.MRR__c", "Opportunity.Billing_Sync_Error__c"} <= set(CUSTOM_FIELDS)


def test_every_custom_object_has_metadata_and_no_other() -> None:
    assert metadata_objects() == set(CUSTOM_OBJECTS), (
        f"custom objects in sandbox/salesforce/schema.yaml without metadata: "
        f"{sorted(set(CUSTOM_OBJECTS) - metadata_objects())}; metadata without a custom object "
        f"in the schema: {sorted(metadata_objects() - set(CUSTOM_OBJECTS))}; {FIX}"
    )


def test_every_custom_field_has_metadata_and_no_other() -> None:
    assert metadata_fields() == set(CUSTOM_FIELDS), (
        f"custom fields in sandbox/salesforce/schema.yaml without metadata: "
        f"{sorted(set(CUSTOM_FIELDS) - metadata_fields())}; metadata without a custom field "
        f"in the schema: {sorted(metadata_fields() - set(CUSTOM_FIELDS))}; {FIX}"
    )


@pytest.mark.parametrize("name", CUSTOM_OBJECTS)
def test_custom_object(name: str) -> None:
    obj = custom_objects()[name]
    path = object_path(name)
    assert path.exists(), f"no metadata for custom object {name} at {path}; {FIX}"
    root = parse(path)
    described = describe_object(API_VERSION, default_schema(), obj)
    assert text(root, "label") == described["label"]
    assert text(root, "pluralLabel") == described["labelPlural"]
    assert text(root, "deploymentStatus") == "Deployed"
    assert text(root, "description")
    # Salesforce wants these three alike (an Enterprise Application object when all are on).
    assert all(flag(root, key) for key in ("enableBulkApi", "enableSharing", "enableStreamingApi"))
    masters = [
        spec.name
        for spec in obj.fields.values()
        if spec.type == "reference" and spec.spec.cascade_delete
    ]
    # Read Only for people: only the integration user (the owner of every record) edits.
    assert text(root, "sharingModel") == ("ControlledByParent" if masters else "Read")
    tracked = any(spec.spec.track_history for spec in obj.fields.values())
    assert flag(root, "enableHistory") is tracked
    # Its compact layout, and its record page as the org default on desktop.
    assert text(root, "compactLayoutAssignment")
    overrides = [
        (text(item, "actionName"), text(item, "type"), text(item, "formFactor"))
        for item in root.iter(Q + "actionOverrides")
    ]
    assert overrides == [("View", "Flexipage", "Large")]

    name_field = child(root, "nameField")
    assert name_field is not None
    spec = obj.fields["Name"].spec
    assert text(name_field, "label")
    if spec.autonumber:
        assert text(name_field, "type") == "AutoNumber"
        assert text(name_field, "displayFormat") == spec.autonumber
    else:
        assert text(name_field, "type") == "Text"
        assert child(name_field, "displayFormat") is None
        described_name = next(f for f in described["fields"] if f["name"] == "Name")
        assert (described_name["createable"], described_name["updateable"]) == (True, True)
        assert (described_name["type"], described_name["length"]) == ("string", 80)

    # The standard fields of a custom object are the system fields, Name and (multi-currency)
    # CurrencyIsoCode; anything else the schema declares there has to be a custom field.
    standard = {
        spec.name
        for spec in obj.fields.values()
        if not spec.system and not spec.name.endswith("__c")
    }
    assert standard <= {"Name", "CurrencyIsoCode"}


def test_the_invoice_is_named_by_its_document_number() -> None:
    """Not a BI-000007 auto number beside INV-000007: the record name is text the write-back
    sets, labelled as the invoice's number."""
    name_field = child(parse(object_path("Billing_Invoice__c")), "nameField")
    assert name_field is not None
    assert (text(name_field, "type"), text(name_field, "label")) == ("Text", "Invoice Number")


def test_standard_objects_get_history_tracking_and_nothing_else() -> None:
    """A standard object's file turns on field history where the schema tracks one of its
    fields, and sets nothing more: the org keeps its own settings of Account and Opportunity."""
    schema = default_schema()
    tracked = {
        obj.name
        for obj in schema.objects.values()
        if not obj.custom and any(spec.spec.track_history for spec in obj.fields.values())
    }
    assert tracked == {"Account", "Opportunity"}
    assert standard_object_files() == tracked
    for name in sorted(tracked):
        root = parse(object_path(name))
        assert tags(root) == ["enableHistory"] and flag(root, "enableHistory"), name


def test_history_is_tracked_on_the_status_fields() -> None:
    tracked = {name for name, (_, spec) in custom_fields().items() if spec.spec.track_history}
    assert tracked == {
        "Account.Billing_Status__c",
        "Billing_Invoice__c.Status__c",
        "Billing_Subscription__c.Status__c",
        "Opportunity.Billing_Sync_Status__c",
    }


@pytest.mark.parametrize("name", CUSTOM_FIELDS)
def test_custom_field(name: str) -> None:
    obj, spec = custom_fields()[name]
    path = field_path(obj.name, spec.name)
    assert path.exists(), (
        f"{name} is in sandbox/salesforce/schema.yaml but {path} is missing; {FIX}"
    )
    root = parse(path)
    kind = metadata_type(spec)
    formula = spec.spec.formula
    described = next(
        item
        for item in describe_object(API_VERSION, default_schema(), obj)["fields"]
        if item["name"] == spec.name
    )

    assert text(root, "fullName") == spec.name
    assert text(root, "type") == kind
    assert text(root, "label") == described["label"]
    assert text(root, "description"), f"{name}: say what the connector does with it"
    assert text(root, "inlineHelpText")
    allowed = TYPE_TAGS["Formula"] if formula else TYPE_TAGS[kind]
    unknown = set(tags(root)) - COMMON_TAGS - allowed
    assert not unknown, f"{name}: {sorted(unknown)} do not belong on a {kind} field"

    assert flag(root, "trackHistory") is spec.spec.track_history
    assert text(root, "formula") == formula
    assert described["calculated"] is (formula is not None)
    assert described["calculatedFormula"] == formula
    if formula is not None:
        # Salesforce computes it: nobody writes it, and blank inputs count as zero (and the
        # sandbox computes it so too).
        assert (described["createable"], described["updateable"]) == (False, False)
        assert text(root, "formulaTreatBlanksAs") == "BlankAsZero"
        assert (spec.spec.blanks or "zero") == "zero"
        assert not flag(root, "trackHistory")

    assert flag(root, "required") is spec.spec.required
    assert flag(root, "externalId") is spec.spec.external_id
    assert flag(root, "unique") is spec.spec.unique
    if spec.spec.unique:
        # The sandbox compares text case-insensitively (its SF_NOCASE collation).
        assert text(root, "caseSensitive") == "false"

    if kind in ("Text", "LongTextArea"):
        assert text(root, "length") == str(spec.length)
    if kind == "LongTextArea":
        assert int(text(root, "visibleLines") or 0) >= 2
    if kind in ("Number", "Currency", "Percent"):
        assert text(root, "precision") == str(described["precision"] or 18)
        assert text(root, "scale") == str(spec.scale) == str(described["scale"])
    if kind == "Checkbox":
        assert text(root, "defaultValue") == ("true" if spec.spec.default else "false")
    elif kind != "Picklist":
        assert spec.spec.default is None, f"{name}: a default the metadata cannot express"

    if kind == "Picklist":
        value_set = child(root, "valueSet")
        assert value_set is not None
        assert flag(value_set, "restricted") is spec.spec.restricted
        definition = child(value_set, "valueSetDefinition")
        assert definition is not None
        assert flag(definition, "sorted") is False
        values = list(definition.iter(Q + "value"))
        assert [text(value, "fullName") for value in values] == list(
            default_schema().picklist_values(spec)
        )
        assert [text(value, "label") for value in values] == [
            text(value, "fullName") for value in values
        ]
        defaults = [text(value, "fullName") for value in values if flag(value, "default")]
        assert defaults == ([spec.spec.default] if spec.spec.default is not None else [])

    if kind in ("Lookup", "MasterDetail"):
        assert text(root, "referenceTo") == spec.spec.reference_to
        # Salesforce names a custom lookup's parent relationship after the field.
        assert spec.spec.relationship_name == spec.name.removesuffix("__c") + "__r"
        child_relationship = spec.spec.child_relationship
        assert child_relationship is not None, f"{name}: the schema names no child relationship"
        assert text(root, "relationshipName") == child_relationship.removesuffix("__r")
        assert child_relationship.endswith("__r")
        assert text(root, "relationshipLabel")
        if kind == "Lookup":
            assert text(root, "deleteConstraint") == "SetNull"


# -- the permission set ----------------------------------------------------------------------
def permission_set_path(name: str) -> Path:
    return PERMISSION_SETS / f"{name}.permissionset-meta.xml"


def field_permissions(name: str = PERMISSION_SET_NAME) -> dict[str, tuple[bool, bool]]:
    """field → (readable, editable)."""
    found: dict[str, tuple[bool, bool]] = {}
    for item in parse(permission_set_path(name)).iter(Q + "fieldPermissions"):
        name = text(item, "field") or ""
        assert name not in found, f"{name} is listed twice"
        found[name] = (flag(item, "readable"), flag(item, "editable"))
    return found


def object_permissions(name: str = PERMISSION_SET_NAME) -> dict[str, dict[str, bool]]:
    found: dict[str, dict[str, bool]] = {}
    for item in parse(permission_set_path(name)).iter(Q + "objectPermissions"):
        name = text(item, "object") or ""
        assert name not in found, f"{name} is listed twice"
        found[name] = {key: flag(item, key) for key in tags(item) if key != "object"}
    return found


def test_the_writeback_reader_finds_every_record_kind() -> None:
    assert set(WRITTEN) == {
        ("Billing_Subscription__c", "Subscription_Id__c"),
        ("Billing_Invoice__c", "Document_Number__c"),
        ("Account", "Id"),
        ("Opportunity", "Id"),
        ("Task", "Connector_Key__c"),
        ("Billing_Usage__c", "Usage_Key__c"),
    }
    assert {"Account.MRR__c", "Account.Billing_Status__c"} <= written_fields()


def test_every_field_the_writeback_writes_is_in_the_schema_and_updateable() -> None:
    schema = default_schema()
    for name in sorted(written_fields()):
        object_name, field_name = name.split(".")
        spec = schema.objects[object_name].fields.get(field_name)
        assert spec is not None, f"the write-back writes {name}, which the sandbox lacks"
        assert spec.updateable, f"the write-back writes {name}, which the sandbox makes read-only"


def test_the_permission_set_covers_every_custom_field() -> None:
    expected = {name for name, (_, spec) in custom_fields().items() if not spec.spec.required}
    assert set(field_permissions()) == expected, (
        f"missing from {PERMISSION_SET.name}: {sorted(expected - set(field_permissions()))}; "
        f"not custom fields of the schema: {sorted(set(field_permissions()) - expected)}"
    )
    unreadable = [name for name, (readable, _) in field_permissions().items() if not readable]
    assert unreadable == []


def formula_fields() -> set[str]:
    return {name for name, (_, spec) in custom_fields().items() if spec.spec.formula}


def test_the_integration_user_can_edit_exactly_the_fields_the_writeback_writes() -> None:
    written = {name for name in written_fields() if name.split(".")[1].endswith("__c")}
    editable = {name for name, (_, can_edit) in field_permissions().items() if can_edit}
    assert written - editable == set(), f"written but not editable: {sorted(written - editable)}"
    extra = editable - written
    assert extra == set(), f"editable, never written: {sorted(extra)}"
    assert formula_fields() and not formula_fields() & editable


def test_the_integration_user_can_read_every_mapped_field() -> None:
    mapped = mapped_custom_fields()
    assert "Product2.Billing_Type__c" in mapped
    unreadable = sorted(
        name for name in mapped if not field_permissions().get(name, (False, False))[0]
    )
    assert unreadable == []


def test_object_permissions() -> None:
    # Activities take no object permissions: the integration user's Edit Tasks permission.
    upserted = {obj for obj, key in WRITTEN if key != "Id"} - {"Task"}
    updated = {obj for obj, key in WRITTEN if key == "Id"}
    read = {name.split(".")[0] for name in CUSTOM_FIELDS} - upserted - updated - {"Task"}
    expected: dict[str, dict[str, bool]] = {}
    for obj in sorted(upserted | updated | read):
        expected[obj] = {
            "allowCreate": obj in upserted,
            "allowDelete": False,
            "allowEdit": obj in upserted | updated,
            "allowRead": True,
            "modifyAllRecords": False,
            # Every record it reads, whoever owns it and however the org shares it (the line
            # items it queries take their access from Opportunity).
            "viewAllRecords": True,
        }
    assert object_permissions() == expected
    assert sorted(expected) == [
        "Account",
        "Billing_Invoice__c",
        "Billing_Subscription__c",
        "Billing_Usage__c",
        "Opportunity",
        "Product2",
    ]


def tab_settings(name: str) -> dict[str, str]:
    root = parse(permission_set_path(name))
    return {
        text(item, "tab") or "": text(item, "visibility") or ""
        for item in root.iter(Q + "tabSettings")
    }


def user_permissions(name: str) -> dict[str | None, bool]:
    root = parse(permission_set_path(name))
    return {text(item, "name"): flag(item, "enabled") for item in root.iter(Q + "userPermissions")}


def test_the_permission_sets_are_the_integration_users_and_the_peoples() -> None:
    shipped_sets = {
        p.name.removesuffix(".permissionset-meta.xml") for p in PERMISSION_SETS.iterdir()
    }
    assert shipped_sets == {PERMISSION_SET_NAME, *PEOPLE}
    for name in PEOPLE:
        assert text(parse(permission_set_path(name)), "label") == name.replace("_", " ")


@pytest.mark.parametrize("name", ["Billing_Viewer", "Billing_Finance"])
def test_sales_and_finance_read_all_billing_and_edit_nothing(name: str) -> None:
    permissions = field_permissions(name)
    assert set(permissions) == {
        n for n, (_, spec) in custom_fields().items() if not spec.spec.required
    }
    assert all(readable and not editable for readable, editable in permissions.values())
    read_only = {
        "allowCreate": False,
        "allowDelete": False,
        "allowEdit": False,
        "allowRead": True,
        "modifyAllRecords": False,
        "viewAllRecords": False,
    }
    assert object_permissions(name) == {obj: read_only for obj in CUSTOM_OBJECTS}
    assert tab_settings(name) == {obj: "Visible" for obj in CUSTOM_OBJECTS}
    reports = {"RunReports": True, "ExportReport": True}
    assert user_permissions(name) == (reports if name == "Billing_Finance" else {})


def test_the_deal_terms_set_edits_what_the_mapping_reads_and_nothing_written() -> None:
    """Whoever enters deals edits the terms the connector reads (the Opportunity's, the
    Account's tax id, the Product's billing type); their profile gives the object access."""
    permissions = field_permissions("Billing_Deal_Terms")
    assert set(permissions) == mapped_custom_fields()
    assert all(readable and editable for readable, editable in permissions.values())
    assert not set(permissions) & written_fields()
    assert object_permissions("Billing_Deal_Terms") == {}
    assert user_permissions("Billing_Deal_Terms") == {}


def test_no_permission_set_makes_a_formula_editable() -> None:
    for name in (PERMISSION_SET_NAME, *PEOPLE):
        editable = {field for field, (_, can_edit) in field_permissions(name).items() if can_edit}
        assert not editable & formula_fields(), name


def test_the_permission_set_grants_api_access() -> None:
    root = parse(PERMISSION_SET)
    assert text(root, "label") == "Billing Connector Integration"
    granted = {
        text(item, "name"): flag(item, "enabled") for item in root.iter(Q + "userPermissions")
    }
    assert granted == {"ApiEnabled": True, "EditTask": True}  # the collections Tasks


# -- what people see ---------------------------------------------------------------------------
LAYOUTS = SOURCE / "layouts"
PAGES = SOURCE / "flexipages"
USAGE_COLUMNS = ["NAME", "Metric__c", "Period_Start__c", "Quantity__c", "Amount__c", "Status__c"]
INVOICE_COLUMNS = [
    "NAME",
    "Type__c",
    "Document_Date__c",
    "Due_Date__c",
    "Total__c",
    "Balance_Due__c",
    "Status__c",
]


def layout(obj: str, name: str) -> Element:
    return parse(LAYOUTS / f"{obj}-{name}.layout-meta.xml")


def sections(root: Element) -> dict[str | None, dict[str | None, str | None]]:
    """Section label → field → behavior."""
    return {
        text(section, "label"): {
            text(item, "field"): text(item, "behavior") for item in section.iter(Q + "layoutItems")
        }
        for section in root.iter(Q + "layoutSections")
    }


def related_lists(root: Element) -> dict[str | None, list[str]]:
    return {
        text(item, "relatedList"): [column.text or "" for column in item.iter(Q + "fields")]
        for item in root.iter(Q + "relatedLists")
    }


def fields_on(obj: str, names: set[str]) -> set[str]:
    return {name.split(".")[1] for name in names if name.split(".")[0] == obj}


@pytest.mark.parametrize(
    ("obj", "lookup"), [("Account", "Account__c"), ("Opportunity", "Opportunity__c")]
)
def test_account_and_opportunity_layouts_show_billing(obj: str, lookup: str) -> None:
    """A Billing section with what the connector writes (read only) and the terms it reads
    (editable), and the object's Billing Subscriptions, Billing Invoices and Billing Usage."""
    root = layout(obj, f"{obj} Layout")
    billing = sections(root)["Billing"]
    written = fields_on(obj, written_fields())
    read = fields_on(obj, mapped_custom_fields())
    assert set(billing) == written | read
    assert {name: billing[name] for name in written} == dict.fromkeys(written, "Readonly")
    assert {name: billing[name] for name in read} == dict.fromkeys(read, "Edit")
    lists = related_lists(root)
    assert lists[f"Billing_Invoice__c.{lookup}"] == INVOICE_COLUMNS
    assert lists[f"Billing_Subscription__c.{lookup}"][0] == "NAME"
    assert lists[f"Billing_Usage__c.{lookup}"] == USAGE_COLUMNS


@pytest.mark.parametrize("name", CUSTOM_OBJECTS)
def test_billing_object_layouts_show_every_field_read_only(name: str) -> None:
    obj = custom_objects()[name]
    fields = {
        field
        for section in sections(layout(name, obj.label + " Layout")).values()
        for field in section.items()
    }
    custom = {spec.name for spec in obj.fields.values() if spec.name.endswith("__c")}
    assert {field for field, _ in fields} >= custom | {"Name"}
    name_behavior = "Readonly" if obj.fields["Name"].spec.autonumber else "Required"
    expected = {(field, "Readonly") for field in custom} | {("Name", name_behavior)}
    assert expected <= fields


@pytest.mark.parametrize("obj", ["Account", "Opportunity", *CUSTOM_OBJECTS])
def test_a_record_page_shows_the_record_and_its_related_lists(obj: str) -> None:
    found = [
        root
        for path in sorted(PAGES.glob("*.flexipage-meta.xml"))
        if text(root := parse(path), "sobjectType") == obj
    ]
    assert len(found) == 1, f"{obj}: {len(found)} record pages"
    page = found[0]
    assert text(page, "type") == "RecordPage"
    template = child(page, "template")
    assert template is not None
    assert text(template, "name") == "flexipage:recordHomeTemplateDesktop"
    assert {text(region, "name") for region in page.iter(Q + "flexiPageRegions")} == {
        "header",
        "main",
        "sidebar",
    }
    components = [text(item, "componentName") for item in page.iter(Q + "componentInstance")]
    assert {"force:highlightsPanel", "force:detailPanel", "force:relatedListContainer"} <= set(
        components
    )
    if not obj.endswith("__c"):
        related = {
            text(item, "value")
            for item in page.iter(Q + "componentInstanceProperties")
            if text(item, "name") == "relatedListApiName"
        }
        assert related == {"Billing_Invoices__r", "Billing_Subscriptions__r", "Billing_Usage__r"}


def list_view(obj: str, name: str) -> tuple[str | None, list[tuple[str | None, ...]]]:
    root = parse(OBJECTS / obj / "listViews" / f"{name}.listView-meta.xml")
    filters = [
        (text(item, "field"), text(item, "operation"), text(item, "value"))
        for item in root.iter(Q + "filters")
    ]
    assert text(root, "filterScope") == "Everything"
    return text(root, "label"), filters


def test_the_list_views() -> None:
    assert list_view("Billing_Invoice__c", "Overdue_invoices") == (
        "Overdue invoices",
        [("Days_Overdue__c", "greaterThan", "0")],
    )
    assert list_view("Billing_Invoice__c", "Open_invoices") == (
        "Open invoices",
        [("Balance_Due__c", "greaterThan", "0")],
    )
    assert list_view("Opportunity", "Deals_waiting_for_billing") == (
        "Deals waiting for billing",
        [("Billing_Sync_Status__c", "equals", "Waiting,Error")],
    )


def test_the_report_type_has_invoices_with_their_opportunity_and_account() -> None:
    root = parse(
        SOURCE / "reportTypes" / "Billing_Invoices_with_Opportunity_and_Account.reportType-meta.xml"
    )
    assert (text(root, "baseObject"), flag(root, "deployed")) == ("Billing_Invoice__c", True)
    columns = {text(item, "field") for item in root.iter(Q + "columns")}
    invoice = custom_objects()["Billing_Invoice__c"]
    assert {spec.name for spec in invoice.fields.values() if spec.name.endswith("__c")} - {
        "Account__c",
        "Opportunity__c",
    } <= columns
    assert {"Name", "Opportunity__c.Name", "Account__c.Name"} <= columns


def test_every_billing_object_has_a_tab_and_a_compact_layout() -> None:
    tabs = {path.name.removesuffix(".tab-meta.xml") for path in (SOURCE / "tabs").iterdir()}
    assert tabs == set(CUSTOM_OBJECTS)
    for name in CUSTOM_OBJECTS:
        assignment = text(parse(object_path(name)), "compactLayoutAssignment")
        compact = parse(OBJECTS / name / "compactLayouts" / f"{assignment}.compactLayout-meta.xml")
        fields = [item.text for item in compact.iter(Q + "fields")]
        assert fields[:2] == ["Name", "Type__c" if name == "Billing_Invoice__c" else "Status__c"]


@pytest.fixture
def cycle_settings(ledger_settings: Settings, salesforce_sandbox: Sandbox) -> Settings:
    salesforce = SalesforceSettings(
        instance_url=salesforce_sandbox.instance_url,
        session_id=SecretStr(salesforce_sandbox.session_id),
        ca_file=str(salesforce_sandbox.ca_file),
        backoff_initial_seconds=0.001,
    )
    return ledger_settings.model_copy(update={"salesforce": salesforce})


@pytest.mark.sandbox(seed="demo")
def test_the_writeback_reader_agrees_with_a_real_writeback(
    factory: sessionmaker[Session], cycle_settings: Settings
) -> None:
    """The fields a cycle on the demo org sends are the ones read from the source above."""
    as_of = date(2026, 1, 31)
    assert run_cycle(factory, cycle_settings, as_of).errors == {}
    sent: dict[tuple[str, str], set[str]] = {}
    with factory() as session:
        for obj, key_field, _, fields in writeback.records(session, as_of):
            names = set(fields) | ({key_field} - {"Id"})
            sent.setdefault((obj, key_field), set()).update(names)
    # Nothing is overdue in the demo on this day: the collections Tasks' fields are checked
    # where they are made (tests/sync/test_dunning_quarter.py); the demo meters no usage: the
    # usage records' fields are checked in tests/sync/test_writeback_usage.py.
    apart = ("Task", "Billing_Usage__c")
    assert sent == {kind: names for kind, names in WRITTEN.items() if kind[0] not in apart}


# -- the README ------------------------------------------------------------------------------
def test_the_readme_lists_every_object_and_field() -> None:
    sections = re.split(r"^### ", README.read_text(), flags=re.MULTILINE)[1:]
    listed = {}
    for section in sections:
        heading, _, body = section.partition("\n")
        obj = heading.strip().strip("`")
        listed[obj] = set(re.findall(r"^\| `(\w+__c)` \|", body, flags=re.MULTILINE))
    expected: dict[str, set[str]] = {}
    for name in CUSTOM_FIELDS:
        obj, field_name = name.split(".")
        expected.setdefault(obj, set()).add(field_name)
    assert listed == expected, (
        f"{README.relative_to(ROOT)} should have a section per object (### `Object`) with a row "
        "per custom field (| `Field__c` | ...), as sandbox/salesforce/schema.yaml declares them"
    )


def test_the_invoice_layout_lists_its_files_first() -> None:
    """The PDF the write-back attaches (a Salesforce File) opens from the invoice record."""
    root = layout("Billing_Invoice__c", "Billing Invoice Layout")
    assert list(related_lists(root)) == ["RelatedFileList", "RelatedEntityHistoryList"]
