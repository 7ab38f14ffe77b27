"""The PKI lock file, taken the way easy-rsa 3.2.7 takes it.

easy-rsa 3.2.7 creates `pki/lock.file` exclusively (shell noclobber), writes
its PID and a newline into it, and removes it on exit only if it still holds
its own PID. A second easy-rsa run that finds the file exits with code 17.
easyrsa_py does the same, so the two tools exclude each other on one PKI.
easy-rsa 3.1.0 and 3.2.2 take no lock, so running them at the same time as
easyrsa_py on one PKI is not safe.

A lock left by a process that died (a crash, SIGKILL, a power cut) is taken
over: its PID is no longer running on this machine, so no command can still
be working on the PKI. The stale file is replaced by one containing this
process's PID in a single rename. easy-rsa, which never takes over a lock in
batch mode, therefore finds the lock held throughout and cannot change a PKI
that an interrupted command left half changed. Two easyrsa_py runs that find
the same stale lock take turns through an flock on the PKI folder, and each
checks again under it that the file is still the stale one. A lock file that
stayed empty for a minute (its creator died before writing its PID) is taken
over the same way.

A PID identifies a process only on the machine that wrote it. A PKI shared
between machines (NFS), or between containers with their own process
numbering, can contain a lock whose PID looks dead here but runs there. Such
a PKI needs --nolockfile and a lock of the operator's own, as with easy-rsa.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from easyrsa_py.errors import EasyRSAError, LockHeld
from easyrsa_py.files import atomic_write, fault_point

logger = logging.getLogger(__name__)

LOCK_FILE_NAME = "lock.file"
# How often --wait-lock checks whether the lock file is gone.
_POLL_SECONDS = 0.1
# How long a lock file may stay empty before it counts as stale. Both tools
# write the PID microseconds after creating the file.
EMPTY_LOCK_SECONDS = 60
# How long a run waits for another one that is taking over a stale lock.
_TAKEOVER_WAIT_SECONDS = 5.0


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


_MISSING, _REGULAR, _OTHER = "missing", "regular file", "other"


def _file_kind(path: Path) -> str:
    """Return _MISSING, _REGULAR or _OTHER for the lock path, following a symbolic link.

    One lstat call decides, so a lock released between two checks is never
    taken for a file of another kind.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return _MISSING
    if stat.S_ISLNK(info.st_mode):
        return _REGULAR if path.is_file() else _OTHER
    return _REGULAR if stat.S_ISREG(info.st_mode) else _OTHER


def describe_holder(path: Path, rereads: int = 3) -> LockHeld:
    """Build the error for a lock file that already exists.

    A PID found dead is read again, because the lock may have passed from
    that process to another one meanwhile. The error then describes the new
    holder, and `rereads` bounds how often that happens.
    """
    pid = _read_pid(path)
    kind = _file_kind(path)
    if kind == _MISSING:
        detail = "its holder released it while this command checked it"
        advice = "Retry the command."
    elif kind == _OTHER:
        detail = "it is not a regular file"
        advice = "Remove it if no easyrsa or easyrsa-py command is running, then retry."
    elif pid is None:
        detail = "it does not contain a process ID"
        advice = (
            f"easyrsa-py takes over a lock file that stays empty for {EMPTY_LOCK_SECONDS} seconds. "
            "If no easyrsa or easyrsa-py command is running, you may also delete it and retry."
        )
    elif _process_exists(pid):
        detail = f"process {pid} holds it and is still running"
        advice = "Wait for that command to finish, then retry."
    elif rereads > 0 and _read_pid(path) != pid:
        return describe_holder(path, rereads - 1)
    else:
        detail = f"it is stale: process {pid} is no longer running, and this run could not take it over"
        advice = (
            "Delete the file and retry. If that process was an interrupted easyrsa-py revoke, "
            "running the same revoke again finishes it."
        )
    message = f"The PKI is locked: {path} exists ({detail}).\n{advice}"
    return LockHeld(path, message, pid=pid)


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


@dataclass(frozen=True)
class _StaleLock:
    """A lock file found stale, identified so a later look can tell it is the same file."""

    pid: int | None
    device: int
    inode: int


def _find_stale(path: Path) -> _StaleLock | None:
    """Return the lock file at `path` if it is stale, else None.

    Stale means a regular file (not a link) containing the PID of a process
    that no longer runs, or this process's own PID, which it cannot have
    written yet. An empty file counts once it is EMPTY_LOCK_SECONDS old.
    Anything else in the file leaves the lock to the operator.
    """
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    pid = _read_pid(path)
    if pid is None:
        if info.st_size or time.time() - info.st_mtime < EMPTY_LOCK_SECONDS:
            return None
    elif pid != os.getpid() and _process_exists(pid):
        return None
    return _StaleLock(pid, info.st_dev, info.st_ino)


class _TakeoverBusy(Exception):
    """Another process is taking over the stale lock, or the flock is unavailable."""


@contextlib.contextmanager
def _takeover_turn(folder: Path) -> Iterator[None]:
    """Hold an exclusive flock on the PKI folder while a stale lock is taken over.

    The flock goes with the process, so a run killed during a takeover
    leaves nothing that blocks the next one. Raises _TakeoverBusy when the
    flock cannot be had in time or the file system does not support it.
    """
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        raise _TakeoverBusy(f"cannot open {folder}: {error.strerror}") from None
    try:
        deadline = time.monotonic() + _TAKEOVER_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _TakeoverBusy("another process is taking it over") from None
                time.sleep(0.01)
            except OSError as error:
                raise _TakeoverBusy(f"flock on {folder} failed: {error.strerror}") from None
        yield
    finally:
        os.close(fd)


def _describe_taken_over(path: Path, stale: _StaleLock) -> str:
    if stale.pid is None:
        return f"Took over the lock file {path}: it had been empty for {EMPTY_LOCK_SECONDS} seconds or more."
    if stale.pid == os.getpid():
        return f"Took over the lock file {path}: it held this process's ID {stale.pid}, left by an earlier run."
    return f"Took over the stale lock file {path}: process {stale.pid}, which created it, is no longer running."


def _waiting_can_help(error: LockHeld) -> bool:
    """Return whether the lock may still be released by the process that holds it.

    A lock whose PID is dead stays until someone deletes it. A lock file
    without a PID may belong to a process that has created it and is about
    to write its PID, as both easyrsa_py and easy-rsa do in two steps.
    """
    kind = _file_kind(error.path)
    if kind == _MISSING:
        return True  # released since the attempt; the next one may succeed
    if kind == _OTHER:
        return False
    pid = _read_pid(error.path)
    if pid != error.pid:
        return True  # the lock changed hands since the attempt
    return pid is None or _process_exists(pid)


class PKILock:
    """Context manager that takes `pki/lock.file` for the duration of a command.

    A stale lock is taken over with a warning. With `wait_seconds`, a lock
    taken by a running process is retried every 0.1 seconds until it is
    free or the time is up.
    """

    def __init__(self, pki_dir: Path, wait_seconds: float = 0) -> None:
        self.path = pki_dir / LOCK_FILE_NAME
        self.wait_seconds = wait_seconds
        self._held = False

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait_seconds
        retries_after_release = 3
        takeovers = 3
        while True:
            try:
                self._create()
                return
            except LockHeld as error:
                if not os.path.lexists(self.path) and retries_after_release > 0:
                    # The holder released the lock between our two system calls.
                    retries_after_release -= 1
                    continue
                stale = _find_stale(self.path)
                if stale is not None and takeovers > 0:
                    takeovers -= 1
                    if self._take_over(stale):
                        return
                    continue  # the lock changed meanwhile: look at it again
                if not self.wait_seconds or not _waiting_can_help(error):
                    raise
                if time.monotonic() >= deadline:
                    raise LockHeld(
                        error.path,
                        f"Timed out waiting for the PKI lock (--wait-lock={self.wait_seconds:g}). {error}",
                        pid=error.pid,
                    ) from None
                logger.debug("waiting for lock file %s", self.path)
                time.sleep(_POLL_SECONDS)

    def _create(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            raise describe_holder(self.path) from None
        except OSError as error:
            raise EasyRSAError(
                f"Cannot create the lock file {self.path}: {error.strerror}. "
                "Check the permissions of the PKI folder."
            ) from None
        fault_point("lock-created")
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

    def _take_over(self, stale: _StaleLock) -> bool:
        """Replace the stale lock file with one containing this process's PID; return whether done."""
        try:
            with _takeover_turn(self.path.parent):
                if _find_stale(self.path) != stale:
                    return False  # released, replaced or taken over by another run
                try:
                    atomic_write(self.path, f"{os.getpid()}\n".encode("ascii"))
                except OSError as error:
                    raise EasyRSAError(
                        f"Cannot replace the stale lock file {self.path}: {error.strerror}. "
                        "Check the free space and permissions of the PKI folder."
                    ) from None
        except _TakeoverBusy as busy:
            logger.debug("cannot take over the stale lock file %s: %s", self.path, busy)
            return False
        self._held = True
        logger.warning(_describe_taken_over(self.path, stale))
        return True

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
