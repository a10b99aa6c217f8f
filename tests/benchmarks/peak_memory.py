"""Peak resident memory of one process, and of no other.

On Linux, a process's ``ru_maxrss`` (``getrusage`` of itself, or ``wait4`` on it) includes
memory that was not its own: ``exec`` keeps the larger of the peak before it and the peak
after, and before ``exec`` a child started by Python's ``subprocess`` shares (``vfork``) or
copies (``fork``) the memory of the process that started it. A child started by a benchmark
that had generated its data in memory reports that peak as its own, whatever it used.

So a process measures its own peak with :func:`peak_rss_mib` (``VmHWM`` in /proc/self/status:
the high-water mark of its own address space, which ``exec`` starts afresh), and a program run
by a benchmark is measured with :func:`run_measured`: a bare Python (about 6 MiB resident) forks
it, waits for it with ``wait4`` and reports that program's ``ru_maxrss``, which is exact
whenever the program's peak is above the launcher's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# Run as ``python -I -S -c LAUNCHER REPORT COMMAND...``: forks COMMAND, waits for it and writes
# its exit code, wall time, CPU time and ru_maxrss (KiB on Linux) to REPORT as JSON.
LAUNCHER = """
import json, os, sys, time
report, command = sys.argv[1], sys.argv[2:]
began = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(command[0], command)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - began
with open(report, "w") as out:
    json.dump(
        {
            "exit": os.waitstatus_to_exitcode(status),
            "seconds": seconds,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "maxrss_kib": usage.ru_maxrss,
        },
        out,
    )
"""


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (MiB), its own alone."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("/proc/self/status has no VmHWM")


@dataclass(frozen=True)
class Measured:
    """One run of a program: its exit code (negative: the signal that ended it), wall time,
    CPU time and peak resident memory (MiB), its own."""

    exit: int
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float


def run_measured(
    command: list[str],
    *,
    stdout: IO[bytes] | int | None = None,
    stderr: IO[bytes] | int | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> Measured:
    """Run ``command`` to its end and measure it; on ``timeout`` it is killed and
    ``subprocess.TimeoutExpired`` raised."""
    with tempfile.TemporaryDirectory(prefix="measured-") as folder:
        report = Path(folder) / "report.json"
        launcher = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", LAUNCHER, str(report), *command],
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=cwd,
            start_new_session=True,  # a process group: a timeout kills the program too
        )
        try:
            launcher.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
            raise
        if launcher.returncode != 0 or not report.exists():
            raise RuntimeError(f"the launcher of {command[0]} exited {launcher.returncode}")
        figures = json.loads(report.read_text())
    return Measured(
        exit=figures["exit"],
        seconds=figures["seconds"],
        cpu_seconds=figures["cpu_seconds"],
        peak_rss_mib=figures["maxrss_kib"] / 1024,
    )
