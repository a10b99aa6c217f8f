"""The call limiter on a simulated clock: the minute window, Xero's own counts, the day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.accounting.xero.limits import CallLimiter, seconds_to_midnight
from connector.errors import AccountingLimitError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.day = datetime(2026, 3, 15, 23, 0, tzinfo=UTC)
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds
        self.day += timedelta(seconds=seconds)

    def limiter(self, per_minute: int = 3) -> CallLimiter:
        return CallLimiter(
            per_minute, 5, clock=self.monotonic, sleep=self.sleep, now=lambda: self.day
        )


def test_the_call_over_the_minute_waits_until_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    limiter = clock.limiter(per_minute=3)
    for at in (1000.0, 1010.0, 1020.0):
        clock.now = at
        with limiter.call():
            pass
    assert clock.slept == []
    with limiter.call():  # calls at 1000, 1010, 1020: the fourth waits for 1060
        pass
    assert clock.slept == [40.0]
    assert clock.now == 1060.0


def test_xero_counting_fewer_calls_left_than_we_do_is_believed() -> None:
    clock = Clock()
    limiter = clock.limiter(per_minute=60)
    with limiter.call():
        pass
    limiter.observe({"X-MinLimit-Remaining": "0", "X-DayLimit-Remaining": "4000"})
    with limiter.call():  # another app of this organisation spent the minute
        pass
    assert clock.slept == [60.0]
    assert limiter.day_remaining == 4000


def test_a_spent_day_refuses_calls_until_midnight_utc() -> None:
    clock = Clock()
    limiter = clock.limiter()
    limiter.observe({"X-DayLimit-Remaining": "0"})
    spent = r"daily API limit .* after 2026-03-16 00:00 UTC"
    with pytest.raises(AccountingLimitError, match=spent), limiter.call():
        pass
    clock.sleep(3600)
    with limiter.call():
        pass


def test_seconds_to_midnight() -> None:
    assert seconds_to_midnight(datetime(2026, 3, 15, 23, 59, 30, tzinfo=UTC)) == 30.0


def test_a_call_counts_from_its_answer_so_it_never_leaves_our_window_before_xeros() -> None:
    clock = Clock()
    limiter = clock.limiter(per_minute=1)
    with limiter.call():
        clock.now += 5.0  # the request travels and Xero answers
    with limiter.call():
        pass
    assert clock.slept == [60.0]
    assert clock.now == 1065.0
