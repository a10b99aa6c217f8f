"""Subscriptions: what we bill, and how it changes over time.

A subscription starts on ``start_date``. After ``trial_days`` free days, billing starts and the
term begins; periods of the billing frequency are anchored on that date and billed in advance.
The term lasts ``term_months``; with ``auto_renew`` it renews for the same term until cancelled,
otherwise service ends with the term. A cancellation date is the first day without service.

Each item holds its versions: the price, quantity and discount in effect from a date. A metered
item (its price is metered) bills its usage in arrears while its quantity is above 0. An
amendment gives the subscription a new item set from an effective date: changed items get a new
version, removed items a version with quantity 0, and later versions are superseded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

from connector.billing.money import HUNDRED, ZERO, Currency, percent_of, round_money
from connector.billing.periods import ONE_DAY, Frequency, Schedule, add_months
from connector.billing.pricing import ChargeKind, Price, Product
from connector.errors import InvalidInputError


class SubscriptionStatus(StrEnum):
    PENDING = "pending"  # before the start date
    TRIALING = "trialing"
    ACTIVE = "active"
    ENDED = "ended"  # the term ended without renewal
    CANCELED = "canceled"


MAX_TERM_MONTHS = 1200  # a hundred years
MAX_TRIAL_DAYS = 3660


@dataclass(frozen=True, slots=True)
class SubscriptionTerms:
    start_date: date
    frequency: Frequency
    term_months: int = 12
    auto_renew: bool = True
    trial_days: int = 0
    cancel_date: date | None = None
    # Terms served before service ends when it does not renew: 1 ends with the first term; a
    # subscription whose renewal is turned off during its third term ends with that one (3).
    term_count: int = 1
    _billing_start: date = field(init=False, repr=False, compare=False)
    _service_end: date | None = field(init=False, repr=False, compare=False)
    _schedule: Schedule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.term_months <= MAX_TERM_MONTHS:
            raise InvalidInputError(
                f"term must be 1 to {MAX_TERM_MONTHS} months, not {self.term_months}"
            )
        if not 0 <= self.trial_days <= MAX_TRIAL_DAYS:
            raise InvalidInputError(
                f"trial days must be 0 to {MAX_TRIAL_DAYS}, not {self.trial_days}"
            )
        if self.term_count < 1:
            raise InvalidInputError(f"term count must be at least 1, not {self.term_count}")
        if self.cancel_date is not None and self.cancel_date < self.start_date:
            raise InvalidInputError(
                f"cancellation date {self.cancel_date} is before the start date {self.start_date}"
            )
        try:
            billing_start = self.start_date + timedelta(days=self.trial_days)
            ends = [] if self.auto_renew else [self.term_end(self.term_count - 1, billing_start)]
        except (OverflowError, ValueError):
            raise InvalidInputError(
                f"a term of {self.term_months} months from {self.start_date} ends beyond the "
                "last date the calendar holds"
            ) from None
        if self.cancel_date is not None:
            ends.append(self.cancel_date - ONE_DAY)
        object.__setattr__(self, "_billing_start", billing_start)
        object.__setattr__(self, "_schedule", Schedule(billing_start, self.frequency))
        object.__setattr__(self, "_service_end", min(ends) if ends else None)

    @property
    def billing_start(self) -> date:
        """First billed day: the start date plus the trial. Periods and terms are anchored
        here."""
        return self._billing_start

    @property
    def schedule(self) -> Schedule:
        return self._schedule

    def term_end(self, index: int, billing_start: date | None = None) -> date:
        """Last day of term ``index`` (0 is the first; renewals repeat the same months)."""
        anchor = billing_start or self.billing_start
        return add_months(anchor, (index + 1) * self.term_months) - ONE_DAY

    def term_index(self, day: date) -> int:
        """The term that contains ``day`` (0 before and during the first term)."""
        index = max(
            0,
            ((day.year - self.billing_start.year) * 12 + day.month - self.billing_start.month)
            // self.term_months
            - 1,
        )
        while self.term_end(index) < day:
            index += 1
        return index

    @property
    def first_term_end(self) -> date:
        return self.term_end(0)

    def term_end_after(self, day: date) -> date:
        """End of the term that contains ``day``; without renewal, the end of the last term."""
        if not self.auto_renew:
            return self.term_end(self.term_count - 1)
        return self.term_end(self.term_index(day))

    @property
    def service_end(self) -> date | None:
        """Last day of service, or None while it renews without end."""
        return self._service_end

    def is_billable_on(self, day: date) -> bool:
        end = self.service_end
        return self.billing_start <= day and (end is None or day <= end)

    def status_on(self, day: date) -> SubscriptionStatus:
        end = self.service_end
        if end is not None and day > end:
            if self.cancel_date is not None and end == self.cancel_date - ONE_DAY:
                return SubscriptionStatus.CANCELED
            return SubscriptionStatus.ENDED
        if day < self.start_date:
            return SubscriptionStatus.PENDING
        if day < self.billing_start:
            return SubscriptionStatus.TRIALING
        return SubscriptionStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class ItemVersion:
    """Price, quantity and discount of an item from ``effective_date`` until the next version."""

    effective_date: date
    price: Price
    quantity: Decimal
    discount_percent: Decimal = ZERO
    _amount: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("quantity", "discount_percent"):
            value = getattr(self, name)
            if type(value) is not Decimal:
                raise self._invalid(
                    f"{name} must be a Decimal, not {type(value).__name__} {value!r}"
                )
        if self.quantity < 0:
            raise self._invalid(f"quantity {self.quantity} is negative")
        if not ZERO <= self.discount_percent <= HUNDRED:
            raise self._invalid(f"discount {self.discount_percent}% is not between 0 and 100")
        currency = self.price.currency
        if self.price.kind is ChargeKind.METERED:  # billed on usage, in arrears
            object.__setattr__(self, "_amount", ZERO)
            return
        gross = round_money(self.price.amount_for(self.quantity), currency)
        if self.discount_percent:
            gross -= percent_of(gross, self.discount_percent, currency)
        object.__setattr__(self, "_amount", gross)

    def _invalid(self, message: str) -> InvalidInputError:
        return InvalidInputError(
            message, where=f"{self.price.product.code} from {self.effective_date}"
        )

    def period_amount(self) -> Decimal:
        """Amount for one full billing period: the price for the quantity rounded to the minor
        unit, less the discount, a percentage of that rounded subtotal, rounded too."""
        return self._amount

    def same_terms(self, other: ItemVersion) -> bool:
        return (
            self.price == other.price
            and self.quantity == other.quantity
            and self.discount_percent == other.discount_percent
        )


@dataclass(frozen=True, slots=True)
class SubscriptionItem:
    key: str
    product: Product
    kind: ChargeKind
    versions: tuple[ItemVersion, ...]
    service_date: date | None = None  # one-time items: the day the charge is due
    id: int | None = None

    def __post_init__(self) -> None:
        where = f"item {self.key}"
        if not self.versions:
            raise InvalidInputError("an item needs at least one version", where=where)
        dates = [v.effective_date for v in self.versions]
        if dates != sorted(set(dates)):
            raise InvalidInputError("item versions must have distinct, ordered dates", where=where)
        for version in self.versions:
            if version.price.product.code != self.product.code:
                raise InvalidInputError(
                    f"a price of {version.price.product.code} cannot be used on an item of "
                    f"{self.product.code}",
                    where=where,
                )
            if version.price.kind is not self.kind:
                raise InvalidInputError(
                    f"a {version.price.kind} price cannot be used on a {self.kind} item",
                    where=where,
                )
        if self.service_date is not None and self.kind is ChargeKind.RECURRING:
            raise InvalidInputError("only one-time items take a service date", where=where)

    def version_at(self, day: date) -> ItemVersion | None:
        current = None
        for version in self.versions:
            if version.effective_date > day:
                break
            current = version
        return current

    @property
    def charge_date(self) -> date:
        """One-time items: the day the charge falls due."""
        return self.service_date or self.versions[0].effective_date


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """One item of a subscription's item set, as an amendment or a new contract states it."""

    key: str
    price: Price
    quantity: Decimal
    discount_percent: Decimal = ZERO
    service_date: date | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    currency: Currency
    terms: SubscriptionTerms
    items: tuple[SubscriptionItem, ...] = field(default_factory=tuple)
    id: int | None = None
    customer_id: int | None = None
    revision: int = 0

    def __post_init__(self) -> None:
        keys = [item.key for item in self.items]
        if len(keys) != len(set(keys)):
            raise InvalidInputError("item keys must be unique within a subscription")
        for item in self.items:
            for version in item.versions:
                if version.price.currency != self.currency:
                    raise InvalidInputError(
                        f"price is in {version.price.currency} but the subscription bills "
                        f"in {self.currency}",
                        where=f"item {item.key}",
                    )
            if item.service_date is not None and item.service_date < self.terms.start_date:
                raise InvalidInputError(
                    f"service date {item.service_date} is before the subscription starts "
                    f"({self.terms.start_date})",
                    where=f"item {item.key}",
                )

    def item(self, key: str) -> SubscriptionItem:
        for item in self.items:
            if item.key == key:
                return item
        raise KeyError(key)

    def monthly_recurring_revenue(self, day: date) -> Fraction:
        """MRR on ``day`` at full precision: recurring items only, discounts applied, nothing
        during a trial or after service ends."""
        if not self.terms.is_billable_on(day):
            return Fraction(0)
        factor = self.terms.frequency.monthly_factor
        total = Fraction(0)
        for item in self.items:
            if item.kind is ChargeKind.RECURRING:
                version = item.version_at(day)
                if version is not None:
                    total += Fraction(version.period_amount()) * factor
        return total

    def revenue_start(self) -> date | None:
        """First day with recurring revenue (MRR above zero), if any."""
        candidates = {self.terms.billing_start}
        for item in self.items:
            candidates.update(v.effective_date for v in item.versions)
        for day in sorted(candidates):
            if day >= self.terms.billing_start and self.monthly_recurring_revenue(day) > 0:
                return day
        return None

    def with_items(self, effective: date, specs: Iterable[ItemSpec]) -> Subscription:
        """The subscription with ``specs`` as its whole item set from ``effective`` on."""
        if effective < self.terms.start_date:
            raise InvalidInputError(
                f"amendment effective {effective} is before the subscription starts "
                f"({self.terms.start_date})"
            )
        wanted: dict[str, ItemSpec] = {}
        for spec in specs:
            if spec.key in wanted:
                raise InvalidInputError(f"item {spec.key} appears twice in the new item set")
            wanted[spec.key] = spec
        items = [_amend_item(item, effective, wanted.pop(item.key, None)) for item in self.items]
        for new in wanted.values():
            version = ItemVersion(effective, new.price, new.quantity, new.discount_percent)
            # A one-time charge falls due on its service date, by default the day it is added;
            # the date is kept with the item so that later amendments never move it.
            service_date = new.service_date
            if new.price.kind is ChargeKind.ONE_TIME and service_date is None:
                service_date = effective
            items.append(
                SubscriptionItem(
                    new.key, new.price.product, new.price.kind, (version,), service_date
                )
            )
        return replace(self, items=tuple(items))

    def moved_to(self, **changes: Any) -> Subscription:
        """The subscription with a new start date, frequency or trial (before any billing):
        items and one-time charges dated on the old start move with it, and what would fall
        before the new start begins on it."""
        after = replace(self.terms, **changes)
        old_start, new_start = self.terms.start_date, after.start_date
        items = []
        for item in self.items:
            versions: list[ItemVersion] = []
            for version in item.versions:
                day = version.effective_date
                if day == old_start or day < new_start:
                    day = new_start
                if versions and versions[-1].effective_date == day:
                    versions.pop()  # a later version on the same day replaces it
                versions.append(replace(version, effective_date=day))
            service_date = item.service_date
            if service_date is not None and (service_date == old_start or service_date < new_start):
                service_date = new_start
            items.append(replace(item, versions=tuple(versions), service_date=service_date))
        return replace(self, terms=after, items=tuple(items))

    def with_terms(self, **changes: Any) -> Subscription:
        return replace(self, terms=replace(self.terms, **changes))


def _amend_item(item: SubscriptionItem, effective: date, spec: ItemSpec | None) -> SubscriptionItem:
    kept = tuple(v for v in item.versions if v.effective_date < effective)
    current = kept[-1] if kept else None
    if spec is None:
        if current is None or current.quantity == 0:
            new_versions = kept
        else:
            new_versions = (*kept, replace(current, effective_date=effective, quantity=ZERO))
    else:
        if spec.price.kind is not item.kind:
            raise InvalidInputError(
                f"cannot change a {item.kind} item to a {spec.price.kind} price",
                where=f"item {item.key}",
            )
        version = ItemVersion(effective, spec.price, spec.quantity, spec.discount_percent)
        if current is not None and current.same_terms(version):
            new_versions = kept
        else:
            new_versions = (*kept, version)
    if not new_versions:
        # Nothing remains before the effective date and nothing is wanted: keep a zero version
        # so that the item's history stays valid.
        base = item.versions[0]
        new_versions = (replace(base, effective_date=effective, quantity=ZERO),)
    # A one-time charge keeps its date unless the new item set names another one.
    service_date = item.service_date
    if spec is not None and spec.service_date is not None:
        service_date = spec.service_date
    return replace(item, versions=new_versions, service_date=service_date)
