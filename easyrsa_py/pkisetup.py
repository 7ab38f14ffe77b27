"""The CA commands: build-ca, renew-ca, self-sign-server, self-sign-client and import-ca.

init-pki and clean-all live in `easyrsa_py.pkiinit` and are re-exported
here for the command table. The files, folders and messages follow
easy-rsa 3.2.7, so the real script can keep working on a CA these commands
made. Where 3.2.7 loses data or writes a certificate that breaks a chain
(build-ca over an index with records, renew-ca of a sub-CA), these
commands reject the input instead.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from easyrsa_py import csr, keys, profiles
from easyrsa_py.cacert import (
    ca_extensions,
    ca_subject,
    certificate_pem,
    certificate_text,
    critical_from_settings,
    self_signed_certificate,
)
from easyrsa_py.certificate import read_certificate
from easyrsa_py.errors import (
    FileFormatError,
    PassphraseError,
    UsageError,
)
from easyrsa_py.files import (
    atomic_write,
    atomic_write_all,
    make_dirs,
    remove_empty_folder,
)
from easyrsa_py.passphrase import read_hidden_line, read_passphrase
from easyrsa_py.pki import PKILayout, load_ca_certificate, load_ca_key
from easyrsa_py.pkiinit import PKIConflict, init_pki
from easyrsa_py.signing import signature_hash
from easyrsa_py.x509_text import render_certificate

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import (
        CertificateIssuerPrivateKeyTypes,
    )

    from easyrsa_py.commands import Context
    from easyrsa_py.console import Console
    from easyrsa_py.settings import Settings

logger = logging.getLogger(__name__)


__all__ = ["build_ca", "import_ca", "init_pki", "renew_ca", "self_sign"]


# --- build-ca ------------------------------------------------------------------


@dataclass(frozen=True)
class BuildCARequest:
    """The parsed arguments of build-ca."""

    subca: bool
    nopass: bool
    raw: bool


def parse_build_ca_arguments(
    arguments: list[str], settings: Settings
) -> BuildCARequest:
    subca = nopass = False
    raw = bool(settings.raw.get("EASYRSA_RAW_CA"))
    for word in arguments:
        if word in ("subca", "intca"):
            subca = True
        elif word == "nopass":
            nopass = True
        elif word == "rawca":
            raw = True
        else:
            raise UsageError(
                f"Unknown build-ca option {word!r}: expected 'nopass', 'subca' (or 'intca') or 'rawca'."
            )
    if raw and settings.batch:
        raise UsageError(
            "--raw-ca asks for the CA passphrase, so it cannot be used with --batch."
        )
    return BuildCARequest(
        subca=subca, nopass=nopass or bool(settings.raw.get("EASYRSA_NO_PASS")), raw=raw
    )


def _check_no_ca(layout: PKILayout, subca: bool) -> None:
    """Reject build-ca where it would replace a CA, its key or its records."""
    root = layout.root
    if (root / "peer-fp.mode").is_file():
        raise PKIConflict(
            f"Cannot create a CA in {root}: it contains self-signed certificates ({root / 'peer-fp.mode'}). "
            "Run init-pki first, or use another PKI."
        )
    if layout.ca_cert.exists():
        raise PKIConflict(
            f"Cannot create a CA: {layout.ca_cert} already exists. "
            "If you intended to start a new CA, run init-pki first."
        )
    if layout.ca_key.exists():
        raise PKIConflict(
            f"Cannot create a CA: the CA key {layout.ca_key} exists but {layout.ca_cert} does not, as after "
            "'build-ca subca'. Place the signed sub-CA certificate at ca.crt, or run init-pki to start a new CA."
        )
    if subca and layout.request("ca").exists():
        raise PKIConflict(
            f"Cannot create a sub-CA request: {layout.request('ca')} already exists."
        )
    if layout.index.is_file() and layout.index.stat().st_size > 0:
        raise PKIConflict(
            f"Cannot create a CA: {layout.index} already contains certificate records, which a new CA "
            "would erase. Run init-pki to start a new PKI."
        )


def build_ca(context: Context, arguments: list[str]) -> int:
    """Create the CA key and its self-signed certificate, or a sub-CA request."""
    settings, layout, console = context.settings, context.layout, context.console
    request = parse_build_ca_arguments(arguments, settings)
    _check_no_ca(layout, request.subca)
    common_name = settings.req_cn
    if common_name == "ChangeMe":
        common_name = "Easy-RSA Sub-CA" if request.subca else "Easy-RSA CA"
    key = keys.generate_private_key(settings)
    # Checks the digest before the passphrase prompt.
    signature_hash(key, settings.digest)
    passphrase = (
        None if request.nopass else _ca_passphrase(settings, console, request.raw)
    )
    # As `openssl req` in easy-rsa, ask for the subject after the passphrase,
    # with the settings as defaults, unless in batch mode.
    ask = None if settings.batch else csr.terminal_prompter(console.stdin, console.stderr)
    subject = ca_subject(settings, common_name, ask)

    key_pem = keys.private_key_pem(key, passphrase)
    if request.subca:
        output = layout.request("ca")
        output_pem = _ca_request(key, subject, settings.digest)
    else:
        output = layout.ca_cert
        serial = x509.random_serial_number()
        extensions = ca_extensions(
            settings, key, subject, serial, critical_from_settings(settings)
        )
        certificate = self_signed_certificate(
            key, subject, settings.ca_expire, settings.digest, extensions, serial
        )
        output_pem = certificate_pem(certificate)
        if settings.raw.get("EASYRSA_TEXT_ON"):
            # --text: easy-rsa 3.2.7 passes -text to `openssl req -x509`.
            output_pem = certificate_text(certificate).encode() + output_pem
    _write_ca_files(layout, key_pem, output, output_pem)
    if request.subca:
        console.notice(
            f"Wrote the sub-CA's certificate request:\n* {output}\n\nHave the parent CA sign it, then "
            f"put the signed certificate here before signing anything with this CA:\n* {layout.ca_cert}"
        )
    else:
        console.notice(
            f"Made the new CA. Its certificate, which clients and servers trust:\n* {output}"
        )
    return 0


def _ca_request(
    key: CertificateIssuerPrivateKeyTypes, subject: x509.Name, digest: str
) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    request = builder.sign(key, signature_hash(key, digest))  # type: ignore[arg-type]
    return request.public_bytes(serialization.Encoding.PEM)


def _write_ca_files(
    layout: PKILayout, key_pem: bytes, output: Path, output_pem: bytes
) -> None:
    """Write the CA folders and files, the key before the certificate or request.

    Every file is written out before any is renamed into place, and the
    folders this call created are removed again when a write fails, so a
    failure leaves the PKI as it was. easy-rsa 3.2.7 writes index.txt and
    serial before it makes the key, and leaves them behind when that fails.
    """
    root = layout.root
    folders = [
        root / "issued",
        root / "certs_by_serial",
        root / "revoked",
        root / "revoked" / "certs_by_serial",
        root / "revoked" / "private_by_serial",
    ]
    created = [folder for folder in folders if not folder.is_dir()]
    try:
        for folder in created:
            # private_by_serial keeps the keys of revoked certificates.
            mode = 0o700 if folder.name == "private_by_serial" else 0o777
            make_dirs(folder, mode=mode)
        atomic_write_all(
            [
                (layout.index, b"", None),
                (layout.serial, b"01\n", None),
                (layout.ca_key, key_pem, 0o600),
                (output, output_pem, None),
            ]
        )
    except BaseException:
        for folder in reversed(created):
            _remove_empty_folder(folder)
        raise


def _remove_empty_folder(folder: Path) -> None:
    remove_empty_folder(folder)


# The prompts and messages of easy-rsa 3.2.7's build-ca, which expect scripts answer.
_PROMPT_NEW_CA = "Enter New CA Key Passphrase: "
_PROMPT_CONFIRM_CA = "Confirm New CA Key Passphrase: "


def _ca_passphrase(settings: Settings, console: Console, raw: bool) -> bytes:
    """Return the new CA key's passphrase from --passout, or ask for it twice.

    easy-rsa 3.2.7 uses --passout only when --passin is set too, and prompts
    otherwise. easyrsa_py needs no --passin to use --passout.
    """
    if settings.passout and not raw:
        passphrase = read_passphrase(settings.passout)
        if not passphrase:
            raise PassphraseError(
                "The passphrase from --passout is empty. Give one, or use 'nopass'."
            )
        return passphrase
    first = _ask_ca_passphrase(_PROMPT_NEW_CA)
    second = _ask_ca_passphrase(_PROMPT_CONFIRM_CA)
    if first != second:
        raise PassphraseError(
            "Passphrase mismatch! The two CA passphrases typed differ. Run build-ca again."
        )
    return first


def _ask_ca_passphrase(prompt: str) -> bytes:
    """Prompt until the passphrase typed has at least 4 characters, as easy-rsa 3.2.7 does.

    Without a terminal the passphrase is read from stdin, one line each, and
    end of input is an error. easy-rsa 3.2.7 prompts forever then.
    """
    while True:
        passphrase = _read_hidden(prompt)
        if len(passphrase) >= keys.MIN_PASSPHRASE:
            return passphrase
        sys.stderr.write(
            f"\nThe passphrase is too short: use {keys.MIN_PASSPHRASE} characters or more.\n"
        )


def _read_hidden(prompt: str) -> bytes:
    missing = PassphraseError(
        "No CA passphrase was given. Use --passout, or 'nopass' for a key without one."
    )
    line = read_hidden_line("\n" + prompt, missing)
    return line[:-1] if line.endswith(b"\r") else line


# --- renew-ca ------------------------------------------------------------------

_EXPIRED_CA_LIST = "expired-ca.list"
_EXPIRED_CA_HEADER = b"# Easy-RSA expired CA certificate list:"
_EXPIRED_CA_RULE = b"# ====================================="


def renew_ca(context: Context, arguments: list[str]) -> int:
    """Replace ca.crt by a new certificate for the same CA key, archiving the old one.

    As in easy-rsa 3.2.7, the new certificate keeps the old signature
    digest and the criticality of basicConstraints and keyUsage, and the
    old one is added at the top of pki/expired-ca.list. Unlike 3.2.7, the
    whole old subject is kept, not only its common name, so certificates
    issued before still name the CA correctly.
    """
    settings, layout, console = context.settings, context.layout, context.console
    if arguments:
        raise UsageError(
            f"Unexpected argument {arguments[0]!r}: renew-ca takes no arguments."
        )
    if settings.req_cn != "ChangeMe":
        console.warn(
            "renew-ca does not support setting an external commonName: "
            "the old CA's subject is kept."
        )
    old_file = load_ca_certificate(layout)
    old = _parse_x509(layout.ca_cert, old_file.der)
    _check_self_signed(layout.ca_cert, old)
    key = load_ca_key(layout, settings.passin, old_file)

    new = _renewed_certificate(settings, console, key, old)
    console.confirm(
        "Install the new CA certificate ? ",
        "yes",
        f"\nNEW CA CERTIFICATE:\n\n{certificate_text(new).rstrip()}\n\nWARNING !!!\n\n"
        "The certificate above replaces ca.crt, with the same key and subject.\n"
        "The old one is appended to 'expired-ca.list', so certificates it signed can still be checked.\n\n"
        "Check its details before you go on.",
    )
    archive = layout.root / _EXPIRED_CA_LIST
    atomic_write_all(
        [
            (archive, _expired_ca_list(archive, old), None),
            (layout.ca_cert, certificate_pem(new), None),
        ]
    )
    console.notice(
        f"Renewed the CA certificate:\n* {layout.ca_cert}\n\n"
        f"The old one was appended to:\n* {archive}"
    )
    _warn_pinned_certificates(layout, console, old)
    return 0


def _check_self_signed(path: Path, certificate: x509.Certificate) -> None:
    """Reject renewing a sub-CA certificate, which its parent CA must sign.

    easy-rsa 3.2.7 replaces it by a self-signed root with the same name, so
    the PKI silently leaves its parent's chain.
    """
    if certificate.issuer != certificate.subject:
        raise PKIConflict(
            f"Cannot renew {path}: it is a sub-CA certificate issued by "
            f"{certificate.issuer.rfc4514_string()}, and renew-ca would replace it by a "
            "self-signed root. Send reqs/ca.req (or a new request for private/ca.key) to the "
            "parent CA and place the certificate it signs at ca.crt."
        )


def _renewed_certificate(
    settings: Settings,
    console: Console,
    key: CertificateIssuerPrivateKeyTypes,
    old: x509.Certificate,
) -> x509.Certificate:
    hash_algorithm = old.signature_hash_algorithm
    digest = hash_algorithm.name if hash_algorithm else settings.digest
    try:
        signature_hash(key, digest)
    except UsageError:
        # easy-rsa 3.2.7 renews a SHA-1 CA with SHA-1 again. cryptography
        # cannot sign with it, and a stronger hash is the safer choice.
        console.warn(
            f"The old CA certificate is signed with {digest}, which easyrsa_py does not "
            f"sign with: the renewed certificate is signed with {settings.digest}."
        )
        digest = settings.digest
    critical = frozenset(
        name
        for name, extension_class in (
            ("basicConstraints", x509.BasicConstraints),
            ("keyUsage", x509.KeyUsage),
        )
        if _is_critical(old, extension_class)
    )
    serial = x509.random_serial_number()
    extensions = ca_extensions(settings, key, old.subject, serial, critical)
    return self_signed_certificate(
        key, old.subject, settings.ca_expire, digest, extensions, serial
    )


def _warn_pinned_certificates(
    layout: PKILayout, console: Console, old: x509.Certificate
) -> None:
    """Warn about issued certificates whose authorityKeyIdentifier names the old CA's serial.

    OpenSSL rejects an issuer whose serial differs from that one, so those
    certificates verify only while the old CA certificate is trusted too.
    easy-rsa 3.2.7 prints no warning about this.
    """
    pinned = []
    for path in sorted((layout.root / "issued").glob("*.crt")):
        try:
            serial = read_certificate(path).authority_serial_number()
        except (FileFormatError, ValueError):
            continue
        if serial == old.serial_number:
            pinned.append(path.name)
    if pinned:
        listing = ", ".join(pinned[:5]) + (", ..." if len(pinned) > 5 else "")
        console.warn(
            f"{len(pinned)} issued certificate(s) ({listing}) name the old CA certificate's "
            "serial number in their authorityKeyIdentifier, so OpenSSL verifies them only "
            "while the old CA certificate is trusted too. Give peers both CA certificates "
            f"(the old one is in {layout.root / _EXPIRED_CA_LIST}) until those "
            "certificates are renewed."
        )


def _parse_x509(path: Path, der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as error:
        raise FileFormatError(
            path, None, f"not a valid certificate ({error})."
        ) from None


def _is_critical(
    certificate: x509.Certificate, extension_class: type[x509.ExtensionType]
) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(extension_class).critical
    except x509.ExtensionNotFound:
        return False


def _expired_ca_list(archive: Path, old: x509.Certificate) -> bytes:
    """Return the archive with `old` first, below the header, and the earlier entries after it.

    Each entry is the certificate as `openssl x509 -text` prints it, which
    is what easy-rsa 3.2.7 writes.
    """
    header = _EXPIRED_CA_HEADER + b"\n" + _EXPIRED_CA_RULE + b"\n\n"
    entry = certificate_text(old).encode() + certificate_pem(old)
    try:
        previous = archive.read_bytes()
    except FileNotFoundError:
        return header + entry
    # Like 3.2.7, drop the earlier header line and keep its rule line.
    rest = b"\n".join(
        b"" if line == _EXPIRED_CA_HEADER else line for line in previous.split(b"\n")
    )
    return header + entry + rest


# --- import-ca -----------------------------------------------------------------

_EXTERNAL_CA_LIST = Path("inline") / "external-ca.list"
_EXTERNAL_CA_HEADER = b"# Easy-RSA Inline file: External CA list\n"


def import_ca(context: Context, arguments: list[str]) -> int:
    """Append a CA certificate to pki/inline/external-ca.list, as easy-rsa 3.2.7 does.

    The inline files list these certificates with the PKI's own CA. Nothing
    checks that the certificate is a CA or that it signed anything.
    """
    if len(arguments) != 1 or not arguments[0]:
        raise UsageError("Usage: import-ca FILE, where FILE is a PEM CA certificate.")
    source = Path(arguments[0])
    if not source.is_file():
        raise UsageError(
            f"Missing file: {source} does not exist or is not a regular file."
        )
    try:
        certificate = x509.load_pem_x509_certificate(source.read_bytes())
    except ValueError:
        raise FileFormatError(source, None, "not a PEM X.509 certificate.") from None
    target = context.layout.root / _EXTERNAL_CA_LIST
    make_dirs(target.parent)
    previous = target.read_bytes() if target.is_file() else _EXTERNAL_CA_HEADER
    # easy-rsa 3.2.7 writes the text of `openssl x509 -text -nameopt multiline`.
    entry = (
        render_certificate(certificate, full=True).encode()
        + b"\n"
        + certificate_pem(certificate)
    )
    atomic_write(target, previous + entry)
    context.console.notice(f"Added the external CA certificate to: {target}")
    return 0


# --- self-sign-server and self-sign-client ------------------------------------

# The upper bound of commonName in easy-rsa's OpenSSL config (commonName_max).
_MAX_COMMON_NAME_BYTES = 64
_SELF_SIGN_USAGE = {
    "server": ExtendedKeyUsageOID.SERVER_AUTH,
    "client": ExtendedKeyUsageOID.CLIENT_AUTH,
}
_PEER_FINGERPRINT_MARK = b"# Easy-RSA peer-fp-mode - Please DO NOT DELETE this file\n"


def self_sign(context: Context, arguments: list[str], kind: str) -> int:
    """Create a key and a self-signed certificate for peer-fingerprint mode, without a CA.

    As in easy-rsa 3.2.7, an RSA setting gives a secp384r1 key, the
    certificate has the name as its common name, and pki/peer-fp.mode marks
    the PKI so that build-ca refuses it afterwards.
    """
    from easyrsa_py.inline import write_peer_fingerprint_inline
    from easyrsa_py.revoke import check_file_name_base

    settings, layout, console = context.settings, context.layout, context.console
    name, nopass = _parse_self_sign_arguments(context.command_name, arguments, settings)
    check_file_name_base(name)
    if len(name.encode("utf-8")) > _MAX_COMMON_NAME_BYTES:
        raise UsageError(
            f"Invalid name {name!r}: {context.command_name} uses it as the common name, "
            f"which is at most {_MAX_COMMON_NAME_BYTES} bytes long. Choose a shorter name."
        )
    if layout.ca_cert.exists() or layout.ca_key.exists():
        raise PKIConflict(
            f"Cannot create a self-signed certificate in a PKI with a CA ({layout.root})."
        )
    for path in (layout.private_key(name), layout.issued_cert(name)):
        if path.exists():
            raise PKIConflict(f"Cannot self-sign '{name}': {path} already exists.")

    key_settings = _self_sign_key_settings(settings)
    passphrase = keys.new_key_passphrase(
        settings, console, f"the key of {name}", nopass
    )
    key = keys.generate_private_key(key_settings)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    serial = x509.random_serial_number()
    extensions = _self_sign_extensions(key, subject, serial, _SELF_SIGN_USAGE[kind])
    extensions = _add_extra_extensions(extensions, settings, key, subject, serial)
    # easy-rsa 3.2.7 always signs these with SHA-256, whatever --digest is.
    certificate = self_signed_certificate(
        key, subject, settings.cert_expire, "sha256", extensions, serial
    )
    atomic_write_all(
        [
            (layout.private_key(name), keys.private_key_pem(key, passphrase), 0o600),
            (
                layout.issued_cert(name),
                certificate_text(certificate).encode() + certificate_pem(certificate),
                None,
            ),
            (layout.root / "peer-fp.mode", _PEER_FINGERPRINT_MARK, None),
        ]
    )
    write_peer_fingerprint_inline(layout, settings, console, name)
    curve = key_settings.curve
    console.notice(
        f"Self-signed '{key_settings.algo}/{curve}' key and certificate created:\n"
        f"* {layout.private_key(name)}\n* {layout.issued_cert(name)}"
    )
    return 0


def _add_extra_extensions(
    extensions: list[x509.Extension[x509.ExtensionType]],
    settings: Settings,
    key: CertificateIssuerPrivateKeyTypes,
    subject: x509.Name,
    serial: int,
) -> list[x509.Extension[x509.ExtensionType]]:
    """Add EASYRSA_EXTRA_EXTS and --san, which easy-rsa 3.2.7 appends to the selfsign profile.

    An added extension replaces a built-in one with the same OID.
    """
    raw = settings.raw
    lines: list[profiles.ProfileLine] = []
    if raw.get("EASYRSA_EXTRA_EXTS"):
        lines += profiles.profile_lines(raw["EASYRSA_EXTRA_EXTS"], "EASYRSA_EXTRA_EXTS")
    if raw.get("EASYRSA_SAN"):
        lines.append(
            profiles.ProfileLine("subjectAltName", raw["EASYRSA_SAN"], settings.san_critical, "--san", None)
        )
    if not lines:
        return extensions
    context = profiles.ExtensionContext.self_signed(key.public_key(), subject, serial, raw)  # type: ignore[arg-type]
    added = profiles.build_extensions(profiles.merge_lines(lines), context)
    replaced = {extension.oid for extension in added}
    return [extension for extension in extensions if extension.oid not in replaced] + added


def _parse_self_sign_arguments(
    command: str, arguments: list[str], settings: Settings
) -> tuple[str, bool]:
    if not arguments or not arguments[0]:
        raise UsageError(f"Missing name: usage is '{command} NAME [nopass]'.")
    name, options = arguments[0], arguments[1:]
    if settings.req_cn != "ChangeMe":
        raise UsageError(
            f"Option conflict --req-cn: '{command}' uses NAME as the common name."
        )
    if name == "nopass":
        raise UsageError(
            "Invalid name 'nopass': give the name first, as in 'self-sign-server NAME nopass'."
        )
    for variable, option in (
        ("EASYRSA_START_DATE", "--startdate"),
        ("EASYRSA_END_DATE", "--enddate"),
    ):
        if settings.raw.get(variable):
            # NOTE: easy-rsa 3.2.7 passes these to OpenSSL; easyrsa_py does not parse them yet.
            raise UsageError(
                f"{option} is not supported by easyrsa_py's {command} yet: use --days."
            )
    for option in options:
        if option != "nopass":
            raise UsageError(f"Unknown {command} option {option!r}: expected 'nopass'.")
    return name, bool(options) or bool(settings.raw.get("EASYRSA_NO_PASS"))


def _self_sign_key_settings(settings: Settings) -> Settings:
    if settings.algo == "ed":
        return dataclasses.replace(settings, curve=settings.curve or "ed25519")
    return dataclasses.replace(settings, algo="ec", curve=settings.curve or "secp384r1")


def _self_sign_extensions(
    key: CertificateIssuerPrivateKeyTypes,
    subject: x509.Name,
    serial: int,
    usage: x509.ObjectIdentifier,
) -> list[x509.Extension[x509.ExtensionType]]:
    """Build easy-rsa 3.2.7's built-in `selfsign` extensions with the server or client usage."""
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())  # type: ignore[arg-type]
    authority = x509.AuthorityKeyIdentifier(
        key_identifier=key_id.digest,
        authority_cert_issuer=[x509.DirectoryName(subject)],
        authority_cert_serial_number=serial,
    )
    key_usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    values: list[x509.ExtensionType] = [
        key_id,
        authority,
        x509.BasicConstraints(ca=True, path_length=None),
        key_usage,
        x509.ExtendedKeyUsage([usage]),
    ]
    return [x509.Extension(value.oid, False, value) for value in values]
