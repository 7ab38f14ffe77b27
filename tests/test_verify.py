"""verify-cert (and 3.1's verify), compared with the real easy-rsa and `openssl verify`.

The real script prints `openssl verify`'s result and a status notice. Both
tools must agree on the status, on OpenSSL's error number, depth and text,
and on the exit code with and without batch mode.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pkitools import pki_state, run_product

from easyrsa_py.verify import check_certificate

ERROR_LINE = re.compile(r"^error (\d+) at (\d+) depth lookup: (.*)$", re.MULTILINE)
STATUS_LINE = re.compile(r"Verification status: (GOOD|FAILED)")


def load_ca(pki: Path) -> tuple[x509.Certificate, Any]:
    certificate = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((pki / "private" / "ca.key").read_bytes(), None)
    return certificate, key


def issue(
    pki: Path,
    name: str,
    *,
    not_before: datetime,
    not_after: datetime,
    self_signed: bool = False,
    authority_serial: int | None = None,
) -> Path:
    """Write issued/NAME.crt signed by the PKI's CA (or by its own key)."""
    ca, ca_key = load_ca(pki)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if self_signed else ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if authority_serial is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(
                x509.SubjectKeyIdentifier.from_public_key(ca.public_key()).digest,
                [x509.DirectoryName(ca.issuer)],
                authority_serial,
            ),
            critical=False,
        )
    certificate = builder.sign(key if self_signed else ca_key, hashes.SHA256())
    path = pki / "issued" / f"{name}.crt"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def tamper(path: Path) -> None:
    """Flip one bit of the signature of the certificate at `path`."""
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    der = bytearray(certificate.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 1
    path.write_bytes(x509.load_der_x509_certificate(bytes(der)).public_bytes(serialization.Encoding.PEM))


def foreign(pki: Path, other: Path, name: str) -> None:
    (pki / "issued" / f"{name}.crt").write_bytes((other / "issued" / "alice.crt").read_bytes())


NOW = datetime.now(UTC)
PREPARATIONS = {
    "valid": ("alice", None),
    "expired": ("dave", None),
    "not yet valid": (
        "future",
        lambda pki, other: issue(pki, "future", not_before=NOW + timedelta(days=10), not_after=NOW + timedelta(days=20)),
    ),
    "bad signature": ("alice", lambda pki, other: tamper(pki / "issued" / "alice.crt")),
    "other CA": ("stranger", lambda pki, other: foreign(pki, other, "stranger")),
    "self-signed": (
        "selfie",
        lambda pki, other: issue(
            pki, "selfie", not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=1), self_signed=True
        ),
    ),
    "self-signed and expired": (
        "oldselfie",
        lambda pki, other: issue(
            pki, "oldselfie", not_before=NOW - timedelta(days=9), not_after=NOW - timedelta(days=1), self_signed=True
        ),
    ),
    "authority serial mismatch": (
        "akid",
        lambda pki, other: issue(
            pki, "akid", not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=1), authority_serial=12345
        ),
    ),
}


def outcome(result: subprocess.CompletedProcess[str]) -> tuple[str | None, list[tuple[str, str, str]]]:
    text = result.stdout + result.stderr
    status = STATUS_LINE.search(text)
    return (status[1] if status else None), ERROR_LINE.findall(text)


@pytest.mark.reference
@pytest.mark.parametrize("case", list(PREPARATIONS))
@pytest.mark.parametrize("version", ["3.2.2", "3.2.7"])
def test_verify_matches_reference(case: str, version: str, pki_copy: Any, reference_for: Any) -> None:
    reference = reference_for(version)
    name, prepare = PREPARATIONS[case]
    ref_pki, py_pki = pki_copy("v3.2.7-rsa"), pki_copy("v3.2.7-rsa")
    if prepare is not None:
        other = pki_copy("v3.2.7-ed25519")
        prepare(ref_pki, other)
        (py_pki / "issued" / f"{name}.crt").write_bytes((ref_pki / "issued" / f"{name}.crt").read_bytes())
    for batch in (True, False):
        expected = reference.run(ref_pki, "verify-cert", name, batch=batch, check=False)
        actual = run_product(py_pki, "verify-cert", name, batch=batch)
        assert outcome(actual) == outcome(expected)
        assert actual.returncode == expected.returncode, (batch, expected.stdout)


@pytest.mark.reference
@pytest.mark.parametrize("fixture", ["v3.2.7-ed25519", "v3.2.2-ec"])
def test_verify_other_algorithms(fixture: str, pki_copy: Any, reference_for: Any) -> None:
    pki = pki_copy(fixture)
    expected = reference_for("3.2.7").run(pki, "verify-cert", "alice", check=False)
    actual = run_product(pki, "verify-cert", "alice")
    assert outcome(actual) == outcome(expected) == ("GOOD", [])
    assert actual.returncode == expected.returncode == 0
    assert f"{pki}/issued/alice.crt: OK" in actual.stdout


@pytest.mark.reference
@pytest.mark.parametrize("name", ["alice", "dave"])
def test_verify_31_name(name: str, pki_copy: Any, reference_for: Any) -> None:
    pki = pki_copy("v3.1.0-rsa")
    expected = reference_for("3.1.0").run(pki, "verify", name, "batch", check=False)
    actual = run_product(pki, "verify", name, "batch")
    assert outcome(actual)[1] == outcome(expected)[1]
    assert actual.returncode == expected.returncode


@pytest.mark.reference
def test_verify_31_batch_option_differs(pki_copy: Any, reference_for: Any) -> None:
    # 3.1.0 exits 1 only for the word 'batch', and 0 under --batch. easyrsa_py
    # follows 3.2.7, where --batch also makes a failure exit 1.
    pki = pki_copy("v3.1.0-rsa")
    expected = reference_for("3.1.0").run(pki, "verify", "dave", check=False)
    actual = run_product(pki, "verify", "dave")
    assert expected.returncode == 0
    assert actual.returncode == 1


@pytest.mark.parametrize("when", ["2200-01-01", "2123-12-31", "2020-06-01", "2027-01-01", "2030-01-01"])
def test_check_matches_openssl_attime(when: str, pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    moment = datetime.fromisoformat(when).replace(tzinfo=UTC)
    path = pki / "issued" / "alice.crt"
    result = subprocess.run(
        ["openssl", "verify", "-attime", str(int(moment.timestamp())), "-CAfile", str(pki / "ca.crt"), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    failures = check_certificate(path, pki / "ca.crt", now=moment)
    expected = ERROR_LINE.findall(result.stdout + result.stderr)
    actual = [(str(failure.code), str(failure.depth), failure.text) for failure in failures]
    assert actual == expected


def test_check_rsa_ca_key_mismatch(pki_copy: Any) -> None:
    # A certificate with the CA's name, signed by a different key, fails the signature check.
    pki = pki_copy("v3.2.7-rsa")
    ca, _ = load_ca(pki)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mallory")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = pki / "issued" / "mallory.crt"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    failures = check_certificate(path, pki / "ca.crt")
    assert [(failure.code, failure.depth, failure.subject) for failure in failures] == [(7, 0, "CN = mallory")]


def test_verify_output_lines(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    good = run_product(pki, "verify-cert", "alice")
    assert good.stdout == f"{pki}/issued/alice.crt: OK\n"
    assert "  Certificate name:    alice\n  Verification status: GOOD" in good.stderr
    bad = run_product(pki, "verify-cert", "dave")
    assert bad.stdout == ""
    assert "CN = dave\nerror 10 at 0 depth lookup: certificate has expired\n" in bad.stderr
    assert f"error {pki}/issued/dave.crt: verification failed" in bad.stderr


def test_verify_silent_ssl_hides_ok(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "--silent-ssl", "verify-cert", "alice")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "Verification status: GOOD" in result.stderr


def test_verify_batch_word_sets_exit(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "verify-cert", "dave", "batch", batch=False)
    assert result.returncode == 1
    assert "Verification status: FAILED" in result.stderr


def test_verify_unknown_option_warns(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "verify-cert", "alice", "loud")
    assert result.returncode == 0
    assert "Ignoring unknown option 'loud'" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("verify-cert",), "Missing certificate name"),
        (("verify-cert", ""), "Missing certificate name"),
        (("verify-cert", "nobody"), "No certificate at"),
        (("verify-cert", "bob"), "No certificate at"),
        (("verify-cert", "../issued/alice"), "Invalid certificate name"),
        (("verify-cert", "a/b"), "Invalid certificate name"),
        (("verify-cert", "/etc/passwd"), "Invalid certificate name"),
    ],
)
def test_verify_bad_input(args: tuple[str, ...], message: str, pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    result = run_product(pki, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert pki_state(pki) == before


def test_verify_invalid_certificate_file(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    (pki / "issued" / "alice.crt").write_text("garbage\n")
    result = run_product(pki, "verify-cert", "alice")
    assert result.returncode == 1
    assert "alice.crt" in result.stderr
    assert "not a valid PEM certificate" in result.stderr
