"""Helpers for the issuing tests: parse what gen-req and sign-req write, and compare it.

Certificates and requests are compared field by field. Keys and serials are
random, so the subject key identifier is checked against each side's own key
and serials are replaced by a marker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID
from pkitools import extension_list, read_index

_SERIAL_FILE = re.compile(r"[0-9A-F]+\.pem$")
# Validity lengths may differ by the seconds between the two runs.
CLOCK_SLACK = timedelta(minutes=2)


def pem_part(data: bytes) -> bytes:
    """Return the PEM block of a file that may start with a text rendering."""
    start = data.index(b"-----BEGIN")
    return data[start:]


def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem_part(path.read_bytes()))


def load_request(path: Path) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(pem_part(path.read_bytes()))


def _key_description(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    return type(key).__name__


def _comparable_extensions(
    extensions: x509.Extensions, public_key: Any
) -> list[tuple[str, bool, bytes]]:
    """List the extensions with the key-dependent SKI replaced by a check of it."""
    expected_ski = x509.SubjectKeyIdentifier.from_public_key(public_key).digest
    result = []
    for oid, critical, value in extension_list(extensions):
        if oid == ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string:
            ski = extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            value = b"<own key hash>" if ski == expected_ski else b"<wrong key hash>"
        result.append((oid, critical, value))
    return result


@dataclass(frozen=True)
class CertificateSummary:
    """The parts of a certificate two tools must agree on."""

    subject: bytes
    issuer: bytes
    version: int
    signature_algorithm: str
    key: str
    extensions: list[tuple[str, bool, bytes]]
    serial_bits: int


def summarize_certificate(path: Path) -> tuple[CertificateSummary, timedelta]:
    """Return a certificate's summary and its validity length."""
    certificate = load_certificate(path)
    summary = CertificateSummary(
        subject=certificate.subject.public_bytes(),
        issuer=certificate.issuer.public_bytes(),
        version=certificate.version.value,
        signature_algorithm=certificate.signature_algorithm_oid.dotted_string,
        key=_key_description(certificate.public_key()),
        extensions=_comparable_extensions(certificate.extensions, certificate.public_key()),
        serial_bits=certificate.serial_number.bit_length(),
    )
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    return summary, lifetime


def summarize_request(path: Path) -> tuple[bytes, str, str, list[tuple[str, bool, bytes]]]:
    """Return a request's subject, key, signature algorithm and extensions."""
    request = load_request(path)
    return (
        request.subject.public_bytes(),
        _key_description(request.public_key()),
        request.signature_algorithm_oid.dotted_string,
        _comparable_extensions(request.extensions, request.public_key()),
    )


def key_format(path: Path) -> str:
    """Return the PEM label of a key file, which shows whether it is encrypted."""
    first = path.read_text().splitlines()[0]
    return first


def tree_shape(pki: Path) -> dict[str, int]:
    """Map each file and folder to its mode, with serial-named files renamed to a marker."""
    shape: dict[str, int] = {}
    for path in sorted(pki.rglob("*")):
        relative = str(path.relative_to(pki))
        if path.is_file() and _SERIAL_FILE.search(path.name):
            relative = str(path.parent.relative_to(pki) / "<serial>.pem")
        if ".tmp" in path.name or path.name.startswith("temp."):
            continue
        shape[relative] = path.stat().st_mode & 0o7777
    return shape


def new_paths(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {path: mode for path, mode in after.items() if path not in before}


def without_inline(paths: dict[str, int]) -> dict[str, int]:
    """Drop the inline/ files, which easy-rsa 3.1.0 does not write."""
    return {path: mode for path, mode in paths.items() if not path.startswith("inline")}


def last_row(pki: Path, exact_date: bool = False) -> list[str]:
    """Return the last index.txt row with its serial replaced by a marker.

    The expiry date becomes its length (13 for UTCTime, 15 for
    GeneralizedTime) unless `exact_date`, for runs with a fixed --enddate.
    """
    row = read_index(pki)[-1]
    date = row[1] if exact_date else f"<{len(row[1])} characters>"
    return [row[0], date, row[2], "<serial>", *row[4:]]


BASIC_CONSTRAINTS = ExtensionOID.BASIC_CONSTRAINTS.dotted_string
SUBJECT_ALT_NAME = ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string
NS_COMMENT = "2.16.840.1.113730.1.13"


def as_in_3_2_7(
    version: str, cert_type: str, extensions: list[tuple[str, bool, bytes]]
) -> list[tuple[str, bool, bytes]]:
    """Undo the known differences of older references, so the rest compares with 3.2.7.

    3.1.0 adds subjectAltName DNS:CN to server and serverClient certificates
    without --san. 3.1.0 and 3.2.2 ship a ca profile whose basicConstraints
    is not critical. 3.2.2's default nsComment names 3.2.2.
    """
    result = list(extensions)
    if version == "3.1.0" and cert_type in ("server", "serverClient"):
        names = [entry for entry in result if entry[0] == SUBJECT_ALT_NAME]
        assert names, "3.1.0 was expected to add a default subjectAltName"
        result.remove(names[0])
    if version == "3.2.2":
        # The default nsComment names the easy-rsa release.
        result = [
            (oid, critical, value.replace(b"(3.2.2)", b"(3.2.7)"))
            if oid == NS_COMMENT
            else (oid, critical, value)
            for oid, critical, value in result
        ]
    if version in ("3.1.0", "3.2.2") and cert_type == "ca":
        result = [
            (oid, True, value) if oid == BASIC_CONSTRAINTS else (oid, critical, value)
            for oid, critical, value in result
        ]
    return result


def compare_certificates(
    reference_path: Path, product_path: Path, version: str = "3.2.7", cert_type: str = ""
) -> None:
    """Assert two certificates agree field by field and in validity length."""
    reference_summary, reference_life = summarize_certificate(reference_path)
    product_summary, product_life = summarize_certificate(product_path)
    reference_summary = replace(
        reference_summary,
        extensions=as_in_3_2_7(version, cert_type, reference_summary.extensions),
    )
    assert product_summary.subject == reference_summary.subject
    assert product_summary.issuer == reference_summary.issuer
    assert product_summary.version == reference_summary.version
    assert product_summary.signature_algorithm == reference_summary.signature_algorithm
    assert product_summary.key == reference_summary.key
    assert product_summary.extensions == reference_summary.extensions
    assert abs(product_life - reference_life) <= CLOCK_SLACK


def key_of(path: Path, password: bytes | None = None) -> Any:
    return serialization.load_pem_private_key(path.read_bytes(), password)
