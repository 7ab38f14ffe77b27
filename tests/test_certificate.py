"""The DER certificate reader, checked against cryptography and openssl on real certificates."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from easyrsa_py.certificate import CertificateFile, check_request, read_certificate
from easyrsa_py.display import multiline_dn
from easyrsa_py.errors import FileFormatError
from easyrsa_py.names import oneline_from_der, subject_oneline

FIXTURES = Path(__file__).resolve().parent.parent / "pki_fixtures"
CERTIFICATES = sorted(FIXTURES.glob("*/pki/**/*.crt"))
REQUESTS = sorted(FIXTURES.glob("*/pki/**/*.req"))


def test_fixtures_have_certificates():
    assert len(CERTIFICATES) > 10
    assert len(REQUESTS) > 5


@pytest.mark.parametrize("path", CERTIFICATES, ids=lambda path: str(path.relative_to(FIXTURES)))
def test_fields_match_cryptography(path):
    expected = x509.load_pem_x509_certificate(path.read_bytes())
    found = read_certificate(path)
    assert found.der == expected.public_bytes(serialization.Encoding.DER)
    assert found.tbs == expected.tbs_certificate_bytes
    assert found.serial_number == expected.serial_number
    assert oneline_from_der(found.subject_der) == subject_oneline(expected.subject)
    assert oneline_from_der(found.issuer_der) == subject_oneline(expected.issuer)
    assert found.public_key() == expected.public_key()
    ski = expected.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert found.subject_key_identifier() == ski
    aki = expected.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert found.authority_serial_number() == aki.authority_cert_serial_number


@pytest.mark.parametrize("path", CERTIFICATES[:6], ids=lambda path: str(path.relative_to(FIXTURES)))
def test_not_after_text_matches_openssl(path):
    result = subprocess.run(
        ["openssl", "x509", "-in", path, "-noout", "-enddate", "-dateopt", "iso_8601"],
        capture_output=True, text=True, check=True,
    )
    # openssl prints e.g. notAfter=2029-03-08 15:47:08Z; the DER text is 290308154708Z.
    iso = result.stdout.strip().split("=", 1)[1]
    digits = iso.replace("-", "").replace(":", "").replace(" ", "")
    assert read_certificate(path).not_after_text.endswith(digits[2:] if len(digits) == 15 else digits)


@pytest.mark.parametrize("path", CERTIFICATES[:6], ids=lambda path: str(path.relative_to(FIXTURES)))
def test_multiline_dn_matches_openssl(path):
    result = subprocess.run(
        ["openssl", "x509", "-in", path, "-noout", "-subject",
         "-nameopt", "utf8,sep_multiline,space_eq,lname,align"],
        capture_output=True, text=True, check=True,
    )
    assert multiline_dn(read_certificate(path).subject_der) == result.stdout.rstrip("\n")


def test_computed_key_identifier_matches_cryptography():
    path = CERTIFICATES[0]
    expected = x509.SubjectKeyIdentifier.from_public_key(
        x509.load_pem_x509_certificate(path.read_bytes()).public_key()
    )
    assert read_certificate(path).computed_key_identifier() == expected.digest


@pytest.mark.parametrize("path", REQUESTS, ids=lambda path: str(path.relative_to(FIXTURES)))
def test_requests_accepted(path):
    check_request(path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a certificate\n",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nMIIB\n",
        b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    ],
    ids=["empty", "text", "short", "no-end", "bad-base64"],
)
def test_garbage_certificate_rejected(tmp_path, content):
    path = tmp_path / "bad.crt"
    path.write_bytes(content)
    with pytest.raises(FileFormatError) as caught:
        read_certificate(path)
    assert "bad.crt" in str(caught.value)
    assert "not a valid PEM certificate" in str(caught.value)


def test_truncated_certificate_rejected(tmp_path):
    der = read_certificate(CERTIFICATES[0]).der
    with pytest.raises(ValueError):
        CertificateFile.from_der(der[:-10])


def test_certificate_as_request_rejected(tmp_path):
    path = tmp_path / "bad.req"
    path.write_bytes(CERTIFICATES[0].read_bytes())
    with pytest.raises(FileFormatError, match="not a valid PEM certificate request"):
        check_request(path)


@pytest.mark.parametrize(
    "subject",
    [
        "/O=Org, Inc/CN=alice",
        "/CN= #lead<a>\"q\"\\\\;x",
        "/O=Org+OU=Unit/CN=multi",
        "/CN=tab\there",
        "/CN=Jürgen Groß",
    ],
)
def test_multiline_dn_escapes_nothing_as_openssl(tmp_path, subject):
    """easy-rsa's name options print each value as it is and join a multi-valued RDN with ' + '."""
    certificate = tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", tmp_path / "key.pem", "-out", certificate, "-subj", subject, "-multivalue-rdn",
         "-utf8"],
        capture_output=True, check=True,
    )
    result = subprocess.run(
        ["openssl", "x509", "-in", certificate, "-noout", "-subject",
         "-nameopt", "utf8,sep_multiline,space_eq,lname,align"],
        capture_output=True, text=True, check=True,
    )
    assert multiline_dn(read_certificate(certificate).subject_der) == result.stdout.rstrip("\n")
