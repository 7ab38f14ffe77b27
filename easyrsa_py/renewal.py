"""renew and expire: retire issued/NAME.crt so NAME can get a new certificate.

Both follow easy-rsa 3.2.7. `expire` moves issued/NAME.crt to
expired/NAME.crt and changes nothing else: the key, the request, the
exports, the inline file and the index.txt row stay. The old certificate
stays valid until it is revoked with `revoke-expired` or reaches its end
date.

`renew` signs reqs/NAME.req again with the same key. The new certificate
gets the type, the subjectAltName, the signature digest and the critical
flags of the old one. The old certificate moves to renewed/issued/NAME.crt
and keeps its `V` row in index.txt until `revoke-renewed` revokes it.
index.txt.attr gets `unique_subject = no`, because two valid rows now share
one subject. 3.2.7 renews at any time, with no renewal window.

Unlike 3.2.7, renew deletes the old PKCS exports and inline files only
after the new certificate is signed, so a failed signing leaves them in
place. 3.1.0 renewed differently: only within EASYRSA_CERT_RENEW days (30)
of the end date, with a new key, moving the old key and request to
renewed/private and renewed/reqs as well.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from easyrsa_py import files
from easyrsa_py.certificate import check_request, read_certificate
from easyrsa_py.display import multiline_dn
from easyrsa_py.errors import (
    CertificateNotFound,
    CryptoMismatch,
    FileFormatError,
    RevocationConflict,
    UsageError,
)
from easyrsa_py.index import format_attr, parse_attr, serial_hex
from easyrsa_py.revoke import check_file_name_base

if TYPE_CHECKING:
    from cryptography import x509

    from easyrsa_py import signing
    from easyrsa_py.commands import Context
    from easyrsa_py.console import Console
    from easyrsa_py.pki import PKILayout
    from easyrsa_py.settings import Settings

logger = logging.getLogger(__name__)

# The x509-types profile that re-creates each extendedKeyUsage, by the type
# name that show-eku prints (the purpose list for types it does not know).
# NOTE: easy-rsa 3.2.7 maps only the first four. It passes the quoted
# purpose list of an e-mail certificate to sign-req as the type, so its
# renew of an e-mail certificate fails. Here it renews as 'email'.
_PROFILES_BY_USAGE = {
    "client": "client",
    "server": "server",
    "serverClient": "serverClient",
    "codeSigning": "codeSigning",
    "E-mail Protection": "email",
}
_SELF_SIGNED_MESSAGE = (
    "Cannot {command} {path}: it is a self-signed certificate, which this CA did not issue."
)


def _parse_name(context: Context, arguments: list[str]) -> str:
    """Return NAME from `COMMAND NAME [nopass]`; 3.2.7 warns about nopass and rejects other words."""
    command = context.command_name
    if not arguments or not arguments[0]:
        raise UsageError(f"Missing certificate name: usage is '{command} NAME'.")
    name, *options = arguments
    check_file_name_base(name)
    for option in options:
        if option != "nopass":
            raise UsageError(f"Unknown option '{option}': usage is '{command} NAME'.")
        context.console.warn(f"The option 'nopass' has no effect on '{command}'.")
    return name


def _forbid_self_signed(command: str, path: Path) -> None:
    # easy-rsa's self-sign commands put the certificate's own serial in
    # authorityKeyIdentifier, which is how 3.2.7 recognises them.
    certificate = read_certificate(path)
    try:
        authority_serial = certificate.authority_serial_number()
    except (ValueError, IndexError):
        raise FileFormatError(path, None, "its authorityKeyIdentifier extension is malformed.") from None
    if authority_serial == certificate.serial_number:
        raise RevocationConflict(_SELF_SIGNED_MESSAGE.format(command=command, path=path))


# --- expire -----------------------------------------------------------------


def expire(context: Context, arguments: list[str]) -> int:
    """Handle `expire NAME`: move issued/NAME.crt to expired/NAME.crt after confirmation."""
    layout = context.layout
    name = _parse_name(context, arguments)
    source = layout.issued_cert(name)
    target = layout.expired_cert(name)
    if target.exists() or target.is_symlink():
        raise RevocationConflict(
            f"Cannot expire '{name}': {target} already exists. Revoke that certificate with "
            f"'revoke-expired {name}' first."
        )
    if not source.is_file():
        raise CertificateNotFound(source, f"Cannot expire '{name}': no certificate at {source}.")
    _forbid_self_signed("expire", source)
    certificate = read_certificate(source)

    context.console.confirm(
        # easy-rsa passes the prompt with two leading spaces and its confirm
        # step indents by two more, so scripts see four.
        "  Continue with expiry: ",
        "yes",
        "\nConfirm that the following certificate moves to the 'expired' folder:\n\n"
        f"{multiline_dn(certificate.subject_der)}\n\n"
        f"    serial-number             = {serial_hex(certificate.serial_number)}\n\n"
        f"    notAfter date             = {_not_after_text(source)}",
    )
    files.make_dirs(target.parent)
    files.move_no_clobber(source, target)
    context.console.notice(
        f"Moved the certificate of '{name}' to:\n* {target}\n\n"
        "It stays valid until its end date unless you revoke it with "
        f"'revoke-expired {name}'. You can now sign a new certificate for '{name}'."
    )
    return 0


def _not_after_text(path: Path) -> str:
    """Return notAfter as `openssl x509 -enddate` prints it: `Mar  8 18:29:39 2029 GMT`."""
    from cryptography import x509

    when = x509.load_der_x509_certificate(read_certificate(path).der).not_valid_after_utc
    return f"{when:%b} {when.day:>2} {when:%H:%M:%S %Y} GMT"


# --- renew ------------------------------------------------------------------


@dataclass(frozen=True)
class RenewalPlan:
    """The properties a renewal copies from the old certificate, and the files it changes."""

    name: str
    certificate_path: Path
    renewed_path: Path
    request_path: Path
    request: x509.CertificateSigningRequest
    serial: str
    profile: str
    digest: str | None  # None for Ed25519 and Ed448, which sign without a separate digest
    subject_alt_name: x509.Extension[x509.SubjectAlternativeName] | None
    critical: frozenset[str]  # of basicConstraints, keyUsage, extendedKeyUsage
    deletions: tuple[Path, ...]


def renew(context: Context, arguments: list[str]) -> int:
    """Handle `renew NAME`: sign reqs/NAME.req again and move the old certificate to renewed/."""
    name = _parse_name(context, arguments)
    plan = plan_renewal(context.layout, context.settings, name)
    confirm_renewal(context.console, plan)
    apply_renewal(context, plan)
    context.console.notice(
        f"Renewed '{name}': the new certificate is {context.layout.issued_cert(name)}.\n"
        f"The old one is kept in {plan.renewed_path} and stays valid. Once the new\n"
        f"certificate is deployed, revoke the old one with 'revoke-renewed {name}'\n"
        "and run 'gen-crl'."
    )
    exports = [path for path in plan.deletions if path.suffix in (".p12", ".p7b", ".p8", ".p1")]
    if exports:
        listing = "\n".join(f"* {path}" for path in exports)
        context.console.notice(
            f"These exports held the old certificate and were deleted; export them again "
            f"for the new one (for example 'export-p12 {name}'):\n{listing}"
        )
    return 0


def plan_renewal(layout: PKILayout, settings: Settings, name: str) -> RenewalPlan:
    """Check everything a renewal needs, in easy-rsa 3.2.7's order, changing nothing."""
    from cryptography import x509

    from easyrsa_py import profiles
    from easyrsa_py.csr import load_request

    source = layout.issued_cert(name)
    renewed = layout.renewed_cert(name)
    if not source.is_file():
        raise CertificateNotFound(source, _missing_certificate_message(name, source, renewed))
    _forbid_self_signed("renew", source)
    request_path = layout.request(name)
    if not request_path.is_file():
        raise CertificateNotFound(
            request_path,
            f"Cannot renew '{name}': the request {request_path} is missing. Renew signs the "
            "same request again, so restore it, or issue a new certificate with gen-req and sign-req.",
        )
    check_request(request_path)
    request = load_request(request_path)
    certificate = x509.load_der_x509_certificate(read_certificate(source).der)
    _check_parts_parse(certificate, source)
    _check_parts_parse(request, request_path)
    _check_common_names(name, certificate, request, request_path)
    _check_issued_here(name, layout, certificate, source)
    _forbid_revoked(name, layout, certificate)
    if renewed.exists() or renewed.is_symlink():
        raise RevocationConflict(
            f"Cannot renew '{name}': {renewed} already exists from an earlier renewal. Revoke it "
            f"with 'revoke-renewed {name}' first."
        )
    profile = _profile_of(certificate, source)
    # Resolve the profile now, so a missing x509-types file fails before any question.
    profiles.load_profile(profile, profiles.search_folders(layout.root, settings.easyrsa_dir, settings.raw))
    return RenewalPlan(
        name=name,
        certificate_path=source,
        renewed_path=renewed,
        request_path=request_path,
        request=request,
        serial=serial_hex(certificate.serial_number),
        profile=profile,
        digest=_digest_of(certificate),
        subject_alt_name=_subject_alt_name_of(certificate),
        critical=_critical_extensions(certificate),
        deletions=_files_to_delete(layout, name),
    )


def _check_parts_parse(item: x509.Certificate | x509.CertificateSigningRequest, path: Path) -> None:
    """Raise FileFormatError when the subject, issuer or an extension of `item` does not parse.

    cryptography parses these only when they are first read, which would
    otherwise happen in the middle of planning, as a traceback.
    """
    from cryptography import x509

    try:
        len(item.subject)
        len(item.extensions)
        if isinstance(item, x509.Certificate):
            len(item.issuer)
    except ValueError as error:
        raise FileFormatError(path, None, f"a part of it cannot be read ({error}).") from None


def _check_issued_here(name: str, layout: PKILayout, certificate: x509.Certificate, path: Path) -> None:
    """Raise CryptoMismatch unless this PKI's CA signed the certificate.

    easy-rsa 3.2.7 renews a certificate of another CA too, and the old one
    then cannot be revoked with revoke-renewed, because index.txt lacks it.
    """
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    ca = x509.load_der_x509_certificate(read_certificate(layout.ca_cert).der)
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise CryptoMismatch(
            f"Cannot renew '{name}': the CA of this PKI ({layout.ca_cert}) did not issue {path}. "
            "Renew it with the PKI of the CA that issued it."
        ) from None


def _forbid_revoked(name: str, layout: PKILayout, certificate: x509.Certificate) -> None:
    """Raise RevocationConflict when index.txt marks the certificate as revoked.

    easy-rsa 3.2.7 renews it anyway, which certifies a revoked key again.
    """
    from easyrsa_py.index import parse_index

    rows = parse_index(layout.index.read_bytes(), layout.index)
    for row in rows:
        if row.status == "R" and int(row.serial, 16) == certificate.serial_number:
            raise RevocationConflict(
                f"Cannot renew '{name}': {layout.index} marks its certificate (serial "
                f"{row.serial}) as revoked. Issue a new certificate with gen-req and sign-req."
            )


def _missing_certificate_message(name: str, source: Path, renewed: Path) -> str:
    message = f"Cannot renew '{name}': no certificate at {source}."
    if renewed.is_file():
        # A renewal interrupted between its move and its signing leaves this state.
        message += (
            f" The previous certificate is in {renewed}; sign reqs/{name}.req again with "
            f"'sign-req TYPE {name}' to issue its replacement."
        )
    return message


def _check_common_names(
    name: str, certificate: x509.Certificate, request: x509.CertificateSigningRequest, request_path: Path
) -> None:
    from cryptography import x509

    common_name = x509.NameOID.COMMON_NAME
    old = [attribute.value for attribute in certificate.subject.get_attributes_for_oid(common_name)]
    new = [attribute.value for attribute in request.subject.get_attributes_for_oid(common_name)]
    if old != new:
        raise CryptoMismatch(
            f"Cannot renew '{name}': the certificate's commonName {old!r} differs from the "
            f"request's {new!r} in {request_path}."
        )


def _profile_of(certificate: x509.Certificate, path: Path) -> str:
    """Return the x509-types profile that re-creates the certificate's extendedKeyUsage."""
    from easyrsa_py.smallcommands import certificate_key_usage

    usage = certificate_key_usage(path.parent, [str(path)])
    profile = _PROFILES_BY_USAGE.get(usage.type_name)
    if profile is None:
        raise UsageError(
            f"Cannot renew {path}: its extendedKeyUsage '{usage.type_name}' matches no type that "
            "renew can re-create (client, server, serverClient, codeSigning, email). Sign a new "
            "request with 'sign-req TYPE NAME' instead."
        )
    return profile


def _digest_of(certificate: x509.Certificate) -> str | None:
    algorithm = certificate.signature_hash_algorithm
    return None if algorithm is None else algorithm.name


def _subject_alt_name_of(certificate: x509.Certificate) -> x509.Extension[x509.SubjectAlternativeName] | None:
    from cryptography import x509

    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None


def _critical_extensions(certificate: x509.Certificate) -> frozenset[str]:
    from cryptography import x509

    names: tuple[tuple[type[x509.ExtensionType], str], ...] = (
        (x509.BasicConstraints, "basicConstraints"),
        (x509.KeyUsage, "keyUsage"),
        (x509.ExtendedKeyUsage, "extendedKeyUsage"),
    )
    return frozenset(
        label
        for extension in certificate.extensions
        for extension_class, label in names
        if extension.critical and isinstance(extension.value, extension_class)
    )


def _files_to_delete(layout: PKILayout, name: str) -> tuple[Path, ...]:
    # The PKCS exports and inline files contain the old certificate. 3.2.7
    # deletes the same ones; the base64 PKCS#12 inline file is added here.
    candidates = [
        *layout.pkcs_files(name),
        *layout.inline_files(name),
        layout.root / "inline" / "private" / f"{name}.p12-inline",
    ]
    return tuple(path for path in candidates if path.is_file())


def confirm_renewal(console: Console, plan: RenewalPlan) -> None:
    deleted = "\n".join(f"* {path}" for path in plan.deletions) or "(none)"
    console.confirm(
        # The prompt is easy-rsa 3.2.7's, because scripts answer it.
        "Continue with 'renew' ? ",
        "yes",
        f"Renewing '{plan.name}' signs {plan.request_path} again as a '{plan.profile}' "
        "certificate.\n\n"
        f"The current certificate moves to the 'renewed' folder:\n* {plan.certificate_path}\n\n"
        f"These PKCS exports and inline files of the old certificate are deleted:\n{deleted}\n\n"
        "index.txt.attr is set to 'unique_subject = no', so that two valid certificates "
        "can share the subject.",
    )


def _missing_folders(folder: Path, root: Path) -> list[Path]:
    """List `folder` and its parents below `root` that do not exist yet, deepest first."""
    missing = []
    while folder != root and root in folder.parents and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty_folders(folders: list[Path]) -> None:
    """Remove the folders a failed renewal created, so the PKI is left as it was."""
    for folder in folders:
        if not files.remove_empty_folder(folder):
            # Not empty or already gone: someone else uses it, so it stays.
            return


def apply_renewal(context: Context, plan: RenewalPlan) -> None:
    """Sign the new certificate, then record it, move the old one and delete its exports.

    The new certificate is signed in memory first, so a wrong CA
    passphrase or a bad option changes nothing. The old certificate moves
    to renewed/ just before the new one is recorded, because recording
    writes issued/NAME.crt, and moves back if recording fails.
    """
    from easyrsa_py import signing

    layout = context.layout
    options = renewal_options(context, plan)
    _confirm_signing(context.console, plan.request, plan.profile, options)
    certificate, allocation, database = signing.build_certificate(
        layout, context.settings, plan.request, plan.profile, options
    )
    _allow_shared_subjects(layout)
    new_folders = _missing_folders(plan.renewed_path.parent, layout.root)
    files.make_dirs(plan.renewed_path.parent)
    try:
        files.move_no_clobber(plan.certificate_path, plan.renewed_path)
        signing.record_certificate(layout, plan.name, certificate, allocation, database, text=options.text)
    except BaseException:
        if not plan.certificate_path.exists() and plan.renewed_path.exists():
            files.move_no_clobber(plan.renewed_path, plan.certificate_path)
            context.console.warn(
                f"Renewing '{plan.name}' failed, so its certificate was moved back to "
                f"{plan.certificate_path}."
            )
        _remove_empty_folders(new_folders)
        raise
    for path in plan.deletions:
        files.remove_if_present(path)

    from easyrsa_py.inline import write_inline_after_issue

    write_inline_after_issue(layout, context.settings, context.console, plan.name)


def renewal_options(context: Context, plan: RenewalPlan) -> signing.SigningOptions:
    """Return the signing options with the old certificate's digest, subjectAltName and critical flags.

    As in easy-rsa 3.2.7, renew ignores --copy-ext, --auto-san and
    --new-subject. --san applies only when the old certificate has no
    subjectAltName.
    """
    from dataclasses import replace

    from easyrsa_py import signing

    options = signing.SigningOptions.from_settings(context.settings)
    options = replace(
        options,
        digest=plan.digest or options.digest,
        auto_san=False,
        copy_extensions=False,
        new_subject=None,
        critical=plan.critical,
    )
    if plan.subject_alt_name is not None:
        options = replace(
            options,
            san=subject_alt_name_text(plan.subject_alt_name.value, plan.certificate_path),
            san_critical=plan.subject_alt_name.critical,
        )
    return options


def subject_alt_name_text(names: x509.SubjectAlternativeName, path: Path) -> str:
    """Render a subjectAltName in OpenSSL config syntax, raising when it cannot round-trip."""
    from cryptography import x509

    from easyrsa_py.profiles import ProfileError, parse_general_names

    prefixes: tuple[tuple[type[x509.GeneralName], str], ...] = (
        (x509.DNSName, "DNS"),
        (x509.IPAddress, "IP"),
        (x509.RFC822Name, "email"),
        (x509.UniformResourceIdentifier, "URI"),
    )
    items = []
    for name in names:
        prefix = next((text for kind, text in prefixes if isinstance(name, kind)), None)
        if isinstance(name, x509.RegisteredID):
            items.append(f"RID:{name.value.dotted_string}")
        elif prefix is not None:
            items.append(f"{prefix}:{name.value}")
        else:
            items.append(f"{type(name).__name__}")
    text = ",".join(items)
    try:
        parsed = parse_general_names(text)
    except ProfileError:
        parsed = []
    if parsed != list(names):
        raise UsageError(
            f"Cannot renew {path}: its subjectAltName ({text}) contains a name that renew cannot "
            "copy (only DNS, IP, email, URI and RID names without commas). Sign a new request "
            "with 'sign-req' and --san instead."
        )
    return text


def _confirm_signing(
    console: Console, request: x509.CertificateSigningRequest, profile: str, options: signing.SigningOptions
) -> None:
    # easy-rsa 3.2.7's renew runs sign-req, which prompts for its own confirmations.
    from easyrsa_py import signing

    if options.ns_support:
        console.confirm(
            "Confirm use of Netscape extensions: ",
            "yes",
            "The Netscape extensions nsCertType and nsComment are deprecated.",
        )
    message = signing.confirmation_message(request, profile, options, False, True)
    console.confirm("Confirm requested details: ", "yes", message)


def _allow_shared_subjects(layout: PKILayout) -> None:
    """Set unique_subject = no in index.txt.attr, keeping any other attribute."""
    path = layout.index_attr
    attributes: dict[str, str] = {}
    if path.is_file():
        attributes = parse_attr(path.read_bytes(), path)
    if attributes.get("unique_subject") == "no" and path.is_file():
        return
    attributes["unique_subject"] = "no"
    files.atomic_write(path, format_attr(attributes))
