"""Xero's API limits, kept on our side: calls a minute, calls at once, calls a day.

Xero allows an organisation 60 calls a minute, 5 at once and 5,000 a day, and reports what is
left after each call (``X-MinLimit-Remaining``, ``X-DayLimit-Remaining``). The limiter waits
before a call that would go over the minute window (its own count, or Xero's when that is
lower), holds at most ``concurrent`` calls in flight, and refuses a call once the day is spent,
so that the push ends cleanly and the next cycle resumes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from connector.errors import AccountingLimitError

WINDOW_SECONDS = 60.0


def seconds_to_midnight(now: datetime) -> float:
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()


class CallLimiter:
    def __init__(
        self,
        per_minute: int = 60,
        concurrent: int = 5,
        *,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.per_minute = per_minute
        self.window = window
        self._clock, self._sleep, self._now = clock, sleep, now
        self._slots = threading.BoundedSemaphore(concurrent)
        self._lock = threading.Lock()
        self._calls: deque[float] = deque()
        self.minute_remaining: int | None = None
        self.day_remaining: int | None = None
        self._day_spent_until: datetime | None = None
        self.waited = 0.0  # seconds spent waiting for the minute window, for reports

    @contextmanager
    def call(self) -> Iterator[None]:
        """Hold a slot for one call: waits for the minute window, refuses a spent day. The
        call counts in the window from when its answer came back, never earlier than Xero
        counted it, so that it cannot leave our window before it leaves Xero's."""
        with self._slots:
            reserved = self._reserve()
            try:
                yield
            finally:
                with self._lock:
                    if reserved in self._calls:
                        self._calls.remove(reserved)
                    self._calls.append(self._clock())

    def _reserve(self) -> float:
        while True:
            with self._lock:
                self._check_day()
                now = self._clock()
                while self._calls and now - self._calls[0] >= self.window:
                    self._calls.popleft()
                    if self.minute_remaining is not None:  # our call left Xero's window too
                        self.minute_remaining += 1
                allowed = self.per_minute
                if self.minute_remaining is not None:  # Xero counts calls of other apps too
                    allowed = min(allowed, len(self._calls) + self.minute_remaining)
                if len(self._calls) < allowed:
                    self._calls.append(now)
                    if self.minute_remaining is not None:
                        self.minute_remaining = max(self.minute_remaining - 1, 0)
                    return now
                wait = self.window - (now - self._calls[0]) if self._calls else 1.0
                if not self._calls:
                    self.minute_remaining = None  # nothing of ours in the window: ask again
            wait = max(wait, 0.01)
            self.waited += wait
            self._sleep(wait)

    def _check_day(self) -> None:
        if self._day_spent_until is not None:
            if self._now() < self._day_spent_until:
                raise AccountingLimitError(
                    "Xero's daily API limit for this organisation is spent; the push resumes "
                    f"after {self._day_spent_until:%Y-%m-%d %H:%M} UTC"
                )
            self._day_spent_until = None
            self.day_remaining = None

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take Xero's own counts from a response's headers."""
        with self._lock:
            minute = _int(headers.get("X-MinLimit-Remaining"))
            day = _int(headers.get("X-DayLimit-Remaining"))
            if minute is not None:
                self.minute_remaining = minute
            if day is not None:
                self.day_remaining = day
                if day <= 0:
                    self.day_spent(seconds_to_midnight(self._now()))

    def day_spent(self, retry_after: float) -> None:
        """Xero said the day is spent (a 429 ``daily``, or none left): refuse calls until then."""
        self._day_spent_until = self._now() + timedelta(seconds=max(retry_after, 1.0))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
