"""OpenVPN inline files: the `inline` command and the files signing writes.

An inline file puts a certificate, its key, the CA certificate, the
Diffie-Hellman parameters and the TLS key into one text file in OpenVPN's
`<cert>`, `<key>`, `<ca>`, `<dh>` and `<tls-auth>`/`<tls-crypt>` blocks,
ready to paste into a client or server configuration. The layout, the
header lines and the folder follow easy-rsa 3.2.7's inline_file():

- `inline/private/NAME.inline` when the file contains the private key or the
  TLS key, `inline/NAME.inline` otherwise;
- a header of `# Certificate type:`, `# commonName:`, the SHA-256
  fingerprint and the decimal serial (OpenVPN's `--crl-verify DIR dir`
  names revoked certificates by decimal serial);
- a commented placeholder, never an error, for each missing part.

3.2.7 writes this file after every `sign-req` and `build-*-full` and on the
`inline` command, deletes it on `revoke` and `renew`, and skips it under
`--noinline` (EASYRSA_NO_INLINE) or the older EASYRSA_DISABLE_INLINE. Its
`self-sign-*` commands also add the certificate's fingerprint to a
peer-fingerprint list (write_peer_fingerprint_inline). Only the header
fields and the blocks are a format that scripts read. The comments and the
README text here are easyrsa_py's own.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from easyrsa_py import files, journal
from easyrsa_py.certificate import CertificateFile, read_certificate
from easyrsa_py.display import multiline_dn
from easyrsa_py.errors import CryptoMismatch, FileFormatError, UsageError
from easyrsa_py.keys import is_encrypted_key, restrict_existing_file
from easyrsa_py.revoke import check_file_name_base

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

    from easyrsa_py.commands import Context
    from easyrsa_py.console import Console
    from easyrsa_py.pki import PKILayout
    from easyrsa_py.settings import Settings

logger = logging.getLogger(__name__)

README_NAME = "README.inline.private"
# The file name base of the CA's certificate and key (ca.crt, private/ca.key).
CA_NAME = "ca"
_README_TEXT = (
    b"# The inline files in this folder contain private keys or TLS keys.\n"
    b"# Copy them only over an encrypted channel, such as scp or https,\n"
    b"# and delete any copy that is no longer needed.\n"
)
# The value easy-rsa 3.2.7 writes in the header when there is no certificate.
UNKNOWN = "unknown"
_TLS_LABELS = ((b"TLS-AUTH", "tls-auth"), (b"TLS-CRYPT", "tls-crypt"))
# OpenVPN's key-direction for a tls-auth key: 0 on the server, 1 on clients.
_KEY_DIRECTIONS = {
    "server": "0",
    "self-signed-server": "0",
    "client": "1",
    "self-signed-client": "1",
}
_SERVER_TYPES = ("server", "serverClient")


@dataclass
class InlineContent:
    """The text of one inline file, whether it contains secrets, and what it lacks."""

    text: bytes
    private: bool
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CertificateSummary:
    """The header fields easy-rsa 3.2.7 writes for the certificate of an inline file."""

    certificate_type: str
    common_name: str
    fingerprint: str
    decimal_serial: str


def inline(context: Context, arguments: list[str]) -> int:
    """Handle `inline NAME`: write the inline file of NAME from the PKI's files."""
    if not arguments or not arguments[0]:
        raise UsageError("Missing certificate name: usage is 'inline NAME'.")
    if len(arguments) > 1:
        raise UsageError(f"Unexpected argument '{arguments[1]}': usage is 'inline NAME'.")
    name = arguments[0]
    check_file_name_base(name)
    if name == CA_NAME:
        # easy-rsa 3.2.7 pastes private/ca.key into inline/private/ca.inline.
        raise UsageError(
            "'inline ca' is rejected: private/ca.key is the CA's own key, and an inline file "
            "is meant to be copied to an OpenVPN peer. Peers need only ca.crt, which every "
            "other inline file already contains."
        )
    write_inline(context.layout, context.settings, context.console, name, check_sources=True)
    return 0


def check_inline_sources(layout: PKILayout, name: str) -> None:
    """Raise unless the CA certificate and the key of `name`, where present, can be used.

    easy-rsa 3.2.7 pastes these files unread, so a damaged file or a key
    of another certificate gives an inline file that OpenVPN rejects.
    Missing files stay placeholders. An encrypted key cannot be checked
    without its passphrase, so it is pasted as it is.
    """
    if layout.ca_cert.is_file():
        read_certificate(layout.ca_cert)
    key_path = layout.private_key(name)
    if not key_path.is_file():
        return
    data = key_path.read_bytes()
    if is_encrypted_key(data):
        return
    key = _load_unencrypted_key(key_path, data)
    certificate_path = layout.issued_cert(name)
    if certificate_path.is_file():
        _check_key_matches(key, certificate_path, key_path)


def _load_unencrypted_key(path: Path, data: bytes) -> PrivateKeyTypes:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(
            data, password=None, unsafe_skip_rsa_key_validation=True
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise FileFormatError(path, None, "not a valid PEM private key.") from None


def _check_key_matches(key: PrivateKeyTypes, certificate_path: Path, key_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from easyrsa_py.pki import certificate_public_key

    certificate = read_certificate(certificate_path)
    encoding = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    certificate_key = certificate_public_key(certificate, certificate_path)
    if key.public_key().public_bytes(encoding, spki) != certificate_key.public_bytes(encoding, spki):
        raise CryptoMismatch(
            f"The private key {key_path} does not match the certificate {certificate_path}. "
            "Put the key that belongs to the certificate in private/ and run 'inline' again."
        )


def inline_disabled(settings: Settings, console: Console) -> bool:
    """Return whether --noinline, EASYRSA_NO_INLINE or EASYRSA_DISABLE_INLINE is set."""
    if settings.raw.get("EASYRSA_DISABLE_INLINE"):
        console.warn("EASYRSA_DISABLE_INLINE is deprecated: set EASYRSA_NO_INLINE instead.")
        return True
    return bool(settings.raw.get("EASYRSA_NO_INLINE"))


def write_inline_after_issue(layout: PKILayout, settings: Settings, console: Console, name: str) -> None:
    """Write the inline file of a certificate just issued, saying so if the write fails.

    Under the CLI, a failed write makes the undo journal take back the whole
    command, certificate included. Without a journal the certificate stays
    recorded, so the user must learn that only the inline copy is missing.
    """
    try:
        write_inline(layout, settings, console, name)
    except OSError as error:
        if journal.active() is not None:
            raise
        console.warn(
            f"The certificate for '{name}' was issued, but its inline file could not be written "
            f"({error.strerror}). Run 'inline {name}' once the cause is fixed."
        )
        raise


def write_inline(
    layout: PKILayout,
    settings: Settings,
    console: Console,
    name: str,
    *,
    check_sources: bool = False,
) -> Path | None:
    """Write the inline file of `name` and return its path, or None when disabled.

    Missing parts become commented placeholders and a warning names them,
    as in easy-rsa 3.2.7. A certificate that cannot be parsed raises
    FileFormatError before anything is written. With `check_sources`, so
    does an invalid ca.crt or key, or a key of another certificate (see
    check_inline_sources).
    """
    check_file_name_base(name)
    if inline_disabled(settings, console):
        return None
    if check_sources:
        check_inline_sources(layout, name)
    content = build_inline(layout, settings, name)
    folder = layout.root / "inline" / "private" if content.private else layout.root / "inline"
    path = folder / f"{name}.inline"
    prepare_inline_folders(layout)
    if content.private:
        # The file contains a key, so it gets mode 0600 whatever the umask.
        # easy-rsa 3.2.7 leaves it to the umask.
        restrict_existing_file(path)
        files.atomic_write(path, content.text, mode=0o600)
    else:
        files.atomic_write(path, content.text)
    logger.debug("wrote inline file %s", path)
    if content.missing:
        console.warn(
            f"Wrote an incomplete inline file:\n* {path}\n\n"
            f"Missing: {'; '.join(content.missing)}. Add the missing files to the PKI and "
            f"run 'inline {name}' to write it again."
        )
    else:
        console.notice(f"Wrote the inline file:\n* {path}")
    return path


def prepare_inline_folders(layout: PKILayout) -> None:
    """Create inline/private and its README, as easy-rsa 3.2.7 does before each write."""
    private = layout.root / "inline" / "private"
    files.make_dirs(private.parent)
    # A new inline/private gets mode 0700 whatever the umask, as private/ does.
    files.make_dirs(private, mode=0o700)
    readme = private / README_NAME
    if not (readme.exists() or readme.is_symlink()):
        files.atomic_write(readme, _README_TEXT)


def _file_text(path: Path) -> bytes:
    # easy-rsa pastes each file with the shell's $(cat FILE), which drops
    # the trailing newlines.
    return path.read_bytes().rstrip(b"\n")


def build_inline(layout: PKILayout, settings: Settings, name: str) -> InlineContent:
    """Build the inline file of `name` from the PKI's files, changing nothing."""
    content = InlineContent(b"", private=False)
    certificate_path = layout.issued_cert(name)
    summary = None
    if certificate_path.is_file():
        summary = summarize_certificate(certificate_path)
    certificate_type = summary.certificate_type if summary else UNKNOWN
    sections = [
        _header(summary),
        _certificate_section(certificate_path, content),
        _key_section(layout.private_key(name), content),
        _ca_section(layout, certificate_type, content) + _dh_section(layout, settings, certificate_type, content),
        _tls_section(layout, certificate_type, content),
    ]
    content.text = b"\n\n".join(sections) + b"\n\n"
    return content


def _header(summary: CertificateSummary | None) -> bytes:
    if summary is None:
        # 3.2.7 leaves the decimal serial empty when there is no certificate.
        summary = CertificateSummary(UNKNOWN, UNKNOWN, UNKNOWN, "")
    return (
        "# Easy-RSA Inline file\n"
        f"# Certificate type: {summary.certificate_type}\n"
        f"# commonName: {summary.common_name}\n"
        "# SHA256 fingerprint:\n"
        f"# {summary.fingerprint}\n"
        f"# Decimal serial number: {summary.decimal_serial}"
    ).encode()


def summarize_certificate(path: Path) -> CertificateSummary:
    """Read the header fields of an inline file from the certificate at `path`."""
    certificate = read_certificate(path)
    return CertificateSummary(
        certificate_type=inline_certificate_type(path),
        common_name=common_name(certificate) or UNKNOWN,
        fingerprint=sha256_fingerprint(certificate),
        decimal_serial=str(certificate.serial_number),
    )


def inline_certificate_type(path: Path) -> str:
    """Return the certificate type as easy-rsa 3.2.7's EKU check names it.

    Known types are client, server, serverClient and codeSigning. Any other
    purpose list is quoted ('E-mail Protection'), no extendedKeyUsage is
    `undefined`, and a CA certificate gets a `self-signed-` prefix.
    """
    from easyrsa_py.smallcommands import certificate_key_usage

    usage = certificate_key_usage(path.parent, [str(path)])
    if usage.known:
        return usage.type_name
    prefix = "self-signed-" if usage.type_name.startswith("self-signed-") else ""
    base = usage.type_name.removeprefix(prefix)
    if base != "undefined":
        base = f"'{base}'"
    return prefix + base


def common_name(certificate: CertificateFile) -> str | None:
    """Return the first commonName of the subject as `openssl -nameopt multiline` prints it.

    NOTE: easy-rsa 3.2.7 pastes every commonName line of a subject with
    several, which breaks the header, and stops when there is none.
    """
    for line in multiline_dn(certificate.subject_der).splitlines()[1:]:
        attribute, _, value = line.strip().partition(" = ")
        if attribute.strip() == "commonName":
            return value
    return None


def sha256_fingerprint(certificate: CertificateFile) -> str:
    """Return the SHA-256 fingerprint as `openssl x509 -fingerprint -sha256` prints it."""
    digest = hashlib.sha256(certificate.der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _certificate_section(path: Path, content: InlineContent) -> bytes:
    if path.is_file():
        return b"<cert>\n" + _file_text(path) + b"\n</cert>"
    content.missing.append(f"certificate {path}")
    return (
        b"# No signed certificate was found. Copy it to the PKI's issued/ folder\n"
        b"# and run 'inline' again, or paste it here:\n"
        b"# <cert>\n# </cert>"
    )


def _key_section(path: Path, content: InlineContent) -> bytes:
    if path.is_file():
        # An encrypted key is pasted as it is; OpenVPN prompts for its passphrase.
        content.private = True
        return b"<key>\n" + _file_text(path) + b"\n</key>"
    content.missing.append(f"private key {path}")
    return (
        b"# No private key was found. Copy it to the PKI's private/ folder\n"
        b"# and run 'inline' again, or paste it here:\n"
        b"# <key>\n# </key>"
    )


def _ca_section(layout: PKILayout, certificate_type: str, content: InlineContent) -> bytes:
    if certificate_type == "self-signed-client":
        return (
            b"# A self-signed client needs no CA: OpenVPN 2.6 and later check the\n"
            b"# server with --peer-fingerprint. OpenVPN 2.5 and older need the\n"
            b"# self-signed server certificate here instead."
        )
    if certificate_type == "self-signed-server":
        return b"# A self-signed server needs no CA: clients are checked with --peer-fingerprint."
    if not layout.ca_cert.is_file():
        content.missing.append(f"CA certificate {layout.ca_cert}")
        return (
            b"# No CA certificate was found. Copy it to the PKI as ca.crt and\n"
            b"# run 'inline' again, or paste it here:\n"
            b"# <ca>\n# </ca>"
        )
    ca_text = _file_text(layout.ca_cert)
    # import-ca of easy-rsa 3.2.7 lists the certificates of other CAs here.
    external = layout.root / "inline" / "external-ca.list"
    if external.is_file():
        ca_text += b"\n" + _file_text(external)
    return b"<ca>\n" + ca_text + b"\n</ca>"


def _dh_section(
    layout: PKILayout, settings: Settings, certificate_type: str, content: InlineContent
) -> bytes:
    """Return the `<dh>` block a server needs, or b"" for other types.

    Only RSA servers use Diffie-Hellman parameters. easy-rsa 3.2.7 decides
    by EASYRSA_ALGO, not by the certificate's key.
    """
    not_needed = b"\n\n# Diffie-Hellman parameters are not needed with this key type.\ndh none"
    if certificate_type == "self-signed-server":
        return not_needed
    if certificate_type not in _SERVER_TYPES:
        return b""
    if settings.algo != "rsa":
        return not_needed
    dh_path = layout.root / "dh.pem"
    if dh_path.is_file():
        return b"\n\n<dh>\n" + _file_text(dh_path) + b"\n</dh>"
    content.missing.append(f"Diffie-Hellman parameters {dh_path} (run 'gen-dh')")
    return b"\n\n# No dh.pem was found. Run 'gen-dh' and then 'inline' again.\n# <dh>\n# </dh>"


def _tls_label(key_text: bytes) -> str | None:
    for marker, label in _TLS_LABELS:
        if marker in key_text:
            return label
    return None


def _tls_section(layout: PKILayout, certificate_type: str, content: InlineContent) -> bytes:
    """Return the TLS key block with its key-direction, or a comment saying why there is none."""
    tls_path = layout.root / "private" / "easyrsa-tls.key"
    # When pki/easyrsa-keepsafe-tls.key exists, easy-rsa 3.2.7 takes the TLS
    # key as already shared with the peers and leaves it out of the file.
    old_tls_path = layout.root / "easyrsa-keepsafe-tls.key"
    key_text = _file_text(tls_path) if tls_path.is_file() else None
    label = _tls_label(key_text) if key_text is not None else None
    shared_before = old_tls_path.is_file()
    if key_text is not None and not shared_before:
        # 3.2.7 files the inline file under private/ whenever it reads the
        # TLS key, even for types that then leave the key out.
        content.private = True

    direction = _KEY_DIRECTIONS.get(certificate_type)
    if direction is None:
        return (
            "# TLS keys are inlined only for client and server certificates, "
            f"not for type {certificate_type}."
        ).encode()

    if shared_before:
        return _shared_tls_placeholder(label)
    if key_text is None:
        content.missing.append(f"TLS key {tls_path} (see 'help gen-tls-auth-key')")
        return b"# No TLS key was found in private/easyrsa-tls.key."
    if label is None:
        content.missing.append(f"a tls-auth or tls-crypt key in {tls_path}")
        return b"# The key in private/easyrsa-tls.key is not a tls-auth or tls-crypt key."

    text = f"<{label}>\n".encode() + key_text + f"\n</{label}>".encode()
    if label == "tls-auth":
        text += f"\n\nkey-direction {direction}".encode()
    return text


def _shared_tls_placeholder(label: str | None) -> bytes:
    tag = label or ""
    text = (
        b"# A TLS key was already shared with your peers (easyrsa-keepsafe-tls.key\n"
        b"# exists), so it is not pasted here. Paste the shared key here:\n"
        + f"# <{tag}>\n# </{tag}>".encode()
    )
    if label == "tls-auth":
        text += b"\n#\n# and add its direction: 'key-direction 0' on servers, 1 on clients."
    return text


# The peer-fingerprint list each self-signed type adds to, and the side
# of the connection whose configuration uses that list.
_FINGERPRINT_LISTS = {
    "self-signed-server": ("server", "client"),
    "self-signed-client": ("client", "server"),
}


def write_peer_fingerprint_inline(
    layout: PKILayout, settings: Settings, console: Console, name: str
) -> Path | None:
    """Write the inline file of a self-signed certificate and add it to the peer-fingerprint list.

    easy-rsa 3.2.7's self-sign-server and self-sign-client do both.
    inline/pfp-server.list-inline collects the fingerprints of self-signed
    servers for the clients' `<peer-fingerprint>` block, and
    pfp-client.list-inline those of clients for the server. The previous
    list is kept as .old. Returns the list's path, or None when inline files
    are disabled.
    """
    check_file_name_base(name)
    if inline_disabled(settings, console):
        return None
    summary = summarize_certificate(layout.issued_cert(name))
    sides = _FINGERPRINT_LISTS.get(summary.certificate_type)
    if sides is None:
        raise UsageError(
            f"Cannot add '{name}' to a peer-fingerprint list: its type is "
            f"{summary.certificate_type}, not a self-signed client or server."
        )
    write_inline(layout, settings, console, name)

    list_type, used_by = sides
    path = layout.root / "inline" / f"pfp-{list_type}.list-inline"
    if path.is_file():
        previous = path.read_bytes()
    else:
        previous = (
            "# Easy-RSA Inline file\n"
            f"# Certificate type: {summary.certificate_type}\n"
            f"# Paste this block into the configuration of each {used_by}.\n"
            "<peer-fingerprint>\n</peer-fingerprint>\n"
        ).encode()
    # As easy-rsa does with sed, drop every line with the closing tag and add it back last.
    open_lines = [line for line in previous.splitlines(keepends=True) if b"</peer-fingerprint>" not in line]
    entry = f"# commonName: {summary.common_name}\n{summary.fingerprint}\n</peer-fingerprint>\n"
    files.atomic_write_all(
        [
            (path.with_name(path.name + ".old"), previous, None),
            (path, b"".join(open_lines) + entry.encode(), None),
        ]
    )
    console.notice(f"Added '{name}' to the {summary.certificate_type} peer-fingerprint list:\n* {path}")
    return path
