"""``/metrics`` through the real server: Prometheus' text format, parsed by its own client,
with the values the database and this process's runs give."""

from __future__ import annotations

from datetime import date

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from connector.db import tables
from connector.db.engine import transaction
from connector.db.types import utc_now
from connector.settings import Settings, WebhooksSettings
from connector.sync.cycle import Runtime
from connector.sync.webhooks import deliver
from tests import builders
from tests.api.conftest import Served
from tests.sync.test_webhooks import add
from tests.webhook_receiver import receiving


def _scrape(served: Served) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = served.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def _record(session: Session, record_id: str, state: str, reason: str) -> None:
    session.add(
        tables.CrmRecord(
            system="salesforce",
            object="Opportunity",
            record_id=record_id,
            payload={"Id": record_id},
            payload_hash=record_id,
            state=state,
            reason=reason,
        )
    )


def test_metrics_report_runs_waiting_records_outbox_quota_and_documents(
    served: Served, factory: sessionmaker[Session], settings: Settings
) -> None:
    before = _scrape(served)
    builders.simple_subscription(factory, start=date(2026, 1, 1))  # monthly, 100.00
    runtime = Runtime(factory, settings)
    run = runtime.run("bill", date(2026, 3, 1))
    assert run.ok, run.error
    with transaction(factory) as session:
        _record(session, "006A", "quarantined", "no line items")
        _record(session, "006B", "quarantined", "unknown currency XXX")
        _record(session, "006C", "held", "the close date moved back a year")
        session.add(
            tables.ApiUsage(
                system="salesforce", day=utc_now().date(), calls=42, org_used=900, org_limit=15000
            )
        )

    after = _scrape(served)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert delta("connector_job_runs_total", stage="bill", result="ok") == 1
    assert delta("connector_job_duration_seconds_count", stage="bill") == 1
    assert after[("connector_stage_last_run_ok", (("stage", "bill"),))] == 1
    finished = after[("connector_stage_last_success_timestamp_seconds", (("stage", "bill"),))]
    assert abs(finished - utc_now().timestamp()) < 300
    assert ("connector_stage_last_success_timestamp_seconds", (("stage", "pull"),)) not in after
    assert after[("connector_records_waiting", (("state", "quarantined"),))] == 2
    assert after[("connector_records_waiting", (("state", "held"),))] == 1
    # three monthly invoices (January to March), each an outbox row for the ledger
    assert after[("connector_documents_issued_total", (("kind", "invoice"),))] == 3
    assert after[("connector_outbox_depth", (("state", "waiting"), ("target", "ledger")))] == 3
    assert after[("connector_outbox_depth", (("state", "parked"), ("target", "ledger")))] == 0
    assert after[("connector_api_calls_today", ())] == 42
    assert after[("connector_api_org_used", ())] == 900
    assert after[("connector_api_org_limit", ())] == 15000
    assert after[("connector_instance_active", ())] == 0
    assert ("process_cpu_seconds_total", ()) in after
    assert after[("connector_webhook_deliveries", (("result", "delivered"),))] == 0


def test_metrics_count_webhook_deliveries_by_result(
    served: Served, factory: sessionmaker[Session], settings: Settings
) -> None:
    hook_settings = settings.model_copy(
        update={"webhooks": WebhooksSettings(retry_initial_seconds=0)}
    )
    with receiving() as receiver:
        receiver.secret = add(factory, hook_settings, receiver.url)
        receiver.answers = [200, 503, 503]
        with transaction(factory) as session:
            builders.customer(session, "C1")
            builders.customer(session, "C2")
            builders.customer(session, "C3")
        deliver(factory, hook_settings)
    scraped = _scrape(served)
    assert {
        state: scraped[("connector_webhook_deliveries", (("result", state),))]
        for state in ("pending", "delivered", "failed", "disabled")
    } == {"pending": 2, "delivered": 1, "failed": 0, "disabled": 0}


def test_metrics_say_active_while_the_instance_runs_stages(served: Served) -> None:
    served.instance.activate(lambda stage, as_of: None)
    assert _scrape(served)[("connector_instance_active", ())] == 1


def test_metrics_of_an_empty_database_have_no_runs_and_nothing_waiting(served: Served) -> None:
    scraped = _scrape(served)
    assert scraped[("connector_records_waiting", (("state", "quarantined"),))] == 0
    assert scraped[("connector_api_calls_today", ())] == 0
    assert not [key for key in scraped if key[0] == "connector_stage_last_run_ok"]
    assert not [key for key in scraped if key[0] == "connector_documents_issued_total"]
