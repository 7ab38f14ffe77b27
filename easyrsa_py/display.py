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


def multiline_dn(name_der: bytes, title: str = "subject") -> str:
    """Render an encoded Name as easy-rsa's prompts show it.

    easy-rsa runs `openssl x509 -subject -nameopt
    utf8,sep_multiline,space_eq,lname,align`: a `subject=` line, then one
    line per attribute, indented four spaces, with the long attribute name
    padded to 25 characters.
    """
    lines = [f"{title}="]
    for rdn in name_attributes(name_der):
        for dotted, tag, value in rdn:
            long_name = _LONG_NAMES.get(dotted) or SHORT_NAMES.get(dotted, dotted)
            lines.append(f"    {long_name:<25} = {_escape_value(_decode(tag, value))}")
    return "\n".join(lines)
