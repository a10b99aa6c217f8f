"""Benchmark: the resident memory each stage of the sync cycle needs, first and idle cycle.

    python tests/benchmarks/bench_memory.py --deals 10000 [--fresh] [--trace STAGE ...]

The org of the cycle benchmark (see bench_cycle.py; generated once, kept under
/tmp/connector-bench) is served by ``connector sandbox serve`` in a process of its own, whose
memory is not counted. The stages then run in order, as ``connector sync --once`` runs them, on
one new SQLite database and ledger: the first cycle (everything is new), then a cycle with
nothing changed (``--first-only`` leaves it out). For each stage a thread reads this process's
resident memory every 50 ms: the memory before the stage, its peak and what it leaves behind.

In one process, a stage reuses what an earlier one freed: with ``--fresh`` each stage runs in a
fresh process of its own (the cycle's check of the settings and the accounting target first,
then the stage), so that each one's own growth shows; each process's high-water mark
(``VmHWM``) is printed too. ``--trace`` runs the stages named (``pull``, ``idle:writeback`` for
the idle cycle's, ``check`` for the check before them) under tracemalloc and prints the
allocation sites of their peak (``--frames`` deep: with the connector's frames that led there);
``--profile`` prints their top functions (cProfile). Both slow a stage down several times: use
them on a small org.

Exits 1 when a stage fails.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from datetime import date
from pathlib import Path
from typing import Any

from bench_cycle import AS_OF, ROOT, serve, template
from peak_memory import peak_rss_mib

from connector.db.engine import make_engine, session_factory
from connector.db.migrate import upgrade
from connector.settings import Settings, load_settings
from connector.sync.cycle import STAGES, Runtime

PAGE = os.sysconf("SC_PAGE_SIZE")
CYCLES = ("first", "idle")


def resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


class Sampler(threading.Thread):
    """Reads resident memory every ``interval`` seconds; under tracemalloc, takes a snapshot
    of the traced allocations whenever they grew by a tenth since the last one."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = 0.0
        self.snapshot: tracemalloc.Snapshot | None = None
        self.traced = 0
        self.done = threading.Event()

    def reset(self) -> None:
        self.peak = resident_mib()
        self.snapshot = None
        self.traced = 0

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.peak = max(self.peak, resident_mib())
            if tracemalloc.is_tracing():
                current, _ = tracemalloc.get_traced_memory()
                if current > self.traced * 1.1:
                    self.traced = current
                    self.snapshot = tracemalloc.take_snapshot()


def top(snapshot: tracemalloc.Snapshot, limit: int = 15) -> list[str]:
    """The largest allocation sites; with a deeper traceback, each with the innermost frames
    of the connector that led to it."""
    snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    root = str(ROOT) + "/"

    def where(frame: tracemalloc.Frame) -> str:
        name = frame.filename.replace(root, "").split("site-packages/")[-1]
        return f"{name}:{frame.lineno}"

    lines = []
    deep = tracemalloc.get_traceback_limit() > 1
    for stat in snapshot.statistics("traceback" if deep else "lineno")[:limit]:
        frames = list(reversed(stat.traceback))  # the most recent call first
        line = f"{stat.size / 2**20:8.1f} MiB {stat.count:9} blocks  {where(frames[0])}"
        ours = [where(f) for f in frames[1:] if f.filename.startswith(root)][:3]
        lines.append(line + (f"  <- {' <- '.join(ours)}" if ours else ""))
    return lines


def settings_for(work: Path) -> Settings:
    info: dict[str, Any] = json.loads((work / "info.json").read_text())
    return load_settings(
        None,
        database_url=f"sqlite:///{work / 'billing.db'}",
        salesforce={
            "instance_url": info["instance_url"],
            "session_id": info["session_id"],
            "ca_file": info["ca_file"],
            "mapping_file": str(ROOT / "mappings" / "salesforce.yaml"),
        },
        accounting={"mapping_file": str(ROOT / "mappings" / "accounting.yaml")},
        ledger={"path": work / "ledger.beancount"},
        documents={"render": False},  # rendering: bench_documents.py
    )


class Stages:
    """Runs stages in this process and prints what each needed."""

    def __init__(self, runtime: Runtime, options: argparse.Namespace) -> None:
        self.runtime = runtime
        self.options = options
        self.sampler = Sampler()
        self.sampler.start()
        self.failed = False

    def check(self, name: str) -> None:
        """The cycle's own check (the accounting target is made: the ledger read)."""
        traced = name in self.options.trace
        if traced:
            tracemalloc.start(self.options.frames)
        self.runtime.check()
        if traced:
            current, peak = tracemalloc.get_traced_memory()
            print(f"  check: traced {current / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB")
            for line in top(tracemalloc.take_snapshot(), 8):
                print("  " + line)
            tracemalloc.stop()

    def run(self, label: str, stage: str) -> None:
        name = stage if label == "first" else f"idle:{stage}"
        traced = name in self.options.trace
        profile = cProfile.Profile() if name in self.options.profile else None
        before = resident_mib()
        self.sampler.reset()
        if traced:
            tracemalloc.start(self.options.frames)
        cpu = time.process_time()
        if profile is not None:
            profile.enable()
        run = self.runtime.run(stage, self.options.as_of)
        if profile is not None:
            profile.disable()
        cpu = time.process_time() - cpu
        snapshot = self.sampler.snapshot
        traced_peak = tracemalloc.get_traced_memory()[1] if traced else 0
        tracemalloc.stop()
        print(
            f"{label:5} {stage:9} before {before:5.0f}  peak {self.sampler.peak:5.0f} "
            f"(+{self.sampler.peak - before:4.0f})  after {resident_mib():5.0f}  "
            f"high-water mark {peak_rss_mib():5.0f} MiB  CPU {cpu:6.1f} s"
            + (f"  error: {run.error}" if run.error else ""),
            flush=True,
        )
        self.failed = self.failed or run.error is not None
        if traced and snapshot is not None:
            print(f"  traced peak {traced_peak / 2**20:.0f} MiB; at the last snapshot:")
            for line in top(snapshot):
                print("  " + line)
        if profile is not None:
            pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


def one_stage(options: argparse.Namespace) -> int:
    """``--stage``: one stage of a cycle in this fresh process, on the database in ``--work``."""
    label, stage = options.stage.split(":")
    settings = settings_for(options.work)
    engine = make_engine(settings.database_url.get_secret_value())
    stages = Stages(Runtime(session_factory(engine), settings), options)
    stages.check("check" if label == "first" else "idle:check")
    stages.run(label, stage)
    engine.dispose()
    return 1 if stages.failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--org", type=Path, help="an org file of its own (default: generated)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=AS_OF, help=f"default {AS_OF}")
    parser.add_argument("--fresh", action="store_true", help="each stage in a fresh process")
    parser.add_argument("--first-only", action="store_true", help="no idle cycle")
    parser.add_argument("--trace", nargs="*", default=[], metavar="STAGE", help="tracemalloc")
    parser.add_argument("--frames", type=int, default=1, help="traceback depth of --trace")
    parser.add_argument("--profile", nargs="*", default=[], metavar="STAGE", help="cProfile")
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # LABEL:STAGE, run by --fresh
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.stage:
        sys.exit(one_stage(options))
    org = options.org or template(options.deals)
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    failed = False
    try:
        shutil.copy(org, work / "org.db")
        server = serve(work / "org.db", work / "info.json")
        try:
            settings = settings_for(work)
            engine = make_engine(settings.database_url.get_secret_value())
            upgrade(engine)
            stages = Stages(Runtime(session_factory(engine), settings), options)
            if not options.fresh:
                stages.check("check")
            print(
                f"{'start':15} {resident_mib():5.0f} MiB"
                + ("; each stage in a fresh process:" if options.fresh else ""),
                flush=True,
            )
            for label in CYCLES[: 1 if options.first_only else 2]:
                for stage in STAGES:
                    if not options.fresh:
                        stages.run(label, stage)
                        continue
                    child = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            f"--stage={label}:{stage}",
                            f"--work={work}",
                            f"--as-of={options.as_of.isoformat()}",
                            f"--frames={options.frames}",
                            "--trace",
                            *options.trace,
                            "--profile",
                            *options.profile,
                        ],
                        check=False,
                    )
                    failed = failed or child.returncode != 0
            failed = failed or stages.failed
            engine.dispose()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        print("FAILED: a stage failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
