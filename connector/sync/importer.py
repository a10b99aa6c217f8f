"""Import customers, products, prices, contracts and dated events from a YAML file.

The file is the way to load a billing core without a CRM: sample data, a migration from another
system, a dry run. Importing is idempotent: records are matched by their ``id`` (customers,
contracts, events), ``code`` (products) or ``key`` (prices), so importing the same file again
changes nothing, and events dated after ``as_of`` wait for a later import. A record that is
invalid is reported with its file and line and skipped; the rest of the file is imported.

With ``limits``, contracts and amendments are checked as deals pulled from Salesforce are
(:mod:`connector.billing.plausibility`): one with an implausible date or amount is refused the
same way, with every reason (the file is at hand: fix it, or raise the limit for that import),
and a date before the books open is refused whatever the limits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.billing import plausibility
from connector.billing.metered import MeteredModel, MeteredPrice
from connector.billing.money import currency as currency_of
from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind, PricingModel, Tier
from connector.billing.subscriptions import ItemSpec, SubscriptionTerms
from connector.db import catalog, tables
from connector.errors import ConnectorError, InvalidInputError, NotFoundError
from connector.sync import contracts, settlement
from connector.sync.mapping import Address
from connector.yamlfile import Location, YamlDocument, format_location, load_yaml

SYSTEM = "import"


def sample_file() -> Path:
    """The sample file shipped with the connector; it documents the format."""
    return Path(str(resources.files("connector.samples").joinpath("demo.yaml")))


RecordT = TypeVar("RecordT", bound=BaseModel)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerRecord(_Record):
    id: str
    name: str
    country: str
    currency: str | None = None
    tax_id: str | None = None
    region: str | None = None  # a state or province: ISO 3166-2 code (US-CA, CA) or name
    street: str | None = None  # the billing address, shown on documents
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    language: str | None = None  # of its documents (en, ja); default: from the country


class ProductRecord(_Record):
    code: str
    name: str
    family: str | None = None
    tax_code: str | None = None


class TierRecord(_Record):
    first_unit: int
    last_unit: int | None = None
    unit_amount: Decimal = Decimal(0)
    flat_amount: Decimal = Decimal(0)


class PriceRecord(_Record):
    key: str
    product: str
    currency: str
    type: Literal["recurring", "one_time", "metered"] = "recurring"
    model: PricingModel = PricingModel.PER_UNIT
    unit_amount: Decimal | None = None
    flat_amount: Decimal | None = None
    tiers: list[TierRecord] = Field(default_factory=list)
    # a metered price: the metric whose usage it bills, and the terms only it has
    metric: str | None = None
    package_size: int | None = None
    package_amount: Decimal | None = None
    free_units: Decimal = Decimal(0)
    minimum: Decimal | None = None

    def metered(self) -> MeteredPrice | None:
        """The terms of a metered price; None for the others (which take none of them)."""
        if self.type != "metered":
            extra = [
                name
                for name in ("metric", "package_size", "package_amount", "minimum")
                if getattr(self, name) is not None
            ] + (["free_units"] if self.free_units else [])
            if extra:
                raise InvalidInputError(
                    f"{', '.join(extra)}: only a metered price takes these",
                    where=f"price {self.key}",
                )
            return None
        where = f"price {self.key}"
        if not self.metric:
            raise InvalidInputError("a metered price needs a metric", where=where)
        if self.flat_amount is not None:
            raise InvalidInputError("a metered price takes no flat_amount", where=where)
        tiers = self.tiers
        return MeteredPrice(
            self.metric,
            currency_of(self.currency),
            MeteredModel(self.model.value),
            self.unit_amount,
            tuple(Tier(t.first_unit, t.last_unit, t.unit_amount, t.flat_amount) for t in tiers),
            self.package_size,
            self.package_amount,
            self.free_units,
            self.minimum,
        )


class ItemRecord(_Record):
    price: str
    quantity: Decimal = Decimal(1)
    discount_percent: Decimal = Decimal(0)
    service_date: date | None = None
    key: str | None = None


class ContractRecord(_Record):
    id: str
    customer: str
    name: str | None = None
    start_date: date
    frequency: str = "monthly"
    term_months: int = 12
    auto_renew: bool = True
    trial_days: int = 0
    items: list[ItemRecord]


class EventRecord(_Record):
    id: str
    date: dt.date
    type: Literal["amend", "cancel", "payment", "refund"]
    contract: str | None = None
    customer: str | None = None
    invoice: str | None = None
    effective_date: dt.date | None = None
    cancel_date: dt.date | None = None
    items: list[ItemRecord] | None = None
    amount: Decimal | None = None


@dataclass
class ImportResult:
    imported: dict[str, int] = field(default_factory=dict)
    pending_events: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, message)

    def count(self, section: str) -> None:
        self.imported[section] = self.imported.get(section, 0) + 1

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append((line or 0, message))

    @property
    def errors(self) -> list[str]:
        """Every problem, in the order of the file."""
        return [message for _, message in sorted(self.problems, key=lambda p: p[0])]

    def to_dict(self) -> dict[str, object]:
        return {
            "imported": dict(sorted(self.imported.items())),
            "pending_events": self.pending_events,
            "errors": self.errors,
        }


SECTIONS = ("customers", "products", "prices", "contracts", "events")


@dataclass
class _Importer:
    session: Session
    document: YamlDocument
    as_of: date
    default_currency: str
    limits: plausibility.Limits | None = None
    result: ImportResult = field(default_factory=ImportResult)
    cache: catalog.PriceCache = field(default_factory=catalog.PriceCache)

    def run(self) -> ImportResult:
        unknown = set(self.document.data or {}) - set(SECTIONS)
        for key in sorted(unknown):
            self.result.problem(
                self.document.line_of((key,)),
                f"{self.document.where((key,))}: {key}: unknown section "
                f"(expected {', '.join(SECTIONS)})",
            )
        self._each("customers", CustomerRecord, self._customer)
        self._each("products", ProductRecord, self._product)
        self._each("prices", PriceRecord, self._price)
        self._each("contracts", ContractRecord, self._contract)
        events = self._parse("events", EventRecord)
        for location, event in sorted(events, key=lambda pair: (pair[1].date, pair[0])):
            if event.date > self.as_of:
                self.result.pending_events += 1
                continue
            self._apply(location, partial(self._event, event))
        return self.result

    def _parse(self, section: str, model: type[RecordT]) -> list[tuple[Location, RecordT]]:
        parsed: list[tuple[Location, RecordT]] = []
        try:
            records = list(self.document.records(section))
        except InvalidInputError as error:  # the section is not a list: skip it, go on
            self.result.problem(self.document.line_of((section,)), str(error))
            return parsed
        for location, entry in records:
            try:
                parsed.append((location, model.model_validate(entry)))
            except ValidationError as error:
                self.result.problem(
                    self.document.line_of(location), self.document.describe(error, location)
                )
        return parsed

    def _each(self, section: str, model: type[RecordT], apply: Callable[[RecordT], bool]) -> None:
        for location, record in self._parse(section, model):
            self._apply(location, partial(apply, record))

    def _apply(self, location: Location, action: Callable[[], bool]) -> None:
        savepoint = self.session.begin_nested()
        try:
            counted = action()
        except (ConnectorError, ArithmeticError, ValueError) as error:
            savepoint.rollback()
            where = self.document.where(location)
            message = f"{where}: {format_location(location)}: {error}"
            self.result.problem(self.document.line_of(location), message)
            return
        savepoint.commit()
        if counted:
            self.result.count(str(location[0]))

    def _customer_row(self, ref: str) -> tables.Customer:
        row = catalog.find_by_external_id(self.session, tables.Customer, SYSTEM, ref)
        if row is None:
            raise NotFoundError(f"unknown customer {ref!r}")
        return row

    def _subscription_row(self, ref: str) -> tables.Subscription:
        row = catalog.find_by_external_id(self.session, tables.Subscription, SYSTEM, ref)
        if row is None:
            raise NotFoundError(f"unknown contract {ref!r}")
        return row

    def _customer(self, record: CustomerRecord) -> bool:
        contracts.upsert_customer(
            self.session,
            name=record.name,
            country=record.country,
            currency=record.currency or self.default_currency,
            tax_id=record.tax_id,
            system=SYSTEM,
            external_id=record.id,
            region=record.region,
            address=Address(record.street, record.city, record.state, record.postal_code),
            language=record.language,
        )
        return True

    def _product(self, record: ProductRecord) -> bool:
        catalog.upsert_product(
            self.session, record.code, record.name, record.family, record.tax_code
        )
        return True

    def _price(self, record: PriceRecord) -> bool:
        catalog.upsert_price(
            self.session,
            catalog.find_product(self.session, record.product),
            currency=record.currency,
            kind=ChargeKind.parse(record.type),
            model=record.model,
            unit_amount=record.unit_amount,
            flat_amount=record.flat_amount,
            tiers=[
                Tier(t.first_unit, t.last_unit, t.unit_amount, t.flat_amount) for t in record.tiers
            ],
            lookup_key=record.key,
            metered=record.metered(),
        )
        return True

    def _items(self, items: list[ItemRecord]) -> list[ItemSpec]:
        return [
            contracts.item_spec(
                catalog.find_price(self.session, item.price),
                self.cache,
                self.session,
                key=item.key,
                quantity=item.quantity,
                discount_percent=item.discount_percent,
                service_date=item.service_date,
            )
            for item in items
        ]

    def _check(self, start: tuple[str, date], items: list[ItemSpec], frequency: str) -> None:
        """Refuse implausible dates and amounts (the savepoint rolls the record back)."""
        if self.limits is None:
            return
        dates = [plausibility.DatedItem(*start)]
        dates.extend(
            plausibility.DatedItem(f"item {spec.key} service date", spec.service_date)
            for spec in items
            if spec.service_date is not None
        )
        priced = [
            plausibility.PricedItem(
                f"item {spec.key}", spec, spec.price.kind is ChargeKind.ONE_TIME
            )
            for spec in items
        ]
        found = plausibility.problems(
            dates, priced, frequency=frequency, as_of=self.as_of, limits=self.limits
        )
        if found:
            problems = "; ".join(problem.text for problem in found)
            raise InvalidInputError(
                f"implausible, not imported: {problems}; fix the file"
                + (
                    " or raise the limit for this import"
                    if all(problem.approvable for problem in found)
                    else ""
                )
            )

    def _contract(self, record: ContractRecord) -> bool:
        if catalog.find_by_external_id(self.session, tables.Subscription, SYSTEM, record.id):
            return False
        terms = SubscriptionTerms(
            start_date=record.start_date,
            frequency=Frequency.parse(record.frequency),
            term_months=record.term_months,
            auto_renew=record.auto_renew,
            trial_days=record.trial_days,
        )
        items = self._items(record.items)
        contracts.create_subscription(
            self.session,
            customer=self._customer_row(record.customer),
            name=record.name or record.id,
            terms=terms,
            items=items,
            system=SYSTEM,
            external_id=record.id,
        )
        self._check(("start date", record.start_date), items, terms.frequency.value)
        return True

    def _event(self, event: EventRecord) -> bool:
        if event.type in ("amend", "cancel"):
            if event.contract is None:
                raise InvalidInputError(f"an {event.type} event needs a contract")
            subscription = self._subscription_row(event.contract)
            if event.type == "amend":
                if event.items is None:
                    raise InvalidInputError("an amend event needs the new items")
                effective = event.effective_date or event.date
                items = self._items(event.items)
                change = contracts.amend_subscription(
                    self.session,
                    subscription.id,
                    effective=effective,
                    items=items,
                    reference=event.id,
                )
                if change is not None:
                    self._check(("effective date", effective), items, subscription.frequency)
            else:
                change = contracts.cancel_subscription(
                    self.session,
                    subscription.id,
                    cancel_date=event.cancel_date or event.date,
                    reference=event.id,
                )
            return change is not None
        if event.amount is None:
            raise InvalidInputError(f"a {event.type} event needs an amount")
        recorded = self.session.scalar(
            select(tables.Payment.id).where(
                tables.Payment.kind == event.type, tables.Payment.reference == event.id
            )
        )
        if recorded is not None:
            return False
        customer_id = self._customer_row(event.customer).id if event.customer else None
        if event.type == "payment":
            settlement.record_payment(
                self.session,
                amount=event.amount,
                received_on=event.date,
                invoice_number=event.invoice,
                customer_id=customer_id,
                reference=event.id,
            )
        else:
            if customer_id is None:
                raise InvalidInputError("a refund event needs a customer")
            settlement.record_refund(
                self.session,
                customer_id=customer_id,
                amount=event.amount,
                refunded_on=event.date,
                reference=event.id,
            )
        return True


def import_file(
    session: Session,
    path: Path,
    *,
    as_of: date,
    default_currency: str,
    limits: plausibility.Limits | None = None,
) -> ImportResult:
    """Import ``path``; events dated after ``as_of`` are left for a later import. With
    ``limits``, implausible contracts and amendments are refused."""
    return _Importer(session, load_yaml(path), as_of, default_currency, limits).run()
