"""Crash safety: a command killed at any point leaves a PKI that is whole.

Each test kills a command with SIGKILL, either at every fault point of
easyrsa_py.files (EASYRSA_PY_FAULT=POINT:COUNT, for COUNT = 1, 2, ... until
the command finishes before reaching the point again) or at random times.
After each kill it checks that:

- the PKI, index.txt and files together, equals the state before the
  command or the state after it. A revocation may also stop with its
  index.txt row already `R` and some files not yet moved ("partial"). A
  revocation is never undone once written, since a CRL may list it, so
  its redo file then lets the next run of any command finish the moves.
- crl.pem and crl.der are each a complete CRL signed by the CA.
- easy-rsa 3.2.7 in batch mode stops at the lock left behind with exit
  code 17 and changes nothing.
- easy-rsa 3.2.7 can read the PKI: gen-crl on a copy, with the lock
  removed in the copy only, succeeds and lists the revoked rows.
- the next easyrsa_py run, with the stale lock still in place, takes the
  lock over, undoes the interrupted command when its undo log is left or
  finishes it from its redo file (saying which), and reaches the after
  state. It is the same command, or gen-crl when the revocation is
  already written.

Temporary files that a kill leaves beside a target (`.NAME.<hex>.tmp`) are
allowed: no tool reads them. The `.old` backups of index.txt and
index.txt.attr must each hold either their before or their after content.

The random-time tests run EASYRSA_PY_CRASH_RUNS kills for each of their
four cases (default 8, so 32 in all). For a long run of 2,000 kills:

    EASYRSA_PY_CRASH_RUNS=500 python -m pytest -q tests/test_crashes.py -k random

EASYRSA_PY_CRASH_SEED fixes the random delays so a failure can be replayed.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from forked_cli import run_forked
from pkitools import (
    product_command,
    product_env,
    read_index,
    revoked_serials,
    run_product,
)

from easyrsa_py import journal
from easyrsa_py.errors import EXIT_LOCK
from easyrsa_py.files import FAULT_POINTS, FAULT_VARIABLE

TEMP_FILE = re.compile(r"\.(?P<target>.+)\.[0-9a-f]{12}\.tmp")
BACKUPS = ("index.txt.old", "index.txt.attr.old")
CRL_FILES = ("crl.pem", "crl.der")
LOCK = "lock.file"
# Bounds the COUNT loop of one fault point; no command here reaches one
# point this often.
MAX_HITS = 40
RANDOM_RUNS = int(os.environ.get("EASYRSA_PY_CRASH_RUNS", "8"))
KILLED = -signal.SIGKILL
TOOK_OVER = "Took over the"
UNDID = "Undid an interrupted command of process"
FINISHED = "Finished an interrupted revocation of process"
# An empty lock file counts as stale once it is older than a minute.
EMPTY_LOCK_AGE = 61


@dataclass(frozen=True)
class Case:
    """One command run on one fixture PKI."""

    fixture: str
    arguments: tuple[str, ...]
    passphrase: str | None = None

    @property
    def options(self) -> list[str]:
        passin = [f"--passin=pass:{self.passphrase}"] if self.passphrase else []
        return ["--batch", *passin]

    @property
    def command(self) -> list[str]:
        return [*self.options, *self.arguments]

    @property
    def revokes(self) -> bool:
        return self.arguments[0].startswith("revoke")

    def __str__(self) -> str:
        return "-".join((self.fixture, *self.arguments))


EC_PASS = "fixture-ec-ca-pass"
CASES = [
    Case("v3.2.7-rsa", ("revoke", "alice", "keyCompromise")),
    Case("v3.2.7-ed25519", ("revoke", "alice")),
    Case("v3.2.2-ec", ("revoke", "alice", "superseded"), EC_PASS),
    Case("v3.1.0-rsa", ("revoke", "carol")),
    Case("v3.2.7-rsa", ("revoke-renewed", "carol")),
    Case("v3.2.7-rsa", ("revoke-expired", "erin")),
    Case("v3.2.7-rsa", ("revoke", "alice", "--gen-crl")),
    Case("v3.2.2-ec", ("revoke", "alice", "--gen-crl"), EC_PASS),
    Case("v3.2.7-rsa", ("gen-crl",)),
    Case("v3.2.2-ec", ("gen-crl",), EC_PASS),
    Case("v3.2.7-rsa", ("update-db",)),
    Case("v3.1.0-rsa", ("update-db",)),
]


# --- PKI states ---------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _normalized_index(path: Path) -> str:
    """Return index.txt with revocation dates masked, since two runs differ only there."""
    rows = read_index(path.parent, path.name)
    return "\n".join("\t".join([row[0], row[1], row[2].partition(",")[2], *row[3:]]) for row in rows)


def core_state(pki: Path) -> dict[str, tuple[int, str]]:
    """Map each path to its mode and content, leaving out what a crash may leave behind.

    Left out: the lock file, temporary files, the CRLs and the `.old`
    backups, which the other checks cover, and the undo journal.
    """
    state: dict[str, tuple[int, str]] = {}
    for entry in sorted(pki.rglob("*")):
        relative = entry.relative_to(pki).as_posix()
        if relative in (LOCK, *CRL_FILES, *BACKUPS) or TEMP_FILE.fullmatch(entry.name):
            continue
        if relative.startswith(journal.FOLDER_PREFIX):
            continue
        mode = entry.lstat().st_mode & 0o7777
        if entry.is_dir():
            state[relative] = (mode, "folder")
        elif relative == "index.txt":
            state[relative] = (mode, _normalized_index(entry))
        else:
            state[relative] = (mode, _digest(entry))
    return state


def file_bytes(pki: Path, names: tuple[str, ...]) -> dict[str, bytes | None]:
    return {name: (pki / name).read_bytes() if (pki / name).exists() else None for name in names}


@dataclass
class Outcomes:
    """The before and after states of one case, from uncut runs."""

    before: dict[str, tuple[int, str]]
    after: dict[str, tuple[int, str]]
    backups: list[dict[str, bytes | None]]
    crls_before: dict[str, bytes | None]
    duration: float


def run_case(pki: Path, case: Case, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the case as a new process, with EASYRSA_PY_FAULT set to `fault`."""
    env = {FAULT_VARIABLE: fault} if fault else None
    return run_product(pki, *case.command, env=env)


def measure_outcomes(case: Case, pki_copy) -> Outcomes:
    before_pki = pki_copy(case.fixture)
    after_pki = pki_copy(case.fixture)
    started = time.monotonic()
    result = run_case(after_pki, case)
    duration = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    return Outcomes(
        before=core_state(before_pki),
        after=core_state(after_pki),
        backups=[file_bytes(before_pki, BACKUPS), file_bytes(after_pki, BACKUPS)],
        crls_before=file_bytes(before_pki, CRL_FILES),
        duration=duration,
    )


# --- checks after a kill --------------------------------------------------------


def check_crls(pki: Path, outcomes: Outcomes, label: str) -> None:
    """Check that each CRL file is its old bytes or a complete new CRL for this index.txt."""
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    for name in CRL_FILES:
        if not (pki / name).exists():
            assert outcomes.crls_before[name] is None, f"{label}: {name} was deleted"
            continue
        data = (pki / name).read_bytes()
        if data == outcomes.crls_before[name]:
            continue
        if name.endswith(".pem"):
            crl = x509.load_pem_x509_crl(data)
        else:
            crl = x509.load_der_x509_crl(data)
        assert crl.is_signature_valid(ca.public_key()), f"{label}: {name} has a bad signature"
        serials = {entry.serial_number for entry in crl}
        assert serials == revoked_serials(pki), f"{label}: {name} does not list the R rows"


def check_leftovers(pki: Path, outcomes: Outcomes, label: str) -> None:
    for entry in pki.rglob("*"):
        match = TEMP_FILE.fullmatch(entry.name)
        if match:
            assert (entry.parent / match["target"]).exists(), f"{label}: {entry} has no target"
    for name in BACKUPS:
        content = file_bytes(pki, (name,))[name]
        allowed = [backups[name] for backups in outcomes.backups]
        assert content in allowed, f"{label}: {name} is neither its before nor its after content"


def is_partial_revocation(state: dict[str, tuple[int, str]], outcomes: Outcomes) -> bool:
    """Return whether `state` is a revocation stopped after index.txt was written.

    index.txt (and index.txt.attr) are already as after the command, and
    every other path is as before it or as after it.
    """
    if state.get("index.txt") != outcomes.after.get("index.txt"):
        return False
    for path in set(state) | set(outcomes.before) | set(outcomes.after):
        value = state.get(path)
        if value != outcomes.before.get(path) and value != outcomes.after.get(path):
            return False
    return True


def has_redo_file(pki: Path) -> bool:
    """Return whether a killed command left a redo file, whose steps the next run must finish."""
    return any((folder / journal.REDO_NAME).is_file() for folder in pki.glob(f"{journal.FOLDER_PREFIX}*"))


def has_undo_log(pki: Path) -> bool:
    """Return whether a killed command left an undo log, which the next run must undo."""
    return any((folder / journal.LOG_NAME).is_file() for folder in pki.glob(f"{journal.FOLDER_PREFIX}*"))


def check_script_stops(pki: Path, case: Case, reference, label: str) -> None:
    """Check that easy-rsa 3.2.7 stops at the lock a kill left, changing nothing."""
    if not (pki / LOCK).exists():
        return
    unchanged = core_state(pki), file_bytes(pki, (LOCK, *CRL_FILES, *BACKUPS)), has_undo_log(pki)
    script = reference.run(pki, *case.command, check=False)
    assert script.returncode == EXIT_LOCK, f"{label}: easy-rsa 3.2.7 output {script.stdout}"
    assert (core_state(pki), file_bytes(pki, (LOCK, *CRL_FILES, *BACKUPS)), has_undo_log(pki)) == unchanged, label


def check_script_reads(pki: Path, case: Case, reference, label: str) -> None:
    """Run easy-rsa 3.2.7's gen-crl on a copy: OpenSSL must accept index.txt as it is."""
    with tempfile.TemporaryDirectory(prefix="crash-copy-") as scratch:
        copy = Path(scratch) / "pki"
        shutil.copytree(pki, copy, symlinks=True)
        (copy / LOCK).unlink(missing_ok=True)
        result = reference.run(copy, *case.options, "gen-crl", check=False)
        assert result.returncode == 0, f"{label}: easy-rsa 3.2.7 gen-crl failed: {result.stderr}"
        crl = x509.load_pem_x509_crl((copy / "crl.pem").read_bytes())
        assert {entry.serial_number for entry in crl} == revoked_serials(copy), label


def classify(pki: Path, case: Case, outcomes: Outcomes, label: str) -> str:
    """Return "before", "after" or "partial" for a killed run's PKI, or fail the test."""
    state = core_state(pki)
    if state == outcomes.before:
        return "before"
    if state == outcomes.after:
        return "after"
    if case.revokes and is_partial_revocation(state, outcomes):
        return "partial"
    changed = sorted(
        path for path in set(state) | set(outcomes.before) if state.get(path) != outcomes.before.get(path)
    )
    pytest.fail(f"{label}: the PKI is neither before nor after the command; changed: {changed}")


def situation(pki: Path, outcomes: Outcomes) -> str:
    """Return a digest of everything the checks after a kill look at.

    Temporary files count by their target's name only, and each CRL only by
    whether it is still the old one, since random names and signing times
    never matter. Two kills that leave the same situation need the slower
    checks only once.
    """
    leftovers = sorted(
        f"{entry.parent}/{match['target']}"
        for entry in pki.rglob("*")
        if (match := TEMP_FILE.fullmatch(entry.name))
    )
    lock = pki / LOCK
    lock_kind = "none"
    if lock.exists():
        lock_kind = "pid" if lock.read_text().strip() else "empty"
    crls = file_bytes(pki, CRL_FILES)
    crl_is_old = [crls[name] == outcomes.crls_before[name] for name in CRL_FILES]
    parts = [
        repr(core_state(pki)),
        repr(file_bytes(pki, BACKUPS)),
        repr(crl_is_old),
        repr(leftovers),
        lock_kind,
        repr(has_undo_log(pki)),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def check_after_kill(
    pki: Path, case: Case, outcomes: Outcomes, reference, label: str, seen: set[str] | None = None
) -> str:
    """Check a killed run's PKI, then finish it; return the state it was in.

    With `seen`, the checks that run other processes are skipped for a
    situation already checked.
    """
    found = classify(pki, case, outcomes, label)
    check_crls(pki, outcomes, label)
    check_leftovers(pki, outcomes, label)
    key = situation(pki, outcomes)
    if seen is not None and key in seen:
        return found
    if seen is not None:
        seen.add(key)
    check_script_stops(pki, case, reference, label)
    check_script_reads(pki, case, reference, label)
    finish(pki, case, outcomes, found, label)
    return found


def age_empty_lock(pki: Path) -> None:
    """Date an empty lock file back past the minute after which it counts as stale."""
    lock = pki / LOCK
    if lock.exists() and not lock.read_text().strip():
        old = time.time() - EMPTY_LOCK_AGE
        os.utime(lock, (old, old))


def finish(pki: Path, case: Case, outcomes: Outcomes, found: str, label: str) -> None:
    """Run the command again with the stale lock in place, and check it reaches the after state.

    A "partial" state always has its undo log. The after state without a
    log is final, so the command is done and gen-crl runs in its place.
    """
    undo = has_undo_log(pki)
    redo = has_redo_file(pki)
    lock_left = (pki / LOCK).exists()
    if found == "partial":
        assert redo, f"{label}: a partial revocation left no redo file"
    age_empty_lock(pki)
    # A revocation already written, or listed in a redo file, cannot be run
    # again, so gen-crl runs in its place. Any other command left with an
    # undo log runs again once it is undone.
    revoked_already = redo or (case.revokes and found != "before")
    rerun = not revoked_already and (undo or found == "before")
    command = case.command if rerun else [*case.options, "gen-crl"]
    result = run_forked(pki, command)
    assert result.returncode == 0, f"{label}: the run after the kill failed: {result.stderr}"
    if lock_left:
        assert TOOK_OVER in result.stderr, f"{label}: {result.stderr}"
    if undo and not redo:
        assert UNDID in result.stderr, f"{label}: {result.stderr}"
    if redo:
        assert FINISHED in result.stderr, f"{label}: {result.stderr}"
    assert list(pki.glob(f"{journal.FOLDER_PREFIX}*")) == [], f"{label}: the undo journal is left"
    assert not (pki / LOCK).exists(), label
    assert core_state(pki) == outcomes.after, f"{label}: the run after the kill did not finish"
    check_crls(pki, outcomes, label)


# --- the tests --------------------------------------------------------------------


@pytest.fixture
def reference_327(reference_for):
    return reference_for("3.2.7")


@pytest.mark.reference
@pytest.mark.parametrize("case", CASES, ids=str)
def test_kill_at_fault_points(case, pki_copy, reference_327):
    outcomes = measure_outcomes(case, pki_copy)
    seen: set[str] = set()
    found = []
    for point in FAULT_POINTS:
        for count in range(1, MAX_HITS + 1):
            pki = pki_copy(case.fixture)
            result = run_forked(pki, case.command, f"{point}:{count}")
            if result.returncode != KILLED:
                assert result.returncode == 0, f"{point}:{count}: {result.stderr}"
                assert core_state(pki) == outcomes.after, f"{point}:{count}"
                break
            label = f"{case} killed at {point}:{count}"
            found.append(check_after_kill(pki, case, outcomes, reference_327, label, seen))
            shutil.rmtree(pki.parent)
        else:
            pytest.fail(f"{point} was reached more than {MAX_HITS} times")
    assert "before" in found
    if case.arguments[0] != "gen-crl":
        assert "after" in found
    if case.revokes:
        assert "partial" in found


def test_fault_points_cover_each_step(pki_copy):
    """Check that `revoke --gen-crl` reaches every kind of write step, so the point list is not stale.

    The revocation itself goes forward before its first rename, so only the
    CRL that follows it records an undo step (journal-record).
    """
    case = Case("v3.2.7-rsa", ("revoke", "alice", "--gen-crl"))
    reached = []
    for point in FAULT_POINTS:
        pki = pki_copy(case.fixture)
        if run_case(pki, case, point).returncode == KILLED:
            reached.append(point)
    assert reached == list(FAULT_POINTS)


def test_fault_variable_rejects_unknown_point(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "--batch", "gen-crl", env={FAULT_VARIABLE: "no-such-point"})
    assert result.returncode != 0
    assert "no-such-point" in result.stderr
    assert not (pki / LOCK).exists()


def _kill_after(pki: Path, case: Case, delay: float) -> subprocess.CompletedProcess[str]:
    """Start the command and SIGKILL it after `delay` seconds unless it has finished."""
    with tempfile.TemporaryDirectory(prefix="crash-home-") as home:
        process = subprocess.Popen(
            product_command(*case.command),
            cwd=home,
            env=product_env(pki, Path(home)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=60)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


RANDOM_CASES = [CASES[0], CASES[6], CASES[8], CASES[10]]


@pytest.mark.reference
@pytest.mark.parametrize("case", RANDOM_CASES, ids=str)
def test_kill_at_random_times(case, pki_copy, reference_327):
    seed = int(os.environ.get("EASYRSA_PY_CRASH_SEED", str(random.randrange(2**32))))
    generator = random.Random(seed)
    outcomes = measure_outcomes(case, pki_copy)
    found = []
    for run in range(RANDOM_RUNS):
        pki = pki_copy(case.fixture)
        # Up to 1.5 times an uncut run, so some kills land after it finished.
        delay = generator.uniform(0, outcomes.duration * 1.5)
        result = _kill_after(pki, case, delay)
        label = f"{case} run {run} killed after {delay:.3f} s (EASYRSA_PY_CRASH_SEED={seed})"
        if result.returncode == KILLED:
            found.append(check_after_kill(pki, case, outcomes, reference_327, label))
        else:
            assert result.returncode == 0, f"{label}: {result.stderr}"
            assert core_state(pki) == outcomes.after, label
        shutil.rmtree(pki.parent)
