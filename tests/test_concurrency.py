"""Concurrency: commands started at once on one PKI lose and corrupt nothing.

Each test copies a PKI built once for this module and starts a burst of
processes on it at the same moment. A burst has 16 easyrsa_py processes:
4 revoke of distinct names, 4 build-client-full of new names, 3 sign-req,
3 renew and 2 gen-crl. The mixed tests add 5 processes of the real
easy-rsa 3.2.7: 2 build-client-full, 2 revoke and 1 gen-crl.

pki/lock.file lets one command run at a time. Without --wait-lock, an
easyrsa_py process that finds the lock held must exit 17 with a message
that names the lock file and a running holder. With --wait-lock every
easyrsa_py process must finish. easy-rsa 3.2.7 cannot wait, so it either
finishes or exits 17, printing that it failed to remove (or read) the lock
file although it never created it. In the mixed tests a rejected 3.2.7
process is started again when a process that held the lock ends, as an
operator would retry it, so that its writes fall between those of
easyrsa_py.

After each burst the PKI must be whole:

- no process left lock.file, a temporary file or a session folder behind;
- index.txt has no serial twice, and the rows from before the burst are
  still there in order. Each finished command's change is there (revoked
  row, new row, renewed row), and a rejected command changed nothing;
- every certs_by_serial/SERIAL.pem and revoked/certs_by_serial/SERIAL.crt
  contains the certificate with that serial, and each index.txt serial has
  its certs_by_serial file;
- each issued/NAME.crt has a `V` row with its serial, end date and subject;
- crl.pem lists only `R` rows, with their reasons, and at least the rows
  revoked before the burst. After one more gen-crl it lists exactly the
  `R` rows;
- `openssl ca -updatedb`, with a minimal configuration that points at a
  copy, accepts index.txt. So does easy-rsa 3.2.7, whose gen-crl on
  another copy lists exactly the `R` rows.

Which processes a burst rejects depends on timing, so the checks take each
process's exit code as given and derive the expected state from it.

Each test runs EASYRSA_PY_CONCURRENCY_RUNS bursts (default 2). A longer
run, which prints the figures of each burst:

    EASYRSA_PY_CONCURRENCY_RUNS=25 python -m pytest -q -s tests/test_concurrency.py
"""

from __future__ import annotations

import fnmatch
import os
import queue
import shutil
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pkitools import (
    crl_der_matches_pem,
    load_crl,
    openssl_crl_verify,
    product_command,
    product_env,
    read_index,
    run_product,
)
from reference import reference_env

from easyrsa_py import lock
from easyrsa_py.errors import EXIT_LOCK, LockHeld
from easyrsa_py.index import format_openssl_time
from easyrsa_py.lock import PKILock

RUNS = int(os.environ.get("EASYRSA_PY_CONCURRENCY_RUNS", "2"))
# Long enough that no waiting process runs out of time on a loaded machine.
# A burst still ends as soon as its last command has run.
WAIT_SECONDS = 600
# Guards against a hung process only, because a healthy burst ends long before.
PROCESS_TIMEOUT = WAIT_SECONDS + 120
# How often a retried operation is started before its rejection by the lock
# is taken as its outcome.
MAX_ATTEMPTS = 20

PRODUCT = "easyrsa_py"
REFERENCE = "easy-rsa 3.2.7"
REFERENCE_VERSION = "3.2.7"

REVOKE = "revoke"
BUILD = "build-client-full"
SIGN = "sign-req"
RENEW = "renew"
GEN_CRL = "gen-crl"
# The commands that add an index.txt row when they finish.
ADDS_ROW = (BUILD, SIGN, RENEW)

PRODUCT_REASON = "keyCompromise"
REFERENCE_REASON = "superseded"
CA_NAME = "Concurrency Test CA"
# Revoked while the template is built, so every CRL must list it.
RETIRED_NAME = "retired"

PRODUCT_REVOKE_NAMES = tuple(f"revoke-{i}" for i in range(1, 5))
PRODUCT_BUILD_NAMES = tuple(f"new-{i}" for i in range(1, 5))
SIGN_NAMES = tuple(f"sign-{i}" for i in range(1, 4))
RENEW_NAMES = tuple(f"renew-{i}" for i in range(1, 4))
REFERENCE_REVOKE_NAMES = ("real-revoke-1", "real-revoke-2")
REFERENCE_BUILD_NAMES = ("real-new-1", "real-new-2")

# Files either tool leaves only while it runs: easyrsa_py's temporary
# files (.NAME.<hex>.tmp), 3.2.7's session folder (8 hex digits) and
# openssl's index.txt.new, serial.new and index.txt.attr.new.
LEFTOVER_PATTERNS = ("*.tmp", "*.new", "easy-rsa-*", "[0-9a-f]" * 8)
LOCK_MESSAGE = "Error: The PKI is locked: "
HELD_DETAILS = (
    "holds it and is still running",
    "it does not contain a process ID",
    "its holder released it while this command checked it",
)
# 3.2.7 prints READ when the holder removed the file before the rejected
# process could read it.
REFERENCE_LOCK_MESSAGES = ("Failed to REMOVE lock-file!", "Failed to READ lock-file!")


@dataclass(frozen=True)
class Operation:
    """One command of a burst, run by one tool."""

    tool: str
    command: str
    name: str | None = None

    @property
    def reason(self) -> str:
        return PRODUCT_REASON if self.tool == PRODUCT else REFERENCE_REASON

    @property
    def arguments(self) -> list[str]:
        if self.command == REVOKE:
            return [REVOKE, str(self.name), self.reason]
        if self.command == BUILD:
            return [BUILD, str(self.name), "nopass"]
        if self.command == SIGN:
            return [SIGN, "client", str(self.name)]
        if self.command == RENEW:
            return [RENEW, str(self.name)]
        return [GEN_CRL]

    def __str__(self) -> str:
        return f"{self.tool} {' '.join(self.arguments)}"


@dataclass(frozen=True)
class Outcome:
    operation: Operation
    returncode: int
    stdout: str
    stderr: str

    @property
    def finished(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        return f"{self.operation} exited {self.returncode}:\n{self.stdout}\n{self.stderr}"


def product_operations() -> list[Operation]:
    """Return the 16 easyrsa_py commands, interleaved so every kind contends early."""
    groups = [
        [Operation(PRODUCT, REVOKE, name) for name in PRODUCT_REVOKE_NAMES],
        [Operation(PRODUCT, BUILD, name) for name in PRODUCT_BUILD_NAMES],
        [Operation(PRODUCT, SIGN, name) for name in SIGN_NAMES],
        [Operation(PRODUCT, RENEW, name) for name in RENEW_NAMES],
        [Operation(PRODUCT, GEN_CRL), Operation(PRODUCT, GEN_CRL)],
    ]
    return interleave(groups)


def reference_operations() -> list[Operation]:
    return [
        Operation(REFERENCE, BUILD, REFERENCE_BUILD_NAMES[0]),
        Operation(REFERENCE, REVOKE, REFERENCE_REVOKE_NAMES[0]),
        Operation(REFERENCE, GEN_CRL),
        Operation(REFERENCE, BUILD, REFERENCE_BUILD_NAMES[1]),
        Operation(REFERENCE, REVOKE, REFERENCE_REVOKE_NAMES[1]),
    ]


def interleave(groups: list[list[Operation]]) -> list[Operation]:
    merged: list[Operation] = []
    for index in range(max(len(group) for group in groups)):
        merged.extend(group[index] for group in groups if index < len(group))
    return merged


# --- the template PKI --------------------------------------------------------


def run_checked(pki: Path, *args: str) -> None:
    result = run_product(pki, *args)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the PKI that every burst starts from, once for the module.

    It contains a client certificate for each name a burst revokes or
    renews, a request for each name it signs, and one revoked certificate
    listed in crl.pem.
    """
    pki = tmp_path_factory.mktemp("concurrency-template") / "pki"
    run_checked(pki, "init-pki")
    run_checked(pki, f"--req-cn={CA_NAME}", "build-ca", "nopass")
    client_names = (
        *PRODUCT_REVOKE_NAMES, *REFERENCE_REVOKE_NAMES, *RENEW_NAMES, RETIRED_NAME
    )
    for name in client_names:
        run_checked(pki, BUILD, name, "nopass")
    for name in SIGN_NAMES:
        run_checked(pki, "gen-req", name, "nopass")
    run_checked(pki, REVOKE, RETIRED_NAME, "cessationOfOperation")
    run_checked(pki, GEN_CRL)
    return pki


def copy_template(template: Path, folder: Path) -> Path:
    pki = folder / "pki"
    shutil.copytree(template, pki, symlinks=True)
    return pki


# --- running a burst ---------------------------------------------------------


def start(
    operation: Operation, pki: Path, home: Path, wait: bool, script: Path | None
) -> subprocess.Popen[str]:
    if operation.tool == PRODUCT:
        options = [f"--wait-lock={WAIT_SECONDS}"] if wait else []
        command = product_command(*options, *operation.arguments)
        env = product_env(pki, home)
    else:
        assert script is not None
        command = [str(script), *operation.arguments]
        env = reference_env(pki.resolve(), home, True, None)
    return subprocess.Popen(
        command,
        cwd=home,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class Burst:
    """The processes of one burst, with every attempt of every operation."""

    operations: list[Operation]
    pki: Path
    home: Path
    wait: bool
    script: Path
    # The tools whose rejected processes are started again, as an operator
    # would retry them.
    retried: frozenset[str] = frozenset()
    attempts: list[Outcome] = field(default_factory=list)
    final: dict[int, Outcome] = field(default_factory=dict)
    _events: queue.Queue[tuple[int, Outcome]] = field(default_factory=queue.Queue)

    def launch(self, index: int) -> None:
        """Start operation `index` in a thread that reports its outcome on the queue."""
        operation = self.operations[index]
        process = start(operation, self.pki, self.home, self.wait, self.script)

        def collect() -> None:
            stdout, stderr = process.communicate(timeout=PROCESS_TIMEOUT)
            outcome = Outcome(operation, process.returncode, stdout, stderr)
            self._events.put((index, outcome))

        threading.Thread(target=collect, daemon=True).start()

    def run(self) -> None:
        """Start every operation before waiting for any, and collect the results.

        A rejected process of a tool in `retried` is started again when a
        process that held the lock ends, or when no process runs, up to
        MAX_ATTEMPTS times. easy-rsa 3.2.7 cannot wait for the lock, and
        without this it would finish only the operation that starts first.
        """
        for index in range(len(self.operations)):
            self.launch(index)
        running = len(self.operations)
        pending: list[int] = []
        tries = Counter(range(len(self.operations)))
        while running:
            index, outcome = self._events.get()
            running -= 1
            self.attempts.append(outcome)
            if self.should_retry(outcome, tries[index]):
                pending.append(index)
            else:
                self.final[index] = outcome
            if outcome.returncode == EXIT_LOCK and running:
                continue  # the process that rejected this one still holds the lock
            for again in pending:
                tries[again] += 1
                self.launch(again)
                running += 1
            pending = []

    def should_retry(self, outcome: Outcome, tries: int) -> bool:
        return (
            outcome.operation.tool in self.retried
            and outcome.returncode == EXIT_LOCK
            and tries < MAX_ATTEMPTS
        )

    @property
    def outcomes(self) -> list[Outcome]:
        """Return the last outcome of each operation, in the order of `operations`."""
        return [self.final[index] for index in range(len(self.operations))]


# --- reading the PKI ---------------------------------------------------------


def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def serial_text(serial: int) -> str:
    """Return a serial as OpenSSL writes it in index.txt: upper-case hex, even length."""
    text = f"{serial:X}"
    return "0" + text if len(text) % 2 else text


def rows_by_serial(pki: Path) -> dict[str, list[str]]:
    return {row[3]: row for row in read_index(pki)}


def rows_for(pki: Path, name: str) -> list[list[str]]:
    return [row for row in read_index(pki) if row[5] == f"/CN={name}"]


def public_key_bytes(item: Any) -> bytes:
    key = item.public_key()
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def private_key_public_bytes(path: Path) -> bytes:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return public_key_bytes(key)


@dataclass(frozen=True)
class TemplateState:
    """What the template contained, for the "changed nothing" checks."""

    rows: list[list[str]]
    issued: dict[str, bytes]
    serials: dict[str, str]

    @classmethod
    def read(cls, template: Path) -> TemplateState:
        issued_folder = template / "issued"
        issued = {path.stem: path.read_bytes() for path in issued_folder.glob("*.crt")}
        serials = {
            name: serial_text(load_certificate(issued_folder / f"{name}.crt").serial_number)
            for name in issued
        }
        return cls(read_index(template), issued, serials)


# --- checks ------------------------------------------------------------------


def check_exit_codes(outcomes: list[Outcome], wait: bool) -> None:
    """Each process finished, or was rejected by the lock with a clear message."""
    for outcome in outcomes:
        assert outcome.returncode in (0, EXIT_LOCK), outcome.describe()
        if outcome.finished:
            continue
        if outcome.operation.tool == PRODUCT:
            assert not wait, f"--wait-lock did not wait: {outcome.describe()}"
            assert_clear_lock_message(outcome)
        else:
            messages = REFERENCE_LOCK_MESSAGES
            assert any(m in outcome.stdout for m in messages), outcome.describe()


def assert_clear_lock_message(outcome: Outcome) -> None:
    assert outcome.stderr.lstrip().startswith(LOCK_MESSAGE), outcome.describe()
    assert "lock.file exists" in outcome.stderr, outcome.describe()
    # No process of a burst dies, so every rejection must name a live holder,
    # a holder that has not yet written its PID, or one that just released it.
    assert any(detail in outcome.stderr for detail in HELD_DETAILS), outcome.describe()
    assert "Traceback" not in outcome.stderr, outcome.describe()


def check_no_leftovers(pki: Path) -> None:
    assert not (pki / "lock.file").exists(), "a process left pki/lock.file behind"
    for path in sorted(pki.rglob("*")):
        for pattern in LEFTOVER_PATTERNS:
            assert not fnmatch.fnmatch(path.name, pattern), f"left behind: {path}"


def check_serials_unique(pki: Path) -> None:
    serials = Counter(row[3] for row in read_index(pki))
    repeated = {serial: count for serial, count in serials.items() if count > 1}
    assert not repeated, f"serials repeated in index.txt: {repeated}"


def check_index_format(pki: Path) -> None:
    text = (pki / "index.txt").read_text(encoding="utf-8")
    assert text.endswith("\n"), "index.txt does not end with a newline"
    for number, row in enumerate(read_index(pki), start=1):
        assert len(row) == 6, f"index.txt line {number} has {len(row)} fields: {row}"
        assert row[0] in ("V", "R"), f"index.txt line {number} has status {row[0]!r}"
        assert bool(row[2]) == (row[0] == "R"), f"index.txt line {number}: {row}"


def check_certificate_files(pki: Path) -> None:
    """Each certificate file's name is its serial, and each row has its file."""
    rows = rows_by_serial(pki)
    stored = sorted((pki / "certs_by_serial").glob("*.pem"))
    for path in stored:
        assert serial_text(load_certificate(path).serial_number) == path.stem, path
        assert path.stem in rows, f"{path} has no index.txt row"
    stored_serials = {path.stem for path in stored}
    assert stored_serials == set(rows), "certs_by_serial differs from index.txt"
    for path in (pki / "revoked" / "certs_by_serial").glob("*.crt"):
        assert serial_text(load_certificate(path).serial_number) == path.stem, path
        assert rows[path.stem][0] == "R", f"{path} has a row that is not revoked"


def check_issued_match_rows(pki: Path) -> None:
    rows = rows_by_serial(pki)
    for path in (pki / "issued").glob("*.crt"):
        certificate = load_certificate(path)
        serial = serial_text(certificate.serial_number)
        assert serial in rows, f"{path} (serial {serial}) has no index.txt row"
        row = rows[serial]
        assert row[0] == "V", f"{path} has row {row}"
        end_date = format_openssl_time(certificate.not_valid_after_utc)
        assert row[1] == end_date, f"{path}: {row}"
        assert row[5] == f"/CN={path.stem}", f"{path}: {row}"
        stored = load_certificate(pki / "certs_by_serial" / f"{serial}.pem")
        assert stored == certificate, f"{path} differs from certs_by_serial/{serial}.pem"


def check_old_rows_kept(pki: Path, before: TemplateState, outcomes: list[Outcome]) -> None:
    """The rows from before the burst come first, in order, changed only by revokes."""
    revoked = {
        before.serials[str(outcome.operation.name)]: outcome.operation.reason
        for outcome in outcomes
        if outcome.finished and outcome.operation.command == REVOKE
    }
    rows = read_index(pki)
    assert len(rows) >= len(before.rows), "index.txt lost rows"
    for old, new in zip(before.rows, rows, strict=False):
        if old[3] in revoked:
            assert new[0] == "R", f"finished revoke did not revoke {old}: {new}"
            assert new[2].endswith(f",{revoked[old[3]]}"), new
            assert [new[1], *new[3:]] == [old[1], *old[3:]], f"{old} became {new}"
        else:
            assert new == old, f"{old} became {new}"


def check_row_count(pki: Path, before: TemplateState, outcomes: list[Outcome]) -> None:
    added = sum(1 for o in outcomes if o.finished and o.operation.command in ADDS_ROW)
    assert len(read_index(pki)) == len(before.rows) + added


def check_revoke(pki: Path, before: TemplateState, outcome: Outcome) -> None:
    name = str(outcome.operation.name)
    serial = before.serials[name]
    row = rows_by_serial(pki)[serial]
    issued = pki / "issued" / f"{name}.crt"
    revoked_certificate = pki / "revoked" / "certs_by_serial" / f"{serial}.crt"
    if outcome.finished:
        assert row[0] == "R", f"{outcome.operation}: {row}"
        assert not issued.exists(), f"{outcome.operation} left {issued}"
        assert revoked_certificate.read_bytes() == before.issued[name]
        assert (pki / "revoked" / "private_by_serial" / f"{serial}.key").is_file()
        assert not (pki / "private" / f"{name}.key").exists()
    else:
        assert row[0] == "V", f"rejected {outcome.operation} changed {row}"
        assert issued.read_bytes() == before.issued[name]
        assert not revoked_certificate.exists()
        assert (pki / "private" / f"{name}.key").is_file()


def check_build(pki: Path, outcome: Outcome) -> None:
    name = str(outcome.operation.name)
    rows = rows_for(pki, name)
    issued = pki / "issued" / f"{name}.crt"
    key = pki / "private" / f"{name}.key"
    request = pki / "reqs" / f"{name}.req"
    if outcome.finished:
        assert len(rows) == 1, f"{outcome.operation}: rows {rows}"
        assert rows[0][0] == "V", rows
        assert rows[0][3] == serial_text(load_certificate(issued).serial_number)
        assert public_key_bytes(load_certificate(issued)) == private_key_public_bytes(key)
        assert request.is_file(), f"{outcome.operation} wrote no {request}"
    else:
        assert rows == [], f"rejected {outcome.operation} added {rows}"
        for path in (issued, key, request):
            assert not path.exists(), f"rejected {outcome.operation} wrote {path}"


def check_sign(pki: Path, outcome: Outcome) -> None:
    name = str(outcome.operation.name)
    rows = rows_for(pki, name)
    issued = pki / "issued" / f"{name}.crt"
    if outcome.finished:
        assert len(rows) == 1, f"{outcome.operation}: rows {rows}"
        assert rows[0][3] == serial_text(load_certificate(issued).serial_number)
        request = x509.load_pem_x509_csr((pki / "reqs" / f"{name}.req").read_bytes())
        assert public_key_bytes(load_certificate(issued)) == public_key_bytes(request)
    else:
        assert rows == [], f"rejected {outcome.operation} added {rows}"
        assert not issued.exists(), f"rejected {outcome.operation} wrote {issued}"


def check_renew(pki: Path, before: TemplateState, outcome: Outcome) -> None:
    name = str(outcome.operation.name)
    old_serial = before.serials[name]
    rows = rows_for(pki, name)
    issued = pki / "issued" / f"{name}.crt"
    renewed = pki / "renewed" / "issued" / f"{name}.crt"
    if outcome.finished:
        assert [row[0] for row in rows] == ["V", "V"], f"{outcome.operation}: rows {rows}"
        assert rows[0][3] == old_serial
        assert rows[1][3] == serial_text(load_certificate(issued).serial_number)
        assert renewed.read_bytes() == before.issued[name]
    else:
        serials = [row[3] for row in rows]
        assert serials == [old_serial], f"rejected {outcome.operation}: {rows}"
        assert issued.read_bytes() == before.issued[name]
        assert not renewed.exists(), f"rejected {outcome.operation} wrote {renewed}"


def check_operations(pki: Path, before: TemplateState, outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        command = outcome.operation.command
        if command == REVOKE:
            check_revoke(pki, before, outcome)
        elif command == BUILD:
            check_build(pki, outcome)
        elif command == SIGN:
            check_sign(pki, outcome)
        elif command == RENEW:
            check_renew(pki, before, outcome)


def revoked_rows(pki: Path) -> dict[int, str]:
    """Map each `R` row's serial to its reason ("" when none is given)."""
    return {
        int(row[3], 16): row[2].partition(",")[2]
        for row in read_index(pki)
        if row[0] == "R"
    }


def crl_reasons(path: Path) -> dict[int, str]:
    """Map each CRL entry's serial to its reason's index.txt spelling."""
    reasons = {}
    for entry in load_crl(path):
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reasons[entry.serial_number] = ""
        else:
            reasons[entry.serial_number] = INDEX_REASONS[reason]
    return reasons


INDEX_REASONS = {
    x509.ReasonFlags.key_compromise: "keyCompromise",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.cessation_of_operation: "cessationOfOperation",
}


def check_burst_crl(
    pki: Path, before: TemplateState, start_time: datetime, outcomes: list[Outcome]
) -> None:
    """crl.pem lists a set of `R` rows that existed at some moment of the burst."""
    verified = openssl_crl_verify(pki)
    assert verified.returncode == 0, verified.stderr
    assert crl_der_matches_pem(pki), "crl.der is not the DER form of crl.pem"
    listed = crl_reasons(pki / "crl.pem")
    revoked = revoked_rows(pki)
    for serial, reason in listed.items():
        assert revoked.get(serial) == reason, f"CRL entry {serial:X} ({reason}) is no R row"
    for row in before.rows:
        if row[0] == "R":
            assert int(row[3], 16) in listed, f"crl.pem lost {row}"
    if any(o.finished and o.operation.command == GEN_CRL for o in outcomes):
        last_update = load_crl(pki / "crl.pem").last_update_utc
        assert last_update >= start_time.replace(microsecond=0), "no gen-crl wrote crl.pem"


def check_final_crl(pki: Path) -> None:
    """One more gen-crl lists exactly the `R` rows."""
    run_checked(pki, GEN_CRL)
    assert crl_reasons(pki / "crl.pem") == revoked_rows(pki)


def openssl_ca_config(copy: Path) -> str:
    """Return a minimal `openssl ca` configuration for the PKI at `copy`."""
    return (
        "[ ca ]\n"
        "default_ca = concurrency_ca\n"
        "[ concurrency_ca ]\n"
        f"dir = {copy}\n"
        "database = $dir/index.txt\n"
        "new_certs_dir = $dir/certs_by_serial\n"
        "certificate = $dir/ca.crt\n"
        "private_key = $dir/private/ca.key\n"
        "serial = $dir/serial\n"
        "default_md = sha256\n"
        "policy = any_name\n"
        "[ any_name ]\n"
        "commonName = supplied\n"
    )


def check_openssl_updatedb(pki: Path, scratch: Path) -> None:
    copy = scratch / "openssl-copy"
    shutil.copytree(pki, copy, symlinks=True)
    config = scratch / "openssl-ca.cnf"
    config.write_text(openssl_ca_config(copy), encoding="utf-8")
    result = subprocess.run(
        ["openssl", "ca", "-config", str(config), "-updatedb"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # No certificate of the burst has expired, so openssl rewrites nothing.
    assert read_index(copy) == read_index(pki)


def check_reference_reads(pki: Path, scratch: Path, reference: Any) -> None:
    copy = scratch / "reference-copy"
    shutil.copytree(pki, copy, symlinks=True)
    result = reference.run(copy, GEN_CRL, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert crl_reasons(copy / "crl.pem") == revoked_rows(copy)


# --- the bursts --------------------------------------------------------------


def burst_and_check(
    template: Path,
    scratch: Path,
    operations: list[Operation],
    wait: bool,
    reference: Any,
    retried: frozenset[str] = frozenset(),
) -> Burst:
    """Run one burst on a copy of the template and check the PKI it leaves."""
    before = TemplateState.read(template)
    pki = copy_template(template, scratch)
    home = scratch / "home"
    home.mkdir()
    script = reference.script_dir / "easyrsa"
    burst = Burst(operations, pki, home, wait, script, retried)
    start_time = datetime.now(UTC)
    burst.run()
    outcomes = burst.outcomes

    check_exit_codes(burst.attempts, wait)
    check_no_leftovers(pki)
    check_index_format(pki)
    check_serials_unique(pki)
    check_old_rows_kept(pki, before, outcomes)
    check_row_count(pki, before, outcomes)
    check_operations(pki, before, outcomes)
    check_certificate_files(pki)
    check_issued_match_rows(pki)
    check_burst_crl(pki, before, start_time, outcomes)
    check_openssl_updatedb(pki, scratch)
    check_reference_reads(pki, scratch, reference)
    check_final_crl(pki)
    print_figures(burst)
    return burst


def print_figures(burst: Burst) -> None:
    """Print one line of figures for a burst that passed its checks (shown by pytest -s)."""
    processes = Counter(outcome.operation.tool for outcome in burst.attempts)
    rejected = Counter(o.operation.tool for o in burst.attempts if not o.finished)
    finished = Counter(o.operation.tool for o in burst.outcomes if o.finished)
    print(
        f"burst wait-lock={burst.wait}: "
        f"easyrsa_py processes={processes[PRODUCT]} finished={finished[PRODUCT]} "
        f"rejected={rejected[PRODUCT]}; "
        f"easy-rsa 3.2.7 processes={processes[REFERENCE]} finished={finished[REFERENCE]} "
        f"rejected={rejected[REFERENCE]}"
    )
    order = [
        f"{'py' if o.operation.tool == PRODUCT else '3.2.7'} {o.operation.command}"
        for o in burst.attempts
        if o.finished
    ]
    print("  finished in this order: " + ", ".join(order))


@pytest.mark.reference
@pytest.mark.parametrize("run", range(RUNS))
def test_burst_without_wait(template, tmp_path, reference_for, run):
    reference = reference_for(REFERENCE_VERSION)
    burst_and_check(template, tmp_path, product_operations(), False, reference)


@pytest.mark.reference
@pytest.mark.parametrize("run", range(RUNS))
def test_burst_with_wait_lock(template, tmp_path, reference_for, run):
    reference = reference_for(REFERENCE_VERSION)
    burst = burst_and_check(template, tmp_path, product_operations(), True, reference)
    assert all(outcome.finished for outcome in burst.outcomes)


@pytest.mark.reference
@pytest.mark.parametrize("wait", [False, True], ids=["no-wait", "wait-lock"])
@pytest.mark.parametrize("run", range(RUNS))
def test_burst_beside_reference(template, tmp_path, reference_for, run, wait):
    reference = reference_for(REFERENCE_VERSION)
    operations = interleave([product_operations(), reference_operations()])
    retried = frozenset((REFERENCE,))
    burst = burst_and_check(template, tmp_path, operations, wait, reference, retried)
    if wait:
        product_outcomes = [o for o in burst.outcomes if o.operation.tool == PRODUCT]
        assert all(outcome.finished for outcome in product_outcomes)


# --- the lock passing from one process to the next ---------------------------
#
# These races are too narrow for a burst to hit reliably, so each test
# replays one: the previous holder exits and the next one takes the lock
# between two reads of lock.file by the process that was rejected.


def dead_pid() -> int:
    """Return the PID of a process that has exited and been reaped."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_stale_message_rereads_new_holder(tmp_path, monkeypatch):
    lock_file = tmp_path / "lock.file"
    previous, current = dead_pid(), os.getppid()
    lock_file.write_text(f"{previous}\n")
    real_process_exists = lock._process_exists

    def hand_over(pid: int) -> bool:
        if pid == previous:
            lock_file.write_text(f"{current}\n")
        return real_process_exists(pid)

    monkeypatch.setattr(lock, "_process_exists", hand_over)
    error = lock.describe_holder(lock_file)
    assert "it is stale" not in str(error)
    assert f"process {current} holds it and is still running" in str(error)
    assert error.pid == current


def test_released_lock_not_called_irregular(tmp_path, monkeypatch):
    lock_file = tmp_path / "lock.file"
    lock_file.write_text(f"{os.getppid()}\n")
    real_read_pid = lock._read_pid

    def release_then_read(path: Path) -> int | None:
        path.unlink()
        return real_read_pid(path)

    monkeypatch.setattr(lock, "_read_pid", release_then_read)
    error = lock.describe_holder(lock_file)
    assert "not a regular file" not in str(error)
    assert "released it while this command checked it" in str(error)


def test_wait_lock_survives_handover(tmp_path, monkeypatch):
    """--wait-lock keeps waiting when the holder it read has exited meanwhile."""
    lock_file = tmp_path / "lock.file"
    lock_file.write_text(f"{os.getppid()}\n")
    previous = dead_pid()
    real_describe = lock.describe_holder
    calls = Counter[str]()

    def describe_previous_holder(path: Path, rereads: int = 3) -> LockHeld:
        calls["describe"] += 1
        if calls["describe"] == 1:
            return LockHeld(path, "read before the handover", pid=previous)
        lock_file.unlink()
        return real_describe(path, rereads)

    monkeypatch.setattr(lock, "describe_holder", describe_previous_holder)
    with PKILock(tmp_path, wait_seconds=WAIT_SECONDS):
        assert lock_file.read_text() == f"{os.getpid()}\n"
    assert calls["describe"] >= 2


def test_wait_lock_survives_release_during_check(tmp_path, monkeypatch):
    """--wait-lock keeps waiting when the lock file goes while its type is checked.

    Before the fix, the error's description checked the file's type once
    and --wait-lock's decision a second time, so the file goes just before
    that second check.
    """
    lock_file = tmp_path / "lock.file"
    lock_file.write_text(f"{os.getppid()}\n")
    real_is_file = Path.is_file
    checks = Counter[str]()

    def release_then_check(path: Path) -> bool:
        if path == lock_file:
            checks["lock"] += 1
            if checks["lock"] == 2:
                lock_file.unlink()
        return real_is_file(path)

    monkeypatch.setattr(Path, "is_file", release_then_check)
    # The holder releases the lock in any case, so a lock module that never
    # makes that second check still gets the lock.
    timer = threading.Timer(0.3, lock_file.unlink, kwargs={"missing_ok": True})
    timer.start()
    try:
        with PKILock(tmp_path, wait_seconds=WAIT_SECONDS):
            assert lock_file.read_text() == f"{os.getpid()}\n"
    finally:
        timer.join()
