"""A text rendering of certificates and requests in the layout of `openssl x509|req -text`.

easy-rsa's show-cert, show-req and show-ca print OpenSSL's rendering with
`-nameopt utf8,sep_multiline,space_eq,lname,align`, and without `full`
also `-certopt|-reqopt no_pubkey,no_sigdump`. Field names, indents, the
date format and the colon-separated hex follow OpenSSL 3.0, whose output
the tests compare with this module's byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID

from easyrsa_py.crl_text import _SIGNATURE_NAMES, _aki_lines, _colon_hex, _date
from easyrsa_py.der import name_attributes
from easyrsa_py.display import attribute_text
from easyrsa_py.names import subject_oneline

# OpenSSL prints 15 bytes of a public key and 18 of a signature per line.
_KEY_BYTES_PER_LINE = 15
_SIGNATURE_BYTES_PER_LINE = 18
# OpenSSL prints a serial that fits a C long (8 bytes on 64-bit Linux) in decimal.
_LONG_MAX = 2**63 - 1

_KEY_USAGE_NAMES = (
    ("digital_signature", "Digital Signature"),
    ("content_commitment", "Non Repudiation"),
    ("key_encipherment", "Key Encipherment"),
    ("data_encipherment", "Data Encipherment"),
    ("key_agreement", "Key Agreement"),
    ("key_cert_sign", "Certificate Sign"),
    ("crl_sign", "CRL Sign"),
    ("encipher_only", "Encipher Only"),
    ("decipher_only", "Decipher Only"),
)

# OpenSSL's long names (OBJ_nid2ln) of extended key usages.
_EXTENDED_KEY_USAGE_NAMES = {
    "1.3.6.1.5.5.7.3.1": "TLS Web Server Authentication",
    "1.3.6.1.5.5.7.3.2": "TLS Web Client Authentication",
    "1.3.6.1.5.5.7.3.3": "Code Signing",
    "1.3.6.1.5.5.7.3.4": "E-mail Protection",
    "1.3.6.1.5.5.7.3.5": "IPSec End System",
    "1.3.6.1.5.5.7.3.6": "IPSec Tunnel",
    "1.3.6.1.5.5.7.3.7": "IPSec User",
    "1.3.6.1.5.5.7.3.8": "Time Stamping",
    "1.3.6.1.5.5.7.3.9": "OCSP Signing",
    "1.3.6.1.5.5.7.3.17": "ipsec Internet Key Exchange",
    "2.5.29.37.0": "Any Extended Key Usage",
    "1.3.6.1.5.2.3.4": "PKINIT Client Auth",
    "1.3.6.1.5.2.3.5": "Signing KDC Response",
    "1.3.6.1.4.1.311.20.2.2": "Microsoft Smartcard Login",
}

# Bits of the Netscape certificate type, most significant first.
_NETSCAPE_CERT_TYPES = (
    "SSL Client",
    "SSL Server",
    "S/MIME",
    "Object Signing",
    "Unused",
    "SSL CA",
    "S/MIME CA",
    "Object Signing CA",
)
_NETSCAPE_CERT_TYPE_OID = "2.16.840.1.113730.1.1"
_NETSCAPE_COMMENT_OID = "2.16.840.1.113730.1.13"

# OpenSSL's curve names, and the NIST name it adds for the NIST curves.
_CURVE_NAMES = {"secp256r1": "prime256v1", "secp192r1": "prime192v1"}
_NIST_CURVES = {
    "secp192r1": "P-192",
    "secp224r1": "P-224",
    "secp256r1": "P-256",
    "secp384r1": "P-384",
    "secp521r1": "P-521",
}


_EXTENSION_HEADERS = {
    "2.5.29.19": "X509v3 Basic Constraints",
    "2.5.29.14": "X509v3 Subject Key Identifier",
    "2.5.29.35": "X509v3 Authority Key Identifier",
    "2.5.29.15": "X509v3 Key Usage",
    "2.5.29.37": "X509v3 Extended Key Usage",
    "2.5.29.17": "X509v3 Subject Alternative Name",
    "2.5.29.18": "X509v3 Issuer Alternative Name",
    "2.5.29.31": "X509v3 CRL Distribution Points",
    "1.3.6.1.5.5.7.1.1": "Authority Information Access",
    _NETSCAPE_CERT_TYPE_OID: "Netscape Cert Type",
    _NETSCAPE_COMMENT_OID: "Netscape Comment",
}


def _hex_block(data: bytes, per_line: int, indent: str) -> list[str]:
    """Split colon-separated lowercase hex into lines, each but the last ending in ':'."""
    text = _colon_hex(data, upper=False)
    width = per_line * 3
    return [f"{indent}{text[start:start + width]}" for start in range(0, len(text), width)]


def _name_lines(title: str, name: x509.Name) -> list[str]:
    """Render a name as `-nameopt utf8,sep_multiline,space_eq,lname,align` does.

    Those options include no escaping option, so OpenSSL prints each value
    as it is, commas and control characters included. Each RDN gets
    one line, with the attributes of a multi-valued RDN joined by " + ".
    An empty name leaves one line of indentation.
    """
    rdns = name_attributes(name.public_bytes())
    lines = [f"        {title}:"]
    lines += [
        "            " + " + ".join(attribute_text(*attribute) for attribute in rdn) for rdn in rdns
    ]
    if not rdns:
        lines.append("            ")
    return lines


def serial_lines(serial: int) -> list[str]:
    """Render a serial as OpenSSL does: decimal and hex if it fits a long, else hex bytes."""
    if 0 <= serial <= _LONG_MAX:
        return [f"        Serial Number: {serial} ({serial:#x})"]
    magnitude = abs(serial)
    data = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
    negative = " (Negative)" if serial < 0 else ""
    return ["        Serial Number:", f"            {negative}{_colon_hex(data, upper=False)}"]


def signature_algorithm_name(oid: x509.ObjectIdentifier) -> str:
    return _SIGNATURE_NAMES.get(oid.dotted_string, oid.dotted_string)


def _key_usage_text(value: x509.KeyUsage) -> str:
    names = []
    for attribute, label in _KEY_USAGE_NAMES:
        try:
            present = getattr(value, attribute)
        except ValueError:
            # cryptography raises for encipher_only and decipher_only
            # unless keyAgreement is set, and OpenSSL then omits them.
            present = False
        if present:
            names.append(label)
    return ", ".join(names)


def _ip_address_text(packed: bytes) -> str:
    if len(packed) == 4:
        return ".".join(str(byte) for byte in packed)
    if len(packed) == 16:
        # OpenSSL 3.0 writes each 16-bit group in uppercase hex, uncompressed.
        groups = (int.from_bytes(packed[i : i + 2], "big") for i in range(0, 16, 2))
        return ":".join(f"{group:X}" for group in groups)
    return "<invalid>"


def general_name_text(name: x509.GeneralName) -> str:
    """Render one GeneralName as OpenSSL's i2v_GENERAL_NAME does."""
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"URI:{name.value}"
    if isinstance(name, x509.IPAddress):
        value = name.value
        if isinstance(value, (IPv4Network, IPv6Network)):
            # A network (address and mask) is valid only in name constraints.
            return f"IP Address:{_ip_address_text(value.network_address.packed + value.netmask.packed)}"
        return f"IP Address:{_ip_address_text(value.packed)}"
    if isinstance(name, x509.DirectoryName):
        return f"DirName:{subject_oneline(name.value)}"
    if isinstance(name, x509.RegisteredID):
        return f"Registered ID:{name.value.dotted_string}"
    return "othername:<unsupported>"


def _distribution_point_lines(value: x509.CRLDistributionPoints) -> list[str]:
    lines = []
    for point in value:
        if point.full_name is not None:
            lines.append("Full Name:")
            lines.extend(f"  {general_name_text(name)}" for name in point.full_name)
        if point.crl_issuer is not None:
            lines.append("CRL Issuer:")
            lines.extend(f"  {general_name_text(name)}" for name in point.crl_issuer)
    return lines


def _access_lines(value: x509.AuthorityInformationAccess) -> list[str]:
    labels = {"1.3.6.1.5.5.7.48.1": "OCSP", "1.3.6.1.5.5.7.48.2": "CA Issuers"}
    lines = []
    for description in value:
        dotted = description.access_method.dotted_string
        lines.append(f"{labels.get(dotted, dotted)} - {general_name_text(description.access_location)}")
    return lines


def _der_content(value: bytes) -> bytes:
    # Read a short-form or long-form DER length.
    length = value[1]
    if length < 0x80:
        return value[2 : 2 + length]
    size = length & 0x7F
    return value[2 + size : 2 + size + int.from_bytes(value[2 : 2 + size], "big")]


def _netscape_cert_type_text(raw: bytes) -> str:
    content = _der_content(raw)
    bits = content[1] if len(content) > 1 else 0
    return ", ".join(label for position, label in enumerate(_NETSCAPE_CERT_TYPES) if bits & (0x80 >> position))


def _printable(raw: bytes) -> str:
    # ASN1_STRING_print: bytes outside printable ASCII, except newlines, become '.'.
    return "".join(chr(byte) if 0x20 <= byte < 0x7F or byte in (0x0A, 0x0D) else "." for byte in raw)


def _unrecognized_lines(oid: str, raw: bytes) -> list[str]:
    if oid == _NETSCAPE_CERT_TYPE_OID:
        return [_netscape_cert_type_text(raw)]
    if oid == _NETSCAPE_COMMENT_OID:
        return [_der_content(raw).decode("utf-8", errors="replace")]
    return [_printable(raw)]


def _basic_constraints_text(value: x509.BasicConstraints) -> str:
    text = "CA:TRUE" if value.ca else "CA:FALSE"
    if value.path_length is not None:
        text += f", pathlen:{value.path_length}"
    return text


_RENDERERS: dict[x509.ObjectIdentifier, Callable[[Any], list[str]]] = {
    ExtensionOID.BASIC_CONSTRAINTS: lambda value: [_basic_constraints_text(value)],
    ExtensionOID.SUBJECT_KEY_IDENTIFIER: lambda value: [_colon_hex(value.digest)],
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER: _aki_lines,
    ExtensionOID.KEY_USAGE: lambda value: [_key_usage_text(value)],
    ExtensionOID.EXTENDED_KEY_USAGE: lambda value: [
        ", ".join(_EXTENDED_KEY_USAGE_NAMES.get(oid.dotted_string, oid.dotted_string) for oid in value)
    ],
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME: lambda value: [", ".join(map(general_name_text, value))],
    ExtensionOID.ISSUER_ALTERNATIVE_NAME: lambda value: [", ".join(map(general_name_text, value))],
    ExtensionOID.CRL_DISTRIBUTION_POINTS: _distribution_point_lines,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS: _access_lines,
}


def extension_lines(extension: x509.Extension[x509.ExtensionType], indent: int) -> list[str]:
    """Render one extension: a header line, then its value indented by four more spaces."""
    dotted = extension.oid.dotted_string
    header = _EXTENSION_HEADERS.get(dotted, dotted)
    critical = "critical" if extension.critical else ""
    value = extension.value
    renderer = _RENDERERS.get(extension.oid)
    if renderer is not None:
        body = renderer(value)
    elif isinstance(value, x509.UnrecognizedExtension):
        body = _unrecognized_lines(dotted, value.value)
    else:
        body = [_printable(value.public_bytes())]
    pad = " " * indent
    return [f"{pad}{header}: {critical}", *(f"{pad}    {line}" for line in body)]


def _rsa_key_lines(key: rsa.RSAPublicKey) -> list[str]:
    numbers = key.public_numbers()
    modulus = numbers.n.to_bytes(numbers.n.bit_length() // 8 + 1, "big")
    lines = [f"                Public-Key: ({key.key_size} bit)", "                Modulus:"]
    lines += _hex_block(modulus, _KEY_BYTES_PER_LINE, " " * 20)
    lines.append(f"                Exponent: {numbers.e} ({numbers.e:#x})")
    return lines


def _ec_key_lines(key: ec.EllipticCurvePublicKey) -> list[str]:
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    curve = key.curve.name
    lines = [f"                Public-Key: ({key.key_size} bit)", "                pub:"]
    lines += _hex_block(point, _KEY_BYTES_PER_LINE, " " * 20)
    lines.append(f"                ASN1 OID: {_CURVE_NAMES.get(curve, curve)}")
    if curve in _NIST_CURVES:
        lines.append(f"                NIST CURVE: {_NIST_CURVES[curve]}")
    return lines


def _edwards_key_lines(label: str, key: ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) -> list[str]:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    lines = [f"                {label} Public-Key:", "                pub:"]
    return lines + _hex_block(raw, _KEY_BYTES_PER_LINE, " " * 20)


def public_key_lines(key: Any) -> list[str]:
    """Render the Subject Public Key Info block for RSA, EC, Ed25519 and Ed448 keys."""
    if isinstance(key, rsa.RSAPublicKey):
        algorithm, body = "rsaEncryption", _rsa_key_lines(key)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        algorithm, body = "id-ecPublicKey", _ec_key_lines(key)
    elif isinstance(key, ed25519.Ed25519PublicKey):
        algorithm, body = "ED25519", _edwards_key_lines("ED25519", key)
    elif isinstance(key, ed448.Ed448PublicKey):
        algorithm, body = "ED448", _edwards_key_lines("ED448", key)
    else:
        # NOTE: DSA, DH and X25519 keys are never made by easy-rsa and are
        # shown by type only, where OpenSSL prints their parameters.
        algorithm, body = type(key).__name__, ["                (parameters not shown)"]
    return ["        Subject Public Key Info:", f"            Public Key Algorithm: {algorithm}", *body]


def _signature_lines(algorithm: str, signature: bytes) -> list[str]:
    return [
        f"    Signature Algorithm: {algorithm}",
        "    Signature Value:",
        *_hex_block(signature, _SIGNATURE_BYTES_PER_LINE, " " * 8),
    ]


def render_certificate(certificate: x509.Certificate, full: bool) -> str:
    """Return the certificate as easy-rsa's show-cert prints it, with the key and signature if `full`."""
    algorithm = signature_algorithm_name(certificate.signature_algorithm_oid)
    version = certificate.version.value
    lines = [
        "Certificate:",
        "    Data:",
        f"        Version: {version + 1} ({version:#x})",
        *serial_lines(certificate.serial_number),
        f"        Signature Algorithm: {algorithm}",
        *_name_lines("Issuer", certificate.issuer),
        "        Validity",
        f"            Not Before: {_date(certificate.not_valid_before_utc)}",
        f"            Not After : {_date(certificate.not_valid_after_utc)}",
        *_name_lines("Subject", certificate.subject),
    ]
    if full:
        lines += public_key_lines(certificate.public_key())
    if len(certificate.extensions):
        lines.append("        X509v3 extensions:")
        for extension in certificate.extensions:
            lines += extension_lines(extension, 12)
    if full:
        lines += _signature_lines(algorithm, certificate.signature)
    return "\n".join(lines)


def _request_attribute_lines(request: x509.CertificateSigningRequest) -> list[str]:
    attributes = list(request.attributes)
    if not attributes:
        return ["            (none)"]
    lines = []
    for attribute in attributes:
        if attribute.oid.dotted_string == "1.2.840.113549.1.9.14":
            continue  # the requested extensions follow under their own heading
        name = _ATTRIBUTE_NAMES.get(attribute.oid.dotted_string, attribute.oid.dotted_string)
        value = attribute.value.decode("utf-8", errors="replace")
        lines.append(f"            {name:<25}:{value}")
    return lines


_ATTRIBUTE_NAMES = {
    "1.2.840.113549.1.9.7": "challengePassword",
    "1.2.840.113549.1.9.2": "unstructuredName",
}


def render_request(request: x509.CertificateSigningRequest, full: bool) -> str:
    """Return the request as easy-rsa's show-req prints it, with the key and signature if `full`.

    OpenSSL 3.0 prints the "Requested Extensions:" heading even for a
    request with none, and so does this rendering.
    """
    lines = [
        "Certificate Request:",
        "    Data:",
        "        Version: 1 (0x0)",
        *_name_lines("Subject", request.subject),
    ]
    if full:
        lines += public_key_lines(request.public_key())
    lines.append("        Attributes:")
    lines += _request_attribute_lines(request)
    lines.append("            Requested Extensions:")
    for extension in request.extensions:
        lines += extension_lines(extension, 16)
    if full:
        lines += _signature_lines(signature_algorithm_name(request.signature_algorithm_oid), request.signature)
    return "\n".join(lines)
