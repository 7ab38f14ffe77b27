"""The PKI lock file, taken the way easy-rsa 3.2.7 takes it.

easy-rsa 3.2.7 creates `pki/lock.file` exclusively (shell noclobber), writes
its PID and a newline into it, and removes it on exit only if it still holds
its own PID. A second easy-rsa run that finds the file exits with code 17.
easyrsa_py does the same, so the two tools exclude each other on one PKI.
easy-rsa 3.1.0 and 3.2.2 take no lock, so running them at the same time as
easyrsa_py on one PKI is not safe.

A lock left by a process that died (a crash, SIGKILL, a power cut) is taken
over: its PID is no longer running on this machine, so no command can still
be working on the PKI. The new lock file, containing this process's PID, is
swapped with the stale one in a single rename (renameat2 RENAME_EXCHANGE),
so `lock.file` exists throughout. easy-rsa, which never takes over a lock
in batch mode, therefore finds the lock held and cannot change a PKI that an
interrupted command left half changed. A lock file that stayed empty for a
minute (its creator died before writing its PID) is taken over the same way.

While it holds the lock, easyrsa_py also holds an flock on `lock.file`. A
takeover first takes an flock on the stale file and checks again under it
that the file is unchanged. So two runs that find one stale lock take
turns, and a lock written by easyrsa_py on another machine (NFS) or in a
container with its own process numbering, where its PID means nothing
here, is not taken over while that process runs. easy-rsa takes no flock:
a PKI shared with easy-rsa runs on another machine or in another container
needs --nolockfile and a lock of the operator's own.
"""

from __future__ import annotations

import enum
import errno
import fcntl
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from easyrsa_py.errors import EasyRSAError, LockHeld
from easyrsa_py.files import fault_point, libc_renameat2

logger = logging.getLogger(__name__)

LOCK_FILE_NAME = "lock.file"
# How often --wait-lock checks whether the lock file is gone.
_POLL_SECONDS = 0.1
# How long a lock file may stay empty before it counts as stale. Both tools
# write the PID microseconds after creating the file.
EMPTY_LOCK_SECONDS = 60


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
# How long a run lets another one finish taking over a stale lock, a few
# system calls, before taking an flock on the stale file for a live holder.
_TAKEOVER_SECONDS = 2.0
# os.kill takes a C pid_t, so larger numbers cannot name a process.
_PID_LIMIT = 2**31
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


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
        content = os.read(fd, _MAX_LOCK_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(content) > _MAX_LOCK_BYTES:
        return None
    text = content.decode("ascii", errors="replace").strip()
    return int(text) if text.isdigit() and 0 < int(text) < _PID_LIMIT else None


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
    elif os.path.islink(path):
        detail = "it is a symbolic link, which easyrsa-py never takes over"
        advice = "Remove it if no easyrsa or easyrsa-py command is running, then retry."
    elif pid is None and _is_empty(path):
        detail = "it does not contain a process ID yet"
        advice = (
            f"easyrsa-py takes over a lock file that stays empty for {EMPTY_LOCK_SECONDS} seconds. "
            "If no easyrsa or easyrsa-py command is running, you may also delete it and retry."
        )
    elif pid is None:
        detail = "it does not contain a process ID"
        advice = (
            "easyrsa-py never takes over such a file. "
            "If no easyrsa or easyrsa-py command is running, delete it and retry."
        )
    elif _process_exists(pid):
        name = _process_name(pid)
        detail = f"process {pid} holds it and is still running{f', as {name}' if name else ''}"
        advice = "Wait for that command to finish, then retry."
        if name and not _may_be_easyrsa(name):
            advice += (
                f" If {name} is not running an easyrsa command, the lock was left by a process that died "
                "and whose ID was reused since: delete the file if no easyrsa command is running."
            )
    elif rereads > 0 and _read_pid(path) != pid:
        return describe_holder(path, rereads - 1)
    else:
        detail = f"it is stale: process {pid} is no longer running, but the file kept changing while this run took it over"
        advice = "Retry the command."
    message = f"The PKI is locked: {path} exists ({detail}).\n{advice}"
    return LockHeld(path, message, pid=pid)


def _process_name(pid: int) -> str | None:
    """Return the command name of a running process, where /proc shows it."""
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _may_be_easyrsa(name: str) -> bool:
    # easy-rsa runs as a shell, easyrsa_py as Python or its console script.
    return name.startswith(("python", "easyrsa", "sh", "bash", "dash", "ksh", "zsh", "busybox"))


def _is_empty(path: Path) -> bool:
    try:
        return os.stat(path).st_size == 0
    except OSError:
        return False


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


# The lock files this process holds. Its own PID in one of them is a live
# lock, not one left by an earlier process with the same PID.
_HELD_PATHS: set[str] = set()


def _held_key(path: Path) -> str:
    return os.path.abspath(path)


def _find_stale(path: Path) -> _StaleLock | None:
    """Return the lock file at `path` if its PID shows it stale, else None.

    Stale means a regular file (not a link) containing the PID of a process
    that no longer runs, or this process's own PID when this process does
    not hold the lock. An empty file counts once it is EMPTY_LOCK_SECONDS
    old. Anything else in the file leaves the lock to the operator. The
    takeover also checks that no process holds an flock on the file.
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
    elif pid == os.getpid():
        if _held_key(path) in _HELD_PATHS:
            return None
    elif _process_exists(pid):
        return None
    return _StaleLock(pid, info.st_dev, info.st_ino)


def _try_flock(fd: int) -> bool | None:
    """Take an exclusive flock on `fd` without waiting.

    Returns True when taken, False when another process holds one, and None
    when the file system does not support flock.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as error:
        logger.debug("flock failed: %s", error.strerror)
        return None
    return True


def _open_same_file(path: Path, stale: _StaleLock) -> int | None:
    """Open the stale lock file for its flock; None if `path` is now another file.

    Writing mode comes first, because flock over NFS needs it; reading mode
    serves a lock file this user cannot write. O_NONBLOCK keeps a FIFO put
    in its place from blocking the open.
    """
    flags = os.O_NONBLOCK | os.O_NOFOLLOW | _CLOEXEC
    try:
        fd = os.open(path, os.O_WRONLY | flags)
    except PermissionError:
        try:
            fd = os.open(path, os.O_RDONLY | flags)
        except OSError:
            return None
    except OSError:
        return None
    info = os.fstat(fd)
    if (info.st_dev, info.st_ino) != (stale.device, stale.inode):
        os.close(fd)
        return None
    return fd


# renameat2 flag from <linux/fs.h>: swap two existing names in one step.
# AT_FDCWD makes both paths relative to the working folder.
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(first: str, second: Path) -> bool:
    """Swap the files at two names in one step; return False where the system cannot."""
    rename = libc_renameat2()
    if rename is None:
        return False
    import ctypes

    if rename(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    if code == errno.ENOENT:
        raise FileNotFoundError(code, os.strerror(code), str(second))
    raise OSError(code, os.strerror(code), str(second))


class _Outcome(enum.Enum):
    """The result of an attempt to take over a stale lock."""

    TAKEN = "taken"
    CHANGED = "the lock file changed meanwhile"
    LOCKED = "a process holds an flock on it"
    NO_FLOCK = "the file system does not support flock"


def _describe_taken_over(path: Path, stale: _StaleLock) -> str:
    if stale.pid is None:
        return f"Took over the lock file {path}: it had been empty for {EMPTY_LOCK_SECONDS} seconds or more."
    if stale.pid == os.getpid():
        return f"Took over the lock file {path}: it contained this process's ID {stale.pid}, left by an earlier run."
    return f"Took over the stale lock file {path}: process {stale.pid}, which created it, is no longer running."


def _kept_stale_lock(path: Path, stale: _StaleLock, outcome: _Outcome) -> LockHeld:
    """Build the error for a lock whose PID looks stale but that cannot be taken over."""
    holder = "it does not contain a process ID" if stale.pid is None else f"process {stale.pid} is not running here"
    if outcome is _Outcome.LOCKED:
        detail = f"{holder}, but a running process holds an flock on it, from another machine or container"
        advice = "Wait for that command to finish, then retry."
    else:
        detail = f"{holder}, and this file system does not support the flock a safe takeover needs"
        advice = "If no easyrsa or easyrsa-py command is running on any machine that uses this PKI, delete it and retry."
    return LockHeld(path, f"The PKI is locked: {path} exists ({detail}).\n{advice}", pid=stale.pid)


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

    def __init__(
        self, pki_dir: Path, wait_seconds: float = 0, notify: Callable[[str], None] | None = None
    ) -> None:
        self.path = pki_dir / LOCK_FILE_NAME
        self.wait_seconds = wait_seconds
        # Tells the user about a takeover; the console's warning in the CLI.
        self._notify = notify or logger.warning
        self._held = False
        # Whether this lock was taken over from a process that died.
        self.took_over = False
        # Kept open while the lock is held, so its flock lasts as long.
        self._fd: int | None = None

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait_seconds
        # Bounds the retries after races that settle at once: a lock released
        # between two system calls, or changed during a takeover.
        retries = 6
        # How long an flock on a stale lock file may be another run's
        # takeover, which holds it for a moment, before it counts as a holder.
        takeover_deadline = time.monotonic() + _TAKEOVER_SECONDS
        while True:
            try:
                self._create()
                return
            except LockHeld as held:
                error = held
            if not os.path.lexists(self.path) and retries > 0:
                retries -= 1
                continue
            can_wait = False
            stale = _find_stale(self.path)
            if stale is None and error.pid is not None and not _process_exists(error.pid) and retries > 0:
                # The error described a stale lock that another run has taken over since.
                retries -= 1
                continue
            if stale is not None:
                outcome = self._take_over(stale)
                if outcome is _Outcome.TAKEN:
                    return
                if outcome is _Outcome.CHANGED and retries > 0:
                    retries -= 1
                    continue
                if outcome is _Outcome.LOCKED and time.monotonic() < takeover_deadline:
                    # Another run may be taking the same lock over this moment.
                    time.sleep(_POLL_SECONDS / 10)
                    continue
                if outcome is not _Outcome.CHANGED:
                    error = _kept_stale_lock(self.path, stale, outcome)
                can_wait = outcome is _Outcome.LOCKED
            if not self.wait_seconds or not (can_wait or _waiting_can_help(error)):
                raise error
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
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o666)
        except FileExistsError:
            raise describe_holder(self.path) from None
        except OSError as error:
            raise EasyRSAError(
                f"Cannot create the lock file {self.path}: {error.strerror}. "
                "Check the permissions of the PKI folder. On a read-only PKI, commands that only "
                "read it (show-*, verify-cert) run with --nolockfile."
            ) from None
        fault_point("lock-created")
        # The flock shows other easyrsa_py runs, on other machines or in other
        # containers too, that this lock is alive whatever its PID means there.
        _try_flock(fd)
        try:
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        except OSError as error:
            os.close(fd)
            _remove_quietly(self.path)
            raise EasyRSAError(
                f"Cannot write the lock file {self.path}: {error.strerror}. "
                "Check the free space and permissions of the PKI folder."
            ) from None
        self._hold(fd)
        logger.debug("created lock file %s", self.path)

    def _hold(self, fd: int) -> None:
        self._fd = fd
        self._held = True
        _HELD_PATHS.add(_held_key(self.path))

    def _take_over(self, stale: _StaleLock) -> _Outcome:
        """Put a lock file containing this process's PID in place of the stale one."""
        try:
            fd, temp_name = self._write_replacement()
            try:
                outcome = self._swap_in(stale, temp_name)
            except BaseException:
                os.close(fd)
                _remove_quietly(Path(temp_name))
                raise
        except OSError as error:
            raise EasyRSAError(
                f"Cannot replace the stale lock file {self.path}: {error.strerror}. "
                "Check the free space and permissions of the PKI folder."
            ) from None
        if outcome is not _Outcome.TAKEN:
            os.close(fd)
            _remove_quietly(Path(temp_name))
            logger.debug("did not take over the lock file %s: %s", self.path, outcome.value)
            return outcome
        self._hold(fd)
        self.took_over = True
        self._notify(_describe_taken_over(self.path, stale))
        return outcome

    def _write_replacement(self) -> tuple[int, str]:
        """Write this process's PID to a new file beside the lock, flocked before anyone can see it."""
        fault_point("write-temp-before", self.path)
        name = str(self.path.parent / f".{self.path.name}.{os.urandom(6).hex()}.tmp")
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o666)
        try:
            _try_flock(fd)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            fault_point("write-temp-after", self.path)
        except BaseException:
            os.close(fd)
            _remove_quietly(Path(name))
            raise
        return fd, name

    def _swap_in(self, stale: _StaleLock, temp_name: str) -> _Outcome:
        """Swap the new lock file in, if the stale one is still in place and flock-free.

        The flock on the stale file makes concurrent takeovers take turns and
        finds a holder whose PID means nothing here. Swapping the two names
        keeps `lock.file` present throughout. If another file took the name
        since the check, the swap is undone and that file keeps its name.
        """
        stale_fd = _open_same_file(self.path, stale)
        if stale_fd is None:
            return _Outcome.CHANGED
        try:
            flocked = _try_flock(stale_fd)
            if flocked is None:
                return _Outcome.NO_FLOCK
            if not flocked:
                return _Outcome.LOCKED
            if _find_stale(self.path) != stale:
                return _Outcome.CHANGED
            fault_point("write-rename-before", self.path)
            try:
                exchanged = _exchange(temp_name, self.path)
            except FileNotFoundError:
                return _Outcome.CHANGED  # deleted since the check: the next attempt creates it
            if not exchanged:
                # NOTE: without renameat2's exchange, a lock file created in the
                # instant after the check above would be replaced.
                os.replace(temp_name, self.path)
                fault_point("write-rename-after", self.path)
                return _Outcome.TAKEN
            fault_point("write-rename-after", self.path)
            info = os.lstat(temp_name)
            if (info.st_dev, info.st_ino) != (stale.device, stale.inode):
                _exchange(temp_name, self.path)
                return _Outcome.CHANGED
            os.unlink(temp_name)
            return _Outcome.TAKEN
        finally:
            os.close(stale_fd)

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        _HELD_PATHS.discard(_held_key(self.path))
        try:
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
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

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
