"""pki/lock.file: exclusive creation, PID content, exit code 17, stale locks taken over."""

from __future__ import annotations

import errno
import fcntl
import multiprocessing
import os
import subprocess
import time
from pathlib import Path

import pytest

from easyrsa_py.errors import EXIT_LOCK, LockHeld
from easyrsa_py.lock import EMPTY_LOCK_SECONDS, PKILock


def test_lock_writes_pid_and_removes_it(tmp_path):
    lock = PKILock(tmp_path)
    with lock:
        assert (tmp_path / "lock.file").read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / "lock.file").exists()


def test_lock_held_by_running_process(tmp_path):
    (tmp_path / "lock.file").write_text(f"{os.getppid()}\n")
    with pytest.raises(LockHeld) as caught:
        PKILock(tmp_path).acquire()
    assert caught.value.exit_code == EXIT_LOCK
    assert caught.value.pid == os.getppid()
    assert "still running" in str(caught.value)
    assert (tmp_path / "lock.file").exists()


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_lock_stale_pid_is_taken_over(tmp_path, caplog):
    dead_pid = _dead_pid()
    (tmp_path / "lock.file").write_text(f"{dead_pid}\n")
    with PKILock(tmp_path):
        assert (tmp_path / "lock.file").read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / "lock.file").exists()
    assert f"Took over the stale lock file {tmp_path / 'lock.file'}" in caplog.text
    assert f"process {dead_pid}" in caplog.text


def test_lock_stale_takeover_keeps_no_other_file(tmp_path):
    (tmp_path / "lock.file").write_text(f"{_dead_pid()}\n")
    with PKILock(tmp_path):
        assert sorted(os.listdir(tmp_path)) == ["lock.file"]


def test_lock_own_pid_is_taken_over(tmp_path, caplog):
    # A container restarted after a kill can give the new run the old PID.
    (tmp_path / "lock.file").write_text(f"{os.getpid()}\n")
    with PKILock(tmp_path):
        assert (tmp_path / "lock.file").read_text() == f"{os.getpid()}\n"
    assert "left by an earlier run" in caplog.text


def test_lock_new_empty_file_is_not_taken_over(tmp_path):
    # Its creator may be about to write its PID.
    (tmp_path / "lock.file").write_text("")
    with pytest.raises(LockHeld) as caught:
        PKILock(tmp_path).acquire()
    assert "does not contain a process ID" in str(caught.value)
    assert (tmp_path / "lock.file").read_text() == ""


def test_lock_old_empty_file_is_taken_over(tmp_path, caplog):
    lock_file = tmp_path / "lock.file"
    lock_file.write_text("")
    old = time.time() - EMPTY_LOCK_SECONDS - 1
    os.utime(lock_file, (old, old))
    with PKILock(tmp_path):
        assert lock_file.read_text() == f"{os.getpid()}\n"
    assert "had been empty" in caplog.text


def test_lock_link_not_taken_over(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text(f"{_dead_pid()}\n")
    (tmp_path / "lock.file").symlink_to(target)
    with pytest.raises(LockHeld) as caught:
        PKILock(tmp_path).acquire()
    assert "is a symbolic link, which easyrsa-py never takes over" in str(caught.value)
    assert (tmp_path / "lock.file").is_symlink()
    assert target.read_text().strip().isdigit()


def test_lock_stale_file_kept_without_flock(tmp_path, monkeypatch):
    dead_pid = _dead_pid()
    (tmp_path / "lock.file").write_text(f"{dead_pid}\n")

    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with pytest.raises(LockHeld) as caught:
        PKILock(tmp_path).acquire()
    assert "does not support the flock" in str(caught.value)
    assert (tmp_path / "lock.file").read_text() == f"{dead_pid}\n"


def _take_stale_lock(folder: str, start: float, results: multiprocessing.Queue) -> None:
    while time.time() < start:
        time.sleep(0.001)
    try:
        with PKILock(Path(folder)):
            holder = (Path(folder) / "lock.file").read_text()
            results.put(("held", holder == f"{os.getpid()}\n"))
            time.sleep(0.5)
    except LockHeld as error:
        results.put(("refused", str(error)))


def test_lock_stale_taken_over_once(tmp_path):
    (tmp_path / "lock.file").write_text(f"{_dead_pid()}\n")
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start = time.time() + 0.5
    workers = [context.Process(target=_take_stale_lock, args=(str(tmp_path), start, results)) for _ in range(16)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    held = [outcome for outcome in outcomes if outcome[0] == "held"]
    assert held == [("held", True)]
    refused = [text for kind, text in outcomes if kind == "refused"]
    assert all("still running" in text or "released it" in text for text in refused), refused
    assert not (tmp_path / "lock.file").exists()


def test_lock_garbage_content(tmp_path):
    (tmp_path / "lock.file").write_text("not a pid")
    with pytest.raises(LockHeld) as caught:
        PKILock(tmp_path).acquire()
    assert "does not contain a process ID" in str(caught.value)


def test_lock_release_leaves_foreign_lock(tmp_path):
    lock = PKILock(tmp_path)
    lock.acquire()
    # Another tool replaced the file with its own PID while this one held it.
    (tmp_path / "lock.file").write_text("1\n")
    lock.release()
    assert (tmp_path / "lock.file").read_text() == "1\n"
