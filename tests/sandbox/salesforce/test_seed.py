"""The demo seed: deterministic, idempotent, realistic and consistent with the org's rules."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest
from stdnum.eu import vat as eu_vat

from connector.billing.periods import add_months
from connector.billing.tax import country_code
from connector.errors import ConfigError
from sandbox.salesforce import rules
from sandbox.salesforce.schema import default_schema
from sandbox.salesforce.seed import SeedSummary, parse_spec, seed_org
from sandbox.salesforce.store import Org

VOLATILE = {"CreatedDate", "LastModifiedDate", "SystemModstamp"}
WON, LOST = "Closed Won", "Closed Lost"
UPGRADE, DOWNGRADE = "Existing Customer - Upgrade", "Existing Customer - Downgrade"
CURRENCY_OF = {
    "US": "USD",
    "CA": "USD",
    "GB": "GBP",
    "IE": "EUR",
    "DE": "EUR",
    "FR": "EUR",
    "NL": "EUR",
    "ES": "EUR",
    "JP": "JPY",
}
DEMO_1 = {
    "seed": 1,
    "accounts": 50,
    "contacts": 76,
    "products": 8,
    "pricebook_entries": 32,
    "opportunities": 200,
    "won": 113,
    "line_items": 350,
    "upgrades": 12,
    "downgrades": 6,
    "cancellations": 8,
    "imperfect": [
        "Quartz Health GmbH - Enterprise Edition 25 seats",
        "Harbor Pharma Corp. - Enterprise Edition 20 seats",
    ],
}
BAD_SPEC = 'unknown seed {!r}: expected "demo" or "demo:N" with N a non-negative integer'
SPECS = ["demo", "demo:0", "demo:2", "demo:99"]


def seeded(spec: str, org: Org | None = None) -> tuple[Org, SeedSummary]:
    org = org or Org(default_schema())
    return org, seed_org(org, spec)


def dump(org: Org, *, volatile: bool = False) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows in Id order (without the time stamps unless ``volatile``)."""
    tables = {}
    for name, obj in org.schema.objects.items():
        columns = ", ".join(f'"{c}"' for c in obj.fields if volatile or c not in VOLATILE)
        tables[name] = org.db.execute(f'SELECT {columns} FROM "{name}" ORDER BY Id').fetchall()
    return tables


def rows(org: Org, sql: str, *params: Any) -> list[dict[str, Any]]:
    cursor = org.db.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor]


def day(text: str) -> date:
    return date.fromisoformat(text)


@pytest.fixture(scope="module")
def demo() -> Org:
    return seeded("demo")[0]


# -- determinism -------------------------------------------------------------------------------
def test_demo_summary_is_exact() -> None:
    first, second = seeded("demo")[1], seeded("demo")[1]
    assert first == second
    assert first.to_dict() == DEMO_1
    assert seeded("demo:1")[1] == first


def test_same_number_gives_the_same_data() -> None:
    assert dump(seeded("demo")[0]) == dump(seeded("demo:1")[0])


def test_another_number_gives_other_data() -> None:
    one, two = seeded("demo:1"), seeded("demo:2")
    assert dump(one[0]) != dump(two[0])
    assert one[1].imperfect != two[1].imperfect
    names = [
        {row["Name"] for row in rows(org, "SELECT Name FROM Account")} for org, _ in (one, two)
    ]
    assert names[0] != names[1]


def test_data_depends_on_neither_global_random_nor_clock() -> None:
    random.seed(1)
    early = Org(default_schema(), clock=lambda: datetime(2020, 1, 1, tzinfo=UTC))
    seeded("demo:3", early)
    random.seed(2)
    assert dump(early) == dump(seeded("demo:3")[0])


# -- idempotence, atomicity, bad specs ----------------------------------------------------------
def test_seeding_twice_is_a_no_op() -> None:
    org, summary = seeded("demo:4")
    before = dump(org, volatile=True)
    counters = org.db.execute("SELECT * FROM _counter ORDER BY name").fetchall()
    assert seed_org(org, "demo:4") == summary
    assert seed_org(org, "demo:5") == summary  # a seeded org is left alone, whatever the spec
    assert dump(org, volatile=True) == before
    assert org.db.execute("SELECT * FROM _counter ORDER BY name").fetchall() == counters


def test_summary_is_stored_in_meta() -> None:
    org, summary = seeded("demo")
    assert json.loads(org.meta("seed") or "null") == summary.to_dict()
    assert SeedSummary.from_dict(summary.to_dict()) == summary


def test_a_failed_seed_leaves_the_org_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    org = Org(default_schema())
    create, calls = org.create, []

    def failing(name: str, values: dict[str, Any]) -> str:
        calls.append(name)
        if len(calls) == 300:
            raise RuntimeError("disk full")
        return create(name, values)

    monkeypatch.setattr(org, "create", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        seed_org(org, "demo")
    assert org.meta("seed") is None
    for table in ("Product2", "PricebookEntry", "Account", "Opportunity"):
        assert org.db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone() == (0,)
    monkeypatch.undo()
    assert seed_org(org, "demo").to_dict() == DEMO_1
    assert len(rows(org, 'SELECT Id FROM "Pricebook2"')) == 1


@pytest.mark.parametrize(
    "spec", ["", "demo:", "demo:-1", "demo:x", "Demo", "demo:1:2", " demo", "demo:1 ", "sample"]
)
def test_a_bad_spec_is_refused(spec: str) -> None:
    org = Org(default_schema())
    with pytest.raises(ConfigError) as raised:
        seed_org(org, spec)
    assert str(raised.value) == BAD_SPEC.format(spec)
    assert org.meta("seed") is None


def test_the_message_names_the_value_and_the_forms() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_spec("demo:-1")
    assert str(raised.value) == (
        'unknown seed \'demo:-1\': expected "demo" or "demo:N" with N a non-negative integer'
    )


def test_parse_spec() -> None:
    assert [parse_spec(spec) for spec in ("demo", "demo:0", "demo:12")] == [1, 0, 12]


# -- the data ----------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", SPECS)
def test_counts_are_realistic(spec: str) -> None:
    org, summary = seeded(spec)

    def count(sql: str) -> int:
        return int(org.db.execute(sql).fetchone()[0])

    assert summary.accounts == count('SELECT COUNT(*) FROM "Account"') == 50
    assert summary.contacts == count('SELECT COUNT(*) FROM "Contact"')
    assert summary.products == count('SELECT COUNT(*) FROM "Product2"') == 8
    assert summary.pricebook_entries == count('SELECT COUNT(*) FROM "PricebookEntry"') == 32
    assert summary.opportunities == count('SELECT COUNT(*) FROM "Opportunity"')
    assert summary.won == count('SELECT COUNT(*) FROM "Opportunity" WHERE IsWon = 1')
    assert summary.line_items == count('SELECT COUNT(*) FROM "OpportunityLineItem"')
    assert summary.upgrades == count(f"SELECT COUNT(*) FROM Opportunity WHERE Type = '{UPGRADE}'")
    assert summary.downgrades == count(
        f"SELECT COUNT(*) FROM Opportunity WHERE Type = '{DOWNGRADE}'"
    )
    assert summary.cancellations == count(
        "SELECT COUNT(*) FROM Opportunity WHERE Cancellation_Date__c IS NOT NULL"
    )
    assert 50 <= summary.contacts <= 100
    assert 180 <= summary.opportunities <= 220
    assert 0.55 <= summary.won / summary.opportunities <= 0.60
    lost = count(f"SELECT COUNT(*) FROM Opportunity WHERE StageName = '{LOST}'")
    assert 0.12 <= lost / summary.opportunities <= 0.18
    assert summary.opportunities - 1 <= summary.line_items <= 3 * summary.opportunities
    assert 10 <= summary.upgrades <= 14
    assert 4 <= summary.downgrades <= 8
    assert 6 <= summary.cancellations <= 10
    assert 1 <= len(summary.imperfect) <= 3


def test_accounts_span_countries_and_currencies(demo: Org) -> None:
    accounts = rows(demo, 'SELECT * FROM "Account"')
    assert {a["CurrencyIsoCode"] for a in accounts} == {"USD", "EUR", "GBP", "JPY"}
    assert len({a["Name"] for a in accounts}) == len(accounts)
    countries = [a["BillingCountry"] for a in accounts if a["BillingCountry"]]
    assert 1 <= sum(len(c) == 2 for c in countries) <= 6  # a few ISO codes, mostly names
    assert {"United States", "Germany", "Japan", "United Kingdom"} <= set(countries)
    industries = set(default_schema().objects["Account"].fields["Industry"].spec.values)
    for account in accounts:
        assert account["Type"] in ("Customer - Direct", "Prospect")
        assert account["Industry"] in industries
        assert account["BillingCity"]
        if account["BillingCountry"] is None:
            continue
        code = country_code(account["BillingCountry"])
        assert CURRENCY_OF[code] == account["CurrencyIsoCode"]
        tax_id = account["Tax_Id__c"]
        if code in ("US", "CA", "JP"):
            assert tax_id is None
        elif code in ("GB", "DE"):
            assert tax_id is None or re.fullmatch(code + r"\d{9}", tax_id)
    eu_uk = [a for a in accounts if a["CurrencyIsoCode"] in ("EUR", "GBP")]
    assert sum(bool(a["Tax_Id__c"]) for a in eu_uk) > len(eu_uk) / 2
    contacts = Counter(c["AccountId"] for c in rows(demo, 'SELECT AccountId FROM "Contact"'))
    assert set(contacts) == {a["Id"] for a in accounts}
    assert set(contacts.values()) <= {1, 2}


def test_us_and_canadian_accounts_have_a_state_or_province(demo: Org) -> None:
    accounts = rows(demo, 'SELECT * FROM "Account"')
    states = {
        (a["BillingCity"], a["BillingState"]) for a in accounts if a["CurrencyIsoCode"] == "USD"
    }
    assert states == {
        ("New York", "NY"),
        ("Austin", "TX"),
        ("Boston", "MA"),
        ("Toronto", "Ontario"),
        ("Vancouver", "British Columbia"),
    }
    assert {a["BillingState"] for a in accounts if a["CurrencyIsoCode"] != "USD"} == {None}


@pytest.mark.parametrize("spec", SPECS)
def test_eu_vat_ids_are_valid_but_two(spec: str) -> None:
    """EU customers have valid VAT ids, but for the first customer in Germany and the first in
    France, whose VAT id fails its check digits: a demo of the reverse charge and of an id it
    does not accept."""
    org, _ = seeded(spec)
    eu = [
        a
        for a in rows(org, 'SELECT * FROM "Account" ORDER BY Id')
        if a["Tax_Id__c"] and not a["Tax_Id__c"].startswith("GB")
    ]
    assert len(eu) >= 10
    invalid = [a for a in eu if not eu_vat.is_valid(a["Tax_Id__c"])]
    assert sorted(a["Tax_Id__c"][:2] for a in invalid) == ["DE", "FR"]
    for bad in invalid:
        assert bad["Type"] == "Customer - Direct" and bad["BillingCountry"]
        first = next(
            a
            for a in eu
            if a["Tax_Id__c"][:2] == bad["Tax_Id__c"][:2]
            and a["Type"] == "Customer - Direct"
            and a["BillingCountry"]
        )
        assert first is bad
    patterns = {"IE": r"IE\d{7}[A-W]", "DE": r"DE[1-9]\d{8}", "FR": r"FR\d{11}"}
    patterns |= {"NL": r"NL\d{9}B01", "ES": r"ESB\d{7}[0-9A-Z]"}
    for account in eu:
        assert re.fullmatch(patterns[account["Tax_Id__c"][:2]], account["Tax_Id__c"])


def test_demo_vat_ids() -> None:
    """The demo org's own: the two customers whose VAT id is refused, by name."""
    org, _ = seeded("demo")
    invalid = [
        (a["Name"], a["Tax_Id__c"])
        for a in rows(org, 'SELECT * FROM "Account" ORDER BY Id')
        if a["Tax_Id__c"]
        and not a["Tax_Id__c"].startswith("GB")
        and not eu_vat.is_valid(a["Tax_Id__c"])
    ]
    assert invalid == [
        ("Silverline Health AG", "DE836075980"),
        ("Summit Textiles SA", "FR23101222830"),
    ]


def test_products_have_prices_in_every_currency(demo: Org) -> None:
    products = rows(demo, 'SELECT * FROM "Product2"')
    assert all(p["IsActive"] for p in products)
    assert {p["Billing_Type__c"] for p in products} == {"Recurring", "One-Time"}
    assert {p["Family"] for p in products} == {"Platform", "Add-on", "Services", "Support"}
    assert len({p["ProductCode"] for p in products}) == len(products)
    entries = rows(demo, 'SELECT * FROM "PricebookEntry"')
    assert {e["Pricebook2Id"] for e in entries} == {rules.standard_pricebook(demo)}
    assert all(e["IsActive"] for e in entries)
    prices = {(e["ProductCode"], e["CurrencyIsoCode"]): e["UnitPrice"] for e in entries}
    for product in products:
        usd = prices[product["ProductCode"], "USD"]
        for currency, rate in (("EUR", 0.92), ("GBP", 0.79), ("JPY", 150)):
            price = prices[product["ProductCode"], currency]
            assert price == int(price)
            assert abs(price - usd * rate) <= max(1, usd * rate * 0.06)


def test_opportunities_follow_the_org(demo: Org) -> None:
    deals = rows(
        demo,
        'SELECT o.*, a.CurrencyIsoCode AS account_currency FROM "Opportunity" o '
        'JOIN "Account" a ON a.Id = o.AccountId',
    )
    stages = {stage for stage in default_schema().stages}
    assert {d["StageName"] for d in deals} == stages
    assert len({d["Name"] for d in deals}) == len(deals)
    book = rules.standard_pricebook(demo)
    for deal in deals:
        assert deal["CurrencyIsoCode"] == deal["account_currency"]
        assert deal["Pricebook2Id"] == book
        assert date(2025, 10, 1) <= day(deal["CloseDate"]) <= date(2026, 12, 31)
        if deal["Amends_Opportunity__c"] is None:
            assert day(deal["CloseDate"]) <= date(2026, 9, 30)
        if not deal["IsWon"]:
            continue
        start = deal["Service_Start_Date__c"]
        if start is not None:
            assert day(start).day == 1
            assert day(start) >= day(deal["CloseDate"])
        assert deal["Term_Months__c"] in (1, 12, 24, 36)
        assert deal["Billing_Frequency__c"] is not None
        assert deal["Trial_Days__c"] in (0, 14, 30)
    prospects = rows(
        demo,
        'SELECT o.Id FROM "Opportunity" o JOIN "Account" a ON a.Id = o.AccountId '
        "WHERE a.Type = 'Prospect' AND o.IsWon = 1",
    )
    assert prospects == []


def test_line_items_match_their_opportunity(demo: Org) -> None:
    items = rows(
        demo,
        "SELECT i.*, o.CurrencyIsoCode AS deal_currency, o.CloseDate, o.Service_Start_Date__c, "
        'p.Billing_Type__c FROM "OpportunityLineItem" i '
        'JOIN "Opportunity" o ON o.Id = i.OpportunityId JOIN "Product2" p ON p.Id = i.Product2Id',
    )
    assert items
    per_deal: Counter[str] = Counter()
    one_time: Counter[str] = Counter()
    for item in items:
        assert item["CurrencyIsoCode"] == item["deal_currency"]
        assert item["Quantity"] > 0
        assert item["ListPrice"] > 0 and item["UnitPrice"] > 0
        assert item["Discount"] in (None, 5, 10, 15, 20)
        per_deal[item["OpportunityId"]] += 1
        if item["Billing_Type__c"] == "One-Time":
            one_time[item["OpportunityId"]] += 1
            assert item["Quantity"] == 1
            assert item["ServiceDate"] == (item["Service_Start_Date__c"] or item["CloseDate"])
        else:
            assert item["ServiceDate"] is None
    assert set(per_deal.values()) <= {1, 2, 3}
    assert set(one_time.values()) == {1}


def test_amendments_change_won_deals_of_the_same_account(demo: Org) -> None:
    amendments = rows(
        demo,
        "SELECT a.*, o.StageName AS original_stage, o.AccountId AS original_account, "
        "o.CurrencyIsoCode AS original_currency, o.Type AS original_type, "
        "COALESCE(o.Service_Start_Date__c, o.CloseDate) AS original_start, "
        'o.Term_Months__c AS original_term FROM "Opportunity" a '
        'JOIN "Opportunity" o ON o.Id = a.Amends_Opportunity__c',
    )
    kinds = Counter(a["Type"] for a in amendments)
    assert kinds == {UPGRADE: 12, DOWNGRADE: 6}
    for amendment in amendments:
        assert amendment["StageName"] == amendment["original_stage"] == WON
        assert amendment["original_type"] not in (UPGRADE, DOWNGRADE)
        assert amendment["AccountId"] == amendment["original_account"]
        assert amendment["CurrencyIsoCode"] == amendment["original_currency"]
        start, original = day(amendment["Service_Start_Date__c"]), day(amendment["original_start"])
        assert start.year == 2026 and start.day == 1
        assert day(amendment["CloseDate"]).year == 2026
        assert original < start < add_months(original, int(amendment["original_term"]))
        assert day(amendment["CloseDate"]) <= start
        assert amendment["HasOpportunityLineItem"]
    assert len({a["Amends_Opportunity__c"] for a in amendments}) == len(amendments)


def test_seats_go_up_on_upgrades_and_down_on_downgrades(demo: Org) -> None:
    def seats(deal: str) -> float:
        return float(
            demo.db.execute(
                "SELECT MAX(i.Quantity) FROM OpportunityLineItem i "
                "JOIN Product2 p ON p.Id = i.Product2Id "
                "WHERE i.OpportunityId = ? AND p.Family = 'Platform'",
                (deal,),
            ).fetchone()[0]
        )

    for amendment in rows(
        demo, "SELECT * FROM Opportunity WHERE Amends_Opportunity__c IS NOT NULL"
    ):
        before, after = seats(amendment["Amends_Opportunity__c"]), seats(amendment["Id"])
        assert after > before if amendment["Type"] == UPGRADE else after < before


def test_cancellations_fall_inside_the_term_in_2026(demo: Org) -> None:
    cancelled = rows(demo, "SELECT * FROM Opportunity WHERE Cancellation_Date__c IS NOT NULL")
    assert len(cancelled) == 8
    for deal in cancelled:
        assert deal["IsWon"]
        cancel = day(deal["Cancellation_Date__c"])
        start = day(deal["Service_Start_Date__c"] or deal["CloseDate"])
        assert cancel.year == 2026
        assert start < cancel < add_months(start, int(deal["Term_Months__c"]))


def test_imperfect_deals_are_the_only_ones_to_hold(demo: Org) -> None:
    summary = seed_org(demo, "demo")
    won = rows(
        demo,
        'SELECT o.*, a.BillingCountry FROM "Opportunity" o JOIN "Account" a ON a.Id = o.AccountId '
        "WHERE o.IsWon = 1",
    )
    by_name = {deal["Name"]: deal for deal in won}
    no_items, no_country = (by_name[name] for name in summary.imperfect)
    assert not no_items["HasOpportunityLineItem"] and no_items["Amount"] > 0
    assert no_items["BillingCountry"]
    assert no_country["HasOpportunityLineItem"] and no_country["BillingCountry"] is None
    for deal in won:
        if deal["Name"] not in summary.imperfect:
            assert deal["HasOpportunityLineItem"] and deal["BillingCountry"]
            assert deal["Amount"] > 0
