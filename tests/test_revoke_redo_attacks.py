"""Attacks on the redo path of a revocation and on the recovery messages.

A revocation prepares index.txt and index.txt.attr, then writes its
remaining renames and moves to a redo file. A kill from then on leaves
them for the next easyrsa_py command to finish, and a kill before it
leaves the whole command to be undone. These tests kill every revoke form
at its fault points. Afterwards all or none of the names must be revoked,
and every file must be where index.txt puts it. No journal or temporary
file may be left, and the CRL must list every certificate that any earlier
CRL listed.
They also kill the run that finishes a redo, tamper with pending redo
files, move the PKI while one is pending, and check the second-word
rules of `revoke NAME WORD`.

By default each form is killed at a sample of its fault hits. Set
EASYRSA_PY_REDO_ATTACKS=1 to kill at every hit of every fault point.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from forked_cli import run_forked
from pkitools import crl_serials, pki_state, read_index, revoked_serials, serial_of
from test_crashes_issuing import count_fault_points, fault_hits

from easyrsa_py import journal

KILLED = -signal.SIGKILL
FIXTURE = "v3.2.7-rsa"
FINISHED = "Finished an interrupted revocation of process"
UNDID = "Undid an interrupted command of process"
ALL_HITS_VARIABLE = "EASYRSA_PY_REDO_ATTACKS"
ALL_HITS = os.environ.get(ALL_HITS_VARIABLE) == "1"
# The points a sample run kills at: the step that starts the redo, each
# rename and each move. The folder flushes between them add no new state.
SAMPLE_POINTS = ("journal-record", "journal-commit", "write-rename-before", "write-rename-after",
                 "move-before", "move-after", "remove-before")
FIVE_NAMES = ["alice", "carol", "server", "francois", "dave"]

# Each revoke form: its arguments, the folder its certificates come from,
# and the names it revokes.
FORMS = {
    "one": (["--batch", "revoke", "alice"], "issued", ["alice"]),
    "two-gen-crl": (["--batch", "revoke", "alice", "carol", "--reason=superseded", "--gen-crl"],
                    "issued", ["alice", "carol"]),
    "five": (["--batch", "revoke", *FIVE_NAMES, "--reason=keyCompromise"], "issued", FIVE_NAMES),
    "issued-reason": (["--batch", "revoke-issued", "server", "kc"], "issued", ["server"]),
    "expired": (["--batch", "revoke-expired", "erin"], "expired", ["erin"]),
    "renewed-gen-crl": (["--batch", "revoke-renewed", "carol", "--gen-crl"], "renewed/issued", ["carol"]),
}


def journal_folders(pki: Path) -> list[Path]:
    return sorted(pki.glob(f"{journal.FOLDER_PREFIX}*"))


def temporary_files(pki: Path) -> list[Path]:
    return [path for path in pki.rglob("*.tmp") if journal._TEMP_FILE.fullmatch(path.name)]


def without_temporary_files(state: dict[str, tuple[int, str | None]]) -> dict[str, tuple[int, str | None]]:
    return {path: value for path, value in state.items() if not path.endswith(".tmp")}


def serials_of(pki: Path, folder: str, names: list[str]) -> dict[str, str]:
    return {name: serial_of(pki / folder / f"{name}.crt") for name in names}


def form_hits(pki: Path, arguments: list[str]) -> list[tuple[str, int]]:
    counts = count_fault_points(pki, arguments)
    counts.pop("lock-created", None)
    return fault_hits(counts, None if ALL_HITS else SAMPLE_POINTS)


def all_cases() -> list[tuple[str, str, int]]:
    """List (form, point, hit) for every form, counting its hits on a scratch copy of the fixture."""
    fixture = Path(__file__).resolve().parent.parent / "pki_fixtures" / FIXTURE / "pki"
    cases: list[tuple[str, str, int]] = []
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"redo-attack-count-{os.getpid()}"
    try:
        for form, (arguments, _, _) in FORMS.items():
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.copytree(fixture, scratch, symlinks=True)
            for folder in ("revoked/certs_by_serial", "revoked/private_by_serial", "revoked/reqs_by_serial"):
                (scratch / folder).mkdir(parents=True, exist_ok=True)
            cases.extend((form, point, hit) for point, hit in form_hits(scratch, arguments))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return cases


def openssl_verify(pki: Path, certificate: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "verify", "-crl_check", "-CAfile", str(pki / "ca.crt"), "-CRLfile", str(pki / "crl.pem"),
         str(certificate)],
        capture_output=True, text=True, timeout=60, check=False,
    )


def check_revoked_in_place(pki: Path, folder: str, serials: dict[str, str]) -> None:
    """Check that each certificate is revoked in index.txt and filed under its serial, and nothing is left."""
    revoked = revoked_serials(pki)
    for name, serial in serials.items():
        assert int(serial, 16) in revoked, f"{name} is not revoked in index.txt"
        assert (pki / "revoked" / "certs_by_serial" / f"{serial}.crt").is_file(), f"{name}'s certificate not moved"
        assert not (pki / folder / f"{name}.crt").exists(), f"{name}'s certificate left in {folder}"
        if folder == "issued":
            assert not (pki / "private" / f"{name}.key").exists(), f"{name}'s key left in private/"
            assert (pki / "revoked" / "private_by_serial" / f"{serial}.key").is_file(), f"{name}'s key not moved"


def check_clean(pki: Path) -> None:
    assert journal_folders(pki) == []
    assert temporary_files(pki) == []
    assert not (pki / "lock.file").exists()


def check_crl_agrees(pki: Path, serials: dict[str, str], crl_seen: set[int]) -> None:
    """Write a CRL with easyrsa_py and check it against index.txt, earlier CRLs and openssl verify."""
    result = run_forked(pki, ["--batch", "gen-crl"])
    assert result.returncode == 0, result.stderr
    listed = crl_serials(pki)
    assert crl_seen <= listed, "a certificate an earlier CRL listed is missing from the new one"
    assert listed == revoked_serials(pki)
    serial = next(iter(serials.values()))
    verified = openssl_verify(pki, pki / "revoked" / "certs_by_serial" / f"{serial}.crt")
    assert verified.returncode != 0
    assert "certificate revoked" in verified.stdout + verified.stderr
    if "francois" not in serials:
        assert openssl_verify(pki, pki / "issued" / "francois.crt").returncode == 0


# --- every revoke form killed at its fault points ----------------------------------


@pytest.mark.parametrize(("form", "point", "hit"), all_cases())
def test_killed_revocation_recovers(pki_copy, form: str, point: str, hit: int) -> None:
    arguments, folder, names = FORMS[form]
    pki = pki_copy(FIXTURE)
    serials = serials_of(pki, folder, names)
    before = without_temporary_files(pki_state(pki))
    crl_seen = crl_serials(pki)

    killed = run_forked(pki, arguments, f"{point}:{hit}:kill")
    assert killed.returncode == KILLED, killed.stderr
    crl_seen |= crl_serials(pki)
    recovery = run_forked(pki, ["--batch", "show-revoke"])

    assert recovery.returncode == 0, recovery.stderr
    check_clean(pki)
    if int(next(iter(serials.values())), 16) in revoked_serials(pki):
        check_revoked_in_place(pki, folder, serials)
    else:
        assert UNDID in recovery.stderr
        assert without_temporary_files(pki_state(pki)) == before
    check_crl_agrees(pki, serials, crl_seen)


@pytest.mark.parametrize("form", ["one", "five", "renewed-gen-crl"])
@pytest.mark.parametrize("point", ["journal-commit", "move-before"])
def test_script_on_half_revocation(pki_copy, reference_for, form: str, point: str) -> None:
    arguments, folder, names = FORMS[form]
    pki = pki_copy(FIXTURE)
    serials = serials_of(pki, folder, names)
    hit = 1 if point == "journal-commit" or folder != "issued" else 2
    killed = run_forked(pki, arguments, f"{point}:{hit}:kill")
    assert killed.returncode == KILLED, killed.stderr
    half = pki_state(pki)
    script = reference_for("3.2.7")

    stopped = script.run(pki, "--batch", "gen-crl", check=False)
    assert stopped.returncode == 17
    assert pki_state(pki) == half

    # The operator deletes the stale lock and publishes a CRL with easy-rsa.
    (pki / "lock.file").unlink()
    published = script.run(pki, "--batch", "gen-crl", check=False)
    assert published.returncode == 0, published.stdout
    crl_seen = crl_serials(pki)
    recovery = run_forked(pki, ["--batch", "show-revoke"])

    assert recovery.returncode == 0, recovery.stderr
    assert FINISHED in recovery.stderr
    check_clean(pki)
    check_revoked_in_place(pki, folder, serials)
    check_crl_agrees(pki, serials, crl_seen)


# --- the run that finishes a redo, killed too -------------------------------------------


def pending_redo(pki: Path, arguments: list[str] | None = None) -> Path:
    """Kill a revocation just after its redo file is written and return its journal folder."""
    killed = run_forked(pki, arguments or FORMS["five"][0], "journal-commit:1:kill")
    assert killed.returncode == KILLED, killed.stderr
    (folder,) = journal_folders(pki)
    assert (folder / journal.REDO_NAME).is_file()
    return folder


@pytest.mark.parametrize(
    "fault", ["move-before:1", "move-before:7", "move-after:15", "remove-before:3", "dir-fsync-before:20"]
)
def test_killed_finish_resumes(pki_copy, fault: str) -> None:
    pki = pki_copy(FIXTURE)
    serials = serials_of(pki, "issued", FIVE_NAMES)
    pending_redo(pki)

    second = run_forked(pki, ["--batch", "show-revoke"], f"{fault}:kill")
    assert second.returncode == KILLED, second.stderr
    third = run_forked(pki, ["--batch", "show-revoke"])

    assert third.returncode == 0, third.stderr
    assert FINISHED in third.stderr
    check_clean(pki)
    check_revoked_in_place(pki, "issued", serials)


def test_two_kills_then_finish(pki_copy) -> None:
    pki = pki_copy(FIXTURE)
    serials = serials_of(pki, "issued", FIVE_NAMES)
    pending_redo(pki)

    for fault in ("move-before:2:kill", "move-before:3:kill"):
        killed = run_forked(pki, ["--batch", "gen-crl"], fault)
        assert killed.returncode == KILLED, killed.stderr
    last = run_forked(pki, ["--batch", "gen-crl"])

    assert last.returncode == 0, last.stderr
    check_clean(pki)
    check_revoked_in_place(pki, "issued", serials)
    assert {int(serial, 16) for serial in serials.values()} <= crl_serials(pki)


def test_finish_after_all_steps_done(pki_copy) -> None:
    pki = pki_copy(FIXTURE)
    serials = serials_of(pki, "issued", ["alice"])
    # The certificate move is the last step, so a kill after it leaves only the redo file.
    killed = run_forked(pki, ["--batch", "revoke", "alice"], "move-after:3:kill")
    assert killed.returncode == KILLED, killed.stderr

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 0, result.stderr
    assert "its changes were all made already" in result.stderr
    check_clean(pki)
    check_revoked_in_place(pki, "issued", serials)


# --- redo steps whose files changed by hand ------------------------------------------


def test_redo_source_deleted_by_hand(pki_copy) -> None:
    pki = pki_copy(FIXTURE)
    serial = serial_of(pki / "issued" / "alice.crt")
    pending_redo(pki, ["--batch", "revoke", "alice"])
    (pki / "reqs" / "alice.req").unlink()

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 0, result.stderr
    assert FINISHED in result.stderr
    assert "alice.req" not in result.stderr
    check_clean(pki)
    assert int(serial, 16) in revoked_serials(pki)
    assert (pki / "revoked" / "certs_by_serial" / f"{serial}.crt").is_file()
    assert not (pki / "revoked" / "reqs_by_serial" / f"{serial}.req").exists()


def test_redo_target_with_other_content_drops_unapplied_revocation(pki_copy) -> None:
    # Killed before index.txt was renamed: the revocation never took effect,
    # so a file changed since makes the next run drop it, saying so.
    pki = pki_copy(FIXTURE)
    serial = serial_of(pki / "issued" / "alice.crt")
    pending_redo(pki, ["--batch", "revoke", "alice"])
    other = pki / "revoked" / "private_by_serial" / f"{serial}.key"
    other.write_bytes(b"an operator's own file\n")
    key = (pki / "private" / "alice.key").read_bytes()

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 0, result.stderr
    assert "Dropped an interrupted revocation of process" in result.stderr
    assert f"revoked/private_by_serial/{serial}.key has changed since" in result.stderr
    assert other.read_bytes() == b"an operator's own file\n"
    assert (pki / "private" / "alice.key").read_bytes() == key
    assert int(serial, 16) not in revoked_serials(pki)
    check_clean(pki)


def test_redo_target_with_other_content_stops_applied_revocation(pki_copy) -> None:
    # Killed after index.txt was renamed: the revocation is kept, and a file
    # changed since stops the finish without moving anything.
    pki = pki_copy(FIXTURE)
    serial = serial_of(pki / "issued" / "alice.crt")
    killed = run_forked(pki, ["--batch", "revoke", "alice"], "move-before:1:kill")
    assert killed.returncode == KILLED, killed.stderr
    other = pki / "revoked" / "private_by_serial" / f"{serial}.key"
    other.write_bytes(b"an operator's own file\n")
    key = (pki / "private" / "alice.key").read_bytes()
    # The stale lock is taken over and released; nothing else may change.
    (pki / "lock.file").unlink()
    before = pki_state(pki)

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 1
    assert pki_state(pki) == before
    assert "cannot be finished, because these files changed" in result.stderr
    assert str(other) in result.stderr
    assert other.read_bytes() == b"an operator's own file\n"
    assert (pki / "private" / "alice.key").read_bytes() == key
    assert int(serial, 16) in revoked_serials(pki)
    assert len(journal_folders(pki)) == 1


# --- a PKI moved or copied while a redo is pending ------------------------------------


def test_redo_finished_after_move(pki_copy, tmp_path: Path) -> None:
    pki = pki_copy(FIXTURE)
    serials = serials_of(pki, "issued", FIVE_NAMES)
    pending_redo(pki)
    moved = tmp_path / "elsewhere" / "pki"
    moved.parent.mkdir()
    os.rename(pki, moved)

    result = run_forked(moved, ["--batch", "show-revoke"])

    assert result.returncode == 0, result.stderr
    assert FINISHED in result.stderr
    assert str(moved) in result.stderr
    check_clean(moved)
    check_revoked_in_place(moved, "issued", serials)


def test_redo_in_copy_dropped_in_original_finished(pki_copy, tmp_path: Path) -> None:
    pki = pki_copy(FIXTURE)
    serials = serials_of(pki, "issued", ["alice"])
    pending_redo(pki, ["--batch", "revoke", "alice"])
    copy = tmp_path / "copy" / "pki"
    copy.parent.mkdir()
    subprocess.run(["cp", "-a", str(pki), str(copy)], check=True, timeout=60)

    # The copy's files have new inodes, so its revocation, not yet applied, is dropped.
    copied = run_forked(copy, ["--batch", "show-revoke"])
    assert copied.returncode == 0, copied.stderr
    assert "Dropped an interrupted revocation of process" in copied.stderr
    check_clean(copy)

    result = run_forked(pki, ["--batch", "show-revoke"])
    assert result.returncode == 0, result.stderr
    assert FINISHED in result.stderr
    check_clean(pki)
    check_revoked_in_place(pki, "issued", serials)


# --- hostile redo files ------------------------------------------------------------------


def planted_redo(pki: Path, text: str | bytes) -> Path:
    folder = pki / f"{journal.FOLDER_PREFIX}999999999"
    folder.mkdir(mode=0o700)
    redo = folder / journal.REDO_NAME
    if isinstance(text, bytes):
        redo.write_bytes(text)
    else:
        redo.write_text(text)
    return folder


HOSTILE_LINES = {
    "parent": repr({"op": "move", "source": "issued/alice.crt", "target": "../stolen.crt"}),
    "absolute": repr({"op": "remove", "path": "/etc/hostname"}),
    "dot-dot-inside": repr({"op": "replace", "source": "issued/../../x", "target": "index.txt"}),
    "unknown-op": repr({"op": "chmod", "path": "index.txt", "inode": (1, 2), "old": 0o600, "new": 0o777}),
    "extra-field": repr({"op": "remove", "path": "issued/alice.crt", "also": 1}),
    "code": "__import__('os').system('touch /tmp/owned')",
    "nul": repr({"op": "remove", "path": "issued/alice.crt\0x"}),
}


@pytest.mark.parametrize("line", list(HOSTILE_LINES))
def test_hostile_redo_line_rejected(pki_copy, tmp_path: Path, line: str) -> None:
    pki = pki_copy(FIXTURE)
    # A valid step after the hostile one, so the hostile line is never the last.
    folder = planted_redo(pki, HOSTILE_LINES[line] + "\n" + repr({"op": "remove", "path": "issued/alice.crt"}) + "\n")
    before = pki_state(pki)

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 1
    assert f"The record of an interrupted command, {folder / 'redo'}, is damaged at line 1" in result.stderr
    assert f"delete {folder}" in result.stderr
    assert pki_state(pki) == before
    assert not (pki.parent / "stolen.crt").exists()


def test_huge_redo_rejected(pki_copy) -> None:
    pki = pki_copy(FIXTURE)
    line = repr({"op": "remove", "path": "inline/none"}) + "\n"
    folder = planted_redo(pki, line * (64 * 1024 * 1024 // len(line) + 2))
    before = pki_state(pki)

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 1
    assert f"{folder / 'redo'}, is damaged at line 1: it is larger than" in result.stderr
    assert pki_state(pki) == before


def test_redo_link_as_folder_rejected(pki_copy, tmp_path: Path) -> None:
    pki = pki_copy(FIXTURE)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / journal.REDO_NAME).write_text(repr({"op": "remove", "path": "issued/alice.crt"}) + "\n")
    os.symlink(outside, pki / f"{journal.FOLDER_PREFIX}999999999")

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 1
    assert "is not a folder easyrsa-py made for an interrupted command" in result.stderr
    assert (pki / "issued" / "alice.crt").is_file()
    assert (outside / journal.REDO_NAME).is_file()


# --- the temporary-file sweep ----------------------------------------------------------


def test_sweep_stays_inside_pki(pki_copy, tmp_path: Path) -> None:
    pki = pki_copy(FIXTURE)
    outside = tmp_path / "outside"
    outside.mkdir()
    far = outside / ".notes.0123456789ab.tmp"
    far.write_text("not easyrsa_py's\n")
    os.symlink(outside, pki / "linked")
    os.symlink(far, pki / ".linked.0123456789ab.tmp")
    near = pki / "user-notes.txt"
    near.write_text("keep\n")
    pending_redo(pki, ["--batch", "revoke", "alice"])

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 0, result.stderr
    assert far.read_text() == "not easyrsa_py's\n"
    assert near.read_text() == "keep\n"
    assert (pki / "linked").is_symlink()


def test_no_sweep_without_recovery(pki_copy) -> None:
    pki = pki_copy(FIXTURE)
    leftover = pki / ".index.txt.0123456789ab.tmp"
    leftover.write_text("a temporary file of a run still going\n")

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 0, result.stderr
    assert leftover.exists()


# --- commands while a redo is pending ----------------------------------------------------


@pytest.mark.parametrize("command", ["crl-status", "upload"])
def test_publishing_refused_while_pending(pki_copy, command: str) -> None:
    pki = pki_copy(FIXTURE)
    folder = pending_redo(pki, ["--batch", "revoke", "alice"])
    before = pki_state(pki)

    result = run_forked(pki, ["--batch", command])

    assert result.returncode == 1
    assert f"A killed command left the PKI half changed ({folder})" in result.stderr
    assert f"Run one, then run '{command}' again." in result.stderr
    assert pki_state(pki) == before


def test_display_dn_warns_while_pending(pki_copy) -> None:
    pki = pki_copy(FIXTURE)
    pending_redo(pki, ["--batch", "revoke", "alice"])
    before = pki_state(pki)

    result = run_forked(pki, ["--batch", "display-dn", "x509", str(pki / "issued" / "carol.crt")])

    assert result.returncode == 0, result.stderr
    assert "A killed command left the PKI half changed" in result.stderr
    assert pki_state(pki) == before


# --- the recovery messages ------------------------------------------------------------------


def test_finish_message_survives_silent(pki_copy) -> None:
    pki = pki_copy(FIXTURE)
    pending_redo(pki)

    result = run_forked(pki, ["--batch", "--silent", "show-revoke"])

    assert result.returncode == 0, result.stderr
    assert FINISHED in result.stderr
    # Two writes (the .old backups go unnamed), fifteen moves and five removals:
    # eight named, the rest counted.
    assert ", and 14 more." in result.stderr
    assert journal.FOLDER_PREFIX not in result.stderr
    assert ".tmp" not in result.stderr


def test_failed_gen_crl_keeps_revocation(pki_copy) -> None:
    pki = pki_copy(FIXTURE)
    serial = serial_of(pki / "issued" / "alice.crt")
    old_crl = (pki / "crl.pem").read_bytes()
    (pki / "crl.der").unlink()
    (pki / "crl.der").mkdir()

    result = run_forked(pki, ["--batch", "revoke", "alice", "--gen-crl"])

    assert result.returncode == 1
    assert "Revoked alice, but writing the CRL failed" in result.stderr
    assert f"Cannot write {pki / 'crl.der'}: it is not a regular file" in result.stderr
    assert "Run 'gen-crl' once the problem is fixed." in result.stderr
    assert (pki / "crl.pem").read_bytes() == old_crl
    assert int(serial, 16) in revoked_serials(pki)
    check_revoked_in_place(pki, "issued", {"alice": serial})
    assert journal_folders(pki) == []


# --- the second word of `revoke NAME WORD` --------------------------------------------------


def add_certificate(pki: Path, folder: str, name: str) -> None:
    (pki / folder / f"{name}.crt").write_bytes((pki / "issued" / "server.crt").read_bytes())


@pytest.mark.parametrize(("word", "folder"), [("ca", "issued"), ("keys", "expired"), ("superb", "renewed/issued"),
                                              ("certs", "issued"), ("unsure", "expired")])
def test_certificate_named_like_reason_stops(pki_copy, word: str, folder: str) -> None:
    pki = pki_copy(FIXTURE)
    add_certificate(pki, folder, word)
    before = pki_state(pki)

    result = run_forked(pki, ["--batch", "revoke", "alice", word])

    assert result.returncode == 1
    assert f"'{word}' is the name of a certificate" in result.stderr
    assert f"'revoke alice {word} --reason=unspecified'" in result.stderr
    assert pki_state(pki) == before


@pytest.mark.parametrize(("word", "reason"), [("us", "unspecified"), ("kc", "keyCompromise"),
                                               ("superseded", "superseded")])
def test_spelled_out_reason_wins_over_name(pki_copy, word: str, reason: str) -> None:
    pki = pki_copy(FIXTURE)
    add_certificate(pki, "expired", word)

    result = run_forked(pki, ["--batch", "revoke", "alice", word])

    assert result.returncode == 0, result.stderr
    row = next(row for row in read_index(pki) if row[5] == "/CN=alice")
    assert row[2].endswith(f",{reason}")
    assert (pki / "expired" / f"{word}.crt").is_file()


def test_reason_option_with_one_name(pki_copy) -> None:
    pki = pki_copy(FIXTURE)

    result = run_forked(pki, ["--batch", "revoke", "alice", "--reason=cessationOfOperation"])

    assert result.returncode == 0, result.stderr
    row = next(row for row in read_index(pki) if row[5] == "/CN=alice")
    assert row[2].endswith(",cessationOfOperation")


def test_name_starting_with_dash(pki_copy) -> None:
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_forked(pki, ["--batch", "revoke", "-alice"])

    assert result.returncode == 1
    assert f"no certificate at {pki / 'issued' / '-alice.crt'}" in result.stderr
    assert "Options go before the command" in result.stderr
    assert pki_state(pki) == before


def test_reason_word_in_expired_revocation(pki_copy) -> None:
    pki = pki_copy(FIXTURE)
    add_certificate(pki, "issued", "caroline")
    before = pki_state(pki)

    result = run_forked(pki, ["--batch", "revoke-expired", "erin", "caroline"])

    assert result.returncode == 1
    assert "'revoke-expired erin caroline --reason=unspecified'" in result.stderr
    assert pki_state(pki) == before

# --- defects these attacks found, fixed ----------------------------------------------
# A redo step is taken only while its files are the ones recorded, so
# nothing easy-rsa did after an operator deleted the lock is lost.


def script_run(reference, pki: Path, *arguments: str) -> None:
    result = reference.run(pki, "--batch", *arguments, check=False)
    assert result.returncode == 0, result.stdout


def test_unapplied_revocation_keeps_script_work(pki_copy, reference_for):
    pki = pki_copy(FIXTURE)
    alice = int(serial_of(pki / "issued" / "alice.crt"), 16)
    server = int(serial_of(pki / "issued" / "server.crt"), 16)
    killed = run_forked(pki, ["--batch", "revoke", "alice"], "journal-commit:1:kill")
    assert killed.returncode == KILLED
    (pki / "lock.file").unlink()
    reference = reference_for("3.2.7")
    script_run(reference, pki, "revoke", "server")
    script_run(reference, pki, "gen-crl")
    script_run(reference, pki, "build-client-full", "zed", "nopass")

    result = run_forked(pki, ["--batch", "gen-crl"])

    assert result.returncode == 0, result.stderr
    assert "Dropped an interrupted revocation of process" in result.stderr
    assert server in revoked_serials(pki)
    assert server in crl_serials(pki)
    assert alice not in revoked_serials(pki)
    assert any(row[5] == "/CN=zed" for row in read_index(pki))
    check_clean(pki)


def test_failed_rename_then_script_keeps_script_work(pki_copy, reference_for):
    pki = pki_copy(FIXTURE)
    server = int(serial_of(pki / "issued" / "server.crt"), 16)
    failed = run_forked(pki, ["--batch", "revoke", "alice"], "write-rename-before:1:enospc")
    assert failed.returncode == 1
    assert "could not be completed" in failed.stderr
    reference = reference_for("3.2.7")
    script_run(reference, pki, "revoke", "server")
    script_run(reference, pki, "gen-crl")

    result = run_forked(pki, ["--batch", "gen-crl"])

    assert result.returncode == 0, result.stderr
    assert server in revoked_serials(pki)
    assert server in crl_serials(pki)


def test_certificate_replaced_by_hand_not_moved(pki_copy):
    pki = pki_copy(FIXTURE)
    killed = run_forked(pki, ["--batch", "revoke", "alice"], "move-before:2:kill")
    assert killed.returncode == KILLED
    replacement = (pki / "issued" / "carol.crt").read_bytes()
    (pki / "issued" / "alice.crt").write_bytes(replacement)

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 1
    assert "cannot be finished, because these files changed" in result.stderr
    assert (pki / "issued" / "alice.crt").read_bytes() == replacement


def test_script_renewal_kept(pki_copy, reference_for):
    pki = pki_copy(FIXTURE)
    killed = run_forked(pki, ["--batch", "revoke", "alice"], "journal-commit:1:kill")
    assert killed.returncode == KILLED
    (pki / "lock.file").unlink()
    script_run(reference_for("3.2.7"), pki, "renew", "alice")
    renewed = (pki / "issued" / "alice.crt").read_bytes()

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 0, result.stderr
    assert (pki / "issued" / "alice.crt").read_bytes() == renewed
    assert (pki / "private" / "alice.key").exists()


def test_script_revoke_and_rebuild_on_half_state_kept(pki_copy, reference_for):
    pki = pki_copy(FIXTURE)
    killed = run_forked(pki, ["--batch", "revoke", "alice"], "journal-commit:1:kill")
    assert killed.returncode == KILLED
    (pki / "lock.file").unlink()
    reference = reference_for("3.2.7")
    script_run(reference, pki, "revoke", "alice")
    script_run(reference, pki, "build-client-full", "alice", "nopass")
    new = int(serial_of(pki / "issued" / "alice.crt"), 16)

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 0, result.stderr
    assert new in {int(row[3], 16) for row in read_index(pki)}
    assert (pki / "issued" / "alice.crt").exists()


def test_index_linked_outside_pki_revokes(pki_copy, tmp_path):
    pki = pki_copy(FIXTURE)
    outside = tmp_path / "shared"
    outside.mkdir()
    os.rename(pki / "index.txt", outside / "index.txt")
    os.symlink(outside / "index.txt", pki / "index.txt")

    result = run_forked(pki, ["--batch", "revoke", "alice"])

    assert result.returncode == 0, result.stderr
    assert (pki / "index.txt").is_symlink()
    assert int(serial_of(pki / "revoked" / "certs_by_serial" / next(
        path.name for path in (pki / "revoked" / "certs_by_serial").iterdir())), 16) in revoked_serials(pki)


def planted(pki: Path, *entries: dict) -> Path:
    folder = pki / f"{journal.FOLDER_PREFIX}999999999"
    folder.mkdir(mode=0o700)
    (folder / journal.REDO_NAME).write_text("".join(repr(entry) + "\n" for entry in entries))
    return folder


def test_planted_redo_through_link_rejected(pki_copy, tmp_path):
    pki = pki_copy(FIXTURE)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("keep me")
    os.symlink(outside, pki / "inline" / "link")
    victim = outside / "victim"
    planted(pki, {"op": "remove", "source": "inline/link/victim", "source_id": tuple(
        getattr(os.lstat(victim), name) for name in ("st_dev", "st_ino", "st_size", "st_mtime_ns"))})

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 1
    assert "outside the PKI" in result.stderr
    assert victim.read_text() == "keep me"


def test_planted_redo_replace_rejected(pki_copy):
    pki = pki_copy(FIXTURE)
    planted(
        pki,
        {"op": "replace", "source": "private/alice.key", "source_id": None, "target": "index.txt", "target_id": None},
    )
    before = pki_state(pki)

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 1
    assert "is not a temporary file beside index.txt" in result.stderr
    assert (pki / "private" / "ca.key").exists()
    assert pki_state(pki) == before


def test_planted_redo_removal_with_wrong_identity_stops(pki_copy):
    pki = pki_copy(FIXTURE)
    planted(pki, {"op": "remove", "source": "private/ca.key", "source_id": (1, 2, 3, 4)})

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert (pki / "private" / "ca.key").exists()
    assert "private/ca.key" in result.stderr


def test_redo_truncated_last_line_is_damaged(pki_copy):
    pki = pki_copy(FIXTURE)
    killed = run_forked(pki, ["--batch", "revoke", "alice"], "journal-commit:1:kill")
    assert killed.returncode == KILLED
    folder = next(pki.glob(f"{journal.FOLDER_PREFIX}*"))
    data = (folder / journal.REDO_NAME).read_text()
    (folder / journal.REDO_NAME).write_text(data[:-20])

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 1
    assert "is damaged at line" in result.stderr
    assert (pki / "issued" / "alice.crt").exists()
