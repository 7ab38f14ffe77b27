"""Time one process, read its peak memory, and summarize repeated runs."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LAUNCHER = Path(__file__).resolve().parent / "launch.py"
# Linux reports ru_maxrss in kibibytes.
MAXRSS_UNIT_BYTES = 1024


class RunFailed(RuntimeError):
    """A benchmarked command exited with a non-zero code."""


@dataclass(frozen=True)
class ProcessRun:
    """Wall time and peak resident set size of one finished process."""

    seconds: float
    max_rss_bytes: int
    returncode: int
    output: str


def run_process(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> ProcessRun:
    """Run ``argv`` to completion through launch.py and measure it.

    The wall time runs from launch.py's fork to its ``os.wait4`` returning,
    so it leaves out the launcher's own start-up. The peak memory is
    ``ru_maxrss`` from that ``os.wait4``. On Linux that is the largest peak
    of the process and of each descendant it waited for, not their sum. For
    easy-rsa it is the biggest of bash and the openssl processes it starts.
    Output goes to a temporary file rather than a pipe, so a chatty
    process can never block on a full pipe.
    """
    with tempfile.TemporaryDirectory(prefix="easyrsa-bench-run-") as temp:
        result_file = Path(temp) / "result"
        output_file = Path(temp) / "output"
        with output_file.open("wb") as output:
            subprocess.run(
                [sys.executable, "-I", "-S", str(LAUNCHER), str(result_file), *argv],
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                check=True,
            )
        seconds, max_rss_kib, returncode = result_file.read_text().split()
        text = output_file.read_bytes().decode("utf-8", errors="replace")
    return ProcessRun(
        float(seconds), int(max_rss_kib) * MAXRSS_UNIT_BYTES, int(returncode), text
    )


def measurement_floor_bytes(cwd: Path) -> int:
    """Measure the peak memory that launch.py reports for ``true``.

    Every reading includes the pages the command shared with launch.py when
    it forked, so no reading can be smaller than this.
    """
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return run_process(["true"], env, cwd).max_rss_bytes


def run_checked(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> ProcessRun:
    """Run ``argv`` like ``run_process``, raising RunFailed on a non-zero exit."""
    result = run_process(argv, env, cwd)
    if result.returncode != 0:
        raise RunFailed(
            f"{' '.join(argv)} exited with code {result.returncode}; "
            f"its output was:\n{result.output}"
        )
    return result


@dataclass(frozen=True)
class Summary:
    """Median, minimum and maximum of a list of measurements."""

    median: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            raise ValueError("cannot summarize an empty list of measurements")
        return cls(statistics.median(values), min(values), max(values))

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.minimum, "max": self.maximum}
