"""Every XML file under ``config/salesforce`` is metadata the Metadata API accepts, and every
field, object, relationship, tab, page and layout it names exists.

The element tables below are the fields of each metadata type we ship, with their types, as the
Metadata API Developer Guide (API 59.0) lists them: CustomObject, CustomField, Layout, FlexiPage,
CompactLayout, CustomTab, ListView, ReportType, PermissionSet and Package, and the types nested
in them (ActionOverride, ValueSet, LayoutSection, FlexiPageRegion, ...). Elements of those types
that nothing here uses and that are themselves complex (a Layout's miniLayout, a PermissionSet's
classAccesses, ...) are left out: using one fails until its fields are added here from the guide.
An unknown element, an element repeated that is not a list, a missing required element, text in
a complex element, children in a simple one, or a value that is not of its type (boolean, int,
one of an enumeration) fails.

A field a layout, list view, compact layout, report type, record page or permission set names
is one the metadata ships or a standard field of the object (the sandbox schema's standard
fields and the few below it does not declare).
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from defusedxml import ElementTree

from sandbox.salesforce.schema import default_schema

ROOT = Path(__file__).resolve().parents[2]
SALESFORCE = ROOT / "config" / "salesforce"
SOURCE = SALESFORCE / "force-app" / "main" / "default"
OBJECTS = SOURCE / "objects"
NS = "http://soap.sforce.com/2006/04/metadata"
Q = f"{{{NS}}}"

# -- the Metadata API's types ------------------------------------------------------------------
B, INT, S = "boolean", "int", "string"


def enum(*values: str) -> frozenset[str]:
    return frozenset(values)


SHARING_MODEL = enum(
    "Private",
    "Read",
    "ReadSelect",
    "ReadWrite",
    "ReadWriteTransfer",
    "FullAccess",
    "ControlledByParent",
    "ControlledByLeadOrContact",
    "ControlledByCampaign",
)
FIELD_TYPE = enum(
    "AutoNumber",
    "Lookup",
    "MasterDetail",
    "MetadataRelationship",
    "Checkbox",
    "Currency",
    "Date",
    "DateTime",
    "Email",
    "EncryptedText",
    "ExternalLookup",
    "IndirectLookup",
    "Number",
    "Percent",
    "Phone",
    "Picklist",
    "MultiselectPicklist",
    "Summary",
    "Text",
    "TextArea",
    "LongTextArea",
    "Url",
    "Hierarchy",
    "File",
    "Html",
    "Location",
    "Time",
)
FLEXIPAGE_TYPE = enum(
    "AppPage",
    "CommAppPage",
    "CommObjectPage",
    "CommQuickActionCreatePage",
    "CommRecordPage",
    "CommRelatedListPage",
    "CommSearchResultPage",
    "CommThemeLayoutPage",
    "EmbeddedServicePage",
    "HomePage",
    "MailAppAppPage",
    "RecordPage",
    "RecordPreview",
    "UtilityBar",
)
REGION_FLAG = enum("disabled", "enabled")

# Type → {element: its type}. "X[]" is a list of X; a leading "!" marks a required element.
# Every type also has the Metadata type's fullName.
TYPES: dict[str, dict[str, str | frozenset[str]]] = {
    "CustomObject": {
        "actionOverrides": "ActionOverride[]",
        "allowInChatterGroups": B,
        "compactLayoutAssignment": S,
        "customHelp": S,
        "customHelpPage": S,
        "customSettingsType": enum("List", "Hierarchy"),
        "deploymentStatus": enum("InDevelopment", "Deployed"),
        "deprecated": B,
        "description": S,
        "enableActivities": B,
        "enableBulkApi": B,
        "enableDataTranslation": B,
        "enableDivisions": B,
        "enableEnhancedLookup": B,
        "enableFeeds": B,
        "enableHistory": B,
        "enableLicensing": B,
        "enableReports": B,
        "enableSearch": B,
        "enableSharing": B,
        "enableStreamingApi": B,
        "externalDataSource": S,
        "externalName": S,
        "externalRepository": S,
        "externalSharingModel": SHARING_MODEL,
        "household": B,
        "label": S,
        "nameField": "CustomField",
        "pluralLabel": S,
        "recordTypeTrackFeedHistory": B,
        "recordTypeTrackHistory": B,
        "searchLayouts": "SearchLayouts",
        "sharingModel": SHARING_MODEL,
        "startsWith": enum("Consonant", "Vowel", "Special"),
        "visibility": enum("Public", "Protected", "PackageProtected"),
    },
    "ActionOverride": {
        "actionName": S,
        "comment": S,
        "content": S,
        "formFactor": enum("Small", "Medium", "Large"),
        "skipRecordTypeSelect": B,
        "type": enum(
            "Default", "Flexipage", "LightningComponent", "Scontrol", "Standard", "Visualforce"
        ),
    },
    "SearchLayouts": {
        "customTabListAdditionalFields": "string[]",
        "excludedStandardButtons": "string[]",
        "listViewButtons": "string[]",
        "lookupDialogsAdditionalFields": "string[]",
        "lookupFilterFields": "string[]",
        "lookupPhoneDialogsAdditionalFields": "string[]",
        "massQuickActions": "string[]",
        "searchFilterFields": "string[]",
        "searchResultsAdditionalFields": "string[]",
        "searchResultsCustomButtons": "string[]",
    },
    "CustomField": {
        "businessOwnerGroup": S,
        "businessOwnerUser": S,
        "businessStatus": S,
        "caseSensitive": B,
        "complianceGroup": S,
        "customDataType": S,
        "defaultValue": S,
        "deleteConstraint": enum("Cascade", "Restrict", "SetNull"),
        "deprecated": B,
        "description": S,
        "displayFormat": S,
        "encryptionScheme": enum(
            "None",
            "ProbabilisticEncryption",
            "CaseSensitiveDeterministicEncryption",
            "CaseInsensitiveDeterministicEncryption",
        ),
        "escapeMarkup": B,
        "externalDeveloperName": S,
        "externalId": B,
        "fieldManageability": enum("DeveloperControlled", "SubscriberControlled", "Locked"),
        "formula": S,
        "formulaTreatBlanksAs": enum("BlankAsBlank", "BlankAsZero"),
        "inlineHelpText": S,
        "isConvertLeadDisabled": B,
        "isFilteringDisabled": B,
        "isNameField": B,
        "isSortingDisabled": B,
        "label": S,
        "length": INT,
        "maskChar": enum("asterisk", "X"),
        "maskType": enum("all", "creditCard", "ssn", "lastFour", "sin", "nino"),
        "metadataRelationshipControllingField": S,
        "populateExistingRows": B,
        "precision": INT,
        "referenceTargetField": S,
        "referenceTo": S,
        "relationshipLabel": S,
        "relationshipName": S,
        "relationshipOrder": INT,
        "reparentableMasterDetail": B,
        "required": B,
        "restrictedAdminField": B,
        "scale": INT,
        "securityClassification": S,
        "startingNumber": INT,
        "stripMarkup": B,
        "summarizedField": S,
        "summaryForeignKey": S,
        "summaryOperation": enum("count", "sum", "min", "max"),
        "trackFeedHistory": B,
        "trackHistory": B,
        "trackTrending": B,
        "translateData": B,
        "type": FIELD_TYPE,
        "unique": B,
        "valueSet": "ValueSet",
        "visibleLines": INT,
        "writeRequiresMasterRead": B,
    },
    "ValueSet": {
        "controllingField": S,
        "restricted": B,
        "valueSetDefinition": "ValueSetValuesDefinition",
        "valueSetName": S,
    },
    "ValueSetValuesDefinition": {"!sorted": B, "value": "CustomValue[]"},
    "CustomValue": {
        "!fullName": S,
        "color": S,
        "!default": B,
        "description": S,
        "isActive": B,
        "label": S,
    },
    "Layout": {
        "customButtons": "string[]",
        "emailDefault": B,
        "excludeButtons": "string[]",
        "headers": enum("PersonalTagging", "PublicTagging"),
        "layoutSections": "LayoutSection[]",
        "multilineLayoutFields": "string[]",
        "relatedLists": "RelatedListItem[]",
        "relatedObjects": "string[]",
        "runAssignmentRulesDefault": B,
        "showEmailCheckbox": B,
        "showHighlightsPanel": B,
        "showInteractionLogPanel": B,
        "showKnowledgeComponent": B,
        "showRunAssignmentRulesCheckbox": B,
        "showSolutionSection": B,
        "showSubmitAndAttachButton": B,
    },
    "LayoutSection": {
        "customLabel": B,
        "detailHeading": B,
        "editHeading": B,
        "label": S,
        "layoutColumns": "LayoutColumn[]",
        "!style": enum(
            "TwoColumnsTopToBottom", "TwoColumnsLeftToRight", "OneColumn", "CustomLinks"
        ),
    },
    "LayoutColumn": {"layoutItems": "LayoutItem[]", "reserved": S},
    "LayoutItem": {
        "behavior": enum("Edit", "Required", "Readonly"),
        "canvas": S,
        "component": S,
        "customLink": S,
        "emptySpace": B,
        "field": S,
        "height": INT,
        "page": S,
        "scontrol": S,
        "showLabel": B,
        "showScrollbars": B,
        "width": S,
    },
    "RelatedListItem": {
        "customButtons": "string[]",
        "excludeButtons": "string[]",
        "fields": "string[]",
        "quickActions": "string[]",
        "!relatedList": S,
        "sortField": S,
        "sortOrder": enum("Asc", "Desc"),
    },
    "FlexiPage": {
        "description": S,
        "flexiPageRegions": "FlexiPageRegion[]",
        "!masterLabel": S,
        "parentFlexiPage": S,
        "sobjectType": S,
        "!template": "FlexiPageTemplateInstance",
        "!type": FLEXIPAGE_TYPE,
    },
    "FlexiPageRegion": {
        "appendable": REGION_FLAG,
        "itemInstances": "ItemInstance[]",
        "mode": enum("Append", "Prepend", "Replace"),
        "!name": S,
        "prependable": REGION_FLAG,
        "replaceable": REGION_FLAG,
        "!type": enum("Region", "Facet", "Background"),
    },
    "ItemInstance": {"componentInstance": "ComponentInstance", "fieldInstance": "FieldInstance"},
    "ComponentInstance": {
        "componentInstanceProperties": "ComponentInstanceProperty[]",
        "!componentName": S,
        "identifier": S,
    },
    "ComponentInstanceProperty": {
        "name": S,
        "type": enum("decorator"),
        "value": S,
        "valueList": "ComponentInstancePropertyList",
    },
    "ComponentInstancePropertyList": {"valueListItems": "ComponentInstancePropertyListItem[]"},
    "ComponentInstancePropertyListItem": {"value": S},
    "FieldInstance": {
        "fieldInstanceProperties": "FieldInstanceProperty[]",
        "!fieldItem": S,
        "identifier": S,
    },
    "FieldInstanceProperty": {"name": S, "value": S},
    "FlexiPageTemplateInstance": {"!name": S, "properties": "ComponentInstanceProperty[]"},
    "CompactLayout": {"fields": "string[]", "!label": S},
    "CustomTab": {
        "actionOverrides": "ActionOverride[]",
        "auraComponent": S,
        "customObject": B,
        "description": S,
        "flexiPage": S,
        "frameHeight": INT,
        "hasSidebar": B,
        "icon": S,
        "label": S,
        "lwcComponent": S,
        "motif": S,
        "page": S,
        "scontrol": S,
        "splashPageLink": S,
        "url": S,
        "urlEncodingKey": S,
    },
    "ListView": {
        "booleanFilter": S,
        "columns": "string[]",
        "division": S,
        "!filterScope": enum(
            "Everything",
            "Mine",
            "MineAndMyGroups",
            "Queue",
            "Delegated",
            "MyTerritory",
            "MyTeamTerritory",
            "Team",
            "SalesTeam",
            "AssignedToMe",
            "ScopingRule",
        ),
        "filters": "ListViewFilter[]",
        "!label": S,
        "language": S,
        "queue": S,
        "sharedTo": "SharedTo",
    },
    "ListViewFilter": {
        "!field": S,
        "!operation": enum(
            "equals",
            "notEqual",
            "lessThan",
            "greaterThan",
            "lessOrEqual",
            "greaterOrEqual",
            "contains",
            "notContain",
            "startsWith",
            "includes",
            "excludes",
            "within",
        ),
        "value": S,
    },
    "SharedTo": {
        "allCustomerPortalUsers": S,
        "allInternalUsers": S,
        "allPartnerUsers": S,
        "group": "string[]",
        "groups": "string[]",
        "managerSubordinates": "string[]",
        "managers": "string[]",
        "portalRole": "string[]",
        "portalRoleAndSubordinates": "string[]",
        "queue": "string[]",
        "role": "string[]",
        "roleAndSubordinates": "string[]",
        "roleAndSubordinatesInternal": "string[]",
        "roles": "string[]",
        "rolesAndSubordinates": "string[]",
        "territories": "string[]",
        "territoriesAndSubordinates": "string[]",
        "territory": "string[]",
        "territoryAndSubordinates": "string[]",
    },
    "ReportType": {
        "autogenerated": B,
        "!baseObject": S,
        "!category": enum(
            "accounts",
            "opportunities",
            "forecasts",
            "cases",
            "leads",
            "campaigns",
            "activities",
            "busop",
            "products",
            "admin",
            "territory",
            "territory2",
            "usage_entitlement",
            "wdc",
            "calibration",
            "other",
            "content",
            "quotes",
            "individual",
            "employee",
        ),
        "!deployed": B,
        "description": S,
        "join": "ObjectRelationship",
        "!label": S,
        "sections": "ReportLayoutSection[]",
    },
    "ObjectRelationship": {"join": "ObjectRelationship", "!outerJoin": B, "!relationship": S},
    "ReportLayoutSection": {"columns": "ReportTypeColumn[]", "!masterLabel": S},
    "ReportTypeColumn": {
        "!checkedByDefault": B,
        "displayNameOverride": S,
        "!field": S,
        "!table": S,
    },
    "PermissionSet": {
        "description": S,
        "fieldPermissions": "PermissionSetFieldPermissions[]",
        "hasActivationRequired": B,
        "!label": S,
        "license": S,
        "objectPermissions": "PermissionSetObjectPermissions[]",
        "tabSettings": "PermissionSetTabSetting[]",
        "userPermissions": "PermissionSetUserPermission[]",
    },
    "PermissionSetFieldPermissions": {"!editable": B, "!field": S, "readable": B},
    "PermissionSetObjectPermissions": {
        "!allowCreate": B,
        "!allowDelete": B,
        "!allowEdit": B,
        "!allowRead": B,
        "!modifyAllRecords": B,
        "!object": S,
        "viewAllFields": B,
        "!viewAllRecords": B,
    },
    "PermissionSetTabSetting": {"!tab": S, "!visibility": enum("Available", "None", "Visible")},
    "PermissionSetUserPermission": {"!enabled": B, "!name": S},
    "Package": {
        "description": S,
        "types": "PackageTypeMembers[]",
        "!version": S,
    },
    "PackageTypeMembers": {"members": "string[]", "!name": S},
}
METADATA_TYPES = {
    "CustomObject",
    "CustomField",
    "Layout",
    "FlexiPage",
    "CompactLayout",
    "CustomTab",
    "ListView",
    "ReportType",
    "PermissionSet",
    "Package",
}
KINDS = {  # file name ending → root type
    ".object-meta.xml": "CustomObject",
    ".field-meta.xml": "CustomField",
    ".layout-meta.xml": "Layout",
    ".flexipage-meta.xml": "FlexiPage",
    ".compactLayout-meta.xml": "CompactLayout",
    ".tab-meta.xml": "CustomTab",
    ".listView-meta.xml": "ListView",
    ".reportType-meta.xml": "ReportType",
    ".permissionset-meta.xml": "PermissionSet",
    "package.xml": "Package",
}


def _spec(kind: str | frozenset[str]) -> tuple[str | frozenset[str], bool]:
    """(the type, whether the element is a list)."""
    if isinstance(kind, str) and kind.endswith("[]"):
        return kind[:-2], True
    return kind, False


def _value_problem(value: str, kind: str | frozenset[str]) -> str | None:
    if isinstance(kind, frozenset):
        return None if value in kind else f"{value!r} is not one of {sorted(kind)}"
    if kind == B and value not in ("true", "false"):
        return f"{value!r} is not a boolean (true or false)"
    if kind == INT and not re.fullmatch(r"-?[0-9]+", value):
        return f"{value!r} is not an int"
    return None


def problems(element: Element, type_name: str, where: str) -> list[str]:
    """What in ``element`` (of metadata type ``type_name``) the Metadata API would refuse."""
    spec = {name.lstrip("!"): kind for name, kind in TYPES[type_name].items()}
    if type_name in METADATA_TYPES | {"CustomValue"}:
        spec.setdefault("fullName", S)
    required = {name[1:] for name in TYPES[type_name] if name.startswith("!")}
    found: list[str] = []
    if element.attrib:
        found.append(f"{where}: attributes {sorted(element.attrib)} on <{type_name}>")
    counts = Counter(child.tag.removeprefix(Q) for child in element)
    for tag in sorted(required - set(counts)):
        found.append(f"{where}: {type_name} lacks its required <{tag}>")
    for child in element:
        tag = child.tag.removeprefix(Q)
        here = f"{where}/{tag}"
        if not child.tag.startswith(Q):
            found.append(f"{here}: not in the namespace {NS}")
            continue
        if tag not in spec:
            found.append(f"{here}: {type_name} has no element <{tag}>")
            continue
        kind, many = _spec(spec[tag])
        if counts[tag] > 1 and not many:
            found.append(f"{here}: <{tag}> appears {counts[tag]} times in a {type_name}")
        if child.attrib:
            found.append(f"{here}: attributes {sorted(child.attrib)}")
        if isinstance(kind, str) and kind in TYPES:
            if (child.text or "").strip():
                found.append(f"{here}: a {kind} holds elements, not text")
            found.extend(problems(child, kind, here))
        elif len(child):
            found.append(f"{here}: a {kind if isinstance(kind, str) else 'value'} has no elements")
        elif (problem := _value_problem(child.text or "", kind)) is not None:
            found.append(f"{here}: {problem}")
    return found


XML_FILES = sorted(SALESFORCE.rglob("*.xml"))


def kind_of(path: Path) -> str:
    kind = next((kind for suffix, kind in KINDS.items() if path.name.endswith(suffix)), None)
    assert kind is not None, f"{path}: no metadata type ends its name like this"
    return kind


def parse(path: Path) -> Element:
    root: Element = ElementTree.parse(path).getroot()
    return root


def test_the_tables_name_only_described_types() -> None:
    for type_name, elements in TYPES.items():
        for element, kind in elements.items():
            inner, _ = _spec(kind)
            assert isinstance(inner, frozenset) or inner in (B, INT, S) or inner in TYPES, (
                f"{type_name}.{element}: {inner} is not described"
            )


@pytest.mark.parametrize("path", XML_FILES, ids=lambda path: str(path.relative_to(SALESFORCE)))
def test_every_file_is_metadata_the_api_accepts(path: Path) -> None:
    root = parse(path)
    kind = kind_of(path)
    assert root.tag == Q + kind, f"{path}: the root is <{root.tag}>, not <{kind}> in {NS}"
    assert problems(root, kind, kind) == []


def test_the_check_refuses_unknown_elements_and_bad_values() -> None:
    bad = ElementTree.fromstring(
        f'<CustomObject xmlns="{NS}"><sharingModel>ReadOnly</sharingModel>'
        "<enableHistory>yes</enableHistory><label>A</label><label>B</label>"
        "<nameField><type>Text</type><lenght>80</lenght></nameField></CustomObject>"
    )
    assert problems(bad, "CustomObject", "CustomObject") == [
        f"CustomObject/sharingModel: 'ReadOnly' is not one of {sorted(SHARING_MODEL)}",
        "CustomObject/enableHistory: 'yes' is not a boolean (true or false)",
        "CustomObject/label: <label> appears 2 times in a CustomObject",
        "CustomObject/label: <label> appears 2 times in a CustomObject",
        "CustomObject/nameField/lenght: CustomField has no element <lenght>",
    ]
    listview = ElementTree.fromstring(f'<ListView xmlns="{NS}"><columns>NAME</columns></ListView>')
    assert problems(listview, "ListView", "ListView") == [
        "ListView: ListView lacks its required <filterScope>",
        "ListView: ListView lacks its required <label>",
    ]


# -- what the metadata ships -------------------------------------------------------------------
def child(element: Element, tag: str) -> Element | None:
    return element.find(Q + tag)


def text(element: Element, tag: str) -> str:
    found = child(element, tag)
    return "" if found is None else (found.text or "")


def texts(element: Element, path: str) -> list[str]:
    """The text of every element at ``path`` (tags without their namespace, split by /)."""
    qualified = "/".join(Q + part for part in path.split("/"))
    return [item.text or "" for item in element.iterfind(qualified)]


@cache
def shipped_fields() -> dict[str, dict[str, Element]]:
    """Object → custom field → its metadata."""
    found: dict[str, dict[str, Element]] = {}
    for path in sorted(OBJECTS.glob("*/fields/*.field-meta.xml")):
        obj = path.parent.parent.name
        found.setdefault(obj, {})[path.name.removesuffix(".field-meta.xml")] = parse(path)
    return found


# Standard fields Salesforce has that the sandbox schema does not declare.
MORE_STANDARD_FIELDS = {
    "Account": {"AccountNumber", "BillingAddress", "ParentId", "ShippingAddress"},
    "Opportunity": {"ExpectedRevenue", "NextStep"},
}
EVERY_OBJECT_HAS = {"OwnerId", "CreatedById", "LastModifiedById"}


def standard_fields(obj: str) -> set[str]:
    sobject = default_schema().objects[obj]
    declared = {name for name in sobject.fields if not name.endswith("__c")}
    return declared | EVERY_OBJECT_HAS | MORE_STANDARD_FIELDS.get(obj, set())


def fields_of(obj: str) -> set[str]:
    return standard_fields(obj) | set(shipped_fields().get(obj, {}))


def field_type(obj: str, name: str) -> str:
    metadata = shipped_fields().get(obj, {}).get(name)
    return "" if metadata is None else text(metadata, "type")


def lookup_target(obj: str, name: str) -> str | None:
    metadata = shipped_fields().get(obj, {}).get(name)
    if metadata is not None and text(metadata, "type") in ("Lookup", "MasterDetail"):
        return text(metadata, "referenceTo")
    spec = default_schema().objects[obj].fields.get(name)
    return spec.spec.reference_to if spec is not None else None


def picklist_values(obj: str, name: str) -> list[str]:
    metadata = shipped_fields()[obj][name]
    return texts(metadata, "valueSet/valueSetDefinition/value/fullName")


def names(folder: str, suffix: str) -> set[str]:
    return {path.name.removesuffix(suffix) for path in (SOURCE / folder).glob(f"*{suffix}")}


def layouts() -> dict[str, Element]:
    return {
        path.name.removesuffix(".layout-meta.xml"): parse(path)
        for path in sorted((SOURCE / "layouts").glob("*.layout-meta.xml"))
    }


def pages() -> dict[str, Element]:
    return {
        path.name.removesuffix(".flexipage-meta.xml"): parse(path)
        for path in sorted((SOURCE / "flexipages").glob("*.flexipage-meta.xml"))
    }


def list_views() -> dict[str, Element]:
    return {
        f"{path.parent.parent.name}.{path.name.removesuffix('.listView-meta.xml')}": parse(path)
        for path in sorted(OBJECTS.glob("*/listViews/*.listView-meta.xml"))
    }


def compact_layouts() -> dict[str, Element]:
    return {
        f"{path.parent.parent.name}.{path.name.removesuffix('.compactLayout-meta.xml')}": parse(
            path
        )
        for path in sorted(OBJECTS.glob("*/compactLayouts/*.compactLayout-meta.xml"))
    }


def permission_sets() -> dict[str, Element]:
    return {
        path.name.removesuffix(".permissionset-meta.xml"): parse(path)
        for path in sorted((SOURCE / "permissionsets").glob("*.permissionset-meta.xml"))
    }


# -- every name resolves -----------------------------------------------------------------------
# Standard related lists of the layouts, with the columns they may show (their column names are
# the layout's own aliases, not field names).
STANDARD_RELATED_LISTS = {
    "RelatedActivityList": {
        "TASK.SUBJECT",
        "TASK.WHO_NAME",
        "ACTIVITY.TASK",
        "TASK.DUE_DATE",
        "TASK.STATUS",
        "TASK.PRIORITY",
        "CORE.USERS.FULL_NAME",
    },
    "RelatedHistoryList": {
        "TASK.SUBJECT",
        "TASK.WHO_NAME",
        "ACTIVITY.TASK",
        "TASK.DUE_DATE",
        "CORE.USERS.FULL_NAME",
        "TASK.LAST_UPDATE",
    },
    "RelatedNoteList": set(),
    "RelatedEntityHistoryList": set(),
    "RelatedFileList": set(),  # Files: the ContentDocuments linked to the record
    "RelatedContactList": {"FULL_NAME", "CONTACT.TITLE", "CONTACT.EMAIL", "CONTACT.PHONE1"},
    "RelatedOpportunityList": {
        "OPPORTUNITY.NAME",
        "OPPORTUNITY.STAGE_NAME",
        "OPPORTUNITY.AMOUNT",
        "OPPORTUNITY.CLOSE_DATE",
    },
    "RelatedLineItemList": {"Product2", "Quantity", "UnitPrice", "ServiceDate", "Description"},
    "RelatedContactRoleList": {"ContactName", "Role", "ContactTitle", "IsPrimary", "ContactEmail"},
    "RelatedOpportunityHistoryList": set(),
}
# List view column names of standard fields (custom objects name theirs NAME).
LIST_VIEW_COLUMNS = {
    "Opportunity": {
        "OPPORTUNITY.NAME": "Name",
        "ACCOUNT.NAME": "AccountId",
        "OPPORTUNITY.STAGE_NAME": "StageName",
        "OPPORTUNITY.CLOSE_DATE": "CloseDate",
        "OPPORTUNITY.AMOUNT": "Amount",
        "CORE.USERS.ALIAS": "OwnerId",
    },
}


def test_layouts_name_fields_and_related_lists_that_exist() -> None:
    assert layouts(), "no layouts shipped"
    for name, layout in layouts().items():
        obj = name.split("-")[0]
        assert obj in default_schema().objects, f"{name}: no object {obj}"
        for field in texts(layout, "layoutSections/layoutColumns/layoutItems/field"):
            assert field in fields_of(obj), f"{name}: no field {obj}.{field}"
        for related in layout.iterfind(Q + "relatedLists"):
            related_list = text(related, "relatedList")
            columns = texts(related, "fields")
            if "." in related_list:
                child_obj, lookup = related_list.split(".")
                assert lookup_target(child_obj, lookup) == obj, (
                    f"{name}: {related_list} is not a lookup from {child_obj} to {obj}"
                )
                unknown = {c for c in columns if c != "NAME" and c not in fields_of(child_obj)}
                assert not unknown, f"{name}: {related_list} shows unknown columns {unknown}"
                sort = text(related, "sortField")
                assert not sort or sort in fields_of(child_obj), f"{name}: sorts on {sort}"
            else:
                assert related_list in STANDARD_RELATED_LISTS, f"{name}: {related_list}"
                unknown = set(columns) - STANDARD_RELATED_LISTS[related_list]
                assert not unknown, f"{name}: {related_list} shows unknown columns {unknown}"


def test_list_views_name_fields_that_exist_and_filter_on_their_values() -> None:
    assert list_views(), "no list views shipped"
    for name, view in list_views().items():
        obj = name.split(".")[0]
        aliases = LIST_VIEW_COLUMNS.get(obj, {"NAME": "Name"})
        for column in texts(view, "columns"):
            assert aliases.get(column, column) in fields_of(obj), f"{name}: column {column}"
        for item in view.iterfind(Q + "filters"):
            field, value = text(item, "field"), text(item, "value")
            assert field in fields_of(obj), f"{name}: filters on an unknown field {field}"
            kind = field_type(obj, field)
            if kind == "Picklist":
                unknown = set(value.split(",")) - set(picklist_values(obj, field))
                assert not unknown, f"{name}: {field} has no values {unknown}"
            elif kind in ("Number", "Currency", "Percent"):
                assert re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value), f"{name}: {value!r}"


def test_compact_layouts_name_fields_that_exist_and_fit_one() -> None:
    assert compact_layouts(), "no compact layouts shipped"
    for name, layout in compact_layouts().items():
        obj = name.split(".")[0]
        for field in texts(layout, "fields"):
            assert field in fields_of(obj), f"{name}: no field {obj}.{field}"
            # Compact layouts take every type of field but text areas.
            assert field_type(obj, field) not in ("TextArea", "LongTextArea"), f"{name}: {field}"


def test_report_types_name_fields_that_exist() -> None:
    paths = sorted((SOURCE / "reportTypes").glob("*.reportType-meta.xml"))
    assert paths, "no report types shipped"
    for path in paths:
        report_type = parse(path)
        base = text(report_type, "baseObject")
        assert base in default_schema().objects, f"{path.name}: no object {base}"
        assert child(report_type, "join") is None, "joins are not checked here yet"
        for column in report_type.iterfind(f"{Q}sections/{Q}columns"):
            table, field = text(column, "table"), text(column, "field")
            assert table == base, f"{path.name}: a column of {table}"
            if "." in field:  # a field of a parent, through a lookup of the base object
                lookup, parent_field = field.split(".")
                target = lookup_target(base, lookup)
                assert target is not None, f"{path.name}: {lookup} is no lookup of {base}"
                assert parent_field in fields_of(target), f"{path.name}: no {target}.{field}"
            else:
                assert field in fields_of(base), f"{path.name}: no {base}.{field}"


def test_permission_sets_name_fields_objects_and_tabs_that_exist() -> None:
    tabs = names("tabs", ".tab-meta.xml")
    for name, permission_set in permission_sets().items():
        for field in texts(permission_set, "fieldPermissions/field"):
            obj, _, field_name = field.partition(".")
            assert field_name in shipped_fields().get(obj, {}), f"{name}: no field {field}"
        for obj in texts(permission_set, "objectPermissions/object"):
            assert obj in default_schema().objects, f"{name}: no object {obj}"
        for tab in texts(permission_set, "tabSettings/tab"):
            assert tab in tabs, f"{name}: no tab {tab}"


def test_record_pages_show_related_lists_that_exist() -> None:
    assert pages(), "no record pages shipped"
    for name, page in pages().items():
        obj = text(page, "sobjectType")
        sobject = default_schema().objects.get(obj)
        assert sobject is not None, f"{name}: no object {obj}"
        instances = list(page.iter(Q + "componentInstance"))
        identifiers = [text(instance, "identifier") for instance in instances]
        assert len(identifiers) == len(set(identifiers)), f"{name}: identifiers repeat"
        for instance in instances:
            properties = {
                text(item, "name"): text(item, "value")
                for item in instance.iterfind(Q + "componentInstanceProperties")
            }
            if "relatedListApiName" in properties:
                relationship = properties["relatedListApiName"]
                assert sobject.child(relationship) is not None, f"{name}: no {relationship}"
                assert properties["parentFieldApiName"] == f"{obj}.Id"
        for field_item in texts(page, "flexiPageRegions/itemInstances/fieldInstance/fieldItem"):
            assert field_item.removeprefix("Record.") in fields_of(obj), f"{name}: {field_item}"


def test_objects_name_compact_layouts_and_pages_that_exist() -> None:
    for path in sorted(OBJECTS.glob("*/*.object-meta.xml")):
        obj = path.parent.name
        root = parse(path)
        assignment = text(root, "compactLayoutAssignment")
        assert not assignment or f"{obj}.{assignment}" in compact_layouts(), path.name
        for override in root.iterfind(Q + "actionOverrides"):
            if text(override, "type") == "Flexipage":
                page = pages().get(text(override, "content"))
                assert page is not None, f"{path.name}: no record page {text(override, 'content')}"
                assert text(page, "sobjectType") == obj


def test_tabs_are_custom_object_tabs_of_shipped_objects() -> None:
    tabs = names("tabs", ".tab-meta.xml")
    assert tabs
    for tab in tabs:
        root = parse(SOURCE / "tabs" / f"{tab}.tab-meta.xml")
        assert text(root, "customObject") == "true"
        assert (OBJECTS / tab / f"{tab}.object-meta.xml").exists(), f"no custom object {tab}"
        assert re.fullmatch(r"Custom[0-9]+: [A-Za-z /]+", text(root, "motif")), tab


FORMULA_FIELD = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*__c)\b")
FORMULA_PICKLIST = re.compile(r'ISPICKVAL\(\s*([A-Za-z0-9_]+)\s*,\s*"([^"]*)"\s*\)')


def test_formulas_name_fields_and_picklist_values_that_exist() -> None:
    formulas = [
        (obj, name, text(metadata, "formula"))
        for obj, fields in shipped_fields().items()
        for name, metadata in fields.items()
        if text(metadata, "formula")
    ]
    assert formulas, "no formula fields shipped"
    for obj, name, formula in formulas:
        for field in FORMULA_FIELD.findall(formula):
            assert field in fields_of(obj) and field != name, f"{obj}.{name}: {field}"
        for field, value in FORMULA_PICKLIST.findall(formula):
            assert field_type(obj, field) == "Picklist", f"{obj}.{name}: ISPICKVAL({field})"
            assert value in picklist_values(obj, field), f"{obj}.{name}: {field} has no {value}"
        assert formula.count("(") == formula.count(")"), f"{obj}.{name}: unbalanced"
