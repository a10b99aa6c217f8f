"""Contacts: create (PUT) and create-or-update (POST), with Xero's uniqueness rules."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sandbox.xero.dates import ms_timestamp
from sandbox.xero.errors import ElementError
from sandbox.xero.rules import NOT_FOUND, currency_not_enabled, unique

if TYPE_CHECKING:
    from sandbox.xero.store import Document, XeroStore

UPDATABLE = ("Name", "ContactNumber", "DefaultCurrency", "TaxNumber", "Addresses")


def name_taken(name: str) -> str:
    return (
        f"The contact name {name} is already assigned to another contact. "
        "The contact name must be unique across all active contacts."
    )


def number_taken(number: str) -> str:
    return (
        f"The contact number {number} is already assigned to another contact. "
        "The contact number must be unique across all active contacts."
    )


def create_contact(store: XeroStore, element: dict[str, Any]) -> Document:
    """PUT /Contacts: always a new contact (a ContactID is refused)."""
    if "ContactID" in element:
        raise ElementError("A ContactID cannot be given when creating a contact: use POST.")
    return _save(store, None, element)


def save_contact(store: XeroStore, element: dict[str, Any]) -> Document:
    """POST /Contacts: update the contact a ContactID names, else create one."""
    contact_id = element.get("ContactID")
    if contact_id is None:
        return _save(store, None, element)
    existing = store.contacts.get(contact_id)
    if existing is None:
        raise ElementError(NOT_FOUND)
    return _save(store, existing, element)


def _save(store: XeroStore, existing: Document | None, element: dict[str, Any]) -> Document:
    errors: list[str] = []
    own_id = existing["ContactID"] if existing else None
    name = element.get("Name")
    if name is not None:
        holder = store.lookup("contact_name", name)
        if holder is not None and holder["ContactID"] != own_id:
            errors.append(name_taken(name))
    number = element.get("ContactNumber")
    if number is not None:
        holder = store.lookup("contact_number", number)
        if holder is not None and holder["ContactID"] != own_id:
            errors.append(number_taken(number))
    currency = element.get("DefaultCurrency")
    if currency is not None and currency not in store.chart.currencies:
        errors.append(currency_not_enabled(currency))
    if errors:
        raise ElementError(*unique(errors))
    if existing is None:
        contact: Document = {
            "ContactID": str(uuid.uuid4()),
            "ContactStatus": "ACTIVE",
            "Addresses": [],
            "Phones": [],
            "ContactGroups": [],
            "ContactPersons": [],
            "HasAttachments": False,
        }
    else:
        contact = dict(existing)
    for field in UPDATABLE:
        if field in element:
            contact[field] = element[field]
    contact["UpdatedDateUTC"] = ms_timestamp(store.now_ms())
    return store.put("contacts", contact)
