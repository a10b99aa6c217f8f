"""``GET /metrics`` in Prometheus' text format.

Two parts: what this process counted (:mod:`connector.instruments`, and the client's process
metrics: CPU, memory, open files), and what the database says, read at each scrape by
:class:`DatabaseCollector` in one read-only transaction of a few indexed statements, so every
replica reports the same state: the last success of each stage, records waiting by state,
the outbox depth per target, the Salesforce API calls today and the org's limit, documents
issued by kind, webhook deliveries by result, and the instance's role."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from connector.api.instance import Instance
from connector.db import outbox, staging, tables
from connector.db.engine import reading
from connector.db.types import utc_now
from connector.sync import status, webhook_fanout
from connector.sync.cycle import STAGES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
router = APIRouter(tags=["health"])


class DatabaseCollector(Collector):
    """The connector's state as the database holds it, read when scraped."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance

    def collect(self) -> Iterator[Metric]:
        settings = self.instance.settings
        role = GaugeMetricFamily(
            "connector_instance_active",
            "1 while this instance holds the database's actor lock and runs the stages.",
        )
        role.add_metric([], 1 if self.instance.role == "active" else 0)
        yield role
        with reading(self.instance.factory) as session:
            last = GaugeMetricFamily(
                "connector_stage_last_success_timestamp_seconds",
                "When the last successful run of each stage ended (Unix time).",
                labels=["stage"],
            )
            last_ok = GaugeMetricFamily(
                "connector_stage_last_run_ok",
                "1 when the latest run of each stage succeeded, 0 when it failed.",
                labels=["stage"],
            )
            for stage in STAGES:
                finished = session.scalar(
                    select(tables.JobRun.finished_at)
                    .where(tables.JobRun.job == stage, tables.JobRun.ok.is_(True))
                    .order_by(tables.JobRun.started_at.desc(), tables.JobRun.id.desc())
                    .limit(1)
                )
                if finished is not None:
                    last.add_metric([stage], finished.timestamp())
            for stage, run in status.last_runs(session, STAGES).items():
                if run is not None:
                    last_ok.add_metric([stage], 1 if run.ok else 0)
            yield last
            yield last_ok

            waiting = GaugeMetricFamily(
                "connector_records_waiting",
                "Salesforce records waiting for a person, by state (quarantined: a fix; held: "
                "a review).",
                labels=["state"],
            )
            counts = staging.waiting_counts(session, status.SYSTEM)
            for state in (staging.QUARANTINED, staging.HELD):
                waiting.add_metric([state], counts.get(state, 0))
            yield waiting

            depth = GaugeMetricFamily(
                "connector_outbox_depth",
                "Documents waiting to reach each accounting target, and those parked there.",
                labels=["target", "state"],
            )
            for state_name, count in outbox.depth(session, settings.accounting.target).items():
                depth.add_metric([settings.accounting.target, state_name], count)
            yield depth

            today = utc_now().date()
            usage = session.get(tables.ApiUsage, (status.SYSTEM, today))
            calls = GaugeMetricFamily(
                "connector_api_calls_today",
                "Salesforce API calls the connector made today (UTC).",
            )
            calls.add_metric([], usage.calls if usage else 0)
            yield calls
            if usage is not None and usage.org_limit is not None:
                org_used = GaugeMetricFamily(
                    "connector_api_org_used",
                    "The org's API requests used in the last 24 hours, as Salesforce last said.",
                )
                org_used.add_metric([], usage.org_used or 0)
                yield org_used
                org_limit = GaugeMetricFamily(
                    "connector_api_org_limit", "The org's daily API request limit."
                )
                org_limit.add_metric([], usage.org_limit)
                yield org_limit

            issued = CounterMetricFamily(
                "connector_documents_issued",
                "Documents issued, by kind (invoice, credit_note), from their number series.",
                labels=["kind"],
            )
            totals: dict[str, int] = {}
            for name, next_value in session.execute(
                select(tables.NumberSeries.name, tables.NumberSeries.next_value)
            ):
                kind = name.split(":", 1)[0]
                totals[kind] = totals.get(kind, 0) + next_value - 1
            for kind, total in sorted(totals.items()):
                issued.add_metric([kind], total)
            yield issued

            deliveries = GaugeMetricFamily(
                "connector_webhook_deliveries",
                "Webhook deliveries by result: pending (to try, or retried), delivered, failed "
                "(refused until the event's max age), disabled (the endpoint was).",
                labels=["result"],
            )
            by_state = dict(
                session.execute(
                    select(tables.WebhookDelivery.state, func.count()).group_by(
                        tables.WebhookDelivery.state
                    )
                ).all()
            )
            for state_name in webhook_fanout.STATES:
                deliveries.add_metric([state_name], by_state.get(state_name, 0))
            yield deliveries


@router.get(
    "/metrics",
    summary="Metrics in Prometheus' text format",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "The metrics."}},
)
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics_registry
    body = generate_latest(REGISTRY) + generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE)


def database_registry(instance: Instance) -> CollectorRegistry:
    """A registry of ``instance``'s database state, kept by its app."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(instance))
    return registry
