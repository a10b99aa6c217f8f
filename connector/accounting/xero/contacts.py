"""Customers as Xero contacts, matched by ContactNumber (a prefix and our customer id), never
by name.

What each customer's contact is in Xero is kept in ``accounting_contacts``: its ContactID once
known, and the hash of what was last sent (a changed name or currency is sent again). A create is
marked ``sending`` before it goes; if its answer is lost, the next attempt looks the contact up
by ContactNumber first. A name another contact already has gets the number appended.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from connector.accounting.base import Customer
from connector.accounting.xero import payloads
from connector.accounting.xero.batches import chunks, elements, where_any
from connector.accounting.xero.client import XeroClient, error_text, validation_errors
from connector.db import tables
from connector.db.bulk import upsert
from connector.db.engine import transaction
from connector.db.types import utc_now

TARGET = "xero"
SENDING = "sending"
DONE = "done"
REFUSED = "refused"
NAME_TAKEN = "already assigned to another contact"

State = tuple[str | None, str | None, str, str | None]  # contact id, sent hash, state, error


class XeroContacts:
    def __init__(self, client: XeroClient, factory: sessionmaker[Session], prefix: str) -> None:
        self.client = client
        self.factory = factory
        self.prefix = prefix

    def ids(self, customers: Iterable[Customer]) -> tuple[dict[int, str], dict[int, str]]:
        """ContactID per customer (created or updated as needed), and why Xero refused the
        others."""
        wanted = {customer.id: customer for customer in customers}
        if not wanted:
            return {}, {}
        hashes = {cid: _hash(payloads.contact(c, self.prefix)) for cid, c in wanted.items()}
        with transaction(self.factory) as session:
            contact = tables.AccountingContact
            rows = {
                row.customer_id: (row.external_id, row.sent_hash, row.state)
                for row in session.execute(
                    select(
                        contact.customer_id, contact.external_id, contact.sent_hash, contact.state
                    ).where(contact.target == TARGET, contact.customer_id.in_(wanted))
                )
            }
        known: dict[int, str] = {}
        refused: dict[int, str] = {}
        uncertain, create, update = [], [], []
        for cid, customer in wanted.items():
            external_id, sent_hash, state = rows.get(cid, (None, None, None))
            if external_id and sent_hash == hashes[cid]:
                known[cid] = external_id
            elif external_id:
                update.append((customer, external_id))
            elif state == SENDING:
                uncertain.append(customer)
            else:
                create.append(customer)
        if uncertain:  # an earlier create went unanswered: find it before creating again
            found = self._find(uncertain)
            for customer in uncertain:
                if customer.id in found:
                    update.append((customer, found[customer.id]))
                else:
                    create.append(customer)
        if create:
            self._store({c.id: (None, None, SENDING, None) for c in create})
        for part in chunks([(c, None) for c in create]):
            self._send("PUT", part, hashes, known, refused)
        for part in chunks(update):
            self._send("POST", part, hashes, known, refused)
        return known, refused

    def _find(self, customers: Sequence[Customer]) -> dict[int, str]:
        by_number = {payloads.contact_number(c.id, self.prefix): c.id for c in customers}
        found: dict[int, str] = {}
        for part in chunks(list(by_number)):
            body = self.client.get("Contacts", {"where": where_any("ContactNumber", part)})
            for element in body.get("Contacts") or []:
                cid = by_number.get(str(element.get("ContactNumber")))
                if cid is not None and element.get("ContactStatus", "ACTIVE") != "ARCHIVED":
                    found[cid] = str(element["ContactID"])
        return found

    def _send(
        self,
        method: str,
        pairs: Sequence[tuple[Customer, str | None]],
        hashes: dict[int, str],
        known: dict[int, str],
        refused: dict[int, str],
    ) -> None:
        """Create (PUT) or update (POST) these contacts; a name already taken is sent again
        with the contact's number appended."""
        renamed: list[tuple[Customer, str | None]] = []
        for attempt, batch in (("as named", list(pairs)), ("renamed", renamed)):
            if not batch:
                continue
            bodies = []
            for customer, contact_id in batch:
                number = payloads.contact_number(customer.id, self.prefix)
                name = f"{customer.name} ({number})" if attempt == "renamed" else None
                body = payloads.contact(customer, self.prefix, name)
                if contact_id:
                    body["ContactID"] = contact_id
                bodies.append(body)
            keys = [f"customer:{c.id}:{hashes[c.id][:12]}" for c, _ in batch]
            request = {"Contacts": bodies}
            answer = self.client.write(
                method, "Contacts", request, payloads.batch_key(f"{method} Contacts", keys, request)
            )
            states: dict[int, State] = {}
            for (customer, contact_id), element in zip(
                batch, elements(answer, "Contacts", len(batch)), strict=True
            ):
                errors = validation_errors(element)
                if not errors and element.get("ContactID"):
                    known[customer.id] = str(element["ContactID"])
                    states[customer.id] = (known[customer.id], hashes[customer.id], DONE, None)
                elif attempt == "as named" and any(NAME_TAKEN in error for error in errors):
                    renamed.append((customer, contact_id))
                else:
                    why = "; ".join(errors) or error_text(element)
                    refused[customer.id] = f"Xero refused the contact {customer.name!r}: {why}"
                    states[customer.id] = (contact_id, None, REFUSED, why)
            self._store(states)

    def _store(self, states: dict[int, State]) -> None:
        if not states:
            return
        table, now = tables.table_of(tables.AccountingContact), utc_now()
        with transaction(self.factory) as session:
            upsert(  # an id once known is kept
                session,
                table,
                [
                    {
                        "target": TARGET,
                        "customer_id": cid,
                        "external_id": external_id or None,
                        "sent_hash": sent_hash,
                        "state": state,
                        "error": error,
                        "updated_at": now,
                    }
                    for cid, (external_id, sent_hash, state, error) in states.items()
                ],
                keys=["target", "customer_id"],
                changes=lambda new: {
                    "external_id": func.coalesce(new.external_id, table.c.external_id),
                    "sent_hash": new.sent_hash,
                    "state": new.state,
                    "error": new.error,
                    "updated_at": new.updated_at,
                },
            )


def _hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
