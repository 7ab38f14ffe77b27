"""Checks that a PKI is whole, for the random mixed-use test.

``check_pki(view)`` runs every check on the PKI after a step and fails with
a message naming the file, serial or tool that broke the rule:

- index.txt: six fields a row, unique serials, no ``lock.file`` left.
- readers: easyrsa_py ``show-revoke --json`` lists exactly the R rows with
  their reasons. The real script's ``show-revoke``, run on a copy, exits 0
  and names each R serial. ``openssl ca -updatedb``, run on a copy with a
  minimal config, exits 0.
- files: each certificate in ``issued/``, ``expired/`` and
  ``renewed/issued/`` has a V or E row with its serial. Each R row has
  ``revoked/certs_by_serial/SERIAL.crt`` and no other file with that
  serial. Each V or E row has exactly one certificate file, and each
  ``certs_by_serial/SERIAL.pem`` has a row.
- keys: ``private/NAME.key`` matches ``issued/NAME.crt`` when the test
  has the key's passphrase.
- OpenSSL: each V row whose end date is still ahead verifies with
  ``openssl verify -crl_check``. When the last gen-crl came after the last
  revocation, the CRL lists exactly the R serials with their reasons,
  ``crl.der`` equals ``crl.pem`` unless easy-rsa 3.1.0 made the CRL, and
  each revoked certificate fails with "certificate revoked".
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pkitools import (
    crl_der_matches_pem,
    openssl_crl_verify,
    parse_index_time,
    run_product,
)
from pkitools import read_index as read_index_fields

OPENSSL_TIMEOUT = 60
# Folders whose NAME.crt files each hold the certificate of one V or E row.
NAMED_CERT_FOLDERS = ("issued", "expired", "renewed/issued")
REVOKED_CERTS = "revoked/certs_by_serial"


@dataclass(frozen=True)
class Row:
    """One index.txt row."""

    status: str
    expires: datetime
    revocation: str
    serial: str
    subject: str

    @property
    def reason(self) -> str | None:
        """Return the reason word of an R row, or None when it has none."""
        _, comma, reason = self.revocation.partition(",")
        return reason if comma else None


@dataclass
class PKIView:
    """The PKI under test and the state the test tracks beyond the files."""

    pki: Path
    version: str
    run_reference: Callable[..., subprocess.CompletedProcess[str]]
    ca_passphrase: str | None
    # Passphrase of private/NAME.key for each name whose key is encrypted.
    passphrases: dict[str, str] = field(default_factory=dict)
    # True when crl.pem was written after the last revocation.
    crl_fresh: bool = True
    # True when crl.der was written by the same gen-crl as crl.pem.
    der_fresh: bool = True


def read_rows(pki: Path) -> list[Row]:
    rows = []
    for number, fields in enumerate(read_index_fields(pki), start=1):
        assert len(fields) == 6, f"index.txt line {number} has {len(fields)} fields"
        status, expires, revocation, serial, _, subject = fields
        rows.append(Row(status, parse_index_time(expires), revocation, serial, subject))
    return rows


def certificate_serial(certificate: x509.Certificate) -> str:
    """Return the serial as OpenSSL writes it in index.txt."""
    text = f"{certificate.serial_number:X}"
    return "0" + text if len(text) % 2 else text


def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def certificate_files(pki: Path) -> dict[Path, str]:
    """Map every named and revoked certificate file to its serial."""
    files = {}
    for folder in (*NAMED_CERT_FOLDERS, REVOKED_CERTS):
        for path in sorted((pki / folder).glob("*.crt")):
            files[path] = certificate_serial(load_certificate(path))
    return files


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *args],
        capture_output=True,
        text=True,
        timeout=OPENSSL_TIMEOUT,
        check=False,
    )


# --- index.txt and its readers ----------------------------------------------


def check_index(view: PKIView, rows: list[Row]) -> None:
    serials = [row.serial for row in rows]
    duplicates = {serial for serial in serials if serials.count(serial) > 1}
    assert not duplicates, f"index.txt repeats serials {sorted(duplicates)}"
    assert not (view.pki / "lock.file").exists(), "a tool left pki/lock.file behind"


def check_product_reads(view: PKIView, rows: list[Row]) -> None:
    result = run_product(view.pki, "show-revoke", "--json")
    assert result.returncode == 0, f"easyrsa_py show-revoke failed:\n{result.stderr}"
    listed = {entry["serial"]: entry["reason"] for entry in json.loads(result.stdout)}
    expected = {row.serial: row.reason for row in rows if row.status == "R"}
    assert listed == expected, "easyrsa_py show-revoke does not list the R rows"


def check_reference_reads(view: PKIView, rows: list[Row], scratch: Path) -> None:
    """Run the real script's show-revoke on a copy, which it may write to."""
    copy = scratch / "reference-copy"
    shutil.copytree(view.pki, copy, symlinks=True)
    try:
        result = view.run_reference(copy, "show-revoke")
    finally:
        shutil.rmtree(copy)
    output = result.stdout + result.stderr
    if view.version == "3.1.0" and any(row.status == "E" for row in rows):
        # easy-rsa 3.1.0's show-* reports stop at the E rows that its own
        # update-db (openssl ca -updatedb) writes.
        assert result.returncode != 0, output
        assert "Unexpected status: E" in output, output
        return
    assert result.returncode == 0, f"easy-rsa {view.version} show-revoke failed:\n{output}"
    for row in rows:
        if row.status == "R":
            assert row.serial in output, f"easy-rsa show-revoke omits {row.serial}"


def check_openssl_reads(view: PKIView, scratch: Path) -> None:
    """Run `openssl ca -updatedb` on a copy of index.txt with a minimal config."""
    folder = scratch / "openssl-db"
    folder.mkdir()
    try:
        for name in ("index.txt", "index.txt.attr"):
            if (view.pki / name).exists():
                shutil.copyfile(view.pki / name, folder / name)
        config = folder / "ca.cnf"
        config.write_text(
            "[ca]\ndefault_ca = db\n[db]\n"
            f"database = {folder / 'index.txt'}\n"
            f"certificate = {view.pki / 'ca.crt'}\n"
            f"private_key = {view.pki / 'private' / 'ca.key'}\n"
            # Needed only to write the database back, when a row ended.
            "default_md = sha256\n",
            encoding="utf-8",
        )
        passin = ["-passin", f"pass:{view.ca_passphrase}"] if view.ca_passphrase else []
        result = openssl("ca", "-config", str(config), "-updatedb", *passin)
    finally:
        shutil.rmtree(folder)
    assert result.returncode == 0, f"openssl ca -updatedb failed:\n{result.stderr}"


# --- files --------------------------------------------------------------------


def check_files(pki: Path, rows: list[Row]) -> None:
    by_serial = {row.serial: row for row in rows}
    files = certificate_files(pki)
    holders: dict[str, list[Path]] = {}
    for path, serial in files.items():
        holders.setdefault(serial, []).append(path)
        row = by_serial.get(serial)
        assert row is not None, f"{path} has serial {serial}, which index.txt lacks"
        revoked_file = path.parent == pki / REVOKED_CERTS
        if revoked_file:
            assert path.stem == serial, f"{path} holds serial {serial}"
            assert row.status == "R", f"{path} is in revoked/ but its row is {row.status}"
        else:
            assert row.status in "VE", f"{path} has an {row.status} row"

    for row in rows:
        found = holders.get(row.serial, [])
        assert len(found) <= 1, f"serial {row.serial} is in several files: {found}"
        if row.status == "R":
            expected = pki / REVOKED_CERTS / f"{row.serial}.crt"
            assert found == [expected], f"R row {row.serial} has {found}, not {expected}"
        else:
            assert found, f"{row.status} row {row.serial} ({row.subject}) has no file"

    for path in (pki / "certs_by_serial").glob("*.pem"):
        assert path.stem in by_serial, f"{path} has no index.txt row"


def load_key(path: Path, passphrase: str | None) -> object:
    password = passphrase.encode() if passphrase is not None else None
    return serialization.load_pem_private_key(path.read_bytes(), password)


def public_bytes(key: object) -> bytes:
    public = key.public_key()  # type: ignore[attr-defined]
    return public.public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def certificate_public_bytes(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_keys(view: PKIView) -> None:
    for certificate_path in sorted((view.pki / "issued").glob("*.crt")):
        name = certificate_path.stem
        key_path = view.pki / "private" / f"{name}.key"
        if not key_path.exists():
            continue
        key = load_key(key_path, view.passphrases.get(name))
        certificate = load_certificate(certificate_path)
        assert public_bytes(key) == certificate_public_bytes(certificate), (
            f"{key_path} does not match {certificate_path}"
        )


# --- CRL and verification -------------------------------------------------------


# The reason words of index.txt, as OpenSSL writes them, for each CRL reason.
INDEX_REASONS = {
    x509.ReasonFlags.unspecified: "unspecified",
    x509.ReasonFlags.key_compromise: "keyCompromise",
    x509.ReasonFlags.ca_compromise: "CACompromise",
    x509.ReasonFlags.affiliation_changed: "affiliationChanged",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.cessation_of_operation: "cessationOfOperation",
    x509.ReasonFlags.certificate_hold: "certificateHold",
    x509.ReasonFlags.remove_from_crl: "removeFromCRL",
}


def crl_reasons(pki: Path) -> dict[str, str | None]:
    """Map each serial in crl.pem to its reason, as index.txt words it."""
    crl = x509.load_pem_x509_crl((pki / "crl.pem").read_bytes())
    reasons: dict[str, str | None] = {}
    for entry in crl:
        text = f"{entry.serial_number:X}"
        serial = "0" + text if len(text) % 2 else text
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason)
            reasons[serial] = INDEX_REASONS[reason.value.reason]
        except x509.ExtensionNotFound:
            reasons[serial] = None
    return reasons


def check_crl(view: PKIView, rows: list[Row]) -> None:
    verified = openssl_crl_verify(view.pki)
    assert verified.returncode == 0, f"openssl crl rejects crl.pem:\n{verified.stderr}"
    if not view.crl_fresh:
        return
    expected = {row.serial: row.reason for row in rows if row.status == "R"}
    listed = crl_reasons(view.pki)
    differences = {
        serial: (expected.get(serial, "no R row"), listed.get(serial, "not in the CRL"))
        for serial in expected.keys() | listed.keys()
        if expected.get(serial, "no R row") != listed.get(serial, "not in the CRL")
    }
    assert not differences, f"crl.pem and the R rows differ (serial: row, CRL): {differences}"
    if view.der_fresh and (view.pki / "crl.der").exists():
        assert crl_der_matches_pem(view.pki), "crl.der differs from crl.pem"


def row_certificate(pki: Path, row: Row, files: dict[Path, str]) -> Path:
    return next(path for path, serial in files.items() if serial == row.serial)


def verify(pki: Path, certificate: Path) -> subprocess.CompletedProcess[str]:
    return openssl(
        "verify",
        "-crl_check",
        "-CRLfile",
        str(pki / "crl.pem"),
        "-CAfile",
        str(pki / "ca.crt"),
        str(certificate),
    )


def check_verification(view: PKIView, rows: list[Row]) -> None:
    now = datetime.now(UTC)
    files = certificate_files(view.pki)
    for row in rows:
        certificate = row_certificate(view.pki, row, files)
        if row.status == "V" and row.expires > now:
            result = verify(view.pki, certificate)
            assert result.returncode == 0, (
                f"openssl verify rejects {certificate}:\n{result.stdout}{result.stderr}"
            )
        elif row.status == "R" and view.crl_fresh:
            result = verify(view.pki, certificate)
            output = result.stdout + result.stderr
            assert result.returncode != 0, f"openssl verify accepts revoked {certificate}"
            assert "certificate revoked" in output, output


def check_pki(view: PKIView, scratch: Path) -> None:
    """Run every check on the PKI; the module docstring lists them."""
    rows = read_rows(view.pki)
    check_index(view, rows)
    check_product_reads(view, rows)
    check_reference_reads(view, rows, scratch)
    check_openssl_reads(view, scratch)
    check_files(view.pki, rows)
    check_keys(view)
    check_crl(view, rows)
    check_verification(view, rows)
