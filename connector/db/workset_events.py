"""The webhook events of what a :class:`~connector.db.workset.Workset` wrote, in one statement
with its writes: ``customer.created`` for each new customer; ``subscription.created``,
``subscription.updated`` or ``subscription.cancelled`` (a cancel date set where there was none,
or a subscription discarded because its deal was withdrawn) for each subscription made,
changed or dropped. Nothing is read when the batch changed none of them, nor built when no
webhook endpoint exists."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from connector.db import webhook_events
from connector.db.workset_rows import CustomerRow, Held, SubscriptionRow
from connector.webhooks import events as names
from connector.webhooks.events import Event
from connector.webhooks.payloads import customer_event, subscription_event

if TYPE_CHECKING:
    from connector.db.workset import Workset

Real = Callable[[int | None], int | None]


def _subscription(
    event_type: str, row: SubscriptionRow, real: Real, external: str | None, why: str
) -> Event:
    subscription_id, contract_id, customer_id = (
        real(row.id),
        real(row.contract_id),
        real(row.customer_id),
    )
    assert subscription_id is not None and contract_id is not None and customer_id is not None
    return subscription_event(
        event_type,
        row,
        subscription_id=subscription_id,
        external_id=external,
        customer_id=customer_id,
        contract_id=contract_id,
        discriminator=why,
    )


def emit_changes(
    work: Workset, real: Real, new_customers: list[CustomerRow], alive: dict[int, Held]
) -> None:
    """Write the events of the batch's changes (see the module's description)."""
    changed = [
        (held.row, work.stored_subscriptions.get(i))
        for i, held in alive.items()
        if i < 0 or held.row != work.stored_subscriptions[i].row
    ]
    gone = [
        held.row for i, held in work.stored_subscriptions.items() if work.subscriptions[i] is None
    ]
    if not (new_customers or changed or gone) or not webhook_events.active(work.session):
        return
    customer_external = {i: key for key, i in work.customer_ids.items() if i is not None}
    subscription_external = {i: key for key, i in work.subscription_ids.items() if i is not None}
    found: list[Event] = []
    for customer in new_customers:
        customer_id = real(customer.id)
        assert customer_id is not None
        found.append(
            customer_event(
                customer_id,
                customer_external.get(customer.id),
                customer.name,
                customer.country,
                customer.currency,
            )
        )
    for row, before in changed:
        external = subscription_external.get(row.id)
        if before is None:
            found.append(_subscription(names.SUBSCRIPTION_CREATED, row, real, external, ""))
        elif before.row.cancel_date is None and row.cancel_date is not None:
            why = f"{row.revision}"
            found.append(_subscription(names.SUBSCRIPTION_CANCELLED, row, real, external, why))
        else:
            why = f"{row.revision}"
            found.append(_subscription(names.SUBSCRIPTION_UPDATED, row, real, external, why))
    for row in gone:
        found.append(_subscription(names.SUBSCRIPTION_CANCELLED, row, real, None, "discarded"))
    webhook_events.emit(work.session, found)
