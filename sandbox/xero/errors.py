"""Refusals inside the fake Xero: one element of a batch, or a whole request."""

from __future__ import annotations

from typing import Any

from connector.errors import ConnectorError


class ElementError(ConnectorError):
    """One element of a batch broke a business rule; Xero lists each as a ``ValidationErrors``
    entry and saves the element nowhere."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


class ApiError(ConnectorError):
    """The whole request is refused with this status and JSON body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def problem_body(status: int, title: str, detail: str) -> dict[str, Any]:
    """The problem-details shape Xero answers 401, 403, 404, 409 and 429 with."""
    return {"Type": None, "Title": title, "Status": status, "Detail": detail}


def post_data_invalid(message: str) -> ApiError:
    """400 for a body that is not what the endpoint takes (bad JSON, schema, batch size)."""
    return ApiError(
        400, {"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": message}
    )


def validation_exception(
    message: str = "A validation exception occurred", elements: list[Any] | None = None
) -> ApiError:
    body: dict[str, Any] = {"ErrorNumber": 10, "Type": "ValidationException", "Message": message}
    if elements is not None:
        body["Elements"] = elements
    return ApiError(400, body)


def query_parse_error(message: str) -> ApiError:
    """400 for a query string this fake does not understand (``where``, ``page``, ...)."""
    return ApiError(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message})


def not_found(detail: str = "The resource you're looking for cannot be found") -> ApiError:
    return ApiError(404, problem_body(404, "NotFound", detail))


class ConnectionDroppedError(ConnectorError):
    """An injected fault: close the connection without answering (``status``: what the
    request would have answered when the write was applied first, for the request log)."""

    def __init__(self, status: int | None = None) -> None:
        super().__init__("connection dropped")
        self.status = status
