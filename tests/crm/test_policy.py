"""The error → action table, with the exceptions simple-salesforce and requests really raise."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from connector.crm.policy import Action, classify, error_code, error_message
from connector.errors import ConfigError, CrmError, LoginError, QuotaExhaustedError

URL = "https://acme.my.salesforce.com/services/data/v59.0/query/?q=SELECT+Id+FROM+Account"
EXCEPTIONS: dict[int, type[SalesforceError]] = {
    300: SalesforceMoreThanOneRecord,
    400: SalesforceMalformedRequest,
    401: SalesforceExpiredSession,
    403: SalesforceRefusedRequest,
    404: SalesforceResourceNotFound,
}


def body(code: str, message: str = "it went wrong") -> list[dict[str, Any]]:
    return [{"message": message, "errorCode": code, "fields": []}]


def salesforce_error(status: int, content: Any, name: str = "query") -> SalesforceError:
    """The exception simple-salesforce's ``exception_handler`` raises for this answer."""
    return EXCEPTIONS.get(status, SalesforceGeneralError)(URL, status, name, content)


@pytest.mark.parametrize(
    ("status", "content", "action"),
    [
        # retry: server trouble, throttling, locks
        (500, body("UNKNOWN_EXCEPTION"), Action.RETRY),
        (502, "<html><body>Bad Gateway</body></html>", Action.RETRY),
        (503, body("SERVER_UNAVAILABLE"), Action.RETRY),
        (504, "", Action.RETRY),
        (429, "Too Many Requests", Action.RETRY),
        (400, body("UNABLE_TO_LOCK_ROW"), Action.RETRY),
        (400, body("SERVER_UNAVAILABLE"), Action.RETRY),
        (400, body("UNKNOWN_EXCEPTION"), Action.RETRY),
        # a fresh session
        (401, body("INVALID_SESSION_ID", "Session expired or invalid"), Action.RELOGIN),
        (401, "Unauthorized", Action.RELOGIN),
        (403, body("INVALID_SESSION_ID"), Action.RELOGIN),
        # stop the cycle
        (403, body("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), Action.STOP),
        # fail the call
        (400, body("MALFORMED_QUERY"), Action.FAIL),
        (400, body("INVALID_FIELD"), Action.FAIL),
        (400, body("JSON_PARSER_ERROR"), Action.FAIL),
        (403, body("INSUFFICIENT_ACCESS"), Action.FAIL),
        (403, body("API_DISABLED_FOR_ORG"), Action.FAIL),
        (404, body("NOT_FOUND"), Action.FAIL),
        (
            300,
            [
                "/services/data/v59.0/sobjects/Account/001A",
                "/services/data/v59.0/sobjects/Account/001B",
            ],
            Action.FAIL,
        ),
        (400, "", Action.FAIL),
        (400, [], Action.FAIL),
    ],
)
def test_salesforce_errors(status: int, content: Any, action: Action) -> None:
    assert classify(salesforce_error(status, content)) is action


def test_the_table_uses_the_exception_classes_simple_salesforce_raises() -> None:
    assert type(salesforce_error(400, body("MALFORMED_QUERY"))) is SalesforceMalformedRequest
    assert type(salesforce_error(401, body("INVALID_SESSION_ID"))) is SalesforceExpiredSession
    assert type(salesforce_error(403, body("REQUEST_LIMIT_EXCEEDED"))) is SalesforceRefusedRequest
    assert type(salesforce_error(503, body("SERVER_UNAVAILABLE"))) is SalesforceGeneralError
    assert type(salesforce_error(429, "")) is SalesforceGeneralError


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (requests.ConnectionError("connection refused"), Action.RETRY),
        (requests.exceptions.ConnectTimeout("connect timed out"), Action.RETRY),
        (requests.exceptions.ReadTimeout("read timed out"), Action.RETRY),
        (requests.Timeout("timed out"), Action.RETRY),
        (requests.exceptions.ChunkedEncodingError("connection broken"), Action.RETRY),
        (requests.exceptions.ProxyError("proxy refused"), Action.RETRY),
        (requests.exceptions.SSLError("EOF occurred in violation of protocol"), Action.RETRY),
        (requests.exceptions.InvalidURL("no host"), Action.FAIL),
        (requests.HTTPError("418"), Action.FAIL),
        (ValueError("not JSON"), Action.FAIL),
        (KeyError("records"), Action.FAIL),
        (QuotaExhaustedError("spent", code="CONNECTOR_QUOTA"), Action.FAIL),
        (LoginError("refused", code="invalid_grant"), Action.FAIL),
        (CrmError("refused"), Action.FAIL),
        (ConfigError("no login"), Action.FAIL),
    ],
)
def test_other_errors(error: BaseException, action: Action) -> None:
    assert classify(error) is action


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (
            body("MALFORMED_QUERY", "unexpected token: 'SELEC'"),
            "MALFORMED_QUERY",
            "unexpected token: 'SELEC'",
        ),
        (
            [*body("FIRST", "first"), *body("SECOND", "second")],
            "FIRST",
            "first",
        ),
        ([{"message": "no code"}], None, "no code"),
        ([{"errorCode": "", "message": "empty code"}], None, "empty code"),
        ([{"errorCode": "NO_MESSAGE"}], "NO_MESSAGE", ""),
        ("Service Unavailable", None, "Service Unavailable"),
        ("", None, ""),
        ([], None, "[]"),
        (["/a", "/b"], None, "['/a', '/b']"),
        ({"errorCode": "IN_A_DICT"}, None, "{'errorCode': 'IN_A_DICT'}"),
    ],
)
def test_error_code_and_message(content: Any, code: str | None, message: str) -> None:
    error = salesforce_error(400, content)
    assert error_code(error) == code
    assert error_message(error) == message


def test_a_long_error_page_is_cut_to_500_characters() -> None:
    page = "<html>" + "x" * 2000 + "</html>"
    assert error_message(salesforce_error(502, page)) == page[:500]


def test_actions_are_strings() -> None:
    assert [str(action) for action in Action] == ["retry", "relogin", "stop", "fail"]


def test_a_certificate_that_does_not_verify_is_not_retried() -> None:
    error = requests.exceptions.SSLError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer "
        "certificate (_ssl.c:1006)"
    )
    assert classify(error) is Action.FAIL
