from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connector.settings import SalesforceSettings, Settings
from connector.sync.cycle import Runtime
from jobs.pull import pull
from sandbox.salesforce.server import Sandbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.sandbox(seed="demo")
def test_pull_job_pulls_the_demo_org_once(
    salesforce_sandbox: Sandbox, settings: Settings, factory: sessionmaker[Session]
) -> None:
    salesforce = SalesforceSettings(
        instance_url=salesforce_sandbox.instance_url,
        session_id=salesforce_sandbox.session_id,
        ca_file=str(salesforce_sandbox.ca_file),
        mapping_file=str(ROOT / "mappings" / "salesforce.yaml"),
    )
    configured = settings.model_copy(update={"salesforce": salesforce})

    runtime = Runtime(factory, configured)
    first_run = pull(runtime, date(2026, 3, 1))
    again_run = pull(runtime, date(2026, 3, 1))
    first, again = first_run.result, again_run.result

    assert first.fetched == {"Account": 50, "Opportunity": 200}
    assert (first.applied, first.quarantined, first.held) == (160, 3, 0)
    assert first.applied + first.ignored + first.quarantined == 250
    assert first.api_calls == 1  # one Composite call carries the first page of each query
    assert (again.applied, again.unchanged, again.held) == (0, 247, 0)
    assert (first_run.api_calls, again_run.api_calls, again.api_calls) == (1, 1, 1)
