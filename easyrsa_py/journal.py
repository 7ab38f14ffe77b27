"""The undo journal: a command that fails or is killed leaves the PKI as before.

A command changes the PKI in several steps (key, request, certificate,
index.txt, inline file), and a kill or a full disk between two steps would
leave a half-done command behind. So before each change, easyrsa_py.files
records here how to undo it. The journal of process PID is the folder
`pki/.easyrsa-py-undo.PID/`, created at the command's first change. Its
append-only `log` has one line per change, written and flushed with fsync
before the change is made. Each line is a Python dict literal read back with
ast.literal_eval, because the start-up imports load ast already and json
would be one more import. A file that a change replaces or removes
is kept in the folder as a hard link to its old inode (or, when no link can
be made, a copy), and a removed folder is moved there whole.

Each line also records what the path looks like once the change is made,
such as the new file's device and inode (a rename keeps the temporary
file's inode). An undo can so tell a change that was made from one that was
not, and both from a path that someone else changed since.

- When the command succeeds, the log is unlinked first. That single step
  makes the command count as done, and then the backups are deleted.
- When the command raises, its changes are undone in reverse order before
  the error is reported.
- When the command was killed, the next run (cli.py calls recover() once
  it holds the PKI lock) undoes it and says so. If a path changed since,
  nothing is undone: the journal stays and the run stops, so that no later
  write is lost.

easy-rsa ignores the hidden folder, and finds pki/lock.file held by the
killed process until an easyrsa_py run takes the lock over and recovers.

NOTE: no folder fsync follows a backup's hard link, to keep one fsync per
change. After a power cut (untested) a backup may be missing unless the file
system commits metadata changes in order. A SIGKILL loses nothing.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import logging
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from easyrsa_py.errors import EasyRSAError

logger = logging.getLogger(__name__)

FOLDER_PREFIX = ".easyrsa-py-undo."
LOG_NAME = "log"
# The temporary files of files._create_temporary: `.NAME.<12 hex digits>.tmp`.
_TEMP_FILE = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")

# (st_dev, st_ino), plus (st_size, st_mtime_ns) for a regular file so that a
# rewrite in place, which keeps the inode, counts as a change too.
Identity = tuple[int, ...]
# easyrsa_py.lock's file, which init-pki takes over inside its handler. The
# lock is no PKI data, so its changes are left out of the journal.
_LOCK_FILE_NAME = "lock.file"


class JournalConflict(EasyRSAError):
    """A journal cannot be undone because a path it covers was changed by someone else."""

    def __init__(self, folder: Path, paths: list[Path], cause: str = "") -> None:
        self.folder = folder
        self.paths = paths
        listing = ", ".join(str(path) for path in paths)
        super().__init__(
            f"{cause}The interrupted command recorded in {folder} cannot be undone, because "
            f"these paths changed since it ran: {listing}. Nothing was undone, so that no later "
            f"change is lost. Check those files, then delete {folder} to keep the PKI as it is."
        )


def _fault(point: str, path: Path) -> None:
    # Imported here because files imports this module.
    from easyrsa_py import files

    files.fault_point(point, path)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _identity(path: Path) -> Identity | None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    return _identity_of(info)


def _identity_of(info: os.stat_result) -> Identity:
    if stat.S_ISREG(info.st_mode):
        return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns
    return info.st_dev, info.st_ino


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


# --- recording ------------------------------------------------------------------


class Journal:
    """The undo log of one command on one PKI, created at its first change."""

    def __init__(self, root: Path) -> None:
        self.root = _absolute(root)
        self.folder = self.root / f"{FOLDER_PREFIX}{os.getpid()}"
        self.entries: list[dict[str, Any]] = []
        self._log_fd: int | None = None
        self._backup_count = 0

    def _open(self) -> bool:
        """Create the folder and its log, or return False when the PKI folder does not exist yet."""
        if self._log_fd is not None:
            return True
        if not self.root.is_dir():
            return False
        if os.path.lexists(self.folder):
            # Left by an earlier process with this PID (a container restarted)
            # that recover() did not see because this command takes no lock.
            _recover_one(self.root, os.getpid(), self.folder)
        os.mkdir(self.folder, 0o700)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        fd = -1
        try:
            fd = os.open(self.folder / LOG_NAME, flags, 0o600)
            _fsync_folder(self.root)
        except BaseException:
            # A journal that could not be started must not stay behind.
            if fd >= 0:
                os.close(fd)
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        self._log_fd = fd
        return True

    def _stored(self, path: Path) -> str:
        """Return `path` relative to the PKI folder when inside it, so a moved PKI still recovers."""
        absolute = _absolute(path)
        try:
            return absolute.relative_to(self.root).as_posix()
        except ValueError:
            return str(absolute)

    def _backup_name(self) -> str:
        self._backup_count += 1
        return str(self._backup_count)

    def _append(self, entry: dict[str, Any]) -> None:
        assert self._log_fd is not None
        line = repr(entry) + "\n"
        try:
            os.write(self._log_fd, line.encode("utf-8", "surrogateescape"))
            os.fsync(self._log_fd)
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(self.folder / LOG_NAME)) from error
        self.entries.append(entry)
        _fault("journal-record", self.folder / LOG_NAME)

    def _make_backup(self, path: Path) -> tuple[str, bool]:
        """Keep the file at `path` in the folder, returning its name there and whether it is a copy."""
        name = self._backup_name()
        try:
            os.link(path, self.folder / name, follow_symlinks=False)
            return name, False
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
        shutil.copy2(path, self.folder / name, follow_symlinks=False)
        return name, True

    def write(self, target: Path, temporary: Path) -> None:
        """Record that `temporary` is about to be renamed over `target`."""
        if _absolute(target) == self.root / _LOCK_FILE_NAME or not self._open():
            return
        old = _identity(target)
        backup, copied = self._make_backup(target) if old is not None else (None, False)
        new = _identity(temporary)
        self._append(
            {"op": "write", "path": self._stored(target), "old": old, "new": new,
             "backup": backup, "copied": copied}
        )

    def move(self, source: Path, target: Path) -> None:
        """Record that `source` is about to be renamed to `target`."""
        if self._open():
            entry = {"op": "move", "source": self._stored(source), "target": self._stored(target),
                     "inode": _identity(source)}
            self._append(entry)

    def remove(self, path: Path) -> bool:
        """Remove `path` (a file or a whole folder) by moving it into the journal.

        Returns False when there is nothing at `path`, or when the journal
        cannot be used, in which case the caller removes it.
        """
        identity = _identity(path)
        if identity is None or not self._open():
            return False
        name = self._backup_name()
        self._append({"op": "remove", "path": self._stored(path), "inode": identity, "backup": name})
        try:
            os.rename(path, self.folder / name)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            _copy_any(path, self.folder / name)
            _delete_any(path)
        return True

    def make_folder(self, path: Path) -> None:
        """Record that the folder `path` is about to be created."""
        if self._open():
            self._append({"op": "mkdir", "path": self._stored(path)})

    def remove_folder(self, path: Path) -> None:
        """Record that the empty folder `path` is about to be removed."""
        if self._open():
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            self._append({"op": "rmdir", "path": self._stored(path), "mode": mode})

    def change_mode(self, path: Path, mode: int) -> None:
        """Record that the mode of `path` is about to become `mode`."""
        if self._open():
            info = os.stat(path)
            self._append(
                {"op": "chmod", "path": self._stored(path), "inode": _identity_of(info),
                 "old": stat.S_IMODE(info.st_mode), "new": mode}
            )

    # --- ending ---------------------------------------------------------------------

    def commit(self) -> None:
        """Make every recorded change final, then delete the backups."""
        if self._log_fd is None:
            return
        os.close(self._log_fd)
        self._log_fd = None
        os.unlink(self.folder / LOG_NAME)
        _fsync_folder(self.folder)
        _fault("journal-commit", self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.entries = []
        self._backup_count = 0

    def roll_back(self) -> list[str]:
        """Undo every recorded change, newest first, and return a description of each step.

        Raises JournalConflict, undoing nothing, when a path changed since.
        """
        if self._log_fd is None:
            return []
        os.close(self._log_fd)
        self._log_fd = None
        done = undo_entries(self.root, self.folder, self.entries)
        self.entries = []
        self._backup_count = 0
        return done


def _copy_any(source: Path, target: Path) -> None:
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True)
    else:
        shutil.copy2(source, target, follow_symlinks=False)


def _delete_any(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


# --- the active journal -----------------------------------------------------------------

_active: Journal | None = None


def active() -> Journal | None:
    """Return the journal of the running command, or None outside a command."""
    return _active


@contextlib.contextmanager
def recording(root: Path) -> Iterator[Journal]:
    """Record the changes of the block, commit them when it returns and undo them when it raises."""
    global _active
    journal = Journal(root)
    _active = journal
    try:
        yield journal
    except BaseException as error:
        _active = None
        try:
            done = journal.roll_back()
        except JournalConflict as conflict:
            raise JournalConflict(conflict.folder, conflict.paths, f"The command failed ({error}). ") from error
        except OSError as undo_error:
            raise EasyRSAError(
                f"The command failed ({error}), and undoing its changes failed too: {undo_error}. "
                f"The journal {journal.folder} is kept, and the next easyrsa-py command undoes it."
            ) from error
        if done:
            logger.debug("undid the changes of the failed command: %s", ", ".join(done))
        raise
    finally:
        _active = None
    journal.commit()


def commit() -> None:
    """Make the changes so far final, for a command whose next step must not undo them."""
    if _active is not None:
        _active.commit()


# --- undoing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Seen:
    """A path as the undo expects to find it: absent, or an inode (None: any) and whether a folder."""

    identity: Identity | None
    is_folder: bool = False
    mode: int | None = None


_ABSENT = _Seen(None)


class _Plan:
    """The undo steps of a journal, checked against the PKI before any is taken."""

    def __init__(self, root: Path, folder: Path) -> None:
        self.root = root
        self.folder = folder
        self.expected: dict[Path, _Seen | None] = {}
        self.steps: list[tuple[Callable[[], None], str, Path]] = []
        self.conflicts: list[Path] = []

    def path(self, stored: str) -> Path:
        return Path(stored) if os.path.isabs(stored) else self.root / stored

    def look(self, path: Path) -> _Seen | None:
        """Return how `path` is now, or will be after the steps planned so far."""
        if path in self.expected:
            return self.expected[path]
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None
        return _Seen(_identity_of(info), stat.S_ISDIR(info.st_mode), stat.S_IMODE(info.st_mode))

    def step(self, action: Callable[[], None], description: str, path: Path) -> None:
        self.steps.append((action, description, path))


def _same(seen: _Seen | None, identity: Any) -> bool:
    return seen is not None and identity is not None and seen.identity == tuple(identity)


def _plan_write(plan: _Plan, entry: dict[str, Any]) -> None:
    path = plan.path(entry["path"])
    seen = plan.look(path)
    backup = plan.folder / entry["backup"] if entry["backup"] else None
    if _same(seen, entry["new"]):
        if backup is None:
            plan.step(lambda: os.unlink(path), f"removed {path}", path)
            plan.expected[path] = None
        else:
            copied = bool(entry["copied"])
            plan.step(lambda: _restore_file(backup, path, copied), f"restored {path}", path)
            plan.expected[path] = _Seen(None if copied else tuple(entry["old"]))
    elif not _write_not_made(seen, entry, path, backup):
        plan.conflicts.append(path)


def _write_not_made(seen: _Seen | None, entry: dict[str, Any], path: Path, backup: Path | None) -> bool:
    """Return whether `path` is as it was before the write, so there is nothing to undo."""
    old = entry["old"]
    if old is None:
        return seen is None
    if seen is None:
        return False
    # An identity of None is a file an earlier step restores from a copy.
    if _same(seen, old) or seen.identity is None:
        return True
    return bool(entry["copied"]) and backup is not None and _same_content(path, backup)


def _plan_move(plan: _Plan, entry: dict[str, Any]) -> None:
    source, target = plan.path(entry["source"]), plan.path(entry["target"])
    at_source, at_target = plan.look(source), plan.look(target)
    inode = entry["inode"]
    if _same(at_target, inode) and at_source is None:
        plan.step(lambda: os.rename(target, source), f"moved {target} back to {source}", source)
        plan.expected[source], plan.expected[target] = at_target, None
    elif _same(at_target, inode) and _same(at_source, inode):
        # A move by hard link was cut between the link and the unlink.
        plan.step(lambda: os.unlink(target), f"removed {target}", target)
        plan.expected[target] = None
    elif not (_same(at_source, inode) and at_target is None):
        plan.conflicts.append(target if at_target is not None else source)


def _plan_remove(plan: _Plan, entry: dict[str, Any]) -> None:
    path = plan.path(entry["path"])
    seen = plan.look(path)
    backup = plan.folder / entry["backup"]
    if seen is None and os.path.lexists(backup):
        plan.step(lambda: _restore_removed(backup, path), f"restored {path}", path)
        plan.expected[path] = _Seen(tuple(entry["inode"]), backup.is_dir() and not backup.is_symlink())
    elif not _same(seen, entry["inode"]):
        plan.conflicts.append(path)


def _plan_make_folder(plan: _Plan, entry: dict[str, Any]) -> None:
    path = plan.path(entry["path"])
    seen = plan.look(path)
    if seen is None:
        return
    if not seen.is_folder or _foreign_entries(plan, path):
        plan.conflicts.append(path)
        return
    plan.step(lambda: _remove_new_folder(path), f"removed the folder {path}", path)
    plan.expected[path] = None


def _plan_remove_folder(plan: _Plan, entry: dict[str, Any]) -> None:
    path = plan.path(entry["path"])
    seen = plan.look(path)
    if seen is None:
        mode = entry["mode"]
        plan.step(lambda: _make_folder(path, mode), f"restored the folder {path}", path)
        plan.expected[path] = _Seen(None, True)
    elif not seen.is_folder:
        plan.conflicts.append(path)


def _plan_change_mode(plan: _Plan, entry: dict[str, Any]) -> None:
    path = plan.path(entry["path"])
    seen = plan.look(path)
    if seen is None or (seen.identity is not None and not _same(seen, entry["inode"])):
        plan.conflicts.append(path)
    elif seen.mode == entry["new"]:
        old = entry["old"]
        plan.step(lambda: os.chmod(path, old), f"restored the mode of {path}", path)
        plan.expected[path] = _Seen(seen.identity, seen.is_folder, old)
    elif seen.mode != entry["old"] and seen.mode is not None:
        plan.conflicts.append(path)


_PLANNERS: dict[str, Callable[[_Plan, dict[str, Any]], None]] = {
    "write": _plan_write,
    "move": _plan_move,
    "remove": _plan_remove,
    "mkdir": _plan_make_folder,
    "rmdir": _plan_remove_folder,
    "chmod": _plan_change_mode,
}


def _foreign_entries(plan: _Plan, folder: Path) -> bool:
    """Return whether `folder` contains anything the undo will not remove, beyond temporary files."""
    try:
        children = list(folder.iterdir())
    except FileNotFoundError:
        children = []  # an earlier step of the undo restores it
    for child in children:
        if plan.expected.get(child, _ABSENT) is None or _TEMP_FILE.fullmatch(child.name):
            continue
        return True
    return any(
        seen is not None and path.parent == folder for path, seen in plan.expected.items()
    )


def _same_content(path: Path, backup: Path) -> bool:
    try:
        return path.read_bytes() == backup.read_bytes()
    except OSError:
        return False


def _restore_file(backup: Path, path: Path, copied: bool) -> None:
    if not copied:
        os.replace(backup, path)
        return
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    shutil.copy2(backup, temporary)
    os.replace(temporary, path)


def _restore_removed(backup: Path, path: Path) -> None:
    try:
        os.rename(backup, path)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        _copy_any(backup, path)


def _remove_new_folder(path: Path) -> None:
    for child in path.iterdir():
        if _TEMP_FILE.fullmatch(child.name):
            child.unlink()
    path.rmdir()


def _make_folder(path: Path, mode: int) -> None:
    os.mkdir(path)
    os.chmod(path, mode)


def undo_entries(root: Path, folder: Path, entries: list[dict[str, Any]]) -> list[str]:
    """Undo the logged changes newest first, then delete the journal folder.

    Every step is checked before the first is taken. A path changed by
    someone else raises JournalConflict and leaves everything, journal
    included, as it is. Each step is atomic and the log stays until the
    last one is done, so an undo that is itself cut short resumes.
    """
    plan = _Plan(root, folder)
    for entry in reversed(entries):
        _PLANNERS[entry["op"]](plan, entry)
    if plan.conflicts:
        raise JournalConflict(folder, sorted(set(plan.conflicts)))
    touched: set[Path] = set()
    for action, _, path in plan.steps:
        action()
        touched.add(path.parent)
    for parent in touched:
        with contextlib.suppress(OSError):
            _fsync_folder(parent)
    os.unlink(folder / LOG_NAME)
    shutil.rmtree(folder, ignore_errors=True)
    return list(dict.fromkeys(description for _, description, _ in plan.steps))


# --- recovery ---------------------------------------------------------------------------------


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_log(path: Path) -> list[dict[str, Any]]:
    """Read a log, dropping a last line cut short by a kill, whose change was never made."""
    entries = []
    for line in path.read_bytes().decode("utf-8", "surrogateescape").splitlines():
        try:
            entry = ast.literal_eval(line)
        except (ValueError, SyntaxError):
            break
        if not isinstance(entry, dict):
            break
        entries.append(entry)
    return entries


def abandoned_journals(root: Path) -> list[tuple[int, Path]]:
    """List the journal folders in `root` whose process is gone, or has this process's PID.

    NOTE: a journal whose PID now belongs to an unrelated running process
    stays until that process ends, as a lock file with that PID does.
    """
    found = []
    try:
        names = os.listdir(root)
    except OSError:
        return []
    for name in names:
        pid_text = name.removeprefix(FOLDER_PREFIX)
        if pid_text == name or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid() or not _process_exists(pid):
            found.append((pid, root / name))
    return sorted(found)


def recover(root: Path) -> list[str]:
    """Undo the commands that were killed in the PKI at `root`, returning one message per command.

    A journal folder without a log belongs to a command that had finished,
    so it is just deleted. Raises JournalConflict for a journal whose
    paths changed since; later journals are then left alone too.
    """
    root = _absolute(root)
    messages = [_recover_one(root, pid, folder) for pid, folder in abandoned_journals(root)]
    return [message for message in messages if message]


def _recover_one(root: Path, pid: int, folder: Path) -> str:
    log = folder / LOG_NAME
    if not log.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        return ""
    done = undo_entries(root, folder, _read_log(log))
    if not done:
        return f"Undid an interrupted command of process {pid}: it had made none of its changes yet."
    return f"Undid an interrupted command of process {pid}: {', '.join(done)}."
