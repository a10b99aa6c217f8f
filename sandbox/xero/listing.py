"""GET on a collection: ``where``, ``IDs``, ``InvoiceNumbers``, ``If-Modified-Since`` and pages.

Documents come in ``UpdatedDateUTC`` order, then by id. Without ``page`` every match is
returned; with it, ``pageSize`` (default 100) per page and a ``pagination`` object. Query
parameters this fake does not know are refused, so a client cannot rely on one silently.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.xero.dates import NoOffsetError, parse_if_modified_since, parse_ms
from sandbox.xero.errors import query_parse_error
from sandbox.xero.store import Document, XeroStore
from sandbox.xero.where import WhereError, parse_where

PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
ORDERS = ("UpdatedDateUTC", "UpdatedDateUTC ASC")


@dataclass(frozen=True)
class Resource:
    """A collection the API lists: its name in URLs and bodies, its table, what filters it."""

    plural: str
    table: str
    id_field: str
    where_fields: frozenset[str]
    numbers: str | None = None  # the field ``InvoiceNumbers=`` filters on

    @property
    def parameters(self) -> frozenset[str]:
        names = {"where", "IDs", "page", "pageSize", "order"}
        if self.numbers:
            names.add(f"{self.numbers}s")
        return frozenset(names)


RESOURCES = {
    resource.plural.lower(): resource
    for resource in (
        Resource("Contacts", "contacts", "ContactID", frozenset({"ContactNumber", "Name"})),
        Resource(
            "Invoices",
            "invoices",
            "InvoiceID",
            frozenset({"Reference", "InvoiceNumber", "Status", "Type"}),
            numbers="InvoiceNumber",
        ),
        Resource(
            "CreditNotes",
            "credit_notes",
            "CreditNoteID",
            frozenset({"Reference", "CreditNoteNumber", "Status", "Type"}),
        ),
        Resource(
            "Payments", "payments", "PaymentID", frozenset({"Reference", "Status", "PaymentType"})
        ),
        Resource(
            "ManualJournals",
            "manual_journals",
            "ManualJournalID",
            frozenset({"Narration", "Status"}),
        ),
    )
}


def refuse_unknown(args: Mapping[str, str], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(args) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise query_parse_error(
            f"{where} does not take the query parameter {unknown[0]} (it takes: {known})"
        )


def _positive(args: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    text = args.get(name)
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise query_parse_error(f"{name} must be a whole number from 1 to {maximum}, not {text!r}")
    return int(text)


def _ids(text: str) -> set[str]:
    ids = set()
    for part in text.split(","):
        try:
            ids.add(str(uuid.UUID(part.strip())))
        except ValueError:
            raise query_parse_error(f"IDs: {part.strip()!r} is not a GUID") from None
    return ids


def list_documents(
    store: XeroStore, resource: Resource, args: Mapping[str, str], modified_since: str | None
) -> tuple[list[Document], dict[str, int] | None]:
    """The documents a GET asks for, and the pagination object when it asked for a page."""
    refuse_unknown(args, resource.parameters, f"GET /{resource.plural}")
    if args.get("order", ORDERS[0]) not in ORDERS:
        raise query_parse_error(f"order: only {ORDERS[0]} (ascending) is supported")
    try:
        where = parse_where(args["where"], resource.where_fields) if "where" in args else None
    except WhereError as error:
        raise query_parse_error(str(error)) from None
    since = None
    if modified_since:
        try:
            since = parse_if_modified_since(modified_since)
        except NoOffsetError:
            raise query_parse_error(
                f"If-Modified-Since: {modified_since!r} has no UTC offset; send a date-time "
                "with one (2026-03-01T10:00:00+00:00)"
            ) from None
        except (ValueError, TypeError):
            raise query_parse_error(f"If-Modified-Since: cannot read {modified_since!r}") from None
    ids = _ids(args["IDs"]) if "IDs" in args else None
    numbers = None
    if resource.numbers and f"{resource.numbers}s" in args:
        numbers = {part.strip() for part in args[f"{resource.numbers}s"].split(",")}
    with store.lock:
        documents = list(store.table(resource.table).values())
    keyed: list[tuple[int, str, Document]] = []
    for document in documents:
        updated = parse_ms(document["UpdatedDateUTC"])
        if (
            (since is not None and updated <= since)
            or (ids is not None and document[resource.id_field] not in ids)
            or (numbers is not None and document.get(resource.numbers or "") not in numbers)
            or (where is not None and not where.matches(document))
        ):
            continue
        keyed.append((updated, document[resource.id_field], document))
    keyed.sort(key=lambda row: (row[0], row[1]))
    found = [document for _, _, document in keyed]
    if "page" not in args and "pageSize" not in args:
        return found, None
    page = _positive(args, "page", 1, 10**9)
    size = _positive(args, "pageSize", PAGE_SIZE, MAX_PAGE_SIZE)
    pagination = {
        "page": page,
        "pageSize": size,
        "pageCount": math.ceil(len(found) / size),
        "itemCount": len(found),
    }
    return found[(page - 1) * size : page * size], pagination


def find(store: XeroStore, resource: Resource, document_id: str) -> Any:
    with store.lock:
        return store.table(resource.table).get(document_id.lower())
