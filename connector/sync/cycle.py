"""The stages of the connector, run one at a time (a scheduled job) or all in order (a cycle):
pull from Salesforce, read the payments recorded in accounting, bill, close revenue, push to
accounting, record the collections steps open invoices reach (dunning), render new documents
as PDF and e-mail them and the reminders due to customers (send), deliver webhook events
(webhooks), write back to Salesforce.
Payments are read before billing, so that a credit note on an invoice already paid in
accounting is not applied to it here (it is the customer's credit there and here alike).

A :class:`Runtime` holds what the stages share: the database, the settings, one Salesforce
client (one session, one API budget) and the accounting target, each made when first needed.
Every run of a stage is recorded (``job_runs``: start, end, result, error) and logged as one
structured line (JSON: job, as-of, ok, seconds, API calls, counts, error). A stage that fails
does not stop the ones after it; a configuration error stops the cycle.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connector.accounting.base import AccountingTarget
from connector.crm.client import SalesforceClient
from connector.crm.login import check_settings
from connector.db import staging, tables
from connector.db.engine import transaction
from connector.db.types import utc_now
from connector.email.smtp import check as check_mail
from connector.errors import ConfigError, ConnectorError
from connector.instruments import observe_run
from connector.settings import Settings, mapping_path
from connector.sync import crm_pull, push, rendering, writeback
from connector.sync.billing_run import run_billing
from connector.sync.dunning import run_dunning
from connector.sync.mapping import load_mapping
from connector.sync.revenue_close import close_revenue
from connector.sync.sending import SendResult, send_messages
from connector.sync.stopping import StopRequest
from connector.sync.webhooks import deliver as deliver_webhooks
from connector.sync.writeback_accruing import AccruingOptions
from connector.sync.writeback_dunning import TaskOptions

log = logging.getLogger(__name__)
job_log = logging.getLogger("connector.jobs")

# Webhooks go out after every stage that writes events (the pull, payments, billing, dunning)
# and before the write-back, which writes none: its Salesforce calls do not delay them.
STAGES = (
    "pull",
    "payments",
    "bill",
    "revenue",
    "push",
    "dunning",
    "send",
    "webhooks",
    "writeback",
)


@dataclass
class Runtime:
    """What the stages share; ``stop`` ends the stage in hand after its current batch."""

    factory: sessionmaker[Session]
    settings: Settings
    stop: StopRequest = field(default_factory=StopRequest)
    # held by each scheduled job and each stage asked for through the API: one at a time
    run_lock: threading.Lock = field(default_factory=threading.Lock)
    _client: SalesforceClient | None = None
    _target: AccountingTarget | None = None

    @property
    def client(self) -> SalesforceClient:
        if self._client is None:
            budget = crm_pull.load_budget(self.factory, self.settings, utc_now().date())
            self._client = SalesforceClient(self.settings.salesforce, budget)
        return self._client

    @property
    def target(self) -> AccountingTarget:
        if self._target is None:
            self._target = push.make_target(self.settings, self.factory)
        return self._target

    def check_target(self) -> None:
        """Check the accounting target's configuration against the target itself (a Xero
        TaxType the organisation lacks), so that a cycle stops before it does anything: a
        configuration error is raised; a target out of reach is left to the push stage."""
        push.check_target(self.target)

    def check(self) -> None:
        """Check every mapping file and every target's settings, so that a cycle (and
        ``connector run``) stops with a configuration error before any stage does anything:
        the Salesforce mapping and login settings, then the chart of accounts and the
        accounting target's settings (against the target itself: Xero's tax rates), and the
        e-mail settings when sending is enabled. Nothing is sent anywhere but the target's own
        check (a read)."""
        load_mapping(mapping_path(self.settings.salesforce.mapping_file))
        if self._client is None:
            check_settings(self.settings.salesforce)
        self.check_target()
        if self.settings.email.enabled:
            check_mail(self.settings.email)

    def task_options(self) -> TaskOptions:
        """How the write-back makes the Tasks of collections steps."""
        dunning = self.settings.dunning
        mapping = load_mapping(mapping_path(self.settings.salesforce.mapping_file)).mapping
        return TaskOptions(dunning.task_priority, dunning.task_due_days, mapping.customer.owner)

    def _calls(self) -> int:
        """API calls made so far: Salesforce's, and the accounting target's when remote."""
        crm = self._client.calls if self._client is not None else 0
        return crm + int(getattr(self._target, "calls", 0))

    def run(self, job: str, as_of: date | None = None) -> JobRun:
        """Run the stage ``job`` as of ``as_of`` (default: today, UTC), record and log it; a
        configuration error is recorded and raised, every other error of ours recorded and
        returned."""
        as_of = as_of or utc_now().date()
        work = _WORK[job]
        started, began, calls = utc_now(), time.perf_counter(), self._calls()
        run = JobRun(job, as_of)
        try:
            run.result = work(self, as_of)
        except ConfigError as error:
            run.error = f"configuration error: {error}"
            raise
        except ConnectorError as error:
            run.error = str(error)
        except Exception as error:  # a bug: recorded as a failed run, then raised
            run.error = f"unexpected error: {error!r}"
            raise
        finally:
            run.seconds = time.perf_counter() - began
            run.api_calls = self._calls() - calls
            self._record(run, started)
        return run

    def _record(self, run: JobRun, started: Any) -> None:
        with transaction(self.factory) as session:
            session.add(
                tables.JobRun(
                    job=run.job,
                    started_at=started,
                    finished_at=utc_now(),
                    ok=run.ok,
                    summary=run.summary(),
                    error=run.error,
                )
            )
            if self._client is not None:  # the write-back's calls count too
                budget = self._client.budget
                staging.save_usage(
                    session,
                    crm_pull.SYSTEM,
                    budget.day,
                    budget.spent,
                    (budget.org_used, budget.org_limit),
                )
        observe_run(run.job, run.ok, run.seconds)
        fields = run.log_record()
        job_log.log(
            logging.INFO if run.ok else logging.ERROR,
            "%s",
            json.dumps(fields, default=str),
            extra={"fields": fields},
        )


@dataclass
class JobRun:
    """One run of a stage: its result (with ``to_dict``) or its error."""

    job: str
    as_of: date
    result: Any = None
    error: str | None = None
    seconds: float = 0.0
    api_calls: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> dict[str, Any] | None:
        to_dict = getattr(self.result, "to_dict", None)
        summary: dict[str, Any] | None = to_dict() if callable(to_dict) else None
        return summary

    def log_record(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "as_of": self.as_of.isoformat(),
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "api_calls": self.api_calls,
            "counts": self.summary(),
            "error": self.error,
        }


@dataclass
class SendStageResult:
    """The send stage: the PDFs rendered, then the messages e-mailed."""

    rendered: rendering.RenderResult
    sent: SendResult

    def to_dict(self) -> dict[str, Any]:
        return {**self.rendered.to_dict(), **self.sent.to_dict()}


def send_stage(runtime: Runtime) -> SendStageResult:
    """Render the new document versions as PDF, then e-mail the messages due (with them)."""
    rendered = rendering.render_new(runtime)
    return SendStageResult(
        rendered, send_messages(runtime.factory, runtime.settings, runtime.stop.checkpoint)
    )


_WORK: dict[str, Callable[[Runtime, date], Any]] = {
    "pull": lambda rt, as_of: crm_pull.pull(
        rt.factory,
        rt.settings,
        as_of=as_of,
        client=rt.client,
        on_page=lambda *_: rt.stop.checkpoint(),
    ),
    "bill": lambda rt, as_of: run_billing(
        rt.factory, rt.settings, as_of, progress=lambda _: rt.stop.checkpoint()
    ),
    "revenue": lambda rt, as_of: close_revenue(rt.factory, as_of, rt.stop.checkpoint),
    "push": lambda rt, _: push.push(rt.factory, rt.settings, rt.target, rt.stop.checkpoint),
    "payments": lambda rt, _: push.read_payments(rt.factory, rt.settings, rt.target),
    "dunning": lambda rt, as_of: run_dunning(
        rt.factory, rt.settings.dunning, as_of, rt.stop.checkpoint
    ),
    "send": lambda rt, _: send_stage(rt),
    "webhooks": lambda rt, _: deliver_webhooks(rt.factory, rt.settings, rt.stop.checkpoint),
    "writeback": lambda rt, as_of: writeback.write_back(
        rt.factory,
        rt.client,
        as_of,
        rt.stop.checkpoint,
        tasks=rt.task_options(),
        attach_documents=rt.settings.salesforce.attach_documents,
        usage=AccruingOptions.of(rt.settings, utc_now()),
    ),
}
assert set(_WORK) == set(STAGES)


@dataclass
class CycleResult:
    as_of: date
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    api_calls: int = 0

    @property
    def clean(self) -> bool:
        """Everything synced: no stage failed, nothing quarantined, failed or parked."""
        if self.errors:
            return False
        pulled = self.stages.get("pull", {})
        billed = self.stages.get("bill", {})
        pushed = self.stages.get("push", {})
        written = self.stages.get("writeback", {})
        sent = self.stages.get("send", {})
        return not (
            pulled.get("quarantined")
            or pulled.get("held")
            or pulled.get("stopped")
            or billed.get("failed")
            or pushed.get("parked")
            or pushed.get("pending")
            or pushed.get("moved_aside")
            or self.stages.get("payments", {}).get("refused")
            or written.get("failed")
            or sent.get("parked")
            or sent.get("deferred")
            or sent.get("waiting")
            or sent.get("render_held")
            or self.stages.get("webhooks", {}).get("failed")
            or self.stages.get("webhooks", {}).get("disabled")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "clean": self.clean,
            "api_calls": self.api_calls,
            "stages": self.stages,
            "errors": self.errors,
        }


def run_cycle(
    factory: sessionmaker[Session],
    settings: Settings,
    as_of: date,
    *,
    client: SalesforceClient | None = None,
    target: AccountingTarget | None = None,
    runtime: Runtime | None = None,
) -> CycleResult:
    """Every stage in order, as of ``as_of``; a stop request ends the cycle after the batch in
    hand (the stage is recorded as interrupted and the later ones do not start)."""
    runtime = runtime or Runtime(factory, settings, _client=client, _target=target)
    runtime.check()
    result = CycleResult(as_of)
    for name in STAGES:
        if runtime.stop.is_set():
            break
        run = runtime.run(name, as_of)
        result.api_calls += run.api_calls
        if run.error is not None:
            result.errors[name] = run.error
        summary = run.summary()
        if summary is not None:
            result.stages[name] = summary
    return result
