"""OpenSSL's one-line rendering of an X.509 name, as `openssl ca` stores it.

`openssl ca` writes the subject of each certificate it issues into the sixth
field of index.txt with `X509_NAME_oneline()`. easyrsa_py must write the same
text so that the real script and OpenSSL find its rows, and the rules here
follow crypto/x509/x509_obj.c in OpenSSL 3.0.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from easyrsa_py.der import name_attributes

if TYPE_CHECKING:
    from cryptography import x509

logger = logging.getLogger(__name__)

# OpenSSL's short name (OBJ_nid2sn) for every name attribute type that
# OpenSSL 3.0.19 defines under the X.520, PKCS #9, pilot (RFC 1274/4519),
# EV jurisdiction and Russian registry arcs. Where OpenSSL defines only a
# long name, OBJ_nid2sn returns that long name, and so does this table.
# NOTE: an OID that OpenSSL knows outside these arcs (say an algorithm OID
# misused as an attribute type) renders here as dotted text but under its
# OpenSSL name in a real index.txt.
SHORT_NAMES: dict[str, str] = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "2.5.4.13": "description",
    "2.5.4.14": "searchGuide",
    "2.5.4.15": "businessCategory",
    "2.5.4.16": "postalAddress",
    "2.5.4.17": "postalCode",
    "2.5.4.18": "postOfficeBox",
    "2.5.4.19": "physicalDeliveryOfficeName",
    "2.5.4.20": "telephoneNumber",
    "2.5.4.21": "telexNumber",
    "2.5.4.22": "teletexTerminalIdentifier",
    "2.5.4.23": "facsimileTelephoneNumber",
    "2.5.4.24": "x121Address",
    "2.5.4.25": "internationaliSDNNumber",
    "2.5.4.26": "registeredAddress",
    "2.5.4.27": "destinationIndicator",
    "2.5.4.28": "preferredDeliveryMethod",
    "2.5.4.29": "presentationAddress",
    "2.5.4.30": "supportedApplicationContext",
    "2.5.4.31": "member",
    "2.5.4.32": "owner",
    "2.5.4.33": "roleOccupant",
    "2.5.4.34": "seeAlso",
    "2.5.4.35": "userPassword",
    "2.5.4.36": "userCertificate",
    "2.5.4.37": "cACertificate",
    "2.5.4.38": "authorityRevocationList",
    "2.5.4.39": "certificateRevocationList",
    "2.5.4.40": "crossCertificatePair",
    "2.5.4.41": "name",
    "2.5.4.42": "GN",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier",
    "2.5.4.45": "x500UniqueIdentifier",
    "2.5.4.46": "dnQualifier",
    "2.5.4.47": "enhancedSearchGuide",
    "2.5.4.48": "protocolInformation",
    "2.5.4.49": "distinguishedName",
    "2.5.4.50": "uniqueMember",
    "2.5.4.51": "houseIdentifier",
    "2.5.4.52": "supportedAlgorithms",
    "2.5.4.53": "deltaRevocationList",
    "2.5.4.54": "dmdName",
    "2.5.4.65": "pseudonym",
    "2.5.4.72": "role",
    "2.5.4.97": "organizationIdentifier",
    "2.5.4.98": "c3",
    "2.5.4.99": "n3",
    "2.5.4.100": "dnsName",
    "1.2.840.113549.1.9.1": "emailAddress",
    "1.2.840.113549.1.9.2": "unstructuredName",
    "1.2.840.113549.1.9.3": "contentType",
    "1.2.840.113549.1.9.4": "messageDigest",
    "1.2.840.113549.1.9.5": "signingTime",
    "1.2.840.113549.1.9.6": "countersignature",
    "1.2.840.113549.1.9.7": "challengePassword",
    "1.2.840.113549.1.9.8": "unstructuredAddress",
    "1.2.840.113549.1.9.9": "extendedCertificateAttributes",
    "1.2.840.113549.1.9.14": "extReq",
    "1.2.840.113549.1.9.15": "SMIME-CAPS",
    "1.2.840.113549.1.9.20": "friendlyName",
    "1.2.840.113549.1.9.21": "localKeyID",
    "1.2.840.113549.1.9.22.1": "x509Certificate",
    "1.2.840.113549.1.9.22.2": "sdsiCertificate",
    "1.2.840.113549.1.9.23.1": "x509Crl",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.2": "textEncodedORAddress",
    "0.9.2342.19200300.100.1.3": "mail",
    "0.9.2342.19200300.100.1.4": "info",
    "0.9.2342.19200300.100.1.5": "favouriteDrink",
    "0.9.2342.19200300.100.1.6": "roomNumber",
    "0.9.2342.19200300.100.1.7": "photo",
    "0.9.2342.19200300.100.1.8": "userClass",
    "0.9.2342.19200300.100.1.9": "host",
    "0.9.2342.19200300.100.1.10": "manager",
    "0.9.2342.19200300.100.1.11": "documentIdentifier",
    "0.9.2342.19200300.100.1.12": "documentTitle",
    "0.9.2342.19200300.100.1.13": "documentVersion",
    "0.9.2342.19200300.100.1.14": "documentAuthor",
    "0.9.2342.19200300.100.1.15": "documentLocation",
    "0.9.2342.19200300.100.1.20": "homeTelephoneNumber",
    "0.9.2342.19200300.100.1.21": "secretary",
    "0.9.2342.19200300.100.1.22": "otherMailbox",
    "0.9.2342.19200300.100.1.23": "lastModifiedTime",
    "0.9.2342.19200300.100.1.24": "lastModifiedBy",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.26": "aRecord",
    "0.9.2342.19200300.100.1.27": "pilotAttributeType27",
    "0.9.2342.19200300.100.1.28": "mXRecord",
    "0.9.2342.19200300.100.1.29": "nSRecord",
    "0.9.2342.19200300.100.1.30": "sOARecord",
    "0.9.2342.19200300.100.1.31": "cNAMERecord",
    "0.9.2342.19200300.100.1.37": "associatedDomain",
    "0.9.2342.19200300.100.1.38": "associatedName",
    "0.9.2342.19200300.100.1.39": "homePostalAddress",
    "0.9.2342.19200300.100.1.40": "personalTitle",
    "0.9.2342.19200300.100.1.41": "mobileTelephoneNumber",
    "0.9.2342.19200300.100.1.42": "pagerTelephoneNumber",
    "0.9.2342.19200300.100.1.43": "friendlyCountryName",
    "0.9.2342.19200300.100.1.44": "uid",
    "0.9.2342.19200300.100.1.45": "organizationalStatus",
    "0.9.2342.19200300.100.1.46": "janetMailbox",
    "0.9.2342.19200300.100.1.47": "mailPreferenceOption",
    "0.9.2342.19200300.100.1.48": "buildingName",
    "0.9.2342.19200300.100.1.49": "dSAQuality",
    "0.9.2342.19200300.100.1.50": "singleLevelQuality",
    "0.9.2342.19200300.100.1.51": "subtreeMinimumQuality",
    "0.9.2342.19200300.100.1.52": "subtreeMaximumQuality",
    "0.9.2342.19200300.100.1.53": "personalSignature",
    "0.9.2342.19200300.100.1.54": "dITRedirect",
    "0.9.2342.19200300.100.1.55": "audio",
    "0.9.2342.19200300.100.1.56": "documentPublisher",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL",
    "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
    "1.2.643.3.131.1.1": "INN",
    "1.2.643.100.1": "OGRN",
    "1.2.643.100.3": "SNILS",
    "1.2.643.100.5": "OGRNIP",
    "1.2.643.100.111": "subjectSignTool",
    "1.2.643.100.112": "issuerSignTool",
    "1.2.643.100.113": "classSignTool",
    "1.2.643.100.113.1": "classSignToolKC1",
    "1.2.643.100.113.2": "classSignToolKC2",
    "1.2.643.100.113.3": "classSignToolKC3",
    "1.2.643.100.113.4": "classSignToolKB1",
    "1.2.643.100.113.5": "classSignToolKB2",
    "1.2.643.100.113.6": "classSignToolKA1",
}

# OpenSSL renders an unknown OID through an 80-byte buffer, so the dotted
# text keeps at most 79 characters.
_OID_TEXT_MAX = 79

# Bytes 0x20..0x7E stay as they are, except "/" and "+", which OpenSSL 3.0
# escapes with a backslash because they separate attributes. Every other byte
# becomes \xHH with uppercase hex digits.
_BYTE_TEXT: dict[int, str] = {
    byte: chr(byte) if 0x20 <= byte <= 0x7E else f"\\x{byte:02X}" for byte in range(256)
}
_BYTE_TEXT[ord("/")] = "\\/"
_BYTE_TEXT[ord("+")] = "\\+"


def subject_oneline(name: x509.Name) -> str:
    """Render `name` as OpenSSL 3.0's X509_NAME_oneline() does.

    Each RDN starts with "/", and further attributes of a multi-valued RDN
    follow with "+", in the order the certificate encodes them. An empty
    name renders as "". `openssl ca` then stores the serial in its place,
    which is the caller's job.
    """
    parts: list[str] = []
    for rdn in name.rdns:
        separator = "/"
        for attribute in rdn:
            parts.append(separator)
            parts.append(attribute_short_name(attribute.oid))
            parts.append("=")
            parts.append(escape_value(attribute_value_bytes(attribute)))
            separator = "+"
    return "".join(parts)


def oneline_from_der(name: bytes) -> str:
    """Render an encoded Name as subject_oneline() does, from its DER.

    The value bytes come straight from the encoding, so no string type
    needs decoding. Raises ValueError for a malformed Name.
    """
    parts: list[str] = []
    for rdn in name_attributes(name):
        separator = "/"
        for dotted, tag, value in rdn:
            if tag == _TAG_GENERAL_STRING:
                value = _collapse_general_string(value)
            parts.append(separator)
            parts.append(SHORT_NAMES.get(dotted, dotted[:_OID_TEXT_MAX]))
            parts.append("=")
            parts.append(escape_value(value))
            separator = "+"
    return "".join(parts)


_TAG_GENERAL_STRING = 0x1B


def _collapse_general_string(value: bytes) -> bytes:
    # X509_NAME_oneline() reads a GeneralString whose length is a multiple
    # of four and whose first three bytes of every four are zero as
    # four-byte characters, and keeps only their last byte.
    if len(value) % 4 or any(byte for position, byte in enumerate(value) if position % 4 != 3):
        return value
    return value[3::4]


def attribute_short_name(oid: x509.ObjectIdentifier) -> str:
    """Return OpenSSL's short name for `oid`, or its dotted text if unknown."""
    dotted = oid.dotted_string
    return SHORT_NAMES.get(dotted, dotted[:_OID_TEXT_MAX])


def attribute_value_bytes(attribute: x509.NameAttribute[str | bytes]) -> bytes:
    """Return the content octets of the attribute value as encoded in DER.

    OpenSSL escapes raw bytes, not characters. A BMPString therefore shows
    two bytes per character and a UniversalString four, NUL bytes included.
    OpenSSL 3.0 collapses four-byte characters only for GeneralString, which
    `cryptography` cannot parse at all.
    """
    from cryptography.x509.name import _ASN1Type

    value: str | bytes = attribute.value
    if isinstance(value, bytes):
        return value
    if attribute._type is _ASN1Type.BMPString:
        return value.encode("utf-16-be")
    if attribute._type is _ASN1Type.UniversalString:
        return value.encode("utf-32-be")
    # cryptography decodes every other string type as UTF-8 and rejects
    # values that are not valid UTF-8, so encoding restores the DER bytes.
    return value.encode("utf-8")


def escape_value(data: bytes) -> str:
    """Escape attribute value bytes the way X509_NAME_oneline() does."""
    return "".join([_BYTE_TEXT[byte] for byte in data])
