"""Attacks on the takeover of a stale pki/lock.file.

A lock file is stale when its PID no longer runs, when it contains this
process's own PID, or when it has stayed empty for EMPTY_LOCK_SECONDS.
easyrsa_py swaps a stale lock file with one containing its own PID in one
rename, under an flock on the stale file. These tests check that:

- in a burst of easyrsa_py runs on one stale lock, exactly one run takes
  the lock over and no two runs hold the lock at once. Some runs use
  --wait-lock, and some bursts run beside easy-rsa 3.2.7. lock.file goes
  straight from the stale content to the new holder's PID, never missing;
- a run killed at any write step of a takeover, or failing with ENOSPC,
  leaves a lock that the next run takes over, and changes nothing else;
- a read-only PKI folder, a lock file that is not a regular file, and a
  lock file whose content is not a PID give a clear message and leave the
  lock file as it was;
- a lock file deleted or replaced while a run checks it is handled;
- a command that fails after taking the lock over releases it;
- a lock whose PID looks dead but whose file a live process holds an flock
  on (easyrsa_py on another machine or in another container) is left alone.

No test measures time. Bursts wait for each other through shared memory,
not through sleeps. EASYRSA_PY_TAKEOVER_BURSTS sets how many bursts each
burst test runs (default 1). A longer run:

    EASYRSA_PY_TAKEOVER_BURSTS=20 python -m pytest -q tests/test_lock_takeover_attacks.py
"""

from __future__ import annotations

import errno
import fcntl
import multiprocessing
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from forked_cli import run_forked
from pkitools import pki_state, read_index, run_product
from reference import reference_env, tree_snapshot

from easyrsa_py import lock
from easyrsa_py.errors import EXIT_LOCK, LockHeld
from easyrsa_py.lock import EMPTY_LOCK_SECONDS, PKILock

FIXTURE = "v3.2.7-rsa"
BURSTS = int(os.environ.get("EASYRSA_PY_TAKEOVER_BURSTS", "1"))
# Long enough that no process runs out of time on a loaded machine. Every
# wait below ends as soon as its condition holds.
PATIENCE_SECONDS = 120
TAKEOVER_FAULT_POINTS = (
    "write-temp-before",
    "write-temp-after",
    "write-rename-before",
    "write-rename-after",
)
FORK = multiprocessing.get_context("fork")


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _write_stale_lock(pki: Path) -> int:
    pid = _dead_pid()
    (pki / "lock.file").write_text(f"{pid}\n")
    return pid


def _temporary_files(pki: Path) -> list[str]:
    return sorted(path.name for path in pki.glob(".*.tmp"))


def _without_lock(state: dict[str, tuple[int, str | None]]) -> dict[str, tuple[int, str | None]]:
    """Drop lock.file and the temporary files a killed takeover leaves beside it."""
    return {name: value for name, value in state.items() if not name.startswith(("lock.file", ".lock.file."))}


def _client_names(index_rows: list[list[str]]) -> Counter[str]:
    return Counter(row[5] for row in index_rows)


# --- bursts --------------------------------------------------------------------


def _lock_state(path: Path) -> str:
    """Return the lock file's stripped content, or "missing"."""
    try:
        return path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        return f"error {error.errno}"


def _watch_lock(path: Path, seen: Any, stop: Any, results: Any) -> None:
    """Record each change of lock.file, publishing the last PID seen in `seen`."""
    observations: list[str] = []
    while not stop.is_set():
        state = _lock_state(path)
        if not observations or observations[-1] != state:
            observations.append(state)
            if state.isdigit():
                seen.value = int(state)
        time.sleep(0.001)
    results.put(observations)


def _record_holders(monkeypatch: pytest.MonkeyPatch, log: Path, seen: Any) -> None:
    """Make every PKILock log its start and end, and wait for the watcher to see its PID.

    The log lines are appended while the lock is held, so runs that never
    overlap give strictly alternating start and end lines of one PID. The
    wait makes sure the watcher records every holder, so a gap between the
    stale content and the new holder cannot hide between two looks.
    """
    enter, exit_ = PKILock.__enter__, PKILock.__exit__

    def append(line: str) -> None:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{line} {os.getpid()}\n".encode())
        finally:
            os.close(fd)

    def logged_enter(self: PKILock) -> PKILock:
        enter(self)
        append("start")
        deadline = time.monotonic() + PATIENCE_SECONDS
        while seen.value != os.getpid() and time.monotonic() < deadline:
            time.sleep(0.001)
        return self

    def logged_exit(self: PKILock, *details: Any) -> None:
        append("end")
        exit_(self, *details)

    monkeypatch.setattr(PKILock, "__enter__", logged_enter)
    monkeypatch.setattr(PKILock, "__exit__", logged_exit)


def _run_worker(pki: Path, arguments: list[str], start: Any, results: Any) -> None:
    start.wait(PATIENCE_SECONDS)
    result = run_forked(pki, arguments)
    results.put((arguments[-2], result.returncode, result.stderr))


@dataclass
class BurstOutcome:
    """What the processes of one burst did."""

    product: dict[str, tuple[int, str]]
    reference: dict[str, tuple[int, str]]
    observations: list[str]
    holders: list[int]
    log_lines: list[str]


def _start_reference(script: Path, pki: Path, name: str, home: Path) -> subprocess.Popen[str]:
    home.mkdir()
    return subprocess.Popen(
        [str(script), "build-client-full", name, "nopass"],
        cwd=home,
        env=reference_env(pki.resolve(), home, True, None),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _run_burst(
    monkeypatch: pytest.MonkeyPatch,
    pki: Path,
    product_runs: dict[str, list[str]],
    reference_names: list[str],
    script: Path | None,
) -> BurstOutcome:
    """Start every product run and easy-rsa 3.2.7 run at once on `pki` and collect their results."""
    log = pki.parent / "holders.log"
    seen = FORK.Value("q", 0)
    stop, start = FORK.Event(), FORK.Event()
    watched, results = FORK.Queue(), FORK.Queue()
    _record_holders(monkeypatch, log, seen)

    watcher = FORK.Process(target=_watch_lock, args=(pki / "lock.file", seen, stop, watched))
    watcher.start()
    workers = [
        FORK.Process(target=_run_worker, args=(pki, arguments, start, results))
        for arguments in product_runs.values()
    ]
    for worker in workers:
        worker.start()
    references: dict[str, subprocess.Popen[str]] = {}
    for name in reference_names:
        assert script is not None
        references[name] = _start_reference(script, pki, name, pki.parent / f"home-{name}")
    start.set()

    product = {}
    for _ in workers:
        name, code, stderr = results.get(timeout=PATIENCE_SECONDS)
        product[name] = (code, stderr)
    reference = {}
    for name, process in references.items():
        output, _ = process.communicate(timeout=PATIENCE_SECONDS)
        reference[name] = (process.returncode, output)
    for worker in workers:
        worker.join(PATIENCE_SECONDS)

    stop.set()
    observations = watched.get(timeout=PATIENCE_SECONDS)
    watcher.join(PATIENCE_SECONDS)
    log_lines = log.read_text().splitlines() if log.exists() else []
    holders = [int(line.split()[1]) for line in log_lines if line.startswith("start ")]
    return BurstOutcome(product, reference, observations, holders, log_lines)


def _check_holders_never_overlap(outcome: BurstOutcome) -> None:
    lines = outcome.log_lines
    assert len(lines) % 2 == 0, lines
    for position in range(0, len(lines), 2):
        started, ended = lines[position].split(), lines[position + 1].split()
        assert started[0] == "start", lines
        assert ended == ["end", started[1]], lines


def _check_takeover(outcome: BurstOutcome, pki: Path, stale_pid: int) -> None:
    """Check that one run took the stale lock over, and that lock.file went straight to it."""
    message = f"Took over the stale lock file {pki / 'lock.file'}: process {stale_pid}"
    takers = [name for name, (_, stderr) in outcome.product.items() if message in stderr]
    assert len(takers) == 1, {name: stderr for name, (_, stderr) in outcome.product.items()}
    assert outcome.holders, outcome.log_lines
    assert outcome.observations[0] == str(stale_pid), outcome.observations
    assert outcome.observations[1] == str(outcome.holders[0]), outcome.observations


def _check_results(outcome: BurstOutcome, pki: Path, waiting: set[str]) -> None:
    """Check each run's exit code against what it left in the PKI."""
    rows = read_index(pki)
    serials = Counter(row[3] for row in rows)
    assert [serial for serial, count in serials.items() if count > 1] == []
    subjects = _client_names(rows)
    runs = {**outcome.product, **outcome.reference}
    for name, (code, output) in runs.items():
        assert "Traceback" not in output, output
        if name in waiting:
            assert code == 0, output
        assert code in (0, EXIT_LOCK), output
        issued = (pki / "issued" / f"{name}.crt").exists()
        assert issued == (code == 0), (name, code, output)
        assert subjects[f"/CN={name}"] == (1 if code == 0 else 0), (name, code, output)
        if code == EXIT_LOCK and name in outcome.product:
            assert str(pki / "lock.file") in output, output
    known = {str(pid) for pid in outcome.holders}
    assert not os.path.lexists(pki / "lock.file")
    assert _temporary_files(pki) == []
    for state in outcome.observations[1:]:
        assert state in known or state in ("missing", "") or _is_reference_pid(state, outcome), outcome


def _is_reference_pid(state: str, outcome: BurstOutcome) -> bool:
    # easy-rsa writes its shell's PID; the test does not collect those.
    return bool(outcome.reference) and state.isdigit()


@pytest.mark.parametrize("burst", range(BURSTS))
def test_burst_takes_stale_lock_over_once(burst, monkeypatch, pki_copy):
    pki = pki_copy(FIXTURE)
    stale_pid = _write_stale_lock(pki)
    waiting = {f"wait{number}" for number in range(10)}
    runs = {name: [f"--wait-lock={PATIENCE_SECONDS}", "--batch", "build-client-full", name, "nopass"]
            for name in sorted(waiting)}
    runs.update({f"once{number}": ["--batch", "build-client-full", f"once{number}", "nopass"]
                 for number in range(14)})
    outcome = _run_burst(monkeypatch, pki, runs, [], None)
    _check_holders_never_overlap(outcome)
    _check_takeover(outcome, pki, stale_pid)
    _check_results(outcome, pki, waiting)
    assert len(outcome.holders) >= len(waiting)


@pytest.mark.parametrize("burst", range(BURSTS))
def test_burst_beside_reference(burst, monkeypatch, pki_copy, reference_for):
    script = reference_for("3.2.7").script_dir / "easyrsa"
    pki = pki_copy(FIXTURE)
    stale_pid = _write_stale_lock(pki)
    waiting = {f"wait{number}" for number in range(6)}
    runs = {name: [f"--wait-lock={PATIENCE_SECONDS}", "--batch", "build-client-full", name, "nopass"]
            for name in sorted(waiting)}
    runs.update({f"once{number}": ["--batch", "build-client-full", f"once{number}", "nopass"]
                 for number in range(6)})
    outcome = _run_burst(monkeypatch, pki, runs, [f"ref{number}" for number in range(4)], script)
    _check_holders_never_overlap(outcome)
    _check_takeover(outcome, pki, stale_pid)
    _check_results(outcome, pki, waiting)


def test_reference_exits_17_on_stale_lock(pki_copy, reference_for):
    pki = pki_copy(FIXTURE)
    stale_pid = _write_stale_lock(pki)
    before = pki_state(pki)
    result = reference_for("3.2.7").run(pki, "build-client-full", "zed", "nopass", check=False)
    assert result.returncode == EXIT_LOCK, result.stdout
    assert pki_state(pki) == before
    assert (pki / "lock.file").read_text() == f"{stale_pid}\n"


# --- killed and failing takeovers ---------------------------------------------


@pytest.mark.parametrize("point", TAKEOVER_FAULT_POINTS)
def test_killed_takeover_then_next_run(point, pki_copy):
    pki = pki_copy(FIXTURE)
    _write_stale_lock(pki)
    before = _without_lock(pki_state(pki))
    killed = run_forked(pki, ["--batch", "build-client-full", "zed", "nopass"], fault=f"{point}:1:kill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _without_lock(pki_state(pki)) == before
    left_pid = (pki / "lock.file").read_text().strip()
    assert left_pid.isdigit()

    again = run_forked(pki, ["--batch", "build-client-full", "zed", "nopass"])
    assert again.returncode == 0, again.stderr
    assert f"Took over the stale lock file {pki / 'lock.file'}: process {left_pid}" in again.stderr
    assert not os.path.lexists(pki / "lock.file")
    assert (pki / "issued" / "zed.crt").exists()


@pytest.mark.parametrize("point", ["write-temp-before", "write-temp-after", "write-rename-before"])
def test_takeover_on_full_disk(point, pki_copy):
    pki = pki_copy(FIXTURE)
    stale_pid = _write_stale_lock(pki)
    inode = (pki / "lock.file").stat().st_ino
    before = pki_state(pki)
    result = run_forked(pki, ["--batch", "build-client-full", "zed", "nopass"], fault=f"{point}:1:enospc")
    assert result.returncode == 1, result.stderr
    assert f"Cannot replace the stale lock file {pki / 'lock.file'}: No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    assert pki_state(pki) == before
    assert (pki / "lock.file").stat().st_ino == inode
    assert (pki / "lock.file").read_text() == f"{stale_pid}\n"

    again = run_forked(pki, ["--batch", "build-client-full", "zed", "nopass"])
    assert again.returncode == 0, again.stderr


def test_killed_empty_lock_aged_out(pki_copy):
    pki = pki_copy(FIXTURE)
    killed = run_forked(pki, ["--batch", "build-client-full", "zed", "nopass"], fault="lock-created:1:kill")
    assert killed.returncode == -signal.SIGKILL
    assert (pki / "lock.file").read_bytes() == b""

    young = run_forked(pki, ["--batch", "build-client-full", "zed", "nopass"])
    assert young.returncode == EXIT_LOCK, young.stderr
    assert "does not contain a process ID" in young.stderr
    assert (pki / "lock.file").read_bytes() == b""

    old = time.time() - EMPTY_LOCK_SECONDS - 1
    os.utime(pki / "lock.file", (old, old))
    aged = run_forked(pki, ["--batch", "build-client-full", "zed", "nopass"])
    assert aged.returncode == 0, aged.stderr
    assert f"Took over the lock file {pki / 'lock.file'}: it had been empty" in aged.stderr
    assert not os.path.lexists(pki / "lock.file")


@pytest.fixture
def nobody_pki(pki_copy) -> Iterator[Path]:
    """Copy the fixture PKI into a folder outside pytest's private one, owned by the user `nobody`."""
    base = Path(tempfile.mkdtemp(prefix="takeover-pki-"))
    pki = base / "pki"
    shutil.copytree(pki_copy(FIXTURE), pki, symlinks=True)
    user = pwd.getpwnam("nobody").pw_uid
    for path in [base, *base.rglob("*")]:
        os.chown(path, user, user, follow_symlinks=False)
    yield pki
    os.chmod(pki, 0o700)
    shutil.rmtree(base)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a command as another user")
def test_read_only_folder_with_stale_lock(nobody_pki):
    pki = nobody_pki
    stale_pid = _write_stale_lock(pki)
    os.chmod(pki / "lock.file", 0o644)
    os.chmod(pki, 0o555)
    before = pki_state(pki)
    user = pwd.getpwnam("nobody").pw_uid
    result = run_forked(pki, ["--batch", "build-client-full", "zed", "nopass"], user=user)
    assert result.returncode == 1, result.stderr
    assert f"Cannot replace the stale lock file {pki / 'lock.file'}: Permission denied" in result.stderr
    assert "Traceback" not in result.stderr
    assert pki_state(pki) == before
    assert (pki / "lock.file").read_text() == f"{stale_pid}\n"


@pytest.mark.parametrize(
    "arguments",
    [
        ["--batch", "build-client-full", "../escape", "nopass"],
        ["--batch", "revoke", "nobody-by-that-name"],
        ["--batch", "sign-req", "client", "missing-request"],
    ],
)
def test_failed_command_releases_taken_over_lock(arguments, pki_copy):
    pki = pki_copy(FIXTURE)
    stale_pid = _write_stale_lock(pki)
    before = _without_lock(pki_state(pki))
    result = run_forked(pki, arguments)
    assert result.returncode == 1, result.stderr
    assert f"process {stale_pid}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.lexists(pki / "lock.file")
    assert pki_state(pki) == before


def test_stale_takeover_message_on_stderr_only(pki_copy):
    pki = pki_copy(FIXTURE)
    stale_pid = _write_stale_lock(pki)
    result = run_product(pki, "--batch", "show-ca")
    assert result.returncode == 0, result.stderr
    expected = (f"Took over the stale lock file {pki / 'lock.file'}: "
                f"process {stale_pid}, which created it, is no longer running.")
    assert expected in result.stderr
    assert "Took over" not in result.stdout


# --- lock files that are not taken over --------------------------------------


def _make_fifo(path: Path) -> None:
    os.mkfifo(path)


def _make_socket(path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.close()


def _make_device_link(path: Path) -> None:
    path.symlink_to("/dev/null")


def _make_folder(path: Path) -> None:
    path.mkdir()


@pytest.mark.parametrize("make", [_make_fifo, _make_socket, _make_device_link, _make_folder])
def test_special_lock_file_not_taken_over(make, pki_copy):
    pki = pki_copy(FIXTURE)
    make(pki / "lock.file")
    kind = stat.S_IFMT(os.lstat(pki / "lock.file").st_mode)
    # Reading a FIFO or a socket would hang or fail, so the snapshot skips lock.file.
    before = tree_snapshot(pki, exclude=["lock.file"])
    for options in ([], [f"--wait-lock={PATIENCE_SECONDS}"]):
        result = run_forked(pki, [*options, "--batch", "build-client-full", "zed", "nopass"])
        assert result.returncode == EXIT_LOCK, result.stderr
        assert f"{pki / 'lock.file'} exists (it is not a regular file)" in result.stderr
        assert stat.S_IFMT(os.lstat(pki / "lock.file").st_mode) == kind
    assert tree_snapshot(pki, exclude=["lock.file"]) == before
    assert not (pki / "issued" / "zed.crt").exists()


def test_link_to_dead_pid_not_taken_over(pki_copy):
    pki = pki_copy(FIXTURE)
    target = pki.parent / "elsewhere"
    target.write_text(f"{_dead_pid()}\n")
    (pki / "lock.file").symlink_to(target)
    before = pki_state(pki)
    result = run_forked(pki, ["--batch", "build-client-full", "zed", "nopass"])
    assert result.returncode == EXIT_LOCK, result.stderr
    assert "symbolic link, which easyrsa-py never takes over" in result.stderr
    assert pki_state(pki) == before


@pytest.mark.parametrize(
    "content",
    [
        b"0\n",
        b"-5\n",
        b"+5\n",
        b"1 2\n",
        b"0x10\n",
        b"\n",
        b"   \n",
        b"12\x00\n",
        b"\xff\xfe\x00\x01",
        "\u0663\u0664\n".encode(),
        b"x" * 1_000_000,
        bytes(range(256)) * 64,
    ],
    ids=["zero", "negative", "plus", "two-numbers", "hex", "newline", "spaces", "nul", "binary",
         "arabic-digits", "huge-text", "huge-binary"],
)
def test_lock_without_pid_not_taken_over(content, pki_copy):
    pki = pki_copy(FIXTURE)
    (pki / "lock.file").write_bytes(content)
    old = time.time() - EMPTY_LOCK_SECONDS - 1
    os.utime(pki / "lock.file", (old, old))
    before = pki_state(pki)
    result = run_forked(pki, ["--batch", "build-client-full", "zed", "nopass"])
    assert result.returncode == EXIT_LOCK, result.stderr
    assert f"{pki / 'lock.file'} exists (it does not contain a process ID)" in result.stderr
    assert "Traceback" not in result.stderr
    assert pki_state(pki) == before


def test_lock_with_pid_beyond_pid_max_taken_over(tmp_path):
    # 64-bit Linux caps pid_max at 2**22 (PID_MAX_LIMIT), so this PID cannot be running.
    (tmp_path / "lock.file").write_text(f"{2**22 + 1}\n")
    with PKILock(tmp_path):
        assert (tmp_path / "lock.file").read_text() == f"{os.getpid()}\n"


# --- the lock file changing while a run checks it ---------------------------


def _change_after_check(monkeypatch: pytest.MonkeyPatch, call: int, change: Callable[[], None]) -> None:
    """Run `change` right after the `call`-th look at whether the lock file is stale.

    The first look happens before the flock on the PKI folder is taken, the
    second under it, just before the file is replaced.
    """
    find_stale = lock._find_stale
    calls = 0

    def changed(path: Path) -> Any:
        nonlocal calls
        found = find_stale(path)
        calls += 1
        if calls == call:
            change()
        return found

    monkeypatch.setattr(lock, "_find_stale", changed)


def test_lock_taken_by_live_process_before_flock(tmp_path, monkeypatch):
    lock_file = tmp_path / "lock.file"
    lock_file.write_text(f"{_dead_pid()}\n")

    def replace_with_live() -> None:
        lock_file.unlink()
        lock_file.write_text(f"{os.getppid()}\n")

    _change_after_check(monkeypatch, 1, replace_with_live)
    with pytest.raises(LockHeld) as caught:
        PKILock(tmp_path).acquire()
    assert f"process {os.getppid()} holds it and is still running" in str(caught.value)
    assert lock_file.read_text() == f"{os.getppid()}\n"


def test_lock_deleted_before_replace(tmp_path, monkeypatch):
    lock_file = tmp_path / "lock.file"
    lock_file.write_text(f"{_dead_pid()}\n")
    _change_after_check(monkeypatch, 2, lock_file.unlink)
    with PKILock(tmp_path):
        assert lock_file.read_text() == f"{os.getpid()}\n"
    assert not lock_file.exists()


def test_lock_replaced_by_folder_before_replace(tmp_path, monkeypatch):
    lock_file = tmp_path / "lock.file"
    lock_file.write_text(f"{_dead_pid()}\n")

    def replace_with_folder() -> None:
        lock_file.unlink()
        lock_file.mkdir()

    _change_after_check(monkeypatch, 2, replace_with_folder)
    with pytest.raises(LockHeld) as caught:
        PKILock(tmp_path).acquire()
    assert "it is not a regular file" in str(caught.value)
    assert lock_file.is_dir()
    assert sorted(os.listdir(tmp_path)) == ["lock.file"]


def test_takeover_without_flock_support(tmp_path, monkeypatch):
    lock_file = tmp_path / "lock.file"
    dead_pid = _dead_pid()
    lock_file.write_text(f"{dead_pid}\n")

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(LockHeld) as caught:
        PKILock(tmp_path, wait_seconds=PATIENCE_SECONDS).acquire()
    assert f"process {dead_pid} is not running here" in str(caught.value)
    assert "does not support the flock" in str(caught.value)
    assert lock_file.read_text() == f"{dead_pid}\n"


# --- --wait-lock ----------------------------------------------------------------


def test_wait_lock_takes_over_when_holder_dies(pki_copy):
    pki = pki_copy(FIXTURE)
    holder = subprocess.Popen(["sleep", str(PATIENCE_SECONDS)])
    (pki / "lock.file").write_text(f"{holder.pid}\n")
    results = FORK.Queue()

    def run_waiting() -> None:
        result = run_forked(pki, [f"--wait-lock={PATIENCE_SECONDS}", "--batch", "build-client-full", "zed", "nopass"])
        results.put((result.returncode, result.stderr))

    waiter = FORK.Process(target=run_waiting)
    waiter.start()
    holder.kill()
    holder.wait()
    code, stderr = results.get(timeout=PATIENCE_SECONDS)
    waiter.join(PATIENCE_SECONDS)
    assert code == 0, stderr
    assert f"Took over the stale lock file {pki / 'lock.file'}: process {holder.pid}" in stderr
    assert not os.path.lexists(pki / "lock.file")


def test_wait_lock_still_waits_for_live_holder(pki_copy):
    pki = pki_copy(FIXTURE)
    holder = subprocess.Popen(["sleep", str(PATIENCE_SECONDS)])
    try:
        (pki / "lock.file").write_text(f"{holder.pid}\n")
        result = run_forked(pki, ["--wait-lock=1", "--batch", "build-client-full", "zed", "nopass"])
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == EXIT_LOCK, result.stderr
    assert "Timed out waiting for the PKI lock (--wait-lock=1)" in result.stderr
    assert f"process {holder.pid} holds it and is still running" in result.stderr
    assert (pki / "lock.file").read_text() == f"{holder.pid}\n"


# --- defects found by these attacks, fixed ------------------------------------


@pytest.mark.parametrize("pid", [2**31, 2**63, int("9" * 60)])
def test_lock_with_pid_too_big_for_kill(pid, pki_copy):
    pki = pki_copy(FIXTURE)
    (pki / "lock.file").write_text(f"{pid}\n")
    result = run_forked(pki, ["--batch", "build-client-full", "zed", "nopass"])
    assert "Traceback" not in result.stderr
    assert result.returncode == EXIT_LOCK, result.stderr
    assert "does not contain a process ID" in result.stderr


def test_lock_with_text_after_pid_not_taken_over(tmp_path):
    content = f"{_dead_pid()}\n" + " " * 100 + "not a lock file easy-rsa wrote\n"
    (tmp_path / "lock.file").write_text(content)
    with pytest.raises(LockHeld):
        PKILock(tmp_path).acquire()
    assert (tmp_path / "lock.file").read_text() == content


def test_live_lock_created_after_check_not_overwritten(tmp_path, monkeypatch):
    lock_file = tmp_path / "lock.file"
    lock_file.write_text(f"{_dead_pid()}\n")

    def delete_and_lock() -> None:
        lock_file.unlink()
        lock_file.write_text(f"{os.getppid()}\n")

    _change_after_check(monkeypatch, 2, delete_and_lock)
    with pytest.raises(LockHeld):
        PKILock(tmp_path).acquire()
    assert lock_file.read_text() == f"{os.getppid()}\n"
    assert sorted(os.listdir(tmp_path)) == ["lock.file"]


def test_link_planted_after_check_not_written_through(tmp_path, monkeypatch):
    lock_file = tmp_path / "lock.file"
    lock_file.write_text(f"{_dead_pid()}\n")
    victim = tmp_path.parent / f"{tmp_path.name}-victim"
    victim.write_text("precious\n")

    def plant_link() -> None:
        lock_file.unlink()
        lock_file.symlink_to(victim)

    _change_after_check(monkeypatch, 2, plant_link)
    with pytest.raises(LockHeld):
        PKILock(tmp_path).acquire()
    assert victim.read_text() == "precious\n"
    assert lock_file.is_symlink()


def test_second_lock_in_same_process_refused(tmp_path):
    with PKILock(tmp_path):
        with pytest.raises(LockHeld):
            PKILock(tmp_path).acquire()
        assert (tmp_path / "lock.file").read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / "lock.file").exists()


def test_garbage_lock_message_promises_no_takeover(tmp_path):
    (tmp_path / "lock.file").write_text("not a pid\n")
    with pytest.raises(LockHeld) as caught:
        PKILock(tmp_path).acquire()
    assert "takes over a lock file that stays empty" not in str(caught.value)
    assert "never takes over such a file" in str(caught.value)


# --- a holder whose PID means nothing here -------------------------------------


def _flock_holder(lock_file: Path, ready: Any, done: Any) -> None:
    """Hold an flock on `lock_file` as a run in another container would."""
    fd = os.open(lock_file, os.O_WRONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ready.set()
    done.wait(PATIENCE_SECONDS)
    os.close(fd)


def test_flocked_lock_with_dead_pid_kept(pki_copy):
    pki = pki_copy(FIXTURE)
    dead_pid = _write_stale_lock(pki)
    ready, done = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=_flock_holder, args=(pki / "lock.file", ready, done))
    holder.start()
    try:
        assert ready.wait(PATIENCE_SECONDS)
        before = pki_state(pki)
        result = run_forked(pki, ["--batch", "build-client-full", "zed", "nopass"])
        assert result.returncode == EXIT_LOCK, result.stderr
        assert f"process {dead_pid} is not running here, but a running process holds an flock" in result.stderr
        assert "delete" not in result.stderr.lower()
        assert pki_state(pki) == before
    finally:
        done.set()
        holder.join(PATIENCE_SECONDS)


def test_wait_lock_takes_over_once_flock_released(pki_copy):
    pki = pki_copy(FIXTURE)
    dead_pid = _write_stale_lock(pki)
    ready, done = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=_flock_holder, args=(pki / "lock.file", ready, done))
    holder.start()
    assert ready.wait(PATIENCE_SECONDS)
    # The holder lets go a moment after the waiting run has started.
    release = threading.Timer(0.5, done.set)
    release.start()
    try:
        result = run_forked(pki, [f"--wait-lock={PATIENCE_SECONDS}", "--batch", "build-client-full", "zed", "nopass"])
    finally:
        done.set()
        release.join()
        holder.join(PATIENCE_SECONDS)
    assert result.returncode == 0, result.stderr
    assert f"process {dead_pid}, which created it, is no longer running" in result.stderr
    assert (pki / "issued" / "zed.crt").exists()
