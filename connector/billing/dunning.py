"""Collections (dunning): which step of the schedule each open invoice has reached on a day.

A schedule is an ordered list of steps, each dated by an offset in days from the invoice's due
date (negative: before it): reminders e-mailed to the customer (``email``, with a template and
a tone) and escalations to the account owner (``escalate``: a Salesforce Task, and the
account's billing status). Pure rules: no database, no clock; the as-of day is a parameter.

- An invoice that owes nothing (paid or credited in full, void) reaches no step; nor does a
  disputed one, while the dispute is open.
- Each step is reached at most once (the steps already recorded are given).
- A step dated before the invoice was issued is never acted on: it is recorded as skipped; so
  is a step that comes before one already recorded (a step added to the schedule later).
- When several steps have come since the last run (the connector did not run for some days),
  only the latest of each action is acted on: the customer gets one reminder, in the tone of
  the latest step, and the owner one Task, for the latest escalation. The earlier steps are
  recorded as skipped, so that none is left silently behind and none is ever sent late.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from connector.errors import InvalidInputError


class Action(StrEnum):
    EMAIL = "email"  # a reminder to the customer
    ESCALATE = "escalate"  # a Task for the account owner, and the account's billing status


class StepState(StrEnum):
    TAKEN = "taken"  # acted on: a reminder to send, an escalation to show
    SKIPPED = "skipped"  # passed over: a later step of the same action was taken instead


# Account Billing_Status__c an escalation may set, weakest first.
ESCALATION_STATUSES = ("Past Due", "Collections")


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    offset_days: int  # from the due date; negative: before it
    action: Action
    template: str | None = None  # email: the message's template
    tone: str | None = None  # email: friendly, firm, final...
    account_status: str | None = None  # escalate: Billing_Status__c to set

    def day(self, due_date: date) -> date:
        return due_date + timedelta(days=self.offset_days)


@dataclass(frozen=True)
class Schedule:
    """Steps in the order they come (by offset; a tie keeps the order given)."""

    steps: tuple[Step, ...]

    @classmethod
    def of(cls, steps: Iterable[Step]) -> Schedule:
        ordered = tuple(sorted(steps, key=lambda step: step.offset_days))
        names = [step.name for step in ordered]
        doubled = sorted({name for name in names if names.count(name) > 1})
        if doubled:
            raise InvalidInputError(f"dunning step names must differ: {', '.join(doubled)}")
        for step in ordered:
            if step.action is Action.EMAIL and not step.template:
                raise InvalidInputError(f"dunning step {step.name}: an email step needs a template")
            if step.action is Action.ESCALATE and step.account_status not in ESCALATION_STATUSES:
                raise InvalidInputError(
                    f"dunning step {step.name}: account_status must be one of "
                    f"{', '.join(ESCALATION_STATUSES)}, not {step.account_status!r}"
                )
        return cls(ordered)

    def step(self, name: str) -> Step | None:
        return next((step for step in self.steps if step.name == name), None)

    @property
    def first_offset(self) -> int | None:
        return self.steps[0].offset_days if self.steps else None

    def reached_by(self, due_date: date, as_of: date) -> list[Step]:
        """The steps dated on or before ``as_of``, in order."""
        return [step for step in self.steps if step.day(due_date) <= as_of]

    def latest(self, due_date: date, as_of: date) -> Step | None:
        """The last step reached by ``as_of`` (None before the first)."""
        reached = self.reached_by(due_date, as_of)
        return reached[-1] if reached else None


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    """An invoice as dunning sees it on the as-of day."""

    document_id: int
    issue_date: date
    due_date: date
    balance: Decimal  # still owed; 0 once paid or credited in full
    disputed: bool = False
    done: frozenset[str] = frozenset()  # steps already recorded (taken or skipped)


@dataclass(frozen=True, slots=True)
class Reached:
    document_id: int
    step: Step
    state: StepState


def reached(schedule: Schedule, invoice: OpenInvoice, as_of: date) -> list[Reached]:
    """The steps ``invoice`` reaches on ``as_of`` that are not recorded yet, in order, each
    taken or skipped (see the module's rules); empty when it owes nothing or is disputed."""
    if invoice.balance <= 0 or invoice.disputed:
        return []
    steps = schedule.reached_by(invoice.due_date, as_of)
    passed = max((i for i, step in enumerate(steps) if step.name in invoice.done), default=-1)
    new = [(i, step) for i, step in enumerate(steps) if step.name not in invoice.done]
    latest = {
        step.action: step
        for i, step in new
        if i > passed and step.day(invoice.due_date) >= invoice.issue_date
    }
    return [
        Reached(
            invoice.document_id,
            step,
            StepState.TAKEN if latest.get(step.action) is step else StepState.SKIPPED,
        )
        for _, step in new
    ]


def escalation_status(statuses: Sequence[str | None]) -> str | None:
    """The strongest escalation status among ``statuses`` (None when there is none)."""
    ranked = [ESCALATION_STATUSES.index(s) for s in statuses if s in ESCALATION_STATUSES]
    return ESCALATION_STATUSES[max(ranked)] if ranked else None


def stronger_status(computed: str, escalated: str | None) -> str:
    """An account's billing status: the escalation's when it is stronger than the one the
    account's invoices give (Past Due once one is overdue; Active, Trial... otherwise)."""
    if escalated is None:
        return computed
    if computed in ESCALATION_STATUSES and ESCALATION_STATUSES.index(
        computed
    ) >= ESCALATION_STATUSES.index(escalated):
        return computed
    return escalated
