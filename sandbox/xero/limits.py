"""Xero's API rate limits, per tenant: calls per minute (a sliding window), calls per UTC day,
calls in flight at once, and calls per minute for the whole app.

:meth:`RateLimiter.admit` counts a call and takes an in-flight slot, or says which limit
refused it (a refused call is not counted); :meth:`RateLimiter.release` frees the slot. Every
API answer carries the remaining counts in ``X-MinLimit-Remaining``, ``X-DayLimit-Remaining``
and ``X-AppMinLimit-Remaining``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Refusal:
    """A 429: which limit (``X-Rate-Limit-Problem``) and the seconds to wait."""

    problem: str
    retry_after: int


@dataclass
class _Tenant:
    window: deque[float] = field(default_factory=deque)
    day: date | None = None
    day_used: int = 0
    in_flight: int = 0


class RateLimiter:
    def __init__(
        self,
        *,
        minute_limit: int = 60,
        minute_seconds: float = 60.0,
        day_limit: int = 5000,
        concurrent_limit: int = 5,
        app_minute_limit: int = 10_000,
        tenant_id: str = "",
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.minute_limit = minute_limit
        self.minute_seconds = minute_seconds
        self.day_limit = day_limit
        self.concurrent_limit = concurrent_limit
        self.app_minute_limit = app_minute_limit
        self.tenant_id = tenant_id  # the tenant the helpers for tests mean by default
        self.clock = clock  # the UTC wall clock that decides the day (tests may replace it)
        self.monotonic = monotonic
        self._tenants: dict[str, _Tenant] = {}
        self._app_window: deque[float] = deque()
        self._lock = threading.Lock()

    # -- bookkeeping (under the lock) ------------------------------------------------------
    def _tenant(self, tenant_id: str) -> _Tenant:
        state = self._tenants.setdefault(tenant_id, _Tenant())
        today = self.clock().date()
        if state.day != today:
            state.day, state.day_used = today, 0
        now = self.monotonic()
        for window in (state.window, self._app_window):
            while window and window[0] <= now - self.minute_seconds:
                window.popleft()
        return state

    def _window_wait(self, window: deque[float]) -> int:
        wait = window[0] + self.minute_seconds - self.monotonic()
        return max(1, math.ceil(wait))

    def _seconds_to_midnight(self) -> int:
        now = self.clock()
        midnight = datetime.combine(now.date() + timedelta(days=1), day_time(), UTC)
        return max(1, math.ceil((midnight - now).total_seconds()))

    # -- calls -----------------------------------------------------------------------------
    def admit(self, tenant_id: str) -> Refusal | None:
        """Count a call and take a slot, or refuse it without counting."""
        with self._lock:
            state = self._tenant(tenant_id)
            if state.in_flight >= self.concurrent_limit:
                return Refusal("concurrent", 1)
            if state.day_used >= self.day_limit:
                return Refusal("daily", self._seconds_to_midnight())
            if len(state.window) >= self.minute_limit:
                return Refusal("minute", self._window_wait(state.window))
            if len(self._app_window) >= self.app_minute_limit:
                return Refusal("appminute", self._window_wait(self._app_window))
            now = self.monotonic()
            state.window.append(now)
            self._app_window.append(now)
            state.day_used += 1
            state.in_flight += 1
            return None

    def release(self, tenant_id: str) -> None:
        with self._lock:
            state = self._tenants[tenant_id]
            state.in_flight = max(0, state.in_flight - 1)

    def refund(self, tenant_id: str) -> None:
        """Uncount the last admitted call (an injected 429 is not a call either)."""
        with self._lock:
            state = self._tenant(tenant_id)
            if state.window:
                state.window.pop()
            if self._app_window:
                self._app_window.pop()
            state.day_used = max(0, state.day_used - 1)

    def headers(self, tenant_id: str) -> dict[str, str]:
        with self._lock:
            state = self._tenant(tenant_id)
            return {
                "X-MinLimit-Remaining": str(max(0, self.minute_limit - len(state.window))),
                "X-DayLimit-Remaining": str(max(0, self.day_limit - state.day_used)),
                "X-AppMinLimit-Remaining": str(
                    max(0, self.app_minute_limit - len(self._app_window))
                ),
            }

    # -- for tests -------------------------------------------------------------------------
    def in_flight(self, tenant_id: str | None = None) -> int:
        with self._lock:
            return self._tenant(tenant_id or self.tenant_id).in_flight

    def set_day_remaining(self, remaining: int, tenant_id: str | None = None) -> None:
        """Pretend the tenant has made calls today so that ``remaining`` are left."""
        with self._lock:
            state = self._tenant(tenant_id or self.tenant_id)
            state.day_used = max(0, self.day_limit - remaining)

    def reset(self) -> None:
        """Forget every call counted (in-flight slots stay)."""
        with self._lock:
            for state in self._tenants.values():
                state.window.clear()
                state.day_used = 0
            self._app_window.clear()
