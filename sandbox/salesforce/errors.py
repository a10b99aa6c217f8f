"""Errors the sandbox answers with, in Salesforce's shapes."""

from __future__ import annotations

from typing import Any

from connector.errors import ConnectorError


class ApiError(ConnectorError):
    """A refusal with an HTTP status and a Salesforce error code.

    REST answers it as ``[{"message", "errorCode", "fields"}]``; sObject Collections and
    Composite report it per record as ``{"statusCode", "message", "fields"}``.
    """

    def __init__(
        self, status: int, code: str, message: str, fields: tuple[str, ...] | list[str] = ()
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields)

    def body(self) -> list[dict[str, Any]]:
        return [{"message": self.message, "errorCode": self.code, "fields": self.fields}]

    def record_error(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def bad_request(code: str, message: str, fields: tuple[str, ...] | list[str] = ()) -> ApiError:
    return ApiError(400, code, message, fields)


def not_found(message: str = "The requested resource does not exist") -> ApiError:
    return ApiError(404, "NOT_FOUND", message)
