"""The pull job: bring accounts and deals changed in Salesforce into the billing core."""

from __future__ import annotations

from datetime import date

from connector.db.engine import make_engine, session_factory
from connector.db.migrate import ensure_schema
from connector.settings import Settings
from connector.sync.crm_pull import PullResult, pull


def pull_job(settings: Settings, as_of: date | None = None) -> PullResult:
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        ensure_schema(engine)
        return pull(session_factory(engine), settings, as_of=as_of)
    finally:
        engine.dispose()
