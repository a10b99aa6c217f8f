"""What the console's tests show: customers with subscriptions over several months (USD and
EUR, one cancelled), their invoices from a real billing run, Salesforce records waiting with
their reasons, and the API usage of the day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connector.billing.periods import add_months
from connector.db import tables
from connector.db.engine import transaction
from connector.db.types import utc_now
from connector.settings import Settings
from connector.sync import contracts
from connector.sync.cycle import Runtime
from tests import builders

QUARANTINED_NAME = "Renewal <script>alert(1)</script> & co"
QUARANTINED_REASON = "no line items: add products to the opportunity"
HELD_REASON = "the close date moved back a year"


@dataclass(frozen=True)
class ConsoleData:
    today: date
    first_of_month: date
    invoices: list[str]  # every invoice number, oldest first


def waiting_record(session: Session, record_id: str, state: str, reason: str, name: str) -> None:
    session.add(
        tables.CrmRecord(
            system="salesforce",
            object="Opportunity",
            record_id=record_id,
            payload={"Id": record_id, "Name": name},
            payload_hash=record_id,
            modstamp=utc_now(),
            state=state,
            reason=reason,
        )
    )


def build(factory: sessionmaker[Session], settings: Settings) -> ConsoleData:
    today = utc_now().date()
    first = today.replace(day=1)
    with transaction(factory) as session:
        usd = builders.price(session, "SEATS", currency="USD", unit_amount="10.00")
        eur = builders.price(session, "SEATS", currency="EUR", unit_amount="20.00")
        plans = (  # name, country, price, quantity, months ago it started, months ago it ended
            ("Globex Inc", "US", usd, 10, 8, None),
            ("Umbrella Corp", "US", usd, 15, 6, 2),
            ("Initech", "US", usd, 25, 5, None),
            ("Acme GmbH", "DE", eur, 5, 4, None),
        )
        for ref, (name, country, price, quantity, started, ended) in enumerate(plans):
            customer = builders.customer(
                session, f"C{ref}", country=country, currency=price.currency, name=name
            )
            row = builders.subscription(
                session,
                customer,
                [builders.spec(session, price, quantity)],
                start=add_months(first, -started),
                name=f"{name} plan",
            )
            if ended is not None:
                contracts.cancel_subscription(
                    session, row.id, cancel_date=add_months(first, -ended)
                )
    run = Runtime(factory, settings).run("bill", today)
    assert run.ok, run.error
    with transaction(factory) as session:
        waiting_record(
            session, "006000000000001AAA", "quarantined", QUARANTINED_REASON, QUARANTINED_NAME
        )
        waiting_record(session, "006000000000002AAA", "held", HELD_REASON, "Globex expansion")
        session.add(
            tables.ApiUsage(system="salesforce", day=today, calls=42, org_used=900, org_limit=15000)
        )
        numbers = list(
            session.scalars(
                select(tables.Document.number)
                .where(tables.Document.kind == "invoice")
                .order_by(tables.Document.id)
            )
        )
    return ConsoleData(today, first, numbers)
