"""Demo data for the sandbox org: ``seed_org(org, "demo")`` or ``seed_org(org, "demo:N")``.

The org is a SaaS company's CRM, ready for a billing demo that runs month by month over 2026:

- 50 accounts (42 ``Customer - Direct``, 8 ``Prospect``) in the United States and Canada (USD),
  the United Kingdom (GBP), Ireland, Germany, France, the Netherlands and Spain (EUR) and Japan
  (JPY). ``BillingCountry`` holds the name as users type it, on 4 accounts the ISO code ("DE");
  US and Canadian accounts have a ``BillingState`` (a US state code, a province's name). Most
  UK/EU accounts have a ``Tax_Id__c``: the EU ones a valid VAT id, but for the first customer in
  Germany and the first in France, whose VAT id fails its check digits. One or two contacts per
  account.
- 8 active products: two editions, two add-ons and premium support (recurring, priced per seat
  per month) and three one-time services, each with an active standard price book entry in USD,
  EUR (~0.92x), GBP (~0.79x) and JPY (~150x), in whole units.
- 200 opportunities in their account's currency and the standard price book: 95 won deals
  (``Type`` "New Customer" up to an account's first win, blank after), 30 Closed Lost and 57 in
  the open stages, closing from 2025-10-01 to 2026-09-30; then 12 upgrades and 6 downgrades,
  Closed Won amendments (``Amends_Opportunity__c``) of won deals with a new full item set from
  the first of a month in 2026 within the original term (whose term and frequency they keep).
- Won deals carry ``Service_Start_Date__c`` (the first of a month; blank on some, so CloseDate
  applies), term, billing frequency, auto-renew and trial days; 8 are cancelled
  (``Cancellation_Date__c`` in 2026, within the term). Deals have one to three line items: an
  edition, maybe an add-on or support (same seats), maybe one one-time service dated the start.
- Imperfect won deals a billing connector must hold for review, named in
  ``SeedSummary.imperfect``: one with an Amount but no products, one on an account without
  BillingCountry.

In a single-currency org every account, deal and price is in the corporate currency (USD), with
one standard price per product; the records are otherwise the same.

The data depends only on N (``random.Random(N)``): the same N gives the same records and ids.
Seeding is idempotent: the summary is kept in the org's meta ``seed``; a seeded org is left alone.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import product
from string import ascii_uppercase, digits
from typing import Any, TypeVar

from stdnum.eu import vat as eu_vat

from connector.billing.periods import ONE_DAY, add_months
from connector.errors import ConfigError
from sandbox.salesforce import rules
from sandbox.salesforce.store import Org

META_KEY = "seed"
SPEC = re.compile(r"demo(?::([0-9]+))?")
T = TypeVar("T")


# -- data ------------------------------------------------------------------------------------
def _words(text: str) -> list[str]:
    return text.split()


def _table(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")] for line in text.strip().splitlines()]


# country | ISO code | currency | web domain | Tax_Id__c pattern (# = digit) | accounts | legal
# forms | cities
COUNTRY_TABLE = """
United States  | US | USD | com   |               | 15 | Inc., LLC, Corp. | New York, Austin, Boston
Canada         | CA | USD | ca    |               | 3  | Inc., Ltd.       | Toronto, Vancouver
United Kingdom | GB | GBP | co.uk | GB#########   | 8  | Ltd, plc         | London, Leeds, Bristol
Ireland        | IE | EUR | ie    | IE#######A    | 3  | Ltd, DAC         | Dublin, Cork, Galway
Germany        | DE | EUR | de    | DE#########   | 7  | GmbH, AG         | Berlin, Munich, Hamburg
France         | FR | EUR | fr    | FR########### | 4  | SAS, SA          | Paris, Lyon, Toulouse
Netherlands    | NL | EUR | nl    | NL#########B01| 3  | B.V., N.V.       | Amsterdam, Rotterdam
Spain          | ES | EUR | es    | ESB########   | 2  | S.L., S.A.       | Madrid, Barcelona
Japan          | JP | JPY | co.jp |               | 5  | K.K., Corporation| Tokyo, Osaka, Yokohama
"""
# ProductCode | Name | Family | Billing_Type__c | USD list price (per seat per month or one-time)
PRODUCT_TABLE = """
SAAS-PRO      | Professional Edition    | Platform | Recurring | 45
SAAS-ENT      | Enterprise Edition      | Platform | Recurring | 85
ADD-ANALYTICS | Analytics Add-on        | Add-on   | Recurring | 12
ADD-API       | Integrations Add-on     | Add-on   | Recurring | 8
SUP-PREMIUM   | Premium Support         | Support  | Recurring | 9
SVC-ONBOARD   | Onboarding Package      | Services | One-Time  | 2500
SVC-TRAINING  | Admin Training          | Services | One-Time  | 1200
SVC-IMPL      | Implementation Services | Services | One-Time  | 7500
"""
COMPANY_WORDS = _words(
    "Acme Apex Arbor Atlas Beacon Birch Bluewater Brightline Cedar Clearview Cobalt Copper "
    "Crestline Delta Ember Evergreen Falcon Granite Harbor Ironwood Juniper Keystone Lumen Maple "
    "Meridian Nimbus Northwind Oakridge Orbit Pinecrest Quartz Redwood Silverline Sterling "
    "Summit Tidewater Vertex Willow"
)
COMPANY_NOUNS = _words(
    "Analytics Logistics Foods Systems Health Energy Robotics Media Capital Labs Networks "
    "Software Retail Freight Pharma Textiles Dynamics Solutions Works Partners"
)
FIRST_NAMES = _words(
    "James Mary Robert Linda Michael Sarah David Emma Daniel Olivia Thomas Sophie Lukas Anna "
    "Pierre Camille Jan Lotte Carlos Lucia Hiroshi Yuki Kenji Aoife Liam Priya"
)
LAST_NAMES = _words(
    "Smith Johnson Brown Taylor Wilson Murphy Walsh Muller Schmidt Fischer Martin Bernard Dubois "
    "Bakker Jansen Garcia Lopez Tanaka Suzuki Sato Nguyen Patel Kim"
)
TITLES = ("CFO", "Controller", "VP Finance", "Head of Operations", "IT Director", "Procurement")
# BillingState of the cities of the US and Canada: US state codes, Canadian province names
STATES = {
    "New York": "NY",
    "Austin": "TX",
    "Boston": "MA",
    "Toronto": "Ontario",
    "Vancouver": "British Columbia",
}
# Characters of each EU VAT id pattern that are changed to make it valid (the first set that
# can), and what they may be; the last of the first set is changed to make it invalid
VAT_CHECKS: dict[str, tuple[tuple[tuple[int, ...], ...], str]] = {
    "IE": (((-1,),), ascii_uppercase),
    "DE": (((-1,), (2, -1)), digits),  # a German VAT id never starts with 0
    "FR": (((2, 3, -1),), digits),  # the key, and the SIREN's Luhn digit
    "NL": (((10,), (9, 10)), digits),
    "ES": (((-1,),), digits + ascii_uppercase),
}
INVALID_VAT = ("DE", "FR")  # the first customer in each has an invalid VAT id
RATES = {"USD": ("1", 1), "EUR": ("0.92", 1), "GBP": ("0.79", 1), "JPY": ("150", 10)}
SEATS = (5, 10, 10, 15, 20, 25, 25, 30, 40, 50, 50, 75, 100, 150, 250)
TERMS = {12: 70, 24: 12, 36: 10, 1: 8}  # months: weight
FREQUENCY = {"Monthly": 58, "Annual": 16, "Quarterly": 14, "Semi-Annual": 4, "Weekly": 4}
FREQUENCY |= {"Biweekly": 4}
TRIALS = {0: 75, 14: 15, 30: 10}
DISCOUNTS = (5, 10, 15, 20)
FIRST_CLOSE, CLOSE_DAYS = date(2025, 10, 1), 365  # close dates 2025-10-01 .. 2026-09-30
YEAR_START, YEAR_END = date(2026, 1, 1), date(2026, 12, 31)
AMEND_FROM, AMEND_UNTIL = date(2026, 2, 1), date(2026, 12, 1)
PROSPECTS, ISO_COUNTRIES = 8, 4
WON, LOST, OPEN = 95, 30, 57
UPGRADE, DOWNGRADE = "Existing Customer - Upgrade", "Existing Customer - Downgrade"
AMENDMENTS = {DOWNGRADE: 6, UPGRADE: 12}
CANCELLATIONS = 8
COUNTRIES = _table(COUNTRY_TABLE)
PRODUCTS = _table(PRODUCT_TABLE)
PRODUCT_NAMES = {row[0]: row[1] for row in PRODUCTS}
EDITIONS = [row[0] for row in PRODUCTS if row[2] == "Platform"]
EXTRAS = [row[0] for row in PRODUCTS if row[2] != "Platform" and row[3] == "Recurring"]
SERVICES = [row[0] for row in PRODUCTS if row[3] == "One-Time"]


def _round(amount: Decimal, currency: str) -> Decimal:
    step = RATES[currency][1]
    return (amount / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step


PRICES = {  # ProductCode: {currency: list price}
    row[0]: {cur: _round(Decimal(row[4]) * Decimal(rate), cur) for cur, (rate, _) in RATES.items()}
    for row in PRODUCTS
}


# -- API -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeedSummary:
    """What a seed created (the same for the same seed number)."""

    seed: int = 0
    accounts: int = 0
    contacts: int = 0
    products: int = 0
    pricebook_entries: int = 0
    opportunities: int = 0
    won: int = 0
    line_items: int = 0
    upgrades: int = 0
    downgrades: int = 0
    cancellations: int = 0
    imperfect: tuple[str, ...] = field(default=())  # names of won deals to hold for review

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "imperfect": list(self.imperfect)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeedSummary:
        known = {spec.name for spec in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        return cls(**{**values, "imperfect": tuple(values.get("imperfect", ()))})


def parse_spec(spec: str) -> int:
    """The seed number of ``"demo"`` (1) or ``"demo:N"``; ConfigError for anything else."""
    match = SPEC.fullmatch(spec) if isinstance(spec, str) else None
    if match is None:
        raise ConfigError(
            f'unknown seed {spec!r}: expected "demo" or "demo:N" with N a non-negative integer'
        )
    return int(match.group(1) or 1)


def seed_org(org: Org, spec: str) -> SeedSummary:
    """Fill ``org`` with the demo data of ``spec``, in one transaction; a seeded org (meta
    ``seed`` set) is left as it is and its stored summary returned."""
    number = parse_spec(spec)
    with org.transaction():
        stored = org.meta(META_KEY)
        if stored is not None:
            return SeedSummary.from_dict(json.loads(stored))
        summary = _Seeder(org, number).run()
        org.set_meta(META_KEY, json.dumps(summary.to_dict(), sort_keys=True))
        return summary


# -- planning and writing --------------------------------------------------------------------
def _pick(rng: random.Random, weights: dict[T, int]) -> T:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _vat_with_checks(
    number: str, positions: tuple[int, ...], alphabet: str, *, valid: bool
) -> str | None:
    """``number`` with the characters at ``positions`` changed (the first that fits) so that
    it is a valid EU VAT id, or another, invalid one of the same form; None if none fits."""
    for choice in product(alphabet, repeat=len(positions)):
        chars = list(number)
        for position, char in zip(positions, choice, strict=True):
            chars[position] = char
        candidate = "".join(chars)
        if eu_vat.is_valid(candidate) == valid and (valid or candidate != number):
            return candidate
    return None


def _month_start_from(day: date) -> date:
    return day if day.day == 1 else add_months(day.replace(day=1), 1)


@dataclass(eq=False)
class _Deal:
    account: int
    stage: str
    close: date
    start: date | None
    term: int
    edition: str
    seats: int
    values: dict[str, Any]
    items: list[dict[str, Any]]
    amends: _Deal | None = None
    id: str = ""


class _Seeder:
    def __init__(self, org: Org, number: int) -> None:
        self.org, self.number = org, number
        self.rng = random.Random(number)  # noqa: S311 - demo data, not security
        self.accounts: list[dict[str, Any]] = []
        self.contacts: list[tuple[int, dict[str, Any]]] = []
        self.deals: list[_Deal] = []
        self.imperfect: list[_Deal] = []
        self.names: set[str] = set()
        stages = list(org.schema.stages.values())
        self.won = next(stage.name for stage in stages if stage.won)
        self.lost = next(stage.name for stage in stages if stage.closed and not stage.won)
        self.open = [stage.name for stage in stages if not stage.closed]
        self.no_country = 0
        self.multi_currency = org.schema.multi_currency
        corporate = org.schema.corporate_currency
        self.currencies = [code for code in RATES if self.multi_currency or code == corporate]

    def _currency(self, currency: str) -> str:
        """The currency a record of ``currency`` is in, in this org."""
        return currency if self.multi_currency else self.org.schema.corporate_currency

    def _in_org(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` as this org takes them (no CurrencyIsoCode without multi-currency)."""
        if self.multi_currency:
            return values
        return {key: value for key, value in values.items() if key != "CurrencyIsoCode"}

    def _values(self, obj: str, name: str) -> tuple[str, ...]:
        return self.org.schema.objects[obj].fields[name].spec.values

    def run(self) -> SeedSummary:
        self._plan_accounts()
        self._plan_deals()
        self._plan_changes()
        self._write()
        types = [deal.values.get("Type") for deal in self.deals]
        return SeedSummary(
            seed=self.number,
            accounts=len(self.accounts),
            contacts=len(self.contacts),
            products=len(PRODUCTS),
            pricebook_entries=len(PRODUCTS) * len(self.currencies),
            opportunities=len(self.deals),
            won=sum(deal.stage == self.won for deal in self.deals),
            line_items=sum(len(deal.items) for deal in self.deals),
            upgrades=types.count(UPGRADE),
            downgrades=types.count(DOWNGRADE),
            cancellations=sum(bool(deal.values.get("Cancellation_Date__c")) for deal in self.deals),
            imperfect=tuple(deal.values["Name"] for deal in self.imperfect),
        )

    def _plan_accounts(self) -> None:
        rng, used = self.rng, set[str]()
        countries = [row for row in COUNTRIES for _ in range(int(row[5]))]
        rng.shuffle(countries)
        prospects = set(rng.sample(range(len(countries)), PROSPECTS))
        for index, (country, _, local, tld, vat, _, forms, cities) in enumerate(countries):
            currency = self._currency(local)
            base = ""
            while not base or base in used:
                base = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_NOUNS)}"
            used.add(base)
            domain = f"{base.lower().replace(' ', '')}.{tld}"
            tax_id = None
            if vat and rng.random() < 0.85:
                tax_id = "".join(str(rng.randrange(10)) if ch == "#" else ch for ch in vat)
            self.accounts.append(
                {
                    "Name": f"{base} {rng.choice(forms.split(', '))}",
                    "Type": "Prospect" if index in prospects else "Customer - Direct",
                    "Industry": rng.choice(self._values("Account", "Industry")),
                    "BillingCity": rng.choice(cities.split(", ")),
                    "BillingCountry": country,
                    "CurrencyIsoCode": currency,
                    "Website": f"https://www.{domain}",
                    "Tax_Id__c": tax_id,
                    "Billing_Email__c": f"accounts@{domain}",
                }
            )
            self.accounts[-1]["BillingState"] = STATES.get(self.accounts[-1]["BillingCity"])
            for first in rng.sample(FIRST_NAMES, 1 + (rng.random() < 0.6)):
                last = rng.choice(LAST_NAMES)
                email = f"{first}.{last}@{domain}".lower()
                contact = {"FirstName": first, "LastName": last, "Email": email}
                contact |= {"Title": rng.choice(TITLES), "CurrencyIsoCode": currency}
                self.contacts.append((index, contact))
        customers = [i for i in range(len(countries)) if i not in prospects]
        self.no_country = rng.choice(customers)
        self.accounts[self.no_country]["BillingCountry"] = None
        others = [i for i in range(len(countries)) if i != self.no_country]
        for index in rng.sample(others, ISO_COUNTRIES):
            self.accounts[index]["BillingCountry"] = countries[index][1]
        self._vat_ids([row[1] for row in countries])

    def _vat_ids(self, codes: list[str]) -> None:
        """Valid check characters for the EU VAT ids (drawn as random digits), then invalid
        ones for the first customer of each country of :data:`INVALID_VAT`."""
        spoiled: set[str] = set()
        for account, code in zip(self.accounts, codes, strict=True):
            number = account["Tax_Id__c"]
            if not number or code not in VAT_CHECKS:
                continue
            tries, alphabet = VAT_CHECKS[code]
            for positions in tries:
                fixed = _vat_with_checks(number, positions, alphabet, valid=True)
                if fixed is not None:
                    number = fixed
                    break
            customer = account["Type"] != "Prospect" and account["BillingCountry"]
            if customer and code in INVALID_VAT and code not in spoiled:
                spoiled.add(code)
                number = _vat_with_checks(number, tries[0][-1:], alphabet, valid=False) or number
            account["Tax_Id__c"] = number

    def _plan_deals(self) -> None:
        rng, everyone = self.rng, range(len(self.accounts))
        customers = [i for i in everyone if self.accounts[i]["Type"] != "Prospect"]
        prospects = [i for i in everyone if i not in customers]
        repeat = [i for i in customers if i != self.no_country]
        won = customers + [rng.choice(repeat) for _ in range(WON - len(customers))]
        others = [*self.open, *(rng.choice(self.open) for _ in range(OPEN - len(self.open)))]
        others += [self.lost] * LOST
        rng.shuffle(others)
        owners = prospects + [rng.choice(everyone) for _ in range(len(others) - len(prospects))]
        planned = [(account, self.won) for account in won] + list(zip(owners, others, strict=True))
        self.deals = sorted(
            (self._deal(account, stage) for account, stage in planned),
            key=lambda deal: (deal.close, deal.account),
        )
        has_won: set[int] = set()
        for deal in self.deals:  # a new customer until its first won deal
            if deal.account not in has_won:
                deal.values["Type"] = "New Customer"
            if deal.stage == self.won:
                has_won.add(deal.account)

    def _deal(self, account: int, stage: str) -> _Deal:
        rng, currency = self.rng, self.accounts[account]["CurrencyIsoCode"]
        close = FIRST_CLOSE + timedelta(days=rng.randrange(CLOSE_DAYS))
        edition, seats, term = rng.choice(EDITIONS), rng.choice(SEATS), _pick(rng, TERMS)
        start = _month_start_from(close) if stage == self.won and rng.random() < 0.85 else None
        codes = [edition]
        if rng.random() < 0.45:
            codes.append(rng.choice(EXTRAS))
        if rng.random() < 0.35:
            codes.append(rng.choice(SERVICES))
        dated = (start or close).isoformat()
        items = [self._item(code, currency, seats, dated) for code in codes]
        values = {
            "Name": self._name(account, edition, seats, ""),
            "StageName": stage,
            "CloseDate": close.isoformat(),
            "CurrencyIsoCode": currency,
            "LeadSource": rng.choice(self._values("Opportunity", "LeadSource")),
            "Service_Start_Date__c": start.isoformat() if start else None,
            "Term_Months__c": term,
            "Billing_Frequency__c": "Monthly" if term == 1 else _pick(rng, FREQUENCY),
            "Auto_Renew__c": rng.random() < 0.85,
            "Trial_Days__c": 0 if term == 1 else _pick(rng, TRIALS),
        }
        return _Deal(account, stage, close, start, term, edition, seats, values, items)

    def _item(self, code: str, currency: str, seats: int, dated: str) -> dict[str, Any]:
        """A line item: recurring ones per seat, a one-time one once, dated ``dated``."""
        price, roll, once = PRICES[code][currency], self.rng.random(), code in SERVICES
        return {
            "code": code,
            "Quantity": 1 if once else seats,
            "UnitPrice": _round(price * Decimal("0.9"), currency) if roll < 0.05 else price,
            "Discount": self.rng.choice(DISCOUNTS) if 0.05 <= roll < 0.2 else None,
            "ServiceDate": dated if once else None,
        }

    def _name(self, account: int, edition: str, seats: int, suffix: str) -> str:
        base = f"{self.accounts[account]['Name']} - {PRODUCT_NAMES[edition]} {seats} seats{suffix}"
        name, copy = base, 1
        while name in self.names:
            copy += 1
            name = f"{base} ({copy})"
        self.names.add(name)
        return name

    def _plan_changes(self) -> None:
        rng = self.rng
        won = [deal for deal in self.deals if deal.stage == self.won]
        lonely = next(deal for deal in won if deal.account == self.no_country)
        empty = rng.choice([deal for deal in won if deal is not lonely])
        currency = empty.values["CurrencyIsoCode"]
        empty.values["Amount"] = empty.seats * PRICES[empty.edition][currency]
        empty.items = []
        self.imperfect = [empty, lonely]
        candidates = [deal for deal in won if deal not in self.imperfect]
        rng.shuffle(candidates)
        kinds = [kind for kind, count in AMENDMENTS.items() for _ in range(count)]
        amendments: list[_Deal] = []
        for deal in candidates:
            when = self._amend_date(deal) if kinds else None
            if when is None or (kinds[0] == DOWNGRADE and deal.seats < 10):
                continue
            amendments.append(self._amendment(deal, when, kinds.pop(0)))
        amended = [amendment.amends for amendment in amendments]
        cancelled = 0
        for deal in [deal for deal in candidates if deal not in amended]:
            cancel = self._cancel_date(deal) if cancelled < CANCELLATIONS else None
            if cancel is not None:
                deal.values["Cancellation_Date__c"] = cancel.isoformat()
                cancelled += 1
        self.deals += sorted(amendments, key=lambda deal: (deal.close, deal.account))

    def _amend_date(self, deal: _Deal) -> date | None:
        start = deal.start or deal.close
        end, month = add_months(start, deal.term), start.replace(day=1)
        options = [add_months(month, months) for months in range(2, 7)]
        options = [day for day in options if AMEND_FROM <= day <= AMEND_UNTIL and day < end]
        return self.rng.choice(options) if deal.term > 1 and options else None

    def _cancel_date(self, deal: _Deal) -> date | None:
        start = deal.start or deal.close
        low = max(start + ONE_DAY, YEAR_START)
        high = min(add_months(start, deal.term) - ONE_DAY, YEAR_END)
        if low > high:
            return None
        return low + timedelta(days=self.rng.randrange((high - low).days + 1))

    def _amendment(self, deal: _Deal, when: date, kind: str) -> _Deal:
        rng, currency = self.rng, deal.values["CurrencyIsoCode"]
        upgrade = kind == UPGRADE
        step = 5 * max(1, round(deal.seats * rng.choice((0.2, 0.3, 0.4, 0.6)) / 5))
        seats = deal.seats + step if upgrade else max(5, deal.seats - step)
        items = [{**item, "Quantity": seats} for item in deal.items if item["code"] not in SERVICES]
        missing = [code for code in EXTRAS if all(item["code"] != code for item in items)]
        if upgrade and missing and rng.random() < 0.4:
            items.append(self._item(rng.choice(missing), currency, seats, ""))
        close = when - timedelta(days=rng.randint(1, 14))
        suffix = " (upgrade)" if upgrade else " (downgrade)"
        values = {
            **deal.values,
            "Name": self._name(deal.account, deal.edition, seats, suffix),
            "Type": kind,
            "CloseDate": close.isoformat(),
            "Service_Start_Date__c": when.isoformat(),
            "Trial_Days__c": 0,
        }
        return _Deal(
            deal.account, self.won, close, when, deal.term, deal.edition, seats, values, items, deal
        )

    def _write(self) -> None:
        org, book = self.org, rules.standard_pricebook(self.org)
        entries: dict[tuple[str, str], str] = {}
        for code, name, family, billing, _ in PRODUCTS:
            about = "Per seat, per month." if billing == "Recurring" else "One-time fee."
            product = org.create(
                "Product2",
                {"Name": name, "ProductCode": code, "Family": family, "IsActive": True}
                | {"Billing_Type__c": billing, "Description": about},
            )
            for currency in self.currencies:
                price = PRICES[code][currency]
                entry = {"Pricebook2Id": book, "Product2Id": product, "UnitPrice": price}
                entry |= {"IsActive": True, "CurrencyIsoCode": currency}
                entries[code, currency] = org.create("PricebookEntry", self._in_org(entry))
        accounts = [org.create("Account", self._in_org(values)) for values in self.accounts]
        for index, contact in self.contacts:
            org.create("Contact", self._in_org({**contact, "AccountId": accounts[index]}))
        for deal in self.deals:
            values = {**deal.values, "AccountId": accounts[deal.account], "Pricebook2Id": book}
            if deal.amends is not None:
                values["Amends_Opportunity__c"] = deal.amends.id
            deal.id = org.create("Opportunity", self._in_org(values))
            for order, item in enumerate(deal.items, start=1):
                line = {key: value for key, value in item.items() if key != "code"}
                entry_id = entries[item["code"], values["CurrencyIsoCode"]]
                line |= {"OpportunityId": deal.id, "PricebookEntryId": entry_id, "SortOrder": order}
                org.create("OpportunityLineItem", line)
