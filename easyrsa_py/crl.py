"""Building and signing the CRL from index.txt, as `openssl ca -gencrl` does.

easy-rsa's gen-crl runs `openssl ca -gencrl` with its openssl-easyrsa.cnf,
and this module builds the same CRL that OpenSSL 3 builds from that config.
It is a v2 CRL whose issuer is the CA's subject, with lastUpdate now and
nextUpdate EASYRSA_CRL_DAYS later. It has one entry per `R` row, sorted by
serial number, with entry extensions from the row's revocation field. Its
one CRL extension is authorityKeyIdentifier with `keyid:always,issuer:always`.
easy-rsa's config sets no `crlnumber`, so there is no CRLNumber extension.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
)

from easyrsa_py import der
from easyrsa_py.certificate import CertificateFile
from easyrsa_py.errors import EasyRSAError

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


def entry_extensions(serial: str, revocation: str) -> bytes:
    """Return the encoded crlEntryExtensions for a revocation field, or b"" when it has none."""
    parts = revocation.split(",", 2)
    if len(parts) == 1:
        return b""
    reason = parts[1]
    key = reason.lower()
    code = _REASON_CODES.get(key)
    if code is None:
        raise CRLBuildError(f"Unknown revocation reason '{reason}' for serial {serial} in index.txt.")
    extensions = [_REASON_EXTENSIONS[code]]
    extra = parts[2] if len(parts) == 3 else ""
    # OpenSSL adds reasonCode, then invalidityDate, then holdInstructionCode.
    if key in ("keytime", "cakeytime"):
        invalidity = der.tlv(der.TAG_GENERALIZED_TIME, extra.encode("ascii"))
        extensions.append(_extension(_OID_INVALIDITY_DATE, invalidity))
    elif key == "holdinstruction":
        extensions.append(_extension(_OID_HOLD_INSTRUCTION, der.oid(_hold_instruction_oid(extra))))
    return der.sequence(*extensions)


def revoked_entries(serials: Sequence[str], revocations: Sequence[str]) -> bytes:
    """Encode revoked rows as revokedCertificates entries, sorted by serial.

    `serials` and `revocations` are the serial and revocation fields of the
    `R` rows, in parallel. OpenSSL sorts the entries (X509_CRL_sort) by
    serial number before it signs, so the order of rows in index.txt does
    not matter.
    """
    # This loop runs once per revoked certificate, tens of thousands of
    # times in a large PKI, so it encodes each entry with one formatting
    # step and caches the extensions, which repeat.
    extensions_by_field: dict[str, bytes] = {}
    sort_keys: list[bytes] = []
    entries: list[bytes] = []
    add_key = sort_keys.append
    add_entry = entries.append
    from_hex = bytes.fromhex
    for serial_text, revocation in zip(serials, revocations):
        date_text, _, rest = revocation.partition(",")
        if rest:
            extensions = extensions_by_field.get(rest)
            if extensions is None:
                extensions = extensions_by_field[rest] = entry_extensions(serial_text, revocation)
        else:
            extensions = b""
        content = from_hex(serial_text).lstrip(b"\0") or b"\0"
        if content[0] > 0x7F:
            content = b"\0" + content
        # The encoded INTEGER is tag, length, minimal content, so comparing
        # these bytes orders serials numerically.
        if len(content) < 0x80:
            integer = b"\x02%c%b" % (len(content), content)
        else:
            integer = der.tlv(der.TAG_INTEGER, content)
        time_tag = b"\x17\x0d" if len(date_text) == 13 else b"\x18\x0f"
        body = b"%b%b%b%b" % (integer, time_tag, date_text.encode("ascii"), extensions)
        add_key(integer)
        if len(body) < 0x80:
            add_entry(b"\x30%c%b" % (len(body), body))
        else:
            add_entry(b"\x30" + der.encode_length(len(body)) + body)
    order = sorted(range(len(entries)), key=sort_keys.__getitem__)
    return b"".join([entries[position] for position in order])


def _subject_key_id(ca_cert: CertificateFile) -> bytes:
    try:
        key_id = ca_cert.subject_key_identifier()
    except (ValueError, IndexError):
        raise CRLBuildError("The CA certificate's subjectKeyIdentifier extension is malformed.") from None
    # OpenSSL derives the key ID the same way when ca.crt has none.
    return key_id if key_id is not None else ca_cert.computed_key_identifier()


def authority_key_identifier(ca_cert: CertificateFile) -> bytes:
    """Encode authorityKeyIdentifier as `keyid:always,issuer:always` gives it.

    The key ID is the CA's subjectKeyIdentifier. The issuer and serial are
    those of the CA certificate itself, so for a sub-CA they name the root.
    """
    key_id = der.tlv(0x80, _subject_key_id(ca_cert))
    issuer = der.tlv(0xA1, der.tlv(0xA4, ca_cert.issuer_der))
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
    ca_cert: CertificateFile,
    ca_key: CertificateIssuerPrivateKeyTypes,
    serials: Sequence[str],
    revocations: Sequence[str],
    *,
    digest: str,
    days: int,
    now: datetime | None = None,
) -> SignedCRL:
    """Build and sign a v2 CRL from the serial and revocation fields of the revoked rows."""
    last_update = (now or datetime.now(UTC)).replace(microsecond=0)
    next_update = last_update + timedelta(days=days)
    algorithm = _signature_algorithm(ca_key, digest)
    issuer_name = ca_cert.subject_der
    entries = revoked_entries(serials, revocations)
    count = len(serials)

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
    _check_signature(tbs, signature, digest, ca_cert)
    logger.info("built CRL with %d entries, next update %s", count, next_update.isoformat())
    return SignedCRL(crl_der, count, last_update, next_update)


def _check_signature(tbs: bytes, signature: bytes, digest: str, ca_cert: CertificateFile) -> None:
    """Verify the new CRL's signature with the key in ca.crt, so a bad CRL is never written.

    This catches a CA key that does not belong to ca.crt and a faulty
    signature from a damaged key. The signature is checked over the
    TBSCertList as built, because `is_signature_valid` re-encodes a large
    CRL first and takes far longer.
    """
    try:
        public_key = ca_cert.public_key()
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, tbs, padding.PKCS1v15(), _HASHES[digest]())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, tbs, ec.ECDSA(_HASHES[digest]()))
        elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            public_key.verify(signature, tbs)
        else:
            raise CRLBuildError(f"Cannot verify a CRL with a {type(public_key).__name__} CA certificate.")
    except InvalidSignature:
        raise CRLBuildError(
            "The new CRL's signature does not verify with ca.crt, so the CA key may be damaged; "
            "nothing was written."
        ) from None
    except ValueError as error:
        raise CRLBuildError(f"The new CRL failed its self-check ({error}); nothing was written.") from None
