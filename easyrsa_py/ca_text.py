"""The text block `openssl ca` writes before the PEM of each certificate it issues.

`openssl ca` (without -notext) prints the certificate with X509_print(),
which differs from `openssl x509 -text` as easy-rsa's show-cert runs it
only in the names: each is one line in the old X509_NAME_print() form,
`C=DE, ST=Bayern, CN=alice/emailAddress=a@example.org`. The rest of the
layout comes from x509_text.
"""

from __future__ import annotations

from cryptography import x509

from easyrsa_py.names import subject_oneline

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
