"""Compare easyrsa_py with the real easy-rsa 3.2.7 on identical PKIs.

Run it with the Python of the environment where easyrsa_py is installed,
from any folder:

    python benchmarks/run.py [--runs N] [--only NAME] [--json] [--rows N]

Without an installed easyrsa_py it runs ``python -m easyrsa_py`` from this
checkout. It needs Linux (peak memory comes from ``ru_maxrss``), the
``cryptography`` package, and bash and openssl for easy-rsa.

Each benchmark runs both tools on fresh copies of the same PKI, in pairs
(easyrsa_py, then easy-rsa), after one untimed pair that also checks both
tools wrote the same CRL entries. The ratio easyrsa_py / easy-rsa is taken
within each pair, so a drift in machine speed over the session affects
both sides of each ratio alike. The script reports whether each target is
met and exits 0 either way. It exits 1 only when a tool fails or easy-rsa
3.2.7 cannot be found.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCHMARKS_DIR = Path(__file__).resolve().parent
TESTS_DIR = BENCHMARKS_DIR.parent / "tests"
for folder in (str(BENCHMARKS_DIR), str(TESTS_DIR)):
    if folder not in sys.path:
        sys.path.insert(0, folder)

from cryptography import x509
from measure import (
    ProcessRun,
    RunFailed,
    Summary,
    measurement_floor_bytes,
    run_checked,
)
from reference import ReferenceNotFound
from tools import (
    REFERENCE_VERSION,
    Tool,
    clean_env,
    easyrsa_py_tool,
    machine_info,
    reference_tool,
)
from workloads import (
    build_client_pki,
    copy_fixture_pki,
    copy_pki,
    write_large_index,
)

logger = logging.getLogger("benchmarks")

GEN_CRL = "gen-crl-100k"
REVOKE = "revoke-gen-crl"
MEMORY = "memory-gen-crl-100k"
BENCHMARK_NAMES = (GEN_CRL, REVOKE, MEMORY)

FIXTURE = "v3.2.7-rsa"
INDEX_SEED = 1
SMALL_PKI_CLIENTS = 10
REVOKED_CLIENT = "client05"
REVOKE_REASON = "keyCompromise"

# The targets are set for this index size; other sizes are reported
# without a verdict.
TARGET_ROWS = 100_000
GEN_CRL_MAX_RATIO = 0.5
REVOKE_MAX_RATIO = 1.0
# Megabytes of 1,000,000 bytes.
MEMORY_MAX_MB = 150
BYTES_PER_MB = 1_000_000


@dataclass(frozen=True)
class Workload:
    """A PKI to copy before each run and the commands each run executes."""

    template: Path
    steps: tuple[tuple[str, ...], ...]
    check: Callable[[Path, Path], None]
    # Called with the output of easyrsa_py, then of easy-rsa, in the
    # untimed pair, for benchmarks whose result is printed, not written.
    check_output: Callable[[str, str], None] | None = None


@dataclass(frozen=True)
class PairedRuns:
    """The timed runs of both tools, pair by pair."""

    candidate: list[ProcessRun]
    reference: list[ProcessRun]

    def ratios(self) -> list[float]:
        return [
            mine.seconds / theirs.seconds
            for mine, theirs in zip(self.candidate, self.reference)
        ]


# --- running ---------------------------------------------------------------


def run_steps(tool: Tool, workload: Workload, run_dir: Path) -> tuple[ProcessRun, Path]:
    """Run every step of ``workload`` with ``tool`` on a fresh copy.

    Returns one ProcessRun for all steps together: the summed wall time and
    the highest peak memory of any step.
    """
    pki = copy_pki(workload.template, run_dir / "pki")
    cwd = run_dir / "cwd"
    cwd.mkdir()
    env = clean_env(cwd, tool)

    runs = [run_checked(tool.argv(pki, *step), env, cwd) for step in workload.steps]
    combined = ProcessRun(
        seconds=sum(run.seconds for run in runs),
        max_rss_bytes=max(run.max_rss_bytes for run in runs),
        returncode=0,
        output="".join(run.output for run in runs),
    )
    return combined, pki


def run_pair(
    tools: tuple[Tool, Tool], workload: Workload, work_dir: Path, label: str
) -> tuple[tuple[ProcessRun, Path], tuple[ProcessRun, Path]]:
    candidate_dir = work_dir / f"{label}-easyrsa_py"
    reference_dir = work_dir / f"{label}-easy-rsa"
    candidate_dir.mkdir()
    reference_dir.mkdir()
    candidate = run_steps(tools[0], workload, candidate_dir)
    reference = run_steps(tools[1], workload, reference_dir)
    return candidate, reference


def measure_workload(
    tools: tuple[Tool, Tool], workload: Workload, work_dir: Path, runs: int
) -> PairedRuns:
    """Run one checked warm-up pair, then ``runs`` timed pairs."""
    work_dir.mkdir()
    (candidate, candidate_pki), (reference, reference_pki) = run_pair(
        tools, workload, work_dir, "warmup"
    )
    workload.check(candidate_pki, reference_pki)
    if workload.check_output is not None:
        workload.check_output(candidate.output, reference.output)

    candidate_runs: list[ProcessRun] = []
    reference_runs: list[ProcessRun] = []
    for number in range(1, runs + 1):
        (candidate, _), (reference, _) = run_pair(
            tools, workload, work_dir, f"run{number}"
        )
        candidate_runs.append(candidate)
        reference_runs.append(reference)
        logger.info(
            "  pair %d/%d: easyrsa_py %.3f s, easy-rsa %.3f s",
            number,
            runs,
            candidate.seconds,
            reference.seconds,
        )
        for folder in work_dir.glob(f"run{number}-*"):
            shutil.rmtree(folder)
    return PairedRuns(candidate_runs, reference_runs)


# --- checks ----------------------------------------------------------------


def revoked_serials(pki: Path) -> set[int]:
    crl = x509.load_pem_x509_crl((pki / "crl.pem").read_bytes())
    return {entry.serial_number for entry in crl}


def check_same_crl_entries(candidate_pki: Path, reference_pki: Path) -> None:
    """Fail unless both tools put the same serial numbers in the CRL."""
    mine = revoked_serials(candidate_pki)
    theirs = revoked_serials(reference_pki)
    if mine != theirs:
        raise RunFailed(
            f"The CRLs differ: easyrsa_py lists {len(mine)} serials and "
            f"easy-rsa {len(theirs)}, {len(mine ^ theirs)} of them in only "
            f"one; compare {candidate_pki / 'crl.pem'} with "
            f"{reference_pki / 'crl.pem'}."
        )
    logger.info("  checked: both CRLs list the same %d serials", len(mine))


def check_revoked_and_listed(candidate_pki: Path, reference_pki: Path) -> None:
    """Fail unless both tools revoked the client and listed it in the CRL."""
    for pki in (candidate_pki, reference_pki):
        rows = (pki / "index.txt").read_text(encoding="utf-8").splitlines()
        revoked = [row for row in rows if row.startswith("R\t")]
        if len(revoked) != 1 or not revoked[0].endswith(f"/CN={REVOKED_CLIENT}"):
            raise RunFailed(
                f"{pki / 'index.txt'} should have one R row, for "
                f"{REVOKED_CLIENT}, but has: {revoked}"
            )
    check_same_crl_entries(candidate_pki, reference_pki)


# --- workloads -------------------------------------------------------------


def prepare_large_index(work_dir: Path, rows: int) -> Workload:
    template = copy_fixture_pki(FIXTURE, work_dir / "template-large" / "pki")
    summary = write_large_index(template / "index.txt", rows, rows // 2, INDEX_SEED)
    logger.info(
        "Wrote index.txt: %d rows, %d revoked, %.1f MB, reasons %s",
        summary.rows,
        summary.revoked,
        summary.size_bytes / BYTES_PER_MB,
        summary.reasons,
    )
    return Workload(template, (("gen-crl",),), check_same_crl_entries)


def prepare_small_pki(work_dir: Path) -> Workload:
    template = work_dir / "template-small" / "pki"
    template.parent.mkdir()
    logger.info(
        "Building a %d-client PKI with easy-rsa %s (once)",
        SMALL_PKI_CLIENTS,
        REFERENCE_VERSION,
    )
    build_client_pki(REFERENCE_VERSION, template, SMALL_PKI_CLIENTS)
    steps = (("revoke", REVOKED_CLIENT, REVOKE_REASON), ("gen-crl",))
    return Workload(template, steps, check_revoked_and_listed)


# --- results ---------------------------------------------------------------


def verdict(met: bool, judged: bool) -> bool | None:
    return met if judged else None


def timing_result(
    name: str, description: str, paired: PairedRuns, max_ratio: float, judged: bool
) -> dict[str, Any]:
    ratio = Summary.of(paired.ratios())
    return {
        "name": name,
        "description": description,
        "metric": "wall seconds",
        "easyrsa_py": Summary.of([run.seconds for run in paired.candidate]).as_dict(),
        "easy-rsa": Summary.of([run.seconds for run in paired.reference]).as_dict(),
        "ratio": ratio.as_dict(),
        "ratios": paired.ratios(),
        "target": f"median ratio <= {max_ratio}",
        "met": verdict(ratio.median <= max_ratio, judged),
    }


def memory_result(paired: PairedRuns, rows: int) -> dict[str, Any]:
    def megabytes(runs: list[ProcessRun]) -> list[float]:
        return [run.max_rss_bytes / BYTES_PER_MB for run in runs]

    candidate = Summary.of(megabytes(paired.candidate))
    return {
        "name": MEMORY,
        "description": f"peak RSS of gen-crl on {rows} rows ({GEN_CRL})",
        "metric": "max RSS MB",
        "easyrsa_py": candidate.as_dict(),
        "easy-rsa": Summary.of(megabytes(paired.reference)).as_dict(),
        "target": f"easyrsa_py max <= {MEMORY_MAX_MB} MB",
        "met": verdict(candidate.maximum <= MEMORY_MAX_MB, rows == TARGET_ROWS),
    }


def format_row(label: str, summary: dict[str, float], unit: str, digits: int) -> str:
    return (
        f"  {label:<11} median {summary['median']:.{digits}f}{unit}"
        f"  min {summary['min']:.{digits}f}{unit}"
        f"  max {summary['max']:.{digits}f}{unit}"
    )


def format_result(result: dict[str, Any]) -> list[str]:
    if result["met"] is None:
        outcome = f"not judged, because the target is for {TARGET_ROWS} rows"
    else:
        outcome = "met" if result["met"] else "MISSED"
    lines = [f"{result['name']}: {result['description']}"]
    if result["metric"] == "wall seconds":
        lines.append(format_row("easyrsa_py", result["easyrsa_py"], " s", 3))
        lines.append(format_row("easy-rsa", result["easy-rsa"], " s", 3))
        lines.append(format_row("ratio", result["ratio"], "", 2))
    else:
        lines.append(format_row("easyrsa_py", result["easyrsa_py"], " MB", 1))
        lines.append(format_row("easy-rsa", result["easy-rsa"], " MB", 1))
    lines.append(f"  target      {result['target']}: {outcome}")
    return lines


def format_report(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        (
            f"Machine: {machine['cpu_count']} CPUs ({machine['cpu_model']}), "
            f"{machine['platform']}"
        ),
        f"Python {machine['python']}",
        (
            f"OpenSSL: {machine['openssl_cli']} (CLI, used by easy-rsa); "
            f"cryptography {machine['cryptography']} (used by easyrsa_py)"
        ),
        f"easyrsa_py: {report['tools']['easyrsa_py']}",
        f"easy-rsa: {report['tools']['easy-rsa']}",
        (
            f"Runs: {report['runs']} pairs per benchmark (easyrsa_py, then "
            "easy-rsa), after one untimed pair whose CRLs are compared"
        ),
        (
            f"Peak memory readings include up to {report['rss_floor_mb']:.1f} MB "
            "that the measuring launcher shares with each process it forks"
        ),
        "",
    ]
    for result in report["benchmarks"]:
        lines.extend(format_result(result))
        lines.append("")
    results = report["benchmarks"]
    missed = [result["name"] for result in results if result["met"] is False]
    judged = [result for result in results if result["met"] is not None]
    if missed:
        lines.append("MISSED: " + ", ".join(missed))
    elif judged:
        lines.append("All judged targets met.")
    return "\n".join(lines)


# --- main ------------------------------------------------------------------


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs",
        type=int,
        default=5,
        help="timed pairs of runs per benchmark (default: 5)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARK_NAMES,
        metavar="NAME",
        help=f"run only this benchmark; repeatable. One of: {', '.join(BENCHMARK_NAMES)}",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the results as JSON on stdout instead of the text report",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=TARGET_ROWS,
        help="index.txt rows for the gen-crl benchmarks, half revoked "
        "(default: 100000, the size the targets are set for)",
    )
    arguments = parser.parse_args(argv)
    if arguments.runs < 1:
        parser.error("--runs must be at least 1")
    if arguments.rows < 2:
        parser.error("--rows must be at least 2")
    return arguments


def run_benchmarks(arguments: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    selected = arguments.only or list(BENCHMARK_NAMES)
    tools = (easyrsa_py_tool(), reference_tool())
    results: list[dict[str, Any]] = []

    if GEN_CRL in selected or MEMORY in selected:
        logger.info("%s: preparing", GEN_CRL)
        workload = prepare_large_index(work_dir, arguments.rows)
        paired = measure_workload(tools, workload, work_dir / GEN_CRL, arguments.runs)
        description = (
            f"gen-crl on index.txt with {arguments.rows} rows, "
            f"{arguments.rows // 2} revoked"
        )
        if GEN_CRL in selected:
            judged = arguments.rows == TARGET_ROWS
            results.append(
                timing_result(GEN_CRL, description, paired, GEN_CRL_MAX_RATIO, judged)
            )
        if MEMORY in selected:
            results.append(memory_result(paired, arguments.rows))

    if REVOKE in selected:
        logger.info("%s: preparing", REVOKE)
        workload = prepare_small_pki(work_dir)
        paired = measure_workload(tools, workload, work_dir / REVOKE, arguments.runs)
        description = (
            f"revoke {REVOKED_CLIENT} {REVOKE_REASON}, then gen-crl, "
            f"on a {SMALL_PKI_CLIENTS}-client PKI (two processes per tool)"
        )
        results.append(
            timing_result(REVOKE, description, paired, REVOKE_MAX_RATIO, True)
        )

    return {
        "machine": machine_info(),
        "rss_floor_mb": measurement_floor_bytes(work_dir) / BYTES_PER_MB,
        "tools": {tool.label: tool.description for tool in tools},
        "runs": arguments.runs,
        "benchmarks": results,
    }


def run_and_report(
    arguments: argparse.Namespace,
    run: Callable[[argparse.Namespace, Path], dict[str, Any]],
    render: Callable[[dict[str, Any]], str],
) -> int:
    """Run the benchmarks in a scratch folder and print the report, as text or JSON."""
    with tempfile.TemporaryDirectory(prefix="easyrsa-bench-") as temp:
        try:
            report = run(arguments, Path(temp))
        except (RunFailed, ReferenceNotFound) as error:
            logger.error("Benchmark stopped: %s", error)
            return 1

    if arguments.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    return run_and_report(arguments, run_benchmarks, format_report)


if __name__ == "__main__":
    sys.exit(main())
