"""The billing job: bill everything due as of today."""

from __future__ import annotations

from datetime import UTC, date, datetime

from connector.db.engine import make_engine, session_factory
from connector.db.migrate import ensure_schema
from connector.settings import Settings
from connector.sync.billing_run import BillingRunResult, run_billing


def billing_job(settings: Settings, as_of: date | None = None) -> BillingRunResult:
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        ensure_schema(engine)
        return run_billing(session_factory(engine), settings, as_of or datetime.now(UTC).date())
    finally:
        engine.dispose()
