"""Our request schemas against Xero's official OpenAPI description (xero_accounting.yaml).

For each schema in sandbox/xero/schemas/: the path and method it names exist and
take the component it names as their body; walking our schema alongside that component
($ref resolved, allOf merged), every property we allow exists there and is not read-only,
types agree (number ↔ number/double, our YYYY-MM-DD string ↔ a date or MS-date string, our
GUID pattern ↔ format uuid), our maximum lengths are within theirs, and every enum value we
accept is in their enum. The official file is vendored in official/ (its README says from
which commit of Xero's repository).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from sandbox.xero.validation import SCHEMAS

ROOT = Path(__file__).resolve().parents[3]
OFFICIAL = Path(__file__).resolve().parent / "official" / "xero_accounting.yaml"
SCHEMA_DIR = ROOT / "sandbox" / "xero" / "schemas"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
NUMBER_FORMATS = (None, "double", "float", "decimal")


@functools.cache
def official() -> dict[str, Any]:
    with OFFICIAL.open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.load(handle, Loader=yaml.CSafeLoader)
    return document


def ours(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.json").read_text("utf-8"))
    return schema


def pointer(document: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return dict(node)


def resolve(node: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """``node`` with ``$ref`` followed (sibling keys kept) and ``allOf`` merged."""
    node = dict(node)
    while "$ref" in node:
        target = pointer(document, node.pop("$ref"))
        node = {**target, **node}
    if "allOf" in node:
        merged: dict[str, Any] = {key: value for key, value in node.items() if key != "allOf"}
        for part in node["allOf"]:
            resolved = resolve(part, document)
            merged.setdefault("properties", {}).update(resolved.get("properties", {}))
            for key, value in resolved.items():
                if key != "properties":
                    merged.setdefault(key, value)
        node = merged
    return node


class Comparison:
    """Walks one of our schemas alongside the official component; collects what disagrees."""

    def __init__(self, name: str, schema: dict[str, Any]) -> None:
        self.name = name
        self.schema = schema
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"schemas/{self.name}.json: {path}: {message}")

    def walk(self, mine: dict[str, Any], theirs: dict[str, Any], path: str) -> None:
        mine = resolve(mine, self.schema)
        theirs = resolve(theirs, official())
        for keyword in ("oneOf", "anyOf", "allOf"):
            for index, branch in enumerate(mine.get(keyword, [])):
                self.walk(branch, theirs, f"{path}({keyword}[{index}])")
        their_properties = theirs.get("properties", {})
        for required in mine.get("required", []):
            if required not in their_properties:
                self.problem(path, f"requires {required}, which the official schema lacks")
        kind = mine.get("type")
        if kind is None:
            return
        their_kind = theirs.get("type") or ("object" if their_properties else None)
        compatible = {"number": ("number", "integer"), "integer": ("integer", "number")}
        if their_kind not in compatible.get(kind, (kind,)):
            self.problem(path, f"our type {kind} is {their_kind} in the official schema")
            return
        if kind == "object":
            self.walk_object(mine, theirs, path)
        elif kind == "array":
            self.walk(mine.get("items", {}), theirs.get("items", {}), f"{path}[]")
        elif kind == "number" and theirs.get("format") not in NUMBER_FORMATS:
            self.problem(path, f"official number has format {theirs.get('format')}")
        elif kind == "string":
            self.walk_string(mine, theirs, path)

    def walk_object(self, mine: dict[str, Any], theirs: dict[str, Any], path: str) -> None:
        if mine.get("additionalProperties") is not False:
            self.problem(path, "our object allows additional properties")
        their_properties = theirs.get("properties", {})
        for name, child in mine.get("properties", {}).items():
            child_path = f"{path}.{name}"
            if name not in their_properties:
                self.problem(child_path, "is not a property in the official schema")
                continue
            their_child = resolve(their_properties[name], official())
            if their_child.get("readOnly"):
                self.problem(child_path, "is read-only in the official schema")
            self.walk(child, their_child, child_path)

    def walk_string(self, mine: dict[str, Any], theirs: dict[str, Any], path: str) -> None:
        pattern = mine.get("pattern")
        if pattern == DATE_PATTERN and not (
            theirs.get("format") == "date" or theirs.get("x-is-msdate")
        ):
            self.problem(path, "our date is not a date or MS date in the official schema")
        if pattern == UUID_PATTERN and theirs.get("format") != "uuid":
            self.problem(path, "our GUID is not format uuid in the official schema")
        their_max = theirs.get("maxLength")
        if their_max is not None and mine.get("maxLength", float("inf")) > their_max:
            self.problem(
                path, f"our maxLength {mine.get('maxLength')} exceeds the official {their_max}"
            )
        if "enum" in mine:
            outside = [value for value in mine["enum"] if value not in theirs.get("enum", [])]
            if outside:
                self.problem(path, f"enum values {outside} are not in the official enum")


def methods(schema: dict[str, Any]) -> list[str]:
    method = schema["x-xero-method"]
    return [method] if isinstance(method, str) else list(method)


def compare(name: str, schema: dict[str, Any]) -> list[str]:
    comparison = Comparison(name, schema)
    path = schema["x-xero-path"]
    component = schema["x-xero-schema"]
    operations = official()["paths"].get(path)
    if operations is None:
        comparison.problem("$", f"the official description has no path {path}")
        return comparison.problems
    for method in methods(schema):
        operation = operations.get(method)
        if operation is None:
            comparison.problem("$", f"the official description has no {method.upper()} {path}")
            continue
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        taken = body.get("schema", {}).get("$ref")
        if taken != f"#/components/schemas/{component}":
            comparison.problem("$", f"{method.upper()} {path} takes {taken}, not {component}")
    comparison.walk(schema, {"$ref": f"#/components/schemas/{component}"}, "$")
    return comparison.problems


def test_the_vendored_description_is_the_recorded_one() -> None:
    """official/README.md records the SHA-256 of each file copied from Xero's repository."""
    readme = (OFFICIAL.parent / "README.md").read_text("utf-8")
    recorded = {
        name: digest for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)
    }
    assert recorded.keys() == {"xero_accounting.yaml", "LICENSE"}
    for name, digest in recorded.items():
        assert hashlib.sha256((OFFICIAL.parent / name).read_bytes()).hexdigest() == digest, name


def test_every_schema_file_is_used() -> None:
    assert sorted(path.stem for path in SCHEMA_DIR.glob("*.json")) == sorted(SCHEMAS)


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_well_formed(name: str) -> None:
    schema = ours(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$id"].endswith(f"/{name}.json")
    assert schema["x-xero-path"].startswith("/")
    assert set(methods(schema)) <= {"put", "post"}
    assert schema["x-xero-schema"]


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_matches_the_official_description(name: str) -> None:
    problems = compare(name, ours(name))
    assert not problems, "\n".join(problems)


def test_the_comparison_catches_disagreements() -> None:
    schema = copy.deepcopy(ours("invoices"))
    invoice = schema["properties"]["Invoices"]["items"]
    invoice["properties"]["Colour"] = {"type": "string"}
    invoice["properties"]["Type"]["enum"].append("BOGUS")
    invoice["properties"]["InvoiceNumber"]["maxLength"] = 300
    invoice["properties"]["Total"] = {"type": "number"}
    line = invoice["properties"]["LineItems"]["items"]
    line["properties"]["UnitAmount"] = {"type": "string"}
    line["additionalProperties"] = True
    schema["x-xero-method"] = ["put", "delete"]
    assert compare("invoices", schema) == [
        "schemas/invoices.json: $: the official description has no DELETE /Invoices",
        "schemas/invoices.json: $.Invoices[].Type: enum values ['BOGUS'] are not in the "
        "official enum",
        "schemas/invoices.json: $.Invoices[].InvoiceNumber: our maxLength 300 exceeds the "
        "official 255",
        "schemas/invoices.json: $.Invoices[].LineItems[]: our object allows additional properties",
        "schemas/invoices.json: $.Invoices[].LineItems[].UnitAmount: our type string is "
        "number in the official schema",
        "schemas/invoices.json: $.Invoices[].Colour: is not a property in the official schema",
        "schemas/invoices.json: $.Invoices[].Total: is read-only in the official schema",
    ]
