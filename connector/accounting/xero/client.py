"""HTTP calls to the Xero Accounting API: headers, limits, retries, and what each answer means.

Every call carries the access token and the organisation (``xero-tenant-id``); every write an
``Idempotency-Key``, so retrying it after a network error or a server error cannot apply it
twice. Calls go through the :class:`CallLimiter`. A 429 waits its ``Retry-After`` when that is
short, else (the daily limit) raises :class:`AccountingLimitError`; a 401 gets a new access token
once; server and network errors are tried again with exponential backoff and jitter (tenacity).
Amounts travel as exact JSON numbers: Decimals in, Decimals out.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests
import simplejson
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from connector.accounting.xero.auth import XeroAuth
from connector.accounting.xero.limits import CallLimiter
from connector.errors import AccountingAuthError, AccountingError, AccountingLimitError
from connector.settings import XeroSettings

log = logging.getLogger(__name__)

MAX_KEY = 128
MAX_429_WAITS = 20


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]


class _RetryError(Exception):
    """A server or network error: the same request may be sent again."""


class XeroClient:
    def __init__(
        self,
        settings: XeroSettings,
        auth: XeroAuth,
        http: requests.Session,
        limiter: CallLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.auth = auth
        self.http = http
        self.limiter = limiter or CallLimiter(settings.calls_per_minute, settings.concurrent_calls)
        self._sleep = sleep
        self.calls: Counter[str] = Counter()  # "PUT Invoices" -> calls sent (429s included)
        self.retries = 0

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    # -- the two kinds of call -------------------------------------------------------------
    def get(
        self, path: str, params: Mapping[str, str] | None = None, *, modified_since: str = ""
    ) -> dict[str, Any]:
        headers = {"If-Modified-Since": modified_since} if modified_since else {}
        answer = self.send("GET", path, params=params, headers=headers)
        if answer.status != 200:
            raise AccountingError(
                f"GET {path}: Xero answered {answer.status}: {error_text(answer.body)}",
                status=answer.status,
            )
        return answer.body

    def write(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        idempotency_key: str,
        *,
        batched: bool = True,
    ) -> Answer:
        """A PUT or POST; batched writes ask for per-element results
        (``summarizeErrors=false``). 200 and 400 answers are returned to the caller."""
        if len(idempotency_key) > MAX_KEY:
            raise ValueError(f"idempotency key longer than {MAX_KEY}: {idempotency_key}")
        params = {"summarizeErrors": "false"} if batched else None
        return self.send(
            method,
            path,
            params=params,
            data=simplejson.dumps(body, use_decimal=True),
            headers={"Idempotency-Key": idempotency_key, "Content-Type": "application/json"},
        )

    # -- sending ---------------------------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        what = f"{method} {path.split('/', maxsplit=1)[0]}"
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=wait_exponential(multiplier=1, max=60) + wait_random(0, 1),
            retry=retry_if_exception_type(_RetryError),
            before_sleep=lambda state: self._note_retry(what, state),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, path, params, data, dict(headers or {}))
        except _RetryError as error:
            raise AccountingError(
                f"{what}: Xero did not answer after {self.settings.max_attempts} tries: {error}"
            ) from None

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        data: str | None,
        headers: dict[str, str],
    ) -> Answer:
        what = f"{method} {path.split('/', maxsplit=1)[0]}"
        refreshed = False
        waits = 0
        while True:
            with self.limiter.call():
                self.calls[what] += 1
                try:
                    response = self.http.request(
                        method,
                        f"{self.settings.api_url}/{path}",
                        params=params,
                        data=data,
                        headers={
                            **headers,
                            "Authorization": f"Bearer {self.auth.access_token()}",
                            "xero-tenant-id": self.settings.tenant_id,
                            "Accept": "application/json",
                        },
                        timeout=(10, self.settings.timeout_seconds),
                    )
                except (
                    requests.ConnectionError,
                    requests.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                ) as error:
                    raise _RetryError(f"{type(error).__name__}: {error}") from None
            self.limiter.observe(response.headers)
            status = response.status_code
            if status == 429:
                waits += 1
                self._wait_out(response, what, waits)
                continue
            if status == 401 and not refreshed:
                refreshed = True
                self.auth.invalidate()
                continue
            if status == 401:
                raise AccountingAuthError(
                    f"{what}: Xero refused the access token ({_detail(response)})", status=401
                )
            if status == 403:
                raise AccountingAuthError(
                    f"{what}: Xero refused access to organisation {self.settings.tenant_id!r} "
                    f"({_detail(response)}): check xero.tenant_id and the app's scopes",
                    status=403,
                )
            if status >= 500 or status == 409:  # 409: the same key is still in flight
                raise _RetryError(f"HTTP {status}")
            return Answer(status, _json(response), response.headers)

    def _wait_out(self, response: requests.Response, what: str, waits: int) -> None:
        problem = response.headers.get("X-Rate-Limit-Problem", "").lower()
        try:
            retry_after = float(response.headers.get("Retry-After", "60"))
        except ValueError:
            retry_after = 60.0
        if problem in ("daily", "day"):
            self.limiter.day_spent(retry_after)
            raise AccountingLimitError(
                f"{what}: Xero's daily API limit for this organisation is spent; "
                f"the push resumes in {retry_after / 3600:.1f} h",
                status=429,
            )
        if retry_after > self.settings.max_wait_seconds or waits > MAX_429_WAITS:
            raise AccountingLimitError(
                f"{what}: Xero asks to wait {retry_after:.0f} s ({problem or 'rate limit'}); "
                "the push resumes in the next cycle",
                status=429,
            )
        log.info("xero %s: rate limited (%s), waiting %.0f s", what, problem, retry_after)
        self.limiter.waited += retry_after
        self._sleep(retry_after)

    def _note_retry(self, what: str, state: RetryCallState) -> None:
        self.retries += 1
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "xero %s failed (%s); try %d of %d",
            what,
            error,
            state.attempt_number,
            self.settings.max_attempts,
        )


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.text, parse_float=Decimal) if response.text else {}
    except ValueError:
        return {"Message": response.text[:500]}
    return body if isinstance(body, dict) else {"items": body}


def _detail(response: requests.Response) -> str:
    body = _json(response)
    return str(body.get("Detail") or body.get("Title") or body.get("Message") or "no detail")


def error_text(body: Mapping[str, Any]) -> str:
    """Xero's message in an error answer, with the validation errors of its elements."""
    messages = [str(body.get("Message") or body.get("Detail") or body.get("Title") or "")]
    for element in body.get("Elements") or []:
        messages += validation_errors(element)
    return "; ".join(dict.fromkeys(message for message in messages if message)) or "no message"


def validation_errors(element: Mapping[str, Any]) -> list[str]:
    return [str(error.get("Message")) for error in element.get("ValidationErrors") or []]
