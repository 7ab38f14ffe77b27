"""A revocation is finished, never undone, once index.txt records it.

A CRL written from that index.txt, by either tool, may already list the
certificate. Undoing the revocation would then take the certificate out of
the next CRL and let it back in. So a revocation that fails or is killed
after its index.txt write leaves a redo file, and the next easyrsa_py
command finishes the moves. A failure before that write changes nothing.
Also here: a second word that easy-rsa reads as a reason while a
certificate has that name, and a damaged undo record.
"""

from __future__ import annotations

import errno
import signal
from pathlib import Path

from forked_cli import run_forked
from pkitools import crl_serials, pki_state, read_index, revoked_serials, serial_of

from easyrsa_py import journal
from easyrsa_py.files import describe_os_error

KILLED = -signal.SIGKILL
FIXTURE = "v3.2.7-rsa"
FINISHED = "Finished an interrupted revocation of process"
TOOK_OVER = "Took over the stale lock file"


def journal_folders(pki: Path) -> list[Path]:
    return sorted(pki.glob(f"{journal.FOLDER_PREFIX}*"))


def test_killed_revocation_finished_after_reference_crl(pki_copy, reference_for):
    pki = pki_copy(FIXTURE)
    serial = serial_of(pki / "issued" / "alice.crt")
    # The second move comes after index.txt is written.
    killed = run_forked(pki, ["--batch", "revoke", "alice"], "move-before:2:kill")
    assert killed.returncode == KILLED, killed.stderr
    assert int(serial, 16) in revoked_serials(pki)
    assert (pki / "issued" / "alice.crt").exists()

    # The operator deletes the stale lock and publishes a CRL with easy-rsa.
    (pki / "lock.file").unlink()
    script = reference_for("3.2.7").run(pki, "--batch", "gen-crl", check=False)
    assert script.returncode == 0, script.stdout
    assert int(serial, 16) in crl_serials(pki)

    result = run_forked(pki, ["--batch", "gen-crl"])

    assert result.returncode == 0, result.stderr
    assert FINISHED in result.stderr
    assert int(serial, 16) in revoked_serials(pki)
    assert int(serial, 16) in crl_serials(pki)
    assert not (pki / "issued" / "alice.crt").exists()
    assert (pki / "revoked" / "certs_by_serial" / f"{serial}.crt").is_file()
    assert journal_folders(pki) == []


def test_killed_revocation_finished_with_stale_lock(pki_copy, reference_for):
    pki = pki_copy(FIXTURE)
    serial = serial_of(pki / "issued" / "alice.crt")
    killed = run_forked(pki, ["--batch", "revoke", "alice"], "move-before:3:kill")
    assert killed.returncode == KILLED, killed.stderr
    unchanged = pki_state(pki)

    script = reference_for("3.2.7").run(pki, "--batch", "gen-crl", check=False)
    assert script.returncode == 17
    assert pki_state(pki) == unchanged

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 0, result.stderr
    assert TOOK_OVER in result.stderr
    assert FINISHED in result.stderr
    assert (pki / "revoked" / "certs_by_serial" / f"{serial}.crt").is_file()
    assert not (pki / "private" / "alice.key").exists()
    assert not (pki / "lock.file").exists()


def test_failed_move_leaves_revocation_to_finish(pki_copy):
    pki = pki_copy(FIXTURE)
    serial = serial_of(pki / "issued" / "alice.crt")

    result = run_forked(pki, ["--batch", "revoke", "alice"], "move-before:2:enospc")

    assert result.returncode == 1
    assert "The revocation is under way but could not be completed" in result.stderr
    assert "the next easyrsa-py command finishes it" in result.stderr
    assert int(serial, 16) in revoked_serials(pki)
    assert len(journal_folders(pki)) == 1

    again = run_forked(pki, ["--batch", "gen-crl"])

    assert again.returncode == 0, again.stderr
    assert FINISHED in again.stderr
    assert (pki / "revoked" / "certs_by_serial" / f"{serial}.crt").is_file()
    assert int(serial, 16) in crl_serials(pki)
    assert journal_folders(pki) == []


def test_failed_index_write_changes_nothing(pki_copy):
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_forked(pki, ["--batch", "revoke", "alice"], "write-temp-before:1:enospc")

    assert result.returncode == 1
    assert "Revocation failed, and nothing was changed" in result.stderr
    assert "No space left on the device" in result.stderr
    assert pki_state(pki) == before


def test_killed_crl_after_revocation_keeps_revocation(pki_copy):
    pki = pki_copy(FIXTURE)
    serial = serial_of(pki / "issued" / "alice.crt")
    old_crl = (pki / "crl.pem").read_bytes()
    # The revocation writes index.txt and index.txt.attr with their backups
    # (four temporary files); the fifth is the CRL's.
    killed = run_forked(pki, ["--batch", "revoke", "alice", "--gen-crl"], "write-rename-before:5:kill")
    assert killed.returncode == KILLED, killed.stderr
    assert (pki / "revoked" / "certs_by_serial" / f"{serial}.crt").is_file()

    result = run_forked(pki, ["--batch", "show-revoke"])

    assert result.returncode == 0, result.stderr
    assert "Undid an interrupted command" in result.stderr
    assert (pki / "crl.pem").read_bytes() == old_crl
    assert int(serial, 16) in revoked_serials(pki)
    assert (pki / "revoked" / "certs_by_serial" / f"{serial}.crt").is_file()


# --- a certificate name that easy-rsa would read as a reason ------------------------


def test_name_read_as_reason_rejected(pki_copy):
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_forked(pki, ["--batch", "revoke", "alice", "carol"])

    assert result.returncode == 1
    assert "'carol' is the name of a certificate" in result.stderr
    assert "CACompromise" in result.stderr
    assert pki_state(pki) == before


def test_reason_prefix_without_such_certificate(pki_copy):
    pki = pki_copy(FIXTURE)

    result = run_forked(pki, ["--batch", "revoke", "alice", "cacomp"])

    assert result.returncode == 0, result.stderr
    rows = [row for row in read_index(pki) if row[5] == "/CN=alice"]
    assert rows[0][2].endswith(",CACompromise")


def test_spelled_out_reason_beside_certificate_name(pki_copy):
    pki = pki_copy(FIXTURE)
    # A certificate may be named like a reason code; the code still wins, as in easy-rsa.
    (pki / "issued" / "kc.crt").write_bytes((pki / "issued" / "carol.crt").read_bytes())

    result = run_forked(pki, ["--batch", "revoke", "alice", "kc"])

    assert result.returncode == 0, result.stderr
    rows = [row for row in read_index(pki) if row[5] == "/CN=alice"]
    assert rows[0][2].endswith(",keyCompromise")


def test_two_names_with_reason_option(pki_copy):
    pki = pki_copy(FIXTURE)

    result = run_forked(pki, ["--batch", "revoke", "alice", "carol", "--reason=superseded"])

    assert result.returncode == 0, result.stderr
    revoked = {row[5] for row in read_index(pki) if row[0] == "R"}
    assert {"/CN=alice", "/CN=carol"} <= revoked


# --- damaged undo records ------------------------------------------------------------


def planted_journal(pki: Path, log: str) -> Path:
    """Plant the journal of a process that no longer runs, with `log` as its log."""
    folder = pki / f"{journal.FOLDER_PREFIX}999999999"
    folder.mkdir(mode=0o700)
    (folder / journal.LOG_NAME).write_text(log)
    return folder


DAMAGED_LOGS = {
    "a garbage line before the last": "garbage\n{'op': 'mkdir', 'path': 'x'}\n",
    "a path outside the PKI": "{'op': 'mkdir', 'path': '../outside'}\n",
    "an absolute path": "{'op': 'mkdir', 'path': '/tmp'}\n",
    "an unknown change": "{'op': 'format-disk', 'path': 'x'}\n",
    "a missing field": "{'op': 'rmdir', 'path': 'x'}\n",
    "a backup name with a separator": (
        "{'op': 'remove', 'path': 'ca.crt', 'inode': (1, 2), 'backup': '../../ca.crt'}\n"
    ),
}


def test_damaged_undo_records_rejected(pki_copy):
    for problem, log in DAMAGED_LOGS.items():
        pki = pki_copy(FIXTURE)
        folder = planted_journal(pki, log)
        before = pki_state(pki)

        result = run_forked(pki, ["--batch", "gen-crl"])

        assert result.returncode == 1, problem
        assert f"{folder / journal.LOG_NAME}, is damaged at line" in result.stderr, problem
        assert "Traceback" not in result.stderr, problem
        assert pki_state(pki) == before, problem
        assert not (pki.parent / "outside").exists(), problem


def test_cut_last_line_is_dropped(pki_copy):
    pki = pki_copy(FIXTURE)
    # A kill while appending leaves the last line cut short; that change was never made.
    planted_journal(pki, "{'op': 'mkdir', 'path': 'newfolder'}\n{'op': 'mkd")
    (pki / "newfolder").mkdir()

    result = run_forked(pki, ["--batch", "gen-crl"])

    assert result.returncode == 0, result.stderr
    assert "Undid an interrupted command" in result.stderr
    assert not (pki / "newfolder").exists()
    assert journal_folders(pki) == []


# --- messages ------------------------------------------------------------------------------


def test_takeover_shown_under_silent(pki_copy):
    pki = pki_copy(FIXTURE)
    killed = run_forked(pki, ["--batch", "gen-crl"], "write-rename-before:1:kill")
    assert killed.returncode == KILLED

    result = run_forked(pki, ["--batch", "--silent", "gen-crl"])

    assert result.returncode == 0, result.stderr
    assert TOOK_OVER in result.stderr
    assert "Undid an interrupted command" in result.stderr


def test_read_only_file_system_message():
    error = OSError(errno.EROFS, "Read-only file system", "/pki/issued/zed.crt")
    message = describe_os_error(error)
    assert "/pki/issued/zed.crt" in message
    assert "read-only" in message
    assert "work on a copy" in message
