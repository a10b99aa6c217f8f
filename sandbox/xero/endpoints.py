"""The Accounting API's endpoints under ``/api.xro/2.0``: reads and batched writes.

A write's body is parsed with exact decimals, refused whole when it is over 3.5 MB (413), has
more than 50 elements or breaks its JSON Schema (400 PostDataInvalidException); then each
element is applied in turn. With ``summarizeErrors=false`` the answer is 200 and each element
says OK or ERROR (bad ones are not saved); otherwise one bad element makes the answer a 400
ValidationException and nothing of the batch is saved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import Headers

from sandbox.xero import contacts, documents, settlement
from sandbox.xero.chart import Chart
from sandbox.xero.dates import datetime_ms
from sandbox.xero.errors import (
    ApiError,
    ElementError,
    not_found,
    post_data_invalid,
    problem_body,
    query_parse_error,
    validation_exception,
)
from sandbox.xero.listing import RESOURCES, find, list_documents, refuse_unknown
from sandbox.xero.replies import Reply, envelope
from sandbox.xero.store import Document, XeroStore
from sandbox.xero.validation import check, parse_json

MAX_BODY_BYTES = 3_500_000
MAX_ELEMENTS = 50
NO_PARAMETERS: frozenset[str] = frozenset()


@dataclass
class ApiCall:
    """One request under ``/api.xro/2.0`` as the endpoints see it."""

    method: str
    parts: list[str]
    args: Mapping[str, str]
    body: bytes
    headers: Headers  # case-insensitive

    @property
    def path(self) -> str:
        return "/".join(self.parts)


@dataclass(frozen=True)
class Write:
    """A batched write: its schema, the body's list, the flag Xero sets on a bad element."""

    schema: str
    plural: str
    error_flag: str | None
    parameters: frozenset[str] = frozenset({"summarizeErrors"})


CONTACTS = Write("contacts", "Contacts", "HasValidationErrors")
INVOICES = Write("invoices", "Invoices", "HasErrors", frozenset({"summarizeErrors", "unitdp"}))
VOIDS = Write("invoices-void", "Invoices", "HasErrors")
CREDIT_NOTES = Write(
    "credit-notes", "CreditNotes", "HasErrors", frozenset({"summarizeErrors", "unitdp"})
)
ALLOCATIONS = Write("allocations", "Allocations", None)
PAYMENTS = Write("payments", "Payments", "HasValidationErrors")
MANUAL_JOURNALS = Write("manual-journals", "ManualJournals", None)


def _flag(name: str, args: Mapping[str, str], default: bool) -> bool:
    text = args.get(name)
    if text is None:
        return default
    if text.lower() not in ("true", "false"):
        raise query_parse_error(f"{name} must be true or false, not {text!r}")
    return text.lower() == "true"


def _unit_places(args: Mapping[str, str]) -> int:
    text = args.get("unitdp", "2")
    if text not in ("2", "4"):
        raise query_parse_error(f"unitdp must be 2 or 4, not {text!r}")
    return int(text)


def _echo(element: Any, flag: str | None, messages: list[str]) -> Document:
    echo = dict(element) if isinstance(element, dict) else {"Element": element}
    echo["StatusAttributeString"] = "ERROR"
    echo["ValidationErrors"] = [{"Message": message} for message in messages]
    if flag:
        echo[flag] = True
    return echo


class XeroApi:
    def __init__(self, store: XeroStore, chart: Chart, organisation: dict[str, Any]) -> None:
        self.store = store
        self.chart = chart
        self.organisation = organisation

    def _now_ms(self) -> int:
        return datetime_ms(self.store.clock())

    def _list(self, plural: str, items: list[Any]) -> Reply:
        return Reply(200, envelope(plural, items, self._now_ms()))

    # -- routing ---------------------------------------------------------------------------
    def route(self, call: ApiCall) -> Reply:
        if not call.parts:
            raise not_found()
        name, rest, method = call.parts[0].lower(), call.parts[1:], call.method
        settings = {
            "organisation": (
                "Organisations",
                lambda: [{**self.organisation, **self.store.locks.organisation_fields()}],
            ),
            "accounts": ("Accounts", self.chart.accounts_json),
            "taxrates": ("TaxRates", self.chart.tax_rates_json),
            "currencies": ("Currencies", self.chart.currencies_json),
        }
        if name in settings and not rest and method == "GET":
            refuse_unknown(call.args, NO_PARAMETERS, f"GET /{call.parts[0]}")
            plural, items = settings[name]
            return self._list(plural, items())
        resource = RESOURCES.get(name)
        if resource is None and name not in settings:
            raise not_found()
        if resource is not None and method == "GET":
            if not rest:
                return self._read(call, resource.plural)
            if len(rest) == 1:
                document = find(self.store, resource, rest[0])
                if document is None:
                    raise not_found(
                        "The document with the supplied id was not found for this endpoint."
                    )
                return self._list(resource.plural, [document])
        store = self.store
        match name, rest, method:
            case "contacts", [], "PUT":
                return self._write(call, CONTACTS, lambda e: contacts.create_contact(store, e))
            case "contacts", [], "POST":
                return self._write(call, CONTACTS, lambda e: contacts.save_contact(store, e))
            case "invoices", [], "PUT":
                places = _unit_places(call.args)
                return self._write(
                    call, INVOICES, lambda e: documents.create_invoice(store, e, places)
                )
            case "invoices", [], "POST":
                return self._write(call, VOIDS, lambda e: documents.void_invoice(store, e))
            case "creditnotes", [], "PUT":
                places = _unit_places(call.args)
                return self._write(
                    call, CREDIT_NOTES, lambda e: documents.create_credit_note(store, e, places)
                )
            case "creditnotes", [credit_note_id, allocations], "PUT" if (
                allocations.lower() == "allocations"
            ):
                credit_note = find(self.store, RESOURCES["creditnotes"], credit_note_id)
                if credit_note is None:
                    raise not_found(
                        "The document with the supplied id was not found for this endpoint."
                    )
                key = credit_note["CreditNoteID"]
                return self._write(call, ALLOCATIONS, lambda e: settlement.allocate(store, key, e))
            case "payments", [], "PUT":
                return self._write(call, PAYMENTS, lambda e: settlement.create_payment(store, e))
            case "manualjournals", [], "PUT":
                return self._write(
                    call, MANUAL_JOURNALS, lambda e: documents.create_manual_journal(store, e)
                )
        if rest and not (name == "creditnotes" and len(rest) == 2):
            raise not_found()
        raise ApiError(
            405,
            problem_body(405, "Method Not Allowed", f"{method} /{call.path} is not supported"),
        )

    # -- reads -----------------------------------------------------------------------------
    def _read(self, call: ApiCall, plural: str) -> Reply:
        resource = RESOURCES[plural.lower()]
        items, pagination = list_documents(
            self.store, resource, call.args, call.headers.get("If-Modified-Since")
        )
        return Reply(200, envelope(plural, items, self._now_ms(), pagination))

    # -- writes ----------------------------------------------------------------------------
    def _write(self, call: ApiCall, write: Write, apply: Callable[[Any], Document]) -> Reply:
        refuse_unknown(call.args, write.parameters, f"{call.method} /{call.path}")
        summarize = _flag("summarizeErrors", call.args, default=True)
        if len(call.body) > MAX_BODY_BYTES:
            raise ApiError(
                413,
                problem_body(
                    413,
                    "Request Entity Too Large",
                    f"The body has {len(call.body)} bytes; at most {MAX_BODY_BYTES} are taken",
                ),
            )
        content_type = call.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise post_data_invalid(f"Content-Type must be application/json, not {content_type!r}")
        body = parse_json(call.body)
        elements = body.get(write.plural) if isinstance(body, dict) else None
        if isinstance(elements, list) and len(elements) > MAX_ELEMENTS:
            raise post_data_invalid(
                f"{write.plural}: at most {MAX_ELEMENTS} elements per request (got {len(elements)})"
            )
        check(write.schema, body)
        results: list[Document] = []
        echoes: list[Document] = []
        failed = False
        with self.store.transaction() as transaction:
            for element in body[write.plural]:
                try:
                    saved = apply(element)
                except ElementError as error:
                    failed = True
                    results.append(_echo(element, write.error_flag, error.messages))
                    echoes.append(results[-1])
                else:
                    results.append({**saved, "StatusAttributeString": "OK"})
                    echoes.append({**element, "ValidationErrors": []})
            if failed and summarize:
                transaction.rollback()
        if failed and summarize:
            raise validation_exception(elements=echoes)
        return self._list(write.plural, results)
