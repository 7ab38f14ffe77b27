"""Run the easyrsa_py CLI in a forked child of the test process.

``run_forked(pki, arguments, fault=None, user=None)`` runs the CLI as
``pkitools.run_product`` does, in the same clean environment, but in a
child made with fork. The child inherits the imported modules and so skips
interpreter start-up, which matters for tests that make hundreds of runs.
It also lets a test running as root drop to another user after the
imports, which a new interpreter under /root could not do.

``fault`` sets the fault that files.py would parse from EASYRSA_PY_FAULT at
import. The result is a CompletedProcess whose returncode is negative for
a signal, as with subprocess, and whose stdout is empty.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from pkitools import product_env

from easyrsa_py import cli, commands, database, files, revoke  # noqa: F401 - loaded before fork

# The child may run as a user that cannot read the interpreter's files, so
# every lazy import and lookup a command makes happens here, before fork.
files.libc_renameat2()


def run_forked(
    pki: Path, arguments: list[str], fault: str | None = None, user: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run easyrsa_py with `arguments` on `pki` in a forked child and return its result."""
    with tempfile.TemporaryDirectory(prefix="forked-cli-") as home, tempfile.TemporaryFile() as errors:
        if user is not None:
            os.chown(home, user, -1)
        pid = os.fork()
        if pid == 0:
            _run_child(pki, Path(home), arguments, fault, user, errors.fileno())
        _, status = os.waitpid(pid, 0)
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
    return subprocess.CompletedProcess(arguments, os.waitstatus_to_exitcode(status), "", stderr)


def _run_child(
    pki: Path, home: Path, arguments: list[str], fault: str | None, user: int | None, errors_fd: int
) -> None:
    """Run the CLI in the forked child and leave with its exit code, whatever happens.

    The child must never return into pytest, so every exception ends it too.
    """
    code = 70
    try:
        if user is not None:
            os.setgroups([])
            os.setgid(user)
            os.setuid(user)
        os.chdir(home)
        os.environ.clear()
        os.environ.update(product_env(pki, home))
        with open(os.devnull) as stdin, open(os.devnull, "w") as stdout:
            sys.stdin, sys.stdout = stdin, stdout
            sys.stderr = os.fdopen(errors_fd, "w", closefd=False)
            files._fault = files._parse_fault(fault)
            code = cli.main(arguments)
            sys.stderr.flush()
    except BaseException as error:  # noqa: BLE001 - reported through stderr and exit code 70
        os.write(errors_fd, f"child failed: {error!r}".encode())
    finally:
        os._exit(code)
