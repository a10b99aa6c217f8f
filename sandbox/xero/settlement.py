"""Money applied to documents: payments and refunds (PUT /Payments) and credit note
allocations (PUT /CreditNotes/{id}/Allocations).

A payment on an invoice is an ACCRECPAYMENT and lowers its AmountDue; a payment on a credit
note is a refund (ARCREDITPAYMENT) and lowers its RemainingCredit. An allocation moves credit
from a credit note to an invoice of the same contact and currency. A document whose
outstanding amount reaches zero becomes PAID.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sandbox.xero.dates import ms_date, ms_timestamp
from sandbox.xero.errors import ElementError
from sandbox.xero.rules import (
    EXCEEDS_OUTSTANDING,
    NOT_AUTHORISED,
    NOT_FOUND,
    invalid_account,
    money,
    unique,
)
from sandbox.xero.rules import day as parse_day

if TYPE_CHECKING:
    from datetime import date
    from decimal import Decimal

    from sandbox.xero.store import Document, XeroStore

PAYABLE = ("AUTHORISED", "PAID")


def _settle(
    document: Document, outstanding: str, applied: Decimal, when: date, now_ms: int
) -> Document:
    """A new version of ``document`` with ``applied`` taken off ``outstanding``."""
    changed = {**document, outstanding: document[outstanding] - applied}
    if changed[outstanding] == 0:
        changed["Status"] = "PAID"
        changed["FullyPaidOnDate"] = ms_date(when)
    changed["UpdatedDateUTC"] = ms_timestamp(now_ms)
    return changed


def _summary(document: Document, kind: str) -> Document:
    number = "InvoiceNumber" if kind == "Invoice" else "CreditNoteNumber"
    return {
        f"{kind}ID": document[f"{kind}ID"],
        number: document[number],
        "Type": document["Type"],
        "CurrencyCode": document["CurrencyCode"],
        "Contact": document["Contact"],
    }


def create_payment(store: XeroStore, element: dict[str, Any]) -> Document:
    """One payment on an invoice, or one refund of a credit note."""
    errors: list[str] = []
    kind = "Invoice" if "Invoice" in element else "CreditNote"
    table, outstanding, payment_type = (
        ("invoices", "AmountDue", "ACCRECPAYMENT")
        if kind == "Invoice"
        else ("credit_notes", "RemainingCredit", "ARCREDITPAYMENT")
    )
    document = store.table(table).get(element[kind][f"{kind}ID"])
    paid = money(element["Amount"], "Amount", errors)
    code = element["Account"]["Code"]
    account = store.chart.account(code)
    if account is None:
        errors.append(invalid_account(code))
    elif account.type != "BANK":
        errors.append(
            f"Account code '{code}' is not a bank account: payments can only be made to or "
            "from a BANK account."
        )
    if document is None:
        errors.append(NOT_FOUND)
    elif document["Status"] not in PAYABLE:
        errors.append(NOT_AUTHORISED)
    elif paid > document[outstanding]:
        errors.append(EXCEEDS_OUTSTANDING)
    errors.extend(store.locks.refusals(parse_day(element["Date"])))
    if errors or document is None or account is None:
        raise ElementError(*unique(errors))
    when = parse_day(element["Date"])
    now_ms = store.now_ms()
    payment: Document = {
        "PaymentID": str(uuid.uuid4()),
        "Date": ms_date(when),
        "Amount": paid,
        "Reference": element.get("Reference", ""),
        "PaymentType": payment_type,
        "Status": "AUTHORISED",
        "IsReconciled": False,
        "HasAccount": True,
        "HasValidationErrors": False,
        "Account": account.summary(),
        kind: _summary(document, kind),
        "UpdatedDateUTC": ms_timestamp(now_ms),
    }
    settled = _settle(document, outstanding, paid, when, now_ms)
    if kind == "Invoice":
        settled["AmountPaid"] = document["AmountPaid"] + paid
    settled["Payments"] = [
        *document["Payments"],
        {
            "PaymentID": payment["PaymentID"],
            "Date": payment["Date"],
            "Amount": paid,
            "Reference": payment["Reference"],
        },
    ]
    store.put(table, settled)
    return store.put("payments", payment)


def allocate(store: XeroStore, credit_note_id: str, element: dict[str, Any]) -> Document:
    """Apply part of a credit note's remaining credit to an invoice."""
    errors: list[str] = []
    credit_note = store.credit_notes[credit_note_id]
    invoice = store.invoices.get(element["Invoice"]["InvoiceID"])
    applied = money(element["Amount"], "Amount", errors)
    if credit_note["Status"] not in PAYABLE:
        errors.append("Credit note not of valid status for allocation")
    elif applied > credit_note["RemainingCredit"]:
        errors.append("The amount allocated exceeds the remaining credit on the credit note.")
    if invoice is None:
        errors.append(NOT_FOUND)
    else:
        if invoice["Status"] not in PAYABLE:
            errors.append(NOT_AUTHORISED)
        elif applied > invoice["AmountDue"]:
            errors.append("The amount allocated exceeds the amount due on the invoice.")
        if invoice["CurrencyCode"] != credit_note["CurrencyCode"]:
            errors.append("The credit note and the invoice must be in the same currency.")
        if invoice["Contact"]["ContactID"] != credit_note["Contact"]["ContactID"]:
            errors.append("The credit note and the invoice must belong to the same contact.")
    errors.extend(store.locks.refusals(parse_day(element["Date"])))
    if errors or invoice is None:
        raise ElementError(*unique(errors))
    when = parse_day(element["Date"])
    now_ms = store.now_ms()
    allocation_id = str(uuid.uuid4())
    allocation: Document = {
        "AllocationID": allocation_id,
        "Amount": applied,
        "Date": ms_date(when),
        "Invoice": _summary(invoice, "Invoice"),
        "CreditNote": _summary(credit_note, "CreditNote"),
    }
    credit = _settle(credit_note, "RemainingCredit", applied, when, now_ms)
    credit["Allocations"] = [
        *credit_note["Allocations"],
        {key: allocation[key] for key in ("AllocationID", "Amount", "Date", "Invoice")},
    ]
    debited = _settle(invoice, "AmountDue", applied, when, now_ms)
    debited["AmountCredited"] = invoice["AmountCredited"] + applied
    debited["CreditNotes"] = [
        *invoice["CreditNotes"],
        {
            "CreditNoteID": credit_note_id,
            "CreditNoteNumber": credit_note["CreditNoteNumber"],
            "AppliedAmount": applied,
            "Date": allocation["Date"],
        },
    ]
    store.put("credit_notes", credit)
    store.put("invoices", debited)
    return allocation
