"""Changes to subscriptions in a :class:`~connector.db.workset.Workset`, made as
:mod:`connector.sync.contracts` makes them in storage (what each change sets is computed there,
once): a new item set from a date, new terms or a cancellation, each recorded as an amendment
and applied once per reference; a new start, frequency or trial while nothing is invoiced; a
subscription dropped while nothing is billed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from connector.billing import subscriptions as domain
from connector.billing.periods import Frequency
from connector.db.workset import Workset
from connector.errors import BillingError
from connector.sync import contracts


def discard(work: Workset, subscription_id: int) -> None:
    """Remove a subscription never billed, with its contract, items and links (the deal behind
    it was withdrawn); once anything is billed it stays, and must be cancelled."""
    if work.first_document(subscription_id) is not None or work.charged(subscription_id):
        raise BillingError(f"subscription {subscription_id} has been billed; cancel it instead")
    work.discard(subscription_id)


def _applied(work: Workset, subscription_id: int, reference: str | None) -> bool:
    return reference is not None and any(
        row.reference == reference for row in work.amendments(subscription_id)
    )


def _record_change(  # noqa: PLR0917 - the change and how it is recorded
    work: Workset,
    subscription_id: int,
    after: domain.Subscription,
    kind: str,
    effective: date,
    reconcile_from: date | None,
    reference: str | None,
) -> None:
    values = contracts.change_values(work.row(subscription_id), after, reconcile_from)
    work.change_subscription(subscription_id, after, values, (kind, effective, reference))


def amend(
    work: Workset,
    subscription_id: int,
    *,
    effective: date,
    items: Sequence[domain.ItemSpec],
    reference: str,
) -> None:
    """Make ``items`` the subscription's whole item set from ``effective`` (once per
    ``reference``)."""
    if _applied(work, subscription_id, reference):
        return
    after, reconcile_from = contracts.amended(work.loaded(subscription_id), effective, items)
    _record_change(work, subscription_id, after, "items", effective, reconcile_from, reference)


def change_terms(
    work: Workset,
    subscription_id: int,
    *,
    kind: str,
    reference: str,
    effective: date | None,
    **changes: object,
) -> None:
    """New terms (a cancellation, a term, renewal), once per ``reference``; nothing when the
    terms stay."""
    if _applied(work, subscription_id, reference):
        return
    change = contracts.terms_change(work.loaded(subscription_id), effective, **changes)
    if change is not None:
        after, effective_date, reconcile_from = change
        _record_change(
            work, subscription_id, after, kind, effective_date, reconcile_from, reference
        )


def reschedule(
    work: Workset, subscription_id: int, *, start_date: date, frequency: str, trial_days: int
) -> None:
    """A new start, frequency or trial; refused once the subscription was invoiced."""
    before = work.loaded(subscription_id)
    row = work.row(subscription_id)
    new = (start_date, Frequency.parse(frequency).value, trial_days)
    if new == (row.start_date, row.frequency, row.trial_days):
        return
    if work.first_document(subscription_id) is not None:
        contracts.refuse_billed_reschedule(subscription_id)
    after = before.moved_to(
        start_date=start_date, frequency=Frequency(new[1]), trial_days=trial_days
    )
    work.change_subscription(subscription_id, after, contracts.rescheduled_values(row, after))
