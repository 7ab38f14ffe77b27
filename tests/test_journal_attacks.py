"""Attacks on the undo journal: kills in commands the crash tests skip, and mixed use.

Each command here is killed with SIGKILL after each journal-record hit (a
line of the undo log flushed, its change not yet made), in a forked child
(tests/forked_cli.py). After the first kill of each command, easy-rsa 3.2.7
must stop at the lock with exit code 17. After every kill, the next easyrsa_py run must undo the command, say so, and
leave the PKI as before. Temporary files that the killed command wrote
before its first journal line are left out of that comparison, because
the undo does not remove them.

Set EASYRSA_PY_JOURNAL_ATTACKS=1 to kill at every fault point of
easyrsa_py.files instead of only at the journal-record hits.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from forked_cli import run_forked
from pkitools import pki_state
from test_crashes_issuing import age_empty_lock, count_fault_points, fault_hits

from easyrsa_py import journal
from easyrsa_py.errors import EXIT_LOCK
from easyrsa_py.journal import _identity

KILLED = -signal.SIGKILL
UNDID = "Undid an interrupted command of process"
ED25519 = ("--batch", "--use-algo=ed", "--curve=ed25519")
BUILD_ZED = [*ED25519, "build-client-full", "zed", "nopass"]
SHOW_CA = ["--batch", "show-ca"]
ALL_POINTS_VARIABLE = "EASYRSA_PY_JOURNAL_ATTACKS"


def without_temporary_files(state: dict[str, tuple[int, str | None]]) -> dict[str, tuple[int, str | None]]:
    return {path: value for path, value in state.items() if not path.endswith(".tmp")}


def journal_folders(pki: Path) -> list[Path]:
    return sorted(pki.glob(f"{journal.FOLDER_PREFIX}*"))


def has_undo_log(pki: Path) -> bool:
    """Return whether a journal is left to be undone, not one with a `redo` file to be finished."""
    return any(
        (folder / journal.LOG_NAME).is_file() and not (folder / "redo").exists() for folder in journal_folders(pki)
    )


def run_ok(pki: Path, arguments: list[str]) -> None:
    result = run_forked(pki, arguments)
    assert result.returncode == 0, f"{arguments}: {result.stderr}"


# --- the commands ---------------------------------------------------------------------


def external_request(pki: Path) -> None:
    """Leave a request for `ext` beside the PKI, as a user would send one in."""
    run_ok(pki, [*ED25519, "gen-req", "ext", "nopass"])
    shutil.move(pki / "reqs" / "ext.req", pki.parent / "ext.req")
    (pki / "private" / "ext.key").unlink()


def external_ca(pki: Path) -> None:
    shutil.copy(pki / "ca.crt", pki.parent / "other-ca.crt")


@dataclass(frozen=True)
class Case:
    """One command on a copy of a fixture PKI; `{outside}` in an argument is the PKI's parent folder."""

    name: str
    arguments: tuple[str, ...]
    fixture: str = "v3.2.7-ed25519"
    setup: tuple[tuple[str, ...] | Callable[[Path], None], ...] = field(default=())

    def __str__(self) -> str:
        return self.name

    def prepare(self, pki_copy: Callable[[str], Path]) -> Path:
        pki = pki_copy(self.fixture)
        for step in self.setup:
            if callable(step):
                step(pki)
            else:
                run_ok(pki, list(step))
        return pki

    def argv(self, pki: Path) -> list[str]:
        return [argument.format(outside=pki.parent) for argument in self.arguments]


CASES = [
    Case("sign-req", ("--batch", "sign-req", "client", "zed"), setup=((*ED25519, "gen-req", "zed", "nopass"),)),
    Case("import-req", ("--batch", "import-req", "{outside}/ext.req", "zed"), setup=(external_request,)),
    Case("build-server-full", (*ED25519, "build-server-full", "srv", "nopass")),
    Case("build-serverClient-full", (*ED25519, "build-serverClient-full", "both", "nopass")),
    Case(
        "set-pass-encrypted",
        ("--batch", "--passin=pass:first-pass-1234", "--passout=pass:second-pass-1234", "set-pass", "alice"),
        setup=(("--batch", "--passout=pass:first-pass-1234", "set-pass", "alice"),),
    ),
    Case("export-p7", ("--batch", "export-p7", "alice")),
    Case("export-p8", ("--batch", "export-p8", "alice", "nopass")),
    Case("export-p1", ("--batch", "export-p1", "alice", "nopass"), fixture="v3.2.7-rsa"),
    Case("inline", ("--batch", "inline", "alice")),
    Case("gen-tls-auth-key", ("--batch", "gen-tls-auth-key")),
    Case("import-ca", ("--batch", "import-ca", "{outside}/other-ca.crt"), setup=(external_ca,)),
    Case("renew-ca", ("--batch", "renew-ca")),
    Case("clean-all", (*ED25519, "clean-all")),
]


def kill_points(counts: dict[str, int]) -> list[tuple[str, int]]:
    if os.environ.get(ALL_POINTS_VARIABLE):
        return fault_hits(counts)
    return fault_hits(counts, ("journal-record",))


def check_script_stops(pki: Path, arguments: list[str], reference, label: str) -> None:
    unchanged = pki_state(pki)
    script = reference.run(pki, *[a for a in arguments if not a.startswith(("--use-algo", "--curve"))], check=False)
    assert script.returncode == EXIT_LOCK, f"{label}: easy-rsa 3.2.7 output {script.stdout}"
    assert pki_state(pki) == unchanged, f"{label}: easy-rsa 3.2.7 changed the PKI"


@pytest.mark.reference
@pytest.mark.parametrize("case", CASES, ids=str)
def test_killed_command_is_undone(case: Case, pki_copy, reference_for) -> None:
    reference = reference_for("3.2.7")
    counting = case.prepare(pki_copy)
    hits = kill_points(count_fault_points(counting, case.argv(counting)))
    assert hits, f"{case} records no change"
    for number, (point, hit) in enumerate(hits):
        pki = case.prepare(pki_copy)
        arguments = case.argv(pki)
        before = pki_state(pki)
        label = f"{case} killed at {point}:{hit}"

        killed = run_forked(pki, arguments, f"{point}:{hit}:kill")

        assert killed.returncode == KILLED, f"{label}: {killed.stderr}"
        undo = has_undo_log(pki)
        if number == 0 and (pki / "lock.file").exists():
            check_script_stops(pki, arguments, reference, label)
        age_empty_lock(pki)  # a kill at lock-created leaves it empty
        # A command killed after its commit is done. Without a CA (clean-all),
        # init-pki is the next command that runs and clears the journal.
        next_run = SHOW_CA if undo or (pki / "ca.crt").exists() else [*ED25519, "init-pki"]
        recovered = run_forked(pki, next_run)
        assert recovered.returncode == 0, f"{label}: {recovered.stderr}"
        assert "Traceback" not in recovered.stderr, label
        assert journal_folders(pki) == [], f"{label}: the journal is left"
        if undo:
            assert UNDID in recovered.stderr, label
            assert without_temporary_files(pki_state(pki)) == without_temporary_files(before), label
            rerun = run_forked(pki, arguments)
            assert rerun.returncode == 0, f"{label}: the command failed after the undo: {rerun.stderr}"
        shutil.rmtree(pki.parent)


# --- kills in a row -----------------------------------------------------------------------

RENEW_ALICE = [*ED25519, "renew", "alice"]


@pytest.mark.parametrize("arguments", [BUILD_ZED, RENEW_ALICE], ids=["build-client-full", "renew"])
@pytest.mark.parametrize(
    "second_fault",
    ["write-temp-after:1", "write-rename-after:1", "journal-record:2", "journal-record:6"],
)
def test_second_kill_after_first_is_undone(pki_copy, arguments: list[str], second_fault: str) -> None:
    # The lock takeover passes write-temp-after and write-rename-after first,
    # so the first two faults stop the second run before its recovery.
    pki = pki_copy("v3.2.7-ed25519")
    before = pki_state(pki)
    assert run_forked(pki, arguments, "journal-record:5:kill").returncode == KILLED
    second = run_forked(pki, arguments, f"{second_fault}:kill")
    assert second.returncode == KILLED, second.stderr

    recovered = run_forked(pki, SHOW_CA)

    assert recovered.returncode == 0, recovered.stderr
    assert UNDID in recovered.stderr
    assert without_temporary_files(pki_state(pki)) == without_temporary_files(before)
    assert journal_folders(pki) == []


def run_killing_undo_step(pki: Path, arguments: list[str], step: int) -> int:
    """Run the CLI in a forked child that SIGKILLs itself before the undo's `step`-th action.

    Returns 0 when the kill came, 1 when the undo had fewer steps.
    """
    pid = os.fork()
    if pid == 0:
        steps_taken = [0]
        add_step = journal._Plan.step

        def counted_step(plan: journal._Plan, action: Callable[[], None], description: str, path: Path) -> None:
            def act() -> None:
                steps_taken[0] += 1
                if steps_taken[0] == step:
                    os.kill(os.getpid(), signal.SIGKILL)
                action()

            add_step(plan, act, description, path)

        journal._Plan.step = counted_step  # type: ignore[method-assign, assignment]
        result = run_forked(pki, arguments)
        os._exit(0 if result.returncode == KILLED else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("hit", [3, 7, 10])
def test_killed_undo_resumes(pki_copy, hit: int) -> None:
    # NOTE: build-client-full writes each path once. When a command removes a
    # path and then writes it again (renew's inline file, init-pki's
    # folders), a resumed undo finds the restored file where the newer log
    # line expects none and stops with a conflict, so those are not here.
    kills = []
    for step in (1, 2, 4):
        pki = pki_copy("v3.2.7-ed25519")
        before = pki_state(pki)
        assert run_forked(pki, BUILD_ZED, f"journal-record:{hit}:kill").returncode == KILLED
        kills.append(run_killing_undo_step(pki, SHOW_CA, step) == 0)

        resumed = run_forked(pki, SHOW_CA)

        assert resumed.returncode == 0, f"undo killed at step {step}: {resumed.stderr}"
        assert without_temporary_files(pki_state(pki)) == without_temporary_files(before), step
        assert journal_folders(pki) == []
    assert any(kills), "no undo was cut short"


# --- easy-rsa 3.2.7 after the lock was deleted ------------------------------------------------


@pytest.mark.reference
def test_conflict_keeps_script_work(pki_copy, reference_for) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    assert run_forked(pki, BUILD_ZED, "journal-record:1:kill").returncode == KILLED
    (pki / "lock.file").unlink()
    script = reference_for("3.2.7").run(pki, "--batch", "build-client-full", "zed", "nopass", check=False)
    assert script.returncode == 0, script.stdout
    after_script = pki_state(pki)
    folder = journal_folders(pki)[0]

    result = run_forked(pki, ["--batch", "gen-crl"])

    assert result.returncode == 1
    assert str(folder) in result.stderr
    assert str(pki / "private" / "zed.key") in result.stderr
    assert "Nothing was undone" in result.stderr
    assert f"delete {folder}" in result.stderr
    assert pki_state(pki) == after_script


@pytest.mark.reference
@pytest.mark.parametrize("version", ["3.2.2", "3.2.7"])
def test_scripts_ignore_pending_journal(pki_copy, reference_for, version: str) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    assert run_forked(pki, BUILD_ZED, "journal-record:5:kill").returncode == KILLED
    (pki / "lock.file").unlink()
    folder = journal_folders(pki)[0]
    journal_files = {path: value for path, value in pki_state(pki).items() if path.startswith(folder.name)}
    script = reference_for(version)

    result = script.run(pki, "--batch", "show-cert", "alice", check=False)

    assert result.returncode == 0, result.stdout
    assert {path: value for path, value in pki_state(pki).items() if path.startswith(folder.name)} == journal_files


# --- a full disk, modes ---------------------------------------------------------------------

FULL_DISK_CASES = [case for case in CASES if case.name in ("sign-req", "renew-ca", "import-req")]


@pytest.mark.parametrize("case", FULL_DISK_CASES, ids=str)
def test_full_disk_in_journal_changes_nothing(case: Case, pki_copy) -> None:
    counting = case.prepare(pki_copy)
    hits = count_fault_points(counting, case.argv(counting)).get("journal-record", 0)
    assert hits > 0
    for hit in range(1, hits + 1):
        pki = case.prepare(pki_copy)
        before = pki_state(pki)
        result = run_forked(pki, case.argv(pki), f"journal-record:{hit}:enospc")
        assert result.returncode == 1, f"{case} at hit {hit}: {result.stderr}"
        assert "No space left on" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert pki_state(pki) == before, f"{case} at hit {hit}"
        shutil.rmtree(pki.parent)


@pytest.mark.parametrize("umask", ["000", "077"])
@pytest.mark.parametrize(
    "arguments",
    [BUILD_ZED, [*ED25519, "renew", "alice"], [*ED25519, "init-pki"],
     ["--batch", "--passout=pass:crash-pass-1234", "set-pass", "alice"]],
    ids=["build-client-full", "renew", "init-pki", "set-pass"],
)
def test_undo_keeps_modes_and_hides_keys(pki_copy, arguments: list[str], umask: str) -> None:
    for hit in (1, 3, 6, 12):
        pki = pki_copy("v3.2.7-ed25519")
        before = pki_state(pki)
        killed = run_forked(pki, [f"--umask={umask}", *arguments], f"journal-record:{hit}:kill")
        if killed.returncode != KILLED:
            continue  # the command records fewer changes
        for folder in journal_folders(pki):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
            for kept in folder.rglob("*"):
                if kept.is_file() and b"PRIVATE KEY" in kept.read_bytes():
                    assert stat.S_IMODE(kept.stat().st_mode) & 0o077 == 0, f"{kept} is readable by others"

        recovered = run_forked(pki, [f"--umask={umask}", *SHOW_CA])

        assert recovered.returncode == 0, recovered.stderr
        assert without_temporary_files(pki_state(pki)) == without_temporary_files(before), hit


# --- journals that no killed command wrote -------------------------------------------------------


def test_truncated_last_line_is_dropped(pki_copy) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    before = pki_state(pki)
    assert run_forked(pki, BUILD_ZED, "journal-record:4:kill").returncode == KILLED
    log = journal_folders(pki)[0] / journal.LOG_NAME
    with log.open("ab") as handle:
        handle.write(b"{'op': 'write', 'path': 'ind")

    recovered = run_forked(pki, SHOW_CA)

    assert recovered.returncode == 0, recovered.stderr
    assert UNDID in recovered.stderr
    assert without_temporary_files(pki_state(pki)) == without_temporary_files(before)


def test_folder_name_without_pid_is_ignored(pki_copy) -> None:
    pki = pki_copy("v3.2.7-ed25519")
    stranger = pki / f"{journal.FOLDER_PREFIX}backup"
    stranger.mkdir()
    (stranger / journal.LOG_NAME).write_text("{'op': 'mkdir', 'path': 'issued'}\n")
    before = pki_state(pki)

    result = run_forked(pki, ["--batch", "gen-crl"])

    assert result.returncode == 0, result.stderr
    assert UNDID not in result.stderr
    state = pki_state(pki)
    assert {path: state[path] for path in before if not path.startswith("crl.")} == {
        path: value for path, value in before.items() if not path.startswith("crl.")
    }


def test_live_holder_journal_is_left_alone(pki_copy) -> None:
    # A journal whose PID runs (here the test process itself, seen from the
    # child) belongs to a command still at work.
    pki = pki_copy("v3.2.7-ed25519")
    folder = pki / f"{journal.FOLDER_PREFIX}{os.getpid()}"
    folder.mkdir(mode=0o700)
    (folder / journal.LOG_NAME).write_text("{'op': 'mkdir', 'path': 'issued'}\n")

    result = run_forked(pki, ["--batch", "gen-crl"])

    assert result.returncode == 0, result.stderr
    assert UNDID not in result.stderr
    assert (pki / "issued" / "alice.crt").is_file()
    assert (folder / journal.LOG_NAME).is_file()


# --- defects these attacks found, fixed ------------------------------------------


def plant(pki: Path, lines: list[dict], pid: str = "4000000") -> Path:
    folder = pki / f"{journal.FOLDER_PREFIX}{pid}"
    folder.mkdir(mode=0o700)
    (folder / journal.LOG_NAME).write_text("".join(repr(line) + "\n" for line in lines))
    return folder

# Temporary files of a killed command are removed with its undo.
def test_undo_removes_temporary_files(pki_copy):
    pki = pki_copy("v3.2.7-ed25519")
    before = pki_state(pki)
    assert run_forked(pki, BUILD_ZED, "journal-record:6:kill").returncode == KILLED
    assert run_forked(pki, SHOW_CA).returncode == 0
    assert pki_state(pki) == before

# A planted journal never acts outside the PKI or through a link.
@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_hostile_mkdir_outside_pki(pki_copy, form):
    pki = pki_copy("v3.2.7-ed25519")
    victim = pki.parent / "victim"; victim.mkdir()
    plant(pki, [{"op": "mkdir", "path": str(victim) if form == "absolute" else "../victim"}])
    result = run_forked(pki, ["--batch", "gen-crl"])
    assert victim.is_dir(), result.stderr
    assert result.returncode == 1

def test_hostile_chmod_outside_pki(pki_copy):
    pki = pki_copy("v3.2.7-ed25519")
    victim = pki.parent / "secret"; victim.write_text("x"); os.chmod(victim, 0o600)
    plant(pki, [{"op": "chmod", "path": str(victim), "inode": _identity(victim), "old": 0o666, "new": 0o600}])
    run_forked(pki, ["--batch", "gen-crl"])
    assert victim.stat().st_mode & 0o777 == 0o600

def test_hostile_restore_outside_pki(pki_copy):
    pki = pki_copy("v3.2.7-ed25519")
    folder = plant(pki, [{"op": "remove", "path": str(pki.parent / "planted"), "inode": (1, 2), "backup": "1"}])
    (folder / "1").write_text("attacker\n")
    run_forked(pki, ["--batch", "gen-crl"])
    assert not (pki.parent / "planted").exists()

def test_hostile_unlink_outside_pki(pki_copy):
    pki = pki_copy("v3.2.7-ed25519")
    victim = pki.parent / "precious"; victim.write_text("x")
    plant(pki, [{"op": "write", "path": str(victim), "old": None, "new": _identity(victim), "backup": None, "copied": False}])
    run_forked(pki, ["--batch", "gen-crl"])
    assert victim.exists()

def test_hostile_backup_name_escapes(pki_copy):
    pki = pki_copy("v3.2.7-ed25519")
    victim = pki.parent / "precious"; victim.write_text("x")
    plant(pki, [{"op": "remove", "path": "stolen", "inode": (1, 2), "backup": "../../precious"}])
    run_forked(pki, ["--batch", "gen-crl"])
    assert victim.exists()

def test_hostile_symlink_backup_not_restored(pki_copy):
    pki = pki_copy("v3.2.7-ed25519")
    key = pki / "private" / "ca.key"
    folder = plant(pki, [{"op": "write", "path": "private/ca.key", "old": (1, 2, 3, 4), "new": _identity(key), "backup": "1", "copied": False}])
    os.symlink(pki.parent / "attacker.key", folder / "1")
    run_forked(pki, SHOW_CA)
    assert not key.is_symlink()

def test_symlinked_journal_folder_not_followed(pki_copy):
    pki = pki_copy("v3.2.7-ed25519")
    outside = pki.parent / "outside"; outside.mkdir(); (outside / "log").write_text("")
    os.symlink(outside, pki / f"{journal.FOLDER_PREFIX}4000001")
    run_forked(pki, ["--batch", "gen-crl"])
    assert (outside / "log").exists()

# A damaged line before the last stops the undo and keeps the journal.
def test_garbage_line_in_middle_keeps_journal(pki_copy):
    pki = pki_copy("v3.2.7-ed25519")
    assert run_forked(pki, BUILD_ZED, "journal-record:8:kill").returncode == KILLED
    folder = journal_folders(pki)[0]
    lines = (folder / journal.LOG_NAME).read_text().splitlines()
    lines[3] = "garbage"
    (folder / journal.LOG_NAME).write_text("\n".join(lines) + "\n")
    result = run_forked(pki, SHOW_CA)
    assert result.returncode == 1, result.stderr
    assert (folder / journal.LOG_NAME).exists()

# An undo cut short resumes, even where one path was removed and then written again.
@pytest.mark.parametrize("arguments, hit, step", [
    ([*ED25519, "renew", "alice"], 13, 2),
    ([*ED25519, "renew", "alice"], 11, 9),
    ([*ED25519, "init-pki"], 17, 11),
])
def test_killed_undo_resumes_after_rewrite(pki_copy, arguments, hit, step):
    pki = pki_copy("v3.2.7-ed25519")
    before = pki_state(pki)
    assert run_forked(pki, arguments, f"journal-record:{hit}:kill").returncode == KILLED
    assert run_killing_undo_step(pki, SHOW_CA, step) == 0
    resumed = run_forked(pki, SHOW_CA)
    assert resumed.returncode == 0, resumed.stderr
    assert {k: v for k, v in pki_state(pki).items() if not k.endswith(".tmp")} == {k: v for k, v in before.items() if not k.endswith(".tmp")}

# Journal folder names that are not a PID are not journals: they are left alone.
@pytest.mark.parametrize("name", ["99999999999999999999", "\u00b2"])
def test_folder_name_without_pid_ignored(pki_copy, name):
    pki = pki_copy("v3.2.7-ed25519")
    folder = pki / f"{journal.FOLDER_PREFIX}{name}"
    folder.mkdir()
    (folder / journal.LOG_NAME).write_text("{'op': 'bogus'}\n")
    result = run_forked(pki, ["--batch", "gen-crl"])
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert (folder / journal.LOG_NAME).exists()


# crl-status and upload refuse to read a PKI a killed command left half changed.
def test_crl_status_refuses_pending_journal(pki_copy):
    pki = pki_copy("v3.2.7-ed25519")
    assert run_forked(pki, ["--batch", "gen-crl"], "journal-record:1:kill").returncode == KILLED
    before = pki_state(pki)
    result = run_forked(pki, ["--batch", "crl-status"])
    assert result.returncode == 1
    assert pki_state(pki) == before
    assert journal.FOLDER_PREFIX in result.stderr
    assert "undoes or finishes it first" in result.stderr
    shown = run_forked(pki, ["--batch", "display-dn", "x509", str(pki / "ca.crt")])
    assert shown.returncode == 0, shown.stderr
    assert journal.FOLDER_PREFIX in shown.stderr
