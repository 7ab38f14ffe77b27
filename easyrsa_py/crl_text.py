"""A text rendering of a CRL in the layout of `openssl crl -noout -text`.

easy-rsa's show-crl prints OpenSSL's rendering, and operators compare it by
eye, so the field names, the date format and the colon-separated hex follow
OpenSSL 3.0.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import CRLEntryExtensionOID, ExtensionOID

from easyrsa_py.names import subject_oneline

_SIGNATURE_NAMES = {
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.3.101.112": "ED25519",
    "1.3.101.113": "ED448",
}

# OpenSSL's names for CRLReason values (crypto/x509/v3_enum.c).
_REASON_TEXT = {
    x509.ReasonFlags.unspecified: "Unspecified",
    x509.ReasonFlags.key_compromise: "Key Compromise",
    x509.ReasonFlags.ca_compromise: "CA Compromise",
    x509.ReasonFlags.affiliation_changed: "Affiliation Changed",
    x509.ReasonFlags.superseded: "Superseded",
    x509.ReasonFlags.cessation_of_operation: "Cessation Of Operation",
    x509.ReasonFlags.certificate_hold: "Certificate Hold",
    x509.ReasonFlags.remove_from_crl: "Remove From CRL",
    x509.ReasonFlags.privilege_withdrawn: "Privilege Withdrawn",
    x509.ReasonFlags.aa_compromise: "AA Compromise",
}


_HOLD_INSTRUCTION_OID = "2.5.29.23"
# DER encodings of the three hold instruction OIDs of RFC 5280 section 5.3.2.
_HOLD_INSTRUCTION_TEXT = {
    bytes.fromhex("06072a8648ce380201"): "Hold Instruction None",
    bytes.fromhex("06072a8648ce380202"): "Hold Instruction Call Issuer",
    bytes.fromhex("06072a8648ce380203"): "Hold Instruction Reject",
}


def _colon_hex(data: bytes, upper: bool = True) -> str:
    text = data.hex().upper() if upper else data.hex()
    return ":".join(text[i : i + 2] for i in range(0, len(text), 2))


def _date(when: datetime) -> str:
    return f"{when:%b} {when.day:2d} {when:%H:%M:%S %Y} GMT"


def _comma_name(name: x509.Name) -> str:
    parts = []
    for attribute in name:
        short = attribute.oid._name
        short = _SHORT_NAMES.get(short, short)
        value = attribute.value
        text = value if isinstance(value, str) else value.hex()
        parts.append(f"{short} = {text}")
    return ", ".join(parts)


_SHORT_NAMES = {
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "commonName": "CN",
    "domainComponent": "DC",
    "userID": "UID",
    "streetAddress": "street",
    "surname": "SN",
    "givenName": "GN",
}


def _serial_text(number: int) -> str:
    text = f"{number:X}"
    return text if len(text) % 2 == 0 else "0" + text


def _aki_lines(value: x509.AuthorityKeyIdentifier) -> list[str]:
    lines = []
    if value.key_identifier is not None:
        lines.append(f"keyid:{_colon_hex(value.key_identifier)}")
    for general_name in value.authority_cert_issuer or []:
        if isinstance(general_name, x509.DirectoryName):
            lines.append(f"DirName:{subject_oneline(general_name.value)}")
    if value.authority_cert_serial_number is not None:
        lines.append(f"serial:{_colon_hex(bytes.fromhex(_serial_text(value.authority_cert_serial_number)))}")
    return lines


def _extension_lines(extension: x509.Extension[x509.ExtensionType], indent: str) -> list[str]:
    # OpenSSL prints ": critical" or ": " (with the space) after the name.
    critical = "critical" if extension.critical else ""
    value = extension.value
    if extension.oid == ExtensionOID.AUTHORITY_KEY_IDENTIFIER:
        header, body = "X509v3 Authority Key Identifier", _aki_lines(value)  # type: ignore[arg-type]
    elif extension.oid == ExtensionOID.CRL_NUMBER:
        header, body = "X509v3 CRL Number", [str(value.crl_number)]  # type: ignore[attr-defined]
    elif extension.oid == CRLEntryExtensionOID.CRL_REASON:
        header, body = "X509v3 CRL Reason Code", [_REASON_TEXT[value.reason]]  # type: ignore[attr-defined]
    elif extension.oid == CRLEntryExtensionOID.INVALIDITY_DATE:
        header, body = "Invalidity Date", [_date(value.invalidity_date_utc)]  # type: ignore[attr-defined]
    elif extension.oid.dotted_string == _HOLD_INSTRUCTION_OID:
        raw = getattr(value, "value", b"")
        header, body = "Hold Instruction Code", [_HOLD_INSTRUCTION_TEXT.get(raw, raw.hex())]
    else:
        header, body = extension.oid.dotted_string, [repr(value)]
    lines = [f"{indent}{header}: {critical}"]
    lines.extend(f"{indent}    {line}" for line in body)
    return lines


def render_crl(crl: x509.CertificateRevocationList) -> str:
    """Return the CRL as `openssl crl -noout -text` would print it."""
    dotted = crl.signature_algorithm_oid.dotted_string
    algorithm = _SIGNATURE_NAMES.get(dotted, dotted)
    lines = [
        "Certificate Revocation List (CRL):",
        "        Version 2 (0x1)",
        f"        Signature Algorithm: {algorithm}",
        f"        Issuer: {_comma_name(crl.issuer)}",
        f"        Last Update: {_date(crl.last_update_utc)}",
    ]
    if crl.next_update_utc is not None:
        lines.append(f"        Next Update: {_date(crl.next_update_utc)}")
    else:
        lines.append("        Next Update: NONE")

    if len(crl.extensions):
        lines.append("        CRL extensions:")
        for extension in crl.extensions:
            lines.extend(_extension_lines(extension, "            "))

    entries = list(crl)
    lines.append("Revoked Certificates:" if entries else "No Revoked Certificates.")
    for entry in entries:
        lines.append(f"    Serial Number: {_serial_text(entry.serial_number)}")
        lines.append(f"        Revocation Date: {_date(entry.revocation_date_utc)}")
        if len(entry.extensions):
            lines.append("        CRL entry extensions:")
            for extension in entry.extensions:
                lines.extend(_extension_lines(extension, "            "))

    lines.append(f"    Signature Algorithm: {algorithm}")
    lines.append("    Signature Value:")
    signature = _colon_hex(crl.signature, upper=False)
    width = 18 * 3  # OpenSSL prints 18 signature bytes per line
    for start in range(0, len(signature), width):
        lines.append(f"        {signature[start:start + width]}")
    return "\n".join(lines)
