"""Invoices, credit notes and manual journals: creation under Xero's rules, and voiding.

Line amounts are checked against quantity × unit amount (rounded half up to cents). Each
line's tax is computed from its TaxType as Xero computes it, and a given TaxAmount is taken only
where Xero takes one (:mod:`sandbox.xero.tax`). Totals follow ``LineAmountTypes``:
Exclusive adds tax to the lines, Inclusive has it inside them, NoTax has none. A document
whose total is zero is PAID at once.
"""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from sandbox.xero.dates import ms_date, ms_timestamp
from sandbox.xero.errors import ElementError
from sandbox.xero.locks import date_of
from sandbox.xero.rules import (
    CENT,
    INVALID_STATUS,
    LOCKED_BY_PAYMENT,
    NOT_FOUND,
    amount,
    contact_summary,
    currency_not_enabled,
    dated,
    day,
    invalid_account,
    money,
    unique,
)
from sandbox.xero.tax import computed_tax, line_tax

if TYPE_CHECKING:
    from sandbox.xero.store import Document, XeroStore

ZERO = Decimal("0.00")
NON_DOCUMENT_ACCOUNTS = frozenset({"BANK"})


def bad_tax_type(tax_type: str) -> str:
    return (
        f"The TaxType code '{tax_type}' does not exist or cannot be used for this type of "
        "transaction."
    )


def _lines(
    store: XeroStore, element: dict[str, Any], unit_places: int, errors: list[str]
) -> tuple[list[Document], dict[str, Decimal]]:
    """Checked line items and the document's totals."""
    chart = store.chart
    lines: list[Document] = []
    line_total = tax_total = ZERO
    for number, item in enumerate(element["LineItems"], start=1):
        quantity = amount(item["Quantity"], f"Line {number}: Quantity", 4, errors)
        unit = amount(item["UnitAmount"], f"Line {number}: UnitAmount", unit_places, errors)
        line_amount = money(item["LineAmount"], f"Line {number}: LineAmount", errors)
        given = item.get("TaxAmount")
        given_tax = None if given is None else money(given, f"Line {number}: TaxAmount", errors)
        expected = (quantity * unit).quantize(CENT, ROUND_HALF_UP)
        if line_amount != expected:
            errors.append(
                f"Line {number}: LineAmount {line_amount} must equal Quantity × UnitAmount "
                f"({quantity} × {unit} = {expected})."
            )
        account = chart.account(item["AccountCode"])
        if account is None or account.type in NON_DOCUMENT_ACCOUNTS:
            errors.append(invalid_account(item["AccountCode"]))
        tax_rate = chart.tax_rate(item["TaxType"])
        if tax_rate is None or not tax_rate.revenue:  # these documents are sales
            errors.append(bad_tax_type(item["TaxType"]))
        kind = element["LineAmountTypes"]
        computed = computed_tax(line_amount, tax_rate.rate if tax_rate else ZERO, kind)
        tax_amount, refused = line_tax(given_tax, computed, item["TaxType"], kind)
        if refused:
            errors.append(f"Line {number}: {refused}")
        line_total += line_amount
        tax_total += tax_amount
        lines.append(
            {
                "LineItemID": str(uuid.uuid4()),
                "Description": item["Description"],
                "Quantity": quantity,
                "UnitAmount": unit,
                "LineAmount": line_amount,
                "AccountCode": item["AccountCode"],
                "TaxType": item["TaxType"],
                "TaxAmount": tax_amount,
                "Tracking": [],
            }
        )
    if element["LineAmountTypes"] == "Inclusive":
        totals = {"SubTotal": line_total - tax_total, "TotalTax": tax_total, "Total": line_total}
    else:
        totals = {"SubTotal": line_total, "TotalTax": tax_total, "Total": line_total + tax_total}
    return lines, totals


def _common(
    store: XeroStore, element: dict[str, Any], unit_places: int, errors: list[str]
) -> tuple[Document, Document | None]:
    """What invoices and credit notes share: contact, currency, lines and totals."""
    contact = store.contacts.get(element["Contact"]["ContactID"])
    if contact is None or contact.get("ContactStatus") != "ACTIVE":
        errors.append(
            f"The contact with ContactID {element['Contact']['ContactID']} was not found."
        )
    if element["CurrencyCode"] not in store.chart.currencies:
        errors.append(currency_not_enabled(element["CurrencyCode"]))
    lines, totals = _lines(store, element, unit_places, errors)
    if totals["Total"] < 0:
        errors.append("The document total cannot be negative.")
    errors.extend(store.locks.refusals(day(element["Date"])))
    document: Document = {
        "Type": element["Type"],
        "Reference": element["Reference"],
        "Contact": contact_summary(contact) if contact else {},
        **dated("Date", day(element["Date"])),
        "Status": element["Status"],
        "LineAmountTypes": element["LineAmountTypes"],
        "LineItems": lines,
        **totals,
        "CurrencyCode": element["CurrencyCode"],
        "HasAttachments": False,
        "HasErrors": False,
    }
    return document, contact


def _settled_if_zero(document: Document, outstanding: str) -> Document:
    if document[outstanding] == 0:
        document["Status"] = "PAID"
        document["FullyPaidOnDate"] = document["Date"]
    return document


def create_invoice(store: XeroStore, element: dict[str, Any], unit_places: int = 2) -> Document:
    """PUT /Invoices: one ACCREC invoice."""
    errors: list[str] = []
    if store.lookup("invoice_number", element["InvoiceNumber"]) is not None:
        errors.append("Invoice # must be unique.")
    document, _ = _common(store, element, unit_places, errors)
    if errors:
        raise ElementError(*unique(errors))
    invoice: Document = {
        "InvoiceID": str(uuid.uuid4()),
        "InvoiceNumber": element["InvoiceNumber"],
        **document,
        **dated("DueDate", day(element["DueDate"])),
        "AmountDue": document["Total"],
        "AmountPaid": ZERO,
        "AmountCredited": ZERO,
        "Payments": [],
        "CreditNotes": [],
        "IsDiscounted": False,
        "UpdatedDateUTC": ms_timestamp(store.now_ms()),
    }
    return store.put("invoices", _settled_if_zero(invoice, "AmountDue"))


def void_invoice(store: XeroStore, element: dict[str, Any]) -> Document:
    """POST /Invoices with Status VOIDED: only an AUTHORISED invoice nothing was applied to."""
    invoice = store.invoices.get(element["InvoiceID"])
    if invoice is None:
        raise ElementError(NOT_FOUND)
    if invoice["Status"] == "VOIDED":
        return invoice
    if invoice["Payments"] or invoice["CreditNotes"]:
        raise ElementError(LOCKED_BY_PAYMENT)
    if invoice["Status"] != "AUTHORISED":
        raise ElementError(INVALID_STATUS)
    if locked := store.locks.edit_refusals(date_of(invoice["Date"])):
        raise ElementError(*locked)
    voided = {
        **invoice,
        "Status": "VOIDED",
        "AmountDue": ZERO,
        "UpdatedDateUTC": ms_timestamp(store.now_ms()),
    }
    return store.put("invoices", voided)


def create_credit_note(store: XeroStore, element: dict[str, Any], unit_places: int = 2) -> Document:
    """PUT /CreditNotes: one ACCRECCREDIT credit note."""
    errors: list[str] = []
    if store.lookup("credit_note_number", element["CreditNoteNumber"]) is not None:
        errors.append("Credit Note # must be unique.")
    document, _ = _common(store, element, unit_places, errors)
    if errors:
        raise ElementError(*unique(errors))
    credit_note: Document = {
        "CreditNoteID": str(uuid.uuid4()),
        "CreditNoteNumber": element["CreditNoteNumber"],
        **document,
        "RemainingCredit": document["Total"],
        "Allocations": [],
        "Payments": [],
        "UpdatedDateUTC": ms_timestamp(store.now_ms()),
    }
    return store.put("credit_notes", _settled_if_zero(credit_note, "RemainingCredit"))


def create_manual_journal(store: XeroStore, element: dict[str, Any]) -> Document:
    """PUT /ManualJournals: balanced lines on known accounts."""
    errors: list[str] = []
    lines: list[Document] = []
    if len(element["JournalLines"]) < 2:
        errors.append("A manual journal must have at least two journal lines.")
    total = ZERO
    for number, line in enumerate(element["JournalLines"], start=1):
        line_amount = money(line["LineAmount"], f"Line {number}: LineAmount", errors)
        account = store.chart.account(line["AccountCode"])
        if account is None:
            errors.append(invalid_account(line["AccountCode"]))
        total += line_amount
        lines.append(
            {
                "Description": line["Description"],
                "LineAmount": line_amount,
                "AccountCode": line["AccountCode"],
                "AccountID": account.account_id if account else None,
                "TaxType": "NONE",
                "TaxAmount": ZERO,
                "IsBlank": False,
            }
        )
    if total != 0:
        errors.append("The total debits must equal total credits")
    errors.extend(store.locks.refusals(day(element["Date"])))
    if errors:
        raise ElementError(*unique(errors))
    journal: Document = {
        "ManualJournalID": str(uuid.uuid4()),
        "Date": ms_date(day(element["Date"])),
        "Status": element["Status"],
        "LineAmountTypes": element["LineAmountTypes"],
        "Narration": element["Narration"],
        "JournalLines": lines,
        "ShowOnCashBasisReports": True,
        "HasAttachments": False,
        "UpdatedDateUTC": ms_timestamp(store.now_ms()),
    }
    return store.put("manual_journals", journal)
