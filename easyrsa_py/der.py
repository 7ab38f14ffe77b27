"""Minimal DER encoding and reading for the structures easyrsa_py writes by hand.

`cryptography`'s CRL builder copies its list of entries on every
`add_revoked_certificate` call, so a CRL with tens of thousands of entries
takes quadratic time. easyrsa_py therefore encodes the TBSCertList itself
(X.690 DER, RFC 5280 section 5.1) and signs it with the `cryptography` key.
"""

from __future__ import annotations

from datetime import datetime

TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
TAG_OID = 0x06
TAG_ENUMERATED = 0x0A
TAG_UTC_TIME = 0x17
TAG_GENERALIZED_TIME = 0x18
TAG_SEQUENCE = 0x30


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(content)) + content


def sequence(*items: bytes) -> bytes:
    return tlv(TAG_SEQUENCE, b"".join(items))


def integer_content(value: int) -> bytes:
    """Return the minimal two's-complement content octets of a non-negative integer."""
    if value < 0:
        raise ValueError(f"negative INTEGER {value} is not supported here")
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def integer(value: int) -> bytes:
    return tlv(TAG_INTEGER, integer_content(value))


def oid(dotted: str) -> bytes:
    arcs = [int(part) for part in dotted.split(".")]
    body = bytearray((40 * arcs[0] + arcs[1],))
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(TAG_OID, bytes(body))


def time_from_text(text: str) -> bytes:
    """Encode OpenSSL's database date text: 13 characters as UTCTime, 15 as GeneralizedTime."""
    tag = TAG_UTC_TIME if len(text) == 13 else TAG_GENERALIZED_TIME
    return tlv(tag, text.encode("ascii"))


def time_value(when: datetime) -> bytes:
    """Encode a UTC time as RFC 5280 requires: UTCTime up to 2049, then GeneralizedTime."""
    if 1950 <= when.year < 2050:
        return tlv(TAG_UTC_TIME, when.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return tlv(TAG_GENERALIZED_TIME, when.strftime("%Y%m%d%H%M%SZ").encode("ascii"))


def read_tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """Return (tag, content start, content end) of the element at `offset`."""
    tag = data[offset]
    first = data[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise ValueError("DER element runs past the end of its data")
    return tag, start, end


def children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """Return the (tag, element start, element end) of each element in data[start:end]."""
    found = []
    offset = start
    while offset < end:
        tag, _, element_end = read_tlv(data, offset)
        found.append((tag, offset, element_end))
        offset = element_end
    return found


def certificate_names_der(tbs_certificate: bytes) -> tuple[bytes, bytes]:
    """Return the (issuer, subject) Names of a TBSCertificate exactly as encoded in it.

    A CRL's issuer must be byte-identical to the CA's subject, so the bytes
    are copied rather than re-encoded.
    """
    _, start, end = read_tlv(tbs_certificate, 0)
    fields = children(tbs_certificate, start, end)
    # An explicit [0] version comes first in v2 and v3 certificates.
    if fields[0][0] == 0xA0:
        fields = fields[1:]
    # The fields are serialNumber, signature, issuer, validity, subject.
    _, issuer_start, issuer_end = fields[2]
    _, subject_start, subject_end = fields[4]
    return (
        tbs_certificate[issuer_start:issuer_end],
        tbs_certificate[subject_start:subject_end],
    )


def oid_text(content: bytes) -> str:
    """Decode the content octets of an OBJECT IDENTIFIER to dotted text."""
    if not content or content[-1] & 0x80:
        raise ValueError("truncated OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


def name_attributes(name: bytes) -> list[list[tuple[str, int, bytes]]]:
    """Split an encoded Name into RDNs of (dotted OID, value tag, value content).

    The values stay as encoded, because OpenSSL's one-line form escapes the
    raw bytes of each value.
    """
    tag, start, end = read_tlv(name, 0)
    if tag != TAG_SEQUENCE or end != len(name):
        raise ValueError("a Name must be one SEQUENCE")
    rdns = []
    for rdn_tag, rdn_start, rdn_end in children(name, start, end):
        if rdn_tag != 0x31:
            raise ValueError("a relative distinguished name must be a SET")
        _, set_start, set_end = read_tlv(name, rdn_start)
        attributes = []
        for pair_tag, pair_start, _ in children(name, set_start, set_end):
            if pair_tag != TAG_SEQUENCE:
                raise ValueError("an attribute must be a SEQUENCE")
            _, pair_content, pair_end = read_tlv(name, pair_start)
            fields = children(name, pair_content, pair_end)
            if len(fields) != 2 or fields[0][0] != TAG_OID:
                raise ValueError("an attribute must hold an OID and a value")
            _, oid_start, oid_end = read_tlv(name, fields[0][1])
            value_tag, value_start, value_end = read_tlv(name, fields[1][1])
            attributes.append((oid_text(name[oid_start:oid_end]), value_tag, name[value_start:value_end]))
        rdns.append(attributes)
    return rdns
