"""What to do about each way a Salesforce call can fail: one table, not scattered try/except.

======================================  ==========================================
failure                                 action
======================================  ==========================================
connection refused or dropped, timeout  RETRY (backoff with jitter, capped)
TLS certificate that does not verify   FAIL (retrying cannot help)
HTTP 5xx, 429                           RETRY
UNABLE_TO_LOCK_ROW, SERVER_UNAVAILABLE  RETRY
401 / INVALID_SESSION_ID                RELOGIN, then try again (bounded)
REQUEST_LIMIT_EXCEEDED                  STOP the cycle; state is saved, the next cycle resumes
anything else (400, 403, 404, 300)      FAIL this call with Salesforce's code and message
======================================  ==========================================
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import requests
from simple_salesforce.exceptions import SalesforceError

RETRY_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"})
QUOTA_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED"})
SESSION_CODES = frozenset({"INVALID_SESSION_ID"})


class Action(StrEnum):
    RETRY = "retry"
    RELOGIN = "relogin"
    STOP = "stop"
    FAIL = "fail"


def error_code(error: SalesforceError) -> str | None:
    """The ``errorCode`` of a Salesforce error body (a JSON list of errors)."""
    content: Any = error.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        code = content[0].get("errorCode")
        return str(code) if code else None
    return None


def error_message(error: SalesforceError) -> str:
    content: Any = error.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("message", ""))
    return str(content)[:500]


def classify(error: BaseException) -> Action:
    if isinstance(error, requests.exceptions.SSLError) and "certificate verify failed" in str(
        error
    ).lower().replace("_", " "):
        return Action.FAIL  # a certificate that does not verify will not verify next time
    if isinstance(error, (requests.ConnectionError, requests.Timeout)):
        return Action.RETRY
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return Action.RETRY
    if not isinstance(error, SalesforceError):
        return Action.FAIL
    code = error_code(error)
    if code in QUOTA_CODES:
        return Action.STOP
    if error.status == 401 or code in SESSION_CODES:
        return Action.RELOGIN
    if code in RETRY_CODES or error.status >= 500 or error.status == 429:
        return Action.RETRY
    return Action.FAIL
