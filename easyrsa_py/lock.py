"""The PKI lock file, taken the way easy-rsa 3.2.7 takes it.

easy-rsa 3.2.7 creates `pki/lock.file` exclusively (shell noclobber), writes
its PID and a newline into it, and removes it on exit only if it still holds
its own PID. A second easy-rsa run that finds the file exits with code 17.
easyrsa_py does the same, so the two tools exclude each other on one PKI.
easy-rsa 3.1.0 and 3.2.2 take no lock, so running them at the same time as
easyrsa_py on one PKI is not safe.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path
from types import TracebackType
from typing import Self

from easyrsa_py.errors import EasyRSAError, LockHeld

logger = logging.getLogger(__name__)

LOCK_FILE_NAME = "lock.file"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# A PID and a newline; anything longer is not a lock file easy-rsa wrote.
_MAX_LOCK_BYTES = 64


def _read_pid(path: Path) -> int | None:
    """Return the PID in the lock file, or None if it has none.

    The file is opened without blocking and read only if it is a regular
    file, so a FIFO or a link to a device named lock.file cannot hang or
    exhaust memory.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, _MAX_LOCK_BYTES).decode("ascii", errors="replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)
    return int(text) if text.isdigit() and int(text) > 0 else None


def describe_holder(path: Path) -> LockHeld:
    """Build the error for a lock file that already exists."""
    pid = _read_pid(path)
    if not path.is_file():
        detail = "it is not a regular file"
        advice = "Remove it if no easyrsa or easyrsa-py command is running, then retry."
    elif pid is None:
        detail = "it does not contain a process ID"
        advice = "If no easyrsa or easyrsa-py command is running, delete it and retry."
    elif _process_exists(pid):
        detail = f"process {pid} holds it and is still running"
        advice = "Wait for that command to finish, then retry."
    else:
        detail = f"it is stale: process {pid} is no longer running"
        advice = "Delete the file and retry."
    message = f"The PKI is locked: {path} exists ({detail}).\n{advice}"
    return LockHeld(path, message, pid=pid)


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class PKILock:
    """Context manager that holds `pki/lock.file` for the duration of a command."""

    def __init__(self, pki_dir: Path) -> None:
        self.path = pki_dir / LOCK_FILE_NAME
        self._held = False

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            raise describe_holder(self.path) from None
        except OSError as error:
            raise EasyRSAError(
                f"Cannot create the lock file {self.path}: {error.strerror}. "
                "Check the permissions of the PKI folder."
            ) from None
        try:
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        except OSError as error:
            os.close(fd)
            _remove_quietly(self.path)
            raise EasyRSAError(
                f"Cannot write the lock file {self.path}: {error.strerror}. "
                "Check the free space and permissions of the PKI folder."
            ) from None
        os.close(fd)
        self._held = True
        logger.debug("created lock file %s", self.path)

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        if _read_pid(self.path) != os.getpid():
            logger.warning(
                "lock file %s no longer contains this process's ID; left in place",
                self.path,
            )
            return
        try:
            os.unlink(self.path)
        except OSError as error:
            if error.errno != errno.ENOENT:
                raise
        logger.debug("removed lock file %s", self.path)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
