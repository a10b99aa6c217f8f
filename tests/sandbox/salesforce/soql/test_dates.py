"""Relative date literals resolved to ranges of days, as Salesforce defines them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from sandbox.salesforce.soql import dates
from sandbox.salesforce.soql.ast import Comparison, FieldRef, RelativeDate
from sandbox.salesforce.soql.dates import resolve
from sandbox.salesforce.soql.parser import parse

# A Wednesday: its week started on Sunday 2024-05-12, its quarter on 2024-04-01.
WEDNESDAY = date(2024, 5, 15)


def d(text: str) -> date:
    return date.fromisoformat(text)


@pytest.mark.parametrize(
    ("literal", "start", "end"),
    [
        (RelativeDate("YESTERDAY"), "2024-05-14", "2024-05-15"),
        (RelativeDate("TODAY"), "2024-05-15", "2024-05-16"),
        (RelativeDate("TOMORROW"), "2024-05-16", "2024-05-17"),
        (RelativeDate("LAST_WEEK"), "2024-05-05", "2024-05-12"),
        (RelativeDate("THIS_WEEK"), "2024-05-12", "2024-05-19"),
        (RelativeDate("NEXT_WEEK"), "2024-05-19", "2024-05-26"),
        (RelativeDate("LAST_MONTH"), "2024-04-01", "2024-05-01"),
        (RelativeDate("THIS_MONTH"), "2024-05-01", "2024-06-01"),
        (RelativeDate("NEXT_MONTH"), "2024-06-01", "2024-07-01"),
        (RelativeDate("LAST_90_DAYS"), "2024-02-15", "2024-05-16"),
        (RelativeDate("NEXT_90_DAYS"), "2024-05-16", "2024-08-14"),
        (RelativeDate("LAST_QUARTER"), "2024-01-01", "2024-04-01"),
        (RelativeDate("THIS_QUARTER"), "2024-04-01", "2024-07-01"),
        (RelativeDate("NEXT_QUARTER"), "2024-07-01", "2024-10-01"),
        (RelativeDate("LAST_YEAR"), "2023-01-01", "2024-01-01"),
        (RelativeDate("THIS_YEAR"), "2024-01-01", "2025-01-01"),
        (RelativeDate("NEXT_YEAR"), "2025-01-01", "2026-01-01"),
        (RelativeDate("LAST_N_DAYS", 7), "2024-05-08", "2024-05-16"),
        (RelativeDate("LAST_N_DAYS", 1), "2024-05-14", "2024-05-16"),
        (RelativeDate("LAST_N_DAYS", 0), "2024-05-15", "2024-05-16"),
        (RelativeDate("NEXT_N_DAYS", 7), "2024-05-16", "2024-05-23"),
        (RelativeDate("NEXT_N_DAYS", 1), "2024-05-16", "2024-05-17"),
        (RelativeDate("N_DAYS_AGO", 3), "2024-05-12", "2024-05-13"),
        (RelativeDate("N_DAYS_AGO", 0), "2024-05-15", "2024-05-16"),
        (RelativeDate("LAST_N_WEEKS", 2), "2024-04-28", "2024-05-12"),
        (RelativeDate("NEXT_N_WEEKS", 2), "2024-05-19", "2024-06-02"),
        (RelativeDate("N_WEEKS_AGO", 2), "2024-04-28", "2024-05-05"),
        (RelativeDate("LAST_N_MONTHS", 3), "2024-02-01", "2024-05-01"),
        (RelativeDate("NEXT_N_MONTHS", 3), "2024-06-01", "2024-09-01"),
        (RelativeDate("N_MONTHS_AGO", 2), "2024-03-01", "2024-04-01"),
        (RelativeDate("LAST_N_MONTHS", 12), "2023-05-01", "2024-05-01"),
        (RelativeDate("LAST_N_QUARTERS", 2), "2023-10-01", "2024-04-01"),
        (RelativeDate("NEXT_N_QUARTERS", 2), "2024-07-01", "2025-01-01"),
        (RelativeDate("N_QUARTERS_AGO", 1), "2024-01-01", "2024-04-01"),
        (RelativeDate("LAST_N_YEARS", 2), "2022-01-01", "2024-01-01"),
        (RelativeDate("NEXT_N_YEARS", 2), "2025-01-01", "2027-01-01"),
        (RelativeDate("N_YEARS_AGO", 1), "2023-01-01", "2024-01-01"),
    ],
)
def test_resolve(literal: RelativeDate, start: str, end: str) -> None:
    assert resolve(literal, WEDNESDAY) == (d(start), d(end))


@pytest.mark.parametrize(
    ("today", "start"),
    [
        ("2024-05-12", "2024-05-12"),  # Sunday: the week starts today
        ("2024-05-13", "2024-05-12"),  # Monday
        ("2024-05-18", "2024-05-12"),  # Saturday: the last day of the week
        ("2024-01-02", "2023-12-31"),  # the week started last year
    ],
)
def test_weeks_start_on_sunday(today: str, start: str) -> None:
    assert resolve(RelativeDate("THIS_WEEK"), d(today)) == (d(start), d(start) + timedelta(7))


@pytest.mark.parametrize(
    ("literal", "today", "start", "end"),
    [
        (RelativeDate("LAST_MONTH"), "2024-01-10", "2023-12-01", "2024-01-01"),
        (RelativeDate("NEXT_MONTH"), "2024-12-31", "2025-01-01", "2025-02-01"),
        (RelativeDate("THIS_MONTH"), "2024-02-29", "2024-02-01", "2024-03-01"),
        (RelativeDate("LAST_QUARTER"), "2024-01-10", "2023-10-01", "2024-01-01"),
        (RelativeDate("THIS_QUARTER"), "2024-03-31", "2024-01-01", "2024-04-01"),
        (RelativeDate("THIS_QUARTER"), "2024-12-31", "2024-10-01", "2025-01-01"),
        (RelativeDate("NEXT_QUARTER"), "2024-11-20", "2025-01-01", "2025-04-01"),
        (RelativeDate("N_MONTHS_AGO", 14), "2024-01-31", "2022-11-01", "2022-12-01"),
        (RelativeDate("YESTERDAY"), "2024-03-01", "2024-02-29", "2024-03-01"),
        (RelativeDate("TOMORROW"), "2024-12-31", "2025-01-01", "2025-01-02"),
    ],
)
def test_resolve_across_boundaries(literal: RelativeDate, today: str, start: str, end: str) -> None:
    assert resolve(literal, d(today)) == (d(start), d(end))


def test_ranges_are_cut_at_the_limits_of_date() -> None:
    assert resolve(RelativeDate("LAST_N_YEARS", 10**6), WEDNESDAY) == (date.min, d("2024-01-01"))
    assert resolve(RelativeDate("NEXT_N_DAYS", 10**9), WEDNESDAY) == (d("2024-05-16"), date.max)
    assert resolve(RelativeDate("N_MONTHS_AGO", 10**9), WEDNESDAY) == (date.min, date.min)
    assert resolve(RelativeDate("TOMORROW"), date.max) == (date.max, date.max)


@pytest.mark.parametrize(
    "literal",
    [RelativeDate("FOO"), RelativeDate("TODAY", 3), RelativeDate("LAST_N_DAYS")],
)
def test_resolve_rejects_what_the_parser_would(literal: RelativeDate) -> None:
    with pytest.raises(ValueError, match=f"not a date literal of the sandbox: {literal.text}"):
        resolve(literal, WEDNESDAY)


def test_the_literals_the_sandbox_knows() -> None:
    assert {
        "YESTERDAY",
        "TODAY",
        "TOMORROW",
        "LAST_WEEK",
        "THIS_WEEK",
        "NEXT_WEEK",
        "LAST_MONTH",
        "THIS_MONTH",
        "NEXT_MONTH",
        "LAST_90_DAYS",
        "NEXT_90_DAYS",
        "THIS_QUARTER",
        "LAST_QUARTER",
        "NEXT_QUARTER",
        "THIS_YEAR",
        "LAST_YEAR",
        "NEXT_YEAR",
    } == dates.NAMES
    assert {
        "LAST_N_DAYS",
        "NEXT_N_DAYS",
        "N_DAYS_AGO",
        "LAST_N_WEEKS",
        "NEXT_N_WEEKS",
        "N_WEEKS_AGO",
        "LAST_N_MONTHS",
        "NEXT_N_MONTHS",
        "N_MONTHS_AGO",
        "LAST_N_QUARTERS",
        "NEXT_N_QUARTERS",
        "N_QUARTERS_AGO",
        "LAST_N_YEARS",
        "NEXT_N_YEARS",
        "N_YEARS_AGO",
    } == dates.NAMES_WITH_N
    assert not dates.FISCAL_NAMES & (dates.NAMES | dates.NAMES_WITH_N)


@pytest.mark.parametrize(
    "literal",
    [RelativeDate(name) for name in sorted(dates.NAMES)]
    + [RelativeDate(name, 2) for name in sorted(dates.NAMES_WITH_N)],
    ids=lambda literal: literal.text,
)
def test_every_literal_parses_and_resolves(literal: RelativeDate) -> None:
    query = parse(f"SELECT Id FROM Account WHERE CloseDate = {literal.text.lower()}")
    assert query.where == Comparison(FieldRef(("CloseDate",)), "=", literal)
    for offset in range(400):  # every weekday, month and quarter position, a leap day
        today = date(2023, 12, 1) + timedelta(offset)
        start, end = resolve(literal, today)
        assert start < end
        if literal.name.startswith("THIS_") or literal.name in {"TODAY", "LAST_90_DAYS"}:
            assert start <= today < end
