"""Compare easyrsa_py with easy-rsa 3.2.7 on build-client-full and the status reports.

Run it with the Python of the environment where easyrsa_py is installed:

    python benchmarks/build_and_show.py [--runs N] [--status-runs N]
        [--rows N] [--only NAME] [--json]

It pairs the runs as ``run.py`` does, and reuses run.py's pairing and
result functions. Each benchmark starts with one untimed pair whose results
are compared: for build-client-full, the new key type and index.txt row,
and for show-expire and show-revoke, the serials each tool listed.

build-client-full generates a new key pair in every run, and the time that
RSA key generation takes varies from run to run. Therefore its runs are
many (default 21 pairs) and the report gives the median and the range.
The real script's status reports start several processes per index.txt
row, so they take minutes on 10,000 rows, and their runs are few (default
3 pairs).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCHMARKS_DIR = Path(__file__).resolve().parent
TESTS_DIR = BENCHMARKS_DIR.parent / "tests"
for folder in (str(BENCHMARKS_DIR), str(TESTS_DIR)):
    if folder not in sys.path:
        sys.path.insert(0, folder)

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from measure import RunFailed
from run import Workload, format_row, measure_workload, run_and_report, timing_result
from tools import (
    REFERENCE_VERSION,
    Tool,
    easyrsa_py_tool,
    machine_info,
    reference_tool,
)
from workloads import (
    build_ca_pki,
    copy_fixture_pki,
    write_issued_certificates,
    write_large_index,
)

logger = logging.getLogger("benchmarks")

BUILD_RSA = "build-client-full-rsa"
BUILD_EC = "build-client-full-ec"
SHOW_EXPIRE = "show-expire"
SHOW_REVOKE = "show-revoke"
BENCHMARK_NAMES = (BUILD_RSA, BUILD_EC, SHOW_EXPIRE, SHOW_REVOKE)
BUILD_BENCHMARKS = (BUILD_RSA, BUILD_EC)

# An RSA 2048 CA without passphrase, made by easy-rsa 3.2.7.
RSA_FIXTURE = "v3.2.7-rsa"
# easy-rsa 3.2.7 uses secp384r1 when --use-algo=ec names no curve.
EC_OPTIONS = ("--use-algo=ec",)
# The name is new in every run, because every run works on a fresh copy of
# a template PKI that does not contain it.
CLIENT_NAME = "bench-client"
INDEX_SEED = 1

BUILD_MAX_RATIO = 1.0
STATUS_MAX_RATIO = 0.01
# The status targets are set for this index size; other sizes are
# reported without a verdict.
TARGET_ROWS = 10_000

SERIAL_PATTERN = re.compile(r"Serial: ([0-9A-Fa-f]+)")


# --- checks ----------------------------------------------------------------


def key_description(path: Path) -> str:
    """Describe a private key's type and size, such as "RSA 2048" or "EC secp384r1"."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name}"
    return type(key).__name__


def check_client_built(candidate_pki: Path, reference_pki: Path) -> None:
    """Fail unless both tools issued the client with the same key type and a V row."""
    keys = []
    for pki in (candidate_pki, reference_pki):
        certificate_path = pki / "issued" / f"{CLIENT_NAME}.crt"
        certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
        serial = f"{certificate.serial_number:X}"
        rows = (pki / "index.txt").read_text(encoding="utf-8").splitlines()
        matching = [row for row in rows if row.endswith(f"\t/CN={CLIENT_NAME}")]
        if len(matching) != 1 or not matching[0].startswith("V\t"):
            raise RunFailed(
                f"{pki / 'index.txt'} should have one V row for {CLIENT_NAME}, "
                f"but has: {matching}"
            )
        if matching[0].split("\t")[3].lstrip("0") != serial:
            raise RunFailed(
                f"The index.txt row for {CLIENT_NAME} in {pki} does not have the "
                f"serial of {certificate_path} ({serial})."
            )
        keys.append(key_description(pki / "private" / f"{CLIENT_NAME}.key"))
    if keys[0] != keys[1]:
        raise RunFailed(
            f"The client keys differ: easyrsa_py made {keys[0]}, easy-rsa {keys[1]}."
        )
    logger.info("  checked: both tools issued %s with an %s key", CLIENT_NAME, keys[0])


def check_nothing_written(candidate_pki: Path, reference_pki: Path) -> None:
    """Accept any PKI: the status reports write nothing that needs checking."""


def listed_serials(output: str) -> set[str]:
    return {match.upper() for match in SERIAL_PATTERN.findall(output)}


def check_same_serials(candidate_output: str, reference_output: str) -> None:
    """Fail unless both reports list the same, non-empty set of serials."""
    mine = listed_serials(candidate_output)
    theirs = listed_serials(reference_output)
    if not theirs or mine != theirs:
        raise RunFailed(
            f"The reports differ: easyrsa_py lists {len(mine)} serials and "
            f"easy-rsa {len(theirs)}, {len(mine ^ theirs)} of them in only one."
        )
    logger.info("  checked: both reports list the same %d serials", len(mine))


# --- workloads -------------------------------------------------------------


def prepare_rsa_build(work_dir: Path) -> Workload:
    template = copy_fixture_pki(RSA_FIXTURE, work_dir / "template-rsa" / "pki")
    steps = (("build-client-full", CLIENT_NAME, "nopass"),)
    return Workload(template, steps, check_client_built)


def prepare_ec_build(work_dir: Path) -> Workload:
    template = work_dir / "template-ec" / "pki"
    template.parent.mkdir()
    build_ca_pki(REFERENCE_VERSION, template, *EC_OPTIONS)
    steps = ((*EC_OPTIONS, "build-client-full", CLIENT_NAME, "nopass"),)
    return Workload(template, steps, check_client_built)


def prepare_status_pki(work_dir: Path, rows: int) -> Path:
    """Copy the RSA fixture with an index.txt of ``rows`` rows, half revoked.

    Every V row gets its certificate in issued/, as show-expire needs.
    """
    template = copy_fixture_pki(RSA_FIXTURE, work_dir / "template-status" / "pki")
    for old in (template / "issued").iterdir():
        old.unlink()
    summary = write_large_index(template / "index.txt", rows, rows // 2, INDEX_SEED)
    written = write_issued_certificates(template)
    logger.info(
        "Wrote index.txt with %d rows (%d revoked) and %d certificates in issued/",
        summary.rows,
        summary.revoked,
        written,
    )
    return template


def status_workload(template: Path, command: str) -> Workload:
    return Workload(template, ((command,),), check_nothing_written, check_same_serials)


# --- report ----------------------------------------------------------------


def status_description(command: str, rows: int) -> str:
    return (
        f"{command} on index.txt with {rows} rows, {rows // 2} revoked, and an "
        "issued/ certificate for each V row"
    )


def format_result(result: dict[str, Any]) -> list[str]:
    if result["met"] is None:
        outcome = f"not judged, because the target is for {TARGET_ROWS} rows"
    else:
        outcome = "met" if result["met"] else "MISSED"
    return [
        f"{result['name']}: {result['description']}",
        format_row("easyrsa_py", result["easyrsa_py"], " s", 3),
        format_row("easy-rsa", result["easy-rsa"], " s", 3),
        format_row("ratio", result["ratio"], "", 4),
        f"  ratios      {', '.join(f'{ratio:.4f}' for ratio in result['ratios'])}",
        f"  target      {result['target']}: {outcome}",
    ]


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
        "",
    ]
    for result in report["benchmarks"]:
        lines.extend(format_result(result))
        lines.append("")
    missed = [
        result["name"] for result in report["benchmarks"] if result["met"] is False
    ]
    if missed:
        lines.append("MISSED: " + ", ".join(missed))
    return "\n".join(lines)


# --- main ------------------------------------------------------------------


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs",
        type=int,
        default=21,
        help="timed pairs of runs for each build-client-full benchmark (default: 21)",
    )
    parser.add_argument(
        "--status-runs",
        type=int,
        default=3,
        help="timed pairs of runs for show-expire and show-revoke (default: 3)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=TARGET_ROWS,
        help="index.txt rows for show-expire and show-revoke, half revoked "
        "(default: 10000, the size the targets are set for)",
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
    arguments = parser.parse_args(argv)
    if arguments.runs < 1 or arguments.status_runs < 1:
        parser.error("--runs and --status-runs must be at least 1")
    if arguments.rows < 2:
        parser.error("--rows must be at least 2")
    return arguments


def candidate_tool() -> Tool:
    """Return the easyrsa_py tool."""
    return easyrsa_py_tool()


def run_benchmarks(arguments: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    selected = arguments.only or list(BENCHMARK_NAMES)
    tools = (candidate_tool(), reference_tool())
    results: list[dict[str, Any]] = []

    builders = {BUILD_RSA: prepare_rsa_build, BUILD_EC: prepare_ec_build}
    for name in BUILD_BENCHMARKS:
        if name not in selected:
            continue
        logger.info("%s: preparing", name)
        workload = builders[name](work_dir)
        paired = measure_workload(tools, workload, work_dir / name, arguments.runs)
        description = (
            f"build-client-full {CLIENT_NAME} nopass, as one process, on a fresh "
            f"copy of the PKI ({name.rsplit('-', 1)[1].upper()} CA)"
        )
        results.append(timing_result(name, description, paired, BUILD_MAX_RATIO, True))

    status_names = [name for name in (SHOW_EXPIRE, SHOW_REVOKE) if name in selected]
    if status_names:
        logger.info("status reports: preparing %d rows", arguments.rows)
        template = prepare_status_pki(work_dir, arguments.rows)
    for name in status_names:
        logger.info("%s: running", name)
        workload = status_workload(template, name)
        paired = measure_workload(
            tools, workload, work_dir / name, arguments.status_runs
        )
        judged = arguments.rows == TARGET_ROWS
        description = status_description(name, arguments.rows)
        results.append(
            timing_result(name, description, paired, STATUS_MAX_RATIO, judged)
        )

    return {
        "machine": machine_info(),
        "tools": {tool.label: tool.description for tool in tools},
        "runs": arguments.runs,
        "status_runs": arguments.status_runs,
        "rows": arguments.rows,
        "benchmarks": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    return run_and_report(arguments, run_benchmarks, format_report)


if __name__ == "__main__":
    sys.exit(main())
