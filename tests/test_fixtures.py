"""Consistency checks of the PKIs in pki_fixtures/.

These read the committed fixtures through ``pki_copy`` and check them with
openssl and ``cryptography``. They use no easyrsa_py code, so a failure
here means a fixture is broken, not the product.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import FIXTURES_DIR, MANIFEST_NAME
from cryptography import x509
from cryptography.hazmat.primitives import serialization

FIXTURE_NAMES = sorted(p.parent.name for p in FIXTURES_DIR.glob(f"*/{MANIFEST_NAME}"))
# Folders whose certificates are named after the file name base.
NAMED_CERT_DIRS = ("issued", "renewed/issued", "expired")
REVOKED_CERT_DIR = "revoked/certs_by_serial"


@dataclass(frozen=True)
class IndexRow:
    status: str
    expiry: str
    revocation: str
    serial: str
    subject: str

    @property
    def serial_number(self) -> int:
        return int(self.serial, 16)


def read_index(pki: Path) -> list[IndexRow]:
    rows = []
    for line in (pki / "index.txt").read_text(encoding="ascii").splitlines():
        status, expiry, revocation, serial, _unused, subject = line.split("\t")
        rows.append(IndexRow(status, expiry, revocation, serial.upper(), subject))
    return rows


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def cert_files(pki: Path) -> list[Path]:
    files = [p for d in NAMED_CERT_DIRS for p in sorted((pki / d).glob("*.crt"))]
    return files + sorted((pki / REVOKED_CERT_DIR).glob("*.crt"))


def certs_by_serial(pki: Path) -> dict[int, list[Path]]:
    found: dict[int, list[Path]] = {}
    for path in cert_files(pki):
        found.setdefault(load_cert(path).serial_number, []).append(path)
    return found


def is_expired(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc < datetime.now(UTC)


def openssl_verify(ca: Path, cert_path: Path) -> subprocess.CompletedProcess[str]:
    """Verify ``cert_path`` against ``ca``, inside its validity if expired."""
    cert = load_cert(cert_path)
    command = ["openssl", "verify", "-CAfile", str(ca)]
    if is_expired(cert):
        middle = (
            cert.not_valid_before_utc
            + (cert.not_valid_after_utc - cert.not_valid_before_utc) / 2
        )
        command += ["-attime", str(int(middle.timestamp()))]
    command.append(str(cert_path))
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.fixture(params=FIXTURE_NAMES)
def fixture_pki(
    request: pytest.FixtureRequest, pki_copy: Callable[[str], Path]
) -> Path:
    return pki_copy(request.param)


def manifest_of(pki: Path) -> dict[str, object]:
    manifest: dict[str, object] = json.loads(
        (pki.parent / MANIFEST_NAME).read_text(encoding="utf-8")
    )
    return manifest


def test_fixtures_exist() -> None:
    assert len(FIXTURE_NAMES) >= 4, f"fixtures found: {FIXTURE_NAMES}"


def test_every_folder_is_a_fixture() -> None:
    folders = sorted(
        p.name for p in FIXTURES_DIR.iterdir() if p.is_dir() and p.name != "__pycache__"
    )
    assert folders == FIXTURE_NAMES


def test_readme_lists_every_fixture() -> None:
    readme = (FIXTURES_DIR / "README.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (\S+)$", readme, flags=re.MULTILINE))
    assert set(FIXTURE_NAMES) <= headings


def test_index_rows_have_certificates(fixture_pki: Path) -> None:
    found = certs_by_serial(fixture_pki)
    for row in read_index(fixture_pki):
        paths = found.get(row.serial_number, [])
        assert len(paths) == 1, f"{row.serial} ({row.subject}) found at {paths}"
        folder = paths[0].parent.relative_to(fixture_pki).as_posix()
        if row.status == "R":
            assert paths[0].name == f"{row.serial}.crt"
            assert folder == REVOKED_CERT_DIR
        else:
            assert folder in NAMED_CERT_DIRS, f"{row.serial} is in {folder}"


def test_certificates_have_index_rows(fixture_pki: Path) -> None:
    serials = {row.serial_number for row in read_index(fixture_pki)}
    for serial, paths in certs_by_serial(fixture_pki).items():
        assert serial in serials, f"{paths} has no row in index.txt"


def test_openssl_copies_match_index(fixture_pki: Path) -> None:
    serials = {row.serial for row in read_index(fixture_pki)}
    for path in (fixture_pki / "certs_by_serial").glob("*.pem"):
        assert path.stem in serials
        assert load_cert(path).serial_number == int(path.stem, 16)


def test_certificates_verify_against_ca(fixture_pki: Path) -> None:
    ca = fixture_pki / "ca.crt"
    for path in cert_files(fixture_pki):
        result = openssl_verify(ca, path)
        assert result.returncode == 0, f"{path}: {result.stdout}{result.stderr}"


def test_ca_is_valid_for_decades(fixture_pki: Path) -> None:
    ca = load_cert(fixture_pki / "ca.crt")
    assert ca.not_valid_after_utc > datetime.now(UTC) + timedelta(days=50 * 365)


def test_issued_keys_match_certificates(fixture_pki: Path) -> None:
    for cert_path in sorted((fixture_pki / "issued").glob("*.crt")):
        key_path = fixture_pki / "private" / f"{cert_path.stem}.key"
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        public = load_cert(cert_path).public_key()
        assert key.public_key() == public, f"{key_path} does not match {cert_path}"


def test_crl_is_signed_by_ca(fixture_pki: Path) -> None:
    result = subprocess.run(
        ["openssl", "crl", "-in", str(fixture_pki / "crl.pem"), "-noout"]
        + ["-CAfile", str(fixture_pki / "ca.crt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "verify OK" in result.stdout + result.stderr


def test_crl_lists_revoked_rows(fixture_pki: Path) -> None:
    crl = x509.load_pem_x509_crl((fixture_pki / "crl.pem").read_bytes())
    listed = {entry.serial_number for entry in crl}
    rows = read_index(fixture_pki)
    revoked = {row.serial_number for row in rows if row.status == "R"}
    assert listed == revoked


def test_revoked_rows_have_reason(fixture_pki: Path) -> None:
    for row in read_index(fixture_pki):
        if row.status == "R":
            assert re.fullmatch(r"\d{12}Z,[A-Za-z]+", row.revocation), row


def check_state(pki: Path, name: str, state: str) -> None:
    issued = pki / "issued" / f"{name}.crt"
    renewed = pki / "renewed" / "issued" / f"{name}.crt"
    expired = pki / "expired" / f"{name}.crt"
    if state == "valid":
        assert issued.is_file()
        assert not is_expired(load_cert(issued))
    elif state == "revoked":
        assert not issued.is_file()
        revoked_names = [
            load_cert(p).subject.rfc4514_string()
            for p in (pki / REVOKED_CERT_DIR).glob("*.crt")
        ]
        assert f"CN={name}" in revoked_names
    elif state == "renewed":
        assert issued.is_file()
        assert renewed.is_file()
        assert load_cert(issued).serial_number != load_cert(renewed).serial_number
    elif state == "expired":
        assert issued.is_file()
        assert is_expired(load_cert(issued))
    elif state == "moved-to-expired":
        assert not issued.is_file()
        assert is_expired(load_cert(expired))
    else:
        pytest.fail(f"unknown state {state!r} for {name} in {MANIFEST_NAME}")


def test_manifest_states_match_files(fixture_pki: Path) -> None:
    certificates = manifest_of(fixture_pki)["certificates"]
    assert isinstance(certificates, dict)
    for name, entry in certificates.items():
        check_state(fixture_pki, name, entry["state"])


def test_manifest_names_every_certificate(fixture_pki: Path) -> None:
    certificates = manifest_of(fixture_pki)["certificates"]
    assert isinstance(certificates, dict)
    named = {p.stem for d in NAMED_CERT_DIRS for p in (fixture_pki / d).glob("*.crt")}
    assert named <= set(certificates)


def test_ca_key_passphrase(fixture_pki: Path) -> None:
    passphrase = manifest_of(fixture_pki)["ca_passphrase"]
    key_pem = (fixture_pki / "private" / "ca.key").read_bytes()
    password = passphrase.encode() if isinstance(passphrase, str) else None
    key = serialization.load_pem_private_key(key_pem, password)
    ca = load_cert(fixture_pki / "ca.crt")
    assert key.public_key() == ca.public_key()


def test_copy_has_easyrsa_modes(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy(FIXTURE_NAMES[0])
    assert (pki / "private").stat().st_mode & 0o777 == 0o700
    assert (pki / "private" / "ca.key").stat().st_mode & 0o777 == 0o600


def test_copy_restores_empty_dirs(pki_copy: Callable[[str], Path]) -> None:
    pki = pki_copy("v3.2.2-ec")
    for relative in manifest_of(pki)["empty_dirs"]:  # type: ignore[union-attr]
        assert (pki / relative).is_dir()


def test_non_ascii_subject_escaped() -> None:
    index = (FIXTURES_DIR / "v3.2.7-rsa" / "pki" / "index.txt").read_text("ascii")
    assert "CN=Fran\\xC3\\xA7ois Dupr\\xC3\\xA9" in index
