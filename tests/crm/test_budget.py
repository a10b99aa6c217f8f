"""ApiBudget: the connector's daily share of the org's API requests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from connector.crm.budget import ApiBudget
from connector.errors import QuotaExhaustedError

DAY = date(2024, 3, 14)
NEXT_DAY = date(2024, 3, 15)


@pytest.mark.parametrize(
    ("share", "limit", "allowed"),
    [
        ("0.5", 10, 5),
        ("0.5", 15, 7),
        ("0.5", 15_000, 7_500),
        ("1", 15_000, 15_000),
        ("0.333", 10, 3),
        ("0.1", 15, 1),
        ("0.1", 9, 0),
        ("0.75", 101, 75),
        ("0.9999", 10_000, 9_999),
    ],
)
def test_allowed_is_the_floor_of_share_times_limit(share: str, limit: int, allowed: int) -> None:
    budget = ApiBudget(Decimal(share), DAY, org_used=0, org_limit=limit)
    assert budget.allowed == allowed
    assert isinstance(budget.allowed, int)


def test_nothing_is_allowed_or_refused_before_the_org_limit_is_known() -> None:
    budget = ApiBudget(Decimal("0.5"), DAY, spent=1_000_000)
    assert budget.allowed is None
    budget.check(DAY)  # no answer has told us the limit yet


def test_check_passes_until_spent_reaches_allowed() -> None:
    budget = ApiBudget(Decimal("0.5"), DAY, org_used=0, org_limit=10)
    for _ in range(5):
        budget.check(DAY)
        budget.record(DAY, (budget.spent + 1, 10))
    assert budget.spent == 5
    with pytest.raises(QuotaExhaustedError) as caught:
        budget.check(DAY)
    assert str(caught.value) == (
        "the connector has spent 5 of the 5 API requests it may use today "
        "(50% of the org's 10); it resumes tomorrow (UTC)"
    )
    assert (caught.value.code, caught.value.status) == ("CONNECTOR_QUOTA", None)


@pytest.mark.parametrize(
    ("share", "limit", "spent", "message"),
    [
        (
            "0.25",
            15_000,
            3_750,
            "the connector has spent 3750 of the 3750 API requests it may use today "
            "(25% of the org's 15000); it resumes tomorrow (UTC)",
        ),
        (
            "0.333",
            10,
            4,
            "the connector has spent 4 of the 3 API requests it may use today "
            "(33.3% of the org's 10); it resumes tomorrow (UTC)",
        ),
        (
            "1",
            100,
            100,
            "the connector has spent 100 of the 100 API requests it may use today "
            "(100% of the org's 100); it resumes tomorrow (UTC)",
        ),
    ],
)
def test_the_quota_message(share: str, limit: int, spent: int, message: str) -> None:
    budget = ApiBudget(Decimal(share), DAY, spent=spent, org_used=0, org_limit=limit)
    with pytest.raises(QuotaExhaustedError) as caught:
        budget.check(DAY)
    assert str(caught.value) == message


def test_one_below_allowed_passes() -> None:
    ApiBudget(Decimal("0.5"), DAY, spent=4, org_used=4, org_limit=10).check(DAY)


@pytest.mark.parametrize("used", [10, 11])
def test_an_org_at_its_limit_refuses_even_with_budget_left(used: int) -> None:
    budget = ApiBudget(Decimal("0.5"), DAY, spent=0, org_used=used, org_limit=10)
    with pytest.raises(QuotaExhaustedError) as caught:
        budget.check(DAY)
    assert str(caught.value) == "the org has used all 10 of its API requests today"
    assert (caught.value.code, caught.value.status) == ("REQUEST_LIMIT_EXCEEDED", None)


def test_an_org_one_below_its_limit_passes() -> None:
    ApiBudget(Decimal("1"), DAY, spent=0, org_used=9, org_limit=10).check(DAY)


def test_a_new_day_resets_what_was_spent() -> None:
    budget = ApiBudget(Decimal("0.5"), DAY, spent=5, org_used=5, org_limit=10)
    with pytest.raises(QuotaExhaustedError):
        budget.check(DAY)
    budget.check(NEXT_DAY)
    assert (budget.day, budget.spent) == (NEXT_DAY, 0)


def test_roll_on_the_same_day_keeps_what_was_spent() -> None:
    budget = ApiBudget(Decimal("0.5"), DAY, spent=3)
    budget.roll(DAY)
    assert (budget.day, budget.spent) == (DAY, 3)


def test_an_org_at_its_limit_yesterday_may_be_called_today() -> None:
    """The org's count of yesterday says nothing about today: Salesforce starts again, and only
    a call can tell the budget today's count, so a stale count must not block that call."""
    budget = ApiBudget(Decimal("0.5"), DAY, spent=3, org_used=10, org_limit=10)
    with pytest.raises(QuotaExhaustedError):
        budget.check(DAY)
    budget.check(NEXT_DAY)
    assert budget.spent == 0


def test_record_counts_a_call_and_keeps_the_orgs_usage() -> None:
    budget = ApiBudget(Decimal("0.5"), DAY)
    budget.record(DAY, (120, 15_000))
    assert (budget.spent, budget.org_used, budget.org_limit) == (1, 120, 15_000)
    assert budget.allowed == 7_500
    budget.record(DAY, (121, 15_000))
    assert (budget.spent, budget.org_used, budget.org_limit) == (2, 121, 15_000)


def test_record_without_usage_counts_the_call_and_keeps_the_last_known_usage() -> None:
    budget = ApiBudget(Decimal("0.5"), DAY, spent=2, org_used=50, org_limit=100)
    budget.record(DAY, None)
    assert (budget.spent, budget.org_used, budget.org_limit) == (3, 50, 100)


def test_record_on_a_new_day_starts_the_count_again() -> None:
    budget = ApiBudget(Decimal("0.5"), DAY, spent=7, org_used=7, org_limit=10)
    budget.record(NEXT_DAY, (1, 10))
    assert (budget.day, budget.spent, budget.org_used, budget.org_limit) == (NEXT_DAY, 1, 1, 10)


def test_a_new_org_limit_changes_what_is_allowed() -> None:
    budget = ApiBudget(Decimal("0.5"), DAY, spent=5, org_used=5, org_limit=10)
    with pytest.raises(QuotaExhaustedError):
        budget.check(DAY)
    budget.record(DAY, (6, 20))  # the org bought more requests
    assert budget.allowed == 10
    budget.check(DAY)
