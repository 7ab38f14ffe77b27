"""pki/lock.file: exclusive creation, PID content, exit code 17, stale locks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from easyrsa_py.errors import EXIT_LOCK, LockHeld
from easyrsa_py.lock import PKILock


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


def test_lock_stale_pid_is_reported(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    (tmp_path / "lock.file").write_text(f"{dead_pid}\n")
    with pytest.raises(LockHeld) as caught:
        PKILock(tmp_path).acquire()
    assert "stale" in str(caught.value)
    assert str(dead_pid) in str(caught.value)
    assert (tmp_path / "lock.file").read_text() == f"{dead_pid}\n"


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
