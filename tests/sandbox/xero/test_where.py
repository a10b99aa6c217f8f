"""The where filter: the subset this fake understands, and clear refusals for the rest."""

from __future__ import annotations

import pytest

from sandbox.xero.where import WhereError, parse_where
from tests.sandbox.xero.conftest import Api


def test_or_and_and() -> None:
    assert parse_where('Reference=="A" OR Reference=="B"').groups == (
        (("Reference", "A"),),
        (("Reference", "B"),),
    )
    where = parse_where('Status=="PAID" AND Type=="ACCREC" OR Reference=="X"')
    assert where.groups == (
        (("Status", "PAID"), ("Type", "ACCREC")),
        (("Reference", "X"),),
    )
    assert where.matches({"Status": "PAID", "Type": "ACCREC", "Reference": "Y"})
    assert where.matches({"Status": "AUTHORISED", "Type": "ACCREC", "Reference": "X"})
    assert not where.matches({"Status": "PAID", "Type": "ACCPAY", "Reference": "Y"})
    assert not where.matches({})


def test_spacing_and_escapes() -> None:
    where = parse_where('  Name == "Say \\"hi\\" \\\\ bye"   OR   Name=="x"  ')
    assert where.groups[0] == (("Name", 'Say "hi" \\ bye'),)
    assert parse_where('Name==""').groups == ((("Name", ""),),)


def test_matching_is_exact() -> None:
    where = parse_where('Name=="Acme"')
    assert where.matches({"Name": "Acme"})
    assert not where.matches({"Name": "acme"})
    assert not where.matches({"Name": "Acme Ltd"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected Field==\"value\" at '(end of filter)' in where: "),
        ('Reference!="A"', 'expected Field=="value" at \'Reference!="A"\' in where: '),
        ("Reference==A", "expected Field==\"value\" at 'Reference==A' in where: "),
        ('Reference=="A" OR', "expected Field==\"value\" at '(end of filter)' in where: "),
        ('Reference=="A" && Reference=="B"', "expected AND or OR at '&& Reference==\"B\"'"),
        ('Reference=="A" or Reference=="B"', "expected AND or OR at 'or Reference==\"B\"'"),
        ('Reference=="A\\n"', "unsupported escape \\n in where: "),
        ('Reference.Length=="1"', "where cannot filter on Reference.Length here"),
        ('Contact.ContactID=="1"', "where cannot filter on Contact.ContactID here"),
        ('Total=="1"', "where cannot filter on Total here"),
        ('Reference.StartsWith("A")', 'expected Field=="value" at \'Reference.StartsWith'),
    ],
)
def test_refusals(text: str, message: str) -> None:
    with pytest.raises(WhereError) as refused:
        parse_where(text)
    assert str(refused.value).startswith(message)


def test_fields_per_endpoint() -> None:
    assert parse_where('Name=="x"', {"Name"}).groups == ((("Name", "x"),),)
    with pytest.raises(
        WhereError, match=r"^where cannot filter on Reference here \(fields: Name\)$"
    ):
        parse_where('Reference=="x"', {"Name"})


def test_over_http(api: Api) -> None:
    response = api.get("Contacts", params={"where": 'Name=="A" || Name=="B"'})
    assert response.status_code == 400
    assert response.json() == {
        "ErrorNumber": 16,
        "Type": "QueryParseException",
        "Message": 'expected AND or OR at \'|| Name=="B"\' in where: Name=="A" || Name=="B"',
    }
