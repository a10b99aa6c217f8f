"""Users and activities, as Salesforce derives them.

- The org has one user from the start: the integration user every session acts as
  (:data:`sandbox.salesforce.auth.USER_ID`). A user's Name is its first and last names.
- An Account's and a Task's OwnerId default to that user.
- A Task's AccountId follows its WhatId: the account it names, or the account of the record it
  names (its AccountId, or its lookup to Account such as Account__c); without a WhatId, the
  account of the contact its WhoId names. IsClosed is true once its Status is Completed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.salesforce.auth import USER_ID

if TYPE_CHECKING:
    from sandbox.salesforce.store import Org, Record

INTEGRATION_USER = {
    "Username": "integration@sandbox.example.com",
    "FirstName": "Integration",
    "LastName": "User",
    "Email": "integration@sandbox.example.com",
}
CLOSED_STATUSES = frozenset({"Completed"})


def initialize(org: Org) -> None:
    """Create the integration user in a new org (its id is the sessions' user id)."""
    if org.schema.get("User") is not None and org.meta("integration_user") is None:
        user = org.create("User", INTEGRATION_USER)
        assert user == USER_ID, "the integration user is the org's first user"
        org.set_meta("integration_user", user)


def user(org: Org, record: Record, old: Record | None) -> None:
    record["Name"] = " ".join(part for part in (record["FirstName"], record["LastName"]) if part)


def owned(org: Org, record: Record, old: Record | None) -> None:
    """A new record is owned by the integration user unless it names its owner (an update
    leaves the owner as it is, as Salesforce does)."""
    if old is None and record.get("OwnerId") is None:
        record["OwnerId"] = org.meta("integration_user") or USER_ID


def _account_of(org: Org, record_id: Any) -> Any:
    if not record_id:
        return None
    for obj in org.schema.objects.values():
        if obj.history_of is None and str(record_id).startswith(obj.key_prefix):
            if obj.name == "Account":
                return record_id
            row = org.row(obj, str(record_id))
            if row is None:
                return None
            for spec in obj.fields.values():
                if spec.spec.targets == ("Account",) and spec.name != "OwnerId":
                    return row.get(spec.name)
            return None
    return None


def task(org: Org, record: Record, old: Record | None) -> None:
    owned(org, record, old)
    record["AccountId"] = _account_of(org, record.get("WhatId")) or (
        _account_of(org, record.get("WhoId")) if not record.get("WhatId") else None
    )
    record["IsClosed"] = record.get("Status") in CLOSED_STATUSES


RULES = {"User": user, "Account": owned, "Task": task}
