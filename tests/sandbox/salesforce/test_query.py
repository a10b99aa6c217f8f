"""SOQL end to end: simple-salesforce's query calls against the sandbox org.

Most tests share a small CRM (``crm`` fixture) written on a frozen org clock, so that every
stamp is known; the relative date tests run on a frozen clock (exact boundaries) and on the
real clock (records created today).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceMalformedRequest

from sandbox.salesforce.ids import make_id, normalize_id
from sandbox.salesforce.server import Sandbox

BASE = "/services/data/v59.0"
LOCATOR_URL = re.compile(r"/services/data/v59\.0/(query|queryAll)/(01g[0-9A-Za-z]{15})-(\d+)")
MANY = 2500


# ---- helpers -----------------------------------------------------------------------------


class Clock:
    """A settable org clock."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def set(self, text: str) -> None:
        self.moment = datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture
def clock(salesforce_sandbox: Sandbox) -> Clock:
    frozen = Clock(datetime(2025, 1, 16, 6, 0, tzinfo=UTC))
    salesforce_sandbox.org.clock = frozen
    return frozen


def attributes(obj: str, record_id: str) -> dict[str, str]:
    return {"type": obj, "url": f"{BASE}/sobjects/{obj}/{record_id}"}


def names(result: dict[str, Any]) -> list[str]:
    return [record["Name"] for record in result["records"]]


def errors(code: str, message: str) -> list[dict[str, Any]]:
    return [{"message": message, "errorCode": code, "fields": []}]


def refusal(error: pytest.ExceptionInfo[SalesforceError]) -> tuple[int, Any]:
    return error.value.status, error.value.content


@dataclass
class Crm:
    """Ids by name of the shared CRM's records."""

    accounts: dict[str, str] = field(default_factory=dict)
    opportunities: dict[str, str] = field(default_factory=dict)
    items: dict[str, str] = field(default_factory=dict)


ACCOUNTS = [
    # name, fields, created at
    ("Acme", {"Industry": "Banking", "MRR__c": 1000, "BillingCity": "Paris"}, "2025-01-15T09:00Z"),
    ("acme labs", {"Industry": "Technology", "MRR__c": 250.5}, "2025-01-15T10:00Z"),
    ("Globex", {}, "2025-01-15T12:30:00.500Z"),
    ("Initech", {"Industry": "Banking", "MRR__c": 0}, "2025-01-16T00:00Z"),
]
OPPORTUNITIES = [
    # name, account, stage, close date, amount, auto renew
    ("Acme renewal", "Acme", "Closed Won", "2025-01-15", 5000, True),
    ("Acme upsell", "Acme", "Prospecting", "2025-02-01", None, True),
    ("Globex pilot", "Globex", "Closed Lost", "2024-12-31", 1200.5, False),
    ("Orphan", None, "Negotiation/Review", "2025-01-16", 300, True),
]


@pytest.fixture
def crm(sf: Salesforce, clock: Clock) -> Crm:
    made = Crm()
    for name, values, created in ACCOUNTS:
        clock.set(created)
        made.accounts[name] = sf.Account.create({"Name": name, **values})["id"]
    clock.set("2025-01-16T06:00Z")
    for name, account, stage, close, amount, renew in OPPORTUNITIES:
        made.opportunities[name] = sf.Opportunity.create(
            {
                "Name": name,
                "AccountId": made.accounts[account] if account else None,
                "StageName": stage,
                "CloseDate": close,
                "Amount": amount,
                "Auto_Renew__c": renew,
            }
        )["id"]
    return made


@pytest.fixture
def with_items(sf: Salesforce, crm: Crm) -> Crm:
    """Line items: two on Acme renewal (quantities 2 and 5), one on Orphan (quantity 1)."""
    product = sf.Product2.create({"Name": "Seats", "ProductCode": "SEAT", "IsActive": True})
    book = sf.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")["records"][0]["Id"]
    entry = sf.PricebookEntry.create(
        {"Pricebook2Id": book, "Product2Id": product["id"], "UnitPrice": 10, "IsActive": True}
    )["id"]
    for label, opportunity, quantity in [
        ("renewal-2", "Acme renewal", 2),
        ("renewal-5", "Acme renewal", 5),
        ("orphan-1", "Orphan", 1),
    ]:
        crm.items[label] = sf.OpportunityLineItem.create(
            {
                "OpportunityId": crm.opportunities[opportunity],
                "PricebookEntryId": entry,
                "Quantity": quantity,
            }
        )["id"]
    return crm


def account_names(sf: Salesforce, where: str) -> list[str]:
    return names(sf.query(f"SELECT Name FROM Account WHERE {where} ORDER BY Name"))


def opportunity_names(sf: Salesforce, where: str) -> list[str]:
    return names(sf.query(f"SELECT Name FROM Opportunity WHERE {where} ORDER BY Name"))


def create_many(sf: Salesforce, count: int = MANY, prefix: str = "Account") -> list[str]:
    """``count`` accounts named ``{prefix} 0000``... through sObject Collections; their ids."""
    ids: list[str] = []
    for start in range(0, count, 200):
        records = [
            {"attributes": {"type": "Account"}, "Name": f"{prefix} {number:04d}"}
            for number in range(start, min(start + 200, count))
        ]
        results = sf.restful(
            "composite/sobjects", method="POST", json={"allOrNone": False, "records": records}
        )
        assert all(result["success"] for result in results)
        ids += [result["id"] for result in results]
    return ids


@pytest.fixture
def many(sf: Salesforce) -> list[str]:
    return create_many(sf)


def locator(url: str) -> tuple[str, str, str]:
    """The endpoint, cursor id and position of a ``nextRecordsUrl``."""
    match = LOCATOR_URL.fullmatch(url)
    assert match is not None, url
    return match[1], match[2], match[3]


def pages(sf: Salesforce, soql: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    result = sf.query(soql, **kwargs)
    yield result
    while not result["done"]:
        result = sf.query_more(result["nextRecordsUrl"], identifier_is_url=True, **kwargs)
        yield result


# ---- whole records -----------------------------------------------------------------------


def test_records_carry_attributes_and_the_selected_fields(sf: Salesforce, crm: Crm) -> None:
    result = sf.query(
        "SELECT Id, Name, Industry, MRR__c, BillingCity, CreatedDate, IsDeleted "
        "FROM Account WHERE Name = 'Acme'"
    )

    acme = crm.accounts["Acme"]
    assert result == {
        "totalSize": 1,
        "done": True,
        "records": [
            {
                "attributes": attributes("Account", acme),
                "Id": acme,
                "Name": "Acme",
                "Industry": "Banking",
                "MRR__c": 1000.0,
                "BillingCity": "Paris",
                "CreatedDate": "2025-01-15T09:00:00.000+0000",
                "IsDeleted": False,
            }
        ],
    }


def test_field_names_resolve_without_case(sf: Salesforce, crm: Crm) -> None:
    result = sf.query("select name, industry from account where name = 'Initech'")

    assert result["records"] == [
        {
            "attributes": attributes("Account", crm.accounts["Initech"]),
            "Name": "Initech",
            "Industry": "Banking",
        }
    ]


def test_no_match_is_an_empty_done_result(sf: Salesforce, crm: Crm) -> None:
    assert sf.query("SELECT Id FROM Account WHERE Name = 'Nobody'") == {
        "totalSize": 0,
        "done": True,
        "records": [],
    }


# ---- parent fields -----------------------------------------------------------------------


def test_parent_fields_nest_with_their_attributes(sf: Salesforce, crm: Crm) -> None:
    result = sf.query("SELECT Name, Account.Name FROM Opportunity ORDER BY Name")

    def record(name: str, account: str | None) -> dict[str, Any]:
        parent = (
            {"attributes": attributes("Account", crm.accounts[account]), "Name": account}
            if account
            else None
        )
        return {
            "attributes": attributes("Opportunity", crm.opportunities[name]),
            "Name": name,
            "Account": parent,
        }

    assert result["records"] == [
        record("Acme renewal", "Acme"),
        record("Acme upsell", "Acme"),
        record("Globex pilot", "Globex"),
        record("Orphan", None),
    ]


def test_several_fields_of_one_parent_share_the_nested_record(sf: Salesforce, crm: Crm) -> None:
    result = sf.query(
        "SELECT Account.Name, Account.Industry, Account.MRR__c FROM Opportunity "
        "WHERE Name = 'Globex pilot'"
    )

    assert result["records"] == [
        {
            "attributes": attributes("Opportunity", crm.opportunities["Globex pilot"]),
            "Account": {
                "attributes": attributes("Account", crm.accounts["Globex"]),
                "Name": "Globex",
                "Industry": None,
                "MRR__c": None,
            },
        }
    ]


def test_two_levels_of_parents(sf: Salesforce, with_items: Crm) -> None:
    result = sf.query(
        "SELECT Quantity, Opportunity.Name, Opportunity.Account.Name FROM OpportunityLineItem "
        "ORDER BY Quantity"
    )

    def record(item: str, quantity: float, opportunity: str, account: str | None) -> dict:
        parent = (
            {"attributes": attributes("Account", with_items.accounts[account]), "Name": account}
            if account
            else None
        )
        return {
            "attributes": attributes("OpportunityLineItem", with_items.items[item]),
            "Quantity": quantity,
            "Opportunity": {
                "attributes": attributes("Opportunity", with_items.opportunities[opportunity]),
                "Name": opportunity,
                "Account": parent,
            },
        }

    assert result["records"] == [
        record("orphan-1", 1.0, "Orphan", None),
        record("renewal-2", 2.0, "Acme renewal", "Acme"),
        record("renewal-5", 5.0, "Acme renewal", "Acme"),
    ]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Account.Name = 'ACME'", ["Acme renewal", "Acme upsell"]),
        ("Account.Industry = 'Banking'", ["Acme renewal", "Acme upsell"]),
        # A parent field is null when there is no parent (API 13.0 and later).
        ("Account.Name = null", ["Orphan"]),
        ("Account.Name != 'Acme'", ["Globex pilot", "Orphan"]),
        ("Account.MRR__c > 500", ["Acme renewal", "Acme upsell"]),
    ],
)
def test_filter_on_parent_fields(sf: Salesforce, crm: Crm, where: str, expected: list[str]) -> None:
    assert opportunity_names(sf, where) == expected


def test_order_by_a_parent_field(sf: Salesforce, crm: Crm) -> None:
    result = sf.query(
        "SELECT Name FROM Opportunity ORDER BY Account.Name DESC NULLS LAST, Name DESC"
    )

    assert names(result) == ["Globex pilot", "Acme upsell", "Acme renewal", "Orphan"]


# ---- child subqueries --------------------------------------------------------------------


def test_child_subquery_nests_a_result_or_null(sf: Salesforce, crm: Crm) -> None:
    result = sf.query(
        "SELECT Name, (SELECT Name FROM Opportunities ORDER BY Name) FROM Account ORDER BY Name"
    )

    def child(*opportunities: str) -> dict[str, Any]:
        return {
            "totalSize": len(opportunities),
            "done": True,
            "records": [
                {"attributes": attributes("Opportunity", crm.opportunities[name]), "Name": name}
                for name in opportunities
            ],
        }

    def record(name: str, children: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "attributes": attributes("Account", crm.accounts[name]),
            "Name": name,
            "Opportunities": children,
        }

    assert result == {
        "totalSize": 4,
        "done": True,
        "records": [
            record("Acme", child("Acme renewal", "Acme upsell")),
            record("acme labs", None),
            record("Globex", child("Globex pilot")),
            record("Initech", None),
        ],
    }


def test_child_subquery_with_where(sf: Salesforce, crm: Crm) -> None:
    result = sf.query(
        "SELECT Name, (SELECT Id FROM Opportunities WHERE IsWon = true) FROM Account "
        "WHERE Name LIKE '%e%' ORDER BY Name"
    )

    won = crm.opportunities["Acme renewal"]
    assert [(record["Name"], record["Opportunities"]) for record in result["records"]] == [
        (
            "Acme",
            {
                "totalSize": 1,
                "done": True,
                "records": [{"attributes": attributes("Opportunity", won), "Id": won}],
            },
        ),
        ("acme labs", None),
        ("Globex", None),
        ("Initech", None),
    ]


def test_child_subquery_order_and_limit(sf: Salesforce, with_items: Crm) -> None:
    result = sf.query(
        "SELECT Name, (SELECT Quantity FROM OpportunityLineItems ORDER BY Quantity DESC LIMIT 1) "
        "FROM Opportunity WHERE Name IN ('Acme renewal', 'Acme upsell') ORDER BY Name"
    )

    largest = with_items.items["renewal-5"]
    assert [(record["Name"], record["OpportunityLineItems"]) for record in result["records"]] == [
        (
            "Acme renewal",
            {
                "totalSize": 1,
                "done": True,
                "records": [
                    {"attributes": attributes("OpportunityLineItem", largest), "Quantity": 5.0}
                ],
            },
        ),
        ("Acme upsell", None),
    ]


# ---- WHERE -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # equality on text ignores case; != keeps the nulls
        ("Name = 'acme'", ["Acme"]),
        ("Name = 'ACME LABS'", ["acme labs"]),
        ("Name != 'Acme'", ["acme labs", "Globex", "Initech"]),
        ("BillingCity = 'PARIS'", ["Acme"]),
        ("Industry != 'Banking'", ["acme labs", "Globex"]),
        ("Industry = null", ["Globex"]),
        ("Industry != null", ["Acme", "acme labs", "Initech"]),
        # ordering comparisons on text ignore case too
        ("Name < 'b'", ["Acme", "acme labs"]),
        ("Name >= 'GLOBEX'", ["Globex", "Initech"]),
        ("Name <= 'Globex'", ["Acme", "acme labs", "Globex"]),
        ("Name > 'globex'", ["Initech"]),
        # numbers
        ("MRR__c = 1000", ["Acme"]),
        ("MRR__c != 1000", ["acme labs", "Globex", "Initech"]),
        ("MRR__c > 250.5", ["Acme"]),
        ("MRR__c >= 250.5", ["Acme", "acme labs"]),
        ("MRR__c < 250.5", ["Initech"]),
        ("MRR__c <= 0", ["Initech"]),
        ("MRR__c > -1", ["Acme", "acme labs", "Initech"]),
        # LIKE: % and _, case-insensitive
        ("Name LIKE 'acme%'", ["Acme", "acme labs"]),
        ("Name LIKE '%LABS'", ["acme labs"]),
        ("Name LIKE '%c%'", ["Acme", "acme labs", "Initech"]),
        ("Name LIKE 'Gl_bex'", ["Globex"]),
        ("Name LIKE 'G_bex'", []),
        ("Name LIKE 'acme'", ["Acme"]),
        # IN and NOT IN
        ("Name IN ('ACME', 'Globex')", ["Acme", "Globex"]),
        ("Name NOT IN ('Acme', 'Globex')", ["acme labs", "Initech"]),
        ("Industry IN ('banking')", ["Acme", "Initech"]),
        ("Industry NOT IN ('Banking')", ["acme labs", "Globex"]),
        ("Industry IN ('Banking', null)", ["Acme", "Globex", "Initech"]),
        ("MRR__c IN (0, 1000)", ["Acme", "Initech"]),
        # AND, OR, NOT and parentheses
        ("Industry = 'Banking' AND MRR__c > 0", ["Acme"]),
        ("Industry = 'Technology' OR Name = 'Globex'", ["acme labs", "Globex"]),
        (
            "(Industry = 'Banking' OR Industry = 'Technology') AND MRR__c > 100",
            ["Acme", "acme labs"],
        ),
        ("Industry = 'Banking' AND (Name = 'Initech' OR MRR__c > 500)", ["Acme", "Initech"]),
        ("NOT Name = 'Acme'", ["acme labs", "Globex", "Initech"]),
        ("NOT (Name = 'Acme' OR Name LIKE 'G%')", ["acme labs", "Initech"]),
        ("Industry = 'Banking' AND NOT Name LIKE 'A%'", ["Initech"]),
        ("NOT (NOT Name = 'Globex')", ["Globex"]),
    ],
)
def test_where_on_accounts(sf: Salesforce, crm: Crm, where: str, expected: list[str]) -> None:
    assert account_names(sf, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # datetimes: Z, offsets, fractional seconds (stored in UTC with milliseconds)
        ("CreatedDate > 2025-01-15T10:00:00Z", ["Globex", "Initech"]),
        ("CreatedDate = 2025-01-15T11:00:00+01:00", ["acme labs"]),
        ("CreatedDate = 2025-01-15T12:30:00.500Z", ["Globex"]),
        ("CreatedDate = 2025-01-15T12:30:00Z", []),
        ("CreatedDate < 2025-01-15T10:00:00.000000Z", ["Acme"]),
        ("CreatedDate >= 2025-01-15T10:00:00.000+00:00", ["acme labs", "Globex", "Initech"]),
        ("SystemModstamp <= 2025-01-15T19:00:00-05:00", ["Acme", "acme labs", "Globex", "Initech"]),
        ("SystemModstamp < 2025-01-15T19:00:00-05:00", ["Acme", "acme labs", "Globex"]),
        ("LastModifiedDate != 2025-01-16T00:00:00Z", ["Acme", "acme labs", "Globex"]),
        ("CreatedDate IN (2025-01-15T09:00:00Z, 2025-01-16T00:00:00Z)", ["Acme", "Initech"]),
    ],
)
def test_where_on_datetimes(sf: Salesforce, crm: Crm, where: str, expected: list[str]) -> None:
    assert account_names(sf, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # dates
        ("CloseDate = 2025-01-15", ["Acme renewal"]),
        ("CloseDate != 2025-01-15", ["Acme upsell", "Globex pilot", "Orphan"]),
        ("CloseDate > 2025-01-15", ["Acme upsell", "Orphan"]),
        ("CloseDate >= 2025-01-16", ["Acme upsell", "Orphan"]),
        ("CloseDate < 2025-01-15", ["Globex pilot"]),
        ("CloseDate <= 2024-12-31", ["Globex pilot"]),
        ("CloseDate >= 2025-01-15 AND CloseDate < 2025-02-01", ["Acme renewal", "Orphan"]),
        # booleans
        ("IsWon = true", ["Acme renewal"]),
        ("IsWon != true", ["Acme upsell", "Globex pilot", "Orphan"]),
        ("IsClosed = false", ["Acme upsell", "Orphan"]),
        ("IsClosed = TRUE AND IsWon = FALSE", ["Globex pilot"]),
        ("Auto_Renew__c = false", ["Globex pilot"]),
        # picklists ignore case
        ("StageName = 'closed won'", ["Acme renewal"]),
        ("StageName IN ('prospecting', 'Closed Lost')", ["Acme upsell", "Globex pilot"]),
        # currency and lookups
        ("Amount = null", ["Acme upsell"]),
        ("Amount > 1000", ["Acme renewal", "Globex pilot"]),
        ("Amount != 300", ["Acme renewal", "Acme upsell", "Globex pilot"]),
        ("AccountId = null", ["Orphan"]),
        ("AccountId != null", ["Acme renewal", "Acme upsell", "Globex pilot"]),
    ],
)
def test_where_on_opportunities(sf: Salesforce, crm: Crm, where: str, expected: list[str]) -> None:
    assert opportunity_names(sf, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # Salesforce: on a boolean field null matches false ("= null" is "= false", "!= null"
        # is "= true").
        ("IsWon = null", ["Acme upsell", "Globex pilot", "Orphan"]),
        ("IsWon != null", ["Acme renewal"]),
        ("Auto_Renew__c = null", ["Globex pilot"]),
    ],
)
def test_null_on_a_boolean_field_means_false(
    sf: Salesforce, crm: Crm, where: str, expected: list[str]
) -> None:
    assert opportunity_names(sf, where) == expected


def test_where_on_ids_takes_15_and_18_character_ids(sf: Salesforce, crm: Crm) -> None:
    acme, globex = crm.accounts["Acme"], crm.accounts["Globex"]

    assert account_names(sf, f"Id = '{acme[:15]}'") == ["Acme"]
    assert account_names(sf, f"Id IN ('{acme}', '{globex[:15]}')") == ["Acme", "Globex"]
    assert opportunity_names(sf, f"AccountId = '{acme}'") == ["Acme renewal", "Acme upsell"]
    assert opportunity_names(sf, f"AccountId != '{acme}'") == ["Globex pilot", "Orphan"]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Name = 'élan'", ["Élan"]),
        ("Name = 'MÜLLER GMBH'", ["Müller GmbH"]),
        ("Name IN ('élan', 'x')", ["Élan"]),
        ("Name LIKE 'MÜ%'", ["Müller GmbH"]),
        ("Name LIKE 'élan'", ["Élan"]),
    ],
)
def test_text_comparisons_ignore_case_beyond_ascii(
    sf: Salesforce, where: str, expected: list[str]
) -> None:
    for name in ["Élan", "Müller GmbH", "Muller"]:
        sf.Account.create({"Name": name})

    assert account_names(sf, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Name LIKE '100%'", ["100 Co", "100% Co"]),
        ("Name LIKE '100\\%%'", ["100% Co"]),
        ("Name LIKE 'a_b'", ["a_b", "axb"]),
        ("Name LIKE 'a\\_b'", ["a_b"]),
    ],
)
def test_like_wildcards_can_be_escaped(sf: Salesforce, where: str, expected: list[str]) -> None:
    for name in ["100% Co", "100 Co", "a_b", "axb"]:
        sf.Account.create({"Name": name})

    assert account_names(sf, where) == expected


# ---- semi-joins --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Id IN (SELECT AccountId FROM Opportunity WHERE IsWon = true)", ["Acme"]),
        ("Id IN (SELECT AccountId FROM Opportunity WHERE Amount > 1000)", ["Acme", "Globex"]),
        ("Id IN (SELECT AccountId FROM Opportunity)", ["Acme", "Globex"]),
        (
            "Id NOT IN (SELECT AccountId FROM Opportunity WHERE IsWon = true)",
            ["acme labs", "Globex", "Initech"],
        ),
        (
            "Industry = 'Banking' AND "
            "Id IN (SELECT AccountId FROM Opportunity WHERE IsClosed = false)",
            ["Acme"],
        ),
    ],
)
def test_semi_join(sf: Salesforce, crm: Crm, where: str, expected: list[str]) -> None:
    assert account_names(sf, where) == expected


def test_semi_join_on_a_lookup_field(sf: Salesforce, crm: Crm) -> None:
    where = "AccountId IN (SELECT Id FROM Account WHERE Industry = 'Banking')"

    assert opportunity_names(sf, where) == ["Acme renewal", "Acme upsell"]


def test_anti_join_ignores_children_without_a_parent(sf: Salesforce, crm: Crm) -> None:
    """Accounts without opportunities, while one opportunity (Orphan) has no account."""
    assert account_names(sf, "Id NOT IN (SELECT AccountId FROM Opportunity)") == [
        "acme labs",
        "Initech",
    ]


# ---- relative date literals --------------------------------------------------------------

CLOSE_DATES = [
    "2025-03-31",
    "2025-04-01",
    "2025-04-13",
    "2025-04-14",
    "2025-05-01",
    "2025-05-10",
    "2025-05-11",
    "2025-05-13",
    "2025-05-14",
    "2025-05-15",
    "2025-05-17",
    "2025-05-18",
    "2025-05-31",
    "2025-06-01",
    "2025-06-30",
    "2025-07-01",
]


@pytest.fixture
def dated(sf: Salesforce, clock: Clock) -> None:
    """Opportunities named after their close dates; today is Wednesday 2025-05-14 (UTC)."""
    clock.set("2025-05-14T12:00Z")
    for close in CLOSE_DATES:
        sf.Opportunity.create({"Name": close, "StageName": "Prospecting", "CloseDate": close})


def between(first: str, last: str) -> list[str]:
    return [close for close in CLOSE_DATES if first <= close <= last]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("CloseDate = TODAY", ["2025-05-14"]),
        ("CloseDate = YESTERDAY", ["2025-05-13"]),
        ("CloseDate = TOMORROW", ["2025-05-15"]),
        ("CloseDate = THIS_WEEK", between("2025-05-11", "2025-05-17")),
        ("CloseDate = LAST_WEEK", ["2025-05-10"]),
        ("CloseDate = NEXT_WEEK", ["2025-05-18"]),
        ("CloseDate = THIS_MONTH", between("2025-05-01", "2025-05-31")),
        ("CloseDate = LAST_MONTH", between("2025-04-01", "2025-04-30")),
        ("CloseDate = NEXT_MONTH", ["2025-06-01", "2025-06-30"]),
        ("CloseDate = THIS_QUARTER", between("2025-04-01", "2025-06-30")),
        ("CloseDate = LAST_QUARTER", ["2025-03-31"]),
        ("CloseDate = NEXT_QUARTER", ["2025-07-01"]),
        ("CloseDate = THIS_YEAR", CLOSE_DATES),
        ("CloseDate = LAST_N_DAYS:30", between("2025-04-14", "2025-05-14")),
        ("CloseDate = NEXT_N_DAYS:3", ["2025-05-15", "2025-05-17"]),
        ("CloseDate = N_DAYS_AGO:30", ["2025-04-14"]),
        ("CloseDate < THIS_MONTH", between("2025-01-01", "2025-04-30")),
        ("CloseDate <= TODAY", between("2025-01-01", "2025-05-14")),
        ("CloseDate > THIS_MONTH", between("2025-06-01", "2025-12-31")),
        ("CloseDate >= TOMORROW", between("2025-05-15", "2025-12-31")),
        (
            "CloseDate != THIS_WEEK",
            [close for close in CLOSE_DATES if close not in between("2025-05-11", "2025-05-17")],
        ),
        ("CloseDate = today", ["2025-05-14"]),
    ],
)
def test_relative_date_literals_on_a_date_field(
    sf: Salesforce, dated: None, where: str, expected: list[str]
) -> None:
    assert opportunity_names(sf, where) == expected


def test_relative_date_literals_on_a_datetime_field(sf: Salesforce, clock: Clock) -> None:
    for name, created in [
        ("yesterday late", "2025-05-13T23:59:59.999Z"),
        ("today early", "2025-05-14T00:00:00Z"),
        ("today late", "2025-05-14T23:59:59.999Z"),
        ("tomorrow", "2025-05-15T00:00:00Z"),
    ]:
        clock.set(created)
        sf.Account.create({"Name": name})
    clock.set("2025-05-14T12:00Z")

    assert account_names(sf, "CreatedDate = TODAY") == ["today early", "today late"]
    assert account_names(sf, "CreatedDate = YESTERDAY") == ["yesterday late"]
    assert account_names(sf, "CreatedDate > TODAY") == ["tomorrow"]
    assert account_names(sf, "CreatedDate < TODAY") == ["yesterday late"]
    assert account_names(sf, "CreatedDate = LAST_N_DAYS:1") == [
        "today early",
        "today late",
        "yesterday late",
    ]


def test_relative_dates_on_the_real_clock(sf: Salesforce) -> None:
    """The org's clock is the real UTC clock: records created today are TODAY's."""
    today = datetime.now(UTC).date()
    closes = {
        "today": today,
        "30 days ago": today - timedelta(days=30),
        "31 days ago": today - timedelta(days=31),
        "first of the month": today.replace(day=1),
        "end of last month": today.replace(day=1) - timedelta(days=1),
    }
    for name, close in closes.items():
        sf.Opportunity.create(
            {"Name": name, "StageName": "Prospecting", "CloseDate": close.isoformat()}
        )
    sf.Account.create({"Name": "Created today"})

    def closing(test: Callable[[date], bool]) -> list[str]:
        return sorted(name for name, close in closes.items() if test(close))

    assert opportunity_names(sf, "CloseDate = TODAY") == closing(lambda d: d == today)
    assert opportunity_names(sf, "CloseDate = LAST_N_DAYS:30") == closing(
        lambda d: today - timedelta(days=30) <= d <= today
    )
    assert opportunity_names(sf, "CloseDate = THIS_MONTH") == closing(
        lambda d: (d.year, d.month) == (today.year, today.month)
    )
    assert account_names(sf, "CreatedDate = TODAY") == ["Created today"]
    assert account_names(sf, "CreatedDate = LAST_N_DAYS:30") == ["Created today"]
    assert account_names(sf, "CreatedDate = THIS_MONTH") == ["Created today"]
    assert account_names(sf, "CreatedDate = YESTERDAY") == []
    assert account_names(sf, "CreatedDate < TODAY") == []
    assert account_names(sf, "CreatedDate > TODAY") == []


# ---- ORDER BY, LIMIT, OFFSET -------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("Name", ["Acme", "acme labs", "Globex", "Initech"]),
        ("Name ASC", ["Acme", "acme labs", "Globex", "Initech"]),
        ("Name DESC", ["Initech", "Globex", "acme labs", "Acme"]),
        ("Industry, Name", ["Globex", "Acme", "Initech", "acme labs"]),
        ("Industry DESC, Name", ["acme labs", "Acme", "Initech", "Globex"]),
        ("Industry ASC NULLS LAST, Name", ["Acme", "Initech", "acme labs", "Globex"]),
        ("Industry DESC NULLS FIRST, Name DESC", ["Globex", "acme labs", "Initech", "Acme"]),
        ("MRR__c", ["Globex", "Initech", "acme labs", "Acme"]),
        ("MRR__c DESC", ["Acme", "acme labs", "Initech", "Globex"]),
        ("CreatedDate DESC", ["Initech", "Globex", "acme labs", "Acme"]),
        ("Name LIMIT 2", ["Acme", "acme labs"]),
        ("Name DESC LIMIT 1", ["Initech"]),
        ("Name LIMIT 2 OFFSET 1", ["acme labs", "Globex"]),
        ("Name OFFSET 3", ["Initech"]),
        ("Name LIMIT 0", []),
        ("Name OFFSET 2000", []),
    ],
)
def test_order_by_limit_offset(sf: Salesforce, crm: Crm, order: str, expected: list[str]) -> None:
    assert names(sf.query(f"SELECT Name FROM Account ORDER BY {order}")) == expected


def test_offset_beyond_2000_is_refused(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FROM Account ORDER BY Name OFFSET 2001")

    assert refusal(caught) == (
        400,
        errors("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000"),
    )


# ---- COUNT -------------------------------------------------------------------------------


def test_count_answers_the_total_size_without_records(sf: Salesforce, crm: Crm) -> None:
    assert sf.query("SELECT COUNT() FROM Account") == {
        "totalSize": 4,
        "done": True,
        "records": [],
    }
    assert sf.query("SELECT COUNT() FROM Account WHERE Industry = 'Banking'") == {
        "totalSize": 2,
        "done": True,
        "records": [],
    }


def test_count_follows_limit(sf: Salesforce, crm: Crm) -> None:
    assert sf.query("SELECT COUNT() FROM Account LIMIT 3")["totalSize"] == 3


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ("COUNT(Id)", {"expr0": 4}),
        ("COUNT(Industry)", {"expr0": 3}),
        ("COUNT(Id) total", {"total": 4}),
    ],
)
def test_count_of_a_field_answers_one_aggregate_result(
    sf: Salesforce, crm: Crm, select: str, expected: dict[str, int]
) -> None:
    assert sf.query(f"SELECT {select} FROM Account") == {
        "totalSize": 1,
        "done": True,
        "records": [{"attributes": {"type": "AggregateResult"}, **expected}],
    }


# ---- deleted records ---------------------------------------------------------------------


def test_query_all_includes_deleted_records(sf: Salesforce, crm: Crm) -> None:
    sf.Account.delete(crm.accounts["Globex"])
    soql = "SELECT Name, IsDeleted FROM Account ORDER BY Name"

    live = sf.query(soql)
    everything = sf.query(soql, include_deleted=True)

    assert [(r["Name"], r["IsDeleted"]) for r in live["records"]] == [
        ("Acme", False),
        ("acme labs", False),
        ("Initech", False),
    ]
    assert [(r["Name"], r["IsDeleted"]) for r in everything["records"]] == [
        ("Acme", False),
        ("acme labs", False),
        ("Globex", True),
        ("Initech", False),
    ]
    assert sf.query_all(soql, include_deleted=True)["records"] == everything["records"]
    assert names(sf.query("SELECT Name FROM Account WHERE IsDeleted = true")) == []
    assert names(
        sf.query("SELECT Name FROM Opportunity WHERE IsDeleted = true", include_deleted=True)
    ) == ["Globex pilot"]


def test_count_skips_deleted_records_unless_query_all(sf: Salesforce, crm: Crm) -> None:
    sf.Account.delete(crm.accounts["Globex"])

    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 3
    assert sf.query("SELECT COUNT() FROM Account", include_deleted=True)["totalSize"] == 4


# ---- paging ------------------------------------------------------------------------------


def test_first_page_holds_2000_records_and_query_more_the_rest(
    sf: Salesforce, many: list[str]
) -> None:
    first = sf.query("SELECT Id FROM Account ORDER BY Name")

    assert (first["totalSize"], first["done"], len(first["records"])) == (MANY, False, 2000)
    endpoint, cursor, position = locator(first["nextRecordsUrl"])
    assert (endpoint, position) == ("query", "2000")
    assert normalize_id(cursor[:15]) == cursor

    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)

    assert (rest["totalSize"], rest["done"], len(rest["records"])) == (MANY, True, 500)
    assert "nextRecordsUrl" not in rest
    assert [r["Id"] for r in first["records"] + rest["records"]] == many


def test_query_more_takes_the_locator_alone(sf: Salesforce, many: list[str]) -> None:
    first = sf.query("SELECT Id FROM Account ORDER BY Name")
    _, cursor, position = locator(first["nextRecordsUrl"])

    rest = sf.query_more(f"{cursor}-{position}")

    assert [r["Id"] for r in rest["records"]] == many[2000:]


def test_query_all_and_query_all_iter_follow_every_page(sf: Salesforce, many: list[str]) -> None:
    soql = "SELECT Id, Name FROM Account ORDER BY Name"

    everything = sf.query_all(soql)
    iterated = list(sf.query_all_iter(soql))

    assert (everything["totalSize"], everything["done"]) == (MANY, True)
    assert [r["Id"] for r in everything["records"]] == many
    assert iterated == everything["records"]
    assert iterated[2499] == {
        "attributes": attributes("Account", many[2499]),
        "Id": many[2499],
        "Name": "Account 2499",
    }


def test_batch_size_option_sets_the_page_size(sf: Salesforce, many: list[str]) -> None:
    options = {"Sforce-Query-Options": "batchSize=500"}

    results = list(pages(sf, "SELECT Id FROM Account ORDER BY Name", headers=options))

    assert [len(result["records"]) for result in results] == [500] * 5
    assert [result["done"] for result in results] == [False] * 4 + [True]
    assert [locator(r["nextRecordsUrl"])[2] for r in results[:-1]] == [
        "500",
        "1000",
        "1500",
        "2000",
    ]
    assert [r["Id"] for result in results for r in result["records"]] == many


@pytest.mark.parametrize(
    ("asked", "size"),
    [("100", 200), ("199", 200), ("200", 200), ("1234", 1234), ("2000", 2000), ("5000", 2000)],
)
def test_batch_size_is_kept_between_200_and_2000(
    sf: Salesforce, many: list[str], asked: str, size: int
) -> None:
    first = sf.query(
        "SELECT Id FROM Account ORDER BY Name",
        headers={"Sforce-Query-Options": f"batchSize={asked}"},
    )

    assert len(first["records"]) == size
    assert first["nextRecordsUrl"].endswith(f"-{size}")


def test_batch_size_applies_to_query_more(sf: Salesforce, many: list[str]) -> None:
    first = sf.query("SELECT Id FROM Account ORDER BY Name")

    second = sf.query_more(
        first["nextRecordsUrl"],
        identifier_is_url=True,
        headers={"Sforce-Query-Options": "batchSize=200"},
    )

    assert [r["Id"] for r in second["records"]] == many[2000:2200]
    assert second["nextRecordsUrl"].endswith("-2200")


def test_limit_caps_the_paged_result(sf: Salesforce, many: list[str]) -> None:
    results = list(pages(sf, "SELECT Id FROM Account ORDER BY Name LIMIT 2100"))

    assert [(r["totalSize"], len(r["records"]), r["done"]) for r in results] == [
        (2100, 2000, False),
        (2100, 100, True),
    ]


def test_count_of_many(sf: Salesforce, many: list[str]) -> None:
    assert sf.query("SELECT COUNT() FROM Account") == {
        "totalSize": MANY,
        "done": True,
        "records": [],
    }


def test_the_cursor_is_a_snapshot(sf: Salesforce, many: list[str]) -> None:
    first = sf.query("SELECT Id FROM Account ORDER BY Name")
    late = create_many(sf, 3, prefix="Account 0000")

    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)

    assert (rest["totalSize"], rest["done"]) == (MANY, True)
    assert [r["Id"] for r in rest["records"]] == many[2000:]
    assert not set(late) & {r["Id"] for r in first["records"] + rest["records"]}
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == MANY + 3


def test_query_all_pages_through_query_all(sf: Salesforce, many: list[str]) -> None:
    sf.Account.delete(many[-1])

    first = sf.query("SELECT Id, IsDeleted FROM Account ORDER BY Name", include_deleted=True)
    assert locator(first["nextRecordsUrl"])[0] == "queryAll"
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)

    assert (rest["totalSize"], len(rest["records"])) == (MANY, 500)
    assert rest["records"][-1] == {
        "attributes": attributes("Account", many[-1]),
        "Id": many[-1],
        "IsDeleted": True,
    }
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == MANY - 1


@pytest.mark.parametrize(
    "identifier", [f"{make_id('01g', 999)}-2000", f"{make_id('01g', 1)}-2000", "nonsense"]
)
def test_unknown_query_locator(sf: Salesforce, identifier: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_more(f"{BASE}/query/{identifier}", identifier_is_url=True)

    assert refusal(caught) == (400, errors("INVALID_QUERY_LOCATOR", "invalid query locator"))


# ---- errors ------------------------------------------------------------------------------

UNKNOWN_FIELD = (
    "No such column '{field}' on entity '{entity}'. If you are attempting to use a custom field, "
    "be sure to append the '__c' after the custom field name. Please reference your WSDL or the "
    "describe call for the appropriate names."
)


@pytest.mark.parametrize(
    ("soql", "code", "message"),
    [
        ("SELECT Id FROM", "MALFORMED_QUERY", "unexpected token: <EOF> at Row:1:Column:15"),
        ("SELEC Id FROM Account", "MALFORMED_QUERY", "unexpected token: 'SELEC' at Row:1:Column:1"),
        (
            "SELECT Id FROM Account WHERE Name = 'x",
            "MALFORMED_QUERY",
            "unterminated string literal at Row:1:Column:37",
        ),
        (
            "SELECT Name FROM Account GROUP BY Name",
            "MALFORMED_QUERY",
            "GROUP BY is not supported by the sandbox",
        ),
        (
            "SELECT SUM(MRR__c) FROM Account",
            "MALFORMED_QUERY",
            "aggregate function SUM() is not supported by the sandbox",
        ),
        (
            "SELECT Foo FROM Account",
            "INVALID_FIELD",
            UNKNOWN_FIELD.format(field="Foo", entity="Account"),
        ),
        (
            "SELECT Id FROM Account WHERE Foo = 'x'",
            "INVALID_FIELD",
            UNKNOWN_FIELD.format(field="Foo", entity="Account"),
        ),
        (
            "SELECT Id FROM Account ORDER BY Foo",
            "INVALID_FIELD",
            UNKNOWN_FIELD.format(field="Foo", entity="Account"),
        ),
        (
            "SELECT Account.Foo FROM Opportunity",
            "INVALID_FIELD",
            UNKNOWN_FIELD.format(field="Foo", entity="Account"),
        ),
        (
            "SELECT Owner.Name FROM Opportunity",
            "INVALID_FIELD",
            "Didn't understand relationship 'Owner' in field path. If you are attempting to use "
            "a custom relationship, be sure to append the '__r' after the custom relationship "
            "name.",
        ),
        (
            "SELECT Id FROM Invoice",
            "INVALID_TYPE",
            "sObject type 'Invoice' is not supported. If you are attempting to use a custom "
            "object, be sure to append the '__c' after the entity name. Please reference your "
            "WSDL or the describe call for the appropriate names.",
        ),
        (
            "SELECT Id, (SELECT Id FROM Deals) FROM Account",
            "INVALID_TYPE",
            "Didn't understand relationship 'Deals' in FROM part of query call. If you are "
            "attempting to use a custom relationship, be sure to append the '__r' after the "
            "custom relationship name.",
        ),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate = 'x'",
            "MALFORMED_QUERY",
            "value of filter criterion for field 'CloseDate' must be of type date and should not "
            "be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Opportunity WHERE Amount = '5'",
            "MALFORMED_QUERY",
            "value of filter criterion for field 'Amount' must be of type double and should not "
            "be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Opportunity WHERE IsWon = 'true'",
            "MALFORMED_QUERY",
            "value of filter criterion for field 'IsWon' must be of type boolean and should not "
            "be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Account WHERE Name = 5",
            "MALFORMED_QUERY",
            "value of filter criterion for field 'Name' must be of type string and should be "
            "enclosed in quotes",
        ),
        (
            "SELECT Id FROM Account WHERE CreatedDate > 2025-01-15",
            "MALFORMED_QUERY",
            "value of filter criterion for field 'CreatedDate' must be of type dateTime and "
            "should not be enclosed in quotes",
        ),
        ("SELECT Name, Id, name FROM Account", "MALFORMED_QUERY", "duplicate field selected: name"),
        (
            "SELECT Account.Name, account.name FROM Opportunity",
            "MALFORMED_QUERY",
            "duplicate field selected: account.name",
        ),
        (
            "SELECT Id FROM Account WHERE Id = 'bad'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: bad",
        ),
        (
            "SELECT Id FROM Account WHERE Name = TODAY",
            "MALFORMED_QUERY",
            "date literal TODAY used on field Name of type string",
        ),
    ],
)
def test_query_errors(sf: Salesforce, soql: str, code: str, message: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)

    assert refusal(caught) == (400, errors(code, message))


def test_query_errors_through_query_all(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_all("SELECT Name FROM Account GROUP BY Name", include_deleted=True)

    assert refusal(caught) == (
        400,
        errors("MALFORMED_QUERY", "GROUP BY is not supported by the sandbox"),
    )


@pytest.mark.parametrize(
    ("soql", "message"),
    [
        (
            "SELECT Id FROM Account WHERE Description = 'x'",
            "field 'Description' can not be filtered in query call",
        ),
        (
            "SELECT Id FROM Account WHERE Description LIKE '%x%'",
            "field 'Description' can not be filtered in query call",
        ),
        (
            "SELECT Id FROM Opportunity WHERE Billing_Sync_Error__c != null",
            "field 'Billing_Sync_Error__c' can not be filtered in query call",
        ),
        (
            "SELECT Id FROM Opportunity WHERE Billing_Sync_Error__c IN ('a', 'b')",
            "field 'Billing_Sync_Error__c' can not be filtered in query call",
        ),
        (
            "SELECT Id FROM Opportunity WHERE Account.Description = 'x'",
            "field 'Description' can not be filtered in query call",
        ),
        (
            "SELECT Id, (SELECT Id FROM Opportunities WHERE Billing_Sync_Error__c = 'x') "
            "FROM Account",
            "field 'Billing_Sync_Error__c' can not be filtered in query call",
        ),
        (
            "SELECT Id FROM Account ORDER BY Description",
            "field 'Description' can not be sorted in a query call",
        ),
    ],
)
def test_a_long_text_area_cannot_be_filtered_or_sorted(
    sf: Salesforce, soql: str, message: str
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)

    assert refusal(caught) == (400, errors("INVALID_FIELD", message))


def test_a_long_text_area_can_be_selected_and_a_text_area_filtered(sf: Salesforce) -> None:
    sf.Account.create({"Name": "Acme", "Description": "Long notes", "BillingStreet": "1 Main St"})

    found = sf.query("SELECT Name, Description FROM Account WHERE BillingStreet = '1 Main St'")

    assert [(record["Name"], record["Description"]) for record in found["records"]] == [
        ("Acme", "Long notes")
    ]
