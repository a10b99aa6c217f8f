"""Salesforce's relative date literals (``TODAY``, ``LAST_N_DAYS:30`` ...) as ranges of days.

Only calendar literals exist in the sandbox: weeks start on Sunday, quarters start in January,
April, July and October, and there is no fiscal year.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Literal

from sandbox.salesforce.soql.ast import RelativeDate

Unit = Literal["day", "week", "month", "quarter", "year"]

#: Literals without a number: the unit and the range in units from the current one
#: (today, this week, this month ...), end exclusive.
_FIXED: dict[str, tuple[Unit, int, int]] = {
    "YESTERDAY": ("day", -1, 0),
    "TODAY": ("day", 0, 1),
    "TOMORROW": ("day", 1, 2),
    "LAST_90_DAYS": ("day", -90, 1),
    "NEXT_90_DAYS": ("day", 1, 91),
    "LAST_WEEK": ("week", -1, 0),
    "THIS_WEEK": ("week", 0, 1),
    "NEXT_WEEK": ("week", 1, 2),
    "LAST_MONTH": ("month", -1, 0),
    "THIS_MONTH": ("month", 0, 1),
    "NEXT_MONTH": ("month", 1, 2),
    "LAST_QUARTER": ("quarter", -1, 0),
    "THIS_QUARTER": ("quarter", 0, 1),
    "NEXT_QUARTER": ("quarter", 1, 2),
    "LAST_YEAR": ("year", -1, 0),
    "THIS_YEAR": ("year", 0, 1),
    "NEXT_YEAR": ("year", 1, 2),
}


def _last(n: int) -> tuple[int, int]:
    return -n, 0


def _next(n: int) -> tuple[int, int]:
    return 1, n + 1


def _ago(n: int) -> tuple[int, int]:
    return -n, -n + 1


#: Literals written ``NAME:n``: the unit and the range in units as a function of n.
_COUNTED: dict[str, tuple[Unit, Callable[[int], tuple[int, int]]]] = {
    # LAST_N_DAYS includes today (n + 1 days in all); NEXT_N_DAYS starts tomorrow.
    "LAST_N_DAYS": ("day", lambda n: (-n, 1)),
    "NEXT_N_DAYS": ("day", _next),
    "N_DAYS_AGO": ("day", _ago),
    "LAST_N_WEEKS": ("week", _last),
    "NEXT_N_WEEKS": ("week", _next),
    "N_WEEKS_AGO": ("week", _ago),
    "LAST_N_MONTHS": ("month", _last),
    "NEXT_N_MONTHS": ("month", _next),
    "N_MONTHS_AGO": ("month", _ago),
    "LAST_N_QUARTERS": ("quarter", _last),
    "NEXT_N_QUARTERS": ("quarter", _next),
    "N_QUARTERS_AGO": ("quarter", _ago),
    "LAST_N_YEARS": ("year", _last),
    "NEXT_N_YEARS": ("year", _next),
    "N_YEARS_AGO": ("year", _ago),
}

#: Names of the literals written without a number (``TODAY``).
NAMES: frozenset[str] = frozenset(_FIXED)
#: Names of the literals written with a number (``LAST_N_DAYS:30``).
NAMES_WITH_N: frozenset[str] = frozenset(_COUNTED)
#: Salesforce's fiscal literals, which the sandbox rejects (it has no fiscal year).
FISCAL_NAMES: frozenset[str] = frozenset(
    {
        "THIS_FISCAL_QUARTER",
        "LAST_FISCAL_QUARTER",
        "NEXT_FISCAL_QUARTER",
        "LAST_N_FISCAL_QUARTERS",
        "NEXT_N_FISCAL_QUARTERS",
        "N_FISCAL_QUARTERS_AGO",
        "THIS_FISCAL_YEAR",
        "LAST_FISCAL_YEAR",
        "NEXT_FISCAL_YEAR",
        "LAST_N_FISCAL_YEARS",
        "NEXT_N_FISCAL_YEARS",
        "N_FISCAL_YEARS_AGO",
    }
)

_DAYS_PER_UNIT = {"day": 1, "week": 7}
_MONTHS_PER_UNIT = {"month": 1, "quarter": 3, "year": 12}
_MAX_ORDINAL = date.max.toordinal()


def resolve(literal: RelativeDate, today: date) -> tuple[date, date]:
    """The days ``literal`` covers when the current day is ``today``: start, and EXCLUSIVE end.

    A field matches ``= literal`` when its date is in ``[start, end)``; ``< literal`` means
    before start and ``> literal`` means on or after end. Ranges that would leave the years
    1-9999 are cut at ``date.min`` / ``date.max``. Raises ValueError for a name that is not
    a calendar literal, or a missing or superfluous ``n``.
    """
    unit, start, end = _span(literal)
    if unit in _DAYS_PER_UNIT:
        size = _DAYS_PER_UNIT[unit]
        anchor = today.toordinal()
        if unit == "week":
            anchor -= (today.weekday() + 1) % 7  # back to Sunday
        return _day(anchor + start * size), _day(anchor + end * size)
    size = _MONTHS_PER_UNIT[unit]
    anchor = today.year * 12 + today.month - 1
    anchor -= anchor % size  # back to the first month of the quarter or year
    return _month(anchor + start * size), _month(anchor + end * size)


def _span(literal: RelativeDate) -> tuple[Unit, int, int]:
    if literal.name in _FIXED and literal.n is None:
        return _FIXED[literal.name]
    if literal.name in _COUNTED and literal.n is not None:
        unit, span = _COUNTED[literal.name]
        return (unit, *span(literal.n))
    raise ValueError(f"not a date literal of the sandbox: {literal.text}")


def _day(ordinal: int) -> date:
    return date.fromordinal(min(max(ordinal, 1), _MAX_ORDINAL))


def _month(index: int) -> date:
    """The first day of month ``index`` (months since January of year 0)."""
    year, month = divmod(index, 12)
    if year < date.min.year:
        return date.min
    if year > date.max.year:
        return date.max
    return date(year, month + 1, 1)
