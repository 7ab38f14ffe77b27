"""Human-readable renderings that easy-rsa users see in prompts."""

from __future__ import annotations

from easyrsa_py.der import name_attributes
from easyrsa_py.names import SHORT_NAMES

# RFC 2253 section 2.4: characters escaped with a backslash in a DN value.
_SPECIAL = set(',+"\\<>;')

# OpenSSL's long names (OBJ_nid2ln) for the attributes easy-rsa writes and
# the other common ones; any other attribute shows its short name.
_LONG_NAMES = {
    "2.5.4.3": "commonName",
    "2.5.4.4": "surname",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "countryName",
    "2.5.4.7": "localityName",
    "2.5.4.8": "stateOrProvinceName",
    "2.5.4.9": "streetAddress",
    "2.5.4.10": "organizationName",
    "2.5.4.11": "organizationalUnitName",
    "2.5.4.12": "title",
    "2.5.4.17": "postalCode",
    "2.5.4.41": "name",
    "2.5.4.42": "givenName",
    "2.5.4.43": "initials",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "1.2.840.113549.1.9.1": "emailAddress",
    "0.9.2342.19200300.100.1.1": "userId",
    "0.9.2342.19200300.100.1.25": "domainComponent",
}

# OpenSSL's long names of name attributes where _LONG_NAMES has
# none and the long name differs from the short one (OpenSSL 3.0.19).
_MORE_LONG_NAMES = {
    "2.5.4.98": "countryCode3c",
    "2.5.4.99": "countryCode3n",
    "1.2.840.113549.1.9.14": "Extension Request",
    "1.2.840.113549.1.9.15": "S/MIME Capabilities",
    "0.9.2342.19200300.100.1.3": "rfc822Mailbox",
    "0.9.2342.19200300.100.1.44": "uniqueIdentifier",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionLocalityName",
    "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionStateOrProvinceName",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionCountryName",
    "1.2.643.100.111": "Signing Tool of Subject",
    "1.2.643.100.112": "Signing Tool of Issuer",
    "1.2.643.100.113": "Class of Signing Tool",
    "1.2.643.100.113.1": "Class of Signing Tool KC1",
    "1.2.643.100.113.2": "Class of Signing Tool KC2",
    "1.2.643.100.113.3": "Class of Signing Tool KC3",
    "1.2.643.100.113.4": "Class of Signing Tool KB1",
    "1.2.643.100.113.5": "Class of Signing Tool KB2",
    "1.2.643.100.113.6": "Class of Signing Tool KA1",
}


# The text encoding OpenSSL's `utf8` name option decodes each string type with.
_DECODINGS = {
    0x1E: "utf-16-be",  # BMPString
    0x1C: "utf-32-be",  # UniversalString
    0x14: "latin-1",  # TeletexString (T61), read as Latin-1 by OpenSSL
}


def _escape_character(char: str) -> str:
    if char in _SPECIAL:
        return "\\" + char
    if ord(char) < 0x20:
        return f"\\{ord(char):02X}"
    return char


def _escape_value(value: str) -> str:
    escaped = "".join(_escape_character(char) for char in value)
    if escaped.startswith((" ", "#")):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and len(escaped) > 1:
        escaped = escaped[:-1] + "\\ "
    return escaped


def _decode(tag: int, value: bytes) -> str:
    return value.decode(_DECODINGS.get(tag, "utf-8"), errors="replace")


def attribute_text(dotted: str, tag: int, value: bytes) -> str:
    """Render one name attribute as `-nameopt utf8,space_eq,lname,align` does.

    Those options escape nothing, so the value is printed as it is, commas
    and control characters included.
    """
    long_name = _LONG_NAMES.get(dotted) or _MORE_LONG_NAMES.get(dotted) or SHORT_NAMES.get(dotted)
    if long_name is None:
        # OpenSSL pads only the names in its table. An unknown type shows its dotted OID.
        return f"{dotted} = {_decode(tag, value)}"
    return f"{long_name:<25} = {_decode(tag, value)}"


def multiline_dn(name_der: bytes, title: str = "subject") -> str:
    """Render an encoded Name as easy-rsa's prompts and display-dn show it.

    easy-rsa runs `openssl x509 -subject -nameopt
    utf8,sep_multiline,space_eq,lname,align`: a `subject=` line, then one
    line per RDN, indented four spaces, with the attributes of a
    multi-valued RDN joined by " + ".
    """
    lines = [f"{title}="]
    for rdn in name_attributes(name_der):
        lines.append("    " + " + ".join(attribute_text(*attribute) for attribute in rdn))
    return "\n".join(lines)
