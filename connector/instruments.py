"""What this process counts for Prometheus as it works: the runs of each stage, by result, and
how long they took. Counters live in the process that runs the stages (the active instance);
a standby's stay at zero, which is what Prometheus' ``rate()`` expects of a restarted or idle
process. State that every instance can read from the database (last success, waiting records,
outbox depth, quota) is collected at scrape time instead: see :mod:`connector.api.metrics`."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

JOB_RUNS = Counter(
    "connector_job_runs",
    "Runs of each stage of the cycle by this process, by result (ok or failed).",
    ["stage", "result"],
)
JOB_SECONDS = Histogram(
    "connector_job_duration_seconds",
    "How long each run of a stage took, in seconds.",
    ["stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)


def observe_run(stage: str, ok: bool, seconds: float) -> None:
    """Count one run of ``stage``."""
    JOB_RUNS.labels(stage, "ok" if ok else "failed").inc()
    JOB_SECONDS.labels(stage).observe(seconds)
