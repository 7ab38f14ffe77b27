"""Building and signing the CRL from index.txt, as `openssl ca -gencrl` does.

easy-rsa's gen-crl runs `openssl ca -gencrl` with its openssl-easyrsa.cnf,
so the CRL matches what OpenSSL 3 builds from that config: a v2 CRL whose
issuer is the CA's subject, lastUpdate now, nextUpdate EASYRSA_CRL_DAYS
later, one entry per `R` row sorted by serial number, entry extensions
from the row's revocation field, and one CRL extension, authorityKeyIdentifier
with `keyid:always,issuer:always`. easy-rsa's config sets no `crlnumber`,
so the CRL carries no CRLNumber extension.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from easyrsa_py import der
from easyrsa_py.errors import EasyRSAError
from easyrsa_py.index import IndexRow

logger = logging.getLogger(__name__)

_RSA_OIDS = {
    "md5": "1.2.840.113549.1.1.4",
    "sha1": "1.2.840.113549.1.1.5",
    "sha224": "1.2.840.113549.1.1.14",
    "sha256": "1.2.840.113549.1.1.11",
    "sha384": "1.2.840.113549.1.1.12",
    "sha512": "1.2.840.113549.1.1.13",
}
_ECDSA_OIDS = {
    "sha1": "1.2.840.10045.4.1",
    "sha224": "1.2.840.10045.4.3.1",
    "sha256": "1.2.840.10045.4.3.2",
    "sha384": "1.2.840.10045.4.3.3",
    "sha512": "1.2.840.10045.4.3.4",
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "md5": hashes.MD5,
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

# CRLReason codes (RFC 5280 section 5.3.1) for the reason words OpenSSL's
# `ca` accepts in index.txt. The three pseudo reasons carry an extra value
# after a second comma and map onto a real reason plus one more extension.
_REASON_CODES = {
    "unspecified": 0,
    "keycompromise": 1,
    "cacompromise": 2,
    "affiliationchanged": 3,
    "superseded": 4,
    "cessationofoperation": 5,
    "certificatehold": 6,
    "removefromcrl": 8,
    "holdinstruction": 6,
    "keytime": 1,
    "cakeytime": 2,
}
_HOLD_INSTRUCTIONS = {
    "holdinstructionnone": "1.2.840.10040.2.1",
    "holdinstructioncallissuer": "1.2.840.10040.2.2",
    "holdinstructionreject": "1.2.840.10040.2.3",
}
_OID_REASON_CODE = der.oid("2.5.29.21")
_OID_HOLD_INSTRUCTION = der.oid("2.5.29.23")
_OID_INVALIDITY_DATE = der.oid("2.5.29.24")
_OID_AUTHORITY_KEY_ID = der.oid("2.5.29.35")


class CRLBuildError(EasyRSAError):
    """The CRL cannot be built from this CA key, digest or index row."""


@dataclass(frozen=True)
class SignedCRL:
    der: bytes
    entry_count: int
    last_update: datetime
    next_update: datetime

    @property
    def pem(self) -> bytes:
        return der_to_pem(self.der, "X509 CRL")


def der_to_pem(data: bytes, label: str) -> bytes:
    """Wrap DER in PEM with 64-character lines, as OpenSSL's PEM writer does."""
    encoded = base64.b64encode(data)
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    return b"".join(
        [f"-----BEGIN {label}-----\n".encode(), b"\n".join(lines), b"\n", f"-----END {label}-----\n".encode()]
    )


def _extension(oid_der: bytes, value: bytes) -> bytes:
    return der.sequence(oid_der, der.tlv(der.TAG_OCTET_STRING, value))


def _reason_extension(code: int) -> bytes:
    return _extension(_OID_REASON_CODE, der.tlv(der.TAG_ENUMERATED, bytes((code,))))


_REASON_EXTENSIONS = {code: _reason_extension(code) for code in set(_REASON_CODES.values())}


def _hold_instruction_oid(text: str) -> str:
    dotted = _HOLD_INSTRUCTIONS.get(text.lower(), text)
    parts = dotted.split(".")
    if len(parts) < 2 or not all(part.isdigit() for part in parts):
        raise CRLBuildError(
            f"Unknown hold instruction '{text}' in index.txt: expected holdInstructionNone, "
            "holdInstructionCallIssuer, holdInstructionReject or a dotted OID."
        )
    return dotted


def entry_extensions(row: IndexRow) -> bytes:
    """Return the encoded crlEntryExtensions for a revoked row, or b"" when it has none."""
    reason = row.reason
    if reason is None:
        return b""
    key = reason.lower()
    code = _REASON_CODES.get(key)
    if code is None:
        raise CRLBuildError(
            f"Unknown revocation reason '{reason}' for serial {row.serial} in index.txt."
        )
    extensions = [_REASON_EXTENSIONS[code]]
    extra = row.revocation_extra or ""
    # OpenSSL adds reasonCode, then invalidityDate, then holdInstructionCode.
    if key in ("keytime", "cakeytime"):
        invalidity = der.tlv(der.TAG_GENERALIZED_TIME, extra.encode("ascii"))
        extensions.append(_extension(_OID_INVALIDITY_DATE, invalidity))
    elif key == "holdinstruction":
        extensions.append(_extension(_OID_HOLD_INSTRUCTION, der.oid(_hold_instruction_oid(extra))))
    return der.sequence(*extensions)


def revoked_entries(rows: Iterable[IndexRow]) -> tuple[bytes, int]:
    """Encode every `R` row as a revokedCertificates entry, sorted by serial.

    OpenSSL sorts the entries (X509_CRL_sort) by serial number before it
    signs, so the order of rows in index.txt does not matter.
    """
    # This loop runs once per revoked certificate (tens of thousands in a
    # large PKI), so the encodings that repeat are cached.
    entries: list[tuple[int, bytes]] = []
    times: dict[str, bytes] = {}
    extensions_by_field: dict[str, bytes] = {}
    encode_length = der.encode_length
    for row in rows:
        if row.status != "R":
            continue
        date_text, _, rest = row.revocation.partition(",")
        time_der = times.get(date_text)
        if time_der is None:
            time_der = times[date_text] = der.time_from_text(date_text)
        extensions = extensions_by_field.get(rest) if rest else b""
        if extensions is None:
            extensions = extensions_by_field[rest] = entry_extensions(row)
        serial = row.serial_number
        serial_content = serial.to_bytes(serial.bit_length() // 8 + 1, "big")
        body = b"\x02" + encode_length(len(serial_content)) + serial_content + time_der + extensions
        entries.append((serial, b"\x30" + encode_length(len(body)) + body))
    entries.sort(key=itemgetter(0))
    return b"".join([entry for _, entry in entries]), len(entries)


def _subject_key_id(ca_cert: x509.Certificate) -> bytes:
    try:
        extension = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return extension.value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(ca_cert.public_key()).digest


def authority_key_identifier(ca_cert: x509.Certificate) -> bytes:
    """Encode authorityKeyIdentifier as `keyid:always,issuer:always` gives it.

    The key ID is the CA's subjectKeyIdentifier; the issuer and serial are
    those of the CA certificate itself, so for a sub-CA they name the root.
    """
    issuer_name, _ = der.certificate_names_der(ca_cert.tbs_certificate_bytes)
    key_id = der.tlv(0x80, _subject_key_id(ca_cert))
    issuer = der.tlv(0xA1, der.tlv(0xA4, issuer_name))
    serial = der.tlv(0x82, der.integer_content(ca_cert.serial_number))
    return _extension(_OID_AUTHORITY_KEY_ID, der.sequence(key_id, issuer, serial))


def _signature_algorithm(key: CertificateIssuerPrivateKeyTypes, digest: str) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return der.sequence(der.oid("1.3.101.112"))
    if isinstance(key, ed448.Ed448PrivateKey):
        return der.sequence(der.oid("1.3.101.113"))
    if isinstance(key, rsa.RSAPrivateKey):
        table, params = _RSA_OIDS, der.tlv(der.TAG_NULL, b"")
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        table, params = _ECDSA_OIDS, b""
    else:
        raise CRLBuildError(f"CA keys of type {type(key).__name__} are not supported for signing a CRL.")
    if digest not in table:
        raise CRLBuildError(
            f"Invalid digest '{digest}' for this CA key (EASYRSA_DIGEST or --digest): "
            f"use one of {', '.join(sorted(table))}."
        )
    return der.sequence(der.oid(table[digest]), params)


def _sign(key: CertificateIssuerPrivateKeyTypes, digest: str, data: bytes) -> bytes:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return key.sign(data)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), _HASHES[digest]())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(_HASHES[digest]()))
    raise CRLBuildError(f"CA keys of type {type(key).__name__} are not supported for signing a CRL.")


def build_crl(
    ca_cert: x509.Certificate,
    ca_key: CertificateIssuerPrivateKeyTypes,
    rows: Iterable[IndexRow],
    *,
    digest: str,
    days: int,
    now: datetime | None = None,
) -> SignedCRL:
    """Build and sign a v2 CRL listing every revoked row of the index."""
    last_update = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    next_update = last_update + timedelta(days=days)
    algorithm = _signature_algorithm(ca_key, digest)
    _, issuer_name = der.certificate_names_der(ca_cert.tbs_certificate_bytes)
    entries, count = revoked_entries(rows)

    parts = [
        der.integer(1),  # v2
        algorithm,
        issuer_name,
        der.time_value(last_update),
        der.time_value(next_update),
    ]
    if count:
        parts.append(der.tlv(der.TAG_SEQUENCE, entries))
    extensions = der.sequence(authority_key_identifier(ca_cert))
    parts.append(der.tlv(0xA0, extensions))
    tbs = der.sequence(*parts)

    signature = _sign(ca_key, digest, tbs)
    crl_der = der.sequence(tbs, algorithm, der.tlv(der.TAG_BIT_STRING, b"\x00" + signature))
    _check_signature(crl_der, ca_cert)
    logger.info("built CRL with %d entries, next update %s", count, next_update.isoformat())
    return SignedCRL(crl_der, count, last_update, next_update)


def _check_signature(crl_der: bytes, ca_cert: x509.Certificate) -> None:
    """Parse the new CRL back and verify it, so a bad CRL is never written."""
    try:
        parsed = x509.load_der_x509_crl(crl_der)
        valid = parsed.is_signature_valid(ca_cert.public_key())  # type: ignore[arg-type]
    except (ValueError, InvalidSignature) as error:
        raise CRLBuildError(f"The new CRL failed its self-check ({error}); nothing was written.") from None
    if not valid:
        raise CRLBuildError("The new CRL's signature does not verify with ca.crt; nothing was written.")
