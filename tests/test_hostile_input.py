"""Hostile input: PKI files, names, passphrases, locks and environments built
to break revoke and gen-crl.

Every failing case must end with exit code 1 (17 for a held lock) and a
message that names the file or value, without a Python traceback. It must
also leave every file and mode of the PKI as it was. The cases that pass pin behaviour
worth keeping: shell code in vars never runs, passphrases never reach the
output, and concurrent runs lose no row.

Permission cases drop root's permission override with setpriv, because root
reads and writes files whatever their mode. Resource cases use prlimit:
RLIMIT_FSIZE makes every write fail as a full disk would, and RLIMIT_AS keeps
a runaway read from exhausting the machine's memory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pkitools import (
    pki_state,
    product_command,
    product_env,
    read_index,
    run_product,
    serial_of,
)
from reference import tree_snapshot

FIXTURE = "v3.2.7-rsa"
EC_FIXTURE = "v3.2.2-ec"
EC_PASSPHRASE = "fixture-ec-ca-pass"
ALICE_SERIAL = "7C0895ABACCC34C8C33A3BF77B85058C"
# 2 GB of address space: a normal run fits in it, and an unbounded read fails
# fast instead of exhausting the machine.
MEMORY_LIMIT = ("prlimit", "--as=2000000000")
NO_FILE_WRITES = ("prlimit", "--fsize=0")


def without_root_override() -> tuple[str, ...]:
    """Return a command prefix under which file modes apply, even for root."""
    if os.geteuid() != 0:
        return ()
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner")


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int = 1) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert "Error:" in result.stderr


def run_bounded(pki: Path, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run easyrsa_py and fail the test, rather than hang, if it blocks."""
    try:
        return run_product(pki, *args, timeout=30, **kwargs)
    except subprocess.TimeoutExpired:
        pytest.fail(f"easyrsa_py {' '.join(args)} still ran after 30 seconds")


# --- symbolic links -----------------------------------------------------------


def test_crl_symlink_target_updated(pki_copy, tmp_path):
    # An OpenVPN server often reads the CRL from its own folder through a
    # link. easy-rsa 3.2.7 writes with `cp -p`, which follows the link, so
    # the target gets the new CRL and keeps its mode.
    pki = pki_copy(FIXTURE)
    deployed = tmp_path / "openvpn" / "crl.pem"
    deployed.parent.mkdir()
    shutil.move(pki / "crl.pem", deployed)
    deployed.chmod(0o644)
    (pki / "crl.pem").symlink_to(deployed)
    old_crl = deployed.read_bytes()

    result = run_product(pki, "gen-crl")

    assert result.returncode == 0, result.stderr
    assert (pki / "crl.pem").is_symlink()
    assert deployed.read_bytes() != old_crl
    assert (deployed.stat().st_mode & 0o777) == 0o644


def test_issued_symlink_moved_as_link(pki_copy, tmp_path):
    # easy-rsa's `mv` moves a link, not its target, and easyrsa_py does the same.
    pki = pki_copy(FIXTURE)
    outside = tmp_path / "outside-alice.crt"
    shutil.move(pki / "issued" / "alice.crt", outside)
    (pki / "issued" / "alice.crt").symlink_to(outside)

    result = run_product(pki, "revoke", "alice")

    revoked = pki / "revoked" / "certs_by_serial" / f"{ALICE_SERIAL}.crt"
    assert result.returncode == 0, result.stderr
    assert revoked.is_symlink()
    assert outside.is_file()


# --- interrupted and partial revocations ----------------------------------------


def mark_alice_revoked(pki: Path) -> None:
    index = pki / "index.txt"
    lines = index.read_text().split("\n")
    fields = lines[0].split("\t")
    assert fields[3] == ALICE_SERIAL
    fields[0], fields[2] = "R", "240601000000Z,keyCompromise"
    lines[0] = "\t".join(fields)
    index.write_text("\n".join(lines))


def test_finish_after_request_moved(pki_copy):
    # easyrsa_py moves the request first. A revocation cut short right after
    # that move leaves the row R, the request in revoked/ and the rest in
    # place. Running the command again must finish the moves (compat.md, D7).
    pki = pki_copy(FIXTURE)
    mark_alice_revoked(pki)
    shutil.move(pki / "reqs" / "alice.req", pki / "revoked" / "reqs_by_serial" / f"{ALICE_SERIAL}.req")
    index_before = (pki / "index.txt").read_bytes()

    result = run_product(pki, "revoke", "alice")

    assert result.returncode == 0, result.stderr
    assert (pki / "revoked" / "certs_by_serial" / f"{ALICE_SERIAL}.crt").is_file()
    assert (pki / "revoked" / "private_by_serial" / f"{ALICE_SERIAL}.key").is_file()
    assert not (pki / "issued" / "alice.crt").exists()
    assert (pki / "index.txt").read_bytes() == index_before


def test_finish_with_nothing_moved(pki_copy):
    pki = pki_copy(FIXTURE)
    mark_alice_revoked(pki)

    result = run_product(pki, "revoke", "alice")

    assert result.returncode == 0, result.stderr
    assert "interrupted" in result.stderr
    assert (pki / "revoked" / "reqs_by_serial" / f"{ALICE_SERIAL}.req").is_file()


def test_readonly_revoked_folder_unchanged(pki_copy):
    pki = pki_copy(FIXTURE)
    (pki / "revoked" / "certs_by_serial").chmod(0o500)
    before = pki_state(pki)

    result = run_product(pki, "revoke", "alice", prefix=without_root_override())

    assert_clean_failure(result)
    assert str(pki / "revoked" / "certs_by_serial") in result.stderr
    assert pki_state(pki) == before


def test_attr_directory_unchanged(pki_copy):
    pki = pki_copy(FIXTURE)
    (pki / "index.txt.attr").unlink()
    (pki / "index.txt.attr").mkdir()
    before = pki_state(pki)

    result = run_product(pki, "revoke", "alice")

    assert_clean_failure(result)
    assert "index.txt.attr" in result.stderr
    assert pki_state(pki) == before


def test_revoke_disk_full_unchanged(pki_copy):
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_product(pki, "--nolockfile", "revoke", "alice", prefix=NO_FILE_WRITES)

    assert_clean_failure(result)
    assert pki_state(pki) == before


# --- gen-crl write failures -----------------------------------------------------


@pytest.mark.parametrize("target", ["crl.pem", "crl.der"])
def test_crl_target_directory_unchanged(pki_copy, target):
    pki = pki_copy(FIXTURE)
    (pki / target).unlink()
    (pki / target).mkdir()
    before = pki_state(pki)

    result = run_product(pki, "gen-crl")

    assert_clean_failure(result)
    assert str(pki / target) in result.stderr
    assert pki_state(pki) == before


def test_gen_crl_disk_full(pki_copy):
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_product(pki, "--nolockfile", "gen-crl", prefix=NO_FILE_WRITES)

    assert_clean_failure(result)
    assert "crl.pem" in result.stderr
    assert pki_state(pki) == before


def test_gen_crl_readonly_pki(pki_copy):
    pki = pki_copy(FIXTURE)
    pki.chmod(0o500)
    before = pki_state(pki)

    result = run_product(pki, "--nolockfile", "gen-crl", prefix=without_root_override())
    pki.chmod(0o700)

    assert_clean_failure(result)
    assert str(pki) in result.stderr
    assert pki_state(pki) == before


# --- unreadable files -------------------------------------------------------------

UNREADABLE_CASES = {
    "ca key, gen-crl": ("private/ca.key", ["gen-crl"]),
    "ca key, revoke": ("private/ca.key", ["revoke", "alice"]),
    "ca key, update-db": ("private/ca.key", ["update-db"]),
    "index, gen-crl": ("index.txt", ["gen-crl"]),
    "certificate": ("issued/alice.crt", ["revoke", "alice"]),
    "request": ("reqs/alice.req", ["revoke", "alice"]),
    "crl, show-crl": ("crl.pem", ["show-crl"]),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE_CASES))
def test_unreadable_file(pki_copy, case):
    relative, args = UNREADABLE_CASES[case]
    pki = pki_copy(FIXTURE)
    (pki / relative).chmod(0o000)
    before = pki_state(pki)

    result = run_product(pki, *args, prefix=without_root_override())

    assert_clean_failure(result)
    assert str(pki / relative) in result.stderr
    assert pki_state(pki) == before


def test_unreadable_index_message(pki_copy):
    # Reading index.txt failed before anything was written, so the advice to
    # run the same command again to finish it sends the user the wrong way.
    pki = pki_copy(FIXTURE)
    (pki / "index.txt").chmod(0o000)

    result = run_product(pki, "revoke", "alice", prefix=without_root_override())

    assert_clean_failure(result)
    assert str(pki / "index.txt") in result.stderr
    assert "finish" not in result.stderr


# --- the lock file ------------------------------------------------------------------


def dead_pid() -> int:
    probe = subprocess.Popen(["true"])
    probe.wait()
    return probe.pid


def hold_with_directory(lock: Path) -> None:
    lock.mkdir()


def hold_with_link_to_dead_process(lock: Path) -> None:
    # A link is never taken over, even to a file with a dead process's PID.
    target = lock.parent / "old-lock"
    target.write_text(f"{dead_pid()}\n")
    lock.symlink_to(target)


def hold_with_live_process(lock: Path) -> None:
    lock.write_text(f"{os.getpid()}\n")


def hold_with_dangling_link(lock: Path) -> None:
    lock.symlink_to(lock.parent / "no-such-lock-target")


LOCK_HOLDERS = {
    "directory": (hold_with_directory, ""),
    "link to a dead process's lock": (hold_with_link_to_dead_process, "symbolic link"),
    "live process": (hold_with_live_process, "still running"),
    "dangling link": (hold_with_dangling_link, ""),
}


@pytest.mark.parametrize("holder", sorted(LOCK_HOLDERS))
@pytest.mark.parametrize("args", [["revoke", "alice"], ["gen-crl"]], ids=["revoke", "gen-crl"])
def test_lock_held(pki_copy, holder, args):
    hold, word = LOCK_HOLDERS[holder]
    pki = pki_copy(FIXTURE)
    hold(pki / "lock.file")
    before = pki_state(pki)

    result = run_product(pki, *args)

    assert_clean_failure(result, code=17)
    assert str(pki / "lock.file") in result.stderr
    assert word in result.stderr
    assert pki_state(pki) == before


def test_lock_fifo_does_not_block(pki_copy):
    pki = pki_copy(FIXTURE)
    os.mkfifo(pki / "lock.file")
    # Hashing the FIFO would block the test itself.
    before = tree_snapshot(pki, ["lock.file"])

    result = run_bounded(pki, "gen-crl")

    assert_clean_failure(result, code=17)
    assert (pki / "lock.file").is_fifo()
    assert tree_snapshot(pki, ["lock.file"]) == before


def test_lock_device_link_bounded(pki_copy):
    # A lock file that never ends must not be read whole into memory.
    pki = pki_copy(FIXTURE)
    (pki / "lock.file").symlink_to("/dev/zero")
    before = pki_state(pki)

    result = run_bounded(pki, "gen-crl", prefix=MEMORY_LIMIT)

    assert_clean_failure(result, code=17)
    assert pki_state(pki) == before


def test_lock_removed_after_write_failure(pki_copy):
    # With the disk full the lock file is created but its PID cannot be
    # written. Leaving the empty file behind blocks every later run.
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_product(pki, "gen-crl", prefix=NO_FILE_WRITES)

    assert_clean_failure(result)
    assert not (pki / "lock.file").exists()
    assert pki_state(pki) == before


def test_concurrent_revokes(pki_copy, tmp_path):
    pki = pki_copy(FIXTURE)
    names = ["alice", "carol", "dave", "francois", "server"]
    serials = {name: serial_of(pki / "issued" / f"{name}.crt") for name in names}
    rows_before = read_index(pki)
    env = product_env(pki, tmp_path, batch=True)

    processes = {
        name: subprocess.Popen(product_command("revoke", name), cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in names
    }
    codes = {name: process.wait(timeout=60) for name, process in processes.items()}
    for process in processes.values():
        process.communicate()

    rows_after = read_index(pki)
    status = {row[3]: row[0] for row in rows_after}
    winners = [name for name, code in codes.items() if code == 0]
    assert set(codes.values()) <= {0, 17}
    assert winners
    assert len(rows_after) == len(rows_before)
    assert len(status) == len(rows_after)
    assert not (pki / "lock.file").exists()
    for name in names:
        revoked = codes[name] == 0
        assert (status[serials[name]] == "R") is revoked, name
        assert (pki / "issued" / f"{name}.crt").exists() is not revoked, name


# --- passphrases --------------------------------------------------------------------


def reencrypt_ec_ca_key(pki: Path, passphrase: bytes) -> None:
    path = pki / "private" / "ca.key"
    key = serialization.load_pem_private_key(path.read_bytes(), password=EC_PASSPHRASE.encode())
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    ))


def test_passin_stdin_after_confirmation(reference_for, pki_copy):
    # `printf 'yes\nPASS\n' | easyrsa --passin=stdin revoke NAME` answers the
    # prompt and then gives the passphrase, which easy-rsa 3.2.7 accepts.
    ref_pki, pki = pki_copy(EC_FIXTURE), pki_copy(EC_FIXTURE)
    answers = f"yes\n{EC_PASSPHRASE}\n"

    ref = reference_for("3.2.7").run(ref_pki, "--passin=stdin", "revoke", "alice",
                                     batch=False, input=answers, check=False)
    result = run_product(pki, "--passin=stdin", "revoke", "alice", batch=False, input=answers)

    assert ref.returncode == 0
    assert result.returncode == 0, result.stderr
    assert not (pki / "issued" / "alice.crt").exists()


@pytest.mark.parametrize("source", ["env", "pass"])
def test_passin_non_utf8(pki_copy, source):
    # OpenSSL takes a passphrase as bytes, so a CA key encrypted under a
    # Latin-1 passphrase works with easy-rsa. os.environ and argv carry such
    # bytes as surrogate escapes.
    pki = pki_copy(EC_FIXTURE)
    reencrypt_ec_ca_key(pki, b"caf\xe9-secret")
    secret = os.fsdecode(b"caf\xe9-secret")
    passin, env = {
        "env": ("env:CA_PASS", {"CA_PASS": secret}),
        "pass": (f"pass:{secret}", None),
    }[source]

    result = run_product(pki, f"--passin={passin}", "gen-crl", env=env)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr


def test_passin_file_read_bounded(pki_copy):
    # OpenSSL reads only the first line of a passphrase file.
    pki = pki_copy(EC_FIXTURE)
    before = pki_state(pki)

    result = run_bounded(pki, "--passin=file:/dev/zero", "gen-crl", prefix=MEMORY_LIMIT)

    assert_clean_failure(result)
    assert "passphrase" in result.stderr
    assert not (pki / "lock.file").exists()
    assert pki_state(pki) == before


@pytest.mark.parametrize("variable", ["EASYRSA_PASSIN", "EASYRSA_PASSOUT"])
@pytest.mark.parametrize("force", [False, True], ids=["plain", "force-vars"])
def test_vars_passphrase_not_echoed(pki_copy, tmp_path, variable, force):
    pki = pki_copy(EC_FIXTURE)
    vars_file = tmp_path / "vars"
    vars_file.write_text(f'set_var {variable} "pass:hunter2-from-vars"\n')
    before = pki_state(pki)
    options = ["--force-vars"] if force else []

    result = run_product(pki, "--verbose", *options, f"--vars={vars_file}", "gen-crl")

    assert_clean_failure(result)
    assert variable in result.stderr
    assert "hunter2-from-vars" not in result.stderr
    assert "hunter2-from-vars" not in result.stdout
    assert pki_state(pki) == before


PASSPHRASE_SOURCES = {
    "pass": lambda path: (f"pass:{EC_PASSPHRASE}", None, None),
    "env": lambda path: ("env:CA_PASS", {"CA_PASS": EC_PASSPHRASE}, None),
    "file": lambda path: (f"file:{path}", None, None),
    "stdin": lambda path: ("stdin", None, f"{EC_PASSPHRASE}\n"),
}


@pytest.mark.parametrize("source", sorted(PASSPHRASE_SOURCES))
@pytest.mark.parametrize("args", [["revoke", "alice"], ["gen-crl"], ["update-db"]],
                         ids=["revoke", "gen-crl", "update-db"])
def test_passphrase_not_in_verbose_output(pki_copy, tmp_path, source, args):
    pki = pki_copy(EC_FIXTURE)
    passphrase_file = tmp_path / "ca-pass"
    passphrase_file.write_text(f"{EC_PASSPHRASE}\n")
    passin, env, stdin = PASSPHRASE_SOURCES[source](passphrase_file)

    result = run_product(pki, "--verbose", f"--passin={passin}", *args, env=env, input=stdin)

    assert result.returncode == 0, result.stderr
    assert EC_PASSPHRASE not in result.stdout
    assert EC_PASSPHRASE not in result.stderr


@pytest.mark.parametrize("passphrase", ["", "wrong-secret-value", "W" * 100_000])
def test_wrong_passphrase_not_echoed(pki_copy, passphrase):
    pki = pki_copy(EC_FIXTURE)
    before = pki_state(pki)

    result = run_product(pki, "--verbose", "--passin=env:CA_PASS", "gen-crl",
                         env={"CA_PASS": passphrase})

    assert_clean_failure(result)
    assert str(pki / "private" / "ca.key") in result.stderr
    if passphrase:
        assert passphrase not in result.stderr
    assert pki_state(pki) == before


# --- settings -------------------------------------------------------------------------


@pytest.mark.parametrize("setting", [["--days=0"], []], ids=["option", "environment"])
def test_crl_days_zero_rejected(reference_for, pki_copy, setting):
    # A CRL whose nextUpdate equals lastUpdate is already out of date, and
    # an OpenVPN server that checks it rejects every client. easy-rsa 3.2.7
    # stops with an error, as `openssl ca -crldays 0` does.
    env = None if setting else {"EASYRSA_CRL_DAYS": "0"}
    ref_pki, pki = pki_copy(FIXTURE), pki_copy(FIXTURE)
    before = pki_state(pki)

    ref = reference_for("3.2.7").run(ref_pki, *setting, "gen-crl", env=env, check=False)
    result = run_product(pki, *setting, "gen-crl", env=env)

    assert ref.returncode == 1
    assert_clean_failure(result)
    assert "EASYRSA_CRL_DAYS" in result.stderr or "--days" in result.stderr
    assert pki_state(pki) == before


@pytest.mark.parametrize("days", ["3000000", "99999999999"])
def test_crl_days_too_large(pki_copy, days):
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)

    result = run_product(pki, f"--days={days}", "gen-crl")

    assert_clean_failure(result)
    assert days in result.stderr
    assert pki_state(pki) == before


VARS_SHELL_CODE = {
    "command substitution": 'set_var EASYRSA_CRL_DAYS "$(touch {marker})30"',
    "in single quotes": "set_var EASYRSA_REQ_ORG '$(touch {marker})'",
    "backticks": 'set_var EASYRSA_REQ_ORG "`touch {marker}`"',
    "plain command": "touch {marker}",
    "after a semicolon": "set_var EASYRSA_CRL_DAYS 30; touch {marker}",
    "parameter default": 'set_var EASYRSA_REQ_ORG "${{X:=$(touch {marker})}}"',
    "continued line": 'set_var EASYRSA_REQ_ORG "a\\\n$(touch {marker})"',
    "in an if block": "if true; then\n  touch {marker}\nfi",
    "function": "f() {{ touch {marker}; }}\nf",
}


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force-vars"])
@pytest.mark.parametrize("case", sorted(VARS_SHELL_CODE))
def test_vars_shell_code_not_run(pki_copy, tmp_path, case, force):
    pki = pki_copy(FIXTURE)
    marker = tmp_path / "pwned"
    vars_file = tmp_path / "vars"
    vars_file.write_text(VARS_SHELL_CODE[case].format(marker=marker) + "\n")
    options = ["--force-vars"] if force else []

    result = run_product(pki, *options, f"--vars={vars_file}", "gen-crl")

    assert not marker.exists()
    assert "Traceback" not in result.stderr
    if not force:
        assert result.returncode == 1
        assert str(vars_file) in result.stderr


# --- names and index.txt content -------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "a b", "\u00fcn\u00ef", "-alice", "--help", "tab\tname", "cr\rname", os.fsdecode(b"\xff\xfe"),
], ids=["space", "unicode", "dash", "double-dash", "tab", "carriage-return", "non-utf8"])
def test_odd_name_revoked(pki_copy, name):
    pki = pki_copy(FIXTURE)
    shutil.move(pki / "issued" / "alice.crt", pki / "issued" / f"{name}.crt")

    result = run_product(pki, "revoke", name)

    assert result.returncode == 0, result.stderr
    assert not (pki / "issued" / f"{name}.crt").exists()
    assert (pki / "revoked" / "certs_by_serial" / f"{ALICE_SERIAL}.crt").is_file()


def test_overlong_name(pki_copy):
    pki = pki_copy(FIXTURE)
    name = "x" * 300
    before = pki_state(pki)

    result = run_product(pki, "revoke", name)

    assert_clean_failure(result)
    assert pki_state(pki) == before


def test_non_utf8_subject_kept(pki_copy):
    pki = pki_copy(FIXTURE)
    index = pki / "index.txt"
    odd_subject = b"/CN=car\xff\xfe\x01ol"
    index.write_bytes(index.read_bytes().replace(b"/CN=carol", odd_subject))

    result = run_product(pki, "revoke", "alice")

    assert result.returncode == 0, result.stderr
    assert odd_subject in index.read_bytes()


def test_huge_index_line_kept(pki_copy):
    pki = pki_copy(FIXTURE)
    index = pki / "index.txt"
    huge_row = b"V\t290308155129Z\t\t01\tunknown\t/CN=" + b"A" * 5_000_000 + b"\n"
    index.write_bytes(index.read_bytes() + huge_row)

    revoked = run_product(pki, "revoke", "alice")
    crl = run_product(pki, "gen-crl")

    assert revoked.returncode == 0, revoked.stderr
    assert crl.returncode == 0, crl.stderr
    assert index.read_bytes().endswith(huge_row)
