"""--wait-lock: waiting for pki/lock.file instead of failing at once."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from pkitools import run_product
from reference import reference_env

from easyrsa_py.errors import EXIT_LOCK, LockHeld
from easyrsa_py.lock import PKILock

# Long enough that no test here runs out of time on a loaded machine. Each
# test still ends as soon as the lock is released or found stale.
LONG_WAIT = 120


def _dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    return int(finished.stdout)


def _after_delay(action) -> threading.Timer:
    timer = threading.Timer(0.3, action)
    timer.start()
    return timer


def test_wait_lock_acquires_after_release(tmp_path):
    lock_file = tmp_path / "lock.file"
    lock_file.write_text(f"{os.getppid()}\n")
    timer = _after_delay(lock_file.unlink)
    with PKILock(tmp_path, wait_seconds=LONG_WAIT):
        assert lock_file.read_text() == f"{os.getpid()}\n"
    timer.join()
    assert not lock_file.exists()


def test_wait_lock_waits_for_pid_being_written(tmp_path):
    # Another process has created the file and not yet written its PID.
    lock_file = tmp_path / "lock.file"
    lock_file.write_text("")
    timer = _after_delay(lock_file.unlink)
    with PKILock(tmp_path, wait_seconds=LONG_WAIT):
        assert lock_file.read_text() == f"{os.getpid()}\n"
    timer.join()


def test_wait_lock_times_out(tmp_path):
    (tmp_path / "lock.file").write_text(f"{os.getppid()}\n")
    with pytest.raises(LockHeld) as caught:
        PKILock(tmp_path, wait_seconds=1).acquire()
    assert caught.value.exit_code == EXIT_LOCK
    assert "Timed out waiting for the PKI lock (--wait-lock=1)" in str(caught.value)
    assert "still running" in str(caught.value)
    assert (tmp_path / "lock.file").read_text() == f"{os.getppid()}\n"


def test_wait_lock_takes_over_stale_at_once(tmp_path):
    dead = _dead_pid()
    (tmp_path / "lock.file").write_text(f"{dead}\n")
    with PKILock(tmp_path, wait_seconds=LONG_WAIT):
        assert (tmp_path / "lock.file").read_text() == f"{os.getpid()}\n"


def test_wait_lock_folder_fails_at_once(tmp_path):
    (tmp_path / "lock.file").mkdir()
    with pytest.raises(LockHeld) as caught:
        PKILock(tmp_path, wait_seconds=LONG_WAIT).acquire()
    assert "not a regular file" in str(caught.value)


def test_wait_lock_option_listed_in_help():
    result = subprocess.run([sys.executable, "-m", "easyrsa_py", "help", "options"],
                            capture_output=True, text=True, check=True)
    assert "--wait-lock=" in result.stdout


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", ""])
def test_wait_lock_rejects_invalid_value(pki_copy, value):
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, f"--wait-lock={value}", "gen-crl")
    assert result.returncode == 1
    assert "--wait-lock" in result.stderr


def test_wait_lock_cli_times_out(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    (pki / "lock.file").write_text(f"{os.getpid()}\n")
    before = (pki / "crl.pem").read_bytes()
    result = run_product(pki, "--wait-lock=1", "gen-crl")
    assert result.returncode == EXIT_LOCK
    assert "Timed out waiting for the PKI lock (--wait-lock=1)" in result.stderr
    assert (pki / "crl.pem").read_bytes() == before


def test_wait_lock_zero_fails_at_once(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    (pki / "lock.file").write_text(f"{os.getpid()}\n")
    result = run_product(pki, "--wait-lock=0", "gen-crl")
    assert result.returncode == EXIT_LOCK
    assert "Timed out" not in result.stderr
    assert "still running" in result.stderr


@pytest.mark.reference
def test_wait_lock_waits_for_real_script(pki_copy, reference_for):
    """easyrsa_py waits while easy-rsa 3.2.7 holds the lock at its revoke prompt."""
    script = reference_for("3.2.7").script_dir / "easyrsa"
    pki = pki_copy("v3.2.7-rsa")
    with tempfile.TemporaryDirectory(prefix="wait-lock-") as home:
        holder = subprocess.Popen(
            [str(script), "revoke", "alice"],
            cwd=home,
            env=reference_env(pki.resolve(), Path(home), False, None),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            _wait_for_prompt(holder)
            assert (pki / "lock.file").read_text().strip() == str(holder.pid)
            waiter = subprocess.Popen(
                [sys.executable, "-m", "easyrsa_py", f"--pki={pki}", "--batch",
                 f"--wait-lock={LONG_WAIT}", "gen-crl"],
                cwd=home,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            # The script declines the revocation, removes its lock and exits.
            holder.communicate("no\n", timeout=60)
            _, stderr = waiter.communicate(timeout=LONG_WAIT + 60)
        finally:
            holder.kill()
    assert waiter.returncode == 0, stderr
    assert (pki / "issued" / "alice.crt").exists()
    assert not (pki / "lock.file").exists()


def _wait_for_prompt(process: subprocess.Popen[str]) -> None:
    """Read the script's output until its confirmation prompt, while it holds the lock."""
    assert process.stdout is not None
    seen = ""
    while "Continue with revocation" not in seen:
        character = process.stdout.read(1)
        assert character, f"easy-rsa exited before its prompt: {seen}"
        seen += character
