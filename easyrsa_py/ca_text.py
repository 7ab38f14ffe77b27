"""The text blocks `openssl ca` and `openssl req -text` write before the PEM block.

`openssl ca` (without -notext) prints the certificate with X509_print(),
which differs from `openssl x509 -text` as easy-rsa's show-cert runs it
only in the names: each is one line in the old X509_NAME_print() form,
`C=DE, ST=Bayern, CN=alice/emailAddress=a@example.org`. `openssl req
-text` prints the subject on one line in OpenSSL 3.0's default `utf8`
name form, `C = DE, CN = alice`. The rest of the layout comes from
x509_text.
"""

from __future__ import annotations

from cryptography import x509

from easyrsa_py.der import name_attributes
from easyrsa_py.display import _decode, _escape_value
from easyrsa_py.names import SHORT_NAMES, subject_oneline

_NAME_FIELD_INDENT = "            "


def compat_name_text(name: x509.Name) -> str:
    """Render a name as OpenSSL 3.0's X509_NAME_print() does.

    It takes the X509_NAME_oneline() text, drops the leading '/', and turns
    each '/' that is followed by one or two capital letters and '=' into
    ', '. Other slashes stay, hence the '/emailAddress=' in the output.
    """
    oneline = subject_oneline(name)
    if not oneline:
        return ""
    text = oneline[1:]
    parts: list[str] = []
    start = 0
    for position, character in enumerate(text):
        if character == "/" and _starts_short_name(text, position + 1):
            parts.append(text[start:position])
            start = position + 1
    parts.append(text[start:])
    return ", ".join(parts)


def _starts_short_name(text: str, position: int) -> bool:
    first = text[position : position + 1]
    second = text[position + 1 : position + 2]
    third = text[position + 2 : position + 3]
    if not _is_upper(first):
        return False
    return second == "=" or (_is_upper(second) and third == "=")


def _is_upper(character: str) -> bool:
    return len(character) == 1 and "A" <= character <= "Z"


def render_issued_certificate(certificate: x509.Certificate) -> str:
    """Return the text `openssl ca` writes before the PEM block, final newline included."""
    from easyrsa_py.x509_text import render_certificate

    lines = render_certificate(certificate, full=True).split("\n")
    lines = _replace_name_block(lines, "Issuer", compat_name_text(certificate.issuer))
    lines = _replace_name_block(lines, "Subject", compat_name_text(certificate.subject))
    return "\n".join(lines) + "\n"


def _replace_name_block(lines: list[str], title: str, text: str) -> list[str]:
    """Replace the multi-line name block `title:` and its field lines with one line."""
    heading = f"        {title}:"
    start = lines.index(heading)
    end = start + 1
    while end < len(lines) and lines[end].startswith(_NAME_FIELD_INDENT):
        end += 1
    return [*lines[:start], f"{heading} {text}", *lines[end:]]


def utf8_name_text(name: x509.Name) -> str:
    """Render a name as OpenSSL 3.0's default `-nameopt utf8` does: 'C = DE, CN = alice'."""
    rdns = []
    for rdn in name_attributes(name.public_bytes()):
        parts = [
            f"{SHORT_NAMES.get(dotted, dotted)} = {_escape_value(_decode(tag, value))}"
            for dotted, tag, value in rdn
        ]
        rdns.append(" + ".join(parts))
    return ", ".join(rdns)


def render_request_text(request: x509.CertificateSigningRequest) -> str:
    """Return the text `openssl req -text` writes before the PEM block, final newline included."""
    from easyrsa_py.x509_text import render_request

    lines = render_request(request, full=True).split("\n")
    lines = _replace_name_block(lines, "Subject", utf8_name_text(request.subject))
    return "\n".join(lines) + "\n"
