"""Formula fields translated to SQL: each function and operator computes what Salesforce
computes, and a formula the sandbox cannot compute stops the schema loading with Salesforce's
words for it.

Each case declares one object with a formula field in a schema of its own, stores a record and
reads the field back as a client does (the record with its formula fields computed, and a
query selecting and filtering on it), on a date the org's clock gives.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.salesforce.formula.parser import FormulaError, parse
from sandbox.salesforce.queries import QueryService
from sandbox.salesforce.schema import Schema, default_schema, load_schema
from sandbox.salesforce.store import Org

TODAY = date(2026, 4, 15)
FIELDS: dict[str, Any] = {
    "Name": {"type": "string", "length": 80},
    "Note__c": {"type": "string"},
    "Amount__c": {"type": "currency"},
    "Count__c": {"type": "int"},
    "Due__c": {"type": "date"},
    "Start__c": {"type": "datetime"},
    "End__c": {"type": "datetime"},
    "Status__c": {"type": "picklist", "values": ["Open", "Paid", "Void"]},
    "Active__c": {"type": "boolean"},
}


def schema_with(tmp_path: Path, formulas: dict[str, dict[str, Any]]) -> Schema:
    """A schema of one object, Thing__c, with the fields above and ``formulas``."""
    document = {
        "currencies": ["USD"],
        "corporate_currency": "USD",
        "opportunity_stages": [{"name": "Closed Won", "probability": 100}],
        "objects": {
            # Every org has the standard price book.
            "Pricebook2": {
                "key_prefix": "01s",
                "fields": {
                    "Name": {"type": "string", "required": True},
                    "IsActive": {"type": "boolean"},
                    "IsStandard": {"type": "boolean", "derived": True},
                },
            },
            "Thing__c": {"key_prefix": "a09", "custom": True, "fields": {**FIELDS, **formulas}},
        },
    }
    path = tmp_path / "schema.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return load_schema(path)


def computed(
    tmp_path: Path,
    formula: str,
    values: dict[str, Any],
    *,
    kind: str = "double",
    scale: int = 0,
    blanks: str | None = None,
) -> Any:
    """The value of ``formula`` (a field of type ``kind``) for a record of ``values``, as a
    REST get reads it; a query reads the same and finds the record by it."""
    spec: dict[str, Any] = {"type": kind, "formula": formula}
    if kind in ("double", "currency", "percent"):
        spec["scale"] = scale
    if blanks is not None:
        spec["blanks"] = blanks
    org = Org(
        schema_with(tmp_path, {"Value__c": spec}),
        clock=lambda: datetime(TODAY.year, TODAY.month, TODAY.day, 9, tzinfo=UTC),
    )
    obj = org.schema.objects["Thing__c"]
    record_id = org.create("Thing__c", values)
    value = org.live_row(obj, record_id, computed=True)["Value__c"]
    queries = QueryService(org)
    plan = queries.plan("SELECT Value__c FROM Thing__c", include_deleted=False)
    assert list(queries.rows(plan, [record_id])) == [(record_id, value)]
    if value is not None:
        literal = {"date": value, "datetime": value, "boolean": str(bool(value)).lower()}.get(
            kind, repr(value)
        )
        found = queries.matching_ids(
            queries.plan(f"SELECT Id FROM Thing__c WHERE Value__c = {literal}", False)
        )
        assert found == [record_id]
    return value


# -- each function and operator ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("formula", "values", "expected"),
    [
        ("IF(Amount__c > 10, 1, 2)", {"Amount__c": 11}, 1.0),
        ("IF(Amount__c > 10, 1, 2)", {"Amount__c": 10}, 2.0),
        ("IF(AND(Amount__c > 0, Count__c > 0), 1, 0)", {"Amount__c": 1, "Count__c": 1}, 1.0),
        ("IF(AND(Amount__c > 0, Count__c > 0), 1, 0)", {"Amount__c": 1, "Count__c": 0}, 0.0),
        ("IF(OR(Amount__c > 0, Count__c > 0), 1, 0)", {"Amount__c": 0, "Count__c": 1}, 1.0),
        ("IF(OR(Amount__c > 0, Count__c > 0), 1, 0)", {}, 0.0),
        ("IF(NOT(Active__c), 1, 0)", {"Active__c": False}, 1.0),
        ("IF(NOT(Active__c), 1, 0)", {"Active__c": True}, 0.0),
        ("IF(ISBLANK(Due__c), 1, 0)", {}, 1.0),
        ("IF(ISBLANK(Due__c), 1, 0)", {"Due__c": "2026-04-01"}, 0.0),
        ("IF(ISBLANK(Note__c), 1, 0)", {"Note__c": ""}, 1.0),
        # A blank number counts as zero, so it is never blank (formulaTreatBlanksAs BlankAsZero).
        ("IF(ISBLANK(Amount__c), 1, 0)", {}, 0.0),
        ("Amount__c + 1", {}, 1.0),
        ('IF(ISPICKVAL(Status__c, "Paid"), 1, 0)', {"Status__c": "Paid"}, 1.0),
        ('IF(ISPICKVAL(Status__c, "Paid"), 1, 0)', {"Status__c": "Open"}, 0.0),
        ('IF(ISPICKVAL(Status__c, "paid"), 1, 0)', {"Status__c": "Paid"}, 0.0),  # exact text
        ('IF(ISPICKVAL(Status__c, "Paid"), 1, 0)', {}, 0.0),
        ("IF(ISBLANK(Status__c), 1, 0)", {}, 1.0),
        ("TODAY() - Due__c", {"Due__c": "2026-03-31"}, 15.0),
        ("TODAY() - Due__c", {}, None),
        ("IF(TODAY() > Due__c, 1, 0)", {"Due__c": "2026-04-14"}, 1.0),
        ("IF(TODAY() > Due__c, 1, 0)", {"Due__c": "2026-04-15"}, 0.0),
        ("IF(TODAY() > Due__c, 1, 0)", {}, 0.0),  # a comparison with a blank is false
        ("IF(NOT(TODAY() > Due__c), 1, 0)", {}, 1.0),
        ("BLANKVALUE(Count__c, 7)", {}, 0.0),  # a blank number is 0, not blank
        (
            "End__c - Start__c",
            {"Start__c": "2026-04-01T00:00:00Z", "End__c": "2026-04-02T12:00:00Z"},
            2.0,
        ),
        ("Amount__c * 2 - Count__c / 4", {"Amount__c": 5, "Count__c": 2}, 10.0),
        ("-Amount__c", {"Amount__c": 5}, -5.0),
        ('IF(Name = "Acme", 1, 0)', {"Name": "Acme"}, 1.0),
        ('IF(Name = "acme", 1, 0)', {"Name": "Acme"}, 0.0),  # text compares exactly
        ('IF(Name <> "Acme", 1, 0)', {"Name": "Zeta"}, 1.0),
        ("IF(Count__c == 2, 1, 0)", {"Count__c": 2}, 1.0),
        ("IF(Count__c != 2, 1, 0)", {"Count__c": 2}, 0.0),
        ("IF(Count__c >= 2, 1, 0)", {"Count__c": 2}, 1.0),
        ("IF(Count__c <= 1, 1, 0)", {"Count__c": 2}, 0.0),
        ("IF(Count__c < 3, 1, 0)", {"Count__c": 2}, 1.0),
        ("IF(Active__c = true, 1, 0)", {"Active__c": True}, 1.0),
        ("IF(Due__c = NULL, 1, 0)", {}, 1.0),
        ("if(and(amount__c > 0, true), 1, 0)", {"Amount__c": 1}, 1.0),  # any case
    ],
)
def test_a_number_formula(
    tmp_path: Path, formula: str, values: dict[str, Any], expected: float | None
) -> None:
    assert computed(tmp_path, formula, values) == expected


def test_blank_numbers_stay_blank_when_the_formula_says_so(tmp_path: Path) -> None:
    assert computed(tmp_path, "IF(ISBLANK(Amount__c), 1, 0)", {}, blanks="blank") == 1.0
    assert computed(tmp_path, "Amount__c + 1", {}, blanks="blank") is None
    assert computed(tmp_path, "BLANKVALUE(Amount__c, 7)", {}, blanks="blank") == 7.0


def test_the_result_is_rounded_to_the_fields_scale(tmp_path: Path) -> None:
    assert computed(tmp_path, "Count__c / 3", {"Count__c": 2}, scale=2) == 0.67
    assert computed(tmp_path, "Count__c / 4", {"Count__c": 2}, scale=0) == 1.0  # 0.5 up
    assert computed(tmp_path, "Count__c / 4", {"Count__c": 2}, kind="int") == 1


@pytest.mark.parametrize(
    ("formula", "values", "expected"),
    [
        ("Due__c + 30", {"Due__c": "2026-01-31"}, "2026-03-02"),
        ("30 + Due__c", {"Due__c": "2026-01-31"}, "2026-03-02"),
        ("Due__c - 1", {"Due__c": "2026-03-01"}, "2026-02-28"),
        ("TODAY()", {}, "2026-04-15"),
        ("BLANKVALUE(Due__c, TODAY())", {}, "2026-04-15"),
        ("BLANKVALUE(Due__c, TODAY())", {"Due__c": "2026-01-01"}, "2026-01-01"),
        ("IF(Active__c, Due__c, NULL)", {"Due__c": "2026-01-01"}, None),
    ],
)
def test_a_date_formula(
    tmp_path: Path, formula: str, values: dict[str, Any], expected: str | None
) -> None:
    assert computed(tmp_path, formula, values, kind="date") == expected


def test_a_datetime_formula(tmp_path: Path) -> None:
    values = {"Start__c": "2026-04-01T10:00:00Z"}
    assert computed(tmp_path, "Start__c + 1.5", values, kind="datetime") == (
        "2026-04-02T22:00:00.000+0000"
    )


def test_a_checkbox_formula_is_never_blank(tmp_path: Path) -> None:
    assert computed(tmp_path, "TODAY() > Due__c", {"Due__c": "2026-01-01"}, kind="boolean") == 1
    assert computed(tmp_path, "TODAY() > Due__c", {}, kind="boolean") == 0


def test_a_text_formula(tmp_path: Path) -> None:
    assert computed(tmp_path, 'IF(Active__c, "yes", "no")', {}, kind="string") == "no"
    assert computed(tmp_path, 'BLANKVALUE(Note__c, "(none)")', {}, kind="string") == "(none)"
    assert computed(tmp_path, '"say \\"hi\\""', {}, kind="string") == 'say "hi"'


def test_a_formula_reads_another_formula_field(tmp_path: Path) -> None:
    schema = schema_with(
        tmp_path,
        {
            "Late__c": {"type": "double", "scale": 0, "formula": "TODAY() - Due__c"},
            "Very_Late__c": {"type": "boolean", "formula": "Late__c > 30"},
        },
    )
    org = Org(schema, clock=lambda: datetime(2026, 4, 15, tzinfo=UTC))
    record_id = org.create("Thing__c", {"Due__c": "2026-03-01"})
    row = org.live_row(schema.objects["Thing__c"], record_id, computed=True)
    assert (row["Late__c"], row["Very_Late__c"]) == (45.0, 1)


def test_the_shipped_formula_follows_the_orgs_clock() -> None:
    now = [datetime(2026, 4, 15, 9, tzinfo=UTC)]
    org = Org(default_schema(), clock=lambda: now[0])
    invoices = org.schema.objects["Billing_Invoice__c"]
    due = {"Due_Date__c": "2026-03-31", "Balance_Due__c": 100, "Status__c": "Open"}
    record_id = org.create("Billing_Invoice__c", {"Document_Number__c": "INV-1", **due})

    def days_overdue() -> Any:
        return org.live_row(invoices, record_id, computed=True)["Days_Overdue__c"]

    assert days_overdue() == 15.0
    now[0] = datetime(2026, 3, 31, 23, 59, tzinfo=UTC)
    assert days_overdue() == 0.0  # due today: not overdue yet
    now[0] = datetime(2026, 5, 1, tzinfo=UTC)
    assert days_overdue() == 31.0
    for changed, expected in [
        ({"Status__c": "Paid"}, 0.0),
        ({"Status__c": "Void"}, 0.0),
        ({"Status__c": "Partially Paid"}, 31.0),
        ({"Balance_Due__c": 0}, 0.0),
        ({"Balance_Due__c": None}, 0.0),  # blank as zero
        ({"Due_Date__c": None}, 0.0),
    ]:
        org.update("Billing_Invoice__c", record_id, {**due, "Status__c": "Open", **changed})
        assert days_overdue() == expected, changed


def test_formula_fields_have_no_column() -> None:
    org = Org(default_schema())
    columns = {row[1] for row in org.db.execute('PRAGMA table_info("Billing_Invoice__c")')}
    assert "Due_Date__c" in columns
    assert "Days_Overdue__c" not in columns


# -- what stops the schema loading ------------------------------------------------------------
@pytest.mark.parametrize(
    ("formula", "kind", "message"),
    [
        ("FOO(Amount__c)", "double", "Unknown function FOO. Check spelling."),
        ("Amount + 1", "double", "Field Amount does not exist. Check spelling."),
        (
            "Account__r.Name",
            "string",
            "Field Account__r.Name: fields of other objects are not supported by the sandbox",
        ),
        (
            "IF(Active__c, 1)",
            "double",
            "Incorrect number of parameters for function 'IF()'. Expected 3, received 2",
        ),
        (
            "NOT(Active__c, Active__c)",
            "boolean",
            "Incorrect number of parameters for function 'NOT()'. Expected 1, received 2",
        ),
        (
            "TODAY(1)",
            "date",
            "Incorrect number of parameters for function 'TODAY()'. Expected 0, received 1",
        ),
        (
            "AND()",
            "boolean",
            "Incorrect number of parameters for function 'AND()'. Expected 1 or more, received 0",
        ),
        (
            "NOT(Amount__c)",
            "boolean",
            "Incorrect parameter type for function 'NOT()'. Expected Boolean, received Number",
        ),
        (
            "IF(Amount__c, 1, 0)",
            "double",
            "Incorrect parameter type for function 'IF()'. Expected Boolean, received Number",
        ),
        (
            'IF(Active__c, 1, "one")',
            "double",
            "Incorrect parameter type for function 'IF()'. Expected Number, received Text",
        ),
        (
            'ISPICKVAL(Name, "Acme")',
            "boolean",
            "Incorrect parameter type for function 'ISPICKVAL()'. Expected Picklist, received Text",
        ),
        (
            "ISPICKVAL(Status__c, Name)",
            "boolean",
            "Incorrect parameter type for function 'ISPICKVAL()'. Expected Text literal, "
            "received Text",
        ),
        (
            'Status__c = "Paid"',
            "boolean",
            "Field Status__c is a picklist field. Picklist fields are only supported in "
            "certain functions.",
        ),
        (
            "Due__c + Due__c",
            "date",
            "Incorrect parameter type for operator '+'. Expected Number, received Date",
        ),
        (
            "Name * 2",
            "double",
            "Incorrect parameter type for operator '*'. Expected Number, received Text",
        ),
        (
            "Due__c - Start__c",
            "double",
            "Incorrect parameter type for operator '-'. Expected Number, Date, received DateTime",
        ),
        (
            "Due__c > 1",
            "boolean",
            "Incorrect parameter type for operator '>'. Expected Date, received Number",
        ),
        (
            "Active__c > Active__c",
            "boolean",
            "Incorrect parameter type for operator '>'. Expected Number, Text, Date, DateTime, "
            "received Boolean",
        ),
        (
            "-Name",
            "double",
            "Incorrect parameter type for operator '-'. Expected Number, received Text",
        ),
        (
            "TODAY()",
            "double",
            "Formula result is data type (Date), incompatible with expected data type (Number).",
        ),
        ("IF(Active__c, 1, 0", "double", "Syntax error. Missing ')'"),
        ("Amount__c +", "double", "Syntax error. Missing an operand at the end"),
        ("Amount__c ? 1", "double", "Syntax error. Found '?'"),
        ('"\\q"', "string", "Syntax error. Invalid escape sequence '\\q'"),
    ],
)
def test_a_formula_the_sandbox_cannot_compute_stops_the_schema_loading(
    tmp_path: Path, formula: str, kind: str, message: str
) -> None:
    with pytest.raises(ValueError, match="formula of") as refused:
        schema_with(tmp_path, {"Value__c": {"type": kind, "formula": formula}})
    assert str(refused.value) == f"formula of Thing__c.Value__c: {message}"


def test_formulas_in_a_circle_stop_the_schema_loading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="circular") as refused:
        schema_with(
            tmp_path,
            {
                "A__c": {"type": "double", "formula": "B__c + 1"},
                "B__c": {"type": "double", "formula": "A__c + 1"},
            },
        )
    assert str(refused.value) == (
        "formula of Thing__c.A__c: circular reference: A__c -> B__c -> A__c"
    )


def test_blanks_is_a_setting_of_formula_fields_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="blanks is a setting of formula fields"):
        schema_with(tmp_path, {"Value__c": {"type": "double", "blanks": "zero"}})


def test_a_syntax_error_is_a_formula_error() -> None:
    with pytest.raises(FormulaError, match="Missing"):
        parse("IF(")
