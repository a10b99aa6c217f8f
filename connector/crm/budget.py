"""The connector's share of the org's daily API requests.

Every answer carries ``Sforce-Limit-Info: api-usage=N/M``: the org has used N of its M requests
for the day. The connector spends at most ``share`` × M of them itself in a UTC day, and never
takes the org past M. ``spent`` is kept in the database by the caller, so a restart does not
reset it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from connector.errors import QuotaExhaustedError


@dataclass
class ApiBudget:
    share: Decimal
    day: date
    spent: int = 0
    org_used: int | None = None
    org_limit: int | None = None

    def roll(self, today: date) -> None:
        if today != self.day:  # a new day: nothing spent, the org's count starts again too
            self.day, self.spent, self.org_used = today, 0, None

    @property
    def allowed(self) -> int | None:
        """Calls the connector may make today, once the org's limit is known."""
        if self.org_limit is None:
            return None
        return math.floor(self.share * self.org_limit)

    def check(self, today: date) -> None:
        """Raise :class:`QuotaExhaustedError` when the next call would exceed the budget."""
        self.roll(today)
        allowed = self.allowed
        if allowed is not None and self.spent >= allowed:
            raise QuotaExhaustedError(
                f"the connector has spent {self.spent} of the {allowed} API requests it may use "
                f"today ({self.share:%} of the org's {self.org_limit}); it resumes tomorrow (UTC)",
                code="CONNECTOR_QUOTA",
            )
        if (
            self.org_used is not None
            and self.org_limit is not None
            and self.org_used >= self.org_limit
        ):
            raise QuotaExhaustedError(
                f"the org has used all {self.org_limit} of its API requests today",
                code="REQUEST_LIMIT_EXCEEDED",
            )

    def record(self, today: date, usage: tuple[int, int] | None) -> None:
        """One call was made; ``usage`` is the org's (used, limit) from its answer."""
        self.roll(today)
        self.spent += 1
        if usage is not None:
            self.org_used, self.org_limit = usage
