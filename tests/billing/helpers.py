"""Builders and a pure-code billing ledger shared by the billing tests.

:class:`Ledger` plays the part of storage between billing runs: it keeps the net amount billed
per ``(item key, key date)``, ``billed_until`` / ``billed_as_of`` and the earliest effective
date of the changes made since the last run, and it drafts the documents of every run so that
credit notes can be checked against the invoice lines they correct.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from connector.billing.charges import BillingPlan, BillingState, Charge, plan_billing
from connector.billing.invoicing import (
    DocumentDraft,
    InvoicedLine,
    draft_credit_notes,
    draft_invoices,
)
from connector.billing.money import ZERO, Currency, Rounding, currency
from connector.billing.periods import Frequency
from connector.billing.pricing import ChargeKind, Price, PricingModel, Product, Tier
from connector.billing.subscriptions import ItemSpec, Subscription, SubscriptionTerms

USD = currency("USD")
JPY = currency("JPY")
EUR = currency("EUR")
BHD = currency("BHD")

D = Decimal


def product(code: str = "PRO", tax_code: str | None = None) -> Product:
    return Product(code, f"{code} plan", tax_code=tax_code)


def per_unit(
    amount: str,
    cur: Currency = USD,
    code: str = "PRO",
    kind: ChargeKind = ChargeKind.RECURRING,
    tax_code: str | None = None,
) -> Price:
    return Price(product(code, tax_code), cur, kind, PricingModel.PER_UNIT, unit_amount=D(amount))


def flat(
    amount: str,
    cur: Currency = USD,
    code: str = "PRO",
    kind: ChargeKind = ChargeKind.RECURRING,
) -> Price:
    return Price(product(code), cur, kind, PricingModel.FLAT, flat_amount=D(amount))


def tiered(
    tiers: Sequence[Tier],
    model: PricingModel = PricingModel.TIERED,
    cur: Currency = USD,
    code: str = "PRO",
) -> Price:
    return Price(product(code), cur, ChargeKind.RECURRING, model, tiers=tuple(tiers))


def spec(key: str, price: Price, quantity: str = "1", discount: str = "0") -> ItemSpec:
    return ItemSpec(key, price, D(quantity), D(discount))


def subscribe(
    start: date,
    frequency: Frequency,
    specs: Iterable[ItemSpec],
    *,
    cur: Currency = USD,
    term_months: int = 12,
    auto_renew: bool = True,
    trial_days: int = 0,
    customer_id: int | None = None,
) -> Subscription:
    terms = SubscriptionTerms(start, frequency, term_months, auto_renew, trial_days)
    subscription = Subscription(cur, terms, customer_id=customer_id)
    return subscription.with_items(start, specs)


def earliest(*days: date | None) -> date | None:
    known = [d for d in days if d is not None]
    return min(known) if known else None


def end_day(subscription: Subscription) -> date | None:
    """The first day without service (None while service never ends)."""
    end = subscription.terms.service_end
    return None if end is None else date.fromordinal(end.toordinal() + 1)


@dataclass
class Ledger:
    """Successive billing runs of one subscription, in memory."""

    subscription: Subscription
    tax_rate: Callable[[Product], Decimal] = lambda _product: ZERO
    rounding: Rounding = Rounding.HALF_UP
    billed: dict[tuple[str, date], Decimal] = field(default_factory=lambda: defaultdict(D))
    billed_until: date | None = None
    billed_as_of: date | None = None
    reconcile_from: date | None = None
    charges: list[Charge] = field(default_factory=list)
    plans: list[BillingPlan] = field(default_factory=list)
    invoices: list[tuple[int, DocumentDraft]] = field(default_factory=list)
    credit_notes: list[DocumentDraft] = field(default_factory=list)
    invoiced: list[InvoicedLine] = field(default_factory=list)
    _next_id: int = 1

    def change(self, subscription: Subscription, effective: date | None) -> None:
        """Replace the subscription by its amended version; ``effective`` is the first day the
        change affects (None when it affects no billed day)."""
        self.subscription = subscription
        self.reconcile_from = earliest(self.reconcile_from, effective)

    def amend(self, effective: date, specs: Iterable[ItemSpec]) -> None:
        self.change(self.subscription.with_items(effective, specs), effective)

    def cancel(self, cancel_date: date | None) -> None:
        before = end_day(self.subscription)
        after = self.subscription.with_terms(cancel_date=cancel_date)
        self.change(after, earliest(before, end_day(after)))

    def run(self, as_of: date) -> BillingPlan:
        state = BillingState(
            billed_until=self.billed_until,
            billed_as_of=self.billed_as_of,
            reconcile_from=self.reconcile_from,
            billed=dict(self.billed),
        )
        plan = plan_billing(self.subscription, as_of, state)
        self._draft(plan.charges, as_of)
        for charge in plan.charges:
            self.billed[(charge.item.key, charge.key_date)] += charge.amount
        self.charges.extend(plan.charges)
        self.plans.append(plan)
        self.billed_until = plan.billed_until
        self.billed_as_of = as_of if self.billed_as_of is None else max(as_of, self.billed_as_of)
        self.reconcile_from = None
        return plan

    def run_all(self, as_of_dates: Iterable[date]) -> list[BillingPlan]:
        return [self.run(day) for day in as_of_dates]

    @property
    def total(self) -> Decimal:
        """Everything billed: invoiced less credited."""
        return sum((c.amount for c in self.charges), ZERO)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _draft(self, charges: Sequence[Charge], as_of: date) -> None:
        cur = self.subscription.currency
        for draft in draft_invoices(
            charges,
            currency=cur,
            tax_rate=self.tax_rate,
            issue_date=as_of,
            due_date=as_of,
            rounding=self.rounding,
        ):
            invoice_id = self._new_id()
            self.invoices.append((invoice_id, draft))
            for line in draft.lines:
                self.invoiced.append(
                    InvoicedLine(
                        line_id=self._new_id(),
                        invoice_id=invoice_id,
                        item_key=line.charge.item.key,
                        key_date=line.charge.key_date,
                        remaining=line.amount,
                        tax_rate=line.tax_rate,
                        period=draft.period,
                    )
                )
        notes = draft_credit_notes(
            charges, self.invoiced, currency=cur, issue_date=as_of, rounding=self.rounding
        )
        for note in notes:
            self.credit_notes.append(note)
            for line in note.lines:
                self.invoiced = [
                    replace(inv, remaining=inv.remaining - line.amount)
                    if inv.line_id == line.credited_line_id
                    else inv
                    for inv in self.invoiced
                ]


def run_cycles(
    versions: Sequence[tuple[Subscription, date | None]], as_of_dates: Sequence[date]
) -> Ledger:
    """Bill ``versions[i][0]`` on ``as_of_dates[i]``; ``versions[i][1]`` is the effective date
    of the change that produced that version since the previous run (None: no change)."""
    assert len(versions) == len(as_of_dates)
    ledger = Ledger(versions[0][0])
    for (subscription, effective), as_of in zip(versions, as_of_dates, strict=True):
        ledger.change(subscription, effective)
        ledger.run(as_of)
    return ledger


def amounts(charges: Iterable[Charge]) -> list[tuple[str, date, Decimal]]:
    return [(c.item.key, c.key_date, c.amount) for c in charges]
