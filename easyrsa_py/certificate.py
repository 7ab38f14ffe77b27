"""Reading the fields of PEM certificates and requests that revoke and gen-crl need.

Importing `cryptography.x509` takes about 40 ms, a third of a whole revoke
or gen-crl run on a small PKI. These commands need only a few fields
(serial, notAfter, issuer and subject as encoded, the public key and two
extensions), so they read them from the DER structure here. Keys,
signatures and everything else still go through `cryptography`.
"""

from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from easyrsa_py import der
from easyrsa_py.errors import FileFormatError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

_OID_SUBJECT_KEY_IDENTIFIER = "2.5.29.14"
_OID_AUTHORITY_KEY_IDENTIFIER = "2.5.29.35"
_TAG_BOOLEAN = 0x01


@dataclass(frozen=True)
class CertificateFile:
    """The fields of one X.509 certificate, each as encoded in it."""

    der: bytes
    tbs: bytes
    serial_number: int
    not_after_text: str  # UTCTime or GeneralizedTime text, as openssl ca copies it to index.txt
    issuer_der: bytes
    subject_der: bytes
    public_key_der: bytes  # the SubjectPublicKeyInfo
    extensions: dict[str, tuple[bool, bytes]]  # dotted OID -> (critical, extnValue content)

    @classmethod
    def from_der(cls, data: bytes) -> CertificateFile:
        """Parse a DER certificate; raises ValueError when its structure is wrong."""
        return _parse_certificate(data)

    def public_key(self) -> PublicKeyTypes:
        """Load the public key through cryptography; raises ValueError if unsupported."""
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        try:
            return load_der_public_key(self.public_key_der)
        except UnsupportedAlgorithm as error:
            raise ValueError(str(error)) from None

    def computed_key_identifier(self) -> bytes:
        """Return the SHA-1 of the public key bits (RFC 5280 section 4.2.1.2, method 1)."""
        fields = _sequence_children(self.public_key_der, 0, "subjectPublicKeyInfo")
        _, start, end = der.read_tlv(self.public_key_der, fields[1][1])
        # The first content octet of a BIT STRING counts its unused bits.
        return hashlib.sha1(self.public_key_der[start + 1 : end]).digest()

    def subject_key_identifier(self) -> bytes | None:
        extension = self.extensions.get(_OID_SUBJECT_KEY_IDENTIFIER)
        if extension is None:
            return None
        tag, start, end = der.read_tlv(extension[1], 0)
        if tag != der.TAG_OCTET_STRING:
            raise ValueError("subjectKeyIdentifier is not an OCTET STRING")
        return extension[1][start:end]

    def authority_serial_number(self) -> int | None:
        """Return authorityKeyIdentifier's authorityCertSerialNumber, if present."""
        extension = self.extensions.get(_OID_AUTHORITY_KEY_IDENTIFIER)
        if extension is None:
            return None
        value = extension[1]
        _, start, end = der.read_tlv(value, 0)
        for tag, element_start, _ in der.children(value, start, end):
            if tag == 0x82:
                _, serial_start, serial_end = der.read_tlv(value, element_start)
                return int.from_bytes(value[serial_start:serial_end], "big", signed=True)
        return None


def pem_blocks(data: bytes, label: str) -> list[bytes]:
    """Return the DER of each PEM block with this label; text around them is ignored."""
    begin = f"-----BEGIN {label}-----".encode()
    end = f"-----END {label}-----".encode()
    blocks = []
    position = data.find(begin)
    while position >= 0:
        stop = data.find(end, position)
        if stop < 0:
            raise ValueError(f"the {label} PEM block has no END line")
        body = data[position + len(begin) : stop]
        try:
            blocks.append(binascii.a2b_base64(body, strict_mode=False))
        except binascii.Error as error:
            raise ValueError(f"the {label} PEM block is not valid base64 ({error})") from None
        position = data.find(begin, stop)
    return blocks


def read_certificate(path: Path) -> CertificateFile:
    """Read the first certificate of a PEM file, raising FileFormatError if there is none."""
    data = path.read_bytes()
    try:
        blocks = pem_blocks(data, "CERTIFICATE")
        if not blocks:
            raise ValueError("no -----BEGIN CERTIFICATE----- block")
        return _parse_certificate(blocks[0])
    except ValueError as error:
        raise FileFormatError(path, None, f"not a valid PEM certificate ({error}).") from None
    except IndexError:
        # The DER reader indexes past the end of truncated or garbled data.
        raise FileFormatError(path, None, "not a valid PEM certificate (its DER data is cut short).") from None


def check_request(path: Path) -> None:
    """Raise FileFormatError unless `path` contains a structurally valid PEM request."""
    data = path.read_bytes()
    try:
        blocks = pem_blocks(data, "CERTIFICATE REQUEST") or pem_blocks(data, "NEW CERTIFICATE REQUEST")
        if not blocks:
            raise ValueError("no -----BEGIN CERTIFICATE REQUEST----- block")
        _check_request_der(blocks[0])
    except ValueError as error:
        raise FileFormatError(path, None, f"not a valid PEM certificate request ({error}).") from None
    except IndexError:
        raise FileFormatError(
            path, None, "not a valid PEM certificate request (its DER data is cut short)."
        ) from None


def _sequence_children(data: bytes, offset: int, what: str) -> list[tuple[int, int, int]]:
    tag, start, end = der.read_tlv(data, offset)
    if tag != der.TAG_SEQUENCE:
        raise ValueError(f"{what} is not a SEQUENCE")
    return der.children(data, start, end)


def _check_signed_envelope(data: bytes, what: str) -> tuple[int, int]:
    """Check SEQUENCE { body, AlgorithmIdentifier, BIT STRING } and return the body's span."""
    tag, start, end = der.read_tlv(data, 0)
    if tag != der.TAG_SEQUENCE or end != len(data):
        raise ValueError(f"the {what} is not one DER SEQUENCE")
    parts = der.children(data, start, end)
    if [part[0] for part in parts] != [der.TAG_SEQUENCE, der.TAG_SEQUENCE, der.TAG_BIT_STRING]:
        raise ValueError(f"the {what} does not have a body, a signature algorithm and a signature")
    return parts[0][1], parts[0][2]


def _parse_certificate(data: bytes) -> CertificateFile:
    tbs_start, tbs_end = _check_signed_envelope(data, "certificate")
    tbs = data[tbs_start:tbs_end]
    fields = _sequence_children(tbs, 0, "TBSCertificate")
    if fields and fields[0][0] == 0xA0:
        fields = fields[1:]
    if len(fields) < 6 or fields[0][0] != der.TAG_INTEGER:
        raise ValueError("the TBSCertificate lacks serial, names, validity or key")
    _, serial_start, serial_end = der.read_tlv(tbs, fields[0][1])
    validity = _sequence_children(tbs, fields[3][1], "validity")
    if len(validity) != 2:
        raise ValueError("validity must hold notBefore and notAfter")
    after_tag, after_start, after_end = der.read_tlv(tbs, validity[1][1])
    if after_tag not in (der.TAG_UTC_TIME, der.TAG_GENERALIZED_TIME):
        raise ValueError("notAfter is not a time")
    issuer = tbs[fields[2][1] : fields[2][2]]
    subject = tbs[fields[4][1] : fields[4][2]]
    der.name_attributes(issuer)
    der.name_attributes(subject)
    _sequence_children(tbs, fields[5][1], "subjectPublicKeyInfo")
    return CertificateFile(
        der=data,
        tbs=tbs,
        serial_number=int.from_bytes(tbs[serial_start:serial_end], "big", signed=True),
        not_after_text=tbs[after_start:after_end].decode("ascii"),
        issuer_der=issuer,
        subject_der=subject,
        public_key_der=tbs[fields[5][1] : fields[5][2]],
        extensions=_extensions(tbs, fields[6:]),
    )


def _extensions(tbs: bytes, optional_fields: list[tuple[int, int, int]]) -> dict[str, tuple[bool, bytes]]:
    found: dict[str, tuple[bool, bytes]] = {}
    for tag, start, _ in optional_fields:
        if tag != 0xA3:
            continue
        _, inner_start, _ = der.read_tlv(tbs, start)
        for extension_tag, extension_start, _ in _sequence_children(tbs, inner_start, "extensions"):
            if extension_tag != der.TAG_SEQUENCE:
                raise ValueError("an extension is not a SEQUENCE")
            parts = _sequence_children(tbs, extension_start, "extension")
            _, oid_start, oid_end = der.read_tlv(tbs, parts[0][1])
            critical = parts[1][0] == _TAG_BOOLEAN and tbs[der.read_tlv(tbs, parts[1][1])[1]] != 0
            value_tag, value_start, value_end = der.read_tlv(tbs, parts[-1][1])
            if value_tag != der.TAG_OCTET_STRING:
                raise ValueError("an extension value is not an OCTET STRING")
            found[der.oid_text(tbs[oid_start:oid_end])] = (critical, tbs[value_start:value_end])
    return found


def _check_request_der(data: bytes) -> None:
    info_start, _ = _check_signed_envelope(data, "request")
    fields = _sequence_children(data, info_start, "CertificationRequestInfo")
    tags = [field[0] for field in fields]
    if tags[:3] != [der.TAG_INTEGER, der.TAG_SEQUENCE, der.TAG_SEQUENCE]:
        raise ValueError("the request lacks version, subject or public key")
    der.name_attributes(data[fields[1][1] : fields[1][2]])
