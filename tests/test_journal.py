"""The undo journal: failed and killed commands are undone, changed paths stop the undo.

Most tests kill a command with EASYRSA_PY_FAULT at a journal-record hit,
in a forked child (tests/forked_cli.py), and check what the next run does.
The in-process tests call easyrsa_py.files inside journal.recording, as
the CLI does around every handler.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from forked_cli import run_forked
from reference import tree_snapshot

from easyrsa_py import files, journal

KILLED = -signal.SIGKILL
ED25519 = ["--batch", "--use-algo=ed", "--curve=ed25519"]
BUILD_ZED = [*ED25519, "build-client-full", "zed", "nopass"]
UNDID = "Undid an interrupted command of process"


def state(pki: Path) -> dict[str, tuple[int, str | None]]:
    """Snapshot the PKI without the lock file and the temporary files a kill leaves."""
    return tree_snapshot(pki, exclude=["lock.file", "*.tmp"])


def journal_folders(pki: Path) -> list[Path]:
    return sorted(pki.glob(f"{journal.FOLDER_PREFIX}*"))


def killed_build(pki: Path, hit: int = 3) -> None:
    """Kill build-client-full zed after `hit` recorded changes, leaving its journal."""
    result = run_forked(pki, BUILD_ZED, f"journal-record:{hit}:kill")
    assert result.returncode == KILLED, result.stderr
    assert len(journal_folders(pki)) == 1


# --- success and failure in one run -----------------------------------------------


def test_success_leaves_no_journal(pki_copy) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    result = run_forked(pki, BUILD_ZED)
    assert result.returncode == 0, result.stderr
    assert journal_folders(pki) == []
    assert (pki / "issued" / "zed.crt").is_file()


def test_read_only_command_records_nothing(pki_copy) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    before = state(pki)
    # A kill at the first record would end the run: there must be none.
    result = run_forked(pki, ["--batch", "show-cert", "alice"], "journal-record:1:kill")
    assert result.returncode == 0, result.stderr
    assert state(pki) == before


@pytest.mark.parametrize("hit", range(1, 9))
def test_no_space_in_journal_leaves_pki_unchanged(pki_copy, hit: int) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    before = tree_snapshot(pki)
    result = run_forked(pki, BUILD_ZED, f"journal-record:{hit}:enospc")
    assert result.returncode == 1, result.stderr
    assert "No space left" in result.stderr
    assert tree_snapshot(pki) == before


def test_rollback_restores_each_kind_of_change(tmp_path: Path) -> None:
    root = tmp_path / "pki"
    (root / "private").mkdir(parents=True)
    (root / "index.txt").write_bytes(b"old index\n")
    (root / "issued.crt").write_bytes(b"moved\n")
    (root / "gone.p12").write_bytes(b"removed\n")
    (root / "old-folder").mkdir()
    (root / "old-folder" / "file").write_bytes(b"in a removed folder\n")
    (root / "empty").mkdir()
    (root / "private" / "open.key").write_bytes(b"key\n")
    os.chmod(root / "private" / "open.key", 0o644)
    before = tree_snapshot(root)

    with pytest.raises(OSError, match="stop"), journal.recording(root):
        files.atomic_write(root / "index.txt", b"new index\n")
        files.make_dirs(root / "new" / "deeper")
        files.atomic_write(root / "new" / "deeper" / "file", b"new file\n")
        files.move_no_clobber(root / "issued.crt", root / "new" / "moved.crt")
        files.remove_if_present(root / "gone.p12")
        files.remove_tree(root / "old-folder")
        files.remove_empty_folder(root / "empty")
        files.change_mode(root / "private" / "open.key", 0o600)
        raise OSError("stop")

    assert tree_snapshot(root) == before
    assert journal_folders(root) == []


def test_rollback_keeps_inode_of_replaced_file(tmp_path: Path) -> None:
    root = tmp_path / "pki"
    root.mkdir()
    (root / "serial").write_bytes(b"01\n")
    inode = (root / "serial").stat().st_ino
    with pytest.raises(KeyboardInterrupt), journal.recording(root):
        files.atomic_write(root / "serial", b"02\n")
        raise KeyboardInterrupt
    assert (root / "serial").read_bytes() == b"01\n"
    assert (root / "serial").stat().st_ino == inode


def test_lock_file_is_not_recorded(tmp_path: Path) -> None:
    # init-pki takes over a stale lock inside its handler, and releases it
    # before a failure is undone.
    root = tmp_path / "pki"
    root.mkdir()
    (root / "lock.file").write_text("999999999\n")
    with pytest.raises(OSError, match="stop"), journal.recording(root):
        files.atomic_write(root / "lock.file", b"1\n")
        (root / "lock.file").unlink()
        files.atomic_write(root / "index.txt", b"")
        raise OSError("stop")
    assert not (root / "lock.file").exists()
    assert not (root / "index.txt").exists()
    assert journal_folders(root) == []


def test_commit_point_keeps_earlier_changes(tmp_path: Path) -> None:
    root = tmp_path / "pki"
    root.mkdir()
    with pytest.raises(OSError, match="upload"), journal.recording(root):
        files.atomic_write(root / "crl.pem", b"kept\n")
        journal.commit()
        files.atomic_write(root / "other", b"undone\n")
        raise OSError("upload failed")
    assert (root / "crl.pem").read_bytes() == b"kept\n"
    assert not (root / "other").exists()
    assert journal_folders(root) == []


# --- recovery after a kill -------------------------------------------------------------


def test_next_run_undoes_killed_command(pki_copy) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    before = state(pki)
    killed_build(pki)
    assert state(pki) != before

    result = run_forked(pki, ["--batch", "show-ca"])

    assert result.returncode == 0, result.stderr
    assert UNDID in result.stderr
    assert "removed" in result.stderr
    assert str(pki / "private" / "zed.key") in result.stderr
    assert state(pki) == before
    assert journal_folders(pki) == []


def test_rerun_after_undo_reaches_after_state(pki_copy) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    killed_build(pki, hit=6)
    result = run_forked(pki, BUILD_ZED)
    assert result.returncode == 0, result.stderr
    assert UNDID in result.stderr
    assert "Took over the stale lock file" in result.stderr
    assert (pki / "issued" / "zed.crt").is_file()
    assert journal_folders(pki) == []


def test_recovery_with_nolockfile(pki_copy) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    before = state(pki)
    killed_build(pki)
    (pki / "lock.file").unlink()
    result = run_forked(pki, ["--batch", "--nolockfile", "gen-crl"])
    assert result.returncode == 0, result.stderr
    assert UNDID in result.stderr
    assert state(pki) == {**before, **{name: state(pki)[name] for name in ("crl.pem", "crl.der")}}


def test_soft_init_pki_undoes_killed_command_first(pki_copy) -> None:
    # init-pki takes no lock before its prompt; 'soft' keeps reqs/, so a
    # request the killed command wrote would survive without the undo.
    pki = pki_copy("v3.2.7-ed25519")
    killed_build(pki, hit=3)
    assert (pki / "reqs" / "zed.req").is_file()
    (pki / "lock.file").unlink()
    result = run_forked(pki, ["--batch", "init-pki", "soft"])
    assert result.returncode == 0, result.stderr
    assert UNDID in result.stderr
    assert not (pki / "reqs" / "zed.req").exists()
    assert journal_folders(pki) == []


def test_killed_init_pki_undone_before_checks(pki_copy) -> None:
    # init-pki clears private/ first, so the PKI looks uninitialised until undone.
    pki = pki_copy("v3.2.7-ed25519")
    before = state(pki)
    result = run_forked(pki, [*ED25519, "init-pki"], "journal-record:2:kill")
    assert result.returncode == KILLED
    assert not (pki / "private").exists()

    rerun = run_forked(pki, ["--batch", "show-ca"])

    assert rerun.returncode == 0, rerun.stderr
    assert UNDID in rerun.stderr
    assert state(pki) == before


def test_unlocked_read_only_command_ignores_journal(pki_copy) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    killed_build(pki)
    left = state(pki)
    result = run_forked(pki, ["--batch", "crl-status"])
    assert UNDID not in result.stderr
    assert "Traceback" not in result.stderr
    assert state(pki) == left


def test_journal_without_log_is_deleted(pki_copy) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    result = run_forked(pki, BUILD_ZED, "journal-commit:1:kill")
    assert result.returncode == KILLED
    after = state(pki)
    assert not (journal_folders(pki)[0] / journal.LOG_NAME).exists()

    rerun = run_forked(pki, ["--batch", "show-ca"])

    assert rerun.returncode == 0, rerun.stderr
    assert UNDID not in rerun.stderr
    assert journal_folders(pki) == []
    assert state(pki) == {path: value for path, value in after.items() if journal.FOLDER_PREFIX not in path}


def test_changed_path_stops_undo(pki_copy) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    killed_build(pki, hit=6)
    # Someone else (easy-rsa, after the lock was deleted) rewrote index.txt.
    (pki / "lock.file").unlink()
    index = pki / "index.txt"
    with index.open("ab") as handle:
        handle.write(b"V\t991231235959Z\t\t0A\tunknown\t/CN=other\n")
    left = state(pki)
    folder = journal_folders(pki)[0]

    result = run_forked(pki, ["--batch", "gen-crl"])

    assert result.returncode == 1
    assert str(folder) in result.stderr
    assert str(index) in result.stderr
    assert "Nothing was undone" in result.stderr
    assert state(pki) == left
    assert (folder / journal.LOG_NAME).is_file()


def test_interrupted_undo_resumes(pki_copy, monkeypatch) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    before = state(pki)
    killed_build(pki, hit=7)
    calls = []

    def fail_second(backup: Path, path: Path, copied: bool) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError("cut short")
        os.replace(backup, path)

    monkeypatch.setattr(journal, "_restore_file", fail_second)
    with pytest.raises(OSError, match="cut short"):
        journal.recover(pki)
    monkeypatch.undo()

    messages = journal.recover(pki)

    assert len(messages) == 1
    assert state(pki) == before


def test_own_pid_journal_is_undone(tmp_path: Path) -> None:
    # After a container restart, a new process may get the PID of the killed one.
    root = tmp_path / "pki"
    root.mkdir()
    (root / "index.txt").write_bytes(b"before\n")
    undo = journal.Journal(root)
    temporary = root / ".index.txt.000000000000.tmp"
    temporary.write_bytes(b"after\n")
    undo.write(root / "index.txt", temporary)
    os.replace(temporary, root / "index.txt")

    messages = journal.recover(root)

    assert messages == [f"{UNDID} {os.getpid()}: restored {root / 'index.txt'}."]
    assert (root / "index.txt").read_bytes() == b"before\n"
    assert journal_folders(root) == []


def test_init_pki_counts_journal_as_pki_file(pki_copy) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    (pki / f"{journal.FOLDER_PREFIX}999999999").mkdir()
    result = run_forked(pki, ["--batch", "init-pki"])
    assert result.returncode == 0, result.stderr
    assert journal_folders(pki) == []
