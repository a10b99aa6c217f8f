"""One cycle, in order: pull from Salesforce, bill, close revenue, push to accounting, read the
payments recorded there, write back to Salesforce.

Each stage records its run (``job_runs``: start, end, result, error). A stage that fails does
not stop the ones that do not depend on it; a configuration error stops the cycle. The
Salesforce client, and with it the API budget, is shared by the pull and the write-back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connector.accounting.base import AccountingTarget
from connector.crm.client import SalesforceClient
from connector.db import staging, tables
from connector.db.engine import transaction
from connector.db.types import utc_now
from connector.errors import ConfigError, ConnectorError
from connector.settings import Settings
from connector.sync import crm_pull, push, writeback
from connector.sync.billing_run import run_billing
from connector.sync.revenue_close import close_revenue

log = logging.getLogger(__name__)
STAGES = ("pull", "bill", "revenue", "push", "payments", "writeback")


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
        return not (
            pulled.get("quarantined")
            or pulled.get("held")
            or pulled.get("stopped")
            or billed.get("failed")
            or pushed.get("parked")
            or pushed.get("pending")
            or self.stages.get("payments", {}).get("refused")
            or written.get("failed")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "clean": self.clean,
            "api_calls": self.api_calls,
            "stages": self.stages,
            "errors": self.errors,
        }


def record_run(
    factory: sessionmaker[Session], job: str, work: Callable[[], Any]
) -> tuple[Any, str | None]:
    """Run ``work`` as the job ``job`` and record it; returns its result and its error."""
    started, began = utc_now(), time.perf_counter()
    result, error = None, None
    try:
        result = work()
    except ConfigError:
        raise
    except ConnectorError as failure:
        error = str(failure)
        log.error("%s failed: %s", job, failure)
    to_dict = getattr(result, "to_dict", None)
    summary = to_dict() if callable(to_dict) else None
    with transaction(factory) as session:
        session.add(
            tables.JobRun(
                job=job,
                started_at=started,
                finished_at=utc_now(),
                ok=error is None,
                summary=summary,
                error=error,
            )
        )
    log.info(
        "job=%s ok=%s seconds=%.2f summary=%s",
        job,
        error is None,
        time.perf_counter() - began,
        summary,
    )
    return result, error


def run_cycle(
    factory: sessionmaker[Session],
    settings: Settings,
    as_of: date,
    *,
    client: SalesforceClient | None = None,
    target: AccountingTarget | None = None,
) -> CycleResult:
    result = CycleResult(as_of)
    client = client or SalesforceClient(
        settings.salesforce, crm_pull.load_budget(factory, settings, as_of)
    )
    target = target or push.make_target(settings)
    calls = client.calls
    stages: dict[str, Callable[[], Any]] = {
        "pull": lambda: crm_pull.pull(factory, settings, as_of=as_of, client=client),
        "bill": lambda: run_billing(factory, settings, as_of),
        "revenue": lambda: close_revenue(factory, as_of),
        "push": lambda: push.push(factory, settings, target),
        "payments": lambda: push.read_payments(factory, settings, target),
        "writeback": lambda: writeback.write_back(factory, client, as_of),
    }
    for name in STAGES:
        outcome, error = record_run(factory, name, stages[name])
        if error is not None:
            result.errors[name] = error
        elif hasattr(outcome, "to_dict"):
            result.stages[name] = outcome.to_dict()
    result.api_calls = client.calls - calls
    budget = client.budget
    with transaction(factory) as session:  # the write-back's calls count too
        staging.save_usage(
            session, crm_pull.SYSTEM, budget.day, budget.spent, (budget.org_used, budget.org_limit)
        )
    return result
