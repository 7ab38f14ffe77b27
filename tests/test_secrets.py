"""Passphrases stay secret, and private keys stay private through revoke.

The CA passphrase of the v3.2.2-ec fixture is given through each --passin
source (and EASYRSA_PASSIN), right and wrong, to revoke, gen-crl and
update-db with --verbose. It must not appear in stdout, stderr (messages,
log lines, tracebacks) or any PKI file.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from pkitools import pki_state, run_product, serial_of

FIXTURE = "v3.2.2-ec"
RIGHT = "fixture-ec-ca-pass"
WRONG = "wrong-secret-Q7xk"
COMMANDS = [["revoke", "alice"], ["gen-crl"], ["update-db"]]
SOURCES = ["pass", "env", "file", "fd", "stdin", "EASYRSA_PASSIN"]
# Runs the product with the passphrase file open as file descriptor 3.
FD_WRAPPER = ("sh", "-c", 'exec "$@" 3<"$PASSPHRASE_FILE"', "sh")


def _run_with_source(pki: Path, source: str, secret: str, command: list[str], scratch: Path):
    """Run the command with the secret given through `source`."""
    passphrase_file = scratch / "passphrase.txt"
    passphrase_file.write_text(secret + "\n")
    options = ["--batch", "--verbose"]
    env: dict[str, str] = {}
    prefix: tuple[str, ...] = ()
    stdin = None
    if source == "pass":
        options.append(f"--passin=pass:{secret}")
    elif source == "env":
        options.append("--passin=env:CA_PASS")
        env["CA_PASS"] = secret
    elif source == "file":
        options.append(f"--passin=file:{passphrase_file}")
    elif source == "fd":
        options.append("--passin=fd:3")
        env["PASSPHRASE_FILE"] = str(passphrase_file)
        prefix = FD_WRAPPER
    elif source == "stdin":
        options.append("--passin=stdin")
        stdin = secret + "\n"
    else:
        env["EASYRSA_PASSIN"] = f"pass:{secret}"
    return run_product(pki, *options, *command, env=env, prefix=prefix, input=stdin)


def _files_containing(pki: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return [str(path) for path in pki.rglob("*") if path.is_file() and needle in path.read_bytes()]


def _assert_secret_absent(result, pki: Path, secret: str) -> None:
    assert secret not in result.stdout
    assert secret not in result.stderr
    assert "Traceback" not in result.stderr
    assert _files_containing(pki, secret) == []


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("source", SOURCES)
def test_right_passphrase_not_output(pki_copy, tmp_path, source, command):
    pki = pki_copy(FIXTURE)
    result = _run_with_source(pki, source, RIGHT, command, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "easyrsa_py" in result.stderr  # --verbose log lines were written
    _assert_secret_absent(result, pki, RIGHT)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("source", SOURCES)
def test_wrong_passphrase_not_output(pki_copy, tmp_path, source, command):
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)
    result = _run_with_source(pki, source, WRONG, command, tmp_path)
    assert result.returncode == 1
    assert "does not decrypt the CA key" in result.stderr
    _assert_secret_absent(result, pki, WRONG)
    assert pki_state(pki) == before


@pytest.mark.parametrize(
    "passin",
    [WRONG, f"fd:{WRONG}x", f"file:/nonexistent/{WRONG}", "env:NO_SUCH_VARIABLE", "pass"],
)
def test_invalid_source_message_keeps_secret(pki_copy, passin):
    # A passphrase typed without its "pass:" prefix must not be echoed, and
    # the other sources name only what they point at.
    pki = pki_copy(FIXTURE)
    before = pki_state(pki)
    result = run_product(pki, "--batch", f"--passin={passin}", "gen-crl")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    if passin == WRONG:
        assert WRONG not in result.stderr
    assert pki_state(pki) == before


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.parametrize("fresh_folders", [False, True], ids=["folders-exist", "folders-created"])
def test_key_mode_kept_under_umask_000(pki_copy, fresh_folders):
    pki = pki_copy("v3.2.7-rsa")
    serial = serial_of(pki / "issued" / "alice.crt")
    if fresh_folders:
        shutil.rmtree(pki / "revoked")
    assert _mode(pki / "private" / "alice.key") == 0o600
    result = run_product(pki, "--batch", "--umask=000", "revoke", "alice")
    assert result.returncode == 0, result.stderr
    key = pki / "revoked" / "private_by_serial" / f"{serial}.key"
    # Folders created under --umask=000 are 0777, as easy-rsa 3.2.7 creates
    # them, so the key's own mode is what keeps it private.
    assert _mode(key) == 0o600
    assert _mode(pki / "revoked" / "reqs_by_serial" / f"{serial}.req") == 0o600
    assert _mode(pki / "revoked" / "certs_by_serial" / f"{serial}.crt") == 0o600
    assert _mode(pki / "index.txt") == 0o600
    for other in (pki / "private").iterdir():
        assert _mode(other) == 0o600, other


def test_no_world_access_to_keys_under_default_umask(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    shutil.rmtree(pki / "revoked")
    result = run_product(pki, "--batch", "revoke", "alice")
    assert result.returncode == 0, result.stderr
    for folder in ("private_by_serial", "reqs_by_serial", "certs_by_serial"):
        assert _mode(pki / "revoked" / folder) & 0o077 == 0, folder
    assert os.listdir(pki / "revoked" / "private_by_serial")
