"""Passphrases and private keys of the issuing and export commands stay secret.

Each passphrase is given through each --passin or --passout source (pass:,
env:, file:, fd:, stdin and the EASYRSA_PASSIN or EASYRSA_PASSOUT
variable), right and wrong, with --verbose. It must not appear in stdout,
stderr (messages, log lines, tracebacks) or as plain text in any PKI file.
New keys, PKCS#12 and PKCS#8 files must be mode 0600 and private folders
0700 under --umask=000 and --umask=022.
"""

from __future__ import annotations

import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from forked_cli import run_forked
from pkitools import pki_state, run_product

from easyrsa_py import csr, exports, issuing, keys, pkiinit, signing  # noqa: F401 - loaded before fork

FIXTURE = "v3.2.2-ec"
CA_PASS = "fixture-ec-ca-pass"
ALICE_PASS = "alice-old-secret-Hx81"
NEW_PASS = "brand-new-secret-Vq27"
WRONG_PASS = "wrong-secret-Kz93"
ED25519 = ("--use-algo=ed", "--curve=ed25519")
SOURCES = ["pass", "env", "file", "fd", "stdin", "variable"]
# Runs the product with the passphrase file open as file descriptor 3.
FD_WRAPPER = ("sh", "-c", 'exec "$@" 3<"$PASSPHRASE_FILE"', "sh")


@dataclass(frozen=True)
class Case:
    """A command with the passphrase each side needs; None where it takes none."""

    name: str
    arguments: tuple[str, ...]
    passin: str | None
    passout: str | None
    fresh_pki: bool = False

    def __str__(self) -> str:
        return self.name


CASES = [
    Case("build-ca", (*ED25519, "--req-cn=Secret CA", "build-ca"), None, NEW_PASS, fresh_pki=True),
    Case("gen-req", (*ED25519, "gen-req", "zed"), None, NEW_PASS),
    Case("build-client-full", (*ED25519, "build-client-full", "zed"), CA_PASS, NEW_PASS),
    Case("set-pass", ("set-pass", "alice"), ALICE_PASS, NEW_PASS),
    Case("export-p12", ("export-p12", "alice"), ALICE_PASS, NEW_PASS),
    Case("export-p8", ("export-p8", "alice"), ALICE_PASS, NEW_PASS),
]


def encrypt_alice_key(pki: Path) -> None:
    """Encrypt private/alice.key with ALICE_PASS, as `gen-req alice` with a passphrase writes it."""
    path = pki / "private" / "alice.key"
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    encryption = serialization.BestAvailableEncryption(ALICE_PASS.encode())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    path.write_bytes(pem)


def prepared_pki(case: Case, pki_copy, tmp_path: Path) -> Path:
    if case.fresh_pki:
        pki = tmp_path / "fresh" / "pki"
        result = run_forked(pki, ["--batch", "init-pki"])
        assert result.returncode == 0, result.stderr
        return pki
    pki = pki_copy(FIXTURE)
    encrypt_alice_key(pki)
    return pki


def run_with_source(
    pki: Path, case: Case, side: str, source: str, secret: str, scratch: Path
) -> subprocess.CompletedProcess[str]:
    """Run the case with `secret` on `side` given through `source`; the other side uses pass:."""
    options = ["--batch", "--verbose"]
    env: dict[str, str] = {}
    prefix: tuple[str, ...] = ()
    stdin = None
    other = "passout" if side == "passin" else "passin"
    other_secret = getattr(case, other)
    if other_secret is not None:
        options.append(f"--{other}=pass:{other_secret}")
    passphrase_file = scratch / f"{side}.txt"
    passphrase_file.write_text(secret + "\n")
    if source == "pass":
        options.append(f"--{side}=pass:{secret}")
    elif source == "env":
        options.append(f"--{side}=env:SECRET_VALUE")
        env["SECRET_VALUE"] = secret
    elif source == "file":
        options.append(f"--{side}=file:{passphrase_file}")
    elif source == "fd":
        options.append(f"--{side}=fd:3")
        env["PASSPHRASE_FILE"] = str(passphrase_file)
        prefix = FD_WRAPPER
    elif source == "stdin":
        options.append(f"--{side}=stdin")
        stdin = secret + "\n"
    else:
        env[f"EASYRSA_{side.upper()}"] = f"pass:{secret}"
    return run_product(pki, *options, *case.arguments, env=env, prefix=prefix, input=stdin)


def files_containing(pki: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return [str(path) for path in pki.rglob("*") if path.is_file() and needle in path.read_bytes()]


def assert_secrets_absent(result: subprocess.CompletedProcess[str], pki: Path, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr
        assert files_containing(pki, secret) == []
    assert "Traceback" not in result.stderr


def side_cases() -> list[tuple[Case, str]]:
    return [(case, side) for case in CASES for side in ("passin", "passout") if getattr(case, side)]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("case", "side"), side_cases(), ids=lambda value: str(value))
def test_right_passphrase_not_output(pki_copy, tmp_path: Path, case: Case, side: str, source: str) -> None:
    pki = prepared_pki(case, pki_copy, tmp_path)
    secret = getattr(case, side)

    result = run_with_source(pki, case, side, source, secret, tmp_path)

    assert result.returncode == 0, result.stderr
    assert "easyrsa_py" in result.stderr  # --verbose wrote log lines
    assert_secrets_absent(result, pki, *(value for value in (case.passin, case.passout) if value))


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("case", [case for case in CASES if case.passin], ids=str)
def test_wrong_passin_not_output(pki_copy, tmp_path: Path, case: Case, source: str) -> None:
    pki = prepared_pki(case, pki_copy, tmp_path)
    before = pki_state(pki)

    result = run_with_source(pki, case, "passin", source, WRONG_PASS, tmp_path)

    assert result.returncode == 1, result.stderr
    assert "ca.key" in result.stderr or "alice.key" in result.stderr
    assert_secrets_absent(result, pki, WRONG_PASS, NEW_PASS)
    assert pki_state(pki) == before


# --- modes -------------------------------------------------------------------------


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# Files in private/ that each case writes.
WRITTEN = {
    "build-ca": ["ca.key"],
    "gen-req": ["zed.key"],
    "build-client-full": ["zed.key"],
    "set-pass": ["alice.key"],
    "export-p12": ["alice.p12"],
    "export-p8": ["alice.p8"],
}


@pytest.mark.parametrize("umask", ["000", "022"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_private_files_stay_private(pki_copy, tmp_path: Path, case: Case, umask: str) -> None:
    pki = prepared_pki(case, pki_copy, tmp_path)
    options = [f"--umask={umask}", f"--passin=pass:{case.passin}", f"--passout=pass:{case.passout}"]

    result = run_forked(pki, ["--batch", *options, *case.arguments])

    assert result.returncode == 0, result.stderr
    assert mode_of(pki / "private") == 0o700
    for name in WRITTEN[case.name]:
        assert mode_of(pki / "private" / name) == 0o600, name
    for path in (pki / "private").iterdir():
        assert mode_of(path) & 0o077 == 0, path
    inline_private = pki / "inline" / "private"
    if inline_private.is_dir():
        assert mode_of(inline_private) & 0o077 == 0
        for path in inline_private.glob("*.inline"):
            assert mode_of(path) == 0o600, path


@pytest.mark.parametrize("umask", ["000", "022"])
def test_new_pki_private_folders(tmp_path: Path, umask: str) -> None:
    pki = tmp_path / "pki"
    steps = [
        ["init-pki"],
        [*ED25519, "--req-cn=Mode CA", "build-ca", "nopass"],
        [*ED25519, "build-client-full", "zed", "nopass"],
    ]
    for step in steps:
        result = run_forked(pki, ["--batch", f"--umask={umask}", *step])
        assert result.returncode == 0, result.stderr

    for folder in ("private", "inline/private", "revoked/private_by_serial"):
        assert mode_of(pki / folder) == 0o700, folder
    for name in ("ca.key", "zed.key"):
        assert mode_of(pki / "private" / name) == 0o600, name
    assert mode_of(pki / "inline" / "private" / "zed.inline") == 0o600
