"""Crash safety of the issuing commands: killed, out of disk space, read-only.

A dry run in a forked child counts how often each command reaches each
fault point of easyrsa_py.files. Each case is then killed with SIGKILL at
every one of those hits, and, for the write and mkdir points, given ENOSPC
there. After a kill:

- no file is half-written: every certificate, request, key and index.txt
  in the PKI parses, and every certificate file has its index.txt row.
- the PKI equals its state before or after the command (files whose
  content is random, such as keys, compare by name and mode), or the kill
  left an undo log with which the next run restores the state before.
- easy-rsa 3.2.7 in batch mode stops at the lock left behind with exit
  code 17 and changes nothing. On a copy with the lock removed, easy-rsa
  3.2.7 signs a CRL from the PKI as it is.
- the next easyrsa_py run of the same command, with the stale lock still
  in place, takes the lock over, undoes the interrupted command when its
  log is left (saying so), and reaches the after state.

ENOSPC while a file or folder is written must give an error naming the
disk space and leave the PKI byte for byte as it was.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: F401 - loaded before fork
from forked_cli import run_forked
from pkitools import pki_state, product_env, read_index
from test_full_disk import _make_read_only, _unprivileged_user

# Loaded before any fork, so a child running as another user imports nothing.
from easyrsa_py import (  # noqa: F401
    cli,
    csr,
    exports,
    files,
    inline,
    issuing,
    journal,
    keys,
    lock,
    pkiinit,
    profiles,
    renewal,
    signing,
    tlskeys,
)
from easyrsa_py.errors import EXIT_LOCK

KILLED = -signal.SIGKILL
TOOK_OVER = "Took over the"
UNDID = "Undid an interrupted command of process"
# An empty lock file counts as stale once it is older than a minute.
EMPTY_LOCK_AGE = 61
SLOW_VARIABLE = "EASYRSA_PY_CRASH_RSA"
LOCK = "lock.file"
SERIAL_NAME = re.compile(r"[0-9A-F]{16,}(?=\.)")
TEMP_FILE = re.compile(r"\.(?P<target>.+)\.[0-9a-f]{12}\.tmp")
# Points where a full disk can fail a write; the others only rename or
# delete. write-temp-after also covers write-temp-before's path, with a
# temporary file to remove as well, and journal-record a full disk while
# the undo log grows.
WRITE_POINTS = ("write-temp-after", "mkdir-before", "journal-record")
ED25519 = ("--batch", "--use-algo=ed", "--curve=ed25519")


@dataclass(frozen=True)
class Case:
    """One command run on a copy of a fixture PKI."""

    name: str
    fixture: str
    arguments: tuple[str, ...]
    # Commands run before the measured one, to build the starting PKI.
    setup: tuple[tuple[str, ...], ...] = field(default=())

    def __str__(self) -> str:
        return self.name


CASES = [
    Case("build-client-full", "v3.2.7-ed25519", (*ED25519, "build-client-full", "zed", "nopass")),
    Case(
        "build-ca",
        "v3.2.7-ed25519",
        (*ED25519, "--req-cn=Crash CA", "build-ca", "nopass"),
        setup=((*ED25519, "init-pki"),),
    ),
    Case("renew", "v3.2.7-ed25519", (*ED25519, "renew", "alice")),
    Case("expire", "v3.2.7-ed25519", ("--batch", "expire", "alice")),
    Case("set-pass", "v3.2.7-ed25519", ("--batch", "--passout=pass:crash-pass-1234", "set-pass", "alice")),
    Case("export-p12", "v3.2.7-ed25519", ("--batch", "export-p12", "alice", "nopass")),
    Case("gen-tls-crypt-key", "v3.2.7-ed25519", ("--batch", "gen-tls-crypt-key")),
    Case("gen-dh", "v3.2.7-ed25519", ("--batch", "--keysize=512", "gen-dh")),
    Case("init-pki", "v3.2.7-ed25519", (*ED25519, "init-pki")),
]
# RSA key generation makes each kill slower, so the RSA cases are opt-in.
if os.environ.get(SLOW_VARIABLE):
    CASES += [
        Case("build-client-full-rsa", "v3.2.7-rsa", ("--batch", "build-client-full", "zed", "nopass")),
        Case("renew-rsa", "v3.2.7-rsa", ("--batch", "renew", "alice")),
    ]


# --- the dry run ----------------------------------------------------------------


def count_fault_points(pki: Path, arguments: list[str]) -> dict[str, int]:
    """Run the command once in a forked child and count the hits of each fault point."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        _count_in_child(pki, arguments, writer)
    os.close(writer)
    data = b""
    while chunk := os.read(reader, 65536):
        data += chunk
    os.close(reader)
    os.waitpid(pid, 0)
    code, counts = json.loads(data or b"[70, {}]")
    assert code == 0, f"the dry run of {arguments} failed"
    return dict(counts)


def _count_in_child(pki: Path, arguments: list[str], writer: int) -> None:
    """Replace the fault hook with a counter, run the CLI and send the counts; never return."""
    counts: collections.Counter[str] = collections.Counter()
    code = 70

    def record(point: str, path: Path | None = None) -> None:
        counts[point] += 1

    try:
        files.fault_point = record  # type: ignore[assignment]
        lock.fault_point = record  # type: ignore[assignment]
        home = tempfile.mkdtemp(prefix="fault-count-")
        os.chdir(home)
        os.environ.clear()
        os.environ.update(product_env(pki, Path(home)))
        with open(os.devnull, "w") as sink:
            sys.stdout = sys.stderr = sink
            code = cli.main(arguments)
    finally:
        os.write(writer, json.dumps([code, counts]).encode())
        os._exit(0)


def fault_hits(counts: dict[str, int], points: tuple[str, ...] | None = None) -> list[tuple[str, int]]:
    return [
        (point, hit)
        for point in (points or files.FAULT_POINTS)
        for hit in range(1, counts.get(point, 0) + 1)
    ]


# --- PKI states ---------------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(pki: Path) -> dict[str, tuple[int, str]]:
    """Map each path to its mode and SHA-256, leaving out the lock, temporary files, .old backups and the undo journal."""
    state: dict[str, tuple[int, str]] = {}
    for entry in sorted(pki.rglob("*")):
        relative = entry.relative_to(pki).as_posix()
        if relative == LOCK or TEMP_FILE.fullmatch(entry.name) or entry.name.endswith(".old"):
            continue
        if relative.startswith(journal.FOLDER_PREFIX):
            continue
        mode = stat.S_IMODE(entry.lstat().st_mode)
        state[relative] = (mode, "folder" if entry.is_dir() else _digest(entry))
    return state


def shape(state: dict[str, tuple[int, str]], before: dict[str, tuple[int, str]]) -> dict[str, tuple[int, str]]:
    """Replace each digest by "kept" or "new", so two runs with random keys and serials compare equal.

    A new file named for a serial (certs_by_serial/SERIAL.pem) is renamed
    to `SERIAL`, since the serial is random.
    """
    shaped = {}
    for path, (mode, digest) in state.items():
        if before.get(path) == (mode, digest):
            shaped[path] = (mode, "kept")
        else:
            shaped[SERIAL_NAME.sub("SERIAL", path)] = (mode, "new")
    return shaped


@dataclass
class Outcomes:
    before: dict[str, tuple[int, str]]
    after_shape: dict[str, tuple[int, str]]
    backups_before: dict[str, bytes | None]
    counts: dict[str, int]


def prepared_pki(case: Case, pki_copy) -> Path:
    pki = pki_copy(case.fixture)
    for arguments in case.setup:
        result = run_forked(pki, list(arguments))
        assert result.returncode == 0, result.stderr
    return pki


def backup_files(pki: Path) -> dict[str, bytes | None]:
    """Return the content of each .old backup and of the file it backs up."""
    names = [p.relative_to(pki).as_posix() for p in pki.rglob("*.old")]
    names += [name.removesuffix(".old") for name in names]
    return {name: (pki / name).read_bytes() if (pki / name).is_file() else None for name in names}


def measure(case: Case, pki_copy) -> Outcomes:
    counting = prepared_pki(case, pki_copy)
    counts = count_fault_points(counting, list(case.arguments))
    before_pki = prepared_pki(case, pki_copy)
    after_pki = prepared_pki(case, pki_copy)
    before = snapshot(before_pki)
    result = run_forked(after_pki, list(case.arguments))
    assert result.returncode == 0, result.stderr
    return Outcomes(before, shape(snapshot(after_pki), before), backup_files(before_pki), counts)


# --- checks -------------------------------------------------------------------------


def _pem_blocks(data: bytes) -> list[bytes]:
    return re.findall(rb"-----BEGIN [A-Z0-9 ]+-----.+?-----END [A-Z0-9 ]+-----\n?", data, re.DOTALL)


def check_file_whole(path: Path, label: str) -> None:
    """Fail unless a PKI file of a known kind parses completely."""
    data = path.read_bytes()
    name = path.name
    if name.endswith((".crt", ".pem")) and b"CERTIFICATE-----" in data:
        blocks = [block for block in _pem_blocks(data) if b"BEGIN CERTIFICATE" in block]
        assert blocks, f"{label}: {path} has no whole certificate"
        x509.load_pem_x509_certificate(blocks[0])
    elif name.endswith(".req"):
        x509.load_pem_x509_csr(_pem_blocks(data)[-1])
    elif name.endswith(".key") and path.parent.name == "private" and b"PRIVATE KEY" in data:
        block = _pem_blocks(data)[0]
        if b"ENCRYPTED" not in block:
            serialization.load_pem_private_key(block, None)
        else:
            serialization.load_pem_private_key(block, b"crash-pass-1234")
    elif name == "serial":
        assert re.fullmatch(rb"[0-9A-F]+\n", data), f"{label}: serial is {data!r}"
    elif name == "index.txt":
        for row in read_index(path.parent):
            assert len(row) == 6, f"{label}: index.txt row {row}"
    elif name.endswith(".p12"):
        assert len(data) > 0, f"{label}: {path} is empty"


def check_nothing_half_written(pki: Path, outcomes: Outcomes, label: str) -> None:
    for path in pki.rglob("*"):
        if journal.FOLDER_PREFIX in path.as_posix():
            continue
        if path.is_file() and not TEMP_FILE.fullmatch(path.name) and path.name != LOCK:
            check_file_whole(path, label)
        match = TEMP_FILE.fullmatch(path.name)
        if match and "private" in path.parts:
            # A temporary file beside a key may hold the key itself.
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{label}: {path} is readable by others"
    if (pki / "index.txt").is_file():
        serials = {row[3] for row in read_index(pki)}
        for folder in ("issued", "certs_by_serial"):
            for path in (pki / folder).glob("*"):
                if TEMP_FILE.fullmatch(path.name):
                    continue
                certificate = x509.load_pem_x509_certificate(_pem_blocks(path.read_bytes())[0])
                text = f"{certificate.serial_number:X}"
                assert text.zfill(len(text) + len(text) % 2) in serials, f"{label}: {path} has no row"
    for name, content in backup_files(pki).items():
        # serial.old contains the serial just used, not a copy of the old serial file.
        if name.startswith("index.txt") and name.endswith(".old") and content is not None:
            allowed = (outcomes.backups_before.get(name), outcomes.backups_before.get(name.removesuffix(".old")))
            assert content in allowed, f"{label}: {name} is neither its old content nor a copy of its base"


def classify(pki: Path, outcomes: Outcomes) -> str:
    state = snapshot(pki)
    if state == outcomes.before:
        return "before"
    if shape(state, outcomes.before) == outcomes.after_shape:
        return "after"
    return "partial"


def has_undo_log(pki: Path) -> bool:
    """Return whether a killed command left an undo log, which the next run must undo."""
    return any((folder / journal.LOG_NAME).is_file() for folder in pki.glob(f"{journal.FOLDER_PREFIX}*"))


def check_script_stops(pki: Path, case: Case, reference, label: str) -> None:
    """Check that easy-rsa 3.2.7 stops at the lock a kill left, changing nothing."""
    if not (pki / LOCK).exists():
        return
    unchanged = pki_state(pki)
    script = reference.run(pki, *case.arguments, check=False)
    assert script.returncode == EXIT_LOCK, f"{label}: easy-rsa 3.2.7 output {script.stdout}"
    assert pki_state(pki) == unchanged, label


def check_script_reads(pki: Path, reference, label: str) -> None:
    """Run easy-rsa 3.2.7's gen-crl on a copy, which needs a consistent CA and index.txt."""
    if not ((pki / "ca.crt").is_file() and (pki / "private" / "ca.key").is_file()):
        return
    with tempfile.TemporaryDirectory(prefix="crash-copy-") as scratch:
        copy = Path(scratch) / "pki"
        shutil.copytree(pki, copy, symlinks=True)
        (copy / LOCK).unlink(missing_ok=True)
        result = reference.run(copy, "--batch", "gen-crl", check=False)
        assert result.returncode == 0, f"{label}: easy-rsa 3.2.7 gen-crl failed: {result.stdout}"


def age_empty_lock(pki: Path) -> None:
    """Date an empty lock file back past the minute after which it counts as stale."""
    lock_file = pki / LOCK
    if lock_file.exists() and not lock_file.read_text().strip():
        old = time.time() - EMPTY_LOCK_AGE
        os.utime(lock_file, (old, old))


def check_next_run(pki: Path, case: Case, outcomes: Outcomes, kind: str, label: str) -> None:
    """Run the command again with the stale lock in place, and check that it reaches the after state.

    The after state without an undo log is final: the command is done, so
    a rerun would stop at the name already in use, and show-ca runs instead
    (init-pki, which leaves no CA, runs again).
    """
    undo = has_undo_log(pki)
    lock_left = (pki / LOCK).exists()
    if kind == "partial":
        assert undo, f"{label}: a partial state without an undo log"
    age_empty_lock(pki)
    arguments = list(case.arguments)
    if kind == "after" and not undo and (pki / "ca.crt").is_file():
        arguments = ["--batch", "show-ca"]
    result = run_forked(pki, arguments)
    assert "Traceback" not in result.stderr, f"{label}: {result.stderr}"
    assert result.returncode == 0, f"{label}: the run after the kill failed: {result.stderr}"
    if lock_left:
        assert TOOK_OVER in result.stderr, f"{label}: {result.stderr}"
    if undo:
        assert UNDID in result.stderr, f"{label}: {result.stderr}"
    assert list(pki.glob(f"{journal.FOLDER_PREFIX}*")) == [], f"{label}: the undo journal is left"
    assert not (pki / LOCK).exists(), label
    assert shape(snapshot(pki), outcomes.before) == outcomes.after_shape, f"{label}: rerun did not finish"


def lock_kind(pki: Path) -> str:
    lock_file = pki / LOCK
    if not lock_file.exists():
        return "none"
    return "pid" if lock_file.read_text().strip() else "empty"


@pytest.fixture(scope="module")
def reference_327():
    from conftest import reference_for_test

    return reference_for_test("3.2.7")


@pytest.mark.reference
@pytest.mark.parametrize("case", CASES, ids=str)
def test_kill_at_each_fault_point(case: Case, pki_copy, reference_327) -> None:
    outcomes = measure(case, pki_copy)
    hits = fault_hits(outcomes.counts)
    assert hits, f"{case} reached no fault point"
    # The checks with easy-rsa run once per kind of lock and once per PKI shape.
    locks_seen: set[str] = set()
    shapes_seen: set[str] = set()
    found: list[str] = []
    for point, hit in hits:
        pki = prepared_pki(case, pki_copy)
        result = run_forked(pki, list(case.arguments), f"{point}:{hit}:kill")
        label = f"{case} killed at {point}:{hit}"
        assert result.returncode == KILLED, f"{label}: {result.stderr}"
        check_nothing_half_written(pki, outcomes, label)
        kind = classify(pki, outcomes)
        found.append(kind)
        if lock_kind(pki) not in locks_seen:
            locks_seen.add(lock_kind(pki))
            check_script_stops(pki, case, reference_327, label)
        key = repr(shape(snapshot(pki), outcomes.before))
        if key not in shapes_seen:
            shapes_seen.add(key)
            check_script_reads(pki, reference_327, label)
        check_next_run(pki, case, outcomes, kind, label)
        shutil.rmtree(pki.parent)
    assert "after" in found


# --- a full disk and a read-only PKI -----------------------------------------------

# init-pki deletes the old PKI, as confirmed, before it writes the new one.
FULL_DISK_CASES = [case for case in CASES if case.name != "init-pki"]


@pytest.mark.parametrize("case", FULL_DISK_CASES, ids=str)
def test_no_space_at_each_write(case: Case, pki_copy) -> None:
    outcomes = measure(case, pki_copy)
    hits = fault_hits(outcomes.counts, WRITE_POINTS)
    assert hits, f"{case} writes nothing"
    for point, hit in hits:
        pki = prepared_pki(case, pki_copy)
        before = pki_state(pki)
        result = run_forked(pki, list(case.arguments), f"{point}:{hit}:enospc")
        label = f"{case} out of space at {point}:{hit}"
        assert result.returncode == 1, f"{label}: {result.stderr}"
        assert "No space left on the device for" in result.stderr, label
        assert ".tmp" not in result.stderr, f"{label}: the error names a temporary file"
        assert "Traceback" not in result.stderr, label
        assert pki_state(pki) == before, f"{label}: the PKI changed"
        shutil.rmtree(pki.parent)


@pytest.fixture
def read_only_pki(pki_copy) -> Iterator[Path]:
    """Copy the Ed25519 fixture to a read-only folder that the command's user owns.

    As root, which ignores file modes, the command runs as user `nobody`.
    """
    user = _unprivileged_user()
    base = Path(tempfile.mkdtemp(prefix="readonly-pki-"))
    pki = base / "pki"
    shutil.copytree(pki_copy("v3.2.7-ed25519"), pki, symlinks=True)
    if user is not None:
        for path in [base, *base.rglob("*")]:
            os.chown(path, user, user, follow_symlinks=False)
    _make_read_only(pki)
    yield pki
    for path in [base, *base.rglob("*")]:
        if path.is_dir():
            os.chmod(path, 0o700)
    shutil.rmtree(base)


READ_ONLY_COMMANDS = [case.arguments for case in CASES if not case.setup and case.name != "init-pki"]


@pytest.mark.parametrize("lock_option", [(), ("--nolockfile",)], ids=["lock", "nolockfile"])
@pytest.mark.parametrize("arguments", READ_ONLY_COMMANDS, ids=lambda value: value[-2])
def test_read_only_pki_unchanged(read_only_pki: Path, arguments: tuple[str, ...], lock_option) -> None:
    before = pki_state(read_only_pki)
    result = run_forked(read_only_pki, [*lock_option, *arguments], user=_unprivileged_user())
    assert result.returncode == 1, result.stderr
    assert str(read_only_pki) in result.stderr
    assert "Traceback" not in result.stderr
    assert "child failed" not in result.stderr
    assert ".tmp" not in result.stderr, "the error names a temporary file"
    assert pki_state(read_only_pki) == before


def test_killed_build_full_is_undone(pki_copy) -> None:
    # The first two renames write the key and the request; signing comes after.
    pki = pki_copy("v3.2.7-ed25519")
    arguments = [*ED25519, "build-client-full", "zed", "nopass"]
    killed = run_forked(pki, arguments, "write-rename-after:2:kill")
    assert killed.returncode == KILLED

    result = run_forked(pki, arguments)

    assert result.returncode == 0, result.stderr
    assert UNDID in result.stderr
    assert str(pki / "reqs" / "zed.req") in result.stderr
    assert (pki / "issued" / "zed.crt").is_file()


def test_unjournaled_build_full_names_next_step(pki_copy) -> None:
    # A PKI left by a run without an undo journal (deleted here) keeps the
    # key and request, and the rerun prints how to sign them.
    pki = pki_copy("v3.2.7-ed25519")
    arguments = [*ED25519, "build-client-full", "zed", "nopass"]
    killed = run_forked(pki, arguments, "write-rename-after:2:kill")
    assert killed.returncode == KILLED
    (pki / LOCK).unlink()
    for folder in pki.glob(f"{journal.FOLDER_PREFIX}*"):
        shutil.rmtree(folder)

    result = run_forked(pki, arguments)

    assert result.returncode == 1
    assert "interrupted before signing" in result.stderr
    assert "'sign-req client zed'" in result.stderr
    finished = run_forked(pki, ["--batch", "sign-req", "client", "zed"])
    assert finished.returncode == 0, finished.stderr
    assert (pki / "issued" / "zed.crt").is_file()
