"""Lock dates of the fake organisation, enforced as Xero enforces them.

Xero has two (Accounting > Advanced > Financial settings > Lock dates), both shown on
``GET /Organisation`` once set:

- ``PeriodLockDate`` ("stop all users except advisers"): binds every user but an adviser;
- ``EndOfYearLockDate`` ("stop all users", the adviser lock date): binds everyone.

A transaction dated on or before a lock date that binds the connection's user cannot be added
(invoices, credit notes, payments, allocations, posted manual journals: the element is refused
with "The document date cannot be before the period lock date, currently set at 31-Mar-2026",
and the end of year one likewise; both when both bind), nor edited (voiding an invoice dated
there: "The document cannot be edited as it is currently dated before the period lock date").
Drafts are not locked, but this fake takes none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sandbox.xero.dates import ms_date, parse_ms

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
PERIOD = "period lock date"
END_OF_YEAR = "end of year lock date"


def xero_day(day: date) -> str:
    """``31-Mar-2026``, as Xero writes a lock date in its messages (in English always)."""
    return f"{day.day:02d}-{MONTHS[day.month - 1]}-{day.year}"


def date_of(ms_text: str) -> date:
    """The calendar date of a stored ``/Date(ms+0000)/``."""
    return datetime.fromtimestamp(parse_ms(ms_text) / 1000, UTC).date()


@dataclass
class LockDates:
    period: date | None = None  # PeriodLockDate
    end_of_year: date | None = None  # EndOfYearLockDate
    adviser: bool = False  # the connection acts for a user with the adviser role

    def organisation_fields(self) -> dict[str, str]:
        """What ``GET /Organisation`` shows (only the dates set)."""
        fields = {}
        if self.period is not None:
            fields["PeriodLockDate"] = ms_date(self.period)
        if self.end_of_year is not None:
            fields["EndOfYearLockDate"] = ms_date(self.end_of_year)
        return fields

    def _binding(self, day: date) -> list[tuple[str, date]]:
        found = []
        if self.period is not None and not self.adviser and day <= self.period:
            found.append((PERIOD, self.period))
        if self.end_of_year is not None and day <= self.end_of_year:
            found.append((END_OF_YEAR, self.end_of_year))
        return found

    def refusals(self, day: date) -> list[str]:
        """Why a transaction dated ``day`` cannot be added (nothing when it can)."""
        return [
            f"The document date cannot be before the {name}, currently set at {xero_day(lock)}"
            for name, lock in self._binding(day)
        ]

    def edit_refusals(self, day: date) -> list[str]:
        """Why a document dated ``day`` cannot be edited or voided (nothing when it can)."""
        return [
            f"The document cannot be edited as it is currently dated before the {name}"
            for name, _ in self._binding(day)
        ]
