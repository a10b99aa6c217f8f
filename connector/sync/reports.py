"""Reports over the billing core: subscription metrics and document listings."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.metrics import CustomerRevenue, Metrics, accumulate, metrics_from
from connector.billing.money import currency
from connector.billing.periods import add_months
from connector.billing.subscriptions import Subscription
from connector.db import tables
from connector.db.catalog import PriceCache
from connector.db.subscriptions import load_subscriptions
from connector.errors import InvalidInputError

BATCH = 2000


def iter_subscriptions(session: Session, batch: int = BATCH) -> Iterator[Subscription]:
    """Every subscription as a domain object, loaded a batch at a time."""
    cache = PriceCache()
    after = 0
    while True:
        rows = list(
            session.scalars(
                select(tables.Subscription)
                .where(tables.Subscription.id > after)
                .order_by(tables.Subscription.id)
                .limit(batch)
            )
        )
        if not rows:
            return
        yield from load_subscriptions(session, rows, cache).values()
        after = rows[-1].id
        session.expunge_all()


def subscription_metrics(
    factory: sessionmaker[Session], as_of: date, since: date | None = None
) -> list[Metrics]:
    """Metrics per currency on ``as_of`` with movements since ``since`` (default one month
    before); memory stays flat however many subscriptions there are."""
    since = since if since is not None else add_months(as_of, -1)
    if since >= as_of:
        raise InvalidInputError(f"the movement window must start before {as_of}, not on {since}")
    revenues: dict[tuple[str, int | None], CustomerRevenue] = {}
    with factory() as session:
        accumulate(revenues, iter_subscriptions(session), since, as_of)
    return _per_currency(revenues, as_of, since)


def windows_metrics(session: Session, windows: Sequence[tuple[date, date]]) -> list[list[Metrics]]:
    """Metrics per currency for each window (``since``, ``as_of``), in the order given, reading
    every subscription once for all of them (a batch at a time: memory stays flat)."""
    for since, as_of in windows:
        if since >= as_of:
            raise InvalidInputError(f"the movement window must start before {as_of}, not {since}")
    revenues = _window_revenues(session, windows)
    return [
        _per_currency(found, as_of, since)
        for (since, as_of), found in zip(windows, revenues, strict=True)
    ]


def _window_revenues(
    session: Session, windows: Sequence[tuple[date, date]]
) -> list[dict[tuple[str, int | None], CustomerRevenue]]:
    """Each customer's revenue in each window, every subscription read once for all of them."""
    revenues: list[dict[tuple[str, int | None], CustomerRevenue]] = [{} for _ in windows]
    for subscription in iter_subscriptions(session):
        for (since, as_of), found in zip(windows, revenues, strict=True):
            accumulate(found, (subscription,), since, as_of)
    return revenues


def _per_currency(
    revenues: dict[tuple[str, int | None], CustomerRevenue], as_of: date, since: date
) -> list[Metrics]:
    by_currency: dict[str, list[CustomerRevenue]] = {}
    for (code, _), revenue in revenues.items():
        by_currency.setdefault(code, []).append(revenue)
    return [
        metrics_from(values, currency(code), as_of, since)
        for code, values in sorted(by_currency.items())
    ]


def month_ends(as_of: date, months: int) -> list[date]:
    """The ends of ``months`` monthly windows, the last one ``as_of``'s month to ``as_of``,
    after the day before the first: the last day of each of the ``months`` months before
    ``as_of``'s, then ``as_of`` (``months + 1`` dates, oldest first)."""
    if months < 1:
        raise InvalidInputError(f"give at least one month, not {months}")
    first_of_month = as_of.replace(day=1)
    ends = [
        add_months(first_of_month, -back) - timedelta(days=1) for back in range(months - 1, -1, -1)
    ]
    return [*ends, as_of]


@dataclass(frozen=True)
class MonthlyMetrics:
    """Metrics of one currency at the end of each month (the last one on the as-of date),
    each with the movements of its month."""

    code: str
    months: list[Metrics]


def monthly_metrics(session: Session, as_of: date, months: int = 12) -> list[MonthlyMetrics]:
    """Metrics per currency for each of the ``months`` months up to ``as_of`` (oldest first),
    the subscriptions read once, a batch at a time."""
    windows = list(pairwise(month_ends(as_of, months)))
    revenues = _window_revenues(session, windows)
    codes = sorted({code for window in revenues for code, _ in window})
    return [
        MonthlyMetrics(
            code,
            [
                metrics_from(
                    [r for (c, _), r in window.items() if c == code], currency(code), end, since
                )
                for (since, end), window in zip(windows, revenues, strict=True)
            ],
        )
        for code in codes
    ]


@dataclass(frozen=True)
class DocumentView:
    document: tables.Document
    customer: str
    lines: list[tables.DocumentLine]
    taxes: list[tables.DocumentTax]
    credited_invoice: str | None


def list_documents(
    session: Session,
    *,
    customer_id: int | None = None,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    before: int | None = None,
) -> list[tuple[tables.Document, str]]:
    """The most recent documents (newest first), after the document ``before`` (its id: the
    last of the page before) when given."""
    query = (
        select(tables.Document, tables.Customer.name)
        .join(tables.Customer, tables.Customer.id == tables.Document.customer_id)
        .order_by(tables.Document.id.desc())
        .limit(limit)
    )
    if customer_id is not None:
        query = query.where(tables.Document.customer_id == customer_id)
    if status is not None:
        query = query.where(tables.Document.status == status)
    if kind is not None:
        query = query.where(tables.Document.kind == kind)
    if before is not None:
        query = query.where(tables.Document.id < before)
    return [(doc, name) for doc, name in session.execute(query)]


def billed_customers(session: Session, limit: int = 500) -> list[tuple[int, str]]:
    """(id, name) of customers with documents, by name: what a list of documents filters by."""
    has_documents = select(tables.Document.id).where(
        tables.Document.customer_id == tables.Customer.id
    )
    return [
        (customer_id, name)
        for customer_id, name in session.execute(
            select(tables.Customer.id, tables.Customer.name)
            .where(has_documents.exists())
            .order_by(tables.Customer.name, tables.Customer.id)
            .limit(limit)
        )
    ]


def document_view(session: Session, document: tables.Document) -> DocumentView:
    customer = session.get_one(tables.Customer, document.customer_id)
    lines = list(
        session.scalars(
            select(tables.DocumentLine)
            .where(tables.DocumentLine.document_id == document.id)
            .order_by(tables.DocumentLine.id)
        )
    )
    taxes = list(
        session.scalars(
            select(tables.DocumentTax)
            .where(tables.DocumentTax.document_id == document.id)
            .order_by(tables.DocumentTax.id)  # written in rate order
        )
    )
    credited = (
        session.get_one(tables.Document, document.invoice_id).number
        if document.invoice_id is not None
        else None
    )
    return DocumentView(document, customer.name, lines, taxes, credited)
