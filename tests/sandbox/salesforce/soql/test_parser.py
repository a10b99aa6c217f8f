"""The SOQL parser: whole AST trees for what connectors send, exact messages for the rest."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from connector.errors import ConnectorError
from sandbox.salesforce.soql.ast import (
    And,
    Comparison,
    Condition,
    Count,
    FieldRef,
    InList,
    Not,
    Or,
    OrderItem,
    Query,
    RelativeDate,
    SemiJoin,
    SubQuery,
    Value,
)
from sandbox.salesforce.soql.parser import SoqlError, parse


def f(text: str) -> FieldRef:
    return FieldRef(tuple(text.split(".")))


def eq(field: str, value: Value) -> Comparison:
    return Comparison(f(field), "=", value)


def where(condition: Condition) -> Query:
    """The tree of ``SELECT Id FROM Account WHERE <condition>``."""
    return Query((f("Id"),), "Account", where=condition)


def parse_where(text: str) -> Query:
    return parse(f"SELECT Id FROM Account WHERE {text}")


def error(text: str) -> str:
    with pytest.raises(SoqlError) as caught:
        parse(text)
    return str(caught.value)


# ---- field list and FROM ----------------------------------------------------------------


def test_plain_fields() -> None:
    assert parse("SELECT Id, Name FROM Account") == Query((f("Id"), f("Name")), "Account")


def test_parent_paths_of_any_depth_and_custom_names() -> None:
    query = parse(
        "SELECT Id, Account.Name, Opportunity.Account.BillingCountry, Billing_Type__c, "
        "Amends_Opportunity__r.Account.Owner.Name FROM OpportunityLineItem"
    )
    assert query == Query(
        (
            FieldRef(("Id",)),
            FieldRef(("Account", "Name")),
            FieldRef(("Opportunity", "Account", "BillingCountry")),
            FieldRef(("Billing_Type__c",)),
            FieldRef(("Amends_Opportunity__r", "Account", "Owner", "Name")),
        ),
        "OpportunityLineItem",
    )


def test_child_subquery() -> None:
    query = parse(
        "SELECT Id, (SELECT Id, Quantity FROM OpportunityLineItems WHERE Quantity > 1 "
        "ORDER BY SortOrder LIMIT 5), Name FROM Opportunity"
    )
    child = Query(
        (f("Id"), f("Quantity")),
        "OpportunityLineItems",
        where=Comparison(f("Quantity"), ">", 1),
        order_by=(OrderItem(f("SortOrder")),),
        limit=5,
    )
    assert query == Query((f("Id"), SubQuery(child), f("Name")), "Opportunity")


@pytest.mark.parametrize(
    ("text", "item"),
    [
        ("COUNT()", Count()),
        ("count()", Count()),
        ("COUNT(Id)", Count(f("Id"))),
        ("COUNT(Id) total", Count(f("Id"), "total")),
        ("Count(Account.Name) names", Count(f("Account.Name"), "names")),
        ("COUNT() n", Count(None, "n")),
    ],
)
def test_count(text: str, item: Count) -> None:
    assert parse(f"SELECT {text} FROM Account") == Query((item,), "Account")


def test_several_counts() -> None:
    query = parse("SELECT COUNT(Id), COUNT(Name) n FROM Account")
    assert query == Query((Count(f("Id")), Count(f("Name"), "n")), "Account")


@pytest.mark.parametrize("sobject", ["Order", "Group", "order", "Offset__c"])
def test_keywords_that_are_not_reserved_can_name_objects(sobject: str) -> None:
    query = parse(f"SELECT Id FROM {sobject} ORDER BY Id")
    assert query == Query((f("Id"),), sobject, order_by=(OrderItem(f("Id")),))


def test_names_that_start_with_keywords() -> None:
    query = parse(
        "SELECT FirstName, Order.Name, Industry, Notes__c, Limit__c FROM OrderItem "
        "WHERE Industry IN ('x') AND Order.Status = 'Draft'"
    )
    assert query == Query(
        (f("FirstName"), f("Order.Name"), f("Industry"), f("Notes__c"), f("Limit__c")),
        "OrderItem",
        where=And((InList(f("Industry"), ("x",)), eq("Order.Status", "Draft"))),
    )


def test_keywords_are_case_insensitive_and_whitespace_is_free() -> None:
    text = "select\n  Id ,Name\r\nfrom\tAccount where Name='a'and Id != null\n order  by\nName desc"
    assert parse(text) == Query(
        (f("Id"), f("Name")),
        "Account",
        where=And((eq("Name", "a"), Comparison(f("Id"), "!=", None))),
        order_by=(OrderItem(f("Name"), descending=True),),
    )


def test_every_clause_in_order() -> None:
    query = parse(
        "SELECT Id FROM Account WHERE Name = 'x' ORDER BY Name ASC NULLS FIRST, "
        "CreatedDate DESC NULLS LAST, Id LIMIT 10 OFFSET 20"
    )
    assert query == Query(
        (f("Id"),),
        "Account",
        where=eq("Name", "x"),
        order_by=(
            OrderItem(f("Name"), descending=False, nulls_last=False),
            OrderItem(f("CreatedDate"), descending=True, nulls_last=True),
            OrderItem(f("Id")),
        ),
        limit=10,
        offset=20,
    )


@pytest.mark.parametrize(
    ("text", "item"),
    [
        ("Name", OrderItem(f("Name"))),
        ("Name asc", OrderItem(f("Name"))),
        ("Name DESC", OrderItem(f("Name"), descending=True)),
        ("Name nulls first", OrderItem(f("Name"), nulls_last=False)),
        ("Account.Name NULLS LAST", OrderItem(f("Account.Name"), nulls_last=True)),
    ],
)
def test_order_by_item(text: str, item: OrderItem) -> None:
    assert parse(f"SELECT Id FROM Account ORDER BY {text}").order_by == (item,)


@pytest.mark.parametrize(
    ("text", "limit", "offset"),
    [
        ("LIMIT 0", 0, None),
        ("LIMIT 200", 200, None),
        ("OFFSET 5", None, 5),
        ("LIMIT 1 OFFSET 0", 1, 0),
    ],
)
def test_limit_and_offset(text: str, limit: int | None, offset: int | None) -> None:
    assert parse(f"SELECT Id FROM Account {text}") == Query(
        (f("Id"),), "Account", limit=limit, offset=offset
    )


# ---- WHERE ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("=", "="),
        ("!=", "!="),
        ("<>", "!="),
        ("<", "<"),
        ("<=", "<="),
        (">", ">"),
        (">=", ">="),
        ("LIKE", "LIKE"),
        ("like", "LIKE"),
    ],
)
def test_comparison_operators(op: str, expected: str) -> None:
    assert parse_where(f"Amount {op} 5") == where(Comparison(f("Amount"), expected, 5))


def test_operators_need_no_spaces() -> None:
    assert parse_where("Amount>=-5") == where(Comparison(f("Amount"), ">=", -5))


def test_null_comparisons() -> None:
    assert parse_where("Name = null OR Name != NULL") == where(
        Or((eq("Name", None), Comparison(f("Name"), "!=", None)))
    )


def test_and_chains_are_flattened() -> None:
    assert parse_where("a = 1 AND b = 2 AND c = 3") == where(
        And((eq("a", 1), eq("b", 2), eq("c", 3)))
    )


def test_or_chains_are_flattened() -> None:
    assert parse_where("a = 1 OR b = 2 OR c = 3") == where(Or((eq("a", 1), eq("b", 2), eq("c", 3))))


def test_parenthesised_groups_of_the_same_kind_are_flattened() -> None:
    assert parse_where("(a = 1 OR b = 2) OR (c = 3 OR (d = 4))") == where(
        Or((eq("a", 1), eq("b", 2), eq("c", 3), eq("d", 4)))
    )
    assert parse_where("a = 1 AND (b = 2 AND c = 3)") == where(
        And((eq("a", 1), eq("b", 2), eq("c", 3)))
    )


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            "a = 1 OR b = 2 AND c = 3 OR d = 4",
            "mixing AND and OR needs parentheses around the AND conditions",
        ),
        (
            "a = 1 AND b = 2 OR c = 3",
            "mixing AND and OR needs parentheses around the AND conditions",
        ),
        (
            "(a = 1 OR b = 2) AND c = 3 OR d = 4",
            "mixing AND and OR needs parentheses around the AND conditions",
        ),
    ],
)
def test_and_and_or_mix_only_through_parentheses(condition: str, message: str) -> None:
    with pytest.raises(SoqlError) as raised:
        parse_where(condition)
    assert str(raised.value) == message


def test_parenthesised_and_inside_or() -> None:
    assert parse_where("a = 1 OR (b = 2 AND c = 3) OR d = 4") == where(
        Or((eq("a", 1), And((eq("b", 2), eq("c", 3))), eq("d", 4)))
    )


def test_parentheses_override_precedence() -> None:
    assert parse_where("(a = 1 OR b = 2) AND c = 3") == where(
        And((Or((eq("a", 1), eq("b", 2))), eq("c", 3)))
    )


def test_not_binds_tightest() -> None:
    assert parse_where("NOT a = 1 AND b = 2") == where(And((Not(eq("a", 1)), eq("b", 2))))
    assert parse_where("not (a = 1 OR b = 2)") == where(Not(Or((eq("a", 1), eq("b", 2)))))
    assert parse_where("NOT NOT a = 1") == where(Not(Not(eq("a", 1))))


def test_in_lists() -> None:
    assert parse_where("Id IN ('a', 'b') AND Amount NOT IN (1, 2.5, null)") == where(
        And(
            (
                InList(f("Id"), ("a", "b")),
                InList(f("Amount"), (1, Decimal("2.5"), None), negated=True),
            )
        )
    )


def test_semi_joins() -> None:
    inner = Query((f("AccountId"),), "Opportunity", where=Comparison(f("IsWon"), "=", True))
    assert parse_where(
        "Id IN (SELECT AccountId FROM Opportunity WHERE IsWon = true) "
        "AND Id NOT IN (SELECT AccountId FROM Contact)"
    ) == where(
        And(
            (
                SemiJoin(f("Id"), inner),
                SemiJoin(f("Id"), Query((f("AccountId"),), "Contact"), negated=True),
            )
        )
    )


# ---- literals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("'Acme'", "Acme"),
        ("''", ""),
        ("'GROUP BY'", "GROUP BY"),
        (r"'O\'Brien'", "O'Brien"),
        (r"'say \"hi\"'", 'say "hi"'),
        (r"'a\\b'", "a\\b"),
        (r"'\n\r\t\b\f'", "\n\r\t\b\f"),
        (r"'50\%'", "50\\%"),
        (r"'a\_b'", "a\\_b"),
        ("'two\nlines'", "two\nlines"),
        ("42", 42),
        ("-7", -7),
        ("+3", 3),
        ("0", 0),
        ("1.5", Decimal("1.5")),
        ("-2.25", Decimal("-2.25")),
        (".5", Decimal("0.5")),
        ("10.50", Decimal("10.50")),
        ("true", True),
        ("TRUE", True),
        ("False", False),
        ("null", None),
        ("NULL", None),
        ("2024-01-31", date(2024, 1, 31)),
        ("2024-02-29", date(2024, 2, 29)),
        ("2024-01-31T10:00:00Z", datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("2024-01-31T10:00:00.000Z", datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("2024-01-31T10:00:00.000000Z", datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("2024-01-31T10:00:00.5Z", datetime(2024, 1, 31, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2024-01-31T10:00:00.1234567Z", datetime(2024, 1, 31, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-01-31T10:00:00+05:30", datetime(2024, 1, 31, 4, 30, tzinfo=UTC)),
        ("2024-01-31T23:30:00-08:00", datetime(2024, 2, 1, 7, 30, tzinfo=UTC)),
        ("2024-01-31T10:00:00+0100", datetime(2024, 1, 31, 9, tzinfo=UTC)),
        ("2024-01-31T10:00:00.250-0200", datetime(2024, 1, 31, 12, 0, 0, 250000, tzinfo=UTC)),
        ("TODAY", RelativeDate("TODAY")),
        ("today", RelativeDate("TODAY")),
        ("Last_Month", RelativeDate("LAST_MONTH")),
        ("LAST_90_DAYS", RelativeDate("LAST_90_DAYS")),
        ("LAST_N_DAYS:30", RelativeDate("LAST_N_DAYS", 30)),
        ("last_n_days:7", RelativeDate("LAST_N_DAYS", 7)),
        ("N_QUARTERS_AGO:0", RelativeDate("N_QUARTERS_AGO", 0)),
    ],
)
def test_literal(text: str, value: Value) -> None:
    assert parse_where(f"X__c = {text}") == where(eq("X__c", value))


def test_datetimes_are_aware_utc() -> None:
    value = parse_where("CreatedDate > 2024-01-31T10:00:00+05:30").where
    assert isinstance(value, Comparison)
    assert isinstance(value.value, datetime)
    assert value.value.tzinfo is UTC


def test_literals_in_in_lists() -> None:
    assert parse_where("d IN (2024-01-31, TODAY, LAST_N_DAYS:3, 'x', 1.0, false)") == where(
        InList(
            f("d"),
            (
                date(2024, 1, 31),
                RelativeDate("TODAY"),
                RelativeDate("LAST_N_DAYS", 3),
                "x",
                Decimal("1.0"),
                False,
            ),
        )
    )


# ---- errors -----------------------------------------------------------------------------


def test_soql_error_is_a_connector_error() -> None:
    assert issubclass(SoqlError, ConnectorError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "SELECT Name FROM Account GROUP BY Name",
            "GROUP BY is not supported by the sandbox",
        ),
        (
            "SELECT Id FROM Account WHERE Name = 'x' GROUP BY ROLLUP(Name)",
            "GROUP BY is not supported by the sandbox",
        ),
        (
            "SELECT Id FROM Account HAVING COUNT(Id) > 1",
            "HAVING is not supported by the sandbox",
        ),
        (
            "SELECT TYPEOF What WHEN Account THEN Phone ELSE Name END FROM Event",
            "TYPEOF is not supported by the sandbox",
        ),
        (
            "SELECT Id FROM Account WITH SECURITY_ENFORCED",
            "WITH SECURITY_ENFORCED is not supported by the sandbox",
        ),
        (
            "SELECT Id FROM Account WHERE Name = 'x' with security_enforced ORDER BY Id",
            "WITH SECURITY_ENFORCED is not supported by the sandbox",
        ),
        (
            "SELECT Id FROM KnowledgeArticleVersion WITH DATA CATEGORY Geography__c AT usa__c",
            "WITH DATA CATEGORY is not supported by the sandbox",
        ),
        ("SELECT Id FROM Account WITH USER_MODE", "WITH USER_MODE is not supported by the sandbox"),
        (
            "SELECT Id FROM Vote WITH UserId = '005000000000001'",
            "WITH UserId is not supported by the sandbox",
        ),
        ("SELECT Id FROM Account FOR VIEW", "FOR VIEW is not supported by the sandbox"),
        ("SELECT Id FROM Account LIMIT 1 FOR UPDATE", "FOR UPDATE is not supported by the sandbox"),
        ("SELECT Id FROM Account for reference", "FOR REFERENCE is not supported by the sandbox"),
        (
            "SELECT Id FROM FAQ__kav UPDATE TRACKING",
            "UPDATE TRACKING is not supported by the sandbox",
        ),
        (
            "SELECT Id FROM Account USING SCOPE mine WHERE Name = 'x'",
            "USING SCOPE is not supported by the sandbox",
        ),
        (
            "SELECT Id FROM Account WHERE Colors__c INCLUDES ('red;blue')",
            "INCLUDES is not supported by the sandbox",
        ),
        (
            "SELECT Id FROM Account WHERE Colors__c excludes ('red')",
            "EXCLUDES is not supported by the sandbox",
        ),
        (
            "SELECT SUM(Amount) FROM Opportunity",
            "aggregate function SUM() is not supported by the sandbox",
        ),
        (
            "SELECT avg(Amount) FROM Opportunity",
            "aggregate function AVG() is not supported by the sandbox",
        ),
        (
            "SELECT MIN(Amount) m FROM Opportunity",
            "aggregate function MIN() is not supported by the sandbox",
        ),
        (
            "SELECT MAX(Amount) FROM Opportunity",
            "aggregate function MAX() is not supported by the sandbox",
        ),
        (
            "SELECT COUNT_DISTINCT(Name) FROM Account",
            "aggregate function COUNT_DISTINCT() is not supported by the sandbox",
        ),
        (
            "SELECT Id FROM Opportunity WHERE CALENDAR_YEAR(CloseDate) = 2024",
            "date function CALENDAR_YEAR() is not supported by the sandbox",
        ),
        (
            "SELECT DAY_ONLY(CreatedDate) FROM Account",
            "date function DAY_ONLY() is not supported by the sandbox",
        ),
        (
            "SELECT Id FROM Opportunity ORDER BY calendar_month(CloseDate)",
            "date function CALENDAR_MONTH() is not supported by the sandbox",
        ),
        (
            "SELECT FIELDS(ALL) FROM Account LIMIT 200",
            "FIELDS(ALL) is not supported by the sandbox",
        ),
        (
            "SELECT FIELDS(standard) FROM Account",
            "FIELDS(STANDARD) is not supported by the sandbox",
        ),
        ("SELECT fields(CUSTOM) FROM Account", "FIELDS(CUSTOM) is not supported by the sandbox"),
        ("SELECT TOLABEL(Status) FROM Lead", "function toLabel() is not supported by the sandbox"),
        (
            "SELECT convertCurrency(Amount) FROM Opportunity",
            "function convertCurrency() is not supported by the sandbox",
        ),
        (
            "SELECT FORMAT(CloseDate) FROM Opportunity",
            "function FORMAT() is not supported by the sandbox",
        ),
        (
            "SELECT Id FROM Account WHERE DISTANCE(Location__c, GEOLOCATION(1.5, -2), 'mi') < 20",
            "function GEOLOCATION() is not supported by the sandbox",
        ),
        (
            "SELECT Frobnicate(Name) FROM Account",
            "function Frobnicate() is not supported by the sandbox",
        ),
        (
            "SELECT Name n FROM Account",
            "field alias n is not supported by the sandbox (only COUNT(field) takes one)",
        ),
        (
            "SELECT a.Name FROM Account a",
            "object alias a is not supported by the sandbox (FROM Account a)",
        ),
        (
            "SELECT Id FROM Account WHERE CloseDate = THIS_FISCAL_QUARTER",
            "fiscal date literal THIS_FISCAL_QUARTER is not supported by the sandbox",
        ),
        (
            "SELECT Id FROM Account WHERE CloseDate = last_fiscal_year",
            "fiscal date literal LAST_FISCAL_YEAR is not supported by the sandbox",
        ),
        (
            "SELECT Id FROM Account WHERE CloseDate = NEXT_N_FISCAL_QUARTERS:2",
            "fiscal date literal NEXT_N_FISCAL_QUARTERS:2 is not supported by the sandbox",
        ),
    ],
)
def test_unsupported_construct(text: str, message: str) -> None:
    assert error(text) == message


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ("2024-02-30", "invalid date literal: 2024-02-30"),
        ("2023-02-29", "invalid date literal: 2023-02-29"),
        ("2024-13-01", "invalid date literal: 2024-13-01"),
        ("0000-01-01", "invalid date literal: 0000-01-01"),
        ("2024-01-31T10:00:00", "invalid datetime literal: 2024-01-31T10:00:00"),
        ("2024-01-31T10:00Z", "invalid datetime literal: 2024-01-31T10:00Z"),
        ("2024-01-31T25:00:00Z", "invalid datetime literal: 2024-01-31T25:00:00Z"),
        ("2024-02-30T10:00:00Z", "invalid datetime literal: 2024-02-30T10:00:00Z"),
        ("2024-01-31T10:00:00+24:00", "invalid datetime literal: 2024-01-31T10:00:00+24:00"),
        ("2024-01-31T10:00:00+05:60", "invalid datetime literal: 2024-01-31T10:00:00+05:60"),
        ("2024-01-31T10:00:00.Z", "invalid datetime literal: 2024-01-31T10:00:00.Z"),
        ("9999-12-31T23:00:00-05:00", "invalid datetime literal: 9999-12-31T23:00:00-05:00"),
        (
            r"'a\qb'",
            r"Invalid string literal 'a\qb'. Illegal character sequence '\q' in string literal.",
        ),
        (
            r"'\u0041'",
            r"Invalid string literal '\u0041'. Illegal character sequence '\u' in string literal.",
        ),
        ("Acme", "unknown date literal: Acme"),
        ("LAST_N_WEEK:2", "unknown date literal: LAST_N_WEEK:2"),
        ("LAST_N_DAYS", "date literal LAST_N_DAYS needs a number: LAST_N_DAYS:n"),
        ("today:3", "date literal TODAY takes no number: TODAY:3"),
    ],
)
def test_malformed_literal(literal: str, message: str) -> None:
    assert error(f"SELECT Id FROM Account WHERE X__c = {literal}") == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT Id FROM Account LIMIT -1", "LIMIT must be a non-negative integer, not -1"),
        ("SELECT Id FROM Account LIMIT 1.5", "LIMIT must be a non-negative integer, not 1.5"),
        ("SELECT Id FROM Account OFFSET +2", "OFFSET must be a non-negative integer, not +2"),
        ("SELECT COUNT(), Id FROM Account", "COUNT() must be the only item in the field list"),
        ("SELECT Id, COUNT() FROM Account", "COUNT() must be the only item in the field list"),
        (
            "SELECT COUNT(Id, Name) FROM Account",
            "COUNT takes at most one field: COUNT() or COUNT(field)",
        ),
        (
            "SELECT COUNT('x') FROM Account",
            "COUNT takes at most one field: COUNT() or COUNT(field)",
        ),
        ("SELECT Id FROM Account WHERE COUNT(Id) > 1", "COUNT(Id) cannot be used in WHERE"),
        ("SELECT Id FROM Account ORDER BY COUNT()", "COUNT() cannot be used in ORDER BY"),
    ],
)
def test_invalid_query(text: str, message: str) -> None:
    assert error(text) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT Id, FROM Account", "unexpected token: 'FROM' at Row:1:Column:12"),
        ("SELECT FROM Account", "unexpected token: 'FROM' at Row:1:Column:8"),
        ("SELECT Id FROM", "unexpected token: <EOF> at Row:1:Column:15"),
        ("SELECT Id FROM Account WHERE", "unexpected token: <EOF> at Row:1:Column:29"),
        (
            "SELECT Id FROM Account WHERE Name = 'x' AND ",
            "unexpected token: <EOF> at Row:1:Column:44",
        ),
        ("", "unexpected token: <EOF> at Row:1:Column:1"),
        ("   ", "unexpected token: <EOF> at Row:1:Column:1"),
        ("Id FROM Account", "unexpected token: 'Id' at Row:1:Column:1"),
        (
            "SELECT Id\nFROM Account\nWHERE Name = 'x' Id = 'y'",
            "unexpected token: 'Id' at Row:3:Column:18",
        ),
        ("SELECT Id FROM Account\n  LIMIT", "unexpected token: <EOF> at Row:2:Column:8"),
        (
            "SELECT Id FROM Account OFFSET 5 LIMIT 10",
            "unexpected token: 'LIMIT' at Row:1:Column:33",
        ),
        (
            "SELECT Id FROM Account LIMIT 5 WHERE Name = 'x'",
            "unexpected token: 'WHERE' at Row:1:Column:32",
        ),
        (
            "SELECT Id FROM Account ORDER BY Id WHERE Id = 'x'",
            "unexpected token: 'WHERE' at Row:1:Column:36",
        ),
        ("SELECT Id FROM Account WHERE Id IN ()", "unexpected token: ')' at Row:1:Column:37"),
        (
            "SELECT Id FROM Account WHERE Name NOT LIKE 'a%'",
            "unexpected token: 'LIKE' at Row:1:Column:39",
        ),
        ("SELECT Id FROM Account WHERE Amount == 1", "unexpected token: '=' at Row:1:Column:38"),
        ("SELECT Id FROM Account WHERE Id IN :ids", "unexpected token: ':' at Row:1:Column:36"),
        ('SELECT Id FROM Account WHERE Name = "x"', "unexpected token: '\"' at Row:1:Column:37"),
        ("SELECT Null FROM Account", "unexpected token: 'Null' at Row:1:Column:8"),
        (
            "SELECT Id FROM Account WHERE Name = 'x",
            "unterminated string literal at Row:1:Column:37",
        ),
        ("SELECT Id FROM Account FOR SHARE", "unexpected token: 'SHARE' at Row:1:Column:28"),
    ],
)
def test_syntax_error(text: str, message: str) -> None:
    assert error(text) == message


def test_results_are_cached() -> None:
    text = "SELECT Id FROM Account WHERE Name = 'cached'"
    assert parse(text) is parse(text)
