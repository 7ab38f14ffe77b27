"""Atomic writes and file moves inside the PKI.

Every change easyrsa_py makes to a PKI goes through this module. A file is
replaced by writing a temporary file in the same folder, flushing it to disk
and renaming it over the target, so a reader (easy-rsa, OpenSSL, an OpenVPN
server reading crl.pem) sees either the old file or the new one, never a
partial one. A replaced file keeps its mode and owner, as easy-rsa's
`cp -p` does for crl.pem.

For tests only, the environment variable EASYRSA_PY_FAULT=POINT[:COUNT[:ACTION]]
acts the COUNT-th time (default: the first) the process reaches the named
point of a write. ACTION `kill` (the default) makes the process kill itself
with SIGKILL, so crash tests can stop a command between any two steps;
`enospc` raises OSError(ENOSPC) there, as a full disk would. FAULT_POINTS
lists the points. The variable is read once, at import; when it is unset
each point costs one comparison.

While a command runs, each change is first recorded in its undo journal
(easyrsa_py.journal), so a command that fails or is killed can be undone.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from easyrsa_py import journal

logger = logging.getLogger(__name__)

FAULT_VARIABLE = "EASYRSA_PY_FAULT"
FAULT_POINTS = (
    "write-temp-before",  # before a temporary file is created
    "write-temp-after",  # a temporary file is written and flushed, not yet renamed
    "write-rename-before",
    "write-rename-after",
    "dir-fsync-before",  # a rename or move is done, its folder not yet flushed
    "move-before",
    "move-after",  # the file has its new name; its old name may remain (link fallback)
    "remove-before",
    "remove-after",
    "mkdir-before",
    "lock-created",  # pki/lock.file exists but does not yet contain the PID
    "journal-record",  # an undo journal line is flushed, but its change is not yet made
    "journal-commit",  # the undo log is unlinked, so the command counts as done
)


FAULT_ACTIONS = ("kill", "enospc")


def _parse_fault(text: str | None) -> tuple[str, int, str] | None:
    """Parse EASYRSA_PY_FAULT, raising ValueError for a value a test mistyped."""
    if not text:
        return None
    point, _, rest = text.partition(":")
    count_text, _, action = rest.partition(":")
    count = 1
    if count_text:
        count = int(count_text) if count_text.isdigit() else 0
    action = action or "kill"
    if point not in FAULT_POINTS or count < 1 or action not in FAULT_ACTIONS:
        raise ValueError(
            f"Invalid {FAULT_VARIABLE}={text!r}: expected POINT[:COUNT[:ACTION]] with "
            f"POINT one of {', '.join(FAULT_POINTS)}, COUNT of 1 or more and ACTION "
            f"one of {', '.join(FAULT_ACTIONS)}."
        )
    return point, count, action


_fault = _parse_fault(os.environ.get(FAULT_VARIABLE))


def fault_point(point: str, path: Path | None = None) -> None:
    """Act here if EASYRSA_PY_FAULT names this point and count.

    The kill action's SIGKILL runs no cleanup, no `finally` and no lock
    release, as with an OOM kill. Unlike a power cut, it loses no data the
    kernel has accepted. The enospc action raises for `path`.
    """
    global _fault
    if _fault is None or _fault[0] != point:
        return
    name, count, action = _fault
    if count > 1:
        _fault = (name, count - 1, action)
        return
    if action == "enospc":
        _fault = None
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), None if path is None else str(path))
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def current_umask() -> int:
    """Return the process umask without changing it."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    fault_point("dir-fsync-before")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keep_owner(fd: int, old: os.stat_result) -> None:
    # Only root can give a file away; other users keep their own ownership.
    if os.geteuid() == 0:
        os.fchown(fd, old.st_uid, old.st_gid)


class NotARegularFile(OSError):
    """The target of a write exists but is a folder, device or other special file."""


def resolve_target(path: Path) -> Path:
    """Return the file a write to `path` must replace, following symbolic links.

    `cp -p` and OpenSSL write through a link to its target, so replacing
    crl.pem that links elsewhere updates the file the link names. Raises
    NotARegularFile when that target exists but is not a regular file.
    A link whose target does not exist raises EasyRSAError. Following it
    would create the target, so a planted issued/NAME.crt or
    private/NAME.key link could place a new key anywhere. easy-rsa 3.2.7's
    build-*-full moves its new files over such a link, replacing it.
    """
    if path.is_symlink() and not os.path.exists(path):
        from easyrsa_py.errors import EasyRSAError

        raise EasyRSAError(
            f"{path} is a symbolic link to {os.readlink(path)}, which does not exist, so nothing "
            "was written through it. Remove the link, or create the file it points to first."
        )
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    if target.exists() and not target.is_file():
        raise NotARegularFile(errno.EISDIR if target.is_dir() else errno.EINVAL, "not a regular file", str(target))
    return target


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace or create `path` with `data` so no reader sees a partial file.

    An existing file keeps its mode and owner. A new file gets `mode`, or
    0o666 less the umask, as a plain `open()` would give it.
    """
    atomic_write_all([(path, data, mode)])


def atomic_write_all(writes: list[tuple[Path, bytes, int | None]]) -> None:
    """Replace several files together: all are written out before any is renamed.

    A failure while writing (a full disk, a read-only folder) leaves every
    target as it was. Only the renames come after the first change. They
    need no data blocks, but a rename that still fails (a folder that must
    grow on a full disk) leaves the files renamed before it replaced.
    """
    rename_prepared(prepare_writes(writes))


def prepare_writes(writes: list[tuple[Path, bytes, int | None]]) -> list[tuple[str, Path]]:
    """Write every new content to a temporary file beside its target; return (temporary, target) pairs.

    A failure removes the temporary files already written, so nothing changes.
    """
    prepared: list[tuple[str, Path]] = []
    try:
        for path, data, mode in writes:
            target = resolve_target(path)
            prepared.append((_write_temporary(target, data, mode), target))
    except BaseException:
        discard_prepared(prepared)
        raise
    return prepared


def discard_prepared(prepared: list[tuple[str, Path]]) -> None:
    """Remove the temporary files of prepare_writes that were not renamed."""
    for temp_name, _ in prepared:
        _remove_quietly(Path(temp_name))


def rename_prepared(prepared: list[tuple[str, Path]]) -> None:
    """Rename prepared temporary files over their targets, in order."""
    for position, (temp_name, target) in enumerate(prepared):
        try:
            undo = journal.active()
            if undo is not None:
                undo.write(target, Path(temp_name))
            fault_point("write-rename-before", target)
            os.replace(temp_name, target)
            fault_point("write-rename-after", target)
            _fsync_dir(target.parent)
        except BaseException as error:
            # Temporary files not yet renamed would otherwise stay behind,
            # unless a redo file lists them for the next run to rename.
            if not journal.went_forward():
                discard_prepared(prepared[position:])
            if isinstance(error, OSError) and error.filename == temp_name:
                # Name the target: the temporary file's random name means nothing to the user.
                raise OSError(error.errno, error.strerror, str(target)) from error
            raise
        logger.debug("wrote %s", target)


def _write_temporary(target: Path, data: bytes, mode: int | None) -> str:
    """Write `data` to a new temporary file beside `target` and return its name."""
    try:
        old: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        old = None
    if old is not None:
        target_mode = old.st_mode & 0o7777
    elif mode is not None:
        target_mode = mode
    else:
        target_mode = 0o666 & ~current_umask()

    fault_point("write-temp-before", target)
    try:
        fd, temp_name = _create_temporary(target)
    except OSError as error:
        if error.errno is None:
            raise
        # Name the target: the temporary file's random name means nothing to the user.
        raise OSError(error.errno, error.strerror, str(target)) from error
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), target_mode)
            if old is not None:
                _keep_owner(handle.fileno(), old)
            os.fsync(handle.fileno())
        fault_point("write-temp-after", target)
    except OSError as error:
        _remove_quietly(Path(temp_name))
        # Report the target's name, not the temporary file's.
        raise OSError(error.errno, error.strerror, str(target)) from error
    except BaseException:
        _remove_quietly(Path(temp_name))
        raise
    return temp_name


def _create_temporary(path: Path) -> tuple[int, str]:
    """Create a new, empty, private file beside `path` and open it for writing.

    os.open with O_EXCL does what tempfile.mkstemp does, without the cost of
    importing tempfile on every command.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        name = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(name, flags, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {path}")


def write_with_backup(path: Path, data: bytes, suffix: str = ".old") -> None:
    """Replace `path` and keep its previous content as `path + suffix`.

    OpenSSL `ca` keeps index.txt.old, index.txt.attr.old and serial.old the
    same way. OpenSSL renames the old file away before renaming the new one
    in, which leaves a moment with no index.txt at all. Here the backup is
    renamed in first and the target replaced atomically, so the target
    always exists.
    """
    write_all_with_backup([(path, data)], suffix)


def write_all_with_backup(writes: list[tuple[Path, bytes]], suffix: str = ".old") -> None:
    """Replace several files, keeping each one's previous content as `path + suffix`.

    Backups and new contents are all written out before any rename, as in
    atomic_write_all, so a failed write changes none of the files.
    """
    atomic_write_all(with_backups(writes, suffix))


def with_backups(writes: list[tuple[Path, bytes]], suffix: str = ".old") -> list[tuple[Path, bytes, int | None]]:
    """Return the writes that keep each file's previous content as `path + suffix`, backups first."""
    prepared: list[tuple[Path, bytes, int | None]] = []
    for path, data in writes:
        try:
            previous = path.read_bytes()
        except FileNotFoundError:
            continue
        backup = path.with_name(path.name + suffix)
        prepared.append((backup, previous, os.stat(path).st_mode & 0o7777))
    prepared.extend((path, data, None) for path, data in writes)
    return prepared


def move_no_clobber(source: Path, target: Path) -> None:
    """Move `source` to `target`, raising FileExistsError if `target` exists.

    On Linux, renameat2 with RENAME_NOREPLACE renames in one step that fails
    if the target exists, so a crash leaves the file under exactly one of
    its two names. Elsewhere a hard link is made and the source unlinked:
    the link also fails if the target exists, but a crash between the two
    steps leaves both names. A later move of the same file finishes that
    case by removing the old name. Without hard links, an existence check
    before the rename is the last fallback.
    """
    undo = journal.active()
    if undo is not None:
        undo.move(source, target)
    fault_point("move-before", target)
    try:
        if not _rename_no_replace(source, target):
            _link_then_unlink(source, target)
    except FileExistsError:
        if not _same_file(source, target):
            raise
        # A crash between an earlier link and unlink left both names.
        logger.warning("finishing an interrupted move of %s to %s", source, target)
        os.unlink(source)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        _copy_across(source, target)
    fault_point("move-after")
    _fsync_dir(target.parent)
    if source.parent != target.parent:
        _fsync_dir(source.parent)
    logger.debug("moved %s to %s", source, target)


# renameat2 flag from <linux/fs.h>; AT_FDCWD makes both paths relative to
# the working folder, as os.rename does.
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
# errno values for which renameat2 is missing or not supported by the file
# system, so the hard-link fallback is tried instead.
_NO_RENAMEAT2 = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}


@functools.cache
def libc_renameat2() -> Callable[..., int] | None:
    """Return libc's renameat2, or None where the C library has none (not Linux, old glibc)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    return function


def _rename_no_replace(source: Path, target: Path) -> bool:
    """Rename with RENAME_NOREPLACE; return False when the system cannot do that."""
    rename = libc_renameat2()
    if rename is None:
        return False
    import ctypes

    result = rename(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in _NO_RENAMEAT2:
        return False
    raise OSError(code, os.strerror(code), str(source), None, str(target))


def _copy_across(source: Path, target: Path) -> None:
    """Move `source` to another file system: copy it beside `target`, rename it in, then unlink it.

    A copy already at `target` with the same content is what an earlier
    move cut short left, so only the source is removed then.
    """
    import shutil

    if os.path.lexists(target):
        if not (target.is_file() and target.read_bytes() == source.read_bytes()):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    else:
        fd, temp_name = _create_temporary(target)
        os.close(fd)
        try:
            shutil.copy2(source, temp_name)
            with open(temp_name, "rb") as handle:
                os.fsync(handle.fileno())
            if not _rename_no_replace(Path(temp_name), target):
                _link_then_unlink(Path(temp_name), target)
        finally:
            _remove_quietly(Path(temp_name))
    os.unlink(source)


def _same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def _link_then_unlink(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:
        if target.exists():
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from None
        os.replace(source, target)
        return
    os.unlink(source)


def remove_if_present(path: Path) -> bool:
    """Delete `path` if it exists; return whether a file was deleted."""
    fault_point("remove-before", path)
    undo = journal.active()
    try:
        if undo is None or not undo.remove(path):
            path.unlink()
    except FileNotFoundError:
        return False
    fault_point("remove-after")
    logger.debug("removed %s", path)
    return True


def make_dirs(path: Path, mode: int = 0o777) -> None:
    """Create `path` and its parents; the umask applies as with `mkdir -p`.

    Only `path` itself gets `mode`. The parents get 0o777, as with `mkdir -p`.
    """
    fault_point("mkdir-before", path)
    undo = journal.active()
    if undo is None:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
        return
    missing = []
    folder = path
    while not os.path.lexists(folder) and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        undo.make_folder(folder)
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=mode if folder == path else 0o777)
    # Raises, as `mkdir -p` fails, when a file is where a folder must be.
    path.mkdir(mode=mode, parents=True, exist_ok=True)


def remove_tree(path: Path) -> None:
    """Delete the file, link or whole folder at `path`, which must exist."""
    undo = journal.active()
    if undo is not None and undo.remove(path):
        return
    if path.is_dir() and not path.is_symlink():
        import shutil

        shutil.rmtree(path)
    else:
        path.unlink()


def remove_empty_folder(path: Path) -> bool:
    """Remove the folder `path` if it is empty; return whether it was removed."""
    try:
        if any(path.iterdir()):
            return False
        undo = journal.active()
        if undo is not None:
            undo.remove_folder(path)
        path.rmdir()
    except OSError:
        return False
    return True


def change_mode(path: Path, mode: int) -> None:
    """Set the mode of `path`, following a symbolic link, as os.chmod does."""
    undo = journal.active()
    if undo is not None:
        undo.change_mode(path, mode)
    os.chmod(path, mode)


def describe_os_error(error: OSError) -> str:
    """Say which file an operating-system error concerns and what to check."""
    path = error.filename or "a PKI file"
    if isinstance(error, NotARegularFile):
        return f"Cannot write {path}: it is not a regular file. Move it away and run the command again."
    if isinstance(error, PermissionError):
        return f"Permission denied for {path}. Check its owner and mode, and those of its folder."
    if error.errno == errno.ENOSPC:
        return f"No space left on the device for {path}. Free some space and run the command again."
    if error.errno == errno.EEXIST and not Path(path).is_dir():
        return (
            f"Cannot create the folder {path}: a file of that name is in the way. "
            "Move it away and run the command again."
        )
    if error.errno == errno.ENOTDIR:
        return f"Cannot use {path}: a file stands where a folder is expected. Move it away and run the command again."
    if error.errno == errno.EROFS:
        return f"Cannot write {path}: its file system is read-only. Mount it read-write, or work on a copy of the PKI."
    if error.errno == errno.ENAMETOOLONG:
        return f"The file name {path} is too long."
    return f"{error.strerror or error}: {path}"


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
