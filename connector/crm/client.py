"""The Salesforce client: simple-salesforce, with our logins, retries, TLS trust and budget.

Every call goes through :meth:`SalesforceClient.call`, which applies :mod:`connector.crm.policy`:
retryable failures are tried again with exponential backoff and jitter (tenacity), an expired
session gets a fresh login (at most ``max_relogins`` per call), REQUEST_LIMIT_EXCEEDED and a
spent budget raise :class:`QuotaExhaustedError`, and anything else raises :class:`CrmError` with
Salesforce's code and message.

The org's current time is read from every answer's ``Date`` header (:attr:`org_time`): a cursor
must never move past it, whatever stamps the records carry.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from connector.crm.budget import ApiBudget
from connector.crm.login import SalesforceSession, login
from connector.crm.policy import Action, classify, error_code, error_message
from connector.errors import CrmError, QuotaExhaustedError
from connector.settings import SalesforceSettings, ca_file_path
from connector.tls import https_session

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_COMPOSITE_QUERIES = 5
MAX_COLLECTION = 200


def http_session(settings: SalesforceSettings) -> requests.Session:
    """Requests trust ``salesforce.ca_file``, else the system's store; never the environment."""
    ca_file = ca_file_path(settings.ca_file, "salesforce.ca_file")
    return https_session(ca_file, "salesforce.ca_file", settings.timeout_seconds)


def _today() -> date:
    return datetime.now(UTC).date()


class SalesforceClient:
    def __init__(
        self,
        settings: SalesforceSettings,
        budget: ApiBudget | None = None,
        *,
        today: Callable[[], date] = _today,
    ) -> None:
        self.settings = settings
        self.budget = budget or ApiBudget(settings.quota_share, today())
        self.today = today
        self.http = http_session(settings)
        self.http.hooks["response"].append(self._note_date)
        self.org_time: datetime | None = None  # the Date of Salesforce's latest answer
        self._sf: Salesforce | None = None
        self.calls = 0
        self.logins = 0
        self.retries = 0

    # -- sessions --------------------------------------------------------------------------
    def _connect(self) -> Salesforce:
        session: SalesforceSession = login(self.settings, self.http)
        self.logins += 1
        self._sf = Salesforce(
            instance_url=session.instance_url,
            session_id=session.session_id,
            version=self.settings.api_version,
            session=self.http,
            parse_float=Decimal,
        )
        return self._sf

    @property
    def sf(self) -> Salesforce:
        return self._sf or self._connect()

    def _note_date(self, response: requests.Response, *_: Any, **__: Any) -> None:
        """Keep the org's time from an answer's ``Date`` header (RFC 9110, in GMT)."""
        stamp = response.headers.get("Date")
        if not stamp:
            return
        try:
            moment = parsedate_to_datetime(stamp)
        except (TypeError, ValueError):
            log.debug("salesforce answered an unreadable Date header: %r", stamp)
            return
        self.org_time = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)

    def org_now(self) -> datetime:
        """The org's time at its latest answer (the connector's clock until one came)."""
        return self.org_time or datetime.now(UTC)

    # -- calls -----------------------------------------------------------------------------
    def call(self, what: str, operation: Callable[[Salesforce], T], *, retry: bool = True) -> T:
        """Run ``operation`` with the retry policy; ``what`` names it in errors and logs.
        Without ``retry`` it is tried once (and again only after a fresh login): a write that
        is not idempotent, which a retry after an unknown outcome could do twice."""
        relogins = 0
        while True:
            try:
                if not retry:
                    return self._attempt(operation)
                return self._with_retries(what, operation)
            except SalesforceError as error:
                action = classify(error)
                if action is Action.RELOGIN and relogins < self.settings.max_relogins:
                    relogins += 1
                    log.info("salesforce session expired during %s; logging in again", what)
                    self._sf = None
                    continue
                raise self._as_error(what, error, action) from None
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as error:
                raise CrmError(f"{what}: Salesforce could not be reached: {error}") from None

    def _with_retries(self, what: str, operation: Callable[[Salesforce], T]) -> T:
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=wait_exponential(
                multiplier=self.settings.backoff_initial_seconds,
                max=self.settings.backoff_max_seconds,
            )
            + wait_random(0, self.settings.backoff_initial_seconds),
            retry=retry_if_exception(lambda error: classify(error) is Action.RETRY),
            before_sleep=lambda state: self._note_retry(what, state),
            reraise=True,
        )
        return retrying(self._attempt, operation)

    def _attempt(self, operation: Callable[[Salesforce], T]) -> T:
        self.budget.check(self.today())
        sf = self.sf
        try:
            result = operation(sf)
        except SalesforceError:
            self._count(sf)
            raise
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ):
            self._count(None)  # it may have reached Salesforce and been counted there
            raise
        self._count(sf)
        return result

    def _count(self, sf: Salesforce | None) -> None:
        self.calls += 1
        usage = None
        if sf is not None:
            found = sf.api_usage.get("api-usage")
            if found is not None:
                usage = (int(found.used), int(found.total))
        self.budget.record(self.today(), usage)

    def _note_retry(self, what: str, state: RetryCallState) -> None:
        self.retries += 1
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "salesforce %s failed (%s); try %d of %d",
            what,
            _describe(error),
            state.attempt_number,
            self.settings.max_attempts,
        )

    def _as_error(self, what: str, error: SalesforceError, action: Action) -> CrmError:
        code = error_code(error)
        message = f"{what}: Salesforce answered {error.status} {code or ''}: {error_message(error)}"
        if action is Action.STOP:
            return QuotaExhaustedError(message, code=code, status=error.status)
        return CrmError(message, code=code, status=error.status)

    # -- reads -----------------------------------------------------------------------------
    @property
    def _query_headers(self) -> dict[str, str]:
        return {"Sforce-Query-Options": f"batchSize={self.settings.page_size}"}

    def query_pages(self, soql: str, *, include_deleted: bool = False) -> Iterator[list[dict]]:
        """The records of ``soql``, one page (one API call) at a time."""
        headers = self._query_headers
        page = self.call(
            "query", lambda sf: sf.query(soql, include_deleted=include_deleted, headers=headers)
        )
        return self.pages_from(page, include_deleted=include_deleted)

    def pages_from(self, page: dict[str, Any], *, include_deleted: bool) -> Iterator[list[dict]]:
        """A query's records from its first page on, reading each further page (one call)
        once the caller is done with the page before: one page is held at a time."""
        headers = self._query_headers
        while True:
            records, done = list(page["records"]), page["done"]
            url: str = "" if done else page["nextRecordsUrl"]
            del page
            yield records
            del records
            if done:
                return

            def more(sf: Salesforce, url: str = url) -> Any:
                return sf.query_more(
                    url, identifier_is_url=True, include_deleted=include_deleted, headers=headers
                )

            page = self.call("query_more", more)

    def first_pages(
        self, queries: dict[str, str], *, include_deleted: bool = False
    ) -> dict[str, dict[str, Any]]:
        """The first page of several queries in one API call (Composite, at most 5 queries);
        follow each with :meth:`pages_from`."""
        if not queries:
            return {}
        if len(queries) > MAX_COMPOSITE_QUERIES:
            raise ValueError(f"at most {MAX_COMPOSITE_QUERIES} queries go in one Composite call")
        endpoint = "queryAll" if include_deleted else "query"
        names = list(queries)
        body = {
            "allOrNone": False,
            "compositeRequest": [
                {
                    "method": "GET",
                    "url": f"/services/data/v{self.settings.api_version}/{endpoint}/?"
                    + urlencode({"q": queries[name]}),
                    "referenceId": f"q{index}",
                }
                for index, name in enumerate(names)
            ],
        }
        headers = self._query_headers
        answer = self.call(
            "composite query",
            lambda sf: sf.restful("composite", method="POST", json=body, headers=headers),
        )
        if not isinstance(answer, dict) or "compositeResponse" not in answer:
            raise CrmError("composite query: Salesforce answered without compositeResponse")
        pages: dict[str, dict[str, Any]] = {}
        for name, part in zip(names, answer["compositeResponse"], strict=True):
            status, content = int(part["httpStatusCode"]), part["body"]
            if status >= 300:
                first = content[0] if isinstance(content, list) and content else {}
                code = first.get("errorCode") if isinstance(first, dict) else None
                message = first.get("message", content) if isinstance(first, dict) else content
                raise CrmError(
                    f"query of {name}: Salesforce answered {status} {code or ''}: {message}",
                    code=code,
                    status=status,
                )
            pages[name] = content
        return pages

    def field_names(self, obj: str) -> frozenset[str]:
        """The fields of ``obj`` the integration user sees (one describe call)."""
        answer = self.call(f"describe {obj}", lambda sf: sf.restful(f"sobjects/{obj}/describe"))
        if not isinstance(answer, dict):
            raise CrmError(f"describe {obj}: Salesforce answered {answer!r:.200}")
        return frozenset(field["name"] for field in answer.get("fields", ()))

    # -- writes ----------------------------------------------------------------------------
    def upsert_records(
        self, obj: str, external_id_field: str, records: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Upsert up to 200 records by external id (sObject Collections, allOrNone off): one
        call, one result per record (``success``, ``errors``)."""
        body = {
            "allOrNone": False,
            "records": [{"attributes": {"type": obj}, **record} for record in records],
        }
        return self._collection(
            f"upsert {obj}",
            lambda sf: sf.restful(
                f"composite/sobjects/{obj}/{external_id_field}", method="PATCH", json=body
            ),
            len(records),
        )

    def update_records(self, obj: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Update up to 200 records by Id (sObject Collections, allOrNone off)."""
        body = {
            "allOrNone": False,
            "records": [{"attributes": {"type": obj}, **record} for record in records],
        }
        return self._collection(
            f"update {obj}",
            lambda sf: sf.restful("composite/sobjects", method="PATCH", json=body),
            len(records),
        )

    def delete_records(self, ids: list[str]) -> list[dict[str, Any]]:
        """Delete up to 200 records by Id (sObject Collections, allOrNone off): one call, one
        result per record."""
        params = {"ids": ",".join(ids), "allOrNone": "false"}
        return self._collection(
            f"delete {len(ids)} records",
            lambda sf: sf.restful("composite/sobjects", params=params, method="DELETE"),
            len(ids),
        )

    def _collection(
        self, what: str, operation: Callable[[Salesforce], Any], count: int
    ) -> list[dict[str, Any]]:
        if count > MAX_COLLECTION:
            raise ValueError(f"at most {MAX_COLLECTION} records go in one collections call")
        answer = self.call(what, operation)
        if not isinstance(answer, list) or len(answer) != count:
            raise CrmError(f"{what}: Salesforce answered {count} records with {answer!r:.200}")
        return answer

    def bulk_query(
        self, obj: str, soql: str, *, include_deleted: bool = False
    ) -> Iterator[Iterator[dict[str, str]]]:
        """Rows of a Bulk API 2.0 query job, one results page (one call) at a time, each row
        read from the page's CSV text as it is asked for (a page holds up to
        ``bulk_page_size`` rows): read a page's rows before asking for the next page. Creating
        the job and each check of its state are calls too."""
        operation = "queryAll" if include_deleted else "query"
        job = self.call(
            "bulk query job",
            lambda sf: getattr(sf.bulk2, obj)._client.create_job(operation, query=soql),
        )
        job_id = str(job["id"])
        while True:
            info = self.call(
                "bulk job state", lambda sf: getattr(sf.bulk2, obj)._client.get_job(job_id, True)
            )
            state = info.get("state")
            if state == "JobComplete":
                break
            if state in ("Failed", "Aborted"):
                raise CrmError(
                    f"bulk query of {obj}: job {job_id} {state}: {info.get('errorMessage', '')}"
                )
            time.sleep(self.settings.bulk_poll_seconds)
        locator = ""
        while True:

            def results(sf: Salesforce, locator: str = locator) -> Any:
                return getattr(sf.bulk2, obj)._client.get_query_results(
                    job_id, locator, max_records=self.settings.bulk_page_size
                )

            page = self.call("bulk results", results)
            locator = page["locator"]
            yield csv.DictReader(_lines(page.pop("records")))  # the text goes with its rows
            if not locator:
                return


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text`` with their ends, one at a time, as a file opened with
    ``newline=""`` gives them to :mod:`csv`."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        end = size if end < 0 else end + 1
        yield text[start:end]
        start = end


def _describe(error: BaseException | None) -> str:
    if isinstance(error, SalesforceError):
        return f"{error.status} {error_code(error) or ''}".strip()
    return type(error).__name__ if error else "unknown"
