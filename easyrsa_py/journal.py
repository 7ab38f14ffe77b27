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
  it holds the PKI lock) undoes it and reports what it restored. If a path
  changed since, nothing is undone: the journal stays and the run stops,
  so that no later write is lost.
- A change that must never be undone once made, a revocation, calls
  go_forward() just before it: the steps left are written to a `redo`
  file, which replaces the log in one rename. From then on a failure or a
  kill leaves those steps for the next run, which finishes them.
- After a recovery or a stale-lock takeover, the temporary files that the
  killed command left are deleted (remove_temporary_files).

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
# The steps left to finish a command that went forward (see go_forward).
REDO_NAME = "redo"
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
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

    def __init__(self, folder: Path, paths: list[Path], cause: str = "", touched: list[str] | None = None) -> None:
        self.folder = folder
        self.paths = paths
        listing = ", ".join(str(path) for path in paths)
        changes = ""
        if touched:
            changes = (
                f" The interrupted command had changed, or was about to change: {', '.join(touched)}."
                " A row it added to index.txt may have no certificate file, and temporary files"
                " (.NAME.<hex>.tmp) it left beside them can be deleted."
            )
        super().__init__(
            f"{cause}The interrupted command recorded in {folder} cannot be undone, because "
            f"these paths changed since it ran: {listing}. Nothing was undone, so that no later "
            f"change is lost.{changes} Check those files, then delete {folder} to keep the PKI as it is."
        )


@dataclass(frozen=True)
class RedoStep:
    """A change a recovery makes if it is not made yet.

    A move of `path` to `target`, a rename of the prepared temporary file
    `path` over `target` (`replace`), or, without a target, a removal. The
    entry records the identity of each file involved when the command went
    forward, so that a recovery finishes only what is still as it was.
    """

    path: Path
    target: Path | None = None
    replace: bool = False

    def covered_by(self, journal: Journal) -> bool:
        return journal._covers(self.path) and (self.target is None or journal._covers(self.target))

    def to_entry(self, journal: Journal) -> dict[str, Any]:
        source = {"source": journal._stored(self.path), "source_id": _identity(self.path)}
        if self.target is None:
            return {"op": "remove", **source}
        op = "replace" if self.replace else "move"
        return {"op": op, **source, "target": journal._stored(self.target), "target_id": _identity(self.target)}


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
        # Set by go_forward(): the changes left are recorded to be finished,
        # not undone, and are not logged one by one.
        self._forward = False

    def _open(self) -> bool:
        """Create the folder and its log, or return False when the PKI folder does not exist yet.

        Also False once the command has gone forward: its remaining changes
        are listed in the redo file already.
        """
        if self._forward:
            return False
        if self._log_fd is not None:
            return True
        if not self.root.is_dir():
            return False
        if os.path.lexists(self.folder):
            # Left by an earlier process with this PID (a container restarted)
            # that recover() did not see because this command takes no lock.
            _recover_one(self.root, os.getpid(), self.folder)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | _CLOEXEC
        fd = -1
        try:
            os.mkdir(self.folder, 0o700)
            fd = os.open(self.folder / LOG_NAME, flags, 0o600)
            _fsync_folder(self.root)
        except OSError as error:
            self._discard(fd)
            # Name the PKI folder: the hidden journal means nothing to the user.
            raise OSError(error.errno, error.strerror, str(self.root)) from error
        except BaseException:
            self._discard(fd)
            raise
        self._log_fd = fd
        return True

    def _discard(self, fd: int) -> None:
        """Remove a journal that could not be started, so it does not stay behind."""
        if fd >= 0:
            os.close(fd)
        if os.path.isdir(self.folder) and not os.path.islink(self.folder):
            shutil.rmtree(self.folder, ignore_errors=True)

    def _covers(self, *paths: Path) -> bool:
        """Return whether every path is inside the PKI folder, the only place the journal records.

        A file written elsewhere (`download --out`, `write`) is replaced
        atomically on its own, and a recovery never touches a path outside
        the PKI, whatever a damaged log contains.
        """
        return all(_absolute(path).is_relative_to(self.root) for path in paths)

    def _stored(self, path: Path) -> str:
        """Return `path` relative to the PKI folder, so a moved PKI still recovers."""
        return _absolute(path).relative_to(self.root).as_posix()

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
            # Name the PKI folder: the hidden journal means nothing to the user.
            raise OSError(error.errno, error.strerror, str(self.root)) from error
        self.entries.append(entry)
        # An injected ENOSPC names the PKI folder, as a real one above does.
        _fault("journal-record", self.root)

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
        if _absolute(target) == self.root / _LOCK_FILE_NAME or not self._covers(target) or not self._open():
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
        if self._covers(source, target) and self._open():
            entry = {"op": "move", "source": self._stored(source), "target": self._stored(target),
                     "inode": _identity(source)}
            self._append(entry)

    def remove(self, path: Path) -> bool:
        """Remove `path` (a file or a whole folder) by moving it into the journal.

        Returns False when there is nothing at `path`, or when the journal
        cannot be used, in which case the caller removes it.
        """
        identity = _identity(path)
        if identity is None or not self._covers(path) or not self._open():
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
        if self._covers(path) and self._open():
            self._append({"op": "mkdir", "path": self._stored(path)})

    def remove_folder(self, path: Path) -> None:
        """Record that the empty folder `path` is about to be removed."""
        if self._covers(path) and self._open():
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            self._append({"op": "rmdir", "path": self._stored(path), "mode": mode})

    def change_mode(self, path: Path, mode: int) -> None:
        """Record that the mode of `path` is about to become `mode`."""
        if self._covers(path) and self._open():
            info = os.stat(path)
            self._append(
                {"op": "chmod", "path": self._stored(path), "inode": _identity_of(info),
                 "old": stat.S_IMODE(info.st_mode), "new": mode}
            )

    # --- ending ---------------------------------------------------------------------

    def commit(self) -> None:
        """Make every recorded change final, then delete the backups."""
        forward, self._forward = self._forward, False
        if self._log_fd is None and not forward:
            return
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None
            os.unlink(self.folder / LOG_NAME)
            _fsync_folder(self.folder)
            _fault("journal-commit", self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.entries = []
        self._backup_count = 0

    @property
    def went_forward(self) -> bool:
        """Whether the command has gone forward (go_forward) and must now be finished, not undone."""
        return self._forward

    def go_forward(self, steps: list[RedoStep]) -> None:
        """Make the changes so far final and record `steps` as the rest of the command.

        From here a failure or a kill leaves the command to be finished, not
        undone: the steps are written to the redo file, which replaces the
        undo log in one rename, and a later recovery takes those of them
        that are not done yet. Each step must be safe to repeat.
        """
        if not self._open():
            return
        lines = "".join(repr(step.to_entry(self)) + "\n" for step in steps if step.covered_by(self))
        temporary = self.folder / (REDO_NAME + ".new")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _CLOEXEC, 0o600)
        try:
            os.write(fd, lines.encode("utf-8", "surrogateescape"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.folder / REDO_NAME)
        _fsync_folder(self.folder)
        _fault("journal-commit", self.folder)
        assert self._log_fd is not None
        os.close(self._log_fd)
        self._log_fd = None
        os.unlink(self.folder / LOG_NAME)
        self.entries = []
        self._forward = True

    def roll_back(self) -> list[str]:
        """Undo every recorded change, newest first, and return a description of each step.

        Raises JournalConflict, undoing nothing, when a path changed since.
        A command that has gone forward has no undo log left: its redo file
        stays for the next run to finish.
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
def recording(root: Path, notify: Callable[[str], None] | None = None) -> Iterator[Journal]:
    """Record the changes of the block, commit them when it returns and undo them when it raises.

    `notify` receives one message when a failure undid changes.
    """
    global _active
    journal = Journal(root)
    _active = journal
    try:
        yield journal
    except BaseException as error:
        _active = None
        if journal.went_forward:
            # Too late to undo: the redo file stays and the next run finishes the command.
            raise
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
            if notify is not None:
                notify(f"The command failed, so its changes were undone: {_summary(done)}.")
        raise
    finally:
        _active = None
    journal.commit()


def commit() -> None:
    """Make the changes so far final, for a command whose next step must not undo them."""
    if _active is not None:
        _active.commit()


def covers(paths: list[Path]) -> bool:
    """Return whether the running command's journal can record changes to every path."""
    return _active is None or _active._covers(*paths)


def go_forward(steps: list[RedoStep]) -> None:
    """Make the running command's changes so far final and have a failure or kill finish `steps`.

    For a change that must never be undone once made, such as a revocation
    written to index.txt: a CRL may already list it, and undoing it would
    let a revoked certificate back in.
    """
    if _active is not None:
        _active.go_forward(steps)


def went_forward() -> bool:
    """Return whether the running command has gone forward, so a failure now leaves it to be finished."""
    return _active is not None and _active.went_forward


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
        # Each step with the number of the logged change it undoes.
        self.steps: list[tuple[Callable[[], None], str, Path, int]] = []
        self.conflicts: list[Path] = []
        self.current = 0  # the number of the change being planned

    def path(self, stored: str) -> Path:
        return self.root / stored

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
        self.steps.append((action, description, path, self.current))


def _same(seen: _Seen | None, identity: Any) -> bool:
    return seen is not None and identity is not None and seen.identity == tuple(identity)


def _backup_matches(backup: Path, identity: Any, copied: bool) -> bool:
    """Return whether the journal's backup file is the one the log recorded.

    A linked or moved backup keeps the recorded inode. A copy is a new file,
    so only its kind is checked: a link planted in its place never counts.
    """
    try:
        info = os.lstat(backup)
    except OSError:
        return False
    if copied:
        return stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)
    return identity is not None and _identity_of(info)[:2] == tuple(identity)[:2]


def _removed_backup_matches(backup: Path, identity: Any) -> bool:
    """Return whether a removed path's backup is the recorded one, or a copy from another file system."""
    if _backup_matches(backup, identity, copied=False):
        return True
    copied_across = bool(identity) and os.lstat(backup).st_dev != identity[0]
    return copied_across and _backup_matches(backup, identity, copied=True)


def _plan_write(plan: _Plan, entry: dict[str, Any]) -> None:
    path = plan.path(entry["path"])
    seen = plan.look(path)
    backup = plan.folder / entry["backup"] if entry["backup"] else None
    if backup is not None and _same(seen, entry["new"]) and not _backup_matches(backup, entry["old"], entry["copied"]):
        plan.conflicts.append(backup)
        return
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
    if seen is None and os.path.lexists(backup) and not _removed_backup_matches(backup, entry["inode"]):
        plan.conflicts.append(backup)
        return
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
    included, as it is. After each step an `undone` line naming its change
    is appended to the log, so an undo that is itself cut short resumes
    with the changes left, even where one path was changed twice.
    """
    changes = [entry for entry in entries if entry["op"] != "undone"]
    undone = [entry["entry"] for entry in entries if entry["op"] == "undone"]
    # The undo goes newest first, so every change from the oldest one marked
    # undone onwards was handled before the undo was cut short.
    left = min(undone, default=len(changes))
    plan = _Plan(root, folder)
    for number in reversed(range(left)):
        plan.current = number
        _PLANNERS[changes[number]["op"]](plan, changes[number])
    if plan.conflicts:
        recorded = [change.get("path") or change["target"] for change in changes[:left]]
        shown = [path for path in dict.fromkeys(recorded) if not _TEMP_FILE.fullmatch(Path(path).name)]
        raise JournalConflict(folder, sorted(set(plan.conflicts)), touched=shown)
    touched: set[Path] = set()
    log_fd = os.open(folder / LOG_NAME, os.O_WRONLY | os.O_APPEND | _CLOEXEC)
    try:
        for action, _, path, number in plan.steps:
            action()
            touched.add(path.parent)
            os.write(log_fd, (repr({"op": "undone", "entry": number}) + "\n").encode("ascii"))
            os.fsync(log_fd)
            _fault("journal-record", root)
    finally:
        os.close(log_fd)
    for parent in touched:
        with contextlib.suppress(OSError):
            _fsync_folder(parent)
    os.unlink(folder / LOG_NAME)
    shutil.rmtree(folder, ignore_errors=True)
    # One description per path, the last one, because it tells how the path ends
    # up. Temporary files mean nothing to the user, so their steps are left out.
    final = {path: description for _, description, path, _ in plan.steps if not _TEMP_FILE.fullmatch(path.name)}
    return list(dict.fromkeys(final.values()))


# --- recovery ---------------------------------------------------------------------------------


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


class JournalDamaged(EasyRSAError):
    """An undo or redo record that easyrsa_py did not write as it is: nothing is done from it."""

    def __init__(self, path: Path, number: int, problem: str) -> None:
        super().__init__(
            f"The record of an interrupted command, {path}, is damaged at line {number}: {problem}. "
            f"Nothing was undone or finished from it. Check the PKI, then delete {path.parent}."
        )


# A log has one line per change, but a damaged or planted file may be any size.
_MAX_RECORD_BYTES = 64 * 1024 * 1024
_IDENTITY = (tuple, type(None))
# The fields of each kind of line, with their types.
_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "write": {"path": (str,), "old": _IDENTITY, "new": _IDENTITY, "backup": (str, type(None)), "copied": (bool,)},
    "move": {"source": (str,), "target": (str,), "inode": _IDENTITY},
    "remove": {"path": (str,), "inode": (tuple,), "backup": (str,)},
    "mkdir": {"path": (str,)},
    "rmdir": {"path": (str,), "mode": (int,)},
    "chmod": {"path": (str,), "inode": (tuple,), "old": (int,), "new": (int,)},
    "undone": {"entry": (int,)},
}
_REDO_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "move": {"source": (str,), "source_id": _IDENTITY, "target": (str,), "target_id": _IDENTITY},
    "replace": {"source": (str,), "source_id": _IDENTITY, "target": (str,), "target_id": _IDENTITY},
    "remove": {"source": (str,), "source_id": _IDENTITY},
}
_PATH_FIELDS = ("path", "source", "target")


def _entry_problem(entry: object, fields: dict[str, dict[str, tuple[type, ...]]]) -> str | None:
    """Return what is wrong with a parsed line, or None for a line easyrsa_py could have written."""
    if not isinstance(entry, dict) or entry.get("op") not in fields:
        return "not a known change"
    expected = fields[entry["op"]]
    if set(entry) != {"op", *expected}:
        return f"the fields of a {entry['op']} line are wrong"
    for name, types in expected.items():
        value = entry[name]
        if not isinstance(value, types) or (isinstance(value, tuple) and not all(type(part) is int for part in value)):
            return f"{name} has the wrong type"
    for name in _PATH_FIELDS:
        stored = entry.get(name)
        if stored is not None and not _is_inside(stored):
            return f"the path {stored!r} is not inside the PKI folder"
    backup = entry.get("backup")
    if isinstance(backup, str) and not backup.isdigit():
        return f"the backup name {backup!r} is not one easyrsa_py gives"
    return None


def _is_inside(stored: str) -> bool:
    parts = stored.split("/")
    return bool(stored) and "\0" not in stored and not stored.startswith("/") and ".." not in parts and "" not in parts


def _read_record(
    path: Path, fields: dict[str, dict[str, tuple[type, ...]]], *, cut_last_line: bool = True
) -> list[dict[str, Any]]:
    """Read a log or redo file, dropping a last line cut short by a kill, whose change was never made.

    A redo file is written whole and renamed into place, so it has no such
    line (`cut_last_line` False). Raises JournalDamaged for anything else
    easyrsa_py would not have written.
    """
    with open(path, "rb") as handle:
        data = handle.read(_MAX_RECORD_BYTES + 1)
    if len(data) > _MAX_RECORD_BYTES:
        raise JournalDamaged(path, 1, f"it is larger than {_MAX_RECORD_BYTES} bytes")
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    entries = []
    for number, line in enumerate(lines, 1):
        is_last = number == len(lines) or (number == len(lines) - 1 and lines[-1] == "")
        if not line and number == len(lines):
            break
        try:
            entry = ast.literal_eval(line)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            if is_last and cut_last_line:
                break  # cut short by a kill: its change was never made
            raise JournalDamaged(path, number, "it is not a record line") from None
        problem = _entry_problem(entry, fields)
        if problem is not None:
            raise JournalDamaged(path, number, problem)
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
        if pid_text == name or not (pid_text.isascii() and pid_text.isdigit()) or len(pid_text) > 10:
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
    if not folder.is_dir() or folder.is_symlink():
        raise EasyRSAError(
            f"{folder} is not a folder easyrsa-py made for an interrupted command. "
            "Move it out of the PKI folder, then run the command again."
        )
    if (folder / REDO_NAME).is_file():
        return _finish(root, pid, folder)
    log = folder / LOG_NAME
    if not log.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        return ""
    done = undo_entries(root, folder, _read_record(log, _FIELDS))
    if not done:
        return f"Undid an interrupted command of process {pid}: its last step had not changed any file yet."
    return f"Undid an interrupted command of process {pid}: {_summary(done)}."


def remove_temporary_files(root: Path) -> list[Path]:
    """Delete the temporary files that killed commands left in the PKI, and return their paths.

    Run under the PKI lock after a takeover or a recovery, when no other
    command can be writing one. Journal folders and links are not entered.
    """
    removed = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(FOLDER_PREFIX)]
        for name in names:
            if _TEMP_FILE.fullmatch(name):
                path = Path(folder) / name
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


class RedoConflict(EasyRSAError):
    """A command to finish from its redo file, whose files someone else has changed since."""

    def __init__(self, folder: Path, paths: list[Path]) -> None:
        listing = ", ".join(str(path) for path in paths)
        super().__init__(
            f"The interrupted revocation recorded in {folder} cannot be finished, because these "
            f"files changed since it was cut short: {listing}. Nothing was done. Its row in "
            f"index.txt is revoked: check those files, move what is left by hand if needed "
            f"(see 'help revoke'), then delete {folder}."
        )


_DONE, _PENDING, _CHANGED = "done", "pending", "changed"


def _redo_state(root: Path, entry: dict[str, Any]) -> str:
    """Return whether a redo step is done, still to do, or blocked by a file changed since."""
    source = _identity(root / entry["source"])
    recorded = _as_identity(entry["source_id"])
    if entry["op"] == "remove":
        if source is None:
            return _DONE
        return _PENDING if source == recorded else _CHANGED
    target = _identity(root / entry["target"])
    if source is None:
        if entry["op"] == "replace":
            return _DONE if target == recorded else _CHANGED
        if target is None:
            return _DONE  # deleted by hand: nothing is left to move
        # A move across file systems copies, so the copy has a new inode but the same size.
        moved = recorded is not None and (target[:2] == recorded[:2] or target[2:3] == recorded[2:3])
        return _DONE if moved else _CHANGED
    if source != recorded:
        return _CHANGED
    if entry["op"] == "replace":
        return _PENDING if target == _as_identity(entry["target_id"]) else _CHANGED
    # A move by hard link cut between the link and the unlink leaves both names.
    return _PENDING if target is None or target[:2] == source[:2] else _CHANGED


def _as_identity(value: Any) -> Identity | None:
    return None if value is None else tuple(value)


def _redo_path_problem(root: Path, entry: dict[str, Any]) -> str | None:
    """Return why a redo step is not one a revocation writes, or None."""
    real_root = os.path.realpath(root)
    for name in ("source", "target"):
        if name in entry:
            parent = os.path.realpath((root / entry[name]).parent)
            if parent != real_root and not parent.startswith(real_root + os.sep):
                return f"{entry[name]} lies in a folder outside the PKI"
    if entry["op"] == "replace":
        source, target = Path(entry["source"]), Path(entry["target"])
        if source.parent != target.parent or not _TEMP_FILE.fullmatch(source.name):
            return f"{entry['source']} is not a temporary file beside {entry['target']}"
    if entry["op"] == "move" and not entry["target"].startswith("revoked/"):
        return f"{entry['target']} is not in the revoked folder"
    return None


def _finish(root: Path, pid: int, folder: Path) -> str:
    """Take the redo steps of a command killed after it went forward, and delete its folder.

    Every step is checked first. A step whose files someone else changed
    since stops the whole finish, because taking the other steps could move
    files that now belong to a newer certificate. The exception is a command
    that had not yet changed anything: it is dropped, with a message.
    """
    # Imported here because files imports this module.
    from easyrsa_py import files

    redo = folder / REDO_NAME
    entries = _read_record(redo, _REDO_FIELDS, cut_last_line=False)
    for number, entry in enumerate(entries, 1):
        problem = _redo_path_problem(root, entry)
        if problem is not None:
            raise JournalDamaged(redo, number, problem)
    states = [_redo_state(root, entry) for entry in entries]
    if _CHANGED in states:
        changed = [root / entry.get("target", entry["source"]) for entry, state in zip(entries, states) if state == _CHANGED]
        if _DONE not in states:
            for entry in entries:
                if entry["op"] == "replace":
                    files.remove_if_present(root / entry["source"])
            shutil.rmtree(folder, ignore_errors=True)
            return (
                f"Dropped an interrupted revocation of process {pid}: it had not changed the PKI yet, "
                f"and {_relative(root, changed[0])} has changed since. Run the revocation again if it is still needed."
            )
        raise RedoConflict(folder, changed)
    done: list[str] = []
    try:
        for entry, state in zip(entries, states):
            if state != _PENDING:
                continue
            source = root / entry["source"]
            if entry["op"] == "remove":
                files.remove_if_present(source)
                done.append(f"removed {_relative(root, source)}")
            elif entry["op"] == "replace":
                os.replace(source, root / entry["target"])
                done.append(f"wrote {entry['target']}")
            else:
                files.move_no_clobber(source, root / entry["target"])
                done.append(f"moved {entry['source']} to {entry['target']}")
    except OSError as error:
        raise EasyRSAError(
            f"Finishing the interrupted revocation of process {pid} failed: {files.describe_os_error(error)} "
            "Once that is fixed, any easyrsa-py command finishes it."
        ) from error
    shutil.rmtree(folder, ignore_errors=True)
    shown = [step for step in done if not step.startswith("wrote ") or not step.endswith(".old")]
    message = f"Finished an interrupted revocation of process {pid}: "
    message += _summary(shown) if shown else "its changes were all made already"
    return message + "."


def _relative(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# The number of paths a recovery message names before it counts the rest.
_MESSAGE_PATHS = 8


def _summary(steps: list[str]) -> str:
    shown = ", ".join(steps[:_MESSAGE_PATHS])
    if len(steps) > _MESSAGE_PATHS:
        shown += f", and {len(steps) - _MESSAGE_PATHS} more"
        logger.debug("every change undone or finished: %s", ", ".join(steps))
    return shown
