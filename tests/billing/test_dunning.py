"""The collections schedule's rules, on plain values: which step an invoice reaches on a day."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.billing.dunning import (
    Action,
    OpenInvoice,
    Schedule,
    Step,
    StepState,
    escalation_status,
    reached,
    stronger_status,
)
from connector.errors import InvalidInputError
from connector.settings import Settings

DUE = date(2026, 3, 31)
ISSUED = date(2026, 3, 1)
SCHEDULE = Settings().dunning.schedule()


def invoice(done: tuple[str, ...] = (), **changes: object) -> OpenInvoice:
    values: dict[str, object] = {
        "document_id": 7,
        "issue_date": ISSUED,
        "due_date": DUE,
        "balance": Decimal("120.00"),
        "done": frozenset(done),
    }
    values.update(changes)
    return OpenInvoice(**values)  # type: ignore[arg-type]


def names(steps: list) -> list[tuple[str, str]]:
    return [(r.step.name, r.state.value) for r in steps]


def test_the_default_schedule_in_order() -> None:
    assert [(s.name, s.offset_days, s.action.value) for s in SCHEDULE.steps] == [
        ("friendly", -3, "email"),
        ("reminder_1", 3, "email"),
        ("reminder_2", 10, "email"),
        ("past_due", 10, "escalate"),
        ("final_notice", 30, "email"),
        ("collections", 30, "escalate"),
    ]
    assert SCHEDULE.first_offset == -3


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 27), []),
        (date(2026, 3, 28), [("friendly", "taken")]),
        # Not run since before the friendly note: one reminder, the latest.
        (date(2026, 4, 3), [("friendly", "skipped"), ("reminder_1", "taken")]),
    ],
)
def test_steps_reached_on_a_day(day: date, expected: list[tuple[str, str]]) -> None:
    assert names(reached(SCHEDULE, invoice(), day)) == expected


def test_each_step_once_then_the_next_on_its_day() -> None:
    assert names(reached(SCHEDULE, invoice(("friendly",)), date(2026, 4, 2))) == []
    assert names(reached(SCHEDULE, invoice(("friendly",)), date(2026, 4, 3))) == [
        ("reminder_1", "taken")
    ]
    done = ("friendly", "reminder_1")
    assert names(reached(SCHEDULE, invoice(done), date(2026, 4, 10))) == [
        ("reminder_2", "taken"),
        ("past_due", "taken"),
    ]


def test_days_missed_take_the_latest_step_of_each_action_and_skip_the_others() -> None:
    assert names(reached(SCHEDULE, invoice(), date(2026, 5, 15))) == [
        ("friendly", "skipped"),
        ("reminder_1", "skipped"),
        ("reminder_2", "skipped"),
        ("past_due", "skipped"),
        ("final_notice", "taken"),
        ("collections", "taken"),
    ]


def test_paid_credited_or_disputed_invoices_reach_nothing() -> None:
    late = date(2026, 5, 15)
    assert reached(SCHEDULE, invoice(balance=Decimal(0)), late) == []
    assert reached(SCHEDULE, invoice(balance=Decimal("-1")), late) == []
    assert reached(SCHEDULE, invoice(disputed=True), late) == []


def test_a_step_dated_before_the_invoice_was_issued_is_skipped() -> None:
    issued_on_due_date = invoice(issue_date=DUE)
    assert names(reached(SCHEDULE, issued_on_due_date, DUE)) == [("friendly", "skipped")]


def test_a_step_added_before_one_already_recorded_is_skipped_not_sent_late() -> None:
    done = ("friendly", "reminder_2", "past_due")
    assert names(reached(SCHEDULE, invoice(done), date(2026, 4, 12))) == [("reminder_1", "skipped")]


def test_a_bad_schedule_is_refused_with_its_reason() -> None:
    with pytest.raises(InvalidInputError, match="names must differ: a"):
        Schedule.of([Step("a", 1, Action.EMAIL, "t"), Step("a", 2, Action.EMAIL, "t")])
    with pytest.raises(InvalidInputError, match="an email step needs a template"):
        Schedule.of([Step("a", 1, Action.EMAIL)])
    with pytest.raises(InvalidInputError, match="must be one of Past Due, Collections"):
        Schedule.of([Step("b", 1, Action.ESCALATE, account_status="Active")])


def test_the_stronger_status_wins() -> None:
    assert escalation_status(["Past Due", None, "Collections"]) == "Collections"
    assert escalation_status([None]) is None
    assert stronger_status("Active", None) == "Active"
    assert stronger_status("Active", "Past Due") == "Past Due"
    assert stronger_status("Past Due", "Collections") == "Collections"
    assert stronger_status("Past Due", "Past Due") == "Past Due"


# -- a property: run the rules day by day, as the cycle does, and check what was sent ---------
offsets = st.integers(min_value=-10, max_value=60)
step_lists = st.lists(
    st.tuples(offsets, st.sampled_from([Action.EMAIL, Action.ESCALATE])),
    min_size=1,
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(
    steps=step_lists,
    issued_before=st.integers(min_value=0, max_value=30),
    paid_after=st.one_of(st.none(), st.integers(min_value=-10, max_value=80)),
    dispute=st.one_of(st.none(), st.tuples(st.integers(-10, 60), st.integers(0, 30))),
    run_every=st.integers(min_value=1, max_value=20),
)
def test_no_step_twice_none_after_payment_none_while_disputed(
    steps: list[tuple[int, Action]],
    issued_before: int,
    paid_after: int | None,
    dispute: tuple[int, int] | None,
    run_every: int,
) -> None:
    schedule = Schedule.of(
        Step(
            f"s{i}",
            offset,
            action,
            template="t" if action is Action.EMAIL else None,
            account_status="Past Due" if action is Action.ESCALATE else None,
        )
        for i, (offset, action) in enumerate(steps)
    )
    due = date(2026, 1, 31)
    issued = due - timedelta(days=issued_before)
    paid_on = due + timedelta(days=paid_after) if paid_after is not None else None
    disputed = (
        (due + timedelta(days=dispute[0]), due + timedelta(days=dispute[0] + dispute[1]))
        if dispute
        else None
    )
    done: dict[str, tuple[date, StepState]] = {}
    day = issued
    while day <= due + timedelta(days=90):
        paid = paid_on is not None and day >= paid_on
        held = disputed is not None and disputed[0] <= day < disputed[1]
        state = OpenInvoice(
            1, issued, due, Decimal(0) if paid else Decimal(10), held, frozenset(done)
        )
        for item in reached(schedule, state, day):
            assert item.step.name not in done  # never twice
            assert not paid and not held  # never after payment, never while disputed
            assert item.step.day(due) <= day  # never early
            done[item.step.name] = (day, item.state)
        day += timedelta(days=run_every)
    taken = [name for name, (_, state) in done.items() if state is StepState.TAKEN]
    for name in taken:
        step = schedule.step(name)
        assert step is not None
        assert step.day(due) >= issued  # never a step meant for before the invoice existed
        on = step.day(due)
        held_then = disputed is not None and disputed[0] <= on < disputed[1]
        if run_every == 1 and not held_then:  # a daily run acts on each step on its day
            assert done[name][0] == on
