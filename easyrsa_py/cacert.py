"""Self-signed certificates: the CA's, its extensions and subject, and their text.

build-ca, renew-ca and the self-sign commands build certificates that are
signed by their own key, as `openssl req -x509` makes them for easy-rsa.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from easyrsa_py import csr, profiles
from easyrsa_py.names import attribute_short_name, attribute_value_bytes
from easyrsa_py.signing import end_after_days, signature_hash
from easyrsa_py.x509_text import render_certificate

if TYPE_CHECKING:
    from collections.abc import Callable

    from cryptography.hazmat.primitives.asymmetric.types import (
        CertificateIssuerPrivateKeyTypes,
    )

    from easyrsa_py.settings import Settings


# The [ easyrsa_ca ] section of easy-rsa 3.2.7's openssl-easyrsa.cnf. The
# x509-types `ca` and COMMON profiles and EASYRSA_EXTRA_EXTS are inserted
# after it, and their lines replace these lines of the same name.
_CA_CONFIG_SECTION = """\
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always,issuer:always
basicConstraints = CA:true
keyUsage = cRLSign, keyCertSign
"""


def ca_subject(
    settings: Settings,
    common_name: str,
    ask: Callable[[csr.SubjectField, str], str | None] | None = None,
) -> x509.Name:
    """Build the subject for EASYRSA_DN with `common_name`, asking for each field when `ask` is given."""
    return csr.build_subject(csr.subject_defaults(settings, common_name), ask)


def ca_extensions(
    settings: Settings,
    key: CertificateIssuerPrivateKeyTypes,
    subject: x509.Name,
    serial: int,
    critical: frozenset[str] = frozenset(),
) -> list[x509.Extension[x509.ExtensionType]]:
    """Build the extensions of a self-signed CA certificate from the `ca` and COMMON profiles.

    `critical` names extensions ("basicConstraints", "keyUsage") to mark
    critical in the `ca` profile, as --bc-crit and --ku-crit do.
    """
    folders = profiles.search_folders(
        settings.pki_dir, settings.easyrsa_dir, settings.raw
    )
    profile = profiles.load_profile("ca", folders)
    type_lines = list(profile.lines)
    for name in sorted(critical):
        type_lines = profiles.make_critical(type_lines, name)
    extra_text = settings.raw.get("EASYRSA_EXTRA_EXTS")
    extra = list(
        profiles.profile_lines(extra_text, "EASYRSA_EXTRA_EXTS") if extra_text else ()
    )
    # easy-rsa 3.2.7 appends --san to EASYRSA_EXTRA_EXTS for every command.
    san = settings.raw.get("EASYRSA_SAN")
    if san:
        extra.append(profiles.ProfileLine("subjectAltName", san, settings.san_critical, "--san", None))
    lines = profiles.merge_lines(
        profiles.profile_lines(
            _CA_CONFIG_SECTION, "openssl-easyrsa.cnf [ easyrsa_ca ]"
        ),
        type_lines,
        profiles.load_profile("COMMON", folders).lines,
        extra,
    )
    context = profiles.ExtensionContext.self_signed(key.public_key(), subject, serial, settings.raw)  # type: ignore[arg-type]
    return profiles.build_extensions(lines, context, profile.sections)


def critical_from_settings(settings: Settings) -> frozenset[str]:
    names = []
    if settings.raw.get("EASYRSA_BC_CRIT"):
        names.append("basicConstraints")
    if settings.raw.get("EASYRSA_KU_CRIT"):
        names.append("keyUsage")
    return frozenset(names)


def self_signed_certificate(
    key: CertificateIssuerPrivateKeyTypes,
    subject: x509.Name,
    days: int,
    digest: str,
    extensions: list[x509.Extension[x509.ExtensionType]],
    serial: int,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> x509.Certificate:
    """Sign a certificate for `key` with itself, as `openssl req -x509` does."""
    start = not_before or datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(not_after or end_after_days(start, days))
    )
    for extension in extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(key, signature_hash(key, digest))  # type: ignore[arg-type]


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def certificate_text(certificate: x509.Certificate) -> str:
    """Render the certificate as `openssl x509 -text` and `openssl req -x509 -text` print it.

    Those print each name on one line, "CN = alice, O = Example", unlike
    the multi-line names of show-cert. The result ends with a newline.
    """
    lines = render_certificate(certificate, full=True).split("\n")
    for title, name in (
        ("Issuer", certificate.issuer),
        ("Subject", certificate.subject),
    ):
        heading = f"        {title}:"
        start = lines.index(heading)
        end = start + 1
        while end < len(lines) and lines[end].startswith(
            heading.replace(title + ":", "    ")
        ):
            end += 1
        lines[start:end] = [f"{heading} {spaced_oneline(name)}"]
    return "\n".join(lines) + "\n"


# RFC 2253 special characters: OpenSSL quotes a value that contains one.
_QUOTED_SPECIALS = frozenset(b",+;<>")


def spaced_oneline(name: x509.Name) -> str:
    """Render a name as OpenSSL 3.0's default -nameopt oneline does: "CN = a, O = b".

    Values with RFC 2253 special characters are quoted, '"' and '\\' are
    escaped with a backslash, and bytes outside printable ASCII become \\XX.
    """
    rdns = []
    for rdn in name.rdns:
        parts = [
            f"{attribute_short_name(item.oid)} = {_oneline_value(attribute_value_bytes(item))}"
            for item in rdn
        ]
        rdns.append(" + ".join(parts))
    return ", ".join(rdns)


def _oneline_value(data: bytes) -> str:
    # NOTE: checked against OpenSSL 3.0 for UTF-8, quotes and special
    # characters; leading '#' and leading or trailing spaces are not.
    text = []
    for byte in data:
        if byte < 0x20 or byte >= 0x7F:
            text.append(f"\\{byte:02X}")
        elif byte in b'"\\':
            text.append("\\" + chr(byte))
        else:
            text.append(chr(byte))
    value = "".join(text)
    return f'"{value}"' if _QUOTED_SPECIALS & set(data) else value
