"""CRL building: structure, entry extensions and signatures for each CA key type."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from easyrsa_py.certificate import CertificateFile
from easyrsa_py.crl import CRLBuildError, build_crl
from easyrsa_py.index import parse_index

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=timezone.utc)


def _ca_file(cert):
    return CertificateFile.from_der(cert.public_bytes(serialization.Encoding.DER))


def _make_ca(key):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    digest = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x4B07)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, digest)
    )


def _rows(text: str):
    rows = parse_index(text.encode(), Path("index.txt"))
    revoked = [row for row in rows if row.status == "R"]
    return [row.serial for row in revoked], [row.revocation for row in revoked]


INDEX = (
    "V\t290308154708Z\t\t01\tunknown\t/CN=valid\n"
    "R\t290308154708Z\t261204154709Z,keyCompromise\t0C\tunknown\t/CN=kc\n"
    "R\t290308154708Z\t261204154709Z\t0B\tunknown\t/CN=none\n"
    "R\t290308154708Z\t261204154709Z,keyTime,20261101000000Z\t0D\tunknown\t/CN=kt\n"
    "R\t290308154708Z\t261204154709Z,holdInstruction,holdInstructionReject\t0E\tunknown\t/CN=hold\n"
    "R\t290308154708Z\t20550101000000Z,superseded\t80\tunknown\t/CN=future\n"
    "E\t240302000000Z\t\t02\tunknown\t/CN=expired\n"
)


@pytest.fixture(params=["rsa", "ec", "ed25519"])
def ca(request):
    if request.param == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif request.param == "ec":
        key = ec.generate_private_key(ec.SECP384R1())
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    return _make_ca(key), key


def test_crl_entries_sorted_with_extensions(ca):
    cert, key = ca
    signed = build_crl(_ca_file(cert), key, *_rows(INDEX), digest="sha256", days=180, now=NOW)
    crl = x509.load_der_x509_crl(signed.der)
    assert crl.is_signature_valid(cert.public_key())
    assert [entry.serial_number for entry in crl] == [0x0B, 0x0C, 0x0D, 0x0E, 0x80]
    assert signed.entry_count == 5
    by_serial = {entry.serial_number: entry for entry in crl}
    assert len(by_serial[0x0B].extensions) == 0
    assert by_serial[0x0C].extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    invalidity = by_serial[0x0D].extensions.get_extension_for_class(x509.InvalidityDate).value
    assert invalidity.invalidity_date_utc == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert by_serial[0x80].revocation_date_utc == datetime(2055, 1, 1, tzinfo=timezone.utc)


def test_crl_lifetime_and_issuer(ca):
    cert, key = ca
    signed = build_crl(_ca_file(cert), key, *_rows(INDEX), digest="sha256", days=180, now=NOW)
    crl = x509.load_der_x509_crl(signed.der)
    assert crl.last_update_utc == NOW
    assert crl.next_update_utc == NOW + timedelta(days=180)
    assert crl.issuer == cert.subject


def test_crl_authority_key_identifier(ca):
    cert, key = ca
    crl = x509.load_der_x509_crl(build_crl(_ca_file(cert), key, [], [], digest="sha256", days=1, now=NOW).der)
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert not aki.critical
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.value.key_identifier == ski.digest
    assert aki.value.authority_cert_issuer == [x509.DirectoryName(cert.issuer)]
    assert aki.value.authority_cert_serial_number == cert.serial_number
    assert len(crl.extensions) == 1


def test_crl_verifies_with_openssl(ca, tmp_path):
    cert, key = ca
    signed = build_crl(_ca_file(cert), key, *_rows(INDEX), digest="sha256", days=180, now=NOW)
    (tmp_path / "crl.pem").write_bytes(signed.pem)
    (tmp_path / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        ["openssl", "crl", "-in", tmp_path / "crl.pem", "-CAfile", tmp_path / "ca.crt", "-noout"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "verify OK" in result.stderr + result.stdout


def test_crl_digest_sha512_rsa():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _make_ca(key)
    crl = x509.load_der_x509_crl(build_crl(_ca_file(cert), key, [], [], digest="sha512", days=1, now=NOW).der)
    assert isinstance(crl.signature_hash_algorithm, hashes.SHA512)


def test_crl_unknown_digest_rejected():
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CRLBuildError, match="Invalid digest 'md5'"):
        build_crl(_ca_file(_make_ca(key)), key, [], [], digest="md5", days=1, now=NOW)


def test_crl_pem_lines_are_64_characters():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = build_crl(_ca_file(_make_ca(key)), key, *_rows(INDEX), digest="sha256", days=1, now=NOW).pem
    lines = pem.decode().splitlines()
    assert lines[0] == "-----BEGIN X509 CRL-----"
    assert lines[-1] == "-----END X509 CRL-----"
    assert all(len(line) == 64 for line in lines[1:-2])
