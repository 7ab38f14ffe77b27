"""A full disk and a read-only PKI: a clear error, and nothing half-written.

A small tmpfs needs root and a mount, so the full disk is made two other
ways. RLIMIT_FSIZE in the child makes the kernel fail every write past N
bytes with EFBIG (CPython ignores SIGXFSZ, so the write returns the error).
EASYRSA_PY_FAULT=POINT:COUNT:enospc makes files.py raise ENOSPC at one
named write step. A read-only PKI is made with chmod. When the tests run
as root, which ignores file modes, the command runs as user `nobody` on a
copy that user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from forked_cli import run_forked
from pkitools import pki_state, run_product
from test_crashes import Case, core_state, measure_outcomes

from easyrsa_py import journal

FIXTURE = "v3.2.7-rsa"
CASES = [
    Case(FIXTURE, ("revoke", "alice", "keyCompromise")),
    Case(FIXTURE, ("revoke", "alice", "--gen-crl")),
    Case(FIXTURE, ("gen-crl",)),
    Case(FIXTURE, ("update-db",)),
]
# Sizes around those of the files the cases write (index.txt is about 700
# bytes, crl.pem about 800), so the limit stops a different write each time.
FILE_SIZE_LIMITS = [16, 100, 400, 600, 700, 720, 760, 800, 1000, 100_000]
# Set RLIMIT_FSIZE to the first argument, then run the command that follows it.
LIMIT_WRAPPER = (
    "import os, resource, sys; "
    "limit = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)
TEMP_SUFFIX = ".tmp"


def leftover_files(pki: Path) -> list[Path]:
    return [
        path
        for path in pki.rglob("*")
        if path.name.endswith(TEMP_SUFFIX) or path.name == "lock.file" or journal.FOLDER_PREFIX in path.name
    ]


def check_failed_cleanly(pki: Path, before, label: str, case: Case, outcomes, stderr: str) -> str:
    """Check what a failed run left, and return "before", "revoked" or "forward".

    The undo journal takes back every change a failed command made, so the
    PKI is byte for byte as it was ("before"). A revocation is never taken
    back once index.txt records it: if its CRL then fails, the revocation
    stands with the old CRL ("revoked"), and if its renames or moves fail,
    a redo file is left for the next command to finish them ("forward").
    """
    if case.revokes and "The revocation is under way but could not be completed" in stderr:
        assert "the next easyrsa-py command finishes it" in stderr, label
        redo = [folder / journal.REDO_NAME for folder in pki.glob(f"{journal.FOLDER_PREFIX}*")]
        assert len(redo) == 1, f"{label}: not one journal folder"
        assert redo[0].is_file(), f"{label}: no redo file"
        return "forward"
    if case.revokes and "but writing the CRL failed" in stderr:
        assert "The revocation stands and the old CRL is unchanged" in stderr, label
        assert leftover_files(pki) == [], f"{label}: temporary files, the lock or the journal were left behind"
        assert core_state(pki) == outcomes.after, f"{label}: the revocation is not complete"
        assert (pki / "crl.pem").read_bytes() == outcomes.crls_before["crl.pem"], f"{label}: the CRL changed"
        return "revoked"
    assert leftover_files(pki) == [], f"{label}: temporary files, the lock or the journal were left behind"
    assert pki_state(pki) == before, f"{label}: the PKI changed"
    return "before"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_file_size_limit(case, pki_copy):
    outcomes = measure_outcomes(case, pki_copy)
    failures = 0
    for limit in FILE_SIZE_LIMITS:
        pki = pki_copy(case.fixture)
        before = pki_state(pki)
        result = run_product(pki, *case.command, prefix=(sys.executable, "-c", LIMIT_WRAPPER, str(limit)))
        label = f"{case} with RLIMIT_FSIZE={limit}"
        if result.returncode == 0:
            assert core_state(pki) == outcomes.after, label
            continue
        failures += 1
        assert result.returncode == 1, f"{label}: {result.stderr}"
        assert "File too large" in result.stderr, f"{label}: {result.stderr}"
        assert str(pki) in result.stderr, f"{label}: the message names no PKI file: {result.stderr}"
        assert "Traceback" not in result.stderr, label
        left = check_failed_cleanly(pki, before, label, case, outcomes, result.stderr)
        _finish(pki, case, outcomes, label, left)
    assert failures > 0


@pytest.mark.parametrize("case", CASES, ids=str)
def test_no_space_at_each_write(case, pki_copy):
    outcomes = measure_outcomes(case, pki_copy)
    failures = 0
    for point in ("write-temp-before", "write-temp-after", "write-rename-before", "journal-record"):
        for count in range(1, 20):
            pki = pki_copy(case.fixture)
            before = pki_state(pki)
            result = run_forked(pki, case.command, f"{point}:{count}:enospc")
            label = f"{case} with ENOSPC at {point}:{count}"
            if result.returncode == 0:
                break
            assert result.returncode == 1, f"{label}: {result.stderr}"
            assert "No space left" in result.stderr, f"{label}: {result.stderr}"
            assert "Traceback" not in result.stderr, label
            left = check_failed_cleanly(pki, before, label, case, outcomes, result.stderr)
            failures += 1
            _finish(pki, case, outcomes, label, left)
        else:
            pytest.fail(f"{point} was reached 20 times")
    assert failures > 0


def _finish(pki: Path, case: Case, outcomes, label: str, left: str) -> None:
    """Check that running again, with space, does the whole command.

    A revocation that is kept, or that a redo file finishes, is not run
    again: gen-crl runs instead.
    """
    command = case.command if left == "before" else [*case.options, "gen-crl"]
    result = run_forked(pki, command)
    assert result.returncode == 0, f"{label}: the run with space failed: {result.stderr}"
    if left == "forward":
        assert "Finished an interrupted revocation of process" in result.stderr, label
    assert leftover_files(pki) == [], f"{label}: temporary files, the lock or the journal were left behind"
    assert core_state(pki) == outcomes.after, label


# --- read-only PKI ----------------------------------------------------------------


def _unprivileged_user() -> int | None:
    """Return the uid to run as, or None when this process is not root."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam("nobody").pw_uid


@pytest.fixture
def owned_pki(pki_copy) -> Iterator[Path]:
    """Copy the fixture PKI to a folder the test's command user owns."""
    user = _unprivileged_user()
    base = Path(tempfile.mkdtemp(prefix="readonly-pki-"))
    pki = base / "pki"
    shutil.copytree(pki_copy(FIXTURE), pki, symlinks=True)
    if user is not None:
        for path in [base, *base.rglob("*")]:
            os.chown(path, user, user, follow_symlinks=False)
    yield pki
    for path in [base, *base.rglob("*")]:
        if path.is_dir():
            os.chmod(path, 0o700)
    shutil.rmtree(base)


def _make_read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        os.chmod(path, mode & ~0o222)


READ_ONLY_CASES = [
    (["--batch", "revoke", "alice"], "Cannot create the lock file"),
    (["--batch", "gen-crl"], "Cannot create the lock file"),
    (["--batch", "update-db"], "Cannot create the lock file"),
    (["--batch", "--nolockfile", "revoke", "alice"], "is not writable"),
    (["--batch", "--nolockfile", "gen-crl"], "Permission denied for"),
    (["--batch", "--nolockfile", "update-db"], "Permission denied for"),
]


@pytest.mark.parametrize(("arguments", "message"), READ_ONLY_CASES, ids=lambda value: str(value))
def test_read_only_pki(owned_pki, arguments, message):
    _make_read_only(owned_pki)
    before = pki_state(owned_pki)
    result = run_forked(owned_pki, arguments, user=_unprivileged_user())
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert str(owned_pki) in result.stderr
    assert "Traceback" not in result.stderr
    assert pki_state(owned_pki) == before


def test_read_only_revoked_folder(owned_pki):
    folder = owned_pki / "revoked" / "certs_by_serial"
    os.chmod(folder, 0o500)
    before = pki_state(owned_pki)
    result = run_forked(owned_pki, ["--batch", "revoke", "alice"], user=_unprivileged_user())
    assert result.returncode == 1, result.stderr
    assert f"the folder {folder} is not writable" in result.stderr
    assert pki_state(owned_pki) == before


def test_read_only_crl_keeps_mode(owned_pki):
    # The folder is writable, so the CRL is replaced by rename, as `cp -p`
    # would overwrite it, and keeps its read-only mode.
    os.chmod(owned_pki / "crl.pem", 0o444)
    old = (owned_pki / "crl.pem").read_bytes()
    result = run_forked(owned_pki, ["--batch", "gen-crl"], user=_unprivileged_user())
    assert result.returncode == 0, result.stderr
    assert (owned_pki / "crl.pem").read_bytes() != old
    assert stat.S_IMODE((owned_pki / "crl.pem").stat().st_mode) == 0o444
